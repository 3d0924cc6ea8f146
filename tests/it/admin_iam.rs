//! The IAM-model endpoints of the admin API over real HTTP on both backends:
//! accounts, roles (inline and attached policies, boundary, replace, revoke
//! sessions, delete with the rules that granted it named), managed policies and
//! their versions, IAM users and access keys that work against the real STS, and
//! IAM OIDC providers; malformed documents refused with a pointer and nothing
//! stored, duplicates and conflicts, token scopes, and the audit trail.

use reqwest::{Method, StatusCode};
use rolegate::iam::{AccountId, RoleName};
use rolegate::idp::identity::Identity;
use rolegate::store::Outcome;
use serde_json::{Value, json};

use crate::admin_client::{self, Api, Auth};
use crate::both_backends;
use crate::helpers::{TestStore, app_state, assert_audited, grant_group, signed_sts_call};

const ACCOUNT: &str = "210987654321";

/// Creates account [`ACCOUNT`] ("platform").
async fn create_account(api: &Api) {
    let created = api
        .call(
            Method::POST,
            "/accounts",
            Some(json!({"id": ACCOUNT, "name": "platform"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}

fn trust() -> Value {
    admin_client::trust(ACCOUNT)
}

fn allow(action: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})
}

fn developer() -> Identity {
    Identity {
        source_id: "directory".into(),
        subject: "id-bob".into(),
        user_name: "bob".into(),
        display_name: "Bob".into(),
        email: None,
        groups: vec!["developers".into()],
        attributes: Default::default(),
        claims: Default::default(),
    }
}

async fn admin_iam_role_lifecycle(db: TestStore) {
    let api = Api::serve(app_state(db.store.clone()).await).await;
    create_account(&api).await;
    let again = api
        .call(
            Method::POST,
            "/accounts",
            Some(json!({"id": ACCOUNT, "name": "other"})),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "DUPLICATE_NAME")
    );
    let bad_id = api
        .call(
            Method::POST,
            "/accounts",
            Some(json!({"id": "12", "name": "x"})),
        )
        .await;
    assert_eq!(
        (bad_id.status, bad_id.pointer()),
        (StatusCode::UNPROCESSABLE_ENTITY, "/id")
    );

    // A customer managed policy to attach, and a global one as the boundary.
    let attached = api
        .call(
            Method::POST,
            "/policies",
            Some(json!({"account": ACCOUNT, "name": "ReadLogs", "document": allow("logs:Get*")})),
        )
        .await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.body);
    let attached_arn = attached.body["arn"].as_str().unwrap().to_owned();
    assert_eq!(
        attached_arn,
        format!("arn:aws:iam::{ACCOUNT}:policy/ReadLogs")
    );
    let boundary = api
        .call(
            Method::POST,
            "/policies",
            Some(json!({"name": "DevBoundary", "document": allow("*")})),
        )
        .await;
    assert_eq!(boundary.status, StatusCode::CREATED, "{}", boundary.body);
    let boundary_arn = boundary.body["arn"].as_str().unwrap().to_owned();
    assert_eq!(boundary_arn, "arn:aws:iam::aws:policy/DevBoundary");

    let roles = format!("/accounts/{ACCOUNT}/roles");
    let role = json!({
        "name": "App",
        "description": "the app",
        "trust_policy": trust(),
        "max_session_duration": 7200,
        "permissions_boundary": boundary_arn,
        "tags": [{"Key": "team", "Value": "platform"}],
        "inline_policies": {"S3Read": allow("s3:GetObject")},
        "attached_policies": [attached_arn],
    });

    // Malformed documents: 422 with the place in the message and a pointer; nothing stored.
    let mut bad = role.clone();
    bad["inline_policies"]["S3Read"] = allow("s3GetObject");
    let refused = api.call(Method::POST, &roles, Some(bad)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "MALFORMED_POLICY_DOCUMENT");
    assert_eq!(refused.pointer(), "/inline_policies/S3Read");
    assert!(
        refused
            .message()
            .contains("inline policy S3Read of role App"),
        "{}",
        refused.message()
    );
    let mut bad = role.clone();
    bad["trust_policy"] = json!("{\"Version\": \"2012-10-17\", \"Statement\": [");
    let refused = api.call(Method::POST, &roles, Some(bad)).await;
    assert_eq!(refused.code(), "MALFORMED_POLICY_DOCUMENT");
    assert_eq!(refused.pointer(), "/trust_policy");
    assert!(
        refused.message().contains("line 1 column"),
        "{}",
        refused.message()
    );
    let mut bad = role.clone();
    bad["attached_policies"] = json!([attached_arn, "arn:aws:iam::aws:policy/Nope"]);
    let refused = api.call(Method::POST, &roles, Some(bad)).await;
    assert_eq!(
        (refused.code(), refused.pointer()),
        ("UNKNOWN_POLICY", "/attached_policies/1")
    );
    let listed = api.call(Method::GET, &roles, None).await;
    assert_eq!(listed.body["roles"], json!([]), "nothing was stored");

    // Create, read, duplicate.
    let created = api.call(Method::POST, &roles, Some(role.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/App")
    );
    let got = api.call(Method::GET, &format!("{roles}/app"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["trust_policy"], trust());
    assert_eq!(got.body["max_session_duration"], 7200);
    assert_eq!(got.body["permissions_boundary"], boundary_arn);
    assert_eq!(got.body["inline_policies"]["S3Read"], allow("s3:GetObject"));
    assert_eq!(got.body["attached_policies"], json!([attached_arn]));
    assert_eq!(
        got.body["tags"],
        json!([{"Key": "team", "Value": "platform"}])
    );
    let duplicate = api.call(Method::POST, &roles, Some(role.clone())).await;
    assert_eq!(
        (duplicate.status, duplicate.code()),
        (StatusCode::CONFLICT, "DUPLICATE_NAME")
    );

    // The account cannot go while it has roles.
    let blocked = api
        .call(Method::DELETE, &format!("/accounts/{ACCOUNT}"), None)
        .await;
    assert_eq!(
        (blocked.status, blocked.code()),
        (StatusCode::CONFLICT, "CONFLICT")
    );

    // A read token cannot write.
    let read_only = api
        .call_as(
            Auth::Token(&api.read),
            Method::PUT,
            &format!("{roles}/App"),
            Some(json!({"trust_policy": trust()})),
        )
        .await;
    assert_eq!(
        (read_only.status, read_only.code()),
        (StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE")
    );

    // PUT replaces every setting; a bad one changes nothing.
    let replacement = json!({
        "description": "the app, v2",
        "trust_policy": trust(),
        "max_session_duration": 3600,
        "inline_policies": {"Sqs": allow("sqs:SendMessage")},
    });
    let mut bad = replacement.clone();
    bad["max_session_duration"] = json!(60);
    let refused = api
        .call(Method::PUT, &format!("{roles}/App"), Some(bad))
        .await;
    assert_eq!(
        (refused.code(), refused.pointer()),
        ("VALIDATION_ERROR", "/max_session_duration")
    );
    let unchanged = api.call(Method::GET, &format!("{roles}/App"), None).await;
    assert_eq!(unchanged.body, got.body);
    let updated = api
        .call(Method::PUT, &format!("{roles}/App"), Some(replacement))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["description"], "the app, v2");
    assert_eq!(updated.body["permissions_boundary"], Value::Null);
    assert_eq!(updated.body["attached_policies"], json!([]));
    assert_eq!(
        updated.body["inline_policies"],
        json!({"Sqs": allow("sqs:SendMessage")})
    );
    assert_eq!(updated.body["tags"], json!([]));
    // Put the boundary and attachment back for the rest.
    let restored = api
        .call(
            Method::PUT,
            &format!("{roles}/App"),
            Some(role_settings(&role)),
        )
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);

    // The role is usable: a rule grants it, and the issuance service lists it.
    grant_group(&api.state, "directory", "developers", ACCOUNT, "App").await;
    let grants = api.state.sts.entitlements(&developer()).await.unwrap();
    assert!(
        grants
            .iter()
            .any(|g| g.role().to_string() == format!("arn:aws:iam::{ACCOUNT}:role/App")),
        "{grants:?}"
    );
    let permissions = api
        .state
        .store
        .role_permissions(
            &AccountId::parse(ACCOUNT).unwrap(),
            &RoleName::parse("App").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(permissions.identity_policies.len(), 2);
    assert_eq!(
        permissions.permissions_boundary.unwrap().source,
        boundary_arn
    );

    // Revoke active sessions.
    let revoked = api
        .call(Method::POST, &format!("{roles}/App/revoke-sessions"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let after = api.call(Method::GET, &format!("{roles}/App"), None).await;
    assert_eq!(
        after.body["revoke_sessions_before"],
        revoked.body["revoke_sessions_before"]
    );
    assert!(!after.body["revoke_sessions_before"].is_null());

    // The attached policy cannot go while attached.
    let attached_id = attached.body["id"].as_str().unwrap();
    let in_use = api
        .call(Method::DELETE, &format!("/policies/{attached_id}"), None)
        .await;
    assert_eq!(
        (in_use.status, in_use.code()),
        (StatusCode::CONFLICT, "CONFLICT")
    );

    // Deleting a role the rules grant is allowed; the answer names the rule.
    let deleted = api
        .call(Method::DELETE, &format!("{roles}/App"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let warnings = deleted.body["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["code"], "ROLE_IN_USE");
    assert_eq!(
        warnings[0]["rule"],
        format!("test-directory-developers-{ACCOUNT}-app")
    );
    let gone = api.call(Method::GET, &format!("{roles}/App"), None).await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    assert!(
        api.state
            .sts
            .entitlements(&developer())
            .await
            .unwrap()
            .is_empty()
    );

    // With the role gone, the policies and then the account can go.
    for id in [attached_id, boundary.body["id"].as_str().unwrap()] {
        let removed = api
            .call(Method::DELETE, &format!("/policies/{id}"), None)
            .await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    }
    let removed = api
        .call(Method::DELETE, &format!("/accounts/{ACCOUNT}"), None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);

    assert_audited(
        db.store.as_ref(),
        &[
            ("admin:CreateAccount", Outcome::Success),
            ("admin:CreatePolicy", Outcome::Success),
            ("admin:CreateRole", Outcome::Success),
            ("admin:UpdateRole", Outcome::Success),
            ("admin:RevokeRoleSessions", Outcome::Success),
            ("admin:DeleteRole", Outcome::Success),
            ("admin:DeletePolicy", Outcome::Success),
            ("admin:DeleteAccount", Outcome::Success),
        ],
        &[&api.write, &api.read],
    )
    .await;
    let events = db.store.list_audit(200, None).await.unwrap();
    // Newest first: the first update is the last one listed.
    let update = events
        .iter()
        .rev()
        .find(|e| e.action == "admin:UpdateRole")
        .unwrap();
    assert_eq!(update.actor, api.actor());
    assert_eq!(update.target, format!("role/{ACCOUNT}/App"));
    assert_eq!(update.details["before"]["description"], "the app");
    assert_eq!(
        update.details["before"]["inline_policies"]["S3Read"],
        allow("s3:GetObject")
    );
    assert_eq!(
        update.details["after"]["inline_policies"],
        json!({"Sqs": allow("sqs:SendMessage")})
    );
    let delete = events
        .iter()
        .find(|e| e.action == "admin:DeleteRole")
        .unwrap();
    assert_eq!(delete.details["warnings"][0]["code"], "ROLE_IN_USE");
    assert!(
        !events
            .iter()
            .any(|e| e.action == "admin:CreateRole" && e.outcome != Outcome::Success)
    );
}

/// A role body's settings (what PUT takes): everything but `name` and `path`.
fn role_settings(role: &Value) -> Value {
    let mut settings = role.clone();
    let object = settings.as_object_mut().unwrap();
    object.remove("name");
    object.remove("path");
    settings
}

async fn admin_iam_policy_versions(db: TestStore) {
    let api = Api::serve(app_state(db.store.clone()).await).await;
    create_account(&api).await;
    let bad = api
        .call(
            Method::POST,
            "/policies",
            Some(json!({"account": ACCOUNT, "name": "Logs", "document": {"Statement": []}})),
        )
        .await;
    assert_eq!(
        (bad.code(), bad.pointer()),
        ("MALFORMED_POLICY_DOCUMENT", "/document")
    );
    assert!(
        bad.message().starts_with("policy Logs: "),
        "{}",
        bad.message()
    );
    let listed = api
        .call(Method::GET, &format!("/policies?account={ACCOUNT}"), None)
        .await;
    assert_eq!(listed.body["policies"], json!([]), "nothing was stored");

    let created = api
        .call(
            Method::POST,
            "/policies",
            Some(json!({"account": ACCOUNT, "name": "Logs", "description": "logs", "document": allow("logs:Get*")})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ANPA"), "{id}");
    let duplicate = api
        .call(
            Method::POST,
            "/policies",
            Some(json!({"account": ACCOUNT, "name": "logs", "document": allow("logs:Get*")})),
        )
        .await;
    assert_eq!(
        (duplicate.status, duplicate.code()),
        (StatusCode::CONFLICT, "DUPLICATE_NAME")
    );
    let listed = api.call(Method::GET, "/policies", None).await;
    assert_eq!(listed.body["policies"].as_array().unwrap().len(), 1);

    let versions = format!("/policies/{id}/versions");
    let v2 = api
        .call(
            Method::POST,
            &versions,
            Some(json!({"document": allow("logs:*")})),
        )
        .await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.body);
    assert_eq!(
        (
            v2.body["version_id"].as_str(),
            v2.body["is_default"].as_bool()
        ),
        (Some("v2"), Some(false))
    );
    let bad_version = api
        .call(
            Method::POST,
            &versions,
            Some(json!({"document": "not json"})),
        )
        .await;
    assert_eq!(
        (bad_version.code(), bad_version.pointer()),
        ("MALFORMED_POLICY_DOCUMENT", "/document")
    );

    let set = api
        .call(
            Method::PUT,
            &format!("/policies/{id}/default-version"),
            Some(json!({"version_id": "v2"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["default_version_id"], "v2");
    let got = api
        .call(Method::GET, &format!("/policies/{id}"), None)
        .await;
    assert_eq!(got.body["document"], allow("logs:*"));
    let unknown = api
        .call(
            Method::PUT,
            &format!("/policies/{id}/default-version"),
            Some(json!({"version_id": "v9"})),
        )
        .await;
    assert_eq!(
        (unknown.code(), unknown.pointer()),
        ("UNKNOWN_VERSION", "/version_id")
    );

    // The default version cannot be deleted; another can.
    let refused = api
        .call(Method::DELETE, &format!("{versions}/v2"), None)
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "CONFLICT")
    );
    let deleted = api
        .call(Method::DELETE, &format!("{versions}/v1"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let listed = api.call(Method::GET, &versions, None).await;
    let ids: Vec<&str> = listed.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v2"]);
    let missing = api
        .call(Method::GET, "/policies/ANPANOSUCHPOLICY0000", None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    assert_audited(
        db.store.as_ref(),
        &[
            ("admin:CreatePolicy", Outcome::Success),
            ("admin:CreatePolicyVersion", Outcome::Success),
            ("admin:SetDefaultPolicyVersion", Outcome::Success),
            ("admin:DeletePolicyVersion", Outcome::Success),
        ],
        &[&api.write],
    )
    .await;
}

async fn admin_iam_users_and_access_keys(db: TestStore) {
    let api = Api::serve(app_state(db.store.clone()).await).await;
    create_account(&api).await;
    let users = format!("/accounts/{ACCOUNT}/iam-users");
    let created = api
        .call(
            Method::POST,
            &users,
            Some(
                json!({"name": "ci", "tags": [{"Key": "team", "Value": "build"}],
                "inline_policies": {"Logs": allow("logs:Get*")}}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/ci")
    );
    let duplicate = api
        .call(Method::POST, &users, Some(json!({"name": "CI"})))
        .await;
    assert_eq!(
        (duplicate.status, duplicate.code()),
        (StatusCode::CONFLICT, "DUPLICATE_NAME")
    );
    let got = api.call(Method::GET, &format!("{users}/ci"), None).await;
    assert_eq!(got.body["inline_policies"]["Logs"], allow("logs:Get*"));

    let keys = format!("{users}/ci/access-keys");
    let key = api.call(Method::POST, &keys, None).await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let key_id = key.body["access_key_id"].as_str().unwrap().to_owned();
    let secret = key.body["secret_access_key"].as_str().unwrap().to_owned();
    assert_eq!(key.body["status"], "Active");
    assert_eq!(secret.len(), 40);
    let listed = api.call(Method::GET, &keys, None).await;
    assert_eq!(
        listed.body["access_keys"][0]["access_key_id"],
        key_id.as_str()
    );
    assert!(
        !listed.body.to_string().contains(&secret),
        "GET never shows the secret"
    );
    assert!(
        listed.body["access_keys"][0]
            .get("secret_access_key")
            .is_none()
    );

    // The key works for a real STS call.
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    let (status, body) = signed_sts_call(&api.base, (&key_id, &secret, None), &identity).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("arn:aws:iam::{ACCOUNT}:user/ci")),
        "{body}"
    );

    // Deactivated, it stops working; active again, it works.
    let bad_status = api
        .call(
            Method::PUT,
            &format!("{keys}/{key_id}"),
            Some(json!({"status": "Paused"})),
        )
        .await;
    assert_eq!(
        (bad_status.code(), bad_status.pointer()),
        ("VALIDATION_ERROR", "/status")
    );
    let inactive = api
        .call(
            Method::PUT,
            &format!("{keys}/{key_id}"),
            Some(json!({"status": "Inactive"})),
        )
        .await;
    assert_eq!(inactive.status, StatusCode::OK, "{}", inactive.body);
    assert_eq!(inactive.body["status"], "Inactive");
    let (status, body) = signed_sts_call(&api.base, (&key_id, &secret, None), &identity).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("InvalidClientTokenId"), "{body}");

    // Another user's path does not reach the key.
    api.call(Method::POST, &users, Some(json!({"name": "other"})))
        .await;
    let foreign = api
        .call(
            Method::DELETE,
            &format!("{users}/other/access-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    let deleted = api
        .call(Method::DELETE, &format!("{keys}/{key_id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let listed = api.call(Method::GET, &keys, None).await;
    assert_eq!(listed.body["access_keys"], json!([]));

    let read_only = api
        .call_as(Auth::Token(&api.read), Method::POST, &keys, None)
        .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN);

    assert_audited(
        db.store.as_ref(),
        &[
            ("admin:CreateIamUser", Outcome::Success),
            ("admin:CreateAccessKey", Outcome::Success),
            ("admin:UpdateAccessKey", Outcome::Success),
            ("admin:DeleteAccessKey", Outcome::Success),
        ],
        &[&secret, &api.write, &api.read],
    )
    .await;
    let events = db.store.list_audit(200, None).await.unwrap();
    let created_key = events
        .iter()
        .find(|e| e.action == "admin:CreateAccessKey")
        .unwrap();
    assert_eq!(created_key.actor, api.actor());
    assert_eq!(
        created_key.details["after"]["access_key_id"],
        key_id.as_str()
    );
}

async fn admin_iam_oidc_providers_and_console_destinations(db: TestStore) {
    let api = Api::serve(app_state(db.store.clone()).await).await;
    create_account(&api).await;
    let destinations = format!("/accounts/{ACCOUNT}/console-destinations");
    let empty = api.call(Method::GET, &destinations, None).await;
    assert_eq!(empty.body, json!({"destinations": []}));
    let bad = api
        .call(
            Method::PUT,
            &destinations,
            Some(json!({"destinations": ["https://ok.example.com/", "ftp://x"]})),
        )
        .await;
    assert_eq!(
        (bad.code(), bad.pointer()),
        ("VALIDATION_ERROR", "/destinations/1")
    );
    let set = api
        .call(
            Method::PUT,
            &destinations,
            Some(json!({"destinations": ["https://ok.example.com/console"]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        set.body,
        json!({"destinations": ["https://ok.example.com/console"]})
    );

    let providers = format!("/accounts/{ACCOUNT}/oidc-providers");
    let insecure = api
        .call(
            Method::POST,
            &providers,
            Some(json!({"url": "http://idp.example.com", "client_ids": ["x"]})),
        )
        .await;
    assert_eq!(
        (insecure.code(), insecure.pointer()),
        ("VALIDATION_ERROR", "/url")
    );
    let created = api
        .call(
            Method::POST,
            &providers,
            Some(json!({"url": "https://idp.example.com/realms/ci", "client_ids": ["sts.amazonaws.com"]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["arn"],
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example.com/realms/ci")
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let duplicate = api
        .call(
            Method::POST,
            &providers,
            Some(json!({"url": "https://idp.example.com/realms/ci"})),
        )
        .await;
    assert_eq!(
        (duplicate.status, duplicate.code()),
        (StatusCode::CONFLICT, "DUPLICATE_NAME")
    );
    let listed = api.call(Method::GET, &providers, None).await;
    assert_eq!(listed.body["oidc_providers"][0]["id"], id.as_str());
    let got = api
        .call(Method::GET, &format!("{providers}/{id}"), None)
        .await;
    assert_eq!(got.body["client_ids"], json!(["sts.amazonaws.com"]));
    let read_only = api
        .call_as(
            Auth::Token(&api.read),
            Method::DELETE,
            &format!("{providers}/{id}"),
            None,
        )
        .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN);
    let deleted = api
        .call(Method::DELETE, &format!("{providers}/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = api
        .call(Method::GET, &format!("{providers}/{id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let listed = api.call(Method::GET, &providers, None).await;
    assert_eq!(listed.body["oidc_providers"], json!([]));
    assert_audited(
        db.store.as_ref(),
        &[
            ("admin:CreateOidcProvider", Outcome::Success),
            ("admin:DeleteOidcProvider", Outcome::Success),
            ("admin:SetConsoleDestinations", Outcome::Success),
        ],
        &[&api.write],
    )
    .await;
}

both_backends!(
    admin_iam_role_lifecycle,
    admin_iam_policy_versions,
    admin_iam_users_and_access_keys,
    admin_iam_oidc_providers_and_console_destinations,
);
