//! Portal sign-in through a SAML identity source, against the real Debian
//! `simplesamlphp` IdP (tests/it/saml_peer.rs): the sources come from the
//! configuration file (`kind = "saml"`, metadata fetched from the IdP's URL); sign-in
//! in Chromium ends on the roles the IdP's groups earn and keeps a deep link; `rolegate
//! login` is approved through a SAML sign-in; the SP metadata; the admin API's SAML
//! sources; and the SP's own refusals (IdP-initiated when not allowed, an unknown
//! RelayState, a re-posted response, another browser, an oversized or expired
//! response), each a page, an audit event with the reason and the IdP, and no session.
//!
//! Source `corp`: SP-initiated only, AuthnRequests signed (the IdP checks them),
//! assertions encrypted to the SP certificate (both given as files). Source `open`:
//! IdP-initiated allowed, user name from `email`, its key pair generated at first
//! start. Groups: `developers` → Developer, `admins` → Admin (alice has both, bob
//! only `developers`).

use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use reqwest::{Method, StatusCode};
use rolegate::seed;
use rolegate::store::{AuditRecord, Outcome};
use rolegate::web::AppState;
use serde_json::{Value, json};

use crate::admin_client::{Api, person, session_of, with_admins};
use crate::both_backends;
use crate::browser::{
    Browser as Chromium, backend, browser_installed, console_arn, wait_for_visible_roles,
    with_browser,
};
use crate::helpers::{TestStore, spawn_state, sqlite_store};
use crate::oidc_peer::{Browser, Page};
use crate::saml_peer::{KeyPair, SamlIdp, SamlSp};

const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;
const ALL_ROLES: [&str; 4] = ["Admin", "Developer", "ReadOnly", "DemoWorkload"];

struct Fixture {
    base: String,
    state: AppState,
    idp: SamlIdp,
    _files: tempfile::TempDir,
}

/// Seeded Rolegate, the IdP knowing both sources, the sources applied from a
/// configuration file, and the group grants. `None` (skip) only outside CI without
/// simplesamlphp.
async fn setup(db: &TestStore) -> Option<Fixture> {
    // Admins: the directory's `admins` (for the admin pages' test sign-in).
    let state = with_admins(crate::helpers::app_state(db.store.clone()).await);
    seed::seed_demo(state.store.as_ref())
        .await
        .expect("seed demo");
    let base = spawn_state(state.clone());
    let sp_keys = KeyPair::generate("rolegate-corp-sp");
    let mut corp = SamlSp::new(
        &format!("{base}/saml/corp/metadata"),
        &format!("{base}/saml/corp/acs"),
    );
    corp.signing_cert_pem = Some(sp_keys.cert_pem.clone());
    corp.encryption_cert_pem = Some(sp_keys.cert_pem.clone());
    corp.validate_authnrequest = true;
    let open = SamlSp::new(
        &format!("{base}/saml/open/metadata"),
        &format!("{base}/saml/open/acs"),
    );
    let idp = SamlIdp::start(&[corp, open])?;

    let files = tempfile::tempdir().unwrap();
    let (certificate, key) = (files.path().join("sp.crt"), files.path().join("sp.key"));
    std::fs::write(&certificate, &sp_keys.cert_pem).unwrap();
    std::fs::write(&key, &sp_keys.key_pem).unwrap();
    let toml = format!(
        r#"
[[identity_sources]]
id = "corp"
kind = "saml"
display_name = "Corp SAML"
idp_metadata_url = "{metadata}"
sign_authn_requests = true
sp_certificate_file = "{certificate}"
sp_private_key_file = "{key}"

[[identity_sources]]
id = "open"
kind = "saml"
display_name = "Open SAML"
idp_metadata_url = "{metadata}"
allow_idp_initiated = true
user_name_attribute = "email"
clock_skew_seconds = 30
"#,
        metadata = idp.metadata_url(),
        certificate = certificate.display(),
        key = key.display(),
    );
    let file = files.path().join("rolegate.toml");
    std::fs::write(&file, toml).unwrap();
    let config = rolegate::config::Config::load(Some(&file), Vec::new()).expect("config");
    let lines = rolegate::app::apply_identity_sources(&state, &config.identity_sources)
        .await
        .expect("apply the SAML sources");
    assert_eq!(
        lines,
        [
            "created identity source corp (saml, Corp SAML)",
            "created identity source open (saml, Open SAML)"
        ]
    );
    // Applying the same configuration again changes nothing (the generated key of
    // `open` and the sealed key of `corp` are kept).
    let again = rolegate::app::apply_identity_sources(&state, &config.identity_sources)
        .await
        .unwrap();
    assert!(again.iter().all(|l| l.starts_with("kept")), "{again:?}");

    for source in ["corp", "open"] {
        for (group, role) in [("developers", "Developer"), ("admins", "Admin")] {
            crate::helpers::grant_group(&state, source, group, ACCOUNT, role).await;
        }
    }
    Some(Fixture {
        base,
        state,
        idp,
        _files: files,
    })
}

