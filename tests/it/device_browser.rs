//! The device link of `rolegate login --no-browser` opened in Chromium by someone who
//! is not signed in yet and signs in through the OIDC source (the real npm
//! `oidc-provider`, tests/peers/oidc): back at `/device` with the code filled in, they
//! approve, and the command line gets credentials for that OIDC user. Also the
//! `/account/mfa` enrolment page of a directory user without TOTP.
//!
//! Chromium, the OIDC peer and .venv are required in CI (`CI=true`); elsewhere a
//! missing Chromium or peer skips the test with a printed reason.

use std::sync::{Arc, Mutex};

use anyhow::ensure;
use rolegate::seed;
use rolegate::store::Outcome;

use crate::browser::{
    back_from_provider, browser_installed, password_of, provider_login, seeded_server,
    submit_sign_in, with_browser, with_oidc_peer,
};
use crate::cli_login::{LoginRun, rolegate, run};
use crate::helpers::{sqlite_store, venv_bin};
use crate::sso::{
    authorize_path, aws_home, create_token_with_code, pkce, portal_get, register_auth_code_client,
};

const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;

/// Signed out, the device link leads to the sign-in page; "Sign in with Corp IdP",
/// alice's password at the provider, consent, and the browser is back on the device
/// page with the code filled in and the requesting client named. Approve: `rolegate
/// login` ends well and `rolegate credentials` gives keys for alice *as the provider
/// knows her* (groups `Engineering`, `developers`: Developer only, unlike the
/// directory's alice, who is also Admin and ReadOnly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_from_the_device_link_then_approve() {
    if !browser_installed() {
        return;
    }
    let db = sqlite_store().await;
    let Some((base, state, peer)) = with_oidc_peer(&db).await else {
        return;
    };
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path().to_owned();
    let results = Arc::new(Mutex::new(None));
    {
        let out = results.clone();
        let base = base.clone();
        let home = home.clone();
        with_browser("device-oidc-test", |browser| async move {
            let outcome = async {
                let mut login = LoginRun::start(&base, &home, &[]);
                let (url, code) = login.verification_url().await?;

                // Not signed in: the link leads to the sign-in page, which keeps it.
                browser.goto(&url).await?;
                browser.wait_for_path("/signin").await?;
                let kept = browser
                    .find("input[name=return_to]")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default();
                ensure!(
                    kept == format!("/device?user_code={code}"),
                    "the sign-in page keeps the device link: {kept:?}"
                );
                let source = browser.find("a.signin-source").await?;
                let label = source.text().await?;
                ensure!(label.contains("Corp IdP"), "sign-in button {label:?}");
                source.click().await?;

                // At the provider: alice's password, consent, back to Rolegate.
                provider_login(&browser, "alice-password").await?;
                back_from_provider(&browser, &base, true).await?;
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
                ensure!(
                    shown == code,
                    "page shows code {shown:?}, terminal {code:?}"
                );
                let client = browser.find("#device-client").await?.text().await?;
                ensure!(
                    client.contains("rolegate-cli-rolegate")
                        && client.contains("asks to sign in as Alice Example"),
                    "requesting client and the provider's name shown: {client:?}"
                );
                let who = browser.find("header .who").await?.text().await?;
                ensure!(who == "Alice Example", "signed in as {who:?}");
                browser.screenshot("device-confirm").await?;

                let approve = browser.find("#approve").await?;
                browser.click_to_next_page(&approve).await?;
                let result = browser.find("#device-result").await?.text().await?;
                ensure!(result.contains("approved"), "result page says {result:?}");
                browser.screenshot("device-approved").await?;

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
    let printed_config = stdout.clone();
    // The provider's groups grant Developer only.
    assert!(stderr.contains(&format!("Developer-{ACCOUNT}")), "{stderr}");
    for role in ["Admin", "ReadOnly"] {
        assert!(!stderr.contains(&format!("{role}-{ACCOUNT}")), "{stderr}");
        assert!(!stdout.contains(&format!("{role}-{ACCOUNT}")), "{stdout}");
    }

    // The sign-in and the approval were the OIDC source's alice.
    let audit = state.store.list_audit(100, None).await.unwrap();
    let sign_ins: Vec<_> = audit
        .iter()
        .filter(|r| r.action == "portal:SignIn" && r.outcome == Outcome::Success)
        .collect();
    assert_eq!(sign_ins.len(), 1, "{sign_ins:?}");
    assert_eq!(sign_ins[0].target, "corp", "{:?}", sign_ins[0]);
    assert_eq!(sign_ins[0].actor, "alice", "preferred_username");
    assert_eq!(
        sign_ins[0].details["groups"],
        serde_json::json!(["Engineering", "developers"])
    );
    assert!(
        audit.iter().any(|r| r.action == "sso:ApproveDevice"
            && r.outcome == Outcome::Success
            && r.actor == "alice"
            && r.target == "rolegate-cli-rolegate"),
        "approval audited: {audit:?}"
    );

    // credential_process JSON for Developer.
    let role = ["--account-id", ACCOUNT, "--role-name", "Developer"];
    let (code, stdout, stderr) =
        rolegate(&[&["credentials"][..], &role].concat(), &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).expect("only JSON on stdout");
    assert_eq!(document["Version"], serde_json::json!(1));
    assert!(
        document["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA")),
        "{document}"
    );
    assert!(
        document["SessionToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(document["AccountId"], ACCOUNT);

    // The directory's alice could have Admin; the provider's alice cannot.
    let (code, stdout, stderr) = rolegate(
        &[
            "credentials",
            "--account-id",
            ACCOUNT,
            "--role-name",
            "Admin",
        ],
        &home,
        &[],
    )
    .await;
    assert_ne!(code, 0, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "rolegate: no credentials for role Admin in account {ACCOUNT}: "
        )),
        "{stderr}"
    );

    // The AWS CLI v1 through the credential_process profile `login` printed.
    assert!(
        printed_config.contains(&format!(
            "[profile Developer-{ACCOUNT}]\ncredential_process = rolegate credentials \
             --account-id {ACCOUNT} --role-name Developer\n"
        )),
        "{printed_config}"
    );
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/config"), &printed_config).unwrap();
    let (code, stdout, stderr) = run(
        venv_bin("aws"),
        &[
            "sts",
            "get-caller-identity",
            "--profile",
            &format!("Developer-{ACCOUNT}"),
            "--output",
            "json",
        ],
        &home,
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let identity: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        identity["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@example.com")
    );
    assert_eq!(identity["Account"], ACCOUNT);
    drop(peer);
}

/// The enrolment page of a directory user without TOTP, after signing in through
/// the link to it: the setup key and key URI to copy, and the confirm form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_enrolment_page_in_chromium() {
    let db = sqlite_store().await;
    let base = seeded_server(&db).await;
    with_browser("mfa-enrol-test", |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/account/mfa")).await?;
            browser.wait_for_path("/signin").await?;
            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            let at = browser.wait_for_path("/account/mfa").await?;
            ensure!(at == "/account/mfa", "back at the enrolment page: {at}");
            let status = browser.find("#mfa-status").await?.text().await?;
            ensure!(status.contains("is off"), "status {status:?}");
            let secret = browser.find("#totp-secret").await?.text().await?;
            ensure!(
                secret.len() >= 16
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
                "a base32 setup key: {secret:?}"
            );
            let uri = browser.find("#totp-uri").await?.text().await?;
            ensure!(
                uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret}")),
                "key URI {uri:?}"
            );
            browser.find("form[action='/account/mfa'] #code").await?;
            browser.screenshot("mfa-enrol").await?;
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

/// The CLI's side of the loopback redirect (RFC 8252 §7.3): a listener on an
/// ephemeral port of 127.0.0.1 that answers the first request as the AWS CLI v2
/// does and hands over its path and query.
async fn loopback_listener() -> (u16, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let text = String::from_utf8_lossy(&request).into_owned();
        let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
        let body = "<html><head><title>Amazon Web Services Sign-in</title></head>\
                    <body><h1 id=\"cli-done\">Request approved</h1></body></html>";
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        let _ = sender.send(target);
    });
    (port, receiver)
}

