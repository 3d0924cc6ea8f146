//! `rolegate admin export|import`: the IAM model as one declarative document
//! (JSON, or TOML for a `.toml` file): accounts, customer managed policies (their
//! default version), roles (trust policy, inline and attached policies, boundary,
//! maximum session duration, description, tags), built-in directory users and
//! groups with their members, IAM users, IAM OIDC providers and the mapping rules.
//! Never secrets: no password hashes, TOTP secrets or access keys.
//!
//! `import` plans first: every name, policy document, reference and rule is checked
//! before anything is written, so an invalid document changes nothing. It creates
//! and updates, never deletes; re-importing an exported document changes nothing.
//! The plan is applied in dependency order, each step one store transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::iam::{
    AccountId, Description, GroupName, IamPath, MaxSessionDuration, PolicyName, RoleName, Tags,
    UserName,
};
use crate::idp::directory::{DIRECTORY_SOURCE_ID, built_in_source};
use crate::mapping::{self, CompiledRuleset, Rule};
use crate::policy::{ParseOptions, Policy, PolicyKind};
use crate::service::audit::AuditLog;
use crate::service::entitlements::Entitlements;
use crate::service::rulesets::Rulesets;
use crate::store::{
    AuditEvent, NewGroup, NewIamUser, NewManagedPolicy, NewOidcProvider, NewRole, NewUser, Outcome,
    PolicyScope, RoleUpdate, Store, StoreError,
};

/// The audit actor of an import.
pub const IMPORT_ACTOR: &str = "cli:import";

/// The whole IAM model, as `admin export` writes it and `admin import` reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub accounts: Vec<AccountEntry>,
    /// Managed policies: an account's own, or global ones (no `account`).
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    /// Users of the built-in directory (without passwords: set them afterwards).
    #[serde(default)]
    pub directory_users: Vec<DirectoryUserEntry>,
    #[serde(default)]
    pub directory_groups: Vec<DirectoryGroupEntry>,
    #[serde(default)]
    pub iam_users: Vec<IamUserEntry>,
    #[serde(default)]
    pub oidc_providers: Vec<OidcProviderEntry>,
    #[serde(default)]
    pub mapping_rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Absent for a global policy (ARN account `aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub description: String,
    /// The default version's document.
    pub document: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub account: String,
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub description: String,
    pub trust_policy: Value,
    #[serde(default = "default_duration")]
    pub max_session_duration: i64,
    /// ARN of the managed policy used as the permissions boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, Value>,
    /// ARNs of attached managed policies.
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryUserEntry {
    pub user_name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryGroupEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamUserEntry {
    pub account: String,
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, Value>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderEntry {
    pub account: String,
    /// The issuer URL, `https://host/path`.
    pub url: String,
    #[serde(default)]
    pub client_ids: Vec<String>,
}

fn root_path() -> String {
    "/".into()
}

fn default_duration() -> i64 {
    MaxSessionDuration::DEFAULT.seconds()
}

impl Document {
    /// `exported N accounts, ... to FILE`.
    pub fn summary(&self, path: &Path) -> String {
        format!(
            "exported {} accounts, {} managed policies, {} roles, {} directory users, {} directory groups, {} IAM users, {} OIDC providers and {} mapping rules to {}",
            self.accounts.len(),
            self.policies.len(),
            self.roles.len(),
            self.directory_users.len(),
            self.directory_groups.len(),
            self.iam_users.len(),
            self.oidc_providers.len(),
            self.mapping_rules.len(),
            path.display()
        )
    }
}