impl Fixture {
    fn acs(&self, source: &str) -> String {
        format!("{}/saml/{source}/acs", self.base)
    }

    /// Starts a sign-in at Rolegate (`return_to`), signs in at the IdP as `user`
    /// (password `<user>-pass`) and returns what the IdP posts back.
    async fn at_idp(
        &self,
        rolegate: &mut Browser,
        source: &str,
        return_to: &str,
        user: &str,
    ) -> crate::saml_peer::PostedResponse {
        let start = rolegate
            .fetch(&format!("/saml/{source}/login?return_to={return_to}"), None)
            .await;
        assert_eq!(start.status, 303, "{}", start.body);
        let to = start.location.unwrap();
        assert!(to.starts_with(&self.idp.sso_url()), "{to}");
        let posted = self
            .idp
            .response_for_request(&to, user, &format!("{user}-pass"))
            .await;
        assert_eq!(posted.action, self.acs(source));
        posted
    }

    /// Posts a response to the ACS of `source`, as the IdP's form would.
    async fn post(
        &self,
        rolegate: &mut Browser,
        source: &str,
        response: &str,
        relay_state: Option<&str>,
    ) -> Page {
        let mut form = vec![("SAMLResponse", response)];
        if let Some(relay) = relay_state {
            form.push(("RelayState", relay));
        }
        rolegate.fetch(&self.acs(source), Some(&form)).await
    }

    /// The newest `portal:SignIn` event: a refusal with `code`, naming the IdP, and
    /// never holding the response.
    async fn refused(&self, code: &str, response: &str) -> AuditRecord {
        let records = self.state.store.list_audit(100, None).await.unwrap();
        let record = records
            .into_iter()
            .find(|r| r.action == "portal:SignIn")
            .expect("a portal:SignIn audit event");
        assert_eq!(record.details["code"], code, "{record:?}");
        assert_eq!(record.details["method"], "saml");
        assert_eq!(record.details["idp"], json!(self.idp.entity_id));
        assert_eq!(record.outcome, Outcome::Failure);
        let text = serde_json::to_string(&record.details).unwrap();
        assert!(
            response.len() < 40 || !text.contains(&response[..40]),
            "the response stays out of the audit log"
        );
        record
    }

    async fn successful_sign_ins(&self) -> Vec<AuditRecord> {
        let records = self.state.store.list_audit(200, None).await.unwrap();
        records
            .into_iter()
            .filter(|r| r.action == "portal:SignIn" && r.outcome == Outcome::Success)
            .collect()
    }
}

/// Whether `rolegate` holds a live portal session.
async fn signed_in(rolegate: &mut Browser) -> bool {
    let page = rolegate.fetch("/start", None).await;
    page.status == 200
}

fn assert_page(page: &Page, status: u16, title: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.body.contains(title), "{title:?} in {}", page.body);
    assert!(page.body.contains("You are not signed in"), "{}", page.body);
}

