//! Portal sign-in through a real OpenID Connect provider (npm `oidc-provider`,
//! tests/peers/oidc) over plain HTTP with two cookie jars, one for the provider and
//! one for Rolegate: the full flow through the provider's password form, entitlements
//! from the provider's groups, RP-initiated logout, and every bad-input case (the
//! provider misbehaves on demand through its `/_test/tamper` hook).

use rolegate::iam::{AccountId, RoleName};
use rolegate::idp::oidc::{self, ClaimNames, OidcConfig};
use rolegate::store::{IdentitySourceKind, NewIdentitySource, NewRole, Outcome};
use rolegate::web::AppState;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state};
use crate::oidc_peer::{Browser, OidcPeer, Page};
use crate::web_client::hidden;

const ACCOUNT: &str = "123456789012";
const CLIENT: &str = "rolegate-portal";
const SECRET: &str = "rolegate-portal-secret";

struct Fixture {
    base: String,
    peer: OidcPeer,
    state: AppState,
}

/// Rolegate on a fresh store, the provider with Rolegate's callbacks registered, an
/// account with roles `Developer` (group `developers`) and `Auditor` (`auditors`),
/// and the source `corp` (client `rolegate-portal`, scopes with groups).
async fn setup(db: &TestStore) -> Option<Fixture> {
    let state = crate::helpers::app_state(db.store.clone()).await;
    let base = spawn_state(state.clone());
    let callbacks = ["corp", "csv", "wrongsecret", "disabled", "capped"]
        .map(|id| format!("{base}/signin/oidc/{id}/callback"))
        .join(",");
    let peer = OidcPeer::start_with(
        "a",
        &[
            "--redirect-uris",
            &callbacks,
            "--post-logout-uris",
            &format!("{base}/signin"),
        ],
    )?;
    let store = state.store.as_ref();
    let account = AccountId::parse(ACCOUNT).unwrap();
    store.create_account(&account, "engineering").await.unwrap();
    for (name, group) in [("Developer", "developers"), ("Auditor", "auditors")] {
        let role = NewRole::new(
            account.clone(),
            RoleName::parse(name).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
                "Action": "sts:AssumeRole"}]})
            .to_string(),
        );
        store.create_role(&role).await.unwrap();
        crate::helpers::grant_group(&state, "corp", group, ACCOUNT, name).await;
    }
    let fixture = Fixture { base, peer, state };
    fixture
        .add_source("corp", "Corp IdP", fixture.config(SECRET), true)
        .await;
    Some(fixture)
}

impl Fixture {
    fn config(&self, secret: &str) -> OidcConfig {
        let mut config = OidcConfig::new(self.peer.issuer.clone(), CLIENT);
        config.client_secret = Some(secret.to_owned());
        config.scopes = ["openid", "profile", "email", "groups"]
            .map(str::to_owned)
            .to_vec();
        config
    }

    /// Stores an OIDC source, sealing the plain client secret in `config`.
    async fn add_source(&self, id: &str, name: &str, mut config: OidcConfig, enabled: bool) {
        if let Some(secret) = config.client_secret.take() {
            config.client_secret = Some(oidc::seal_client_secret(&self.state.sealer, id, &secret));
        }
        self.state
            .store
            .create_identity_source(&NewIdentitySource {
                id: id.to_owned(),
                kind: IdentitySourceKind::Oidc,
                display_name: name.to_owned(),
                config: config.to_json(),
                enabled,
            })
            .await
            .unwrap();
    }