/// A stored policy document as JSON (what the document holds).
fn document_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A document's policy as the text the store keeps.
fn document_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Reads the whole model from `store`, in a stable order.
pub async fn export(store: &Arc<dyn Store>) -> Result<Document, StoreError> {
    let mut document = Document::default();
    let accounts = store.list_accounts().await?;
    let mut policies = store.list_policies(PolicyScope::Global).await?;
    for account in &accounts {
        policies.extend(
            store
                .list_policies(PolicyScope::Account(&account.id))
                .await?,
        );
    }
    for policy in policies {
        document.policies.push(PolicyEntry {
            account: policy.account_id.as_ref().map(|a| a.as_str().to_owned()),
            name: policy.name.as_str().to_owned(),
            path: policy.path.as_str().to_owned(),
            description: policy.description.clone(),
            document: document_value(&store.policy_document(&policy.arn).await?),
        });
    }
    for account in &accounts {
        document.accounts.push(AccountEntry {
            id: account.id.as_str().to_owned(),
            name: account.name.clone(),
        });
        for role in store.list_roles(&account.id).await? {
            let inline = store.list_role_policies(&account.id, &role.name).await?;
            let attached = store
                .list_attached_role_policies(&account.id, &role.name)
                .await?;
            document.roles.push(RoleEntry {
                account: account.id.as_str().to_owned(),
                name: role.name.as_str().to_owned(),
                path: role.path.as_str().to_owned(),
                description: role.description.clone(),
                trust_policy: document_value(&role.trust_policy),
                max_session_duration: role.max_session_duration.seconds(),
                permissions_boundary: role.permissions_boundary_arn.clone(),
                tags: role.tags.clone(),
                inline_policies: inline
                    .into_iter()
                    .map(|p| (p.name.as_str().to_owned(), document_value(&p.document)))
                    .collect(),
                attached_policies: attached.into_iter().map(|p| p.arn).collect(),
            });
        }
        for user in store.list_iam_users(&account.id).await? {
            let permissions = store.user_permissions(&account.id, &user.name).await?;
            // Attached policies are named by ARN, inline ones by a name that
            // cannot contain ':'.
            let (attached, inline): (Vec<_>, Vec<_>) = permissions
                .identity_policies
                .into_iter()
                .partition(|p| p.source.starts_with("arn:"));
            document.iam_users.push(IamUserEntry {
                account: account.id.as_str().to_owned(),
                name: user.name.as_str().to_owned(),
                path: user.path.as_str().to_owned(),
                tags: user.tags.clone(),
                inline_policies: inline
                    .into_iter()
                    .map(|p| (p.source, document_value(&p.document)))
                    .collect(),
                attached_policies: attached.into_iter().map(|p| p.source).collect(),
            });
        }
    }
    let users = store.list_users(DIRECTORY_SOURCE_ID).await?;
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for user in &users {
        for group in store
            .groups_for_user(DIRECTORY_SOURCE_ID, &user.user_name)
            .await?
        {
            members
                .entry(group.name.as_str().to_owned())
                .or_default()
                .push(user.user_name.as_str().to_owned());
        }
        document.directory_users.push(DirectoryUserEntry {
            user_name: user.user_name.as_str().to_owned(),
            display_name: user.display_name.clone(),
            email: user.email.clone(),
        });
    }
    for group in store.list_groups(DIRECTORY_SOURCE_ID).await? {
        let mut names = members.remove(group.name.as_str()).unwrap_or_default();
        names.sort();
        document.directory_groups.push(DirectoryGroupEntry {
            name: group.name.as_str().to_owned(),
            description: group.description.clone(),
            members: names,
        });
    }
    for provider in store.list_oidc_providers().await? {
        document.oidc_providers.push(OidcProviderEntry {
            account: provider.account_id.as_str().to_owned(),
            url: format!("https://{}", provider.url),
            client_ids: provider.client_ids.clone(),
        });
    }
    document.mapping_rules = rulesets(store)
        .current()
        .await
        .map_err(|e| StoreError::Conflict(e.to_string()))?
        .rules;
    Ok(document)
}

fn rulesets(store: &Arc<dyn Store>) -> Rulesets {
    Rulesets::new(Arc::new(Entitlements::new(store.clone())))
}

fn is_toml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// The document as the text of `path`: TOML for `.toml`, else pretty JSON.
pub fn render(document: &Document, path: &Path) -> Result<String, String> {
    if is_toml(path) {
        toml::to_string_pretty(document).map_err(|e| format!("cannot write TOML: {e}"))
    } else {
        serde_json::to_string_pretty(document)
            .map(|text| text + "\n")
            .map_err(|e| format!("cannot write JSON: {e}"))
    }
}

