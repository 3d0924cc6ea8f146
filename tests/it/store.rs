//! The storage layer's CRUD and constraint behaviour, on SQLite and PostgreSQL alike.

use crate::both_backends;
use rolegate::iam::{
    AccountId, Description, GroupName, IamPath, MaxSessionDuration, PolicyName, RoleName, Tag,
    Tags, UserName,
};
use rolegate::store::{
    IdentitySourceKind, NewGroup, NewIdentitySource, NewManagedPolicy, NewRole, NewUser, Outcome,
    PolicyScope, RoleUpdate, StoreError,
};
use serde_json::json;

use crate::helpers::{TestStore, raw_execute};

const ACCOUNT: &str = "111122223333";

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

fn trust() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "AWS": format!("arn:aws:iam::{ACCOUNT}:root") }, "Action": "sts:AssumeRole" }]
    })
    .to_string()
}

fn allow(action: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": action, "Resource": "*" }]
    })
    .to_string()
}

fn new_policy(owner: Option<AccountId>, name: &str, document: String) -> NewManagedPolicy {
    NewManagedPolicy {
        account_id: owner,
        path: IamPath::root(),
        name: PolicyName::parse(name).unwrap(),
        description: Description::parse("test policy").unwrap(),
        document,
    }
}

fn role_name(name: &str) -> RoleName {
    RoleName::parse(name).unwrap()
}

async fn with_account(db: &TestStore) {
    db.store.create_account(&account(), "test").await.unwrap();
}

async fn accounts_are_unique_and_guarded(db: TestStore) {
    let store = &db.store;
    let created = store.create_account(&account(), "  Prod  ").await.unwrap();
    assert_eq!(created.id.as_str(), ACCOUNT);
    assert_eq!(created.name, "Prod", "names are trimmed");
    assert_eq!(store.get_account(&account()).await.unwrap(), created);

    let again = store.create_account(&account(), "other").await.unwrap_err();
    assert!(
        matches!(
            again,
            StoreError::AlreadyExists {
                entity: "account",
                ..
            }
        ),
        "{again:?}"
    );
    // Account names are unique ignoring case too.
    let second = AccountId::parse("999988887777").unwrap();
    let same_name = store.create_account(&second, "PROD").await.unwrap_err();
    assert!(
        matches!(same_name, StoreError::AlreadyExists { .. }),
        "{same_name:?}"
    );
    let empty = store.create_account(&second, "   ").await.unwrap_err();
    assert_eq!(empty.code(), "ValidationError");

    store
        .create_role(&NewRole::new(account(), role_name("Keep"), trust()))
        .await
        .unwrap();
    let in_use = store.delete_account(&account()).await.unwrap_err();
    assert!(matches!(in_use, StoreError::Conflict(_)), "{in_use:?}");
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);

    let missing = store.delete_account(&second).await.unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

