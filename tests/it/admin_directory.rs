//! The admin API's directory and identity-source endpoints over real HTTP on both
//! backends: a user created, given a password and signing in through the real
//! directory form, locked (signing in then fails like a wrong password) and
//! unlocked; generated passwords; resetting the second factor; groups and members;
//! the lock-out guard (409 `LOCKOUT_RISK` unless confirmed); OIDC sources whose
//! client secret is sealed and never shown; validation with pointers; read tokens;
//! audit events without secrets.

use reqwest::{Method, StatusCode};
use rolegate::iam::UserName;
use rolegate::idp::directory::DIRECTORY_SOURCE_ID;
use rolegate::idp::oidc::client_secret_context;
use rolegate::store::Outcome;
use serde_json::{Value, json};

use crate::admin_client::{Api, Auth, person, with_admins};
use crate::both_backends;
use crate::helpers::{TestStore, assert_audited};
use crate::web_client::{Browser, password_of, seeded};

const ERIN_PASSWORD: &str = "erin-first-password-1";
const CLIENT_SECRET: &str = "corp-client-secret-4f9a2c";

async fn admin_directory_user_lifecycle(db: TestStore) {
    let api = Api::serve(with_admins(seeded(&db).await)).await;
    let created = api
        .call(
            Method::POST,
            "/directory/users",
            Some(
                json!({"user_name": "erin", "display_name": "Erin E", "email": "erin@example.com"}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let body = created.json();
    assert_eq!(body["user_name"], "erin");
    assert_eq!(body["password_set"], false);
    assert!(body["locked_at"].is_null());
    assert!(body.get("password_hash").is_none());

    let duplicate = api
        .call(
            Method::POST,
            "/directory/users",
            Some(json!({"user_name": "Erin"})),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.code(), "DUPLICATE_NAME");
    let bad_name = api
        .call(
            Method::POST,
            "/directory/users",
            Some(json!({"user_name": "er in"})),
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (bad_name.code(), bad_name.pointer()),
        ("INVALID_USER_NAME", "/user_name")
    );
    let bad_email = api
        .call(
            Method::POST,
            "/directory/users",
            Some(json!({"user_name": "frank", "email": "not-an-address"})),
        )
        .await;
    assert_eq!(bad_email.pointer(), "/email");

    // A read token reads, but cannot write.
    let listed = api
        .call_as(
            Auth::Token(&api.read),
            Method::GET,
            "/directory/users",
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        listed.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user_name"] == "erin")
    );
    let read_only = api
        .call_as(
            Auth::Token(&api.read),
            Method::POST,
            "/directory/users/erin/password",
            Some(json!({"password": ERIN_PASSWORD})),
        )
        .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN);
    assert_eq!(read_only.code(), "INSUFFICIENT_SCOPE");

    let weak = api
        .call(
            Method::POST,
            "/directory/users/erin/password",
            Some(json!({"password": "short"})),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (weak.code(), weak.pointer()),
        ("WEAK_PASSWORD", "/password")
    );
    let set = api
        .call(
            Method::POST,
            "/directory/users/erin/password",
            Some(json!({"password": ERIN_PASSWORD})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert!(
        set.json().get("password").is_none(),
        "a given password is not echoed"
    );

    // Erin signs in through the real directory form.
    let mut erin = Browser::new(&api.base);
    let signed_in = erin.sign_in("erin", ERIN_PASSWORD, "/start").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(erin.get("/start").await.status, 200);

    // Locked: her session ends, and the right password fails like a wrong one.
    let locked = api
        .call(Method::POST, "/directory/users/erin/lock", None)
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.text);
    assert!(locked.json()["locked_at"].is_string());
    assert_ne!(erin.get("/start").await.status, 200, "the session ended");
    let mut other = Browser::new(&api.base);
    let wrong = other
        .sign_in("erin", "not-her-password-at-all", "/start")
        .await;
    let refused = other.sign_in("erin", ERIN_PASSWORD, "/start").await;
    assert_eq!((wrong.status, refused.status), (401, 401));
    assert!(
        refused
            .body
            .contains("The user name or password is incorrect.")
    );
    assert!(other.cookie("rg_session").is_none());
    let shown = api.call(Method::GET, "/directory/users/erin", None).await;
    assert!(shown.json()["locked_at"].is_string());

    let unlocked = api
        .call(Method::POST, "/directory/users/erin/unlock", None)
        .await;
    assert_eq!(unlocked.status, StatusCode::OK);
    assert!(unlocked.json()["locked_at"].is_null());
    let mut again = Browser::new(&api.base);
    assert_eq!(
        again.sign_in("erin", ERIN_PASSWORD, "/start").await.status,
        303
    );

    // A generated password is shown once, replaces the old one and ends sessions.
    let generated = api
        .call(
            Method::POST,
            "/directory/users/erin/password",
            Some(json!({"generate": true})),
        )
        .await;
    assert_eq!(generated.status, StatusCode::OK, "{}", generated.text);
    let new_password = generated.json()["password"].as_str().unwrap().to_owned();
    assert!(new_password.len() >= 20);
    assert_eq!(generated.json()["portal_sessions_ended"], 1);
    assert_ne!(again.get("/start").await.status, 200);
    let mut later = Browser::new(&api.base);
    assert_eq!(
        later.sign_in("erin", ERIN_PASSWORD, "/start").await.status,
        401
    );
    assert_eq!(
        later.sign_in("erin", &new_password, "/start").await.status,
        303
    );
    let both = api
        .call(
            Method::POST,
            "/directory/users/erin/password",
            Some(json!({"generate": true, "password": ERIN_PASSWORD})),
        )
        .await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Resetting the second factor turns it off.
    let erin_name = UserName::parse("erin").unwrap();
    api.state
        .store
        .set_totp_secret(
            DIRECTORY_SOURCE_ID,
            &erin_name,
            Some(("v1:sealed-totp-secret", chrono::Utc::now())),
        )
        .await
        .unwrap();
    assert!(
        api.call(Method::GET, "/directory/users/erin", None)
            .await
            .json()["totp_enabled_at"]
            .is_string()
    );
    let reset = api
        .call(Method::DELETE, "/directory/users/erin/totp", None)
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.text);
    let row = api
        .state
        .store
        .get_user(DIRECTORY_SOURCE_ID, &erin_name)
        .await
        .unwrap();
    assert!(row.totp_secret.is_none() && row.totp_enabled_at.is_none());
    let hash = row.password_hash.clone().unwrap();

    let deleted = api
        .call(Method::DELETE, "/directory/users/erin", None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let gone = api.call(Method::GET, "/directory/users/erin", None).await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    assert_eq!(
        api.call(Method::POST, "/directory/users/erin/lock", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_audited(
        api.state.store.as_ref(),
        &[
            ("admin:CreateDirectoryUser", Outcome::Success),
            ("admin:SetDirectoryUserPassword", Outcome::Success),
            ("admin:LockDirectoryUser", Outcome::Success),
            ("admin:UnlockDirectoryUser", Outcome::Success),
            ("admin:ResetDirectoryUserTotp", Outcome::Success),
            ("admin:DeleteDirectoryUser", Outcome::Success),
            ("portal:SignIn", Outcome::Failure),
        ],
        &[ERIN_PASSWORD, &new_password, &hash, "v1:sealed-totp-secret"],
    )
    .await;
    let audit = api.state.store.list_audit(200, None).await.unwrap();
    let lock = audit
        .iter()
        .find(|e| e.action == "admin:LockDirectoryUser")
        .unwrap();
    assert!(
        lock.actor.starts_with("token:") && lock.actor.ends_with(" (directory:alice)"),
        "{}",
        lock.actor
    );
    assert!(lock.details["before"]["locked_at"].is_null());
    assert!(lock.details["after"]["locked_at"].is_string());
    assert!(
        audit
            .iter()
            .any(|e| e.action == "portal:SignIn" && e.details["locked_by_admin"] == true),
        "the audit log says why a locked user's sign-in failed"
    );
}

async fn admin_directory_groups_and_lockout_guard(db: TestStore) {
    let api = Api::serve(with_admins(seeded(&db).await)).await;
    let created = api
        .call(
            Method::POST,
            "/directory/groups",
            Some(json!({"name": "ops", "description": "Operations"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["members"], json!([]));
    let duplicate = api
        .call(
            Method::POST,
            "/directory/groups",
            Some(json!({"name": "OPS"})),
        )
        .await;
    assert_eq!(duplicate.code(), "DUPLICATE_NAME");
    let bad = api
        .call(
            Method::POST,
            "/directory/groups",
            Some(json!({"name": "o p s"})),
        )
        .await;
    assert_eq!(bad.pointer(), "/name");

    let added = api
        .call(Method::PUT, "/directory/groups/ops/members/bob", None)
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.text);
    let groups = api
        .call(Method::GET, "/directory/groups", None)
        .await
        .json();
    let ops = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "ops")
        .unwrap()
        .clone();
    assert_eq!(ops["members"], json!(["bob"]));
    let bob = api
        .call(Method::GET, "/directory/users/bob", None)
        .await
        .json();
    assert!(bob["groups"].as_array().unwrap().contains(&json!("ops")));
    let nobody = api
        .call(Method::PUT, "/directory/groups/ops/members/nobody", None)
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    let removed = api
        .call(Method::DELETE, "/directory/groups/ops/members/bob", None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    let not_member = api
        .call(Method::DELETE, "/directory/groups/ops/members/bob", None)
        .await;
    assert_eq!(not_member.status, StatusCode::NOT_FOUND);
    let deleted = api
        .call(Method::DELETE, "/directory/groups/ops", None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(
        api.call(Method::DELETE, "/directory/groups/ops", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // alice's token may not end alice's own admin access without confirming.
    for (method, path, body) in [
        (Method::DELETE, "/directory/users/alice", None),
        (Method::POST, "/directory/users/alice/lock", None),
        (Method::DELETE, "/directory/groups/admins", None),
        (
            Method::DELETE,
            "/directory/groups/admins/members/alice",
            None,
        ),
        (
            Method::PUT,
            "/identity-sources/directory",
            Some(json!({"kind": "directory", "display_name": "Directory", "enabled": false})),
        ),
    ] {
        let refused = api.call(method.clone(), path, body).await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{method} {path}: {}",
            refused.text
        );
        assert_eq!(refused.code(), "LOCKOUT_RISK");
    }
    // A second session of alice's, to see that all of them follow the change.
    let second_session = api
        .state
        .sessions
        .start(person("alice", &["admins", "developers"]), None, None)
        .await
        .unwrap()
        .id;
    let source = api
        .state
        .store
        .get_identity_source(DIRECTORY_SOURCE_ID)
        .await
        .unwrap();
    assert!(source.enabled, "nothing changed");
    let alice = api
        .call(Method::GET, "/directory/users/alice", None)
        .await
        .json();
    assert!(
        alice["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("admins"))
    );
    assert!(alice["locked_at"].is_null());

    // The same from alice's portal session; then confirmed.
    let started = api
        .state
        .sessions
        .start(person("alice", &["admins", "developers"]), None, None)
        .await
        .unwrap();
    let session = Auth::session(&started.id, &started.session.csrf);
    let refused = api
        .call_as(
            session,
            Method::DELETE,
            "/directory/groups/admins/members/alice",
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "LOCKOUT_RISK");
    assert_eq!(
        api.call_as(session, Method::GET, "/whoami", None)
            .await
            .status,
        StatusCode::OK
    );
    let confirmed = api
        .call_as(
            session,
            Method::DELETE,
            "/directory/groups/admins/members/alice?confirm_lockout=true",
            None,
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::NO_CONTENT,
        "{}",
        confirmed.text
    );
    let next = api.call_as(session, Method::GET, "/whoami", None).await;
    assert_eq!(next.status, StatusCode::FORBIDDEN, "{}", next.text);
    assert_eq!(next.code(), "NOT_AN_ADMIN");
    // Every session of hers follows.
    let other = Auth::session(&second_session, "");
    assert_eq!(
        api.call_as(other, Method::GET, "/whoami", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let alice = api
        .call(Method::GET, "/directory/users/alice", None)
        .await
        .json();
    assert!(
        !alice["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("admins"))
    );
    // No longer an admin, alice's token has nothing left to guard.
    let add_back = api
        .call(Method::PUT, "/directory/groups/admins/members/alice", None)
        .await;
    assert_eq!(add_back.status, StatusCode::NO_CONTENT);

    assert_audited(
        api.state.store.as_ref(),
        &[
            ("admin:CreateDirectoryGroup", Outcome::Success),
            ("admin:AddDirectoryGroupMember", Outcome::Success),
            ("admin:RemoveDirectoryGroupMember", Outcome::Success),
            ("admin:RemoveDirectoryGroupMember", Outcome::Denied),
            ("admin:DeleteDirectoryGroup", Outcome::Success),
            ("admin:DeleteDirectoryGroup", Outcome::Denied),
            ("admin:DeleteDirectoryUser", Outcome::Denied),
            ("admin:LockDirectoryUser", Outcome::Denied),
            ("admin:UpdateIdentitySource", Outcome::Denied),
        ],
        &[&started.session.csrf, password_of("alice")],
    )
    .await;
    let audit = api.state.store.list_audit(200, None).await.unwrap();
    let removal = audit
        .iter()
        .find(|e| e.action == "admin:RemoveDirectoryGroupMember" && e.actor == "directory:alice")
        .unwrap();
    assert_eq!(removal.outcome, Outcome::Success);
    assert!(
        removal.details["before"]["members"]
            .as_array()
            .unwrap()
            .contains(&json!("alice"))
    );
    assert!(
        !removal.details["after"]["members"]
            .as_array()
            .unwrap()
            .contains(&json!("alice"))
    );
}

fn corp_source() -> Value {
    json!({
        "id": "corp",
        "kind": "oidc",
        "display_name": "Corp SSO",
        "config": {
            "issuer": "https://idp.example.com/realms/corp",
            "client_id": "rolegate",
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "profile", "email", "groups"],
        },
    })
}

async fn admin_directory_identity_sources(db: TestStore) {
    let api = Api::serve(with_admins(seeded(&db).await)).await;
    let read_only = api
        .call_as(
            Auth::Token(&api.read),
            Method::POST,
            "/identity-sources",
            Some(corp_source()),
        )
        .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN);

    // Invalid settings: 422 pointing at the setting, nothing created.
    let mut bad_issuer = corp_source();
    bad_issuer["config"]["issuer"] = json!("http://idp.example.com");
    let mut typo = corp_source();
    typo["config"]["clientid"] = json!("x");
    let mut empty_client = corp_source();
    empty_client["config"]["client_id"] = json!(" ");
    let mut reserved = corp_source();
    reserved["id"] = json!("directory");
    for (body, code, pointer) in [
        (bad_issuer, "INVALID_OIDC_CONFIG", "/config/issuer"),
        (typo, "INVALID_OIDC_CONFIG", "/config/clientid"),
        (empty_client, "INVALID_OIDC_CONFIG", "/config/client_id"),
        (reserved, "RESERVED_ID", "/id"),
    ] {
        let refused = api
            .call(Method::POST, "/identity-sources", Some(body))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!((refused.code(), refused.pointer()), (code, pointer));
    }
    assert_eq!(
        api.call(Method::GET, "/identity-sources/corp", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let created = api
        .call(Method::POST, "/identity-sources", Some(corp_source()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["config"]["client_secret"], "set");
    assert!(!created.text.contains(CLIENT_SECRET));
    let duplicate = api
        .call(Method::POST, "/identity-sources", Some(corp_source()))
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.code(), "DUPLICATE_NAME");

    let shown = api.call(Method::GET, "/identity-sources/corp", None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json()["config"]["client_secret"], "set");
    assert_eq!(shown.json()["kind"], "oidc");
    let listed = api.call(Method::GET, "/identity-sources", None).await;
    assert!(!listed.text.contains(CLIENT_SECRET));
    assert_eq!(
        listed.json()["identity_sources"].as_array().unwrap().len(),
        2
    );

    // Stored sealed, bound to the source.
    let stored = api.state.store.get_identity_source("corp").await.unwrap();
    let sealed = stored.config["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(sealed, CLIENT_SECRET);
    assert!(!stored.config.to_string().contains(CLIENT_SECRET));
    let opened = api
        .state
        .sealer
        .open_secret(&sealed, &client_secret_context("corp"))
        .unwrap();
    assert_eq!(opened.expose(), CLIENT_SECRET);

    // Replacing with what GET showed keeps the secret; disabling is a PUT.
    let mut disabled = shown.json();
    disabled.as_object_mut().unwrap().remove("created_at");
    disabled["enabled"] = json!(false);
    disabled["display_name"] = json!("Corp SSO (old)");
    let replaced = api
        .call(Method::PUT, "/identity-sources/corp", Some(disabled))
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.json()["enabled"], false);
    let stored = api.state.store.get_identity_source("corp").await.unwrap();
    assert_eq!(stored.config["client_secret"], json!(sealed));
    assert_eq!(stored.display_name, "Corp SSO (old)");
    let mut bad_put = corp_source();
    bad_put["config"]["redirect_uri"] = json!("not a url");
    let refused = api
        .call(Method::PUT, "/identity-sources/corp", Some(bad_put))
        .await;
    assert_eq!(refused.pointer(), "/config/redirect_uri");
    let other_id = api
        .call(Method::PUT, "/identity-sources/other", Some(corp_source()))
        .await;
    assert_eq!(other_id.status, StatusCode::UNPROCESSABLE_ENTITY);

    let built_in = api
        .call(Method::DELETE, "/identity-sources/directory", None)
        .await;
    assert_eq!(built_in.status, StatusCode::CONFLICT);
    assert_eq!(built_in.code(), "BUILT_IN_SOURCE");
    // The directory's claims hygiene for the mapping rules is checked on save.
    let capless = api
        .call(
            Method::PUT,
            "/identity-sources/directory",
            Some(
                json!({"kind": "directory", "display_name": "Directory", "enabled": true,
                        "config": {"mapping": {"max_groups": 0}}}),
            ),
        )
        .await;
    assert_eq!(
        capless.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        capless.text
    );
    assert_eq!(capless.code(), "INVALID_DIRECTORY_CONFIG");
    assert_eq!(capless.pointer(), "/config/mapping");
    let deleted = api
        .call(Method::DELETE, "/identity-sources/corp", None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(
        api.call(Method::GET, "/identity-sources/corp", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_audited(
        api.state.store.as_ref(),
        &[
            ("admin:CreateIdentitySource", Outcome::Success),
            ("admin:UpdateIdentitySource", Outcome::Success),
            ("admin:DeleteIdentitySource", Outcome::Success),
        ],
        &[CLIENT_SECRET, &sealed],
    )
    .await;
    let audit = api.state.store.list_audit(200, None).await.unwrap();
    let update = audit
        .iter()
        .find(|e| e.action == "admin:UpdateIdentitySource")
        .unwrap();
    assert_eq!(update.details["before"]["enabled"], true);
    assert_eq!(update.details["after"]["enabled"], false);
    assert_eq!(update.details["client_secret_changed"], false);
}

/// PATCH edits a user's display name and email: fields left out stay, an empty
/// email removes it, a bad one is refused at its field with nothing saved; the
/// change is audited with the before and after.
async fn admin_directory_user_profile_edit(db: TestStore) {
    let api = Api::serve(with_admins(seeded(&db).await)).await;
    let edited = api
        .call(
            Method::PATCH,
            "/directory/users/Bob",
            Some(json!({"display_name": "Robert Builder"})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    assert_eq!(edited.body["display_name"], "Robert Builder");
    assert_eq!(edited.body["email"], "bob@example.com", "left out, kept");

    let bad = api
        .call(
            Method::PATCH,
            "/directory/users/bob",
            Some(json!({"display_name": "Bob", "email": "not an address"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((bad.code(), bad.pointer()), ("INVALID_EMAIL", "/email"));
    let unknown = api
        .call(
            Method::PATCH,
            "/directory/users/bob",
            Some(json!({"password": "x"})),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text
    );
    assert_eq!(unknown.code(), "MALFORMED_JSON");

    let cleared = api
        .call(
            Method::PATCH,
            "/directory/users/bob",
            Some(json!({"email": ""})),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    let stored = api
        .state
        .store
        .get_user(DIRECTORY_SOURCE_ID, &UserName::parse("bob").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (stored.display_name.as_str(), stored.email),
        ("Robert Builder", None)
    );
    let missing = api
        .call(Method::PATCH, "/directory/users/nobody", Some(json!({})))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let events = api.state.store.list_audit(50, None).await.unwrap();
    let edits: Vec<_> = events
        .iter()
        .filter(|e| e.action == "admin:UpdateDirectoryUser")
        .collect();
    assert_eq!(edits.len(), 2, "the refused edit saved and audited nothing");
    assert_eq!(edits[1].details["before"]["display_name"], "Bob Builder");
    assert_eq!(edits[1].details["after"]["display_name"], "Robert Builder");
    assert_eq!(edits[0].details["before"]["email"], "bob@example.com");
    assert!(edits[0].details["after"]["email"].is_null());
}

both_backends!(
    admin_directory_user_lifecycle,
    admin_directory_groups_and_lockout_guard,
    admin_directory_identity_sources,
    admin_directory_user_profile_edit,
);