/// Reads a document file (TOML for `.toml`, else JSON).
pub fn read(path: &Path) -> Result<Document, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if is_toml(path) {
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// One write of an import, in the order they run.
#[derive(Debug)]
enum Step {
    CreateAccount(AccountId, String),
    CreatePolicy(NewManagedPolicy),
    /// A new default version.
    UpdatePolicy {
        arn: String,
        document: String,
    },
    CreateRole(Box<NewRole>),
    UpdateRole {
        account: AccountId,
        name: RoleName,
        update: RoleUpdate,
    },
    PutRolePolicy {
        account: AccountId,
        role: RoleName,
        name: PolicyName,
        document: String,
    },
    AttachRolePolicy {
        account: AccountId,
        role: RoleName,
        arn: String,
    },
    CreateDirectory,
    CreateDirectoryUser(NewUser),
    CreateGroup(NewGroup),
    AddMember {
        group: GroupName,
        user: UserName,
    },
    CreateIamUser(NewIamUser),
    CreateOidcProvider(NewOidcProvider),
    PublishRules {
        base: i64,
        rules: Vec<Rule>,
    },
}

/// What an import will do: its steps, a line per change, and what it leaves alone.
#[derive(Debug, Default)]
pub struct ImportPlan {
    steps: Vec<(Step, String)>,
    kept: BTreeMap<&'static str, usize>,
    notes: Vec<String>,
}

impl ImportPlan {
    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty()
    }

    /// `create ...`/`update ...` lines, notes on what cannot be changed, and a
    /// count of what is left alone.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.steps.iter().map(|(_, line)| line.clone()).collect();
        lines.extend(self.notes.iter().map(|n| format!("note: {n}")));
        let kept: Vec<String> = self
            .kept
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        if !kept.is_empty() {
            lines.push(format!("unchanged: {}", kept.join(", ")));
        }
        lines
    }

    fn step(&mut self, step: Step, line: String) {
        self.steps.push((step, line));
    }

    fn keep(&mut self, what: &'static str) {
        *self.kept.entry(what).or_default() += 1;
    }
}

/// Every fault of a document, each at a JSON pointer into it.
#[derive(Debug, Default)]
struct Faults(Vec<String>);

impl Faults {
    fn add(&mut self, pointer: String, message: impl std::fmt::Display) {
        self.0.push(format!("{message} (at {pointer})"));
    }

    /// `Some(value)`, or the fault recorded and `None`.
    fn check<T, E: std::fmt::Display>(
        &mut self,
        pointer: String,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(pointer, error);
                None
            }
        }
    }

    fn policy(&mut self, pointer: String, value: &Value, kind: PolicyKind, customer: bool) {
        let options = ParseOptions {
            kind,
            enforce_customer_size_limit: customer,
        };
        self.check(pointer, Policy::parse(&document_text(value), options));
    }
}