async fn roles_round_trip_with_arns_and_case_insensitive_names(db: TestStore) {
    with_account(&db).await;
    let store = &db.store;
    let mut new = NewRole::new(account(), role_name("Deploy-Bot"), trust());
    new.path = IamPath::parse("/service/ci/").unwrap();
    new.description = Description::parse("CI deployer").unwrap();
    new.max_session_duration = MaxSessionDuration::from_seconds(7200).unwrap();
    new.tags = Tags::new(vec![Tag::parse("team", "platform").unwrap()]).unwrap();
    let role = store.create_role(&new).await.unwrap();
    assert_eq!(
        role.arn.to_string(),
        format!("arn:aws:iam::{ACCOUNT}:role/service/ci/Deploy-Bot")
    );
    assert!(
        role.id.starts_with("AROA") && role.id.len() == 21,
        "{}",
        role.id
    );
    assert_eq!(role.max_session_duration.seconds(), 7200);
    assert_eq!(role.tags.get("TEAM"), Some("platform"));

    let fetched = store
        .get_role(&account(), &role_name("deploy-bot"))
        .await
        .unwrap();
    assert_eq!(fetched, role, "lookups ignore case");

    let clash = store
        .create_role(&NewRole::new(account(), role_name("DEPLOY-BOT"), trust()))
        .await
        .unwrap_err();
    assert!(
        matches!(clash, StoreError::AlreadyExists { entity: "role", .. }),
        "{clash:?}"
    );

    let elsewhere = AccountId::parse("444455556666").unwrap();
    let orphan = store
        .create_role(&NewRole::new(
            elsewhere.clone(),
            role_name("Orphan"),
            trust(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(orphan, StoreError::NotFound { .. }), "{orphan:?}");
    assert!(store.list_roles(&elsewhere).await.unwrap().is_empty());

    let missing = store
        .get_role(&account(), &role_name("Nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { entity: "role", .. }),
        "{missing:?}"
    );
}

async fn role_creation_is_all_or_nothing(db: TestStore) {
    with_account(&db).await;
    let store = &db.store;
    let mut new = NewRole::new(account(), role_name("Partial"), trust());
    new.inline_policies = vec![(PolicyName::parse("Inline").unwrap(), allow("s3:GetObject"))];
    new.attached_policies = vec![format!("arn:aws:iam::{ACCOUNT}:policy/DoesNotExist")];
    let error = store.create_role(&new).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::NotFound {
                entity: "policy",
                ..
            }
        ),
        "{error:?}"
    );
    // Neither the role nor its inline policy was written.
    assert!(store.list_roles(&account()).await.unwrap().is_empty());

    let mut bad_inline = NewRole::new(account(), role_name("BadInline"), trust());
    bad_inline.inline_policies =
        vec![(PolicyName::parse("Broken").unwrap(), "{\"Version\":".into())];
    let error = store.create_role(&bad_inline).await.unwrap_err();
    assert_eq!(error.code(), "MalformedPolicyDocument", "{error:?}");
    assert!(store.list_roles(&account()).await.unwrap().is_empty());

    let mut bad_trust = NewRole::new(account(), role_name("BadTrust"), allow("s3:*"));
    bad_trust.description = Description::parse("trust policy without a principal").unwrap();
    let error = store.create_role(&bad_trust).await.unwrap_err();
    assert_eq!(error.code(), "MalformedPolicyDocument", "{error:?}");
    assert!(store.list_roles(&account()).await.unwrap().is_empty());
}

async fn role_policies_boundary_and_permissions(db: TestStore) {
    with_account(&db).await;
    let store = &db.store;
    let global = store
        .create_policy(&new_policy(None, "ReadEverything", allow("*:Get*")))
        .await
        .unwrap();
    assert_eq!(global.arn, "arn:aws:iam::aws:policy/ReadEverything");
    let boundary = store
        .create_policy(&new_policy(Some(account()), "Boundary", allow("s3:*")))
        .await
        .unwrap();
    assert_eq!(
        boundary.arn,
        format!("arn:aws:iam::{ACCOUNT}:policy/Boundary")
    );

    let mut new = NewRole::new(account(), role_name("App"), trust());
    new.attached_policies = vec![global.arn.clone()];
    new.permissions_boundary = Some(boundary.arn.clone());
    new.inline_policies = vec![(
        PolicyName::parse("Logs").unwrap(),
        allow("logs:PutLogEvents"),
    )];
    let role = store.create_role(&new).await.unwrap();
    assert_eq!(
        role.permissions_boundary_arn.as_deref(),
        Some(boundary.arn.as_str())
    );

    let permissions = store
        .role_permissions(&account(), &role_name("app"))
        .await
        .unwrap();
    let sources: Vec<_> = permissions
        .identity_policies
        .iter()
        .map(|d| d.source.as_str())
        .collect();
    assert_eq!(sources, ["Logs", global.arn.as_str()]);
    assert_eq!(
        permissions.permissions_boundary.as_ref().unwrap().document,
        allow("s3:*")
    );

    // A new default version is what role sessions see from now on.
    let v2 = store
        .create_policy_version(&global.arn, &allow("*:List*"), true)
        .await
        .unwrap();
    assert_eq!(v2.version_id, "v2");
    let permissions = store
        .role_permissions(&account(), &role_name("App"))
        .await
        .unwrap();
    assert_eq!(permissions.identity_policies[1].document, allow("*:List*"));

    // Policies in use cannot be deleted; roles with policies cannot be deleted.
    let error = store.delete_policy(&global.arn).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let error = store.delete_policy(&boundary.arn).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    let error = store
        .delete_role(&account(), &role_name("App"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");

    store
        .detach_role_policy(&account(), &role_name("App"), &global.arn)
        .await
        .unwrap();
    store
        .delete_role_policy(
            &account(),
            &role_name("App"),
            &PolicyName::parse("Logs").unwrap(),
        )
        .await
        .unwrap();
    assert!(
        store
            .list_attached_role_policies(&account(), &role_name("App"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_role_policies(&account(), &role_name("App"))
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_policy(&global.arn).await.unwrap();

    // Removing the boundary frees the boundary policy.
    let updated = store
        .update_role(
            &account(),
            &role_name("App"),
            &RoleUpdate {
                permissions_boundary: Some(None),
                description: Some(Description::parse("updated").unwrap()),
                ..RoleUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.permissions_boundary_arn, None);
    assert_eq!(updated.description, "updated");
    assert_eq!(
        updated.trust_policy,
        trust(),
        "fields left out of the update are kept"
    );
    store.delete_policy(&boundary.arn).await.unwrap();
    store
        .delete_role(&account(), &role_name("App"))
        .await
        .unwrap();
    assert!(store.list_roles(&account()).await.unwrap().is_empty());
}

async fn inline_policies_upsert_and_validate(db: TestStore) {
    with_account(&db).await;
    let store = &db.store;
    store
        .create_role(&NewRole::new(account(), role_name("R"), trust()))
        .await
        .unwrap();
    let name = PolicyName::parse("P").unwrap();
    store
        .put_role_policy(&account(), &role_name("R"), &name, &allow("s3:GetObject"))
        .await
        .unwrap();
    store
        .put_role_policy(&account(), &role_name("R"), &name, &allow("s3:PutObject"))
        .await
        .unwrap();
    let inline = store
        .list_role_policies(&account(), &role_name("R"))
        .await
        .unwrap();
    assert_eq!(inline.len(), 1);
    assert_eq!(inline[0].document, allow("s3:PutObject"), "put replaces");

    let error = store
        .put_role_policy(
            &account(),
            &role_name("R"),
            &name,
            "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "MalformedPolicyDocument");
    let inline = store
        .list_role_policies(&account(), &role_name("R"))
        .await
        .unwrap();
    assert_eq!(
        inline[0].document,
        allow("s3:PutObject"),
        "a rejected put changes nothing"
    );
}

async fn managed_policy_versions_follow_iam_rules(db: TestStore) {
    with_account(&db).await;
    let store = &db.store;
    let policy = store
        .create_policy(&new_policy(
            Some(account()),
            "Versioned",
            allow("s3:GetObject"),
        ))
        .await
        .unwrap();
    assert!(policy.id.starts_with("ANPA"));
    assert_eq!(policy.default_version_id, "v1");
    let dup = store
        .create_policy(&new_policy(
            Some(account()),
            "versioned",
            allow("s3:GetObject"),
        ))
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::AlreadyExists { .. }), "{dup:?}");

    for n in 2..=5 {
        let v = store
            .create_policy_version(&policy.arn, &allow(&format!("s3:Action{n}")), false)
            .await
            .unwrap();
        assert_eq!(v.version_id, format!("v{n}"));
    }
    let full = store
        .create_policy_version(&policy.arn, &allow("s3:Action6"), false)
        .await
        .unwrap_err();
    assert!(matches!(full, StoreError::LimitExceeded(_)), "{full:?}");

    let error = store
        .delete_policy_version(&policy.arn, "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict(_)),
        "default version: {error:?}"
    );
    store
        .set_default_policy_version(&policy.arn, "v4")
        .await
        .unwrap();
    store
        .delete_policy_version(&policy.arn, "v1")
        .await
        .unwrap();
    let v6 = store
        .create_policy_version(&policy.arn, &allow("s3:Action6"), false)
        .await
        .unwrap();
    assert_eq!(v6.version_id, "v6", "version ids are never reused");
    let versions = store.list_policy_versions(&policy.arn).await.unwrap();
    let ids: Vec<_> = versions
        .iter()
        .map(|v| (v.version_id.as_str(), v.is_default))
        .collect();
    assert_eq!(
        ids,
        [
            ("v2", false),
            ("v3", false),
            ("v4", true),
            ("v5", false),
            ("v6", false)
        ]
    );
    assert_eq!(
        store
            .get_policy(&policy.arn)
            .await
            .unwrap()
            .default_version_id,
        "v4"
    );
    assert_eq!(
        store
            .get_policy_version(&policy.arn, "v4")
            .await
            .unwrap()
            .document,
        allow("s3:Action4")
    );

    let missing = store
        .set_default_policy_version(&policy.arn, "v99")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
    let wrong_partition = store
        .get_policy(&format!("arn:aws-cn:iam::{ACCOUNT}:policy/Versioned"))
        .await
        .unwrap_err();
    assert!(matches!(wrong_partition, StoreError::NotFound { .. }));
    let not_an_arn = store.get_policy("Versioned").await.unwrap_err();
    assert_eq!(not_an_arn.code(), "ValidationError");

    let scoped = store
        .list_policies(PolicyScope::Account(&account()))
        .await
        .unwrap();
    assert_eq!(scoped.len(), 1);
    assert!(
        store
            .list_policies(PolicyScope::Global)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn customer_policies_respect_the_size_limit(db: TestStore) {
    with_account(&db).await;
    let store = &db.store;
    let actions: Vec<String> = (0..400)
        .map(|i| format!("service:LongActionName{i:04}"))
        .collect();
    let big = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }]
    })
    .to_string();
    assert!(big.len() > 6144);
    let error = store
        .create_policy(&new_policy(Some(account()), "Big", big.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::MalformedPolicy { .. }),
        "{error:?}"
    );
    assert!(
        store
            .list_policies(PolicyScope::Account(&account()))
            .await
            .unwrap()
            .is_empty()
    );
    // Global (AWS-style managed) policies are not held to the customer limit.
    store
        .create_policy(&new_policy(None, "Big", big))
        .await
        .unwrap();
}

async fn directory_users_and_groups(db: TestStore) {
    let store = &db.store;
    let source = store
        .create_identity_source(&NewIdentitySource {
            id: "corp".into(),
            kind: IdentitySourceKind::Directory,
            display_name: "Corp directory".into(),
            config: json!({ "lockout_after": 5 }),
            enabled: true,
        })
        .await
        .unwrap();
    assert_eq!(source.config["lockout_after"], 5);
    assert_eq!(store.list_identity_sources().await.unwrap(), vec![source]);
    let bad_slug = store
        .create_identity_source(&NewIdentitySource {
            id: "Not A Slug".into(),
            kind: IdentitySourceKind::Oidc,
            display_name: "x".into(),
            config: json!({}),
            enabled: true,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_slug.code(), "ValidationError");

    let user = |name: &str| NewUser {
        identity_source_id: "corp".into(),
        user_name: UserName::parse(name).unwrap(),
        display_name: name.to_uppercase(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
    };
    let alice = store.create_user(&user("alice")).await.unwrap();
    assert!(alice.id.starts_with("AIDA"));
    assert!(
        !format!("{alice:?}").contains("argon2"),
        "hashes stay out of Debug output"
    );
    let dup = store.create_user(&user("ALICE")).await.unwrap_err();
    assert!(matches!(dup, StoreError::AlreadyExists { .. }), "{dup:?}");
    let mut stray = user("stray");
    stray.identity_source_id = "missing".into();
    let error = store.create_user(&stray).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    store.create_user(&user("bob")).await.unwrap();

    let group = |name: &str| NewGroup {
        identity_source_id: "corp".into(),
        name: GroupName::parse(name).unwrap(),
        description: String::new(),
    };
    store.create_group(&group("admins")).await.unwrap();
    store.create_group(&group("devs")).await.unwrap();
    let g = |n: &str| GroupName::parse(n).unwrap();
    let u = |n: &str| UserName::parse(n).unwrap();
    store
        .add_user_to_group("corp", &g("admins"), &u("alice"))
        .await
        .unwrap();
    store
        .add_user_to_group("corp", &g("DEVS"), &u("Alice"))
        .await
        .unwrap();
    store
        .add_user_to_group("corp", &g("devs"), &u("alice"))
        .await
        .unwrap(); // idempotent
    store
        .add_user_to_group("corp", &g("devs"), &u("bob"))
        .await
        .unwrap();
    let names = |groups: Vec<rolegate::store::Group>| {
        groups
            .into_iter()
            .map(|g| g.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.groups_for_user("corp", &u("alice")).await.unwrap()),
        ["admins", "devs"]
    );
    store
        .remove_user_from_group("corp", &g("admins"), &u("alice"))
        .await
        .unwrap();
    assert_eq!(
        names(store.groups_for_user("corp", &u("alice")).await.unwrap()),
        ["devs"]
    );
    let error = store
        .add_user_to_group("corp", &g("nope"), &u("alice"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::NotFound {
                entity: "group",
                ..
            }
        ),
        "{error:?}"
    );

    store.delete_user("corp", &u("bob")).await.unwrap();
    let users: Vec<_> = store
        .list_users("corp")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_name.to_string())
        .collect();
    assert_eq!(users, ["alice"]);
    assert_eq!(store.list_groups("corp").await.unwrap().len(), 2);

    // TOTP: on once; a second enrolment never replaces the first (another session's
    // authenticator would stop matching); off always works; unknown users are named.
    let at = chrono::Utc::now();
    store
        .set_totp_secret("corp", &u("alice"), Some(("sealed-first", at)))
        .await
        .unwrap();
    let again = store
        .set_totp_secret("corp", &u("ALICE"), Some(("sealed-second", at)))
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::AlreadyExists { .. }),
        "{again:?}"
    );
    let alice = store.get_user("corp", &u("alice")).await.unwrap();
    assert_eq!(alice.totp_secret.as_deref(), Some("sealed-first"));
    store
        .set_totp_secret("corp", &u("alice"), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_user("corp", &u("alice"))
            .await
            .unwrap()
            .totp_secret,
        None
    );
    let missing = store
        .set_totp_secret("corp", &u("nobody"), Some(("sealed", at)))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

async fn audit_log_is_append_only(db: TestStore) {
    let store = &db.store;
    for i in 0..3 {
        store
            .append_audit(&rolegate::store::AuditEvent {
                at: chrono::Utc::now(),
                actor: format!("user{i}"),
                action: "signin".into(),
                target: "portal".into(),
                outcome: if i == 1 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                source_ip: Some("127.0.0.1".into()),
                user_agent: Some("test".into()),
                details: json!({ "attempt": i }),
            })
            .await
            .unwrap();
    }
    let page = store.list_audit(2, None).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        ["user2", "user1"]
    );
    assert_eq!(page[1].outcome, Outcome::Failure);
    assert_eq!(page[1].details["attempt"], 1);
    let rest = store.list_audit(2, Some(page[1].id)).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].actor, "user0");

    // The database itself refuses to rewrite history, whoever connects.
    let tamper = raw_execute(&db, "UPDATE audit_events SET actor = 'mallory'").await;
    assert!(tamper.is_err(), "update must be rejected");
    let erase = raw_execute(&db, "DELETE FROM audit_events").await;
    assert!(erase.is_err(), "delete must be rejected");
    assert_eq!(store.list_audit(10, None).await.unwrap().len(), 3);
}

async fn demo_seed_is_idempotent(db: TestStore) {
    let first = rolegate::seed::seed_demo(db.store.as_ref()).await.unwrap();
    assert!(first.created > 10, "{first:?}");
    let second = rolegate::seed::seed_demo(db.store.as_ref()).await.unwrap();
    assert_eq!(second.created, 0, "{second:?}");
    assert_eq!(second.lines.len(), first.lines.len());
    let account = AccountId::parse(rolegate::seed::DEMO_ACCOUNT_ID).unwrap();
    let roles: Vec<_> = db
        .store
        .list_roles(&account)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(roles, ["Admin", "Developer", "ReadOnly"]);
    let developer = db
        .store
        .role_permissions(&account, &role_name("Developer"))
        .await
        .unwrap();
    assert_eq!(developer.identity_policies.len(), 2);
    assert!(developer.permissions_boundary.is_some());
}

both_backends!(
    accounts_are_unique_and_guarded,
    roles_round_trip_with_arns_and_case_insensitive_names,
    role_creation_is_all_or_nothing,
    role_policies_boundary_and_permissions,
    inline_policies_upsert_and_validate,
    managed_policy_versions_follow_iam_rules,
    customer_policies_respect_the_size_limit,
    directory_users_and_groups,
    audit_log_is_append_only,
    demo_seed_is_idempotent,
);

async fn iam_users_access_keys_and_oidc_providers(db: TestStore) {
    use rolegate::store::{AccessKeyStatus, NewIamUser, NewOidcProvider};
    with_account(&db).await;
    let store = &db.store;
    let user = |name: &str| NewIamUser {
        account_id: account(),
        path: IamPath::parse("/apps/").unwrap(),
        name: UserName::parse(name).unwrap(),
        tags: Tags::new(vec![Tag::parse("team", "apps").unwrap()]).unwrap(),
        inline_policies: vec![(PolicyName::parse("Read").unwrap(), allow("s3:GetObject"))],
        attached_policies: vec![],
    };
    let app = store.create_iam_user(&user("ci-bot")).await.unwrap();
    assert_eq!(app.arn, format!("arn:aws:iam::{ACCOUNT}:user/apps/ci-bot"));
    assert!(app.id.starts_with("AIDA"));
    let dup = store.create_iam_user(&user("CI-BOT")).await.unwrap_err();
    assert!(matches!(dup, StoreError::AlreadyExists { .. }), "{dup:?}");
    let mut bad = user("bad");
    bad.inline_policies = vec![(PolicyName::parse("Broken").unwrap(), "{}".into())];
    assert_eq!(
        store.create_iam_user(&bad).await.unwrap_err().code(),
        "MalformedPolicyDocument"
    );
    let mut dangling = user("dangling");
    dangling.attached_policies = vec![format!("arn:aws:iam::{ACCOUNT}:policy/Nope")];
    assert!(matches!(
        store.create_iam_user(&dangling).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    let names: Vec<_> = store
        .list_iam_users(&account())
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(names, ["ci-bot"], "failed creations leave nothing behind");
    let permissions = store
        .user_permissions(&account(), &UserName::parse("ci-bot").unwrap())
        .await
        .unwrap();
    assert_eq!(permissions.identity_policies.len(), 1);

    let bot = UserName::parse("ci-bot").unwrap();
    store
        .create_access_key(&account(), &bot, "AKIAAAAAAAAAAAAAAAA1", "v1:sealed1")
        .await
        .unwrap();
    store
        .create_access_key(&account(), &bot, "AKIAAAAAAAAAAAAAAAA2", "v1:sealed2")
        .await
        .unwrap();
    let third = store
        .create_access_key(&account(), &bot, "AKIAAAAAAAAAAAAAAAA3", "v1:sealed3")
        .await
        .unwrap_err();
    assert!(matches!(third, StoreError::LimitExceeded(_)), "{third:?}");
    let record = store.get_access_key("AKIAAAAAAAAAAAAAAAA1").await.unwrap();
    assert_eq!(record.user.arn, app.arn);
    assert_eq!(record.status, AccessKeyStatus::Active);
    assert!(
        !format!("{record:?}").contains("sealed1"),
        "sealed secrets stay out of Debug"
    );
    store
        .set_access_key_status("AKIAAAAAAAAAAAAAAAA1", AccessKeyStatus::Inactive)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_access_key("AKIAAAAAAAAAAAAAAAA1")
            .await
            .unwrap()
            .status,
        AccessKeyStatus::Inactive
    );
    store
        .delete_access_key("AKIAAAAAAAAAAAAAAAA2")
        .await
        .unwrap();
    assert!(matches!(
        store
            .get_access_key("AKIAAAAAAAAAAAAAAAA2")
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_eq!(
        store
            .list_access_keys(&account(), &bot)
            .await
            .unwrap()
            .len(),
        1
    );

    store.add_token_key(1, "v1:k1").await.unwrap();
    assert!(matches!(
        store.add_token_key(1, "v1:other").await.unwrap_err(),
        StoreError::AlreadyExists { .. }
    ));
    assert_eq!(store.list_token_keys().await.unwrap().len(), 1);

    let provider = store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account(),
            url: "https://token.actions.example.com/".into(),
            client_ids: vec!["sts.amazonaws.com".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        provider.arn,
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.example.com")
    );
    let found = store
        .find_oidc_provider(&account(), "https://token.actions.example.com")
        .await
        .unwrap();
    assert_eq!(found.client_ids, ["sts.amazonaws.com"]);
    let again = store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account(),
            url: "https://token.actions.example.com".into(),
            client_ids: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::AlreadyExists { .. }),
        "{again:?}"
    );
    let no_scheme = store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account(),
            url: "idp.example.com".into(),
            client_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(no_scheme.code(), "ValidationError");
}

both_backends!(iam_users_access_keys_and_oidc_providers);

/// The two migration trees must define the same tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_schemas_match() {
    use sqlx::Connection;
    let sqlite = crate::helpers::sqlite_store().await;
    let postgres = crate::helpers::postgres_store().await;
    let mut lite = sqlx::SqliteConnection::connect(&sqlite.url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let mut lite_columns = Vec::new();
    for table in &tables {
        let mut columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&mut lite)
                .await
                .unwrap();
        columns.sort();
        lite_columns.push((table.clone(), columns));
    }
    let mut pg = sqlx::PgConnection::connect(&postgres.url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%' ORDER BY table_name, column_name",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    let mut pg_columns: Vec<(String, Vec<String>)> = Vec::new();
    for (table, column) in rows {
        match pg_columns.last_mut() {
            Some((t, cols)) if *t == table => cols.push(column),
            _ => pg_columns.push((table, vec![column])),
        }
    }
    assert!(lite_columns.len() >= 15, "{lite_columns:?}");
    assert_eq!(lite_columns, pg_columns);
}
