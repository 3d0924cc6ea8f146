//! The demo content `rolegate dev` starts with. Seeding is idempotent: anything that
//! already exists is left as it is, so restarting `dev` never duplicates or resets.

use std::collections::HashMap;

use serde_json::json;

use crate::iam::{
    AccountId, Description, GroupName, IamPath, MaxSessionDuration, PolicyName, RoleArn, RoleName,
    Tag, Tags, UserName, ValidationError,
};
use crate::idp::directory::hash_password;
use crate::store::{
    IdentitySourceKind, NewGroup, NewIdentitySource, NewManagedPolicy, NewRole, NewUser, Store,
    StoreError, StoreResult,
};

pub const DEMO_ACCOUNT_ID: &str = "123456789012";
pub const DEMO_ACCOUNT_NAME: &str = "demo";
/// Where the demo seed puts its users: the built-in directory.
pub use crate::idp::directory::DIRECTORY_SOURCE_ID;

/// What the seed holds, for `dev` to print.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// Human-readable lines: "created role ..." or "kept role ...".
    pub lines: Vec<String>,
    pub created: usize,
}

impl SeedReport {
    fn note(&mut self, created: bool, what: String) {
        if created {
            self.created += 1;
        }
        let verb = if created { "created" } else { "kept   " };
        self.lines.push(format!("{verb} {what}"));
    }
}

/// Treats "already exists" as success; returns whether this call created it.
fn created<T>(result: StoreResult<T>) -> StoreResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

fn trust_account(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TrustDemoAccount",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
        }]
    })
    .to_string()
}

struct DemoPolicy {
    name: &'static str,
    global: bool,
    description: &'static str,
    document: serde_json::Value,
}

fn demo_policies() -> Vec<DemoPolicy> {
    vec![
        DemoPolicy {
            name: "AdministratorAccess",
            global: true,
            description: "Full access to every action and resource.",
            document: json!({
                "Version": "2012-10-17",
                "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }]
            }),
        },
        DemoPolicy {
            name: "PowerUserAccess",
            global: true,
            description: "Everything except managing identities and the organization.",
            document: json!({
                "Version": "2012-10-17",
                "Statement": [
                    { "Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*" },
                    { "Effect": "Allow", "Action": ["iam:ListRoles", "iam:GetRole", "organizations:DescribeOrganization", "account:ListRegions"], "Resource": "*" }
                ]
            }),
        },
        DemoPolicy {
            name: "ViewOnlyAccess",
            global: true,
            description: "List and describe resources, never read data.",
            document: json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "ViewOnly",
                    "Effect": "Allow",
                    "Action": ["ec2:Describe*", "s3:ListAllMyBuckets", "s3:ListBucket", "iam:List*", "iam:Get*", "sts:GetCallerIdentity"],
                    "Resource": "*"
                }]
            }),
        },
        DemoPolicy {
            name: "DeveloperBoundary",
            global: false,
            description: "Permissions boundary for developers: no IAM changes, EU regions only.",
            document: json!({
                "Version": "2012-10-17",
                "Statement": [
                    { "Sid": "AllowOutsideIam", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*" },
                    { "Sid": "DenyIamWrites", "Effect": "Deny", "Action": ["iam:Create*", "iam:Delete*", "iam:Put*", "iam:Attach*", "iam:Update*"], "Resource": "*" },
                    { "Sid": "EuOnly", "Effect": "Deny", "NotAction": ["sts:*", "s3:ListAllMyBuckets"], "Resource": "*",
                      "Condition": { "StringNotLikeIfExists": { "aws:RequestedRegion": ["eu-*"] } } }
                ]
            }),
        },
        DemoPolicy {
            name: "DeveloperHomeBucket",
            global: false,
            description: "Each developer's own prefix in the shared demo bucket.",
            document: json!({
                "Version": "2012-10-17",
                "Statement": [
                    { "Sid": "OwnPrefix", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                      "Resource": "arn:aws:s3:::demo-home/${aws:username}/*" },
                    { "Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::demo-home",
                      "Condition": { "StringLike": { "s3:prefix": ["${aws:username}/*"] } } }
                ]
            }),
        },
    ]
}

struct DemoRole {
    name: &'static str,
    description: &'static str,
    attached: &'static [&'static str],
    boundary: Option<&'static str>,
    max_hours: i64,
    team: &'static str,
    groups: &'static str,
}