/// Compares the document with the database: what to create and update. Checks
/// everything first, so that a refused document writes nothing.
pub async fn plan(store: &Arc<dyn Store>, wanted: &Document) -> Result<ImportPlan, String> {
    let have = export(store).await.map_err(|e| e.to_string())?;
    let mut faults = Faults::default();
    let mut plan = ImportPlan::default();
    let partition = store.partition().clone();

    let known_accounts: BTreeSet<String> = have
        .accounts
        .iter()
        .chain(&wanted.accounts)
        .map(|a| a.id.clone())
        .collect();
    let known_account = |faults: &mut Faults, pointer: String, id: &str| -> Option<AccountId> {
        let account = faults.check(pointer.clone(), AccountId::parse(id))?;
        if !known_accounts.contains(id) {
            faults.add(
                pointer,
                format!("account {id} is neither in the database nor in the document"),
            );
            return None;
        }
        Some(account)
    };

    for (i, entry) in wanted.accounts.iter().enumerate() {
        let Some(id) = faults.check(
            format!("/accounts/{i}/id"),
            AccountId::parse(entry.id.as_str()),
        ) else {
            continue;
        };
        match have.accounts.iter().find(|a| a.id == entry.id) {
            None => plan.step(
                Step::CreateAccount(id, entry.name.clone()),
                format!("create account {} ({})", entry.id, entry.name),
            ),
            Some(existing) => {
                if existing.name != entry.name {
                    plan.notes.push(format!(
                        "account {} is named {:?} here; import does not rename accounts",
                        entry.id, existing.name
                    ));
                }
                plan.keep("accounts");
            }
        }
    }

    // Managed policies, by ARN.
    let mut policy_arns: BTreeSet<String> = BTreeSet::new();
    for entry in &have.policies {
        if let Ok(path) = IamPath::parse(entry.path.as_str()) {
            let owner = entry
                .account
                .as_deref()
                .and_then(|a| AccountId::parse(a).ok());
            policy_arns.insert(
                partition
                    .policy_arn(owner.as_ref(), &path, &entry.name)
                    .to_string(),
            );
        }
    }
    for (i, entry) in wanted.policies.iter().enumerate() {
        let at = |field: &str| format!("/policies/{i}/{field}");
        let owner = match &entry.account {
            Some(id) => match known_account(&mut faults, at("account"), id) {
                Some(account) => Some(account),
                None => continue,
            },
            None => None,
        };
        let path = faults.check(at("path"), IamPath::parse(entry.path.as_str()));
        let name = faults.check(at("name"), PolicyName::parse(entry.name.as_str()));
        let description = faults.check(
            at("description"),
            Description::parse(entry.description.as_str()),
        );
        faults.policy(at("document"), &entry.document, PolicyKind::Identity, true);
        let (Some(path), Some(name), Some(description)) = (path, name, description) else {
            continue;
        };
        let arn = partition
            .policy_arn(owner.as_ref(), &path, name.as_str())
            .to_string();
        policy_arns.insert(arn.clone());
        match have
            .policies
            .iter()
            .find(|p| p.account == entry.account && p.path == entry.path && p.name == entry.name)
        {
            None => plan.step(
                Step::CreatePolicy(NewManagedPolicy {
                    account_id: owner,
                    path,
                    name,
                    description,
                    document: document_text(&entry.document),
                }),
                format!("create managed policy {arn}"),
            ),
            Some(existing) if existing.document != entry.document => plan.step(
                Step::UpdatePolicy {
                    arn: arn.clone(),
                    document: document_text(&entry.document),
                },
                format!("update managed policy {arn}: new default version"),
            ),
            Some(_) => plan.keep("managed policies"),
        }
    }
    let known_policy = |faults: &mut Faults, pointer: String, arn: &str| {
        if !policy_arns.contains(arn) {
            faults.add(
                pointer,
                format!("managed policy {arn} is neither in the database nor in the document"),
            );
        }
    };
    // A role's or IAM user's (at `entry`) inline policies, checked and named, and
    // its attached ones, which must be known.
    let identity_policies = |faults: &mut Faults,
                             entry: &str,
                             inline: &BTreeMap<String, Value>,
                             attached: &[String]| {
        let mut checked = Vec::new();
        for (policy, document) in inline {
            let pointer = format!("{entry}/inline_policies/{policy}");
            faults.policy(pointer.clone(), document, PolicyKind::Identity, false);
            if let Some(name) = faults.check(pointer, PolicyName::parse(policy.as_str())) {
                checked.push((name, document_text(document)));
            }
        }
        for (j, arn) in attached.iter().enumerate() {
            known_policy(faults, format!("{entry}/attached_policies/{j}"), arn);
        }
        checked
    };

    // Roles, by account and name (ignoring case, as IAM).
    let mut catalog = Entitlements::new(store.clone())
        .catalog()
        .await
        .map_err(|e| e.to_string())?
        .catalog;
    for (i, entry) in wanted.roles.iter().enumerate() {
        let at = |field: &str| format!("/roles/{i}/{field}");
        let account = known_account(&mut faults, at("account"), &entry.account);
        let name = faults.check(at("name"), RoleName::parse(entry.name.as_str()));
        let path = faults.check(at("path"), IamPath::parse(entry.path.as_str()));
        let description = faults.check(
            at("description"),
            Description::parse(entry.description.as_str()),
        );
        let duration = faults.check(
            at("max_session_duration"),
            MaxSessionDuration::from_seconds(entry.max_session_duration),
        );
        faults.policy(
            at("trust_policy"),
            &entry.trust_policy,
            PolicyKind::Trust,
            false,
        );
        let inline = identity_policies(
            &mut faults,
            &format!("/roles/{i}"),
            &entry.inline_policies,
            &entry.attached_policies,
        );
        if let Some(arn) = &entry.permissions_boundary {
            known_policy(&mut faults, at("permissions_boundary"), arn);
        }
        let (Some(account), Some(name), Some(path), Some(description), Some(duration)) =
            (account, name, path, description, duration)
        else {
            continue;
        };
        catalog.add_role(account.clone(), name.clone(), duration.seconds());
        let existing = have
            .roles
            .iter()
            .find(|r| r.account == entry.account && r.name.eq_ignore_ascii_case(&entry.name));
        let Some(existing) = existing else {
            plan.step(
                Step::CreateRole(Box::new(NewRole {
                    account_id: account,
                    path,
                    name,
                    description,
                    trust_policy: document_text(&entry.trust_policy),
                    max_session_duration: duration,
                    permissions_boundary: entry.permissions_boundary.clone(),
                    tags: entry.tags.clone(),
                    inline_policies: inline,
                    attached_policies: entry.attached_policies.clone(),
                })),
                format!("create role {} in account {}", entry.name, entry.account),
            );
            continue;
        };
        let mut changed = Vec::new();
        let mut update = RoleUpdate::default();
        if existing.description != entry.description {
            update.description = Some(description);
            changed.push("description");
        }
        if existing.trust_policy != entry.trust_policy {
            update.trust_policy = Some(document_text(&entry.trust_policy));
            changed.push("trust policy");
        }
        if existing.max_session_duration != entry.max_session_duration {
            update.max_session_duration = Some(duration);
            changed.push("max session duration");
        }
        if existing.permissions_boundary != entry.permissions_boundary {
            update.permissions_boundary = Some(entry.permissions_boundary.clone());
            changed.push("permissions boundary");
        }
        if existing.tags != entry.tags {
            update.tags = Some(entry.tags.clone());
            changed.push("tags");
        }
        if existing.path != entry.path {
            plan.notes.push(format!(
                "role {} in account {} has path {}; import does not move roles",
                entry.name, entry.account, existing.path
            ));
        }
        let role_name = existing.name.as_str();
        let mut role_changed = !changed.is_empty();
        if role_changed {
            plan.step(
                Step::UpdateRole {
                    account: account.clone(),
                    name: name.clone(),
                    update,
                },
                format!(
                    "update role {role_name} in account {}: {}",
                    entry.account,
                    changed.join(", ")
                ),
            );
        }
        for (policy, document) in inline {
            let current = existing.inline_policies.get(policy.as_str());
            if current.is_some_and(|c| *c == document_value(&document)) {
                continue;
            }
            role_changed = true;
            let verb = if current.is_some() {
                "update"
            } else {
                "create"
            };
            plan.step(
                Step::PutRolePolicy {
                    account: account.clone(),
                    role: name.clone(),
                    name: policy.clone(),
                    document,
                },
                format!(
                    "{verb} inline policy {policy} of role {role_name} in account {}",
                    entry.account
                ),
            );
        }
        for arn in &entry.attached_policies {
            if existing.attached_policies.contains(arn) {
                continue;
            }
            role_changed = true;
            plan.step(
                Step::AttachRolePolicy {
                    account: account.clone(),
                    role: name.clone(),
                    arn: arn.clone(),
                },
                format!(
                    "attach {arn} to role {role_name} in account {}",
                    entry.account
                ),
            );
        }
        if !role_changed {
            plan.keep("roles");
        }
    }

    // The built-in directory: users, groups, memberships.
    let directory_needed =
        !wanted.directory_users.is_empty() || !wanted.directory_groups.is_empty();
    if directory_needed {
        match store.get_identity_source(DIRECTORY_SOURCE_ID).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => plan.step(
                Step::CreateDirectory,
                format!("create identity source {DIRECTORY_SOURCE_ID} (built-in directory)"),
            ),
            Err(error) => return Err(error.to_string()),
        }
    }
    let mut known_users: BTreeSet<String> = have
        .directory_users
        .iter()
        .map(|u| u.user_name.to_lowercase())
        .collect();
    for (i, entry) in wanted.directory_users.iter().enumerate() {
        let Some(user_name) = faults.check(
            format!("/directory_users/{i}/user_name"),
            UserName::parse(entry.user_name.as_str()),
        ) else {
            continue;
        };
        if known_users.insert(entry.user_name.to_lowercase()) {
            plan.step(
                Step::CreateDirectoryUser(NewUser {
                    identity_source_id: DIRECTORY_SOURCE_ID.into(),
                    user_name,
                    display_name: entry.display_name.clone(),
                    email: entry.email.clone(),
                    password_hash: None,
                }),
                format!(
                    "create directory user {} (no password yet: set one to let it sign in)",
                    entry.user_name
                ),
            );
        } else {
            let existing = have
                .directory_users
                .iter()
                .find(|u| u.user_name.eq_ignore_ascii_case(&entry.user_name));
            if existing.is_some_and(|u| u != entry) {
                plan.notes.push(format!(
                    "directory user {} differs in display name or email; import does not change existing users",
                    entry.user_name
                ));
            }
            plan.keep("directory users");
        }
    }
    for (i, entry) in wanted.directory_groups.iter().enumerate() {
        let Some(group) = faults.check(
            format!("/directory_groups/{i}/name"),
            GroupName::parse(entry.name.as_str()),
        ) else {
            continue;
        };
        let existing = have.directory_groups.iter().find(|g| g.name == entry.name);
        let mut group_changed = existing.is_none();
        if existing.is_none() {
            plan.step(
                Step::CreateGroup(NewGroup {
                    identity_source_id: DIRECTORY_SOURCE_ID.into(),
                    name: group.clone(),
                    description: entry.description.clone(),
                }),
                format!("create directory group {}", entry.name),
            );
        }
        for (j, member) in entry.members.iter().enumerate() {
            let pointer = format!("/directory_groups/{i}/members/{j}");
            let Some(user) = faults.check(pointer.clone(), UserName::parse(member.as_str())) else {
                continue;
            };
            if !known_users.contains(&member.to_lowercase()) {
                faults.add(
                    pointer,
                    format!(
                        "directory user {member} is neither in the database nor in the document"
                    ),
                );
                continue;
            }
            if existing.is_some_and(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(member))) {
                continue;
            }
            group_changed = true;
            plan.step(
                Step::AddMember {
                    group: group.clone(),
                    user,
                },
                format!("add directory user {member} to group {}", entry.name),
            );
        }
        if !group_changed {
            plan.keep("directory groups");
        }
    }

    for (i, entry) in wanted.iam_users.iter().enumerate() {
        let at = |field: &str| format!("/iam_users/{i}/{field}");
        let account = known_account(&mut faults, at("account"), &entry.account);
        let name = faults.check(at("name"), UserName::parse(entry.name.as_str()));
        let path = faults.check(at("path"), IamPath::parse(entry.path.as_str()));
        let inline = identity_policies(
            &mut faults,
            &format!("/iam_users/{i}"),
            &entry.inline_policies,
            &entry.attached_policies,
        );
        let (Some(account), Some(name), Some(path)) = (account, name, path) else {
            continue;
        };
        match have
            .iam_users
            .iter()
            .find(|u| u.account == entry.account && u.name.eq_ignore_ascii_case(&entry.name))
        {
            None => plan.step(
                Step::CreateIamUser(NewIamUser {
                    account_id: account,
                    path,
                    name,
                    tags: entry.tags.clone(),
                    inline_policies: inline,
                    attached_policies: entry.attached_policies.clone(),
                }),
                format!(
                    "create IAM user {} in account {}",
                    entry.name, entry.account
                ),
            ),
            Some(existing) => {
                if existing != entry {
                    plan.notes.push(format!(
                        "IAM user {} in account {} differs; import does not change existing IAM users",
                        entry.name, entry.account
                    ));
                }
                plan.keep("IAM users");
            }
        }
    }

    for (i, entry) in wanted.oidc_providers.iter().enumerate() {
        let Some(account) = known_account(
            &mut faults,
            format!("/oidc_providers/{i}/account"),
            &entry.account,
        ) else {
            continue;
        };
        let same = |p: &&OidcProviderEntry| {
            p.account == entry.account && bare_url(&p.url) == bare_url(&entry.url)
        };
        match have.oidc_providers.iter().find(same) {
            None => plan.step(
                Step::CreateOidcProvider(NewOidcProvider {
                    account_id: account,
                    url: entry.url.clone(),
                    client_ids: entry.client_ids.clone(),
                }),
                format!(
                    "create OIDC provider {} in account {}",
                    entry.url, entry.account
                ),
            ),
            Some(existing) => {
                if existing.client_ids != entry.client_ids {
                    plan.notes.push(format!(
                        "OIDC provider {} in account {} has other client ids; import does not change existing providers",
                        entry.url, entry.account
                    ));
                }
                plan.keep("OIDC providers");
            }
        }
    }

    // Mapping rules: published as a new version only when they differ.
    // References are checked only in rules that compile.
    let rule_errors = match CompiledRuleset::compile(&wanted.mapping_rules) {
        Err(errors) => errors,
        Ok(_) => mapping::check_references(&wanted.mapping_rules, &catalog),
    };
    for error in rule_errors {
        faults.add(
            format!("/mapping_rules{}", error.pointer),
            format!("{}: {}", error.code, error.message),
        );
    }
    let current = rulesets(store).current().await.map_err(|e| e.to_string())?;
    if mapping::content_hash(&current.rules) != mapping::content_hash(&wanted.mapping_rules) {
        plan.step(
            Step::PublishRules {
                base: current.version,
                rules: wanted.mapping_rules.clone(),
            },
            format!(
                "publish {} mapping rules as version {} (now version {})",
                wanted.mapping_rules.len(),
                current.version + 1,
                current.version
            ),
        );
    } else {
        plan.keep("mapping rulesets");
    }

    if faults.0.is_empty() {
        Ok(plan)
    } else {
        Err(format!(
            "the document is not valid; nothing was changed:\n  {}",
            faults.0.join("\n  ")
        ))
    }
}

