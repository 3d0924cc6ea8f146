//! `rolegate login`'s server side with the real AWS clients: the device authorization
//! grant in the AWS SSO-OIDC shape, the portal's device approval page, and the SSO
//! portal API that the AWS CLI and boto3 call for role credentials.

use std::path::Path;
use std::process::Output;

use rolegate::iam::{AccountId, RoleName};
use rolegate::seed;
use rolegate::store::{NewRole, Outcome};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state, venv_bin};
use crate::web_client::{self, Browser, Page, hidden, password_of};

const SANDBOX_ACCOUNT: &str = "210987654321";
const START_URL: &str = "https://d-0000000000.awsapps.com/start";

// ---------------------------------------------------------------------------------
// Fixtures

impl Browser {
    /// Follows the approval link signed out: sign-in, then back to the link.
    pub(crate) async fn sign_in_via(&mut self, path: &str, user: &str) -> Page {
        let first = self.get(path).await;
        assert_eq!(first.status, 303, "{}", first.body);
        let to_signin = first.location.unwrap();
        let form = self.get(&to_signin).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let signed_in = self
            .post(
                "/signin/directory",
                &[
                    ("csrf", &hidden(&form.body, "csrf")),
                    ("username", user),
                    ("password", password_of(user)),
                    (
                        "return_to",
                        &html_unescape(&hidden(&form.body, "return_to")),
                    ),
                ],
            )
            .await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        let back = signed_in.location.unwrap();
        assert_eq!(back, path, "the sign-in returns to the approval link");
        self.get(&back).await
    }
}

/// An attribute value as the browser reads it (askama escapes `&` as `&#38;`).
fn html_unescape(value: &str) -> String {
    value
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
}

/// The demo seed plus a second account where alice's `developers` group has a role.
async fn seeded(db: &TestStore) -> rolegate::web::AppState {
    let state = web_client::seeded(db).await;
    let account = AccountId::parse(SANDBOX_ACCOUNT).unwrap();
    state
        .store
        .create_account(&account, "sandbox")
        .await
        .unwrap();
    let role = NewRole::new(
        account,
        RoleName::parse("Sandbox").unwrap(),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{SANDBOX_ACCOUNT}:root")},
            "Action": "sts:AssumeRole"}]})
        .to_string(),
    );
    state.store.create_role(&role).await.unwrap();
    crate::helpers::grant_group(
        &state,
        "directory",
        "developers",
        SANDBOX_ACCOUNT,
        "Sandbox",
    )
    .await;
    state
}

/// A HOME for the AWS clients: CLI v1 must not fetch URL-valued parameters.
pub(crate) fn aws_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-1\ncli_follow_urlparam = false\n",
    )
    .unwrap();
    home
}

/// A venv program with only the environment it needs, pointed at Rolegate.
fn command(program: &str, home: &Path, base: &str) -> std::process::Command {
    let mut command = std::process::Command::new(venv_bin(program));
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("AWS_ENDPOINT_URL_SSO_OIDC", base)
        .env("AWS_ENDPOINT_URL_SSO", base)
        .env("AWS_ENDPOINT_URL_STS", base)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn aws(home: &Path, base: &str, args: &[&str]) -> Output {
    command("aws", home, base)
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails_with(out: &Output, exception: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected {exception}, got success");
    assert!(
        stderr.contains(&format!("({exception})")),
        "expected {exception}: {stderr}"
    );
    stderr
}

/// Calls an SSO-OIDC operation over plain HTTP: (status, x-amzn-ErrorType, body).
async fn oidc(base: &str, path: &str, body: &Value) -> (u16, String, Value) {
    let (status, kind, _, body) = raw(reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body))
    .await;
    (status, kind, body)
}

/// Asserts an SSO-OIDC error as botocore needs it: status, typed header, OAuth body.
fn assert_oidc_error(
    (status, kind, body): &(u16, String, Value),
    exception: &str,
    expected_status: u16,
    error: &str,
) {
    assert_eq!(*status, expected_status, "{kind} {body}");
    assert_eq!(
        kind,
        &format!("{exception}:http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/")
    );
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().unwrap().len() > 5);
}

pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) secret: String,
}