const DEMO_ROLES: &[DemoRole] = &[
    DemoRole {
        name: "Admin",
        description: "Platform administrators: full access.",
        attached: &["AdministratorAccess"],
        boundary: None,
        max_hours: 1,
        team: "platform",
        groups: "admins",
    },
    DemoRole {
        name: "Developer",
        description: "Application developers: power user inside the developer boundary.",
        attached: &["PowerUserAccess", "DeveloperHomeBucket"],
        boundary: Some("DeveloperBoundary"),
        max_hours: 8,
        team: "engineering",
        groups: "developers",
    },
    DemoRole {
        name: "ReadOnly",
        description: "Auditors and on-call: view-only access.",
        attached: &["ViewOnlyAccess"],
        boundary: None,
        max_hours: 12,
        team: "audit",
        groups: "auditors admins",
    },
];

const DEMO_GROUPS: &[(&str, &str)] = &[
    ("admins", "Platform administrators"),
    ("developers", "Application developers"),
    ("auditors", "Read-only auditors"),
];

const DEMO_USERS: &[(&str, &str, &str, &[&str])] = &[
    (
        "alice",
        "Alice Admin",
        "alice@example.com",
        &["admins", "developers"],
    ),
    ("bob", "Bob Builder", "bob@example.com", &["developers"]),
    ("carol", "Carol Checker", "carol@example.com", &["auditors"]),
];

/// `rolegate dev`'s `[admin] groups`: the demo `admins` group (alice is in it).
pub const DEV_ADMIN_GROUP: &str = "directory:admins";

/// The admin groups `rolegate dev` starts with.
pub fn dev_admin_groups() -> Vec<crate::service::admin_access::AdminGroup> {
    crate::service::admin_access::AdminGroup::parse(DEV_ADMIN_GROUP)
        .into_iter()
        .collect()
}

/// The demo directory's sign-ins (user name, password), for `dev` to print. The
/// passwords are set only when [`seed_demo`] creates the users.
pub const DEMO_SIGN_INS: &[(&str, &str)] = &[
    ("alice", "alice-demo-password"),
    ("bob", "bob-demo-password"),
    ("carol", "carol-demo-password"),
];

/// argon2id hashes of the demo passwords of the users that do not exist yet, hashed in
/// parallel on the blocking pool (argon2 is slow on purpose); a restart hashes nothing.
async fn hashes_for_new_demo_users(
    store: &dyn Store,
) -> StoreResult<HashMap<&'static str, String>> {
    let mut pending = Vec::new();
    for (user, password) in DEMO_SIGN_INS {
        match store
            .get_user(DIRECTORY_SOURCE_ID, &UserName::parse(*user)?)
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => pending.push((
                *user,
                tokio::task::spawn_blocking(move || hash_password(password)),
            )),
            Err(error) => return Err(error),
        }
    }
    let mut hashes = HashMap::new();
    for (user, task) in pending {
        let hash = task
            .await
            .map_err(|e| e.to_string())
            .and_then(|hashed| hashed.map_err(|e| e.to_string()))
            .map_err(|message| ValidationError::new("password", message))?;
        hashes.insert(user, hash);
    }
    Ok(hashes)
}

