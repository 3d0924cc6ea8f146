//! The IAM model's entities as the store reads and writes them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::iam::{
    AccountId, Description, GroupName, IamPath, MaxSessionDuration, PolicyName, RoleArn, RoleName,
    Tags, UserName,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Account {
    #[sqlx(try_from = "String")]
    pub id: AccountId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub use crate::iam::ConsoleDestination;

#[derive(Debug, Clone)]
pub struct NewManagedPolicy {
    /// `None` for a global policy (ARN account `aws`).
    pub account_id: Option<AccountId>,
    pub path: IamPath,
    pub name: PolicyName,
    pub description: Description,
    pub document: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagedPolicy {
    pub id: String,
    pub arn: String,
    pub account_id: Option<AccountId>,
    pub path: IamPath,
    pub name: PolicyName,
    pub description: String,
    pub default_version_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a managed policy is in use: attached to a role or an IAM user, or a role's
/// permissions boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PolicyUse {
    /// `role` or `iam-user`.
    pub holder: String,
    pub account_id: String,
    pub name: String,
    /// `attached` or `boundary`.
    pub usage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PolicyVersion {
    pub version_id: String,
    pub document: String,
    /// Filled in from the policy's default version id, not a column.
    #[sqlx(skip)]
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewRole {
    pub account_id: AccountId,
    pub path: IamPath,
    pub name: RoleName,
    pub description: Description,
    pub trust_policy: String,
    pub max_session_duration: MaxSessionDuration,
    /// ARN of a managed policy used as the permissions boundary.
    pub permissions_boundary: Option<String>,
    pub tags: Tags,
    pub inline_policies: Vec<(PolicyName, String)>,
    /// ARNs of managed policies to attach.
    pub attached_policies: Vec<String>,
}

impl NewRole {
    /// A role with no description, boundary, tags or policies and a one-hour maximum.
    pub fn new(account_id: AccountId, name: RoleName, trust_policy: impl Into<String>) -> Self {
        Self {
            account_id,
            path: IamPath::root(),
            name,
            description: Description::default(),
            trust_policy: trust_policy.into(),
            max_session_duration: MaxSessionDuration::DEFAULT,
            permissions_boundary: None,
            tags: Tags::default(),
            inline_policies: Vec::new(),
            attached_policies: Vec::new(),
        }
    }
}

/// Changes to a role; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RoleUpdate {
    pub description: Option<Description>,
    pub trust_policy: Option<String>,
    pub max_session_duration: Option<MaxSessionDuration>,
    /// `Some(None)` removes the boundary.
    pub permissions_boundary: Option<Option<String>>,
    pub tags: Option<Tags>,
    /// Replaces every inline policy of the role with these.
    pub inline_policies: Option<Vec<(PolicyName, String)>>,
    /// Replaces every attachment of the role with these managed policy ARNs.
    pub attached_policies: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub id: String,
    pub arn: RoleArn,
    pub account_id: AccountId,
    pub path: IamPath,
    pub name: RoleName,
    pub description: String,
    pub trust_policy: String,
    pub max_session_duration: MaxSessionDuration,
    pub permissions_boundary_arn: Option<String>,
    pub tags: Tags,
    pub revoke_sessions_before: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct InlinePolicy {
    #[sqlx(try_from = "String")]
    pub name: PolicyName,
    pub document: String,
}

/// A policy document together with where it came from, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedDocument {
    /// The inline policy's name or the managed policy's ARN.
    pub source: String,
    pub document: String,
}

/// Everything that decides what a role's sessions may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePermissions {
    pub role: Role,
    /// Inline policies, then the default versions of attached managed policies.
    pub identity_policies: Vec<NamedDocument>,
    pub permissions_boundary: Option<NamedDocument>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySourceKind {
    Directory,
    Oidc,
    Saml,
}

impl IdentitySourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySourceKind::Directory => "directory",
            IdentitySourceKind::Oidc => "oidc",
            IdentitySourceKind::Saml => "saml",
        }
    }
}