async fn register(base: &str, name: &str) -> Client {
    let (status, _, body) = oidc(
        base,
        "/client/register",
        &json!({"clientName": name, "clientType": "public", "scopes": ["sso:account:access"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    Client {
        id: body["clientId"].as_str().unwrap().to_owned(),
        secret: body["clientSecret"].as_str().unwrap().to_owned(),
    }
}

/// StartDeviceAuthorization over HTTP: (device code, user code).
async fn start_device(base: &str, client: &Client) -> (String, String) {
    let (status, _, body) = oidc(
        base,
        "/device_authorization",
        &json!({"clientId": client.id, "clientSecret": client.secret, "startUrl": START_URL}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["deviceCode"].as_str().unwrap().to_owned(),
        body["userCode"].as_str().unwrap().to_owned(),
    )
}

async fn poll(base: &str, client: &Client, device_code: &str) -> (u16, String, Value) {
    oidc(
        base,
        "/token",
        &json!({"clientId": client.id, "clientSecret": client.secret,
                "grantType": "urn:ietf:params:oauth:grant-type:device_code", "deviceCode": device_code}),
    )
    .await
}

async fn refresh(base: &str, client: &Client, refresh_token: &str) -> (u16, String, Value) {
    oidc(
        base,
        "/token",
        &json!({"clientId": client.id, "clientSecret": client.secret,
                "grantType": "refresh_token", "refreshToken": refresh_token}),
    )
    .await
}

/// Clicks Approve (or Deny) on the confirmation page `page`.
pub(crate) async fn decide(browser: &mut Browser, page: &Page, decision: &str) -> Page {
    assert!(page.body.contains("id=\"approve\""), "{}", page.body);
    assert!(page.body.contains("id=\"deny\""), "{}", page.body);
    browser
        .post(
            "/device",
            &[
                ("csrf", &hidden(&page.body, "csrf")),
                ("user_code", &hidden(&page.body, "user_code")),
                ("confirmed_code", &hidden(&page.body, "confirmed_code")),
                ("decision", decision),
            ],
        )
        .await
}

/// Register, start and approve as `user`: (client, device code, browser).
async fn approved_device(base: &str, user: &str) -> (Client, String, Browser) {
    approved_device_of(base, user, "rolegate-test").await
}

/// [`approved_device`] for a client named `client_name`.
async fn approved_device_of(
    base: &str,
    user: &str,
    client_name: &str,
) -> (Client, String, Browser) {
    let client = register(base, client_name).await;
    let (device_code, user_code) = start_device(base, &client).await;
    let mut browser = Browser::new(base);
    let page = browser
        .sign_in_via(&format!("/device?user_code={user_code}"), user)
        .await;
    let approved = decide(&mut browser, &page, "approve").await;
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );
    (client, device_code, browser)
}

/// Register, start, approve as `user` and exchange: (client, token response).
async fn signed_in_device(base: &str, user: &str) -> (Client, Value, Browser) {
    let (client, device_code, browser) = approved_device(base, user).await;
    let (status, _, tokens) = poll(base, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    (client, tokens, browser)
}

pub(crate) async fn portal_get(
    base: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("x-amz-sso_bearer_token", token);
    }
    let (status, kind, _, body) = raw(request).await;
    (status, kind, body)
}

fn role_names(roles: &Value) -> Vec<String> {
    roles["roleList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["roleName"].as_str().unwrap().to_owned())
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------
// Tests

both_backends!(
    sso_device_login_with_the_aws_cli,
    sso_boto3_refreshes_the_cached_token_and_notices_logout,
    sso_device_approval_refusals_and_rate_limit,
    sso_portal_api_errors_and_shared_paths,
    sso_device_login_across_replicas_through_redis,
    sso_oidc_and_portal_api_wire_edges,
    sso_anonymous_callers_are_rate_limited,
    sso_codes_and_refresh_tokens_are_single_use_under_races,
    sso_tokens_end_when_the_second_factor_changes,
    sso_device_login_completes_right_after_approval,
    sso_device_links_never_spend_approval_attempts,
    sso_replayed_refresh_token_ends_the_whole_login,
    sso_authorization_code_with_pkce_through_boto3,
    sso_authorization_code_refusals,
    sso_start_url_resolves_to_the_aws_shaped_identifier,
    sso_terminal_sign_ins_are_listed_and_revoked,
    sso_terminal_sign_ins_are_listed_and_revoked_through_redis,
);

async fn sso_device_login_with_the_aws_cli(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let home = aws_home();
    let home = home.path();

    let registered = ok_json(&aws(
        home,
        &base,
        &[
            "sso-oidc",
            "register-client",
            "--client-name",
            "aws-cli-test",
            "--client-type",
            "public",
            "--scopes",
            "sso:account:access",
        ],
    ));
    let client_id = registered["clientId"].as_str().unwrap().to_owned();
    let client_secret = registered["clientSecret"].as_str().unwrap().to_owned();
    let expires = registered["clientSecretExpiresAt"].as_i64().unwrap();
    assert!(
        (expires - now_secs() - 90 * 86_400).abs() < 60,
        "{registered}"
    );

    // A tampered secret is refused, as an OIDC error the CLI names.
    let mut tampered = client_secret.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    fails_with(
        &aws(
            home,
            &base,
            &[
                "sso-oidc",
                "start-device-authorization",
                "--client-id",
                &client_id,
                "--client-secret",
                &tampered,
                "--start-url",
                START_URL,
            ],
        ),
        "InvalidClientException",
    );

    let started = ok_json(&aws(
        home,
        &base,
        &[
            "sso-oidc",
            "start-device-authorization",
            "--client-id",
            &client_id,
            "--client-secret",
            &client_secret,
            "--start-url",
            START_URL,
        ],
    ));
    let device_code = started["deviceCode"].as_str().unwrap().to_owned();
    let user_code = started["userCode"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{started}");
    assert!(user_code.chars().enumerate().all(|(i, c)| if i == 4 {
        c == '-'
    } else {
        "BCDFGHJKLMNPQRSTVWXZ".contains(c)
    }));
    assert_eq!(started["verificationUri"], format!("{base}/device"));
    assert_eq!(
        started["verificationUriComplete"],
        format!("{base}/device?user_code={user_code}")
    );
    assert_eq!(started["expiresIn"], 600);
    assert_eq!(started["interval"], 1);
    // Never taken for a flag on a command line (`--device-code -x...`).
    assert!(
        started["deviceCode"]
            .as_str()
            .is_some_and(|code| code.starts_with("rgdc-")),
        "{started}"
    );

    let create_token = |home: &Path| {
        aws(
            home,
            &base,
            &[
                "sso-oidc",
                "create-token",
                "--client-id",
                &client_id,
                "--client-secret",
                &client_secret,
                "--grant-type",
                "urn:ietf:params:oauth:grant-type:device_code",
                "--device-code",
                &device_code,
            ],
        )
    };
    let pending = fails_with(&create_token(home), "AuthorizationPendingException");
    assert!(pending.contains("pending"), "{pending}");

    // alice opens the link signed out, signs in and lands back on it.
    let mut alice = Browser::new(&base);
    let page = alice
        .sign_in_via(&format!("/device?user_code={user_code}"), "alice")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("aws-cli-test"), "client name shown");
    assert!(page.body.contains("id=\"user_code\""));
    assert_eq!(hidden(&page.body, "user_code"), user_code);
    let approved = decide(&mut alice, &page, "approve").await;
    assert_eq!(approved.status, 200);
    assert!(
        approved
            .body
            .contains("Device approved — return to your terminal"),
        "{}",
        approved.body
    );

    let tokens = ok_json(&create_token(home));
    let access_token = tokens["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(tokens["tokenType"], "Bearer");
    let expires_in = tokens["expiresIn"].as_i64().unwrap();
    assert!((3500..=3600).contains(&expires_in), "{tokens}");
    assert!(tokens["refreshToken"].as_str().unwrap().len() > 30);
    // A device code is good for one token.
    fails_with(&create_token(home), "InvalidGrantException");

    // The accounts and roles are exactly alice's, page by page.
    let accounts = ok_json(&aws(
        home,
        &base,
        &[
            "sso",
            "list-accounts",
            "--access-token",
            &access_token,
            "--page-size",
            "1",
        ],
    ));
    assert_eq!(
        accounts["accountList"],
        json!([
            {"accountId": seed::DEMO_ACCOUNT_ID, "accountName": "demo"},
            {"accountId": SANDBOX_ACCOUNT, "accountName": "sandbox"},
        ])
    );
    let roles = ok_json(&aws(
        home,
        &base,
        &[
            "sso",
            "list-account-roles",
            "--access-token",
            &access_token,
            "--account-id",
            seed::DEMO_ACCOUNT_ID,
            "--page-size",
            "1",
        ],
    ));
    assert_eq!(role_names(&roles), ["Admin", "Developer", "ReadOnly"]);
    assert!(
        roles["roleList"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["accountId"] == seed::DEMO_ACCOUNT_ID)
    );

    // Role credentials work against Rolegate's STS as alice's role session.
    let creds = ok_json(&aws(
        home,
        &base,
        &[
            "sso",
            "get-role-credentials",
            "--access-token",
            &access_token,
            "--account-id",
            seed::DEMO_ACCOUNT_ID,
            "--role-name",
            "Developer",
        ],
    ))["roleCredentials"]
        .clone();
    let expiration_ms = creds["expiration"].as_i64().unwrap();
    assert!(
        expiration_ms > (now_secs() + 3600) * 1000,
        "epoch milliseconds, well beyond 15 minutes: {creds}"
    );
    let identity = ok_json(
        &command("aws", home, &base)
            .env("AWS_ACCESS_KEY_ID", creds["accessKeyId"].as_str().unwrap())
            .env(
                "AWS_SECRET_ACCESS_KEY",
                creds["secretAccessKey"].as_str().unwrap(),
            )
            .env("AWS_SESSION_TOKEN", creds["sessionToken"].as_str().unwrap())
            .args(["sts", "get-caller-identity", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{}:assumed-role/Developer/alice@example.com",
            seed::DEMO_ACCOUNT_ID
        )
    );

    // A role alice is not entitled to.
    let refused = fails_with(
        &aws(
            home,
            &base,
            &[
                "sso",
                "get-role-credentials",
                "--access-token",
                &access_token,
                "--account-id",
                seed::DEMO_ACCOUNT_ID,
                "--role-name",
                "DemoWorkload",
            ],
        ),
        "ForbiddenException",
    );
    assert!(refused.contains("No access"), "{refused}");

    // Logout ends the token (and its refresh token).
    let out = aws(
        home,
        &base,
        &["sso", "logout", "--access-token", &access_token],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails_with(
        &aws(
            home,
            &base,
            &["sso", "list-accounts", "--access-token", &access_token],
        ),
        "UnauthorizedException",
    );
    fails_with(
        &aws(
            home,
            &base,
            &[
                "sso-oidc",
                "create-token",
                "--client-id",
                &client_id,
                "--client-secret",
                &client_secret,
                "--grant-type",
                "refresh_token",
                "--refresh-token",
                tokens["refreshToken"].as_str().unwrap(),
            ],
        ),
        "InvalidGrantException",
    );

    crate::helpers::assert_audited(
        db.store.as_ref(),
        &[
            ("sso:StartDeviceAuthorization", Outcome::Success),
            ("sso:ApproveDevice", Outcome::Success),
            ("sso:CreateToken", Outcome::Success),
            ("sso:CreateToken", Outcome::Failure),
            ("sso:GetRoleCredentials", Outcome::Success),
            ("sso:GetRoleCredentials", Outcome::Denied),
            ("sso:Logout", Outcome::Success),
        ],
        &[
            &access_token,
            tokens["refreshToken"].as_str().unwrap(),
            &device_code,
            &client_secret,
            creds["secretAccessKey"].as_str().unwrap(),
        ],
    )
    .await;
}

const BOTO3_SCRIPT: &str = r#"
import json, boto3
session = boto3.Session(profile_name="rolegate")
print(json.dumps(session.client("sts").get_caller_identity()))
"#;

async fn sso_boto3_refreshes_the_cached_token_and_notices_logout(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let (client, tokens, _) = signed_in_device(&base, "alice").await;
    let home = aws_home();
    let home = home.path();
    std::fs::write(
        home.join(".aws/config"),
        format!(
            "[profile rolegate]\nsso_session = corp\nsso_account_id = {}\nsso_role_name = Admin\nregion = eu-west-1\n\n\
             [sso-session corp]\nsso_start_url = {START_URL}\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n",
            seed::DEMO_ACCOUNT_ID
        ),
    )
    .unwrap();
    // What a login (CLI v2 or `rolegate login`) leaves behind, 5 minutes from expiry.
    let cache_dir = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache_dir).unwrap();
    // sha1("corp"), the cache key botocore uses for sso-session "corp".
    let cache_file = cache_dir.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
    let in_minutes = |m: i64| {
        chrono::DateTime::from_timestamp(now_secs() + m * 60, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    std::fs::write(
        &cache_file,
        json!({
            "startUrl": START_URL, "region": "us-east-1",
            "accessToken": tokens["accessToken"], "expiresAt": in_minutes(5),
            "clientId": client.id, "clientSecret": client.secret,
            "registrationExpiresAt": in_minutes(60 * 24 * 80),
            "refreshToken": tokens["refreshToken"],
        })
        .to_string(),
    )
    .unwrap();

    let run = || {
        command("python", home, &base)
            .args(["-c", BOTO3_SCRIPT])
            .output()
            .unwrap()
    };
    let identity = ok_json(&run());
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{}:assumed-role/Admin/alice@example.com",
            seed::DEMO_ACCOUNT_ID
        )
    );
    // boto3 refreshed the token through our refresh grant and rewrote its cache.
    let cached: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    assert_ne!(cached["accessToken"], tokens["accessToken"], "{cached}");
    assert_ne!(cached["refreshToken"], tokens["refreshToken"], "rotated");
    let new_expiry = chrono::DateTime::parse_from_rfc3339(cached["expiresAt"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(new_expiry > now_secs() + 50 * 60, "{cached}");

    // After Logout, boto3 tells the user to sign in again.
    let out = aws(
        home,
        &base,
        &[
            "sso",
            "logout",
            "--access-token",
            cached["accessToken"].as_str().unwrap(),
            "--region",
            "us-east-1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UnauthorizedSSOTokenError")
            && stderr.contains(
                "The SSO session associated with this profile has expired or is otherwise invalid"
            ),
        "{stderr}"
    );
    // The old refresh token is spent (see also sso_replayed_refresh_token_ends_the_whole_login).
    assert_oidc_error(
        &refresh(&base, &client, tokens["refreshToken"].as_str().unwrap()).await,
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
}

async fn sso_device_approval_refusals_and_rate_limit(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let client = register(&base, "refusals-test").await;

    // Signed out: the link survives the sign-in redirect, URL-encoded.
    let (_, user_code) = start_device(&base, &client).await;
    let mut alice = Browser::new(&base);
    let first = alice.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(first.status, 303);
    assert_eq!(
        first.location.as_deref(),
        Some(
            format!(
                "/signin?return_to=%2Fdevice%3Fuser%5Fcode%3D{}",
                user_code.replace('-', "%2D")
            )
            .as_str()
        )
    );

    // Denied in the browser: the terminal is told so.
    let (device_code, user_code) = start_device(&base, &client).await;
    let page = alice
        .sign_in_via(&format!("/device?user_code={user_code}"), "alice")
        .await;
    let denied = decide(&mut alice, &page, "deny").await;
    assert_eq!(denied.status, 200);
    assert!(denied.body.contains("Request denied"), "{}", denied.body);
    assert_oidc_error(
        &poll(&base, &client, &device_code).await,
        "AccessDeniedException",
        400,
        "access_denied",
    );

    // Pending; a burst of two polls is tolerated (the AWS CLI v2 polls twice back to
    // back), a third within the interval is too fast.
    let (device_code, user_code) = start_device(&base, &client).await;
    for _ in 0..2 {
        assert_oidc_error(
            &poll(&base, &client, &device_code).await,
            "AuthorizationPendingException",
            400,
            "authorization_pending",
        );
    }
    assert_oidc_error(
        &poll(&base, &client, &device_code).await,
        "SlowDownException",
        400,
        "slow_down",
    );
    // Another client cannot exchange this device code.
    let other = register(&base, "other-client").await;
    assert_oidc_error(
        &poll(&base, &other, &device_code).await,
        "InvalidClientException",
        401,
        "invalid_client",
    );

    // A form without the session's CSRF token approves nothing.
    let typed = user_code.to_lowercase().replace('-', " ");
    let page = alice
        .get(&format!("/device?user_code={}", typed.replace(' ', "+")))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(hidden(&page.body, "user_code"), user_code, "normalised");
    let forged = alice
        .post(
            "/device",
            &[
                ("user_code", user_code.as_str()),
                ("confirmed_code", user_code.as_str()),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    db.hand.advance(std::time::Duration::from_millis(1100));
    assert_oidc_error(
        &poll(&base, &client, &device_code).await,
        "AuthorizationPendingException",
        400,
        "authorization_pending",
    );
    // Typed without a dash and in lower case, the POST form asks to confirm first.
    let csrf = hidden(&page.body, "csrf");
    let confirm = alice
        .post(
            "/device",
            &[
                ("csrf", csrf.as_str()),
                ("user_code", typed.as_str()),
                ("decision", "continue"),
            ],
        )
        .await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("refusals-test"));
    assert!(confirm.body.contains("id=\"approve\""));

    // Unknown codes: a clear page, each one counted. Links (GET) spend their own
    // budget, never the approvals': once it is spent a link only fills in the form.
    let unknown = alice.get("/device?user_code=BCDF-GHJK").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("unknown or has expired"),
        "{}",
        unknown.body
    );
    assert!(!unknown.body.contains("id=\"approve\""));
    for code in ["BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF"] {
        assert_eq!(
            alice.get(&format!("/device?user_code={code}")).await.status,
            404
        );
    }
    let filled = alice.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(filled.status, 200, "{}", filled.body);
    assert_eq!(hidden(&filled.body, "user_code"), user_code, "filled in");
    assert!(!filled.body.contains("id=\"approve\""), "not looked up");
    // Typed codes (POST): five wrong ones are refused one by one, then even the
    // right one is refused for a while.
    for code in [
        "BBBB-BBBB",
        "CCCC-CCCC",
        "DDDD-DDDD",
        "FFFF-FFFF",
        "GGGG-GGGG",
    ] {
        let wrong = alice
            .post(
                "/device",
                &[
                    ("csrf", csrf.as_str()),
                    ("user_code", code),
                    ("decision", "continue"),
                ],
            )
            .await;
        assert_eq!(wrong.status, 404, "{}", wrong.body);
    }
    let sixth = alice
        .post(
            "/device",
            &[
                ("csrf", csrf.as_str()),
                ("user_code", user_code.as_str()),
                ("decision", "continue"),
            ],
        )
        .await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    assert!(
        sixth.body.contains("Too many wrong codes"),
        "{}",
        sixth.body
    );
    // The limit is alice's, not her browser's: a new sign-in does not reset it.
    let mut again = Browser::new(&base);
    let first = again.get(&format!("/device?user_code={user_code}")).await;
    let form = again.get(first.location.as_deref().unwrap()).await;
    let signed_in = again
        .post(
            "/signin/directory",
            &[
                ("csrf", &hidden(&form.body, "csrf")),
                ("username", "alice"),
                ("password", password_of("alice")),
                ("return_to", "/device"),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303);
    let entry = again.get("/device").await;
    assert_eq!(
        again
            .post(
                "/device",
                &[
                    ("csrf", hidden(&entry.body, "csrf").as_str()),
                    ("user_code", user_code.as_str()),
                    ("decision", "continue"),
                ],
            )
            .await
            .status,
        429
    );
    // bob is not affected and can still approve.
    let mut bob = Browser::new(&base);
    let page = bob
        .sign_in_via(&format!("/device?user_code={user_code}"), "bob")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);

    let audit = db.store.list_audit(200, None).await.unwrap();
    let wrong = audit
        .iter()
        .filter(|e| e.action == "sso:ApproveDevice" && e.outcome == Outcome::Failure)
        .count();
    assert_eq!(wrong, 10, "each wrong code is audited, linked or typed");
    assert!(audit.iter().any(|e| e.action == "sso:ApproveDevice"
        && e.outcome == Outcome::Denied
        && e.details["reason"] == "too many wrong user codes"));
    assert!(audit.iter().any(|e| e.action == "sso:ApproveDevice"
        && e.outcome == Outcome::Denied
        && e.details["decision"] == "deny"));
    let rendered = serde_json::to_string(&audit).unwrap();
    assert!(
        !rendered.contains(&user_code),
        "user codes stay out of the audit log"
    );
}

async fn sso_portal_api_errors_and_shared_paths(db: TestStore) {
    let state = seeded(&db)
        .await
        .with_portal(rolegate::web::PortalSettings {
            session_ttl: std::time::Duration::from_secs(10),
            ..Default::default()
        });
    let base = spawn_state(state);

    // Wire-level OIDC errors.
    assert_oidc_error(
        &oidc(&base, "/client/register", &json!({"clientType": "public"})).await,
        "InvalidRequestException",
        400,
        "invalid_request",
    );
    let response = reqwest::Client::new()
        .post(format!("{base}/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["x-amzn-ErrorType"]
            .to_str()
            .unwrap()
            .starts_with("InvalidRequestException:")
    );
    let client = register(&base, "errors-test").await;
    assert_oidc_error(
        &oidc(
            &base,
            "/token",
            &json!({"clientId": client.id, "clientSecret": client.secret,
                    "grantType": "authorization_code", "code": "x", "redirectUri": "http://127.0.0.1/cb",
                    "codeVerifier": "v".repeat(43)}),
        )
        .await,
        "UnauthorizedClientException",
        400,
        "unauthorized_client",
    );
    assert_oidc_error(
        &poll(&base, &client, "no-such-device-code").await,
        "ExpiredTokenException",
        400,
        "expired_token",
    );
    assert_oidc_error(
        &oidc(
            &base,
            "/device_authorization",
            &json!({"clientId": "rgc-someone-else", "clientSecret": client.secret, "startUrl": START_URL}),
        )
        .await,
        "InvalidClientException",
        401,
        "invalid_client",
    );

    // A session of 10 seconds: tokens never outlive it, refresh stops at its end.
    let (client, tokens, mut alice) = signed_in_device(&base, "alice").await;
    let expires_in = tokens["expiresIn"].as_i64().unwrap();
    assert!((1..=10).contains(&expires_in), "{tokens}");
    let access = tokens["accessToken"].as_str().unwrap();

    // Portal API errors, typed for botocore.
    let (status, kind, body) = portal_get(&base, "/assignment/accounts", None).await;
    assert_eq!(
        (status, kind.as_str()),
        (401, "UnauthorizedException"),
        "{body}"
    );
    assert_eq!(body["message"], "Session token not found or invalid");
    let (status, kind, _) =
        portal_get(&base, "/assignment/accounts?max_result=0", Some(access)).await;
    assert_eq!((status, kind.as_str()), (400, "InvalidRequestException"));
    let (status, kind, _) = portal_get(&base, "/assignment/roles", Some(access)).await;
    assert_eq!((status, kind.as_str()), (400, "InvalidRequestException"));
    let (status, kind, _) = portal_get(
        &base,
        "/assignment/roles?account_id=999999999999",
        Some(access),
    )
    .await;
    assert_eq!((status, kind.as_str()), (404, "ResourceNotFoundException"));
    let (status, kind, body) = portal_get(
        &base,
        &format!(
            "/federation/credentials?account_id={}&role_name=DemoWorkload",
            seed::DEMO_ACCOUNT_ID
        ),
        Some(access),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "ForbiddenException"),
        "{body}"
    );
    let (status, _, body) = portal_get(
        &base,
        &format!(
            "/federation/credentials?account_id={}&role_name=Admin",
            seed::DEMO_ACCOUNT_ID
        ),
        Some(access),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Role credentials are never kept by a browser or a proxy.
    let response = reqwest::Client::new()
        .get(format!(
            "{base}/federation/credentials?account_id={}&role_name=Admin",
            seed::DEMO_ACCOUNT_ID
        ))
        .header("x-amz-sso_bearer_token", access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");

    // The console federation endpoint is still the console's (not the SSO API's).
    let (status, kind, _) = portal_get(&base, "/federation?Action=getSigninToken", None).await;
    assert_ne!(status, 404);
    assert_ne!(kind, "UnauthorizedException");

    // POST /logout: with the bearer header the SSO API, without it the portal form.
    let response = reqwest::Client::new()
        .post(format!("{base}/logout"))
        .header("x-amz-sso_bearer_token", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["x-amzn-ErrorType"],
        "UnauthorizedException"
    );
    let start = alice.get("/start").await;
    assert_eq!(start.status, 200);
    let signed_out = alice
        .post("/logout", &[("csrf", &hidden(&start.body, "csrf"))])
        .await;
    assert_eq!(signed_out.status, 303);
    assert_eq!(signed_out.location.as_deref(), Some("/signin"));
    assert_eq!(alice.get("/start").await.status, 303, "signed out");
    // Signing out of the portal does not end the terminal's login.
    let (status, _, _) = portal_get(&base, "/assignment/accounts", Some(access)).await;
    assert_eq!(status, 200);

    // Past the session's end: the token and its refresh are over.
    db.hand.advance(std::time::Duration::from_secs(11));
    let (status, kind, _) = portal_get(&base, "/assignment/accounts", Some(access)).await;
    assert_eq!((status, kind.as_str()), (401, "UnauthorizedException"));
    assert_oidc_error(
        &refresh(&base, &client, tokens["refreshToken"].as_str().unwrap()).await,
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
}

async fn sso_device_login_across_replicas_through_redis(db: TestStore) {
    let prefix = crate::helpers::redis_prefix();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let state = crate::helpers::redis_replica(db.store.clone(), &prefix).await;
        if bases.is_empty() {
            seed::seed_demo(state.store.as_ref()).await.unwrap();
        }
        bases.push(spawn_state(state));
    }
    let (a, b) = (&bases[0], &bases[1]);

    // Rate-limit counters in Redis: one fixed window, then a fresh one.
    let counters = rolegate::cache::open_cache(
        Some("redis://127.0.0.1:6379/0"),
        &prefix,
        &rolegate::clock::Clock::system(),
    )
    .await
    .unwrap();
    let window = std::time::Duration::from_millis(300);
    assert_eq!(counters.incr("counter", window).await.unwrap(), 1);
    assert_eq!(counters.incr("counter", window).await.unwrap(), 2);
    assert_eq!(
        counters.get("counter").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        counters.incr("counter", window).await.unwrap(),
        1,
        "expired"
    );

    // Registered and started on A, polled on A and B (a burst of two), then too fast
    // on B: the replicas count the polls together.
    let client = register(a, "replicas-test").await;
    let (device_code, user_code) = start_device(a, &client).await;
    for replica in [a, b] {
        assert_oidc_error(
            &poll(replica, &client, &device_code).await,
            "AuthorizationPendingException",
            400,
            "authorization_pending",
        );
    }
    assert_oidc_error(
        &poll(b, &client, &device_code).await,
        "SlowDownException",
        400,
        "slow_down",
    );
    // Approved on B, exchanged on A, used on B.
    let mut alice = Browser::new(b);
    let page = alice
        .sign_in_via(&format!("/device?user_code={user_code}"), "alice")
        .await;
    let approved = decide(&mut alice, &page, "approve").await;
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );
    let (status, _, tokens) = poll(a, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_oidc_error(
        &poll(b, &client, &device_code).await,
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
    let access = tokens["accessToken"].as_str().unwrap();
    let (status, _, roles) = portal_get(
        b,
        &format!("/assignment/roles?account_id={}", seed::DEMO_ACCOUNT_ID),
        Some(access),
    )
    .await;
    assert_eq!(status, 200, "{roles}");
    assert_eq!(role_names(&roles), ["Admin", "Developer", "ReadOnly"]);
    // Refreshed on B; the token works on A.
    let (status, _, renewed) = refresh(b, &client, tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{renewed}");
    let (status, _, _) = portal_get(
        a,
        "/assignment/accounts",
        Some(renewed["accessToken"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    crate::helpers::delete_redis_prefix(&prefix).await;
}

/// (status, x-amzn-ErrorType, Retry-After, body) of any request.
async fn raw(request: reqwest::RequestBuilder) -> (u16, String, Option<String>, Value) {
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (kind, retry_after) = (
        header("x-amzn-ErrorType").unwrap_or_default(),
        header("retry-after"),
    );
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        kind,
        retry_after,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn sso_oidc_and_portal_api_wire_edges(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let http = reqwest::Client::new();

    // Members a newer client sends (and nulls) are ignored, as AWS ignores them.
    let (status, _, body) = oidc(
        &base,
        "/client/register",
        &json!({"clientName": "newer-cli", "clientType": "public", "scopes": null,
                "grantTypes": null, "redirectUris": null, "entitledApplicationArn": null,
                "issuerUrl": START_URL, "somethingNew": {"nested": [1, 2]}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["clientIdIssuedAt"].is_i64(), "{body}");
    assert!(
        body["clientSecretExpiresAt"].as_i64().unwrap() > now_secs() + 80 * 86_400,
        "epoch seconds, ~90 days: {body}"
    );
    let client = Client {
        id: body["clientId"].as_str().unwrap().to_owned(),
        secret: body["clientSecret"].as_str().unwrap().to_owned(),
    };
    let (status, _, body) = oidc(
        &base,
        "/device_authorization",
        &json!({"clientId": client.id, "clientSecret": client.secret, "startUrl": START_URL,
                "scopes": ["sso:account:access"], "extra": null}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["expiresIn"].is_i64() && body["interval"].is_i64(),
        "{body}"
    );

    // A body past the limit: 413, typed, before it is parsed.
    let huge = json!({"clientName": "x".repeat(100 * 1024), "clientType": "public"});
    let (status, kind, _, body) =
        raw(http.post(format!("{base}/client/register")).json(&huge)).await;
    assert_eq!(status, 413, "{body}");
    assert!(kind.starts_with("InvalidRequestException:"), "{kind}");
    assert_eq!(body["error"], "invalid_request");

    // A member of the wrong type is named by position, its value is not echoed.
    let (status, kind, _, body) = raw(http
        .post(format!("{base}/token"))
        .json(&json!({"clientId": client.id, "clientSecret": ["s3cr3t-value-not-echoed"]})))
    .await;
    assert_eq!(status, 400);
    assert!(kind.starts_with("InvalidRequestException:"), "{kind}");
    assert!(
        !body.to_string().contains("s3cr3t-value-not-echoed"),
        "{body}"
    );

    // Other methods on API paths: typed, JSON, not a bare 405.
    for path in ["/client/register", "/device_authorization", "/token"] {
        let (status, kind, _, body) = raw(http.get(format!("{base}{path}"))).await;
        assert_eq!(status, 405, "{path}");
        assert!(
            kind.starts_with("UnknownOperationException:"),
            "{path}: {kind}"
        );
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    for path in [
        "/assignment/accounts",
        "/assignment/roles",
        "/federation/credentials",
    ] {
        let (status, kind, _, body) = raw(http.post(format!("{base}{path}"))).await;
        assert_eq!(
            (status, kind.as_str()),
            (405, "UnknownOperationException"),
            "{path}"
        );
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    // A query the portal API cannot read: typed too.
    let (status, kind, _, body) = raw(http
        .get(format!("{base}/assignment/roles?account_id=1&account_id=2"))
        .header("x-amz-sso_bearer_token", "x"))
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (400, "InvalidRequestException"),
        "{body}"
    );

    // A client name that reorders or hides text is refused.
    for name in ["evil\u{202E}ilc-swa", "aws\u{200B}cli", "tab\there"] {
        assert_oidc_error(
            &oidc(
                &base,
                "/client/register",
                &json!({"clientName": name, "clientType": "public"}),
            )
            .await,
            "InvalidClientMetadataException",
            400,
            "invalid_client_metadata",
        );
    }

    // The approval page names the client and its id, and cannot be framed.
    let (device_code, user_code) = start_device(&base, &client).await;
    let mut alice = Browser::new(&base);
    let page = alice
        .sign_in_via(&format!("/device?user_code={user_code}"), "alice")
        .await;
    assert!(page.body.contains("newer-cli"), "{}", page.body);
    assert!(page.body.contains(&client.id), "{}", page.body);
    let response = http
        .get(format!("{base}/device?user_code={user_code}"))
        .header("cookie", alice.cookie_header("/device"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // Approve names the code that was confirmed: an edited code is confirmed first.
    let (_, other_code) = start_device(&base, &client).await;
    let edited = alice
        .post(
            "/device",
            &[
                ("csrf", &hidden(&page.body, "csrf")),
                ("user_code", &other_code),
                ("confirmed_code", &user_code),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(edited.status, 200);
    assert!(!edited.body.contains("Device approved"), "{}", edited.body);
    assert_eq!(hidden(&edited.body, "confirmed_code"), other_code);
    assert_oidc_error(
        &poll(&base, &client, &device_code).await,
        "AuthorizationPendingException",
        400,
        "authorization_pending",
    );
}

async fn sso_anonymous_callers_are_rate_limited(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let client = register(&base, "limits-test").await;

    // RegisterClient: 60 a minute from one address, then SlowDownException, 429.
    let mut refused = None;
    for i in 1..=61 {
        let answer = oidc(
            &base,
            "/client/register",
            &json!({"clientName": format!("flood-{i}"), "clientType": "public"}),
        )
        .await;
        if answer.0 != 200 {
            refused = Some((i, answer));
            break;
        }
    }
    let (i, answer) = refused.expect("the register limit is reached");
    assert_eq!(i, 60, "59 after the first registration, then refused");
    assert_oidc_error(&answer, "SlowDownException", 429, "slow_down");
    let (_, _, retry_after, _) = raw(reqwest::Client::new()
        .post(format!("{base}/client/register"))
        .json(&json!({"clientName": "again", "clientType": "public"})))
    .await;
    assert_eq!(retry_after.as_deref(), Some("60"));
    // botocore names it (no crash, no retry storm): the user reads what happened.
    let home = aws_home();
    let out = aws(
        home.path(),
        &base,
        &[
            "sso-oidc",
            "register-client",
            "--client-name",
            "cli",
            "--client-type",
            "public",
        ],
    );
    let stderr = fails_with(&out, "SlowDownException");
    assert!(stderr.contains("Too many requests"), "{stderr}");

    // StartDeviceAuthorization has its own budget.
    let mut started = 0;
    loop {
        let answer = oidc(
            &base,
            "/device_authorization",
            &json!({"clientId": client.id, "clientSecret": client.secret, "startUrl": START_URL}),
        )
        .await;
        if answer.0 != 200 {
            assert_oidc_error(&answer, "SlowDownException", 429, "slow_down");
            break;
        }
        started += 1;
        assert!(started <= 60, "no limit on StartDeviceAuthorization");
    }
    assert_eq!(started, 60);

    // Failed CreateToken calls (each one audited) have a budget; then even good
    // polls wait, which device-flow clients do on SlowDownException.
    for _ in 0..60 {
        assert_oidc_error(
            &poll(&base, &client, "no-such-device-code").await,
            "ExpiredTokenException",
            400,
            "expired_token",
        );
    }
    assert_oidc_error(
        &poll(&base, &client, "no-such-device-code").await,
        "SlowDownException",
        429,
        "slow_down",
    );
    let audit = db.store.list_audit(500, None).await.unwrap();
    let failures = audit
        .iter()
        .filter(|e| e.action == "sso:CreateToken" && e.outcome == Outcome::Failure)
        .count();
    assert_eq!(failures, 60, "refused calls write no audit records");
}

async fn sso_codes_and_refresh_tokens_are_single_use_under_races(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let (client, device_code, _alice) = approved_device(&base, "alice").await;
    let client = std::sync::Arc::new(client);

    let polls = (0..8).map(|_| {
        let (base, client, code) = (base.clone(), client.clone(), device_code.clone());
        tokio::spawn(async move { poll(&base, &client, &code).await })
    });
    let mut tokens = Vec::new();
    let handles: Vec<_> = polls.collect();
    for handle in handles {
        let answer = handle.await.unwrap();
        if answer.0 == 200 {
            tokens.push(answer.2);
        } else {
            assert_oidc_error(&answer, "InvalidGrantException", 400, "invalid_grant");
        }
    }
    assert_eq!(tokens.len(), 1, "one device code, one token");
    let refresh_token = tokens[0]["refreshToken"].as_str().unwrap().to_owned();

    let refreshes = (0..8).map(|_| {
        let (base, client, token) = (base.clone(), client.clone(), refresh_token.clone());
        tokio::spawn(async move { refresh(&base, &client, &token).await })
    });
    let mut renewed = 0;
    let handles: Vec<_> = refreshes.collect();
    for handle in handles {
        let answer = handle.await.unwrap();
        if answer.0 == 200 {
            renewed += 1;
        } else {
            assert_oidc_error(&answer, "InvalidGrantException", 400, "invalid_grant");
        }
    }
    assert_eq!(renewed, 1, "one refresh token, one renewal");
}

/// Turning TOTP on ends the terminal sign-ins approved before (as it ends the user's
/// other portal sessions): the access token is refused as after Logout and its
/// refresh token no longer works. Other users' are not affected, and a device
/// approved after the change, from the session that made it, signs in normally.
async fn sso_tokens_end_when_the_second_factor_changes(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let (client, tokens, mut alice) = signed_in_device(&base, "alice").await;
    let (bob_client, bob_tokens, _bob) = signed_in_device(&base, "bob").await;
    let access = tokens["accessToken"].as_str().unwrap();
    let (status, _, _) = portal_get(&base, "/assignment/accounts", Some(access)).await;
    assert_eq!(status, 200);

    // Alice turns TOTP on at /account/mfa, in the session that approved the device.
    let setup = alice.get("/account/mfa").await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let secret = crate::totp::element_text(&setup.body, "totp-secret");
    let code = crate::totp::fresh_code(&secret, &mut std::collections::HashSet::new(), &db).await;
    let on = alice
        .post(
            "/account/mfa",
            &[("csrf", &hidden(&setup.body, "csrf")), ("code", &code)],
        )
        .await;
    assert_eq!(on.status, 303, "{}", on.body);
    assert_eq!(alice.get("/start").await.status, 200, "her session goes on");

    let (status, kind, body) = portal_get(&base, "/assignment/accounts", Some(access)).await;
    assert_eq!(
        (status, kind.as_str()),
        (401, "UnauthorizedException"),
        "{body}"
    );
    let (status, kind, _) = portal_get(
        &base,
        &format!(
            "/federation/credentials?role_name=Developer&account_id={}",
            seed::DEMO_ACCOUNT_ID
        ),
        Some(access),
    )
    .await;
    assert_eq!((status, kind.as_str()), (401, "UnauthorizedException"));
    assert_oidc_error(
        &refresh(&base, &client, tokens["refreshToken"].as_str().unwrap()).await,
        "InvalidGrantException",
        400,
        "invalid_grant",
    );

    // Bob's sign-in is his own.
    let bob_access = bob_tokens["accessToken"].as_str().unwrap();
    let (status, _, body) = portal_get(&base, "/assignment/accounts", Some(bob_access)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, renewed) = refresh(
        &base,
        &bob_client,
        bob_tokens["refreshToken"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");

    // Approved after the change from the same (renewed) session: a working login.
    let client = register(&base, "after-the-change").await;
    let (device_code, user_code) = start_device(&base, &client).await;
    let page = alice.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let approved = decide(&mut alice, &page, "approve").await;
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );
    let (status, _, tokens) = poll(&base, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _, body) = portal_get(
        &base,
        "/assignment/accounts",
        tokens["accessToken"].as_str(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, renewed) =
        refresh(&base, &client, tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{renewed}");
}

/// Runs one boto3 call in the venv against Rolegate: `{"ok": response}` or
/// `{"error": code, "message": ...}`.
const BOTO3_CALL: &str = r#"
import json, sys, boto3, botocore.exceptions
args = json.loads(sys.argv[1])
client = boto3.client(args.pop("service"), region_name="us-east-1")
operation = args.pop("operation")
try:
    response = getattr(client, operation)(**args)
    response.pop("ResponseMetadata", None)
    print(json.dumps({"ok": response}, default=str))
except botocore.exceptions.ClientError as e:
    print(json.dumps({"error": e.response["Error"]["Code"], "message": e.response["Error"].get("Message")}))
"#;

pub(crate) fn boto3_call(home: &Path, base: &str, call: &Value) -> Value {
    ok_json(
        &command("python", home, base)
            .args(["-c", BOTO3_CALL, &call.to_string()])
            .output()
            .unwrap(),
    )
}

/// Issue 9: the AWS CLI v2 polls twice back to back; both are answered as pending
/// (not SlowDown, which would add 5 s to every login), and the poll right after the
/// approval gets the token. A client that really polls too fast is slowed down.
async fn sso_device_login_completes_right_after_approval(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let client = register(&base, "burst-test").await;
    let (device_code, user_code) = start_device(&base, &client).await;
    for _ in 0..2 {
        assert_oidc_error(
            &poll(&base, &client, &device_code).await,
            "AuthorizationPendingException",
            400,
            "authorization_pending",
        );
    }
    assert_oidc_error(
        &poll(&base, &client, &device_code).await,
        "SlowDownException",
        400,
        "slow_down",
    );
    let mut alice = Browser::new(&base);
    let page = alice
        .sign_in_via(&format!("/device?user_code={user_code}"), "alice")
        .await;
    let approved = decide(&mut alice, &page, "approve").await;
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );
    let approved_at = std::time::Instant::now();
    let (status, _, tokens) = poll(&base, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["accessToken"].as_str().is_some());
    assert!(approved_at.elapsed() < std::time::Duration::from_secs(1));

    // A second device: two polls, approval, and the CLI's back-to-back pair.
    let (device_code, user_code) = start_device(&base, &client).await;
    for _ in 0..2 {
        assert_eq!(poll(&base, &client, &device_code).await.0, 400);
    }
    // The slots free themselves after the interval: polling once a second goes on.
    db.hand.advance(std::time::Duration::from_millis(1050));
    for _ in 0..2 {
        assert_oidc_error(
            &poll(&base, &client, &device_code).await,
            "AuthorizationPendingException",
            400,
            "authorization_pending",
        );
    }
    let page = alice.get(&format!("/device?user_code={user_code}")).await;
    decide(&mut alice, &page, "approve").await;
    let (status, _, tokens) = poll(&base, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
}

/// Issue 15 item 6: a GET (any site can make the person's browser send one) must not
/// spend the person's device-approval attempts.
async fn sso_device_links_never_spend_approval_attempts(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let client = register(&base, "links-test").await;
    let (device_code, user_code) = start_device(&base, &client).await;
    let mut alice = Browser::new(&base);
    let entry = alice.sign_in_via("/device", "alice").await;
    let csrf = hidden(&entry.body, "csrf");
    // Six navigations with wrong codes, as another site's links would make them (the
    // session cookie is SameSite=Lax, so a top-level cross-site GET carries it).
    for code in [
        "BBBB-BBBB",
        "CCCC-CCCC",
        "DDDD-DDDD",
        "FFFF-FFFF",
        "GGGG-GGGG",
        "HHHH-HHHH",
    ] {
        let page = alice.get(&format!("/device?user_code={code}")).await;
        assert!(matches!(page.status, 200 | 404), "{}", page.body);
        assert!(!page.body.contains("id=\"approve\""));
        assert!(!page.body.contains("Too many wrong codes"), "{}", page.body);
    }
    // alice's own POST with the right code still approves.
    let approved = alice
        .post(
            "/device",
            &[
                ("csrf", csrf.as_str()),
                ("user_code", user_code.as_str()),
                ("confirmed_code", user_code.as_str()),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );
    let (status, _, tokens) = poll(&base, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
}

/// Issue 15 item 8: presenting a rotated refresh token again (OAuth 2.0 Security BCP
/// §4.14.2) ends the whole login: the newer refresh token and the access tokens,
/// through boto3's sso-oidc client.
async fn sso_replayed_refresh_token_ends_the_whole_login(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let (client, tokens, _) = signed_in_device(&base, "alice").await;
    let home = aws_home();
    let home = home.path();
    let refresh_with = |token: &str| {
        boto3_call(
            home,
            &base,
            &json!({"service": "sso-oidc", "operation": "create_token",
                    "clientId": client.id, "clientSecret": client.secret,
                    "grantType": "refresh_token", "refreshToken": token}),
        )
    };
    let first_refresh = tokens["refreshToken"].as_str().unwrap();
    let renewed = refresh_with(first_refresh);
    let renewed = &renewed["ok"];
    let new_access = renewed["accessToken"].as_str().unwrap();
    let new_refresh = renewed["refreshToken"].as_str().unwrap();
    assert_ne!(new_refresh, first_refresh, "rotated");
    let accounts = |token: &str| {
        boto3_call(
            home,
            &base,
            &json!({"service": "sso", "operation": "list_accounts", "accessToken": token}),
        )
    };
    assert!(accounts(new_access)["ok"]["accountList"].is_array());
    assert!(accounts(tokens["accessToken"].as_str().unwrap())["ok"].is_object());

    // The old refresh token again: refused, and the login it belongs to ends.
    let replayed = refresh_with(first_refresh);
    assert_eq!(replayed["error"], "InvalidGrantException", "{replayed}");
    let refused = refresh_with(new_refresh);
    assert_eq!(refused["error"], "InvalidGrantException", "{refused}");
    for token in [new_access, tokens["accessToken"].as_str().unwrap()] {
        assert_eq!(accounts(token)["error"], "UnauthorizedException");
    }
    // Another login of the same person goes on.
    let (_, other, _) = signed_in_device(&base, "alice").await;
    assert!(accounts(other["accessToken"].as_str().unwrap())["ok"].is_object());

    let audit = db.store.list_audit(200, None).await.unwrap();
    assert!(audit.iter().any(|e| {
        e.action == "sso:CreateToken"
            && e.outcome == Outcome::Failure
            && e.details["reason"]
                .as_str()
                .is_some_and(|r| r.contains("has been ended"))
    }));
}

// ---------------------------------------------------------------------------------
// Authorization code + PKCE (the AWS CLI v2's default `aws sso login`)

/// The redirect URI the AWS CLI v2 registers (no port) and the one it then uses.
const REGISTERED_REDIRECT: &str = "http://127.0.0.1/oauth/callback";

/// A PKCE pair: (verifier, S256 challenge).
pub(crate) fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!("v{}{}", "x".repeat(20), uuid_like());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn uuid_like() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RegisterClient as the AWS CLI v2 sends it for the auth-code flow, through boto3.
pub(crate) fn register_auth_code_client(home: &Path, base: &str, name: &str) -> Client {
    let registered = boto3_call(
        home,
        base,
        &json!({"service": "sso-oidc", "operation": "register_client",
                "clientName": name, "clientType": "public",
                "grantTypes": ["authorization_code", "refresh_token"],
                "redirectUris": [REGISTERED_REDIRECT],
                "issuerUrl": START_URL, "scopes": ["sso:account:access"]}),
    );
    let ok = &registered["ok"];
    assert!(
        ok["clientSecretExpiresAt"].as_i64().is_some(),
        "{registered}"
    );
    Client {
        id: ok["clientId"].as_str().unwrap().to_owned(),
        secret: ok["clientSecret"].as_str().unwrap().to_owned(),
    }
}

/// The `/authorize` path the AWS CLI v2 opens.
pub(crate) fn authorize_path(
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> String {
    format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&state={state}\
         &code_challenge_method=S256&scopes=sso%3Aaccount%3Aaccess&code_challenge={challenge}",
        web_client::url_encode(client_id),
        web_client::url_encode(redirect_uri)
    )
}

/// The query parameters of a redirect to the loopback listener.
fn callback_params(location: &str) -> std::collections::HashMap<String, String> {
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// Clicks Approve or Deny on an `/authorize` page.
async fn decide_authorize(browser: &mut Browser, page: &Page, decision: &str) -> Page {
    let mut form: Vec<(&str, String)> = [
        "csrf",
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "scopes",
    ]
    .into_iter()
    .map(|name| (name, html_unescape(&hidden(&page.body, name))))
    .collect();
    form.push(("decision", decision.to_owned()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post("/authorize", &form).await
}

/// Approves the `/authorize` request at `path`: the code sent to the listener.
async fn approved_code(browser: &mut Browser, path: &str) -> String {
    let page = browser.get(path).await;
    let approved = decide_authorize(browser, &page, "approve").await;
    assert_eq!(approved.status, 302, "{}", approved.body);
    callback_params(&approved.location.unwrap())["code"].clone()
}

pub(crate) fn create_token_with_code(
    home: &Path,
    base: &str,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Value {
    boto3_call(
        home,
        base,
        &json!({"service": "sso-oidc", "operation": "create_token",
                "clientId": client.id, "clientSecret": client.secret,
                "grantType": "authorization_code", "code": code,
                "redirectUri": redirect_uri, "codeVerifier": verifier}),
    )
}

/// Issue 9: RegisterClient with the auth-code grant and a loopback redirect URI,
/// `/authorize` through the portal sign-in (the request survives it), Approve, the
/// redirect to the loopback listener with code and state, CreateToken with the code
/// and verifier: tokens exactly like the device grant's (they list accounts, refresh).
async fn sso_authorization_code_with_pkce_through_boto3(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let home = aws_home();
    let home = home.path();
    let client = register_auth_code_client(home, &base, "botocore-client-corp");
    let (verifier, challenge) = pkce();
    let redirect_uri = "http://127.0.0.1:44295/oauth/callback";
    let path = authorize_path(&client.id, redirect_uri, "st-1", &challenge);

    let mut alice = Browser::new(&base);
    let page = alice.sign_in_via(&path, "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("botocore-client-corp"), "{}", page.body);
    assert!(
        page.body.contains("id=\"device-client-id\">rgc-"),
        "{}",
        page.body
    );
    // The approval's redirect to the listener is allowed by this page's CSP only.
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:44295;"),
        "{csp}"
    );
    let approved = decide_authorize(&mut alice, &page, "approve").await;
    assert_eq!(approved.status, 302, "{}", approved.body);
    let location = approved.location.unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:44295/oauth/callback?"),
        "{location}"
    );
    let params = callback_params(&location);
    assert_eq!(params["state"], "st-1");
    let code = &params["code"];

    let tokens = create_token_with_code(home, &base, &client, code, redirect_uri, &verifier);
    let tokens = &tokens["ok"];
    assert_eq!(tokens["tokenType"], "Bearer", "{tokens}");
    let access = tokens["accessToken"].as_str().unwrap();
    let accounts = boto3_call(
        home,
        &base,
        &json!({"service": "sso", "operation": "list_accounts", "accessToken": access}),
    );
    assert!(
        accounts["ok"]["accountList"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{accounts}"
    );
    // The refresh token renews as the device grant's does.
    let (status, _, renewed) =
        refresh(&base, &client, tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{renewed}");
    // The code is single-use; presented again, it ends the login it started (RFC
    // 6749 §4.1.2): its tokens stop working.
    let again = create_token_with_code(home, &base, &client, code, redirect_uri, &verifier);
    assert_eq!(again["error"], "InvalidGrantException", "{again}");
    let after = boto3_call(
        home,
        &base,
        &json!({"service": "sso", "operation": "list_accounts",
                "accessToken": renewed["accessToken"]}),
    );
    assert_eq!(after["error"], "UnauthorizedException", "{after}");
    let (status, _, _) = refresh(&base, &client, renewed["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 400);

    // Also [::1] and localhost, on any port, when registered so.
    let (status, _, body) = oidc(
        &base,
        "/client/register",
        &json!({"clientName": "v6", "clientType": "public",
                "grantTypes": ["authorization_code"],
                "redirectUris": ["http://[::1]/cb", "http://localhost/cb"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v6 = body["clientId"].as_str().unwrap();
    for uri in ["http://[::1]:5000/cb", "http://localhost:5001/cb"] {
        let page = alice.get(&authorize_path(v6, uri, "s", &challenge)).await;
        assert_eq!(page.status, 200, "{uri}: {}", page.body);
    }

    let audit = db.store.list_audit(200, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "sso:Authorize"
        && e.outcome == Outcome::Success
        && e.actor == "alice"));
    assert!(audit.iter().any(|e| e.action == "sso:CreateToken"
        && e.outcome == Outcome::Success
        && e.details["grant_type"] == "authorization_code"));
    let rendered = serde_json::to_string(&audit).unwrap();
    assert!(
        !rendered.contains(code.as_str()),
        "codes stay out of the audit log"
    );
}

/// Issue 9, bad input: an unknown client or a redirect URI it did not register (or
/// not loopback) gets an error page, never a redirect; missing or `plain` PKCE, a
/// wrong response type or scope, and Deny go back to the client with the RFC 6749
/// §4.1.2.1 error; CreateToken refuses a reused code, another client, a wrong
/// verifier or redirect URI with InvalidGrantException. Each refusal is audited and
/// none yields a token.
async fn sso_authorization_code_refusals(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let home = aws_home();
    let home = home.path();
    let client = register_auth_code_client(home, &base, "refusal-client");
    let other = register_auth_code_client(home, &base, "other-client");
    let device_client = register(&base, "device-only").await;
    let (verifier, challenge) = pkce();
    let redirect_uri = "http://127.0.0.1:50000/oauth/callback";
    let mut alice = Browser::new(&base);
    alice
        .sign_in_via(
            &authorize_path(&client.id, redirect_uri, "s", &challenge),
            "alice",
        )
        .await;

    // RegisterClient: an auth-code client needs loopback redirect URIs, and no more
    // of them than its client id can carry.
    let long: Vec<String> = (0..10)
        .map(|i| format!("http://127.0.0.1/{i}/{}", "p".repeat(480)))
        .collect();
    for uris in [
        json!([]),
        json!(["https://app.example/cb"]),
        json!(["http://10.0.0.1/cb"]),
        json!(long),
    ] {
        assert_oidc_error(
            &oidc(
                &base,
                "/client/register",
                &json!({"clientName": "x", "clientType": "public",
                        "grantTypes": ["authorization_code"], "redirectUris": uris}),
            )
            .await,
            "InvalidRedirectUriException",
            400,
            "invalid_redirect_uri",
        );
    }

    // Error pages, never a redirect.
    let mut tampered = client.id.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for (client_id, uri) in [
        ("rgc-unknown", redirect_uri),
        (tampered.as_str(), redirect_uri),
        (device_client.id.as_str(), redirect_uri),
        (
            client.id.as_str(),
            "http://evil.example:50000/oauth/callback",
        ),
        (client.id.as_str(), "https://127.0.0.1:50000/oauth/callback"),
        (client.id.as_str(), "http://127.0.0.1:50000/elsewhere"),
        (client.id.as_str(), "http://localhost:50000/oauth/callback"),
    ] {
        let page = alice
            .get(&authorize_path(client_id, uri, "s", &challenge))
            .await;
        assert_eq!(page.status, 400, "{client_id} {uri}: {}", page.body);
        assert!(page.location.is_none());
        assert!(page.body.contains("not valid"), "{}", page.body);
        assert!(!page.body.contains("id=\"approve\""));
    }
    let page = alice.get("/authorize?response_type=code").await;
    assert_eq!(page.status, 400);

    // Errors at the client's redirect URI, with its state.
    let good = authorize_path(&client.id, redirect_uri, "s1", &challenge);
    for (path, error) in [
        (
            good.replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            good.replace(&format!("&code_challenge={challenge}"), ""),
            "invalid_request",
        ),
        (
            good.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (good.replace("response_type=code&", ""), "invalid_request"),
        (
            good.replace("sso%3Aaccount%3Aaccess", "admin%3Aall"),
            "invalid_scope",
        ),
    ] {
        let page = alice.get(&path).await;
        assert_eq!(page.status, 302, "{path}: {}", page.body);
        let location = page.location.unwrap();
        assert!(location.starts_with(redirect_uri), "{location}");
        let params = callback_params(&location);
        assert_eq!(params["error"], error, "{path}");
        assert_eq!(params["state"], "s1");
        assert!(!params.contains_key("code"));
    }

    // Deny: access_denied at the client.
    let page = alice.get(&good).await;
    let denied = decide_authorize(&mut alice, &page, "deny").await;
    assert_eq!(denied.status, 302);
    let params = callback_params(&denied.location.unwrap());
    assert_eq!(params["error"], "access_denied");
    assert!(!params.contains_key("code"));
    // A form without the session's CSRF token: refused, no redirect.
    let forged = alice
        .post(
            "/authorize",
            &[
                ("response_type", "code"),
                ("client_id", client.id.as_str()),
                ("redirect_uri", redirect_uri),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    // CreateToken refusals.
    let token_error = |answer: Value, exception: &str| {
        assert_eq!(answer["error"], exception, "{answer}");
        assert!(answer.get("ok").is_none());
    };
    let code = approved_code(&mut alice, &good).await;
    token_error(
        create_token_with_code(home, &base, &other, &code, redirect_uri, &verifier),
        "InvalidGrantException",
    );
    // The code is spent by that attempt: its own client cannot use it now either.
    token_error(
        create_token_with_code(home, &base, &client, &code, redirect_uri, &verifier),
        "InvalidGrantException",
    );
    let code = approved_code(&mut alice, &good).await;
    let (wrong_verifier, _) = pkce();
    token_error(
        create_token_with_code(home, &base, &client, &code, redirect_uri, &wrong_verifier),
        "InvalidGrantException",
    );
    let code = approved_code(&mut alice, &good).await;
    token_error(
        create_token_with_code(
            home,
            &base,
            &client,
            &code,
            "http://127.0.0.1:50001/oauth/callback",
            &verifier,
        ),
        "InvalidGrantException",
    );
    token_error(
        create_token_with_code(
            home,
            &base,
            &client,
            "rgac-made-up",
            redirect_uri,
            &verifier,
        ),
        "InvalidGrantException",
    );
    let (status, kind, body) = oidc(
        &base,
        "/token",
        &json!({"clientId": client.id, "clientSecret": client.secret,
                "grantType": "authorization_code", "code": approved_code(&mut alice, &good).await,
                "redirectUri": redirect_uri}),
    )
    .await;
    assert_oidc_error(
        &(status, kind, body),
        "InvalidRequestException",
        400,
        "invalid_request",
    );

    let audit = db.store.list_audit(300, None).await.unwrap();
    let refused = |reason: &str| {
        audit.iter().any(|e| {
            e.action == "sso:Authorize"
                && e.outcome == Outcome::Failure
                && e.details.to_string().contains(reason)
        })
    };
    assert!(refused("unknown or expired client"));
    assert!(refused(
        "redirect_uri is not a loopback URI registered by the client"
    ));
    assert!(refused("invalid_request"));
    assert!(refused("unsupported_response_type"));
    assert!(refused("invalid_scope"));
    assert!(audit.iter().any(|e| e.action == "sso:Authorize"
        && e.outcome == Outcome::Denied
        && e.details["error"] == "access_denied"));
    let token_failures = audit
        .iter()
        .filter(|e| {
            e.action == "sso:CreateToken"
                && e.outcome == Outcome::Failure
                && e.details["grant_type"] == "authorization_code"
        })
        .count();
    assert!(token_failures >= 6, "{token_failures}");
    assert!(!audit.iter().any(|e| e.action == "sso:CreateToken"
        && e.outcome == Outcome::Success
        && e.details["grant_type"] == "authorization_code"));
}

/// Issue 9: the AWS CLI v2 (2.35.13 and later) sends `HEAD <start URL>` and accepts
/// exactly one redirect to an https URL on an AWS-owned host, which it never
/// contacts and then sends as `startUrl` / `issuerUrl`. `HEAD /start` answers that
/// redirect with `sso.aws_start_url`; GET stays the portal; SSO-OIDC accepts the
/// identifier; the access-keys page writes it (this server is http).
async fn sso_start_url_resolves_to_the_aws_shaped_identifier(db: TestStore) {
    const CONFIGURED: &str = "https://d-9067000000.awsapps.com/start";
    let state = seeded(&db).await.with_sso(rolegate::web::SsoSettings {
        aws_start_url: CONFIGURED.into(),
    });
    let base = spawn_state(state);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let head = http.head(format!("{base}/start")).send().await.unwrap();
    assert_eq!(head.status(), 302);
    assert_eq!(head.headers()["location"], CONFIGURED);
    let get = http.get(format!("{base}/start")).send().await.unwrap();
    assert_eq!(get.status(), 303, "GET is the portal (sign-in first)");
    assert!(
        get.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/signin")
    );

    let (status, _, body) = oidc(
        &base,
        "/client/register",
        &json!({"clientName": "botocore-client-corp", "clientType": "public",
                "grantTypes": ["authorization_code", "refresh_token"],
                "redirectUris": [REGISTERED_REDIRECT], "issuerUrl": CONFIGURED,
                "scopes": ["sso:account:access"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client = register(&base, "device").await;
    let (status, _, body) = oidc(
        &base,
        "/device_authorization",
        &json!({"clientId": client.id, "clientSecret": client.secret, "startUrl": CONFIGURED}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut alice = Browser::new(&base);
    alice.sign_in("alice", password_of("alice"), "/start").await;
    let start = alice.get("/start").await;
    let keys = alice
        .post(
            "/start/credentials",
            &[
                ("csrf", hidden(&start.body, "csrf").as_str()),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert!(
        keys.body.contains(&format!("sso_start_url = {CONFIGURED}")),
        "{}",
        keys.body
    );
    assert!(keys.body.contains("[profile rolegate]"), "{}", keys.body);
}

// ---------------------------------------------------------------------------------
// One person's terminal sign-ins, for the admin API

async fn sso_terminal_sign_ins_are_listed_and_revoked(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state.clone());
    terminal_sign_ins_are_listed_and_revoked(&state, &base).await;
    // A sign-in that ran out leaves the index on its own.
    let (_, _, _) = signed_in_device_of(&base, "bob", "short-lived").await;
    assert_eq!(sign_ins_of(&state, "bob").await, ["short-lived"]);
    db.hand
        .advance(std::time::Duration::from_secs(8 * 3600 + 1));
    assert!(sign_ins_of(&state, "bob").await.is_empty());
}

async fn sso_terminal_sign_ins_are_listed_and_revoked_through_redis(db: TestStore) {
    let prefix = crate::helpers::redis_prefix();
    let state = crate::helpers::redis_replica(db.store.clone(), &prefix).await;
    seed::seed_demo(state.store.as_ref()).await.unwrap();
    let base = spawn_state(state.clone());
    terminal_sign_ins_are_listed_and_revoked(&state, &base).await;
    crate::helpers::delete_redis_prefix(&prefix).await;
}

/// Register, start, approve as `user` and exchange for a client named `client_name`.
async fn signed_in_device_of(
    base: &str,
    user: &str,
    client_name: &str,
) -> (Client, Value, Browser) {
    let (client, device_code, browser) = approved_device_of(base, user, client_name).await;
    let (status, _, tokens) = poll(base, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    (client, tokens, browser)
}

/// The client names of `user`'s live terminal sign-ins, sorted.
async fn sign_ins_of(state: &rolegate::web::AppState, user: &str) -> Vec<String> {
    let mut names: Vec<String> = state
        .device
        .list_for_user(rolegate::idp::directory::DIRECTORY_SOURCE_ID, user)
        .await
        .unwrap()
        .into_iter()
        .map(|sign_in| sign_in.client_name)
        .collect();
    names.sort();
    names
}

/// Whether an access token still works on the SSO portal API.
async fn works(base: &str, access: &Value) -> bool {
    let (status, kind, body) = portal_get(base, "/assignment/accounts", access.as_str()).await;
    match status {
        200 => true,
        401 => {
            assert_eq!(kind, "UnauthorizedException", "{body}");
            false
        }
        _ => panic!("{status} {kind} {body}"),
    }
}

/// An administrator lists one person's terminal sign-ins (client, issued, expires)
/// and revokes one, then all: a revoked sign-in's access and refresh tokens stop
/// working at once, other people's go on, and Logout leaves the list too.
async fn terminal_sign_ins_are_listed_and_revoked(state: &rolegate::web::AppState, base: &str) {
    use rolegate::idp::directory::DIRECTORY_SOURCE_ID as SOURCE;
    let device = &state.device;
    let (laptop, laptop_tokens, _) = signed_in_device_of(base, "alice", "laptop").await;
    let (desktop, desktop_tokens, _) = signed_in_device_of(base, "alice", "desktop").await;
    let (_, bob_tokens, _) = signed_in_device_of(base, "bob", "bob-cli").await;
    assert_eq!(sign_ins_of(state, "alice").await, ["desktop", "laptop"]);
    assert_eq!(
        sign_ins_of(state, "ALICE").await,
        ["desktop", "laptop"],
        "names fold case"
    );
    assert_eq!(sign_ins_of(state, "bob").await, ["bob-cli"]);
    let listed = device.list_for_user(SOURCE, "alice").await.unwrap();
    let laptop_sign_in = listed.iter().find(|s| s.client_name == "laptop").unwrap();
    assert!(
        laptop_sign_in.client_id.starts_with("rgc-"),
        "{laptop_sign_in:?}"
    );
    assert!(!laptop_sign_in.client_id.contains('.'), "the short id");
    assert!(
        laptop_sign_in.expires_at > laptop_sign_in.issued_at + 3600,
        "{laptop_sign_in:?}"
    );
    // Refreshing rotates the tokens; the sign-in (and its entry) stays one.
    let (status, _, laptop_tokens) = refresh(
        base,
        &laptop,
        laptop_tokens["refreshToken"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{laptop_tokens}");
    assert_eq!(device.list_for_user(SOURCE, "alice").await.unwrap(), listed);

    // One sign-in, and only the person's own.
    assert_eq!(
        device
            .revoke_for_user(SOURCE, "bob", Some(&laptop_sign_in.id))
            .await
            .unwrap(),
        0,
        "not bob's"
    );
    assert!(works(base, &laptop_tokens["accessToken"]).await);
    assert_eq!(
        device
            .revoke_for_user(SOURCE, "alice", Some(&laptop_sign_in.id))
            .await
            .unwrap(),
        1
    );
    assert!(!works(base, &laptop_tokens["accessToken"]).await);
    assert_oidc_error(
        &refresh(
            base,
            &laptop,
            laptop_tokens["refreshToken"].as_str().unwrap(),
        )
        .await,
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
    assert!(works(base, &desktop_tokens["accessToken"]).await);
    assert_eq!(sign_ins_of(state, "alice").await, ["desktop"]);

    // All of them.
    assert_eq!(
        device.revoke_for_user(SOURCE, "alice", None).await.unwrap(),
        1
    );
    assert!(!works(base, &desktop_tokens["accessToken"]).await);
    assert_oidc_error(
        &refresh(
            base,
            &desktop,
            desktop_tokens["refreshToken"].as_str().unwrap(),
        )
        .await,
        "InvalidGrantException",
        400,
        "invalid_grant",
    );
    assert!(sign_ins_of(state, "alice").await.is_empty());

    // Other people's sign-ins go on; Logout takes bob's off the list.
    let bob_access = bob_tokens["accessToken"].as_str().unwrap();
    assert!(works(base, &bob_tokens["accessToken"]).await);
    let logout = reqwest::Client::new()
        .post(format!("{base}/logout"))
        .header("x-amz-sso_bearer_token", bob_access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert!(sign_ins_of(state, "bob").await.is_empty());
    assert!(!works(base, &bob_tokens["accessToken"]).await);
}