/// Seeds the demo account, policies, roles, directory, groups and users.
pub async fn seed_demo(store: &dyn Store) -> StoreResult<SeedReport> {
    let mut report = SeedReport::default();
    let account = AccountId::parse(DEMO_ACCOUNT_ID)?;
    let partition = store.partition().clone();

    let made = created(store.create_account(&account, DEMO_ACCOUNT_NAME).await)?;
    report.note(
        made,
        format!("account {DEMO_ACCOUNT_ID} ({DEMO_ACCOUNT_NAME})"),
    );

    for policy in demo_policies() {
        let owner = (!policy.global).then(|| account.clone());
        let name = PolicyName::parse(policy.name)?;
        let arn = partition.policy_arn(owner.as_ref(), &IamPath::root(), policy.name);
        let made = created(
            store
                .create_policy(&NewManagedPolicy {
                    account_id: owner,
                    path: IamPath::root(),
                    name,
                    description: Description::parse(policy.description)?,
                    document: policy.document.to_string(),
                })
                .await,
        )?;
        report.note(made, format!("policy {arn}"));
    }

    for role in DEMO_ROLES {
        let policy_arn = |name: &str, global: bool| {
            let owner = (!global).then(|| account.clone());
            partition
                .policy_arn(owner.as_ref(), &IamPath::root(), name)
                .to_string()
        };
        let is_global = |name: &str| demo_policies().iter().any(|p| p.name == name && p.global);
        let mut new = NewRole::new(
            account.clone(),
            RoleName::parse(role.name)?,
            trust_account(DEMO_ACCOUNT_ID),
        );
        new.description = Description::parse(role.description)?;
        new.max_session_duration = MaxSessionDuration::from_seconds(role.max_hours * 3600)?;
        new.tags = Tags::new(vec![Tag::parse("team", role.team)?])?;
        new.attached_policies = role
            .attached
            .iter()
            .map(|name| policy_arn(name, is_global(name)))
            .collect();
        new.permissions_boundary = role.boundary.map(|name| policy_arn(name, false));
        let arn = RoleArn::new(
            &partition,
            account.clone(),
            IamPath::root(),
            new.name.clone(),
        );
        let made = created(store.create_role(&new).await)?;
        report.note(made, format!("role {arn}"));
    }

    let made = created(
        store
            .create_identity_source(&NewIdentitySource {
                id: DIRECTORY_SOURCE_ID.into(),
                kind: IdentitySourceKind::Directory,
                display_name: "Rolegate directory".into(),
                // Role sessions of directory users carry their email as a session
                // tag (`${aws:PrincipalTag/Email}` in policies).
                config: json!({ "session_tags": { "Email": "email" } }),
                enabled: true,
            })
            .await,
    )?;
    report.note(
        made,
        format!("identity source {DIRECTORY_SOURCE_ID} (built-in directory)"),
    );

    for (name, description) in DEMO_GROUPS {
        let made = created(
            store
                .create_group(&NewGroup {
                    identity_source_id: DIRECTORY_SOURCE_ID.into(),
                    name: GroupName::parse(*name)?,
                    description: (*description).into(),
                })
                .await,
        )?;
        report.note(made, format!("group {name}"));
    }

    let mut password_hashes = hashes_for_new_demo_users(store).await?;
    for (user, display, email, groups) in DEMO_USERS {
        let user_name = UserName::parse(*user)?;
        let made = created(
            store
                .create_user(&NewUser {
                    identity_source_id: DIRECTORY_SOURCE_ID.into(),
                    user_name: user_name.clone(),
                    display_name: (*display).into(),
                    email: Some((*email).into()),
                    password_hash: password_hashes.remove(user),
                })
                .await,
        )?;
        for group in *groups {
            store
                .add_user_to_group(DIRECTORY_SOURCE_ID, &GroupName::parse(*group)?, &user_name)
                .await?;
        }
        report.note(made, format!("user {user} (groups: {})", groups.join(", ")));
    }

    seed_rules(store, &mut report).await?;
    Ok(report)
}

pub const WORKLOAD_USER: &str = "demo-app";
pub const WORKLOAD_ROLE: &str = "DemoWorkload";

/// Seeds the workload side: an IAM user `demo-app` that may assume role
/// `DemoWorkload`. Returns new access keys when the user needs them: when `kept_key`
/// (the key in an existing credentials file) is not one of its active keys, old keys
/// are replaced, since a secret can only be shown once.
/// The demo's mapping rules: each demo role granted to the directory groups it
/// names, published as the first ruleset version when none was ever published (an
/// administrator's rules are never replaced).
async fn seed_rules(store: &dyn Store, report: &mut SeedReport) -> StoreResult<()> {
    if store.current_ruleset_head().await?.is_some() {
        report.note(false, "mapping rules (the published ruleset)".into());
        return Ok(());
    }
    let rules = demo_rules();
    let parsed: Vec<crate::mapping::Rule> = serde_json::from_value(rules.clone())
        .map_err(|e| ValidationError::new("rules", format!("demo rules: {e}")))?;
    store
        .publish_ruleset(&crate::store::NewRulesetVersion {
            base: 0,
            content_hash: crate::mapping::content_hash(&parsed),
            rules,
            published_by: "rolegate dev".into(),
            restored_from: None,
            reason: Some("demo rules seeded by rolegate dev".into()),
        })
        .await?;
    report.note(
        true,
        format!("mapping rules: {} rules as ruleset version 1", parsed.len()),
    );
    Ok(())
}

/// One grant rule per demo role, for the directory groups the role lists.
pub fn demo_rules() -> serde_json::Value {
    let rules: Vec<serde_json::Value> = DEMO_ROLES
        .iter()
        .map(|role| {
            let groups: Vec<&str> = role.groups.split_whitespace().collect();
            json!({
                "id": format!("demo-{}", role.name.to_lowercase()),
                "name": format!("{} for {}", role.name, groups.join(", ")),
                "effect": "grant",
                "source": [DIRECTORY_SOURCE_ID],
                "when": { "claim": "groups", "op": "contains_any", "values": groups,
                          "case": "insensitive" },
                "grant": [{ "account": DEMO_ACCOUNT_ID, "role": role.name }],
            })
        })
        .collect();
    serde_json::Value::Array(rules)
}

