//! Console sessions over real HTTP: the AWS-shaped federation endpoint
//! (getSigninToken / login), the portal's Console button, deep links, the console
//! page with "can I?", several consoles at once, and every bad input.

use rolegate::iam::{AccountId, PolicyName, RoleName};
use rolegate::idp::identity::Identity;
use rolegate::seed::{self, DEMO_ACCOUNT_ID};
use rolegate::store::{ConsoleDestination, IdentitySourceKind, NewIdentitySource, Outcome};

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state};
use crate::web_client::{Browser, Page, exported_keys, hidden, password_of, seeded, url_encode};

impl Browser {
    /// Opens a role's console from /start; returns the console's path.
    async fn open_console(&mut self, role: &str) -> String {
        let start = self.get("/start").await;
        assert_eq!(start.status, 200);
        let csrf = hidden(&start.body, "csrf");
        let opened = self
            .post(
                "/start/console",
                &[
                    ("csrf", &csrf),
                    ("account", DEMO_ACCOUNT_ID),
                    ("role", role),
                ],
            )
            .await;
        assert_eq!(opened.status, 303, "{}", opened.body);
        opened.location.unwrap()
    }

    /// Runs "can I?" on a console; returns the page.
    async fn check(&mut self, console: &str, action: &str, resource: &str, context: &str) -> Page {
        self.check_with_resource_policy(console, action, resource, context, "")
            .await
    }

    /// Runs "can I?" with the resource owner's policy; returns the page.
    async fn check_with_resource_policy(
        &mut self,
        console: &str,
        action: &str,
        resource: &str,
        context: &str,
        resource_policy: &str,
    ) -> Page {
        let page = self.get(console).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        let check = format!("{console}/check");
        self.post(
            &check,
            &[
                ("csrf", &csrf),
                ("action", action),
                ("resource", resource),
                ("context", context),
                ("resource_policy", resource_policy),
            ],
        )
        .await
    }
}

fn decision(page: &Page) -> &str {
    let marker = "data-decision=\"";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no decision in {}", page.body))
        + marker.len();
    &page.body[start..start + page.body[start..].find('"').unwrap()]
}

fn deciding(page: &Page) -> &str {
    let marker = "<span id=\"deciding\">";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no deciding statement in {}", page.body))
        + marker.len();
    &page.body[start..start + page.body[start..].find('<').unwrap()]
}

fn bob() -> Identity {
    Identity {
        source_id: seed::DIRECTORY_SOURCE_ID.into(),
        user_name: "bob".into(),
        display_name: "Bob Builder".into(),
        email: Some("bob@example.com".into()),
        groups: vec!["developers".into()],
        attributes: Default::default(),
        subject: "bob".into(),
        claims: Default::default(),
    }
}

/// Bob's Developer session, as the portal issues it.
async fn developer_session(
    sts: &rolegate::service::issuance::Sts,
    now: i64,
) -> rolegate::sts::credentials::AssumedRole {
    let grant = sts
        .grant(&bob(), DEMO_ACCOUNT_ID, "Developer")
        .await
        .unwrap();
    sts.issue_for_identity(&bob(), &grant, now).await.unwrap()
}

const DEVELOPER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/Developer/bob@example.com";

/// The `Session` parameter for credentials.
fn session_json(key: &str, secret: &str, token: &str) -> String {
    serde_json::json!({ "sessionId": key, "sessionKey": secret, "sessionToken": token }).to_string()
}