/// Issue 9: the AWS CLI v2's default `aws sso login` (authorization code + PKCE),
/// its wire played by boto3 and this test: RegisterClient with a loopback redirect
/// URI, the authorize URL opened in Chromium signed out, sign-in through the OIDC
/// source with the request kept, the client named on the approval page, Approve,
/// and the browser lands on the test's loopback listener with code and state;
/// CreateToken with the code and verifier gives a token that lists alice's accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_sign_in_through_oidc_in_chromium() {
    if !browser_installed() {
        return;
    }
    let db = sqlite_store().await;
    let Some((base, state, peer)) = with_oidc_peer(&db).await else {
        return;
    };
    let home = aws_home();
    let client = register_auth_code_client(home.path(), &base, "botocore-client-rolegate");
    let (verifier, challenge) = pkce();
    let (port, callback) = loopback_listener().await;
    let redirect_uri = format!("http://127.0.0.1:{port}/oauth/callback");
    let path = authorize_path(&client.id, &redirect_uri, "9b2e-state", &challenge);
    {
        let base = base.clone();
        let path = path.clone();
        with_browser("authorize-oidc-test", |browser| async move {
            let outcome = async {
                browser.goto(&format!("{base}{path}")).await?;
                browser.wait_for_path("/signin").await?;
                let kept = browser
                    .find("input[name=return_to]")
                    .await?
                    .prop("value")
                    .await?
                    .unwrap_or_default();
                ensure!(kept == path, "the sign-in page keeps the request: {kept:?}");
                browser.find("a.signin-source").await?.click().await?;
                provider_login(&browser, "alice-password").await?;
                back_from_provider(&browser, &base, true).await?;
                let at = browser.wait_for_path("/authorize").await?;
                ensure!(at == path, "back at the authorize request: {at}");
                let client = browser.find("#device-client").await?.text().await?;
                ensure!(
                    client.contains("botocore-client-rolegate")
                        && client.contains("asks to sign in as Alice Example"),
                    "requesting client shown: {client:?}"
                );
                browser.screenshot("authorize-confirm").await?;
                let approve = browser.find("#approve").await?;
                browser.click_to_next_page(&approve).await?;
                let done = browser.find("#cli-done").await?.text().await?;
                ensure!(
                    done == "Request approved",
                    "at the CLI's listener: {done:?}"
                );
                Ok(())
            }
            .await;
            (browser, outcome)
        })
        .await;
    }
    let target = tokio::time::timeout(std::time::Duration::from_secs(5), callback)
        .await
        .expect("the browser reached the loopback listener")
        .unwrap();
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}{target}")).unwrap();
    assert_eq!(url.path(), "/oauth/callback");
    let params: std::collections::HashMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "9b2e-state");
    let tokens = create_token_with_code(
        home.path(),
        &base,
        &client,
        &params["code"],
        &redirect_uri,
        &verifier,
    );
    let access = tokens["ok"]["accessToken"].as_str().expect("a token");
    let (status, _, roles) = portal_get(
        &base,
        &format!("/assignment/roles?account_id={ACCOUNT}"),
        Some(access),
    )
    .await;
    assert_eq!(status, 200, "{roles}");
    let names: Vec<&str> = roles["roleList"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["roleName"].as_str())
        .collect();
    assert_eq!(names, ["Developer"], "the provider's alice: {roles}");
    let audit = state.store.list_audit(100, None).await.unwrap();
    assert!(audit.iter().any(|r| r.action == "sso:Authorize"
        && r.outcome == Outcome::Success
        && r.actor == "alice"
        && r.target == "botocore-client-rolegate"));
    drop(peer);
}