fn bare_url(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
}

/// Applies `plan` in order, then audits it; the answer says how many changes.
pub async fn apply(store: &Arc<dyn Store>, plan: &ImportPlan) -> Result<String, String> {
    let rulesets = rulesets(store);
    let mut done = Vec::new();
    for (step, line) in &plan.steps {
        let result = match step {
            Step::CreateAccount(id, name) => store.create_account(id, name).await.map(drop),
            Step::CreatePolicy(new) => store.create_policy(new).await.map(drop),
            Step::UpdatePolicy { arn, document } => store
                .create_policy_version(arn, document, true)
                .await
                .map(drop),
            Step::CreateRole(new) => store.create_role(new).await.map(drop),
            Step::UpdateRole {
                account,
                name,
                update,
            } => store.update_role(account, name, update).await.map(drop),
            Step::PutRolePolicy {
                account,
                role,
                name,
                document,
            } => store.put_role_policy(account, role, name, document).await,
            Step::AttachRolePolicy { account, role, arn } => {
                store.attach_role_policy(account, role, arn).await
            }
            Step::CreateDirectory => store
                .create_identity_source(&built_in_source())
                .await
                .map(drop),
            Step::CreateDirectoryUser(new) => store.create_user(new).await.map(drop),
            Step::CreateGroup(new) => store.create_group(new).await.map(drop),
            Step::AddMember { group, user } => {
                store
                    .add_user_to_group(DIRECTORY_SOURCE_ID, group, user)
                    .await
            }
            Step::CreateIamUser(new) => store.create_iam_user(new).await.map(drop),
            Step::CreateOidcProvider(new) => store.create_oidc_provider(new).await.map(drop),
            Step::PublishRules { base, rules } => {
                match rulesets
                    .publish(*base, rules, IMPORT_ACTOR, None, None)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(error) => {
                        record(store, &done, Outcome::Failure).await;
                        return Err(format!("{line}: {error}"));
                    }
                }
            }
        };
        if let Err(error) = result {
            record(store, &done, Outcome::Failure).await;
            return Err(format!(
                "{line}: {error}; {} earlier changes were applied",
                done.len()
            ));
        }
        done.push(line.clone());
    }
    record(store, &done, Outcome::Success).await;
    let mut answer = String::new();
    let _ = write!(answer, "applied {} changes", done.len());
    Ok(answer)
}

/// Audits an import with the list of what it changed (no documents, no secrets).
async fn record(store: &Arc<dyn Store>, changes: &[String], outcome: Outcome) {
    let Ok(audit) = AuditLog::start(store.clone()) else {
        tracing::warn!("import: cannot start the audit log");
        return;
    };
    let event = AuditEvent {
        at: store.clock().now(),
        actor: IMPORT_ACTOR.into(),
        action: "admin:ImportDocument".into(),
        target: "iam".into(),
        outcome,
        source_ip: None,
        user_agent: Some("rolegate admin import".into()),
        details: json!({ "changes": changes }),
    };
    audit.record(event).await;
}