async fn get_signin_token(
    client: &reqwest::Client,
    base: &str,
    session: &str,
) -> (u16, serde_json::Value) {
    let response = client
        .get(format!("{base}/federation"))
        .query(&[("Action", "getSigninToken"), ("Session", session)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn login_path(token: &str, destination: &str) -> String {
    format!(
        "/federation?Action=login&SigninToken={}&Destination={}",
        url_encode(token),
        url_encode(destination)
    )
}

fn console_cookie_of(location: &str) -> (String, String) {
    let short = location
        .trim_start_matches("/console/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    (format!("rgc_{short}"), format!("/console/{short}"))
}

async fn portal_console_and_can_i(db: TestStore) {
    let base = spawn_state(seeded(&db).await);
    let mut alice = Browser::new(&base);
    assert_eq!(
        alice
            .sign_in("alice", password_of("alice"), "/start")
            .await
            .status,
        303
    );
    let start = alice.get("/start").await;
    assert!(
        start.body.contains("action=\"/start/console\""),
        "Console button on /start"
    );

    // Two consoles for two roles, open at once.
    let developer = alice.open_console("Developer").await;
    let read_only = alice.open_console("ReadOnly").await;
    assert!(
        developer.starts_with("/console/")
            && read_only.starts_with("/console/")
            && developer != read_only
    );
    for console in [&developer, &read_only] {
        let (name, path) = console_cookie_of(console);
        assert!(
            alice
                .cookies
                .iter()
                .any(|(n, p, _)| *n == name && *p == path),
            "{name} with Path={path}"
        );
    }
    let opened = alice
        .post(
            "/start/console",
            &[
                ("csrf", &hidden(&start.body, "csrf")),
                ("account", DEMO_ACCOUNT_ID),
                ("role", "Admin"),
            ],
        )
        .await;
    let cookie = opened
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rgc_"))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/console/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http here");

    let page = alice.get(&developer).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("arn:aws:sts::123456789012:assumed-role/Developer/alice@example.com")
    );
    assert!(page.body.contains("alice@example.com"), "source identity");
    assert!(
        page.body.contains("DeveloperBoundary") && page.body.contains("Permissions boundary"),
        "the role's policies"
    );
    assert!(
        page.body.contains("&#34;Sid&#34;: &#34;DenyIamWrites&#34;"),
        "documents pretty-printed: {}",
        page.body
    );
    let page = alice.get(&read_only).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("assumed-role/ReadOnly/alice@example.com")
    );

    // "can I?" on the Developer console: allowed, explicit deny by the boundary (the
    // EU-only rule and the IAM-writes rule), allowed once the region is eu-*.
    let allowed = alice
        .check(&developer, "s3:ListAllMyBuckets", "*", "")
        .await;
    assert_eq!(decision(&allowed), "Allowed", "{}", allowed.body);
    assert!(
        deciding(&allowed).contains("PowerUserAccess"),
        "{}",
        deciding(&allowed)
    );
    let denied = alice.check(&developer, "iam:CreateUser", "*", "").await;
    assert_eq!(decision(&denied), "ExplicitDeny");
    assert!(
        deciding(&denied).contains("DeveloperBoundary")
            && deciding(&denied).contains("Sid DenyIamWrites"),
        "{}",
        deciding(&denied)
    );
    assert!(
        denied.body.contains("iam:Create*"),
        "the deciding statement is shown"
    );
    let outside_eu = alice
        .check(&developer, "ec2:DescribeInstances", "*", "")
        .await;
    assert_eq!(decision(&outside_eu), "ExplicitDeny");
    assert!(deciding(&outside_eu).contains("Sid EuOnly"));
    let in_eu = alice
        .check(
            &developer,
            "ec2:DescribeInstances",
            "*",
            "aws:RequestedRegion=eu-west-1",
        )
        .await;
    assert_eq!(decision(&in_eu), "Allowed", "{}", in_eu.body);
    let reserved = alice
        .check(&developer, "s3:GetObject", "*", "aws:PrincipalTag/team=x")
        .await;
    assert_eq!(decision(&reserved), "Error");
    assert!(reserved.body.contains("cannot be supplied"));
    // ... and on the ReadOnly console, in the same browser.
    let implicit = alice
        .check(&read_only, "s3:PutObject", "arn:aws:s3:::demo/x", "")
        .await;
    assert_eq!(decision(&implicit), "ImplicitDeny", "{}", implicit.body);
    let view = alice
        .check(&read_only, "ec2:DescribeInstances", "*", "")
        .await;
    assert_eq!(decision(&view), "Allowed");
    assert!(deciding(&view).contains("ViewOnlyAccess") && deciding(&view).contains("Sid ViewOnly"));

    // Account boundaries, as /v1/authorize decides them (issue 15 item 4): a
    // resource of another account needs its owner's resource policy.
    let own = alice
        .check(
            &read_only,
            "iam:GetRole",
            "arn:aws:iam::123456789012:role/Payroll",
            "",
        )
        .await;
    assert_eq!(decision(&own), "Allowed", "{}", own.body);
    let other = "arn:aws:iam::999999999999:role/Payroll";
    let foreign = alice.check(&read_only, "iam:GetRole", other, "").await;
    assert_eq!(decision(&foreign), "ImplicitDeny", "{}", foreign.body);
    assert!(foreign.body.contains("cross-account"), "{}", foreign.body);
    let s3_foreign = alice
        .check(
            &read_only,
            "s3:ListBucket",
            "arn:aws:s3:::payroll",
            "aws:ResourceAccount=999999999999",
        )
        .await;
    assert_eq!(decision(&s3_foreign), "ImplicitDeny", "{}", s3_foreign.body);
    let grant = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "LetReadOnlyIn", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/ReadOnly"},
        "Action": "iam:GetRole", "Resource": other
    }]})
    .to_string();
    let granted = alice
        .check_with_resource_policy(&read_only, "iam:GetRole", other, "", &grant)
        .await;
    assert_eq!(decision(&granted), "Allowed", "{}", granted.body);
    let broken = alice
        .check_with_resource_policy(&read_only, "iam:GetRole", other, "", "{not json")
        .await;
    assert_eq!(decision(&broken), "Error", "{}", broken.body);

    // The check form needs the console's CSRF token.
    let forged = alice
        .post(
            &format!("{developer}/check"),
            &[
                ("csrf", "forged"),
                ("action", "s3:GetObject"),
                ("resource", "*"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // A tampered console cookie, a cookie moved to another console, no cookie at all.
    let (dev_cookie, dev_path) = console_cookie_of(&developer);
    let original = alice.cookie(&dev_cookie).unwrap().to_owned();
    let mut tampered = original.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(63.., last);
    let mut mallory = Browser::new(&base);
    mallory.set_cookie(&dev_cookie, &dev_path, &tampered);
    let refused = mallory.get(&developer).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("not valid"), "{}", refused.body);
    assert!(
        refused
            .set_cookies
            .iter()
            .any(|c| c.starts_with(&format!("{dev_cookie}=;")) || c.contains("Max-Age=0")),
        "bad cookie removed"
    );
    let (ro_cookie, _) = console_cookie_of(&read_only);
    let mut swapped = Browser::new(&base);
    swapped.set_cookie(&dev_cookie, &dev_path, alice.cookie(&ro_cookie).unwrap());
    assert_eq!(
        swapped.get(&developer).await.status,
        403,
        "another console's id is not this console"
    );
    assert_eq!(Browser::new(&base).get(&developer).await.status, 403);
    assert_eq!(
        Browser::new(&base).get("/console/not-an-id").await.status,
        404
    );
    assert_eq!(
        alice.get(&developer).await.status,
        200,
        "the real console still works"
    );

    // A role alice is not entitled to: no credentials, no console.
    let csrf = hidden(&alice.get("/start").await.body, "csrf");
    let before = alice.cookies.len();
    let other = alice
        .post(
            "/start/console",
            &[
                ("csrf", &csrf),
                ("account", DEMO_ACCOUNT_ID),
                ("role", "DemoWorkload"),
            ],
        )
        .await;
    assert_eq!(other.status, 403);
    assert!(
        other.body.contains("not entitled")
            && other.body.contains("No console session was created"),
        "{}",
        other.body
    );
    assert_eq!(alice.cookies.len(), before);
    let forged = alice
        .post(
            "/start/console",
            &[
                ("csrf", "forged"),
                ("account", DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Closing a console ends it; the other stays open.
    let page = alice.get(&developer).await;
    let closed = alice
        .post(
            &format!("{developer}/logout"),
            &[("csrf", &hidden(&page.body, "csrf"))],
        )
        .await;
    assert_eq!(closed.location.as_deref(), Some("/start"));
    let mut replay = Browser::new(&base);
    replay.set_cookie(&dev_cookie, &dev_path, &original);
    assert_eq!(
        replay.get(&developer).await.status,
        403,
        "a closed console's cookie is dead"
    );
    assert_eq!(alice.get(&read_only).await.status, 200);

    // Revoking the role's sessions closes its consoles.
    let account = rolegate::iam::AccountId::parse(DEMO_ACCOUNT_ID).unwrap();
    let role = rolegate::iam::RoleName::parse("ReadOnly").unwrap();
    db.store
        .revoke_role_sessions(
            &account,
            &role,
            chrono::Utc::now() + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    crate::helpers::past_iam_cache_check(&db.hand);
    let revoked = alice.get(&read_only).await;
    assert_eq!(revoked.status, 403);
    assert!(revoked.body.contains("revoked"), "{}", revoked.body);

    // Console ids stay out of the audit log.
    crate::helpers::assert_audited(
        db.store.as_ref(),
        &[
            ("portal:OpenConsole", Outcome::Success),
            ("portal:OpenConsole", Outcome::Denied),
            ("console:Open", Outcome::Denied),
            ("console:Check", Outcome::Denied),
            ("console:SignOut", Outcome::Success),
        ],
        &[&original],
    )
    .await;
}

async fn federation_endpoint(db: TestStore) {
    let state = seeded(&db).await;
    let now = chrono::Utc::now().timestamp();
    let assumed = developer_session(&state.sts, now).await;
    let creds = assumed.credentials.clone();
    let base = spawn_state(state.clone());
    let client = reqwest::Client::new();

    // Bad Session parameters.
    let wrong_secret = session_json(
        &creds.access_key_id,
        "not-the-secret-key-at-all-0000000000000000",
        &creds.session_token,
    );
    let (status, body) = get_signin_token(&client, &base, &wrong_secret).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "SignatureDoesNotMatch");
    let other_key = session_json(
        "ASIAAAAAAAAAAAAAAAAA",
        &creds.secret_access_key,
        &creds.session_token,
    );
    assert_eq!(
        get_signin_token(&client, &base, &other_key).await.0,
        403,
        "the token belongs to another key"
    );
    let forged_token = session_json(
        &creds.access_key_id,
        &creds.secret_access_key,
        "forged-token",
    );
    assert_eq!(get_signin_token(&client, &base, &forged_token).await.0, 403);
    let long_term = session_json("AKIAAAAAAAAAAAAAAAAA", "x", "y");
    assert_eq!(get_signin_token(&client, &base, &long_term).await.0, 403);
    let (status, body) = get_signin_token(&client, &base, "{not json").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("MalformedSession"))
    );
    let missing = client
        .get(format!("{base}/federation?Action=getSigninToken"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 400);
    let too_long = client
        .get(format!("{base}/federation"))
        .query(&[
            ("Action", "getSigninToken"),
            ("SessionDuration", "86400"),
            (
                "Session",
                &session_json(
                    &creds.access_key_id,
                    &creds.secret_access_key,
                    &creds.session_token,
                ),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status().as_u16(), 400);

    // A good one.
    let good = session_json(
        &creds.access_key_id,
        &creds.secret_access_key,
        &creds.session_token,
    );
    let (status, body) = get_signin_token(&client, &base, &good).await;
    assert_eq!(status, 200, "{body}");
    let token = body["SigninToken"].as_str().unwrap().to_owned();
    assert!(token.len() >= 40);

    // A Destination off the allow-list is refused, creates no session and does not
    // use up the token.
    let mut browser = Browser::new(&base);
    for evil in [
        "https://evil.example/console",
        "//evil.example/console",
        "/start",
        &format!("{base}.evil.example/console"),
    ] {
        let refused = browser.get(&login_path(&token, evil)).await;
        assert_eq!(refused.status, 400, "{evil}");
        assert!(
            refused.body.contains("Destination not allowed"),
            "{}",
            refused.body
        );
        assert!(refused.location.is_none() && browser.cookies.is_empty());
    }

    // Login: a relative destination with a query that pre-fills "can I?".
    let logged_in = browser
        .get(&login_path(
            &token,
            "/console?action=s3:ListAllMyBuckets&resource=*",
        ))
        .await;
    assert_eq!(logged_in.status, 302, "{}", logged_in.body);
    let console = logged_in.location.clone().unwrap();
    assert!(
        console.starts_with("/console/")
            && console.ends_with("?action=s3:ListAllMyBuckets&resource=*"),
        "{console}"
    );
    let page = browser.get(&console).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(DEVELOPER_ARN));
    assert!(
        page.body
            .contains("name=\"action\" value=\"s3:ListAllMyBuckets\"")
    );
    let console = console.split('?').next().unwrap().to_owned();
    let allowed = browser
        .check(&console, "s3:ListAllMyBuckets", "*", "")
        .await;
    assert_eq!(decision(&allowed), "Allowed");

    // Single use: the same link again, in this browser or another.
    let mut second = Browser::new(&base);
    let again = second.get(&login_path(&token, "/console")).await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(second.cookies.is_empty());
    let unknown = second
        .get(&login_path(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "/console",
        ))
        .await;
    assert_eq!(unknown.status, 403);
    assert!(unknown.body.contains("expired"), "{}", unknown.body);
    assert!(second.cookies.is_empty());

    // An absolute Destination on Rolegate's own origin, by POST, with SessionDuration.
    let response = client
        .post(format!("{base}/federation"))
        .form(&[
            ("Action", "getSigninToken"),
            ("SessionDuration", "900"),
            ("Session", &good),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token: serde_json::Value = response.json().await.unwrap();
    let token = token["SigninToken"].as_str().unwrap();
    let mut third = Browser::new(&base);
    let logged_in = third
        .get(&login_path(token, &format!("{base}/console")))
        .await;
    assert_eq!(logged_in.status, 302, "{}", logged_in.body);
    let cookie = logged_in
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rgc_"))
        .unwrap();
    let max_age: i64 = cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (890..=900).contains(&max_age),
        "console session limited to SessionDuration: {cookie}"
    );
    assert_eq!(
        third
            .get(logged_in.location.as_deref().unwrap())
            .await
            .status,
        200
    );

    // A sign-in token for credentials that were revoked since (the role's sessions
    // revoked): no console.
    let (status, body) = get_signin_token(&client, &base, &good).await;
    assert_eq!(status, 200);
    let token = body["SigninToken"].as_str().unwrap();
    db.store
        .revoke_role_sessions(
            &rolegate::iam::AccountId::parse(DEMO_ACCOUNT_ID).unwrap(),
            &rolegate::iam::RoleName::parse("Developer").unwrap(),
            chrono::Utc::now() + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    crate::helpers::past_iam_cache_check(&db.hand);
    let mut fourth = Browser::new(&base);
    let refused = fourth.get(&login_path(token, "/console")).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("expired or was revoked"),
        "{}",
        refused.body
    );
    assert!(fourth.cookies.is_empty());
    let open = browser
        .get(&format!("{console}?action=s3:ListAllMyBuckets&resource=*"))
        .await;
    assert_eq!(
        open.status, 403,
        "open consoles of a revoked session end too: {}",
        open.body
    );
    assert_eq!(get_signin_token(&client, &base, &good).await.0, 403);

    // No secrets and no sign-in tokens in the audit log.
    crate::helpers::assert_audited(
        db.store.as_ref(),
        &[
            ("federation:GetSigninToken", Outcome::Success),
            ("federation:GetSigninToken", Outcome::Denied),
            ("federation:Login", Outcome::Success),
            ("federation:Login", Outcome::Denied),
        ],
        &[&creds.secret_access_key, &creds.session_token, token],
    )
    .await;
}

async fn deep_links(db: TestStore) {
    let base = spawn_state(seeded(&db).await);
    let link = format!("/start/account/{DEMO_ACCOUNT_ID}/role/Developer/console");

    // Signed out: to the sign-in page and back to the link.
    let mut bob = Browser::new(&base);
    let first = bob.get(&link).await;
    assert_eq!(first.status, 303);
    let to_signin = first.location.unwrap();
    assert_eq!(
        to_signin,
        format!(
            "/signin?return_to={}",
            url_encode(&link).replace('+', "%20")
        )
    );
    let signed_in = bob.sign_in("bob", password_of("bob"), &link).await;
    assert_eq!(signed_in.location.as_deref(), Some(link.as_str()));

    // GET shows a confirm button (GET mints nothing); the button opens the console.
    let confirm = bob.get(&link).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("action=\"/start/console\"")
            && confirm.body.contains("value=\"Developer\"")
    );
    assert!(!bob.cookies.iter().any(|(n, _, _)| n.starts_with("rgc_")));
    let csrf = hidden(&confirm.body, "csrf");
    let opened = bob
        .post(
            "/start/console",
            &[
                ("csrf", &csrf),
                ("account", DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    let page = bob.get(opened.location.as_deref().unwrap()).await;
    assert!(page.body.contains(DEVELOPER_ARN));

    // A role bob is not entitled to.
    let refused = bob
        .get(&format!(
            "/start/account/{DEMO_ACCOUNT_ID}/role/Admin/console"
        ))
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("do not grant you role Admin"),
        "{}",
        refused.body
    );
    let audit = db.store.list_audit(50, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "portal:OpenConsole"
        && e.outcome == Outcome::Denied
        && e.actor == "bob"));

    // The fragment form is handled by /start's script, which the page loads.
    let start = bob.get("/start").await;
    assert!(
        start
            .body
            .contains("<script src=\"/static/portal.js\"></script>")
            && start.body.contains("data-role=\"Developer\"")
    );
    let script = bob.get("/static/portal.js").await;
    assert!(script.body.contains("form.console") && script.body.contains("return_to"));
}

/// Replicas sharing Redis: a sign-in token minted on one works once on the other,
/// and the cache holds it for at most 15 minutes.
async fn federation_across_replicas(db: TestStore) {
    let prefix = crate::helpers::redis_prefix();
    let first = crate::helpers::redis_replica(db.store.clone(), &prefix).await;
    seed::seed_demo(first.store.as_ref()).await.unwrap();
    let second = crate::helpers::redis_replica(db.store.clone(), &prefix).await;
    let now = chrono::Utc::now().timestamp();
    let creds = developer_session(&first.sts, now).await.credentials;
    let (a, b) = (spawn_state(first), spawn_state(second));

    let good = session_json(
        &creds.access_key_id,
        &creds.secret_access_key,
        &creds.session_token,
    );
    let client = reqwest::Client::new();
    let (status, body) = get_signin_token(&client, &a, &good).await;
    assert_eq!(status, 200, "{body}");
    let token = body["SigninToken"].as_str().unwrap();

    let mut redis = redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    use sha2::Digest;
    let key = format!(
        "{prefix}:federation-signin:{}",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        (1..=900).contains(&ttl),
        "sign-in tokens live at most 15 minutes: TTL {ttl}"
    );
    let stored: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        !stored.contains(&creds.secret_access_key),
        "the secret key is not stored in the clear"
    );

    let mut on_b = Browser::new(&b);
    let logged_in = on_b.get(&login_path(token, "/console")).await;
    assert_eq!(logged_in.status, 302, "{}", logged_in.body);
    let console = logged_in.location.unwrap();
    let mut on_a = Browser::new(&a);
    on_a.cookies = on_b.cookies.clone();
    let page = on_a.get(&console).await;
    assert_eq!(page.status, 200, "a console opened on B works on A");
    assert!(page.body.contains(DEVELOPER_ARN));
    let again = Browser::new(&a).get(&login_path(token, "/console")).await;
    assert_eq!(again.status, 403, "used on B, refused on A");

    let (name, _) = console_cookie_of(&console);
    let id = on_b.cookie(&name).unwrap().to_owned();
    let session_key = format!(
        "{prefix}:console-session:{}",
        hex::encode(sha2::Sha256::digest(id.as_bytes()))
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(&session_key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= creds.expiration.timestamp() - now,
        "console sessions end with the role session: TTL {ttl}"
    );

    crate::helpers::delete_redis_prefix(&prefix).await;
}

// ---------------------------------------------------------------------------------
// Per-account console destinations.

const OTHER_ACCOUNT: &str = "210987654321";

fn destinations(list: &[&str]) -> Vec<ConsoleDestination> {
    list.iter()
        .map(|d| ConsoleDestination::parse(d).unwrap())
        .collect()
}

async fn console_destinations_in_the_store(db: TestStore) {
    let store = &db.store;
    let demo = AccountId::parse(DEMO_ACCOUNT_ID).unwrap();
    store.create_account(&demo, "demo").await.unwrap();
    assert!(
        store.console_destinations(&demo).await.unwrap().is_empty(),
        "default: only the own console"
    );
    let saved = store
        .set_console_destinations(
            &demo,
            &destinations(&[
                "https://good.example.com/app",
                "https://GOOD.example.com/app",
                "http://127.0.0.1:9000/",
            ]),
        )
        .await
        .unwrap();
    let saved: Vec<&str> = saved.iter().map(ConsoleDestination::as_str).collect();
    assert_eq!(
        saved,
        ["https://good.example.com/app", "http://127.0.0.1:9000/"],
        "normalised, duplicates dropped, order kept"
    );
    let read = store.console_destinations(&demo).await.unwrap();
    assert_eq!(
        read.iter()
            .map(ConsoleDestination::as_str)
            .collect::<Vec<_>>(),
        saved
    );
    let too_many: Vec<String> = (0..=ConsoleDestination::MAX_PER_ACCOUNT)
        .map(|i| format!("https://app{i}.example.com/"))
        .collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let error = store
        .set_console_destinations(&demo, &destinations(&too_many))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "ValidationError", "{error}");
    assert!(error.to_string().contains("at most 20"), "{error}");
    let missing = AccountId::parse(OTHER_ACCOUNT).unwrap();
    assert_eq!(
        store
            .set_console_destinations(&missing, &[])
            .await
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    assert_eq!(
        store
            .console_destinations(&missing)
            .await
            .unwrap_err()
            .code(),
        "NoSuchEntity"
    );
    store.set_console_destinations(&demo, &[]).await.unwrap();
    assert!(store.console_destinations(&demo).await.unwrap().is_empty());
    // Entries are validated when parsed, with the reason in the message.
    let error = ConsoleDestination::parse("https://*.example.com/")
        .unwrap_err()
        .to_string();
    assert!(error.contains("wildcard"), "{error}");
}

/// A fresh sign-in token for bob's Developer session.
async fn fresh_token(client: &reqwest::Client, base: &str, session: &str) -> String {
    let (status, body) = get_signin_token(client, base, session).await;
    assert_eq!(status, 200, "{body}");
    body["SigninToken"].as_str().unwrap().to_owned()
}

async fn external_console_destinations(db: TestStore) {
    let state = seeded(&db).await;
    let demo = AccountId::parse(DEMO_ACCOUNT_ID).unwrap();
    state
        .store
        .set_console_destinations(&demo, &destinations(&["https://good.example.com/app"]))
        .await
        .unwrap();
    let other = AccountId::parse(OTHER_ACCOUNT).unwrap();
    state.store.create_account(&other, "other").await.unwrap();
    state
        .store
        .set_console_destinations(&other, &destinations(&["https://other-only.example.com/"]))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let creds = developer_session(&state.sts, now).await.credentials;
    let session = session_json(
        &creds.access_key_id,
        &creds.secret_access_key,
        &creds.session_token,
    );
    let base = spawn_state(state.clone());
    let client = reqwest::Client::new();
    let token = fresh_token(&client, &base, &session).await;

    // Refused, with the token kept: lookalikes, prefix and user-info tricks, another
    // account's entry, other schemes, scheme-relative and relative paths.
    let mut browser = Browser::new(&base);
    for evil in [
        "https://good.example.com.evil.example/app",
        "https://good.example.com@evil.example/app",
        "https://evil.example/https://good.example.com/app",
        "https://good.example.com/apples",
        "https://good.example.com/app/../admin",
        "https://good.example.com/app/..%2fadmin",
        "https://good.example.com:8443/app",
        "http://good.example.com/app",
        "https://other-only.example.com/",
        "javascript:alert(document.cookie)",
        "//good.example.com/app",
        "/start",
    ] {
        let refused = browser.get(&login_path(&token, evil)).await;
        assert_eq!(refused.status, 400, "{evil}: {}", refused.body);
        assert!(
            refused.body.contains("Destination not allowed"),
            "{evil}: {}",
            refused.body
        );
        assert!(
            refused.location.is_none() && browser.cookies.is_empty(),
            "{evil}"
        );
    }
    let audit = db.store.list_audit(100, None).await.unwrap();
    let unlisted: Vec<_> = audit
        .iter()
        .filter(|e| {
            e.action == "federation:Login"
                && e.outcome == Outcome::Denied
                && e.details["reason"] == "Destination is not on the account's console destinations"
        })
        .collect();
    assert!(
        unlisted
            .iter()
            .any(|e| e.target == "https://other-only.example.com/"
                && e.details["account"] == DEMO_ACCOUNT_ID),
        "the other account's entry is refused for this account: {unlisted:?}"
    );
    assert!(
        audit.iter().any(|e| e.action == "federation:Login"
            && e.outcome == Outcome::Denied
            && e.target == "javascript:alert(document.cookie)"),
        "refusals before the token are audited too"
    );

    // Allowed: a console session, and a 302 to the destination itself.
    let allowed = browser
        .get(&login_path(
            &token,
            "https://good.example.com/app/dashboards?id=7",
        ))
        .await;
    assert_eq!(allowed.status, 302, "{}", allowed.body);
    assert_eq!(
        allowed.location.as_deref(),
        Some("https://good.example.com/app/dashboards?id=7")
    );
    let (_, cookie_path, _) = browser
        .cookies
        .iter()
        .find(|(n, _, _)| n.starts_with("rgc_"))
        .cloned()
        .expect("a console session cookie");
    let console = browser.get(&cookie_path).await;
    assert_eq!(console.status, 200, "{}", console.body);
    assert!(console.body.contains(DEVELOPER_ARN));
    let audit = db.store.list_audit(100, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "federation:Login"
        && e.outcome == Outcome::Success
        && e.details["destination"] == "https://good.example.com/app/dashboards?id=7"));
    // The token was used by that login, and only then.
    let again = Browser::new(&base)
        .get(&login_path(&token, "https://good.example.com/app"))
        .await;
    assert_eq!(again.status, 403, "{}", again.body);

    // The default is still Rolegate's own console.
    for destination in [None, Some("/console")] {
        let token = fresh_token(&client, &base, &session).await;
        let path = match destination {
            Some(d) => login_path(&token, d),
            None => format!(
                "/federation?Action=login&SigninToken={}",
                url_encode(&token)
            ),
        };
        let mut own = Browser::new(&base);
        let page = own.get(&path).await;
        assert_eq!(page.status, 302, "{}", page.body);
        let location = page.location.unwrap();
        assert!(location.starts_with("/console/"), "{location}");
        assert_eq!(own.get(&location).await.status, 200);
    }

    // Removing the entry refuses the destination again.
    state
        .store
        .set_console_destinations(&demo, &[])
        .await
        .unwrap();
    let token = fresh_token(&client, &base, &session).await;
    let refused = Browser::new(&base)
        .get(&login_path(&token, "https://good.example.com/app"))
        .await;
    assert_eq!(refused.status, 400);
}

// ---------------------------------------------------------------------------------
// Session tags from user attributes.

/// Signs `user` in, takes "Access keys" for `role`, and opens a console with those
/// keys through the federation endpoint; returns the browser and the console path.
async fn console_from_access_keys(base: &str, user: &str, role: &str) -> (Browser, String) {
    let mut browser = Browser::new(base);
    assert_eq!(
        browser
            .sign_in(user, password_of(user), "/start")
            .await
            .status,
        303
    );
    let start = browser.get("/start").await;
    let keys = browser
        .post(
            "/start/credentials",
            &[
                ("csrf", &hidden(&start.body, "csrf")),
                ("account", DEMO_ACCOUNT_ID),
                ("role", role),
            ],
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    let (key, secret, token) = exported_keys(&keys.body);
    let client = reqwest::Client::new();
    let signin = fresh_token(&client, base, &session_json(&key, &secret, &token)).await;
    let opened = browser.get(&login_path(&signin, "/console")).await;
    assert_eq!(opened.status, 302, "{}", opened.body);
    let console = opened.location.unwrap();
    (browser, console)
}

async fn directory_attributes_as_session_tags(db: TestStore) {
    let state = seeded(&db).await;
    let demo = AccountId::parse(DEMO_ACCOUNT_ID).unwrap();
    // ReadOnly may read objects under its session's own Email tag only.
    state
        .store
        .put_role_policy(
            &demo,
            &RoleName::parse("ReadOnly").unwrap(),
            &PolicyName::parse("OwnTaggedPrefix").unwrap(),
            &serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::tagged/${aws:PrincipalTag/Email}/*"
                }]
            })
            .to_string(),
        )
        .await
        .unwrap();
    let base = spawn_state(state.clone());

    // The dev seed tags directory users with Email.
    let (mut carol, console) = console_from_access_keys(&base, "carol", "ReadOnly").await;
    let page = carol.get(&console).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<code>Email</code> = <code>carol@example.com</code>"),
        "{}",
        page.body
    );
    let own = carol
        .check(
            &console,
            "s3:GetObject",
            "arn:aws:s3:::tagged/carol@example.com/report.csv",
            "",
        )
        .await;
    assert_eq!(decision(&own), "Allowed", "{}", own.body);
    let others = carol
        .check(
            &console,
            "s3:GetObject",
            "arn:aws:s3:::tagged/alice@example.com/report.csv",
            "",
        )
        .await;
    assert_ne!(decision(&others), "Allowed");

    // Configured tags: a valid one, one whose attribute does not exist (skipped).
    state
        .store
        .upsert_identity_source(&NewIdentitySource {
            id: seed::DIRECTORY_SOURCE_ID.into(),
            kind: IdentitySourceKind::Directory,
            display_name: "Rolegate directory".into(),
            config: serde_json::json!({
                "session_tags": { "Name": "display_name", "User": "user_name", "Nope": "no_such" }
            }),
            enabled: true,
        })
        .await
        .unwrap();
    let (mut carol, console) = console_from_access_keys(&base, "carol", "ReadOnly").await;
    let page = carol.get(&console).await;
    assert!(
        page.body
            .contains("<code>Name</code> = <code>Carol Checker</code>")
            && page.body.contains("<code>User</code> = <code>carol</code>")
            && !page.body.contains("<code>Nope</code>")
            && !page.body.contains("<code>Email</code>"),
        "{}",
        page.body
    );

    // Without session_tags: no tags, and the tag-based grant no longer applies.
    state
        .store
        .upsert_identity_source(&NewIdentitySource {
            id: seed::DIRECTORY_SOURCE_ID.into(),
            kind: IdentitySourceKind::Directory,
            display_name: "Rolegate directory".into(),
            config: serde_json::json!({}),
            enabled: true,
        })
        .await
        .unwrap();
    let (mut carol, console) = console_from_access_keys(&base, "carol", "ReadOnly").await;
    let page = carol.get(&console).await;
    assert!(page.body.contains("Session tags"), "{}", page.body);
    assert!(!page.body.contains("<code>Email</code>"), "{}", page.body);
    let own = carol
        .check(
            &console,
            "s3:GetObject",
            "arn:aws:s3:::tagged/carol@example.com/report.csv",
            "",
        )
        .await;
    assert_ne!(decision(&own), "Allowed", "{}", own.body);
}

both_backends!(
    portal_console_and_can_i,
    federation_endpoint,
    deep_links,
    federation_across_replicas,
    console_destinations_in_the_store,
    external_console_destinations,
    directory_attributes_as_session_tags
);