impl TryFrom<String> for IdentitySourceKind {
    type Error = crate::iam::ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "directory" => Ok(Self::Directory),
            "oidc" => Ok(Self::Oidc),
            "saml" => Ok(Self::Saml),
            other => Err(crate::iam::ValidationError::new(
                "kind",
                format!("unknown identity source kind {other:?}; use directory, oidc or saml"),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewIdentitySource {
    /// A short slug such as `directory` or `corp-okta`, used in URLs.
    pub id: String,
    pub kind: IdentitySourceKind,
    pub display_name: String,
    pub config: serde_json::Value,
    pub enabled: bool,
}

/// What [`Store::upsert_identity_source`](super::Store::upsert_identity_source) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

impl Upserted {
    /// The start-up output's verb, padded to one width ("kept" for unchanged).
    pub fn verb(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "kept   ",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct IdentitySource {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: IdentitySourceKind,
    pub display_name: String,
    #[sqlx(json)]
    pub config: serde_json::Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct NewUser {
    pub identity_source_id: String,
    pub user_name: UserName,
    pub display_name: String,
    pub email: Option<String>,
    /// An argon2id PHC string, for the built-in directory only.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewUser {
    // The password hash stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("identity_source_id", &self.identity_source_id)
            .field("user_name", &self.user_name)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub identity_source_id: String,
    #[sqlx(try_from = "String")]
    pub user_name: UserName,
    pub display_name: String,
    pub email: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    /// The directory user's TOTP secret, sealed with the master key; `None` while
    /// the user has no second factor.
    #[serde(skip)]
    pub totp_secret: Option<String>,
    /// When the user turned the TOTP second factor on; `None` while it is off.
    pub totp_enabled_at: Option<DateTime<Utc>>,
    /// When an admin locked the user (sign-in fails like a wrong password until an
    /// admin unlocks); `None` while not locked.
    pub locked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for User {
    // The password hash stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("identity_source_id", &self.identity_source_id)
            .field("user_name", &self.user_name)
            .field("email", &self.email)
            .field("disabled", &self.disabled)
            .field("totp_enabled_at", &self.totp_enabled_at)
            .field("locked_at", &self.locked_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct NewGroup {
    pub identity_source_id: String,
    pub name: GroupName,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Group {
    pub id: String,
    pub identity_source_id: String,
    #[sqlx(try_from = "String")]
    pub name: GroupName,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

impl TryFrom<String> for Outcome {
    type Error = crate::iam::ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            "denied" => Ok(Self::Denied),
            other => Err(crate::iam::ValidationError::new(
                "outcome",
                format!("unknown audit outcome {other:?}"),
            )),
        }
    }
}

/// A security-relevant event. Never put secrets in `details`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

/// An audit event with the key that makes its write idempotent (the audit spool
/// replays by it: an event already in the log is not written twice).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct KeyedAuditEvent {
    pub key: String,
    pub event: AuditEvent,
}

/// The longest text an audit event keeps of one field (or one string in `details`):
/// requests can carry 100 KB user agents, and an anonymous caller must not be able
/// to grow the audit log by much more than the count of its events.
pub const AUDIT_TEXT_LIMIT: usize = 256;
/// The most elements an audit event keeps of one array or object in `details`
/// (generous: a sign-in records every group of the person, and some have 1,500).
pub const AUDIT_LIST_LIMIT: usize = 5_000;

impl AuditEvent {
    /// This event with every string cut to [`AUDIT_TEXT_LIMIT`] characters (marked
    /// with a trailing `…`) and every list in `details` to [`AUDIT_LIST_LIMIT`]
    /// elements: what the store writes.
    pub fn bounded(&self) -> AuditEvent {
        AuditEvent {
            at: self.at,
            actor: bounded_text(&self.actor),
            action: bounded_text(&self.action),
            target: bounded_text(&self.target),
            outcome: self.outcome,
            source_ip: self.source_ip.as_deref().map(bounded_text),
            user_agent: self.user_agent.as_deref().map(bounded_text),
            details: bounded_json(&self.details, 0),
        }
    }
}

fn bounded_text(text: &str) -> String {
    match text.char_indices().nth(AUDIT_TEXT_LIMIT) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

fn bounded_json(value: &serde_json::Value, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    // Rolegate's own details are shallow; anything deeper is summarised.
    if depth > 8 {
        return Value::String("…".into());
    }
    match value {
        Value::String(text) => Value::String(bounded_text(text)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .take(AUDIT_LIST_LIMIT)
                .map(|item| bounded_json(item, depth + 1))
                .collect(),
        ),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .take(AUDIT_LIST_LIMIT)
                .map(|(key, item)| (bounded_text(key), bounded_json(item, depth + 1)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[sqlx(try_from = "String")]
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    #[sqlx(json)]
    pub details: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewIamUser {
    pub account_id: AccountId,
    pub path: IamPath,
    pub name: UserName,
    pub tags: Tags,
    pub inline_policies: Vec<(PolicyName, String)>,
    /// ARNs of managed policies to attach.
    pub attached_policies: Vec<String>,
}

/// An IAM user: a long-lived workload identity with access keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IamUser {
    pub id: String,
    pub arn: String,
    pub account_id: AccountId,
    pub path: IamPath,
    pub name: UserName,
    pub tags: Tags,
    pub created_at: DateTime<Utc>,
}

/// Everything that decides what an IAM user may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPermissions {
    pub user: IamUser,
    /// Inline policies, then the default versions of attached managed policies.
    pub identity_policies: Vec<NamedDocument>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

impl AccessKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }
}

impl TryFrom<String> for AccessKeyStatus {
    type Error = crate::iam::ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "Active" => Ok(Self::Active),
            "Inactive" => Ok(Self::Inactive),
            other => Err(crate::iam::ValidationError::new(
                "Status",
                format!("access key status {other:?} must be Active or Inactive"),
            )),
        }
    }
}

/// A long-term access key as stored: the secret stays sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub user: IamUser,
    pub sealed_secret: String,
    pub status: AccessKeyStatus,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("user", &self.user.arn)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A session-token key, sealed under the master key.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenKeyRecord {
    pub id: i64,
    pub sealed_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewOidcProvider {
    pub account_id: AccountId,
    /// The issuer URL (`https://host/path`); stored without the scheme as IAM does.
    pub url: String,
    pub client_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcProvider {
    pub id: String,
    pub arn: String,
    pub account_id: AccountId,
    /// Host and path, without the scheme: `idp.example.com/realms/x`.
    pub url: String,
    pub client_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// An IAM SAML provider to create or replace: an account's trusted SAML IdP, as
/// IAM's CreateSAMLProvider takes it.
#[derive(Debug, Clone)]
pub struct NewSamlProvider {
    pub account_id: AccountId,
    /// 1 to 128 of letters, digits and `_+=,.@-` (IAM's rule); the last part of the ARN.
    pub name: String,
    /// The IdP's SAML metadata XML, already validated by the caller
    /// ([`crate::idp::saml::parse_idp_metadata`]).
    pub metadata_document: String,
}

/// An IAM SAML provider (`arn:<partition>:iam::<account>:saml-provider/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SamlProvider {
    pub id: String,
    pub arn: String,
    pub account_id: AccountId,
    pub name: String,
    pub metadata_document: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A published ruleset version, without its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RulesetVersionSummary {
    pub version: i64,
    pub content_hash: String,
    pub published_by: String,
    /// For a restore: the version whose rules it copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<i64>,
    pub published_at: DateTime<Utc>,
    /// Why it was published, as the publisher said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A published ruleset version: the mapping rules as the admin API's JSON array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesetVersion {
    #[serde(flatten)]
    pub summary: RulesetVersionSummary,
    pub rules: serde_json::Value,
}

/// A ruleset to publish on top of version `base` (0: the first).
#[derive(Debug, Clone)]
pub struct NewRulesetVersion {
    pub base: i64,
    pub content_hash: String,
    pub rules: serde_json::Value,
    pub published_by: String,
    pub restored_from: Option<i64>,
    pub reason: Option<String>,
}

/// How often a mapping rule fired at sign-in, and when it last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    pub rule_id: String,
    pub hits: i64,
    pub last_matched_at: DateTime<Utc>,
}

/// A person's latest sign-in: the identity the mapping rules saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentSignIn {
    pub source_id: String,
    pub subject: String,
    pub user_name: String,
    /// The [`Identity`](crate::idp::identity::Identity), as JSON.
    pub identity: serde_json::Value,
    pub signed_in_at: DateTime<Utc>,
}

/// What an admin API token may do: `read` (GET) or `write` (everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminScope {
    Read,
    Write,
}

impl AdminScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminScope::Read => "read",
            AdminScope::Write => "write",
        }
    }

    /// Whether this scope allows writes.
    pub fn can_write(self) -> bool {
        self == AdminScope::Write
    }
}

impl TryFrom<String> for AdminScope {
    type Error = crate::iam::ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            other => Err(crate::iam::ValidationError::new(
                "scope",
                format!("unknown admin token scope {other:?}: use read or write"),
            )),
        }
    }
}

/// An admin API token to store: its secret only as a hash.
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    /// `at-` and random hex.
    pub id: String,
    pub name: String,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub scope: AdminScope,
    /// The admin who created it (an audit actor, `directory:alice`).
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
}

/// A stored admin API token. The secret itself is never stored; its hash never
/// leaves the store's callers (it is not serialised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_sha256: String,
    #[sqlx(try_from = "String")]
    pub scope: AdminScope,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which audit events to read, newest first. Every filter is optional; text
/// filters match exactly.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Only ids below this one (paging: the last id of the previous page).
    pub before_id: Option<i64>,
}
