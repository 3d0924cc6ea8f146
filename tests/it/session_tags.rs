//! Session tags from user attributes, end to end with the real OIDC provider: an
//! identity source from `[[identity_sources]]` (applied as at start-up) with
//! `session_tags`, a sign-in at the provider, "Access keys", and those keys' console
//! showing the tags and deciding `${aws:PrincipalTag/...}` policies.

use rolegate::config::Config;
use rolegate::iam::{AccountId, PolicyName, RoleName};
use rolegate::store::NewRole;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state};
use crate::oidc_peer::{Browser, OidcPeer};
use crate::web_client::{exported, hidden};

const ACCOUNT: &str = "123456789012";

fn decision(body: &str) -> &str {
    let marker = "data-decision=\"";
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no decision in {body}"))
        + marker.len();
    &body[start..start + body[start..].find('"').unwrap()]
}

async fn oidc_claims_as_session_tags(db: TestStore) {
    let state = crate::helpers::app_state(db.store.clone()).await;
    let base = spawn_state(state.clone());
    let Some(peer) = OidcPeer::start_with(
        "a",
        &[
            "--redirect-uris",
            &format!("{base}/signin/oidc/corp/callback"),
        ],
    ) else {
        return;
    };
    let account = AccountId::parse(ACCOUNT).unwrap();
    state
        .store
        .create_account(&account, "engineering")
        .await
        .unwrap();
    let mut role = NewRole::new(
        account.clone(),
        RoleName::parse("Developer").unwrap(),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
            "Action": "sts:AssumeRole"}]})
        .to_string(),
    );
    role.inline_policies = vec![(
        PolicyName::parse("OwnHome").unwrap(),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::home/${aws:PrincipalTag/Login}/*"}]})
        .to_string(),
    )];
    state.store.create_role(&role).await.unwrap();
    crate::helpers::grant_group(&state, "corp", "developers", ACCOUNT, "Developer").await;

    // The source comes from configuration, as `serve` applies it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rolegate.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[identity_sources]]
id = "corp"
kind = "oidc"
display_name = "Corp IdP"
issuer = "{}"
client_id = "rolegate-portal"
client_secret = "rolegate-portal-secret"
scopes = ["openid", "profile", "email", "groups"]

[identity_sources.session_tags]
Login = "preferred_username"
Email = "email"
Teams = "groups_csv"
Nope = "no_such_claim"
"#,
            peer.issuer
        ),
    )
    .unwrap();
    let config = Config::load(Some(&file), Vec::new()).unwrap();
    let applied = rolegate::app::apply_identity_sources(&state, &config.identity_sources)
        .await
        .unwrap();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(applied[0].starts_with("created"), "{applied:?}");

    // Sign in at the provider.
    let mut rg = Browser::new(&base);
    let begin = rg.fetch("/signin/oidc/corp?return_to=/start", None).await;
    assert_eq!(begin.status, 303, "{}", begin.body);
    let mut idp = Browser::new(&peer.issuer);
    let login = idp.get(&begin.location.unwrap()).await.unwrap();
    let uid = login.rsplit('/').next().unwrap().to_owned();
    let resume = idp
        .post(
            &format!("{}/interaction/{uid}/login", peer.issuer),
            &[("login", "alice"), ("password", "alice-password")],
        )
        .await
        .unwrap();
    let consent = idp.get(&resume).await.unwrap();
    let uid = consent.rsplit('/').next().unwrap().to_owned();
    let resume = idp
        .post(&format!("{}/interaction/{uid}/confirm", peer.issuer), &[])
        .await
        .unwrap();
    let callback = idp.get(&resume).await.unwrap();
    let done = rg.fetch(&callback, None).await;
    assert_eq!(done.status, 303, "{}", done.body);

    // "Access keys", then a console with exactly those keys.
    let start = rg.fetch("/start", None).await;
    let keys = rg
        .fetch(
            "/start/credentials",
            Some(&[
                ("csrf", &hidden(&start.body, "csrf")),
                ("account", ACCOUNT),
                ("role", "Developer"),
            ]),
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    let session = json!({
        "sessionId": exported(&keys.body, "AWS_ACCESS_KEY_ID"),
        "sessionKey": exported(&keys.body, "AWS_SECRET_ACCESS_KEY"),
        "sessionToken": exported(&keys.body, "AWS_SESSION_TOKEN"),
    })
    .to_string();
    let token: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/federation"))
        .query(&[("Action", "getSigninToken"), ("Session", &session)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = format!(
        "/federation?{}",
        serde_urlencoded::to_string([
            ("Action", "login"),
            ("SigninToken", token["SigninToken"].as_str().unwrap()),
            ("Destination", "/console"),
        ])
        .unwrap()
    );
    let opened = rg.fetch(&link, None).await;
    assert_eq!(opened.status, 302, "{}", opened.body);
    let console = opened.location.unwrap();
    let page = rg.fetch(&console, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "<code>Login</code> = <code>alice</code>",
        "<code>Email</code> = <code>alice@example.com</code>",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        !page.body.contains("<code>Teams</code>") && !page.body.contains("<code>Nope</code>"),
        "a value with ';' and a missing claim are skipped: {}",
        page.body
    );
    for (resource, expected) in [
        ("arn:aws:s3:::home/alice/notes.txt", true),
        ("arn:aws:s3:::home/bob/notes.txt", false),
    ] {
        let checked = rg
            .fetch(
                &format!("{console}/check"),
                Some(&[
                    ("csrf", &hidden(&page.body, "csrf")),
                    ("action", "s3:GetObject"),
                    ("resource", resource),
                    ("context", ""),
                ]),
            )
            .await;
        assert_eq!(checked.status, 200, "{}", checked.body);
        assert_eq!(decision(&checked.body) == "Allowed", expected, "{resource}");
    }
}

both_backends!(oidc_claims_as_session_tags);