pub async fn seed_workload(
    store: &dyn Store,
    sts: &crate::service::issuance::Sts,
    report: &mut SeedReport,
    kept_key: Option<&str>,
) -> StoreResult<Option<(String, String)>> {
    let account = AccountId::parse(DEMO_ACCOUNT_ID)?;
    let partition = store.partition().clone();
    let user_name = UserName::parse(WORKLOAD_USER)?;
    let user_arn = partition.user_arn(&account, &IamPath::root(), WORKLOAD_USER);
    let role_arn = RoleArn::new(
        &partition,
        account.clone(),
        IamPath::root(),
        RoleName::parse(WORKLOAD_ROLE)?,
    );

    let made = created(
        store
            .create_iam_user(&crate::store::NewIamUser {
                account_id: account.clone(),
                path: IamPath::root(),
                name: user_name.clone(),
                tags: Tags::new(vec![Tag::parse("team", "apps")?])?,
                inline_policies: vec![(
                    PolicyName::parse("AssumeDemoRoles")?,
                    json!({
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Sid": "AssumeDemoRoles",
                            "Effect": "Allow",
                            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                            "Resource": format!("arn:aws:iam::{DEMO_ACCOUNT_ID}:role/*")
                        }]
                    })
                    .to_string(),
                )],
                attached_policies: Vec::new(),
            })
            .await,
    )?;
    report.note(made, format!("IAM user {user_arn}"));

    let mut role = NewRole::new(
        account.clone(),
        RoleName::parse(WORKLOAD_ROLE)?,
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "TrustDemoApp",
                "Effect": "Allow",
                "Principal": { "AWS": user_arn.to_string() },
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
            }]
        })
        .to_string(),
    );
    role.description = Description::parse("What the demo-app workload runs as.")?;
    role.attached_policies = vec![
        partition
            .policy_arn(None, &IamPath::root(), "ViewOnlyAccess")
            .to_string(),
    ];
    let made = created(store.create_role(&role).await)?;
    report.note(made, format!("role {role_arn} (trusts {user_arn})"));

    let keys = store.list_access_keys(&account, &user_name).await?;
    if let Some(kept) = kept_key
        && keys
            .iter()
            .any(|k| k.access_key_id == kept && k.status == crate::store::AccessKeyStatus::Active)
    {
        report.note(false, format!("access key {kept} of {WORKLOAD_USER}"));
        return Ok(None);
    }
    for key in keys {
        store.delete_access_key(&key.access_key_id).await?;
    }
    let (access_key_id, secret) = sts.create_access_key(&account, &user_name).await?;
    report.note(
        true,
        format!("access key {access_key_id} of {WORKLOAD_USER}"),
    );
    Ok(Some((access_key_id, secret)))
}

/// The Sid of the statement [`trust_saml_provider`] adds for a provider.
fn saml_statement_sid(provider_name: &str) -> String {
    let clean: String = provider_name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("TrustSamlProvider{clean}")
}

/// `rolegate dev`: the demo roles (Admin, Developer, ReadOnly) trust the demo
/// account's SAML provider `provider_arn` (named `provider_name`) for
/// AssumeRoleWithSAML, session tags and source identity, so that `aws sts
/// assume-role-with-saml` works with an assertion from that IdP out of the box. A role
/// that already has the statement is left alone. Returns one line per role.
pub async fn trust_saml_provider(
    store: &dyn Store,
    provider_arn: &str,
    provider_name: &str,
) -> StoreResult<Vec<String>> {
    let account = AccountId::parse(DEMO_ACCOUNT_ID)?;
    let sid = saml_statement_sid(provider_name);
    let mut lines = Vec::new();
    for demo in DEMO_ROLES {
        let name = RoleName::parse(demo.name)?;
        let role = match store.get_role(&account, &name).await {
            Ok(role) => role,
            Err(StoreError::NotFound { .. }) => continue,
            Err(error) => return Err(error),
        };
        let mut trust: serde_json::Value = serde_json::from_str(&role.trust_policy)
            .map_err(|e| ValidationError::new("trust_policy", e.to_string()))?;
        let statements = match trust.get_mut("Statement") {
            Some(serde_json::Value::Array(list)) => list,
            Some(one) => {
                *one = serde_json::Value::Array(vec![one.take()]);
                match one {
                    serde_json::Value::Array(list) => list,
                    _ => continue,
                }
            }
            None => continue,
        };
        if statements
            .iter()
            .any(|s| s.get("Sid").and_then(serde_json::Value::as_str) == Some(sid.as_str()))
        {
            lines.push(format!(
                "kept    trust of role {} in SAML provider {provider_arn}",
                demo.name
            ));
            continue;
        }
        statements.push(json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"]
        }));
        store
            .update_role(
                &account,
                &name,
                &crate::store::RoleUpdate {
                    trust_policy: Some(trust.to_string()),
                    ..crate::store::RoleUpdate::default()
                },
            )
            .await?;
        lines.push(format!(
            "updated trust of role {} in SAML provider {provider_arn}",
            demo.name
        ));
    }
    Ok(lines)
}