    fn rolegate(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Starts a sign-in at Rolegate; returns the provider's authorization URL.
    async fn begin(&self, rolegate: &mut Browser, source: &str) -> String {
        let start = rolegate
            .fetch(&format!("/signin/oidc/{source}?return_to=/start"), None)
            .await;
        assert_eq!(start.status, 303, "{}", start.body);
        let to = start.location.unwrap();
        assert!(
            to.starts_with(&format!("{}/auth?", self.peer.issuer)),
            "{to}"
        );
        to
    }

    /// Signs in at the provider's password form and consents; returns Rolegate's
    /// callback URL the provider redirects to (and the provider's cookie jar).
    async fn at_provider(
        &self,
        authorize: &str,
        user: &str,
        password: &str,
    ) -> Result<(String, Browser), String> {
        at_provider(&self.peer, &self.base, authorize, user, password).await
    }

    /// The whole flow as `alice` at `source`; returns the callback's response.
    async fn sign_in(&self, rolegate: &mut Browser, source: &str, user: &str) -> Page {
        let authorize = self.begin(rolegate, source).await;
        let (callback, _) = self
            .at_provider(&authorize, user, &format!("{user}-password"))
            .await
            .unwrap_or_else(|e| panic!("{e}; peer stderr:\n{}", self.peer.stderr.lock().unwrap()));
        rolegate.fetch(&callback, None).await
    }

    /// Makes the provider rewrite the ID token of its next token response.
    async fn tamper(&self, spec: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/_test/tamper", self.peer.issuer))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// The groups of the newest successful sign-in of `actor`, as audited.
    async fn signed_in_groups(&self, actor: &str) -> Vec<Value> {
        let records = self.state.store.list_audit(100, None).await.unwrap();
        let record = records
            .into_iter()
            .find(|r| {
                r.action == "portal:SignIn" && r.outcome == Outcome::Success && r.actor == actor
            })
            .unwrap_or_else(|| panic!("no sign-in of {actor} audited"));
        record.details["groups"].as_array().unwrap().clone()
    }

    /// The newest sign-in audit record, which must have failed with `code`.
    async fn audited(&self, code: &str) -> rolegate::store::AuditRecord {
        let records = self.state.store.list_audit(100, None).await.unwrap();
        let record = records
            .into_iter()
            .find(|r| r.action == "portal:SignIn")
            .expect("a portal:SignIn audit event");
        assert_eq!(record.details["code"], code, "{record:?}");
        assert_ne!(record.outcome, Outcome::Success);
        record
    }
}

/// Whether the browser holds a live portal session.
/// At the provider `peer`: signs in at its password form with the authorization
/// URL `authorize` and consents; returns the callback URL at Rolegate (`base`) the
/// provider redirects to (and the provider's cookie jar).
pub(crate) async fn at_provider(
    peer: &OidcPeer,
    base: &str,
    authorize: &str,
    user: &str,
    password: &str,
) -> Result<(String, Browser), String> {
    let mut idp = Browser::new(&peer.issuer);
    let login = idp.get(authorize).await?;
    let uid = login.rsplit('/').next().unwrap_or_default().to_owned();
    let resume = idp
        .post(
            &format!("{}/interaction/{uid}/login", peer.issuer),
            &[("login", user), ("password", password)],
        )
        .await?;
    let consent = idp.get(&resume).await?;
    let uid = consent.rsplit('/').next().unwrap_or_default().to_owned();
    let resume = idp
        .post(&format!("{}/interaction/{uid}/confirm", peer.issuer), &[])
        .await?;
    let callback = idp.get(&resume).await?;
    assert!(
        callback.starts_with(&format!("{}/signin/oidc/", base)),
        "{callback}"
    );
    Ok((callback, idp))
}

async fn signed_in(rolegate: &mut Browser) -> bool {
    rolegate.fetch("/start", None).await.status == 200
}

/// The first link target starting with `prefix`, HTML entities undone.
fn link(body: &str, prefix: &str) -> String {
    let marker = format!("href=\"{}", prefix.replace('&', "&#38;"));
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no link to {prefix} in {body}"))
        + "href=\"".len();
    body[start..start + body[start..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// A failed callback: the expected status and page, no session, no session cookie.
async fn refused(rolegate: &mut Browser, page: &Page, status: u16, says: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(
        page.body.contains(says),
        "expected {says:?} in {}",
        page.body
    );
    assert!(page.body.contains("href=\"/signin\""), "{}", page.body);
    assert!(!rolegate.cookies.contains_key("rg_session"));
    assert!(!signed_in(rolegate).await);
}

both_backends!(
    sign_in_grants_roles_from_provider_groups,
    large_and_delimited_group_claims,
    logout_ends_the_session_at_the_provider,
    provider_denial_creates_no_session,
    forged_missing_and_replayed_state_are_refused,
    crossed_callbacks_are_refused,
    id_token_checks_refuse_bad_tokens,
    wrong_client_or_secret_is_refused,
    wrong_password_at_provider_gives_no_session,
    unknown_disabled_and_insecure_sources,
    rotated_provider_keys_are_fetched_again,
    more_groups_than_the_source_allows_refuse_the_sign_in,
    admin_rules_decide_oidc_roles_on_the_portal_and_the_terminal,
);

async fn sign_in_grants_roles_from_provider_groups(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    // The sign-in page offers the source next to the directory form.
    let signin = rg.fetch("/signin?return_to=/start", None).await;
    assert_eq!(signin.status, 200);
    assert_eq!(
        link(&signin.body, "/signin/oidc/"),
        "/signin/oidc/corp?return_to=%2Fstart"
    );
    assert!(signin.body.contains("Sign in with Corp IdP"));
    assert!(signin.body.contains("action=\"/signin/directory\""));

    let done = fx.sign_in(&mut rg, "corp", "alice").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("{}/start", fx.base).as_str())
    );
    assert!(rg.cookies.contains_key("rg_session"));

    // Groups come from the provider: `developers` grants Developer, not Auditor.
    let start = rg.fetch("/start", None).await;
    assert_eq!(start.status, 200);
    assert!(start.body.contains("Alice Example"), "{}", start.body);
    assert!(start.body.contains("Developer"), "{}", start.body);
    assert!(!start.body.contains("Auditor"), "{}", start.body);

    let csrf = hidden(&start.body, "csrf");
    let keys = rg
        .fetch(
            "/start/credentials",
            Some(&[("csrf", &csrf), ("account", ACCOUNT), ("role", "Developer")]),
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert!(keys.body.contains("AWS_SESSION_TOKEN"), "{}", keys.body);
    assert!(
        keys.body.contains(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@example.com"
        )),
        "{}",
        keys.body
    );
    // Not granted: refused.
    let denied = rg
        .fetch(
            "/start/credentials",
            Some(&[("csrf", &csrf), ("account", ACCOUNT), ("role", "Auditor")]),
        )
        .await;
    assert_eq!(denied.status, 403);

    let records = fx.state.store.list_audit(100, None).await.unwrap();
    let success = records
        .iter()
        .find(|r| r.action == "portal:SignIn" && r.outcome == Outcome::Success)
        .expect("sign-in audited");
    assert_eq!(
        (success.actor.as_str(), success.target.as_str()),
        ("alice", "corp")
    );
    // No tokens, codes or secrets in the audit log.
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains("eyJ"), "{all}");
    assert!(!all.contains(SECRET));
}

async fn large_and_delimited_group_claims(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    // 1501 groups in the ID token.
    let mut rg = fx.rolegate();
    let done = fx.sign_in(&mut rg, "corp", "bob").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let start = rg.fetch("/start", None).await;
    assert!(
        start.body.contains("Developer"),
        "{}",
        &start.body[..start.body.len().min(2000)]
    );
    let groups = fx.signed_in_groups("bob@example.com").await;
    assert_eq!(groups.len(), 1501);
    assert!(groups.contains(&json!("team-1499-with-a-long-directory-group-name")));

    // Groups as one delimited string, other claim names, and userinfo.
    let mut config = fx.config(SECRET);
    config.userinfo = true;
    config.claims = ClaimNames {
        user_name: "email".into(),
        groups: "groups_csv".into(),
        groups_delimiter: ";".into(),
        ..ClaimNames::default()
    };
    fx.add_source("csv", "Corp (CSV groups)", config, true)
        .await;
    // Rules name their source: corp's grant does not reach csv's `developers`.
    crate::helpers::grant_group(&fx.state, "csv", "developers", ACCOUNT, "Developer").await;
    let mut rg = fx.rolegate();
    let done = fx.sign_in(&mut rg, "csv", "alice").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let start = rg.fetch("/start", None).await;
    assert!(start.body.contains("Developer"), "{}", start.body);
    let groups = fx.signed_in_groups("alice@example.com").await;
    assert_eq!(groups, [json!("Engineering"), json!("developers")]);
}

async fn logout_ends_the_session_at_the_provider(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    let authorize = fx.begin(&mut rg, "corp").await;
    let (callback, mut idp) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    assert_eq!(rg.fetch(&callback, None).await.status, 303);
    let start = rg.fetch("/start", None).await;
    let csrf = hidden(&start.body, "csrf");

    // Signed out of Rolegate; the page offers the provider's logout (a link: the
    // CSP's form-action 'self' would block a redirect of the form to the provider).
    let out = rg.fetch("/logout", Some(&[("csrf", &csrf)])).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.body.contains("Sign out of Corp IdP"), "{}", out.body);
    assert!(!rg.cookies.contains_key("rg_session"));
    let end = format!("{}/session/end?", fx.peer.issuer);
    let to = reqwest::Url::parse(&link(&out.body, &end)).unwrap();
    assert_eq!(
        to.as_str().split('?').next().unwrap(),
        format!("{}/session/end", fx.peer.issuer)
    );
    let params: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert!(params["id_token_hint"].starts_with("eyJ"));
    assert_eq!(
        params["post_logout_redirect_uri"],
        format!("{}/signin", fx.base)
    );
    assert_eq!(params["client_id"], CLIENT);
    assert!(!signed_in(&mut rg).await, "the portal session ended");

    // The provider accepts it: its confirmation form returns to Rolegate's sign-in.
    let confirm = idp.fetch(to.as_str(), None).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let xsrf = hidden(&confirm.body, "xsrf");
    let back = idp
        .fetch(
            "/session/end/confirm",
            Some(&[("xsrf", &xsrf), ("logout", "yes")]),
        )
        .await;
    assert_eq!(
        back.location.as_deref(),
        Some(format!("{}/signin", fx.base).as_str())
    );

    let records = fx.state.store.list_audit(10, None).await.unwrap();
    let out = records
        .iter()
        .find(|r| r.action == "portal:SignOut")
        .unwrap();
    assert_eq!(out.details["provider_logout_offered"], true);
}

async fn provider_denial_creates_no_session(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    let authorize = fx.begin(&mut rg, "corp").await;
    // The user cancels at the provider's login form.
    let mut idp = Browser::new(&fx.peer.issuer);
    let login = idp.get(&authorize).await.unwrap();
    let uid = login.rsplit('/').next().unwrap().to_owned();
    let resume = idp
        .post(&format!("{}/interaction/{uid}/abort", fx.peer.issuer), &[])
        .await
        .unwrap();
    let callback = idp.get(&resume).await.unwrap();
    assert!(callback.contains("error=access_denied"), "{callback}");
    let page = rg.fetch(&callback, None).await;
    refused(&mut rg, &page, 403, "Sign-in declined").await;
    let record = fx.audited("provider_error").await;
    assert_eq!(record.outcome, Outcome::Denied);
    assert!(
        record.details["reason"]
            .as_str()
            .unwrap()
            .contains("access_denied")
    );
    // Without any state the page still says what happened.
    let page = rg
        .fetch("/signin/oidc/corp/callback?error=access_denied", None)
        .await;
    refused(&mut rg, &page, 403, "Sign-in declined").await;
}

async fn forged_missing_and_replayed_state_are_refused(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    // A forged state (and a made-up code).
    let page = rg
        .fetch(
            "/signin/oidc/corp/callback?code=abc&state=forged-state",
            None,
        )
        .await;
    refused(&mut rg, &page, 400, "expired or already used").await;
    fx.audited("unknown_state").await;
    // No state at all.
    let page = rg.fetch("/signin/oidc/corp/callback?code=abc", None).await;
    refused(&mut rg, &page, 400, "expired or already used").await;
    fx.audited("missing_state").await;

    // A real callback works once; replaying it (even with the browser's binding
    // cookie) is refused and creates no session.
    let authorize = fx.begin(&mut rg, "corp").await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    let mut attacker = fx.rolegate();
    attacker
        .cookies
        .insert("rg_oidc".into(), rg.cookies["rg_oidc"].clone());
    assert_eq!(rg.fetch(&callback, None).await.status, 303);
    assert!(signed_in(&mut rg).await);
    let replay = attacker.fetch(&callback, None).await;
    refused(&mut attacker, &replay, 400, "expired or already used").await;
    fx.audited("replayed_state").await;

    // A callback delivered to another browser (login CSRF) is refused, and spent.
    let mut victim = fx.rolegate();
    let authorize = fx.begin(&mut victim, "corp").await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    let mut other = fx.rolegate();
    let page = other.fetch(&callback, None).await;
    refused(&mut other, &page, 400, "started in another browser").await;
    fx.audited("browser_mismatch").await;
    let page = victim.fetch(&callback, None).await;
    refused(&mut victim, &page, 400, "already used").await;

    // The state of one source is not accepted at another's callback.
    fx.add_source("csv", "Other", fx.config(SECRET), true).await;
    let mut rg = fx.rolegate();
    let authorize = fx.begin(&mut rg, "corp").await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    let page = rg
        .fetch(
            &callback.replace("/signin/oidc/corp/", "/signin/oidc/csv/"),
            None,
        )
        .await;
    refused(&mut rg, &page, 400, "expired or already used").await;
    fx.audited("source_mismatch").await;
}

async fn crossed_callbacks_are_refused(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    // Two sign-ins in one browser; each callback carries the other's code.
    let first = fx.begin(&mut rg, "corp").await;
    let second = fx.begin(&mut rg, "corp").await;
    let (first, _) = fx
        .at_provider(&first, "alice", "alice-password")
        .await
        .unwrap();
    let (second, _) = fx
        .at_provider(&second, "alice", "alice-password")
        .await
        .unwrap();
    let param = |url: &str, name: &str| {
        reqwest::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .into_owned()
    };
    let crossed = format!(
        "/signin/oidc/corp/callback?code={}&state={}",
        param(&first, "code"),
        param(&second, "state")
    );
    let page = rg.fetch(&crossed, None).await;
    // PKCE binds the code to its own sign-in: the provider refuses the exchange.
    refused(&mut rg, &page, 401, "did not accept this sign-in").await;
    fx.audited("code_rejected").await;
}

async fn id_token_checks_refuse_bad_tokens(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            json!({"claims": {"nonce": "not-the-sign-in-nonce"}}),
            "wrong_nonce",
            "belongs to a different sign-in",
        ),
        (
            json!({"claims": {"nonce": null}}),
            "wrong_nonce",
            "belongs to a different sign-in",
        ),
        (
            json!({"claims": {"iss": "http://127.0.0.1:9/other"}}),
            "wrong_issuer",
            "different identity provider",
        ),
        (
            json!({"claims": {"aud": "other-portal"}}),
            "wrong_audience",
            "different application",
        ),
        (
            json!({"claims": {"aud": [CLIENT, "other-portal"], "azp": null}}),
            "wrong_audience",
            "different application",
        ),
        (
            json!({"claims": {"azp": "other-portal"}}),
            "wrong_audience",
            "different application",
        ),
        (
            json!({"claims": {"exp": now - 600, "iat": now - 1200}}),
            "expired_token",
            "has expired",
        ),
        (
            json!({"claims": {"iat": now + 3600, "exp": now + 7200}}),
            "expired_token",
            "not valid yet",
        ),
        (json!({"alg": "none"}), "bad_signature", "not signed"),
        (json!({"key": "attacker"}), "bad_signature", "not signed"),
    ];
    for (spec, code, says) in cases {
        let mut rg = fx.rolegate();
        let authorize = fx.begin(&mut rg, "corp").await;
        fx.tamper(spec.clone()).await;
        let (callback, _) = fx
            .at_provider(&authorize, "alice", "alice-password")
            .await
            .unwrap();
        let page = rg.fetch(&callback, None).await;
        assert_eq!(page.status, 401, "{spec}: {}", page.body);
        refused(&mut rg, &page, 401, says).await;
        let record = fx.audited(code).await;
        assert_eq!(record.outcome, Outcome::Failure, "{spec}");
    }
    // With the other audience trusted, several audiences need azp = this client.
    let mut config = fx.config(SECRET);
    config.trusted_audiences = vec!["other-portal".into()];
    fx.add_source("csv", "Trusting", config, true).await;
    let mut rg = fx.rolegate();
    let authorize = fx.begin(&mut rg, "csv").await;
    fx.tamper(json!({"claims": {"aud": [CLIENT, "other-portal"], "azp": null}}))
        .await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    let page = rg.fetch(&callback, None).await;
    refused(&mut rg, &page, 401, "different application").await;
    let record = fx.audited("wrong_audience").await;
    assert!(
        record.details["reason"].as_str().unwrap().contains("azp"),
        "{record:?}"
    );
    let authorize = fx.begin(&mut rg, "csv").await;
    fx.tamper(json!({"claims": {"aud": [CLIENT, "other-portal"], "azp": CLIENT}}))
        .await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    assert_eq!(rg.fetch(&callback, None).await.status, 303);
    assert!(signed_in(&mut rg).await);
}