/// Signing in through the SAML IdP in Chromium: the sign-in page offers both SAML
/// sources; Corp's button leads to simplesamlphp's own password form, and after it
/// (the IdP's auto-posting form, a real cross-origin POST to the ACS) the browser is
/// at /start with the roles alice's asserted groups earn: Admin and Developer, not
/// ReadOnly or DemoWorkload. After signing out, a deep link to Developer's console
/// survives the round trip (the IdP still knows alice: no password asked) and opens
/// that console as alice's email.
async fn saml_sign_in_in_chromium(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let shot = |page: &str| format!("saml-{page}-{}", backend(&db));
    let base = fixture.base.clone();
    let idp_base = fixture.idp.base_url.clone();
    with_browser(&shot("test"), |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/start")).await?;
            browser.wait_for_path("/signin").await?;
            let button = browser
                .find("a.signin-source[href^='/saml/corp/login']")
                .await?;
            let label = button.text().await?;
            ensure!(label.contains("Corp SAML"), "sign-in button {label:?}");
            browser.screenshot(&shot("signin")).await?;
            button.click().await?;

            idp_login(&browser, &idp_base, "alice", "alice-pass").await?;
            browser.wait_for_path("/start").await?;
            let here = browser.driver().current_url().await?;
            ensure!(here.as_str().starts_with(&base), "back at Rolegate: {here}");
            let who = browser.find("header .who").await?.text().await?;
            ensure!(who.contains("Alice Liddell"), "displayName: {who:?}");
            wait_for_visible_roles(&browser, &ALL_ROLES, &["Admin", "Developer"]).await?;
            browser.screenshot(&shot("accounts")).await?;

            browser
                .find("form[action='/logout'] button[type=submit]")
                .await?
                .click()
                .await?;
            browser.wait_for_path("/signin").await?;

            let link = format!("{base}/start#/account/{ACCOUNT}/role/Developer/console");
            browser.goto(&link).await?;
            browser.wait_for_path("/signin").await?;
            browser
                .find("a.signin-source[href^='/saml/corp/login']")
                .await?
                .click()
                .await?;
            let shown = console_arn(&browser)
                .await
                .context("deep link after SAML")?;
            let expected =
                format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@corp.example");
            ensure!(shown == expected, "deep link opened {shown}");
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
    let sign_ins = fixture.successful_sign_ins().await;
    assert_eq!(sign_ins.len(), 2, "{sign_ins:?}");
    assert!(
        sign_ins
            .iter()
            .all(|r| r.target == "corp" && r.actor == "alice")
    );
    assert_eq!(
        sign_ins[0].details["groups"],
        json!(["developers", "admins"])
    );
    let accepted = fixture.state.store.list_audit(200, None).await.unwrap();
    let accepted: Vec<_> = accepted
        .iter()
        .filter(|r| r.action == "saml:AcceptAssertion")
        .collect();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0].details["idp"], json!(fixture.idp.entity_id));
    assert_eq!(accepted[0].details["sp_initiated"], json!(true));
}

/// At simplesamlphp's password form (on the IdP's origin): signs in; the IdP's page
/// then posts the response to Rolegate by itself.
async fn idp_login(
    browser: &Chromium,
    idp_base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<()> {
    let username = browser.find("input[name=username]").await?;
    let at = browser.driver().current_url().await?;
    ensure!(at.as_str().starts_with(idp_base), "at the IdP: {at}");
    username.clear().await?;
    username.send_keys(user).await?;
    browser
        .find("input[name=password]")
        .await?
        .send_keys(password)
        .await?;
    let submit = browser.find("#submit_button").await?;
    browser.click_to_next_page(&submit).await
}

/// `rolegate login --no-browser`, its device link opened in Chromium by someone not
/// signed in, who signs in through SAML source `corp` as bob: back at the device page
/// with the code, approve; the command line then has exactly the role bob's group
/// earns (Developer), and `rolegate credentials` gives keys for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolegate_login_approved_through_a_saml_sign_in() {
    if !browser_installed() {
        return;
    }
    let db = sqlite_store().await;
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path().to_owned();
    let results = Arc::new(Mutex::new(None));
    {
        let out = results.clone();
        let base = fixture.base.clone();
        let idp_base = fixture.idp.base_url.clone();
        let home = home.clone();
        with_browser("device-saml-test", |browser| async move {
            let outcome = async {
                let mut login = crate::cli_login::LoginRun::start(&base, &home, &[]);
                let (url, code) = login.verification_url().await?;
                browser.goto(&url).await?;
                browser.wait_for_path("/signin").await?;
                browser
                    .find("a.signin-source[href^='/saml/corp/login']")
                    .await?
                    .click()
                    .await?;
                idp_login(&browser, &idp_base, "bob", "bob-pass").await?;
                let at = browser.wait_for_path("/device").await?;
                ensure!(
                    at == format!("/device?user_code={code}"),
                    "back at the device link: {at}"
                );
                let shown = browser
                    .find("#user_code")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default();
                ensure!(shown == code, "page shows {shown:?}, terminal {code:?}");
                let approve = browser.find("#approve").await?;
                browser.click_to_next_page(&approve).await?;
                let result = browser.find("#device-result").await?.text().await?;
                ensure!(result.contains("approved"), "result page says {result:?}");
                *out.lock().unwrap() = Some(login.finish().await?);
                Ok(())
            }
            .await;
            (browser, outcome)
        })
        .await;
    }
    let taken = results.lock().unwrap().take();
    let (code, stdout, stderr) = taken.expect("login ran");
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("Signed in."), "{stderr}");
    assert!(stderr.contains(&format!("Developer-{ACCOUNT}")), "{stderr}");
    for role in ["Admin", "ReadOnly"] {
        assert!(!stderr.contains(&format!("{role}-{ACCOUNT}")), "{stderr}");
    }
    let audit = fixture.state.store.list_audit(100, None).await.unwrap();
    assert!(
        audit.iter().any(|r| r.action == "sso:ApproveDevice"
            && r.outcome == Outcome::Success
            && r.actor == "bob"),
        "approval by the SAML bob audited: {audit:?}"
    );
    let (code, stdout, stderr) = crate::cli_login::rolegate(
        &[
            "credentials",
            "--account-id",
            ACCOUNT,
            "--role-name",
            "Developer",
        ],
        &home,
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).expect("credential_process JSON");
    assert!(
        document["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA")),
        "{document}"
    );
}

