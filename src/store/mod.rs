//! Persistence of the IAM model behind one trait, with SQLite (embedded default) and
//! PostgreSQL (production) implementations sharing one body of SQL (see `sql.rs`).
//!
//! The store enforces the model's invariants at the edge: names arrive as validated
//! newtypes, policy documents are parsed before they are written, uniqueness and
//! referential integrity live in the database and come back as typed [`StoreError`]s,
//! and every multi-row change runs in one transaction.

mod model;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::iam::{AccountId, Partition, PolicyName, RoleName, UserName, ValidationError};
use crate::policy::PolicyError;

pub use model::*;

/// What went wrong in a store call, in terms a handler can map to its wire format.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {key} does not exist")]
    NotFound { entity: &'static str, key: String },
    #[error("{entity} {key} already exists")]
    AlreadyExists { entity: &'static str, key: String },
    /// The change would break a reference (IAM's `DeleteConflict`).
    #[error("{0}")]
    Conflict(String),
    /// A quota such as five versions per managed policy (IAM's `LimitExceeded`).
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{what}: {error}")]
    MalformedPolicy { what: String, error: PolicyError },
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// A stable, greppable code for logs and API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "NoSuchEntity",
            StoreError::AlreadyExists { .. } => "EntityAlreadyExists",
            StoreError::Conflict(_) => "DeleteConflict",
            StoreError::LimitExceeded(_) => "LimitExceeded",
            StoreError::Invalid(_) => "ValidationError",
            StoreError::MalformedPolicy { .. } => "MalformedPolicyDocument",
            StoreError::Backend(_) | StoreError::Migration(_) => "ServiceFailure",
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Which managed policies to list.
#[derive(Debug, Clone, Copy)]
pub enum PolicyScope<'a> {
    /// Global policies (ARN account `aws`), like AWS managed policies.
    Global,
    /// An account's own customer managed policies.
    Account(&'a AccountId),
}

/// The IAM model's persistence. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    fn partition(&self) -> &Partition;
    /// Readiness: the database answers a query.
    async fn ping(&self) -> StoreResult<()>;

    async fn create_account(&self, id: &AccountId, name: &str) -> StoreResult<Account>;
    async fn get_account(&self, id: &AccountId) -> StoreResult<Account>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Fails with `Conflict` while the account still has roles or policies.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<()>;
    /// The account's console-destination allow-list; empty means only Rolegate's
    /// own `/console`. Stored entries that no longer validate are skipped (logged).
    async fn console_destinations(&self, id: &AccountId) -> StoreResult<Vec<ConsoleDestination>>;
    /// Replaces the account's console-destination allow-list (duplicates dropped,
    /// order kept); at most [`ConsoleDestination::MAX_PER_ACCOUNT`] entries.
    async fn set_console_destinations(
        &self,
        id: &AccountId,
        destinations: &[ConsoleDestination],
    ) -> StoreResult<Vec<ConsoleDestination>>;

    /// Creates the policy and its version `v1` as the default.
    async fn create_policy(&self, new: &NewManagedPolicy) -> StoreResult<ManagedPolicy>;
    async fn get_policy(&self, arn: &str) -> StoreResult<ManagedPolicy>;
    async fn list_policies(&self, scope: PolicyScope<'_>) -> StoreResult<Vec<ManagedPolicy>>;
    /// Fails with `Conflict` while the policy is attached or used as a boundary.
    async fn delete_policy(&self, arn: &str) -> StoreResult<()>;
    /// At most five versions per policy, as in IAM.
    async fn create_policy_version(
        &self,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> StoreResult<PolicyVersion>;
    async fn get_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<PolicyVersion>;
    async fn list_policy_versions(&self, arn: &str) -> StoreResult<Vec<PolicyVersion>>;
    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()>;
    /// The default version cannot be deleted.
    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()>;

    /// Creates the role with its inline policies and attachments, all or nothing.
    async fn create_role(&self, new: &NewRole) -> StoreResult<Role>;
    /// Role names are unique per account ignoring case, and looked up the same way.
    async fn get_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<Role>;
    async fn list_roles(&self, account: &AccountId) -> StoreResult<Vec<Role>>;
    async fn update_role(
        &self,
        account: &AccountId,
        name: &RoleName,
        update: &RoleUpdate,
    ) -> StoreResult<Role>;
    /// AWS's "revoke active sessions": sessions issued before `before` stop working.
    async fn revoke_role_sessions(
        &self,
        account: &AccountId,
        name: &RoleName,
        before: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Fails with `Conflict` while policies are attached or inline, as IAM's DeleteRole.
    async fn delete_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<()>;
    /// Creates or replaces an inline policy.
    async fn put_role_policy(
        &self,
        account: &AccountId,
        role: &RoleName,
        name: &PolicyName,
        document: &str,
    ) -> StoreResult<()>;
    async fn delete_role_policy(
        &self,
        account: &AccountId,
        role: &RoleName,
        name: &PolicyName,
    ) -> StoreResult<()>;
    async fn list_role_policies(
        &self,
        account: &AccountId,
        role: &RoleName,
    ) -> StoreResult<Vec<InlinePolicy>>;
    async fn attach_role_policy(
        &self,
        account: &AccountId,
        role: &RoleName,
        policy_arn: &str,
    ) -> StoreResult<()>;
    async fn detach_role_policy(
        &self,
        account: &AccountId,
        role: &RoleName,
        policy_arn: &str,
    ) -> StoreResult<()>;
    async fn list_attached_role_policies(
        &self,
        account: &AccountId,
        role: &RoleName,
    ) -> StoreResult<Vec<ManagedPolicy>>;
    /// The role and every document that governs what its sessions may do, in one read:
    /// inline policies, the default versions of attached policies, and the boundary.
    async fn role_permissions(
        &self,
        account: &AccountId,
        role: &RoleName,
    ) -> StoreResult<RolePermissions>;

    async fn create_identity_source(&self, new: &NewIdentitySource) -> StoreResult<IdentitySource>;
    async fn get_identity_source(&self, id: &str) -> StoreResult<IdentitySource>;
    async fn list_identity_sources(&self) -> StoreResult<Vec<IdentitySource>>;
    /// Creates the source, or updates the display name, settings and enabled flag of
    /// the existing one with this id, in one transaction; writes nothing when they
    /// are already equal. Fails with `Conflict` when the existing source is of
    /// another kind.
    async fn upsert_identity_source(
        &self,
        new: &NewIdentitySource,
    ) -> StoreResult<(IdentitySource, Upserted)>;

    async fn create_user(&self, new: &NewUser) -> StoreResult<User>;
    async fn get_user(&self, source: &str, user_name: &UserName) -> StoreResult<User>;
    async fn list_users(&self, source: &str) -> StoreResult<Vec<User>>;
    /// Sets (or with `None` clears) a directory user's argon2id PHC string.
    async fn set_password_hash(
        &self,
        source: &str,
        user_name: &UserName,
        password_hash: Option<&str>,
    ) -> StoreResult<()>;
    /// Turns a directory user's TOTP second factor on with `Some((sealed secret,
    /// enabled at))` (`AlreadyExists` when it is on already), or off with `None`.
    async fn set_totp_secret(
        &self,
        source: &str,
        user_name: &UserName,
        totp: Option<(&str, DateTime<Utc>)>,
    ) -> StoreResult<()>;
    async fn delete_user(&self, source: &str, user_name: &UserName) -> StoreResult<()>;
    async fn create_group(&self, new: &NewGroup) -> StoreResult<Group>;
    async fn list_groups(&self, source: &str) -> StoreResult<Vec<Group>>;
    async fn add_user_to_group(
        &self,
        source: &str,
        group: &crate::iam::GroupName,
        user_name: &UserName,
    ) -> StoreResult<()>;
    async fn remove_user_from_group(
        &self,
        source: &str,
        group: &crate::iam::GroupName,
        user_name: &UserName,
    ) -> StoreResult<()>;
    async fn groups_for_user(&self, source: &str, user_name: &UserName) -> StoreResult<Vec<Group>>;

    async fn create_iam_user(&self, new: &NewIamUser) -> StoreResult<IamUser>;
    async fn get_iam_user(&self, account: &AccountId, name: &UserName) -> StoreResult<IamUser>;
    async fn list_iam_users(&self, account: &AccountId) -> StoreResult<Vec<IamUser>>;
    /// The user and its identity policies (inline, then attached default versions).
    async fn user_permissions(
        &self,
        account: &AccountId,
        name: &UserName,
    ) -> StoreResult<UserPermissions>;
    /// Stores a new access key (secret already sealed); at most two per user, as IAM.
    async fn create_access_key(
        &self,
        account: &AccountId,
        user: &UserName,
        access_key_id: &str,
        sealed_secret: &str,
    ) -> StoreResult<AccessKeyRecord>;
    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<AccessKeyRecord>;
    async fn list_access_keys(
        &self,
        account: &AccountId,
        user: &UserName,
    ) -> StoreResult<Vec<AccessKeyRecord>>;
    async fn set_access_key_status(
        &self,
        access_key_id: &str,
        status: AccessKeyStatus,
    ) -> StoreResult<()>;
    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()>;
    /// The default version's document of a managed policy.
    async fn policy_document(&self, arn: &str) -> StoreResult<String>;

    async fn list_token_keys(&self) -> StoreResult<Vec<TokenKeyRecord>>;
    /// Adds a key; `AlreadyExists` when another replica added the same id first.
    async fn add_token_key(&self, id: i64, sealed_key: &str) -> StoreResult<()>;

    async fn create_oidc_provider(&self, new: &NewOidcProvider) -> StoreResult<OidcProvider>;
    /// Looks a provider up by its issuer URL (with or without the scheme).
    async fn find_oidc_provider(&self, account: &AccountId, url: &str)
    -> StoreResult<OidcProvider>;
    async fn list_oidc_providers(&self) -> StoreResult<Vec<OidcProvider>>;

    /// Appends to the audit log (which the database itself keeps append-only).
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<i64>;
    /// Newest first, at most `limit`, optionally only ids below `before_id` (paging).
    async fn list_audit(&self, limit: i64, before_id: Option<i64>)
    -> StoreResult<Vec<AuditRecord>>;
}

/// Settings for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub partition: Partition,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            partition: Partition::default(),
        }
    }
}

/// Opens the store the URL names (`sqlite:` or `postgres:`), checks that it answers,
/// and applies the embedded migrations.
pub async fn open(url: &str, options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Safe with WAL (no corruption); only the last commits can be lost on
            // power failure, and each write stops paying for an fsync.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Arc::new(sql::SqlStore::new(pool, options.partition.clone()))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let connect = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Arc::new(sql::SqlStore::new(pool, options.partition.clone()))
    } else {
        return Err(StoreError::Invalid(ValidationError::new(
            "database.url",
            "the database URL must start with sqlite: or postgres:",
        )));
    };
    Ok(store)
}

/// Hides the password of a database URL so it can be printed.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