async fn wrong_client_or_secret_is_refused(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    // A code the provider issued to another client, injected into Rolegate's callback.
    let mut rg = fx.rolegate();
    let authorize = fx.begin(&mut rg, "corp").await;
    let other = authorize.replace("client_id=rolegate-portal", "client_id=other-portal");
    assert_ne!(other, authorize);
    let (callback, _) = fx
        .at_provider(&other, "alice", "alice-password")
        .await
        .unwrap();
    let page = rg.fetch(&callback, None).await;
    refused(&mut rg, &page, 401, "did not accept this sign-in").await;
    let record = fx.audited("code_rejected").await;
    assert!(
        record.details["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{record:?}"
    );

    // A wrong client secret in the source's settings.
    fx.add_source(
        "wrongsecret",
        "Wrong secret",
        fx.config("not-the-secret"),
        true,
    )
    .await;
    let authorize = fx.begin(&mut rg, "wrongsecret").await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    let page = rg.fetch(&callback, None).await;
    refused(&mut rg, &page, 401, "did not accept this sign-in").await;
    let record = fx.audited("code_rejected").await;
    assert!(
        record.details["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{record:?}"
    );
}

async fn wrong_password_at_provider_gives_no_session(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    let authorize = fx.begin(&mut rg, "corp").await;
    let attempt = fx.at_provider(&authorize, "alice", "wrong-password").await;
    assert!(attempt.is_err(), "the provider must refuse the password");
    assert!(!rg.cookies.contains_key("rg_session"));
    assert!(!signed_in(&mut rg).await);
    // The same sign-in can still be finished with the right password.
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    assert_eq!(rg.fetch(&callback, None).await.status, 303);
    assert!(signed_in(&mut rg).await);
}

async fn unknown_disabled_and_insecure_sources(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut rg = fx.rolegate();
    let page = rg.fetch("/signin/oidc/nope", None).await;
    refused(&mut rg, &page, 404, "Unknown sign-in method").await;
    fx.audited("unknown_source").await;

    fx.add_source("disabled", "Switched off", fx.config(SECRET), false)
        .await;
    let signin = rg.fetch("/signin", None).await;
    assert!(!signin.body.contains("Switched off"), "{}", signin.body);
    let page = rg.fetch("/signin/oidc/disabled", None).await;
    refused(&mut rg, &page, 404, "Unknown sign-in method").await;

    // A sign-in started, then the source is gone: refused at the callback.
    let authorize = fx.begin(&mut rg, "corp").await;
    let (callback, _) = fx
        .at_provider(&authorize, "alice", "alice-password")
        .await
        .unwrap();
    let page = rg
        .fetch(
            &callback.replace("/signin/oidc/corp/", "/signin/oidc/nope/"),
            None,
        )
        .await;
    refused(&mut rg, &page, 400, "expired or already used").await;

    // Plain http:// issuers only on loopback.
    let mut insecure = OidcConfig::new("http://idp.example.com", CLIENT);
    insecure.client_secret = None;
    fx.add_source("insecure", "Insecure", insecure, true).await;
    let page = rg.fetch("/signin/oidc/insecure", None).await;
    refused(&mut rg, &page, 500, "misconfigured").await;
    let record = fx.audited("misconfigured").await;
    assert!(
        record.details["reason"].as_str().unwrap().contains("https"),
        "{record:?}"
    );

    // An unreachable provider.
    let gone = OidcConfig::new("http://127.0.0.1:9", CLIENT);
    fx.add_source("gone", "Gone", gone, true).await;
    let page = rg.fetch("/signin/oidc/gone", None).await;
    refused(&mut rg, &page, 502, "could not reach").await;
}

async fn rotated_provider_keys_are_fetched_again(db: TestStore) {
    let Some(mut fx) = setup(&db).await else {
        return;
    };
    let mut rg = fx.rolegate();
    assert_eq!(fx.sign_in(&mut rg, "corp", "alice").await.status, 303);
    let (discovery, _) = fx.peer.stats().await;
    assert_eq!(discovery, 1, "discovery is cached");
    // Same issuer, new signing key: the cached key set does not have it.
    fx.peer.restart("b,a");
    let mut rg = fx.rolegate();
    let done = fx.sign_in(&mut rg, "corp", "alice").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(signed_in(&mut rg).await);
    let (discovery, jwks) = fx.peer.stats().await;
    assert_eq!(
        (discovery, jwks),
        (1, 1),
        "fetched again once after the restart"
    );
}

/// One admin API call with a bearer token: (status, ETag, JSON body).
async fn admin_call(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}/admin/api/v1{path}"))
        .bearer_auth(token);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        etag,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// `rolegate credentials` for a role, with the terminal sign-in in `home`.
async fn terminal_credentials(home: &std::path::Path, role: &str) -> (i32, String) {
    let (code, stdout, stderr) = crate::cli_login::rolegate(
        &["credentials", "--account-id", ACCOUNT, "--role-name", role],
        home,
        &[],
    )
    .await;
    (code, format!("{stdout}{stderr}"))
}

/// End to end: a rule made through the admin API decides which roles a person
/// signing in through the real OIDC provider gets, on the portal and through
/// `rolegate login`; a change applies at the next request, `impact` names the
/// person before it is published, and restoring the previous version restores the
/// previous result.
async fn admin_rules_decide_oidc_roles_on_the_portal_and_the_terminal(db: TestStore) {
    use reqwest::Method;
    let Some(fx) = setup(&db).await else { return };
    let token = fx
        .state
        .admin
        .issue(
            "e2e",
            rolegate::store::AdminScope::Write,
            None,
            "directory:root",
        )
        .await
        .unwrap()
        .secret;
    let base = fx.base.clone();
    // One rule: corp's `developers` get Auditor (not what the group name suggests).
    let (_, etag, _) = admin_call(&base, &token, Method::GET, "/ruleset", None, None).await;
    let rule = |role: &str| {
        json!({"id": "corp-devs", "name": "Corp developers", "effect": "grant",
               "source": ["corp"],
               "when": {"claim": "groups", "op": "contains_any", "values": ["developers"]},
               "grant": [{"account": ACCOUNT, "role": role}]})
    };
    let (status, etag, published) = admin_call(
        &base,
        &token,
        Method::PUT,
        "/ruleset",
        etag.as_deref(),
        Some(json!({"rules": [rule("Auditor")]})),
    )
    .await;
    assert_eq!(status, 200, "{published}");
    let first_version = published["version"].as_i64().unwrap();

    // The portal: exactly the granted role.
    let mut rg = fx.rolegate();
    let done = fx.sign_in(&mut rg, "corp", "alice").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let start = rg.fetch("/start", None).await;
    assert!(start.body.contains("Auditor"), "{}", start.body);
    assert!(!start.body.contains("Developer"), "{}", start.body);

    // The terminal: `rolegate login`, approved in the same (OIDC-signed-in) browser.
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    let mut login = crate::cli_login::LoginRun::start(&base, home, &[]);
    let (url, code) = login.verification_url().await.unwrap();
    let page = rg.fetch(&url, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let decided = rg
        .fetch(
            "/device",
            Some(&[
                ("csrf", &csrf),
                ("user_code", &code),
                ("confirmed_code", &code),
                ("decision", "approve"),
            ]),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    let (status, stdout, stderr) = login.finish().await.unwrap();
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("Auditor-{ACCOUNT}")), "{stderr}");
    assert!(!stderr.contains("Developer"), "{stderr}");
    let (code_ok, out) = terminal_credentials(home, "Auditor").await;
    assert_eq!(code_ok, 0, "{out}");
    assert!(out.contains("AccessKeyId"), "{out}");
    let (refused, out) = terminal_credentials(home, "Developer").await;
    assert_ne!(refused, 0, "{out}");

    // Impact names alice before the change is published.
    let (status, _, impact) = admin_call(
        &base,
        &token,
        Method::POST,
        "/ruleset/impact",
        None,
        Some(json!({"rules": [rule("Developer")]})),
    )
    .await;
    assert_eq!(status, 200, "{impact}");
    let alice = impact["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_name"] == "alice" && p["source"] == "corp")
        .unwrap_or_else(|| panic!("alice not named: {impact}"))
        .clone();
    assert_eq!(
        alice["gains"],
        json!([{"account": ACCOUNT, "role": "Developer"}])
    );
    assert_eq!(
        alice["loses"],
        json!([{"account": ACCOUNT, "role": "Auditor"}])
    );

    // The change applies at the next request, on the portal and in the terminal.
    let (status, etag, _) = admin_call(
        &base,
        &token,
        Method::PUT,
        "/mapping-rules/corp-devs",
        etag.as_deref(),
        Some(rule("Developer")),
    )
    .await;
    assert_eq!(status, 200);
    let start = rg.fetch("/start", None).await;
    assert!(start.body.contains("Developer"), "{}", start.body);
    assert!(!start.body.contains("Auditor"), "{}", start.body);
    assert_eq!(terminal_credentials(home, "Developer").await.0, 0);
    assert_ne!(terminal_credentials(home, "Auditor").await.0, 0);

    // Restoring the first version restores the first result.
    let (status, _, restored) = admin_call(
        &base,
        &token,
        Method::POST,
        &format!("/ruleset/versions/{first_version}/restore"),
        etag.as_deref(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    let start = rg.fetch("/start", None).await;
    assert!(start.body.contains("Auditor"), "{}", start.body);
    assert!(!start.body.contains("Developer"), "{}", start.body);
    assert_eq!(terminal_credentials(home, "Auditor").await.0, 0);
    assert_ne!(terminal_credentials(home, "Developer").await.0, 0);

    // The issued sessions' audit events name the ruleset version and the rule.
    let records = fx.state.store.list_audit(200, None).await.unwrap();
    let issued = records
        .iter()
        .find(|r| r.action == "sso:GetRoleCredentials" && r.outcome == Outcome::Success)
        .expect("terminal credentials audited");
    assert_eq!(issued.details["granted_by"], json!(["corp-devs"]));
    assert_eq!(issued.details["ruleset_version"], restored["version"]);
}

/// A source's `mapping.max_groups`: a person in more groups is refused at sign-in
/// (audited), never decided on a silently cut list; under the cap, they sign in.
async fn more_groups_than_the_source_allows_refuse_the_sign_in(db: TestStore) {
    let Some(fx) = setup(&db).await else { return };
    let mut config = fx.config(SECRET);
    config.mapping = Some(rolegate::mapping::ClaimsHygiene {
        max_groups: 1000,
        ..Default::default()
    });
    fx.add_source("capped", "Capped", config, true).await;
    crate::helpers::grant_group(&fx.state, "capped", "developers", ACCOUNT, "Developer").await;

    let mut rg = fx.rolegate();
    let page = fx.sign_in(&mut rg, "capped", "bob").await;
    refused(&mut rg, &page, 403, "1000").await;
    let records = fx.state.store.list_audit(100, None).await.unwrap();
    let denied = records
        .iter()
        .find(|r| r.action == "portal:SignIn" && r.outcome == Outcome::Denied)
        .expect("refusal audited");
    assert_eq!(denied.details["code"], "GROUPS_LIMIT_EXCEEDED");

    // Two groups are well under the cap.
    let mut rg = fx.rolegate();
    let done = fx.sign_in(&mut rg, "capped", "alice").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let start = rg.fetch("/start", None).await;
    assert!(start.body.contains("Developer"), "{}", start.body);
}