/// `GET /saml/<id>/metadata`: the SP metadata an IdP is given, parsed by samael: the
/// default entityID, the ACS with the HTTP-POST binding, the (given) certificate for
/// signing and for encryption, and whether AuthnRequests are signed. A source's
/// generated certificate is published for the other source; an unknown source is a
/// 404 page.
async fn sp_metadata_names_entity_acs_and_certificates(db: TestStore) {
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let client = reqwest::Client::new();
    for source in ["corp", "open"] {
        let response = client
            .get(format!("{}/saml/{source}/metadata", fixture.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/samlmetadata+xml"
        );
        let xml = response.text().await.unwrap();
        let parsed: samael::metadata::EntityDescriptor = xml.parse().expect("SAML metadata");
        assert_eq!(
            parsed.entity_id.as_deref(),
            Some(format!("{}/saml/{source}/metadata", fixture.base).as_str())
        );
        let sp = &parsed.sp_sso_descriptors.as_ref().unwrap()[0];
        assert_eq!(sp.assertion_consumer_services.len(), 1);
        let acs = &sp.assertion_consumer_services[0];
        assert_eq!(acs.location, fixture.acs(source));
        assert_eq!(
            acs.binding,
            "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        );
        assert_eq!(sp.authn_requests_signed, Some(source == "corp"));
        assert_eq!(sp.want_assertions_signed, Some(true));
        let keys = sp.key_descriptors.as_ref().unwrap();
        let uses: Vec<_> = keys.iter().map(|k| k.key_use.clone().unwrap()).collect();
        assert_eq!(uses, ["signing", "encryption"]);
        let certificate = keys[0].key_info.x509_data.as_ref().unwrap().certificates[0].clone();
        assert_eq!(
            keys[1].key_info.x509_data.as_ref().unwrap().certificates[0],
            certificate
        );
        let stored = fixture
            .state
            .store
            .get_identity_source(source)
            .await
            .unwrap();
        let pem = stored.config["sp_certificate"].as_str().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(certificate, body, "the stored certificate is published");
        let sealed = stored.config["sp_private_key"].as_str().unwrap();
        assert!(!sealed.contains("PRIVATE KEY"), "the key is sealed at rest");
    }
    let missing = client
        .get(format!("{}/saml/nope/metadata", fixture.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("Unknown sign-in method")
    );
}

/// The round trip over plain HTTP (two cookie jars: Rolegate's and the IdP's): an
/// SP-initiated sign-in as alice lands on the return path with a session; a signed,
/// encrypted response was accepted. Then every refusal of the SP's own: each a page
/// saying what happened, a `portal:SignIn` failure with the reason code and the IdP's
/// entityID, and no session.
async fn sp_sign_in_and_every_refusal(db: TestStore) {
    let Some(fixture) = setup(&db).await else {
        return;
    };

    // The happy path, with a return path.
    let mut rolegate = Browser::new(&fixture.base);
    let posted = fixture
        .at_idp(&mut rolegate, "corp", "/start/credentials", "alice")
        .await;
    assert!(
        posted.xml().contains("EncryptedAssertion"),
        "encrypted to the SP"
    );
    let relay = posted.relay_state.clone().expect("RelayState");
    assert!(relay.len() <= 80);
    let page = fixture
        .post(&mut rolegate, "corp", &posted.saml_response, Some(&relay))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{}/start/credentials", fixture.base).as_str())
    );
    assert!(signed_in(&mut rolegate).await);
    assert!(
        !rolegate.cookies.contains_key("rg_saml"),
        "the spent binding cookie is removed"
    );
    let sign_ins = fixture.successful_sign_ins().await;
    assert_eq!(sign_ins.len(), 1);
    assert_eq!(sign_ins[0].actor, "alice");

    // The same response posted again: its RelayState is spent.
    let mut replayer = Browser::new(&fixture.base);
    replayer.cookies = rolegate.cookies.clone();
    replayer.cookies.remove("rg_session");
    let page = fixture
        .post(&mut replayer, "corp", &posted.saml_response, Some(&relay))
        .await;
    assert_page(&page, 400, "Sign-in expired or already used");
    assert!(!replayer.cookies.contains_key("rg_session"));
    assert!(!signed_in(&mut replayer).await);
    fixture
        .refused("replayed_relay_state", &posted.saml_response)
        .await;

    // Without the RelayState: an IdP-initiated post, which corp does not accept.
    let page = fixture
        .post(&mut replayer, "corp", &posted.saml_response, None)
        .await;
    assert_page(&page, 403, "Sign-in must start at Rolegate");
    fixture
        .refused("idp_initiated_not_allowed", &posted.saml_response)
        .await;
    // A genuine IdP-initiated response from the IdP, likewise.
    let unsolicited = fixture
        .idp
        .idp_initiated_response(
            &format!("{}/saml/corp/metadata", fixture.base),
            "alice",
            "alice-pass",
        )
        .await;
    let mut stranger = Browser::new(&fixture.base);
    let page = fixture
        .post(&mut stranger, "corp", &unsolicited, None)
        .await;
    assert_page(&page, 403, "Sign-in must start at Rolegate");
    assert!(!signed_in(&mut stranger).await);
    fixture
        .refused("idp_initiated_not_allowed", &unsolicited)
        .await;

    // A RelayState Rolegate never issued.
    let page = fixture
        .post(
            &mut stranger,
            "corp",
            &unsolicited,
            Some("bm90LWEtcmVsYXktc3RhdGUtb2YtUm9sZWdhdGVz"),
        )
        .await;
    assert_page(&page, 400, "Sign-in expired or already used");
    assert!(!signed_in(&mut stranger).await);
    fixture.refused("unknown_relay_state", &unsolicited).await;

    // A sign-in started in one browser, its response posted from another (login
    // CSRF): the RelayState is right, the binding cookie is not.
    let mut victim = Browser::new(&fixture.base);
    let posted = fixture.at_idp(&mut victim, "corp", "/start", "bob").await;
    let page = fixture
        .post(
            &mut stranger,
            "corp",
            &posted.saml_response,
            posted.relay_state.as_deref(),
        )
        .await;
    assert_page(&page, 400, "Sign-in expired or already used");
    assert!(!signed_in(&mut stranger).await);
    fixture
        .refused("browser_mismatch", &posted.saml_response)
        .await;

    // Over 100,000 characters: refused before anything else is looked at.
    let huge = "P".repeat(100_001);
    let page = fixture.post(&mut stranger, "corp", &huge, None).await;
    assert_page(&page, 413, "Sign-in response too large");
    fixture.refused("too_large", &huge).await;

    // Source `open` takes IdP-initiated responses, once each.
    let unsolicited = fixture
        .idp
        .idp_initiated_response(
            &format!("{}/saml/open/metadata", fixture.base),
            "bob",
            "bob-pass",
        )
        .await;
    let mut first = Browser::new(&fixture.base);
    let page = fixture.post(&mut first, "open", &unsolicited, None).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{}/start", fixture.base).as_str())
    );
    assert!(signed_in(&mut first).await);
    let sign_ins = fixture.successful_sign_ins().await;
    assert_eq!(
        sign_ins[0].actor, "bob@corp.example",
        "user_name_attribute = email"
    );
    assert_eq!(sign_ins[0].target, "open");
    // The same assertion again: the replay cache refuses it.
    let mut second = Browser::new(&fixture.base);
    let page = fixture.post(&mut second, "open", &unsolicited, None).await;
    assert_page(&page, 401, "Sign-in could not be verified");
    assert!(page.body.contains("already used once"), "{}", page.body);
    assert!(!signed_in(&mut second).await);
    fixture.refused("replayed", &unsolicited).await;
    // An SP-initiated response of corp posted to open's ACS: the RelayState names
    // another source.
    let mut browser = Browser::new(&fixture.base);
    let posted = fixture
        .at_idp(&mut browser, "corp", "/start", "alice")
        .await;
    let page = fixture
        .post(
            &mut browser,
            "open",
            &posted.saml_response,
            posted.relay_state.as_deref(),
        )
        .await;
    assert_page(&page, 400, "Sign-in expired or already used");
    fixture
        .refused("source_mismatch", &posted.saml_response)
        .await;

    // A response that has expired (beyond `open`'s 30 s of skew) by the time it
    // arrives.
    let late = fixture
        .idp
        .idp_initiated_response(
            &format!("{}/saml/open/metadata", fixture.base),
            "bob",
            "bob-pass",
        )
        .await;
    db.hand.advance(std::time::Duration::from_secs(3600));
    let mut browser = Browser::new(&fixture.base);
    let page = fixture.post(&mut browser, "open", &late, None).await;
    assert_page(&page, 401, "Sign-in could not be verified");
    assert!(page.body.contains("expired"), "{}", page.body);
    assert!(!signed_in(&mut browser).await);
    fixture.refused("expired", &late).await;
    assert_eq!(fixture.successful_sign_ins().await.len(), 2);
}

/// SAML sources through the admin API: created from pasted metadata XML (the SP key
/// pair generated, the key only ever shown as "set") and from the metadata URL;
/// metadata without a signing certificate is refused with the setting named; a
/// replace keeps the imported metadata and the key pair unless told otherwise.
async fn saml_sources_through_the_admin_api(db: TestStore) {
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let api = Api::serve(with_admins(fixture.state.clone())).await;
    let metadata = fixture.idp.metadata_xml().await;
    let created = api
        .call(
            Method::POST,
            "/identity-sources",
            Some(json!({
                "id": "pasted", "kind": "saml", "display_name": "Pasted SAML",
                "config": {"idp_metadata": metadata, "groups_attribute": "groups",
                           "allow_idp_initiated": true, "clock_skew_seconds": 120}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let body = created.json();
    assert_eq!(body["kind"], "saml");
    assert_eq!(body["config"]["sp_private_key"], "set");
    assert_eq!(body["config"]["clock_skew_seconds"], 120);
    let certificate = body["config"]["sp_certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!created.text.contains("PRIVATE KEY"));
    let served = reqwest::get(format!("{}/saml/pasted/metadata", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        served.contains(&format!("{}/saml/pasted/acs", api.base)),
        "{served}"
    );

    // Replace: a new skew, the metadata and key pair kept.
    let replaced = api
        .call(
            Method::PUT,
            "/identity-sources/pasted",
            Some(json!({
                "kind": "saml", "display_name": "Pasted SAML",
                "config": {"clock_skew_seconds": 30, "sp_private_key": "set"}
            })),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    let body = replaced.json();
    assert_eq!(body["config"]["sp_certificate"], json!(certificate));
    assert_eq!(body["config"]["clock_skew_seconds"], 30);
    assert_eq!(body["config"]["idp_metadata"], json!(metadata));

    // From the URL.
    let from_url = api
        .call(
            Method::POST,
            "/identity-sources",
            Some(json!({
                "id": "fetched", "kind": "saml", "display_name": "Fetched SAML",
                "config": {"idp_metadata_url": fixture.idp.metadata_url()}
            })),
        )
        .await;
    assert_eq!(from_url.status, StatusCode::CREATED, "{}", from_url.text);
    assert!(
        from_url.json()["config"]["idp_metadata"]
            .as_str()
            .unwrap()
            .contains(&fixture.idp.entity_id)
    );

    // Metadata without its signing certificate.
    let unsigned = regex::Regex::new(r"(?s)<(md:)?KeyDescriptor.*?</(md:)?KeyDescriptor>")
        .unwrap()
        .replace_all(&metadata, "")
        .into_owned();
    assert!(!unsigned.contains("X509Certificate"));
    let refused = api
        .call(
            Method::POST,
            "/identity-sources",
            Some(json!({
                "id": "nocert", "kind": "saml", "display_name": "No cert",
                "config": {"idp_metadata": unsigned}
            })),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.code(), "INVALID_SAML_CONFIG");
    assert_eq!(refused.pointer(), "/config/idp_metadata");
    // Neither URL nor XML.
    let refused = api
        .call(
            Method::POST,
            "/identity-sources",
            Some(json!({"id": "nothing", "kind": "saml", "display_name": "Nothing", "config": {}})),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert!(api.state.store.get_identity_source("nocert").await.is_err());
    // The sign-in page offers every enabled SAML source.
    let page = reqwest::get(format!("{}/signin", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (id, name) in [("corp", "Corp SAML"), ("pasted", "Pasted SAML")] {
        assert!(
            page.contains(&format!("href=\"/saml/{id}/login?return_to=")),
            "{page}"
        );
        assert!(page.contains(name));
    }
}

/// The admin pages of a SAML source, and its test sign-in: the list names the IdP;
/// the edit page shows the imported IdP, the SP metadata link and the SAML settings;
/// "Test sign-in" runs the real SP-initiated flow (bob at the IdP) in the admin's
/// browser, starts no session, and the result page shows the attributes received and
/// the role bob's group would earn.
async fn admin_pages_and_test_sign_in(db: TestStore) {
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let (session, _) = session_of(&fixture.state, person("root", &["admins"])).await;
    let mut admin = Browser::new(&fixture.base);
    admin.cookies.insert("rg_session".into(), session.clone());

    let list = admin.fetch("/admin/identity-sources", None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("SAML 2.0"));
    assert!(list.body.contains(&fixture.idp.entity_id), "{}", list.body);
    assert!(
        list.body
            .contains("/admin/identity-sources/corp/test-sign-in")
    );
    let edit = admin.fetch("/admin/identity-sources/corp", None).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    for expected in [
        fixture.idp.entity_id.as_str(),
        "href=\"/saml/corp/metadata\"",
        "name=\"config.allow_idp_initiated\"",
        "name=\"config.groups_attribute\" value=\"groups\"",
        "name=\"config.idp_metadata_url\"",
    ] {
        assert!(edit.body.contains(expected), "{expected} in {}", edit.body);
    }
    let new = admin
        .fetch("/admin/identity-sources/new?kind=saml", None)
        .await;
    assert_eq!(new.status, 200);
    assert!(new.body.contains("New SAML identity source"));
    assert!(new.body.contains("name=\"config.idp_metadata\""));

    let start = admin
        .fetch("/admin/identity-sources/corp/test-sign-in", None)
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let to = start.location.unwrap();
    assert!(to.starts_with(&fixture.idp.sso_url()), "{to}");
    let posted = fixture
        .idp
        .response_for_request(&to, "bob", "bob-pass")
        .await;
    let page = fixture
        .post(
            &mut admin,
            "corp",
            &posted.saml_response,
            posted.relay_state.as_deref(),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let result = page.location.unwrap();
    assert!(
        result.contains("/admin/identity-sources/corp/test-result?result="),
        "{result}"
    );
    assert_eq!(admin.cookies["rg_session"], session, "no new session");
    let shown = admin.fetch(&result, None).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    for expected in ["bob@corp.example", "developers", "Developer", "displayName"] {
        assert!(
            shown.body.contains(expected),
            "{expected} in {}",
            shown.body
        );
    }
    assert!(!shown.body.contains(">Admin<"), "bob is not in admins");
    assert!(fixture.successful_sign_ins().await.is_empty());
    let audit = fixture.state.store.list_audit(100, None).await.unwrap();
    assert!(
        audit.iter().any(|r| r.action == "admin:TestSignIn"
            && r.outcome == Outcome::Success
            && r.details["stage"] == "completed"
            && r.details["method"] == "saml"),
        "{audit:?}"
    );
}

/// Over https (the configured public origin), the browser binding is a
/// `__Host-rg_saml` cookie, Secure and `SameSite=None`: the IdP's POST to the ACS is
/// cross-site, and a Lax cookie would not come with it. The SP metadata and the
/// AuthnRequest name the https endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_binding_cookie_is_sent_cross_site() {
    let db = sqlite_store().await;
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let origin = "https://rolegate.example.com";
    let state = fixture
        .state
        .clone()
        .with_server(rolegate::web::ServerSettings {
            public_url: Some(rolegate::web::PublicUrl::parse(origin).unwrap()),
            ..Default::default()
        });
    let base = spawn_state(state);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = client
        .get(format!("{base}/saml/corp/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let cookie = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "__Host-rg_saml=",
        "Secure",
        "SameSite=None",
        "HttpOnly",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let to = start.headers()["location"].to_str().unwrap().to_owned();
    let query: std::collections::BTreeMap<String, String> = reqwest::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(query.contains_key("Signature") && query.contains_key("SigAlg"));
    let deflated = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &query["SAMLRequest"],
    )
    .unwrap();
    let mut request = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::DeflateDecoder::new(deflated.as_slice()),
        &mut request,
    )
    .unwrap();
    assert!(
        request.contains(&format!(
            "AssertionConsumerServiceURL=\"{origin}/saml/corp/acs\""
        )),
        "{request}"
    );
    assert!(
        request.contains(&format!("{origin}/saml/corp/metadata</")),
        "{request}"
    );
    let metadata = client
        .get(format!("{base}/saml/open/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metadata.contains(&format!("entityID=\"{origin}/saml/open/metadata\"")));
}

/// The admin UI's "New SAML source" form in Chromium (its JavaScript sends the admin
/// API request): pasted metadata without a signing certificate is refused with the
/// reason beside the paste box and nothing saved; with the IdP's metadata URL instead
/// the source is created, and its page shows the imported IdP and the SP metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saml_source_created_in_the_admin_ui() {
    if !browser_installed() {
        return;
    }
    let db = sqlite_store().await;
    let Some(fixture) = setup(&db).await else {
        return;
    };
    let unsigned = regex::Regex::new(r"(?s)<(md:)?KeyDescriptor.*?</(md:)?KeyDescriptor>")
        .unwrap()
        .replace_all(&fixture.idp.metadata_xml().await, "")
        .into_owned();
    let base = fixture.base.clone();
    let metadata_url = fixture.idp.metadata_url();
    let entity_id = fixture.idp.entity_id.clone();
    let store = fixture.state.store.clone();
    with_browser("admin-ui-saml", |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/signin")).await?;
            crate::browser::submit_sign_in(&browser, "alice", crate::browser::password_of("alice"))
                .await?;
            browser.wait_for_path("/start").await?;
            browser
                .goto(&format!("{base}/admin/identity-sources"))
                .await?;
            browser.find("#new-saml-source").await?.click().await?;
            browser.wait_for_path("/admin/identity-sources/new").await?;
            let heading = browser.find("main h1").await?.text().await?;
            ensure!(heading.contains("New SAML identity source"), "{heading}");
            crate::admin_ui_browser::type_into(&browser, "input[name=id]", "ui-saml").await?;
            crate::admin_ui_browser::type_into(&browser, "input[name=display_name]", "UI SAML")
                .await?;
            crate::admin_ui_browser::type_into(
                &browser,
                "textarea[name='config.idp_metadata']",
                &unsigned,
            )
            .await?;
            browser
                .find("#source-form button[type=submit]")
                .await?
                .click()
                .await?;
            let error = crate::admin_ui_browser::wait_for_text(
                &browser,
                "textarea[name='config.idp_metadata'] + .field-error",
                "IdP metadata refused",
            )
            .await?;
            ensure!(
                store.get_identity_source("ui-saml").await.is_err(),
                "nothing saved: {error}"
            );
            browser.screenshot("admin-ui-saml-refused").await?;

            browser
                .find("textarea[name='config.idp_metadata']")
                .await?
                .clear()
                .await?;
            crate::admin_ui_browser::type_into(
                &browser,
                "input[name='config.idp_metadata_url']",
                &metadata_url,
            )
            .await?;
            browser
                .find("#source-form button[type=submit]")
                .await?
                .click()
                .await?;
            browser
                .wait_for_path("/admin/identity-sources/ui-saml")
                .await?;
            let imported = browser.find("#idp-entity-id").await?.text().await?;
            ensure!(imported == entity_id, "imported IdP {imported:?}");
            browser
                .find("a#sp-metadata[href='/saml/ui-saml/metadata']")
                .await?;
            browser.screenshot("admin-ui-saml-created").await?;
            let source = store.get_identity_source("ui-saml").await?;
            ensure!(
                source.kind == rolegate::store::IdentitySourceKind::Saml
                    && source.config["groups_attribute"] == "groups"
                    && source.config["allow_idp_initiated"] == false,
                "{source:?}"
            );
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

both_backends!(
    admin_pages_and_test_sign_in,
    saml_sign_in_in_chromium,
    sp_metadata_names_entity_acs_and_certificates,
    sp_sign_in_and_every_refusal,
    saml_sources_through_the_admin_api,
);
