//! One body of SQL serving both backends. Queries use `$n` placeholders, which
//! PostgreSQL and (through sqlx) SQLite both accept, and the `impl_store!` macro
//! instantiates the same code for each; the two migration trees define the same
//! schema. Database errors are classified with sqlx's backend-neutral `ErrorKind`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::error::ErrorKind;
use sqlx::types::Json;
use sqlx::{Database, Pool};

use super::{
    AccessKeyRecord, AccessKeyStatus, Account, AuditEvent, AuditRecord, Backend,
    ConsoleDestination, Group, IamUser, IdentitySource, InlinePolicy, ManagedPolicy, NamedDocument,
    NewGroup, NewIamUser, NewIdentitySource, NewManagedPolicy, NewOidcProvider, NewRole, NewUser,
    OidcProvider, PolicyScope, PolicyVersion, Role, RolePermissions, RoleUpdate, Store, StoreError,
    StoreResult, TokenKeyRecord, Upserted, User, UserPermissions,
};
use crate::iam::{
    AccountId, GroupName, IamPath, IdKind, MaxSessionDuration, Partition, PolicyName, RoleName,
    Tags, UserName, ValidationError, new_unique_id,
};
use crate::policy::{ParseOptions, Policy, PolicyKind};

/// IAM keeps at most five versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    partition: Partition,
}

impl<DB: Database> SqlStore<DB> {
    pub fn new(pool: Pool<DB>, partition: Partition) -> Self {
        Self { pool, partition }
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn new_id(kind: IdKind) -> String {
    new_unique_id(kind, &mut rand::rng())
}

/// The constraint a database error broke, if any.
fn violated(error: &sqlx::Error) -> Option<ErrorKind> {
    match error {
        // SQLite reports `ON DELETE RESTRICT` as SQLITE_CONSTRAINT_TRIGGER (1811),
        // which sqlx does not classify; its message is the same as a plain FK error.
        sqlx::Error::Database(db)
            if matches!(db.kind(), ErrorKind::Other)
                && db.message().contains("FOREIGN KEY constraint failed") =>
        {
            Some(ErrorKind::ForeignKeyViolation)
        }
        sqlx::Error::Database(db) => Some(db.kind()),
        _ => None,
    }
}

/// Maps a write error: a unique violation means the entity exists, a foreign-key
/// violation means something it refers to does not (`missing`).
/// Who holds inline and attached policies: roles and IAM users keep them in their
/// own tables, under the same rules.
#[derive(Debug, Clone, Copy)]
enum PolicyHolder {
    Role,
    IamUser,
}

impl PolicyHolder {
    fn inline_table(self) -> &'static str {
        match self {
            PolicyHolder::Role => "role_inline_policies",
            PolicyHolder::IamUser => "iam_user_inline_policies",
        }
    }

    fn attachment_table(self) -> &'static str {
        match self {
            PolicyHolder::Role => "role_policy_attachments",
            PolicyHolder::IamUser => "iam_user_policy_attachments",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            PolicyHolder::Role => "role_id",
            PolicyHolder::IamUser => "user_id",
        }
    }
}

fn write_error(error: sqlx::Error, entity: &'static str, key: &str, missing: &str) -> StoreError {
    match violated(&error) {
        Some(ErrorKind::UniqueViolation) => StoreError::AlreadyExists {
            entity,
            key: key.to_owned(),
        },
        Some(ErrorKind::ForeignKeyViolation) => StoreError::NotFound {
            entity: "referenced entity",
            key: missing.to_owned(),
        },
        Some(ErrorKind::CheckViolation) => StoreError::Invalid(ValidationError::new(
            entity,
            format!("{entity} {key} breaks a database constraint: {error}"),
        )),
        _ => StoreError::Backend(error),
    }
}

/// Maps a delete error: a foreign-key violation means something still uses the entity.
fn delete_error(error: sqlx::Error, what: &str) -> StoreError {
    match violated(&error) {
        Some(ErrorKind::ForeignKeyViolation) => {
            StoreError::Conflict(format!("Cannot delete {what}: it is still in use."))
        }
        _ => StoreError::Backend(error),
    }
}

fn not_found(entity: &'static str, key: impl Into<String>) -> StoreError {
    StoreError::NotFound {
        entity,
        key: key.into(),
    }
}

/// Parses a document before it is stored, so nothing invalid is ever written.
fn check_document(document: &str, kind: PolicyKind, customer: bool, what: &str) -> StoreResult<()> {
    Policy::parse(
        document,
        ParseOptions {
            kind,
            enforce_customer_size_limit: customer,
        },
    )
    .map(|_| ())
    .map_err(|error| StoreError::MalformedPolicy {
        what: what.to_owned(),
        error,
    })
}

/// Splits a managed policy ARN into (owner, path, name); the owner is an account id
/// or `aws` for global policies.
fn policy_arn_parts(partition: &Partition, arn: &str) -> StoreResult<(String, String, String)> {
    let parsed = crate::iam::Arn::parse(arn)?;
    let resource = parsed.resource.strip_prefix("policy/");
    match resource {
        Some(rest) if parsed.partition == partition.as_str() && parsed.service == "iam" => {
            let (path, name) = match rest.rfind('/') {
                Some(i) => (format!("/{}", &rest[..=i]), &rest[i + 1..]),
                None => ("/".to_owned(), rest),
            };
            Ok((parsed.account, path, name.to_owned()))
        }
        _ => Err(not_found("policy", arn)),
    }
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: String,
    account_id: Option<String>,
    path: String,
    name: String,
    description: String,
    default_version_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PolicyRow {
    fn into_policy(self, partition: &Partition) -> StoreResult<ManagedPolicy> {
        let account_id = self.account_id.map(AccountId::parse).transpose()?;
        let path = IamPath::parse(self.path)?;
        let name = PolicyName::parse(self.name)?;
        Ok(ManagedPolicy {
            arn: partition
                .policy_arn(account_id.as_ref(), &path, name.as_str())
                .to_string(),
            id: self.id,
            account_id,
            path,
            name,
            description: self.description,
            default_version_id: self.default_version_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: String,
    account_id: String,
    path: String,
    name: String,
    description: String,
    trust_policy: String,
    max_session_duration: i64,
    #[sqlx(json)]
    tags: Tags,
    revoke_sessions_before: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    boundary_account: Option<String>,
    boundary_path: Option<String>,
    boundary_name: Option<String>,
}

impl RoleRow {
    fn into_role(self, partition: &Partition) -> StoreResult<Role> {
        let account_id = AccountId::parse(self.account_id)?;
        let path = IamPath::parse(self.path)?;
        let name = RoleName::parse(self.name)?;
        let permissions_boundary_arn = match (self.boundary_path, self.boundary_name) {
            (Some(path), Some(name)) => {
                let owner = self.boundary_account.map(AccountId::parse).transpose()?;
                let path = IamPath::parse(path)?;
                Some(
                    partition
                        .policy_arn(owner.as_ref(), &path, &name)
                        .to_string(),
                )
            }
            _ => None,
        };
        Ok(Role {
            arn: partition
                .role_arn(&account_id, &path, name.as_str())
                .to_string(),
            id: self.id,
            account_id,
            path,
            name,
            description: self.description,
            trust_policy: self.trust_policy,
            max_session_duration: MaxSessionDuration::from_seconds(self.max_session_duration)?,
            permissions_boundary_arn,
            tags: self.tags,
            revoke_sessions_before: self.revoke_sessions_before,
            created_at: self.created_at,
        })
    }
}

const ROLE_SELECT: &str = "SELECT r.id, r.account_id, r.path, r.name, r.description, \
     r.trust_policy, r.max_session_duration, r.tags, r.revoke_sessions_before, r.created_at, \
     b.account_id AS boundary_account, b.path AS boundary_path, b.name AS boundary_name \
     FROM roles r LEFT JOIN managed_policies b ON b.id = r.permissions_boundary_id";

const POLICY_SELECT: &str = "SELECT id, account_id, path, name, description, \
     default_version_id, created_at, updated_at FROM managed_policies";

#[derive(sqlx::FromRow)]
struct IamUserRow {
    id: String,
    account_id: String,
    path: String,
    name: String,
    #[sqlx(json)]
    tags: Tags,
    created_at: DateTime<Utc>,
}

impl IamUserRow {
    fn into_user(self, partition: &Partition) -> StoreResult<IamUser> {
        let account_id = AccountId::parse(self.account_id)?;
        let path = IamPath::parse(self.path)?;
        let name = UserName::parse(self.name)?;
        Ok(IamUser {
            arn: partition
                .user_arn(&account_id, &path, name.as_str())
                .to_string(),
            id: self.id,
            account_id,
            path,
            name,
            tags: self.tags,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccessKeyRow {
    access_key_id: String,
    sealed_secret: String,
    #[sqlx(try_from = "String")]
    status: AccessKeyStatus,
    key_created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    user: IamUserRow,
}

impl AccessKeyRow {
    fn into_record(self, partition: &Partition) -> StoreResult<AccessKeyRecord> {
        Ok(AccessKeyRecord {
            access_key_id: self.access_key_id,
            sealed_secret: self.sealed_secret,
            status: self.status,
            created_at: self.key_created_at,
            user: self.user.into_user(partition)?,
        })
    }
}

const ACCESS_KEY_SELECT: &str = "SELECT k.access_key_id, k.sealed_secret, k.status, \
     k.created_at AS key_created_at, u.id, u.account_id, u.path, u.name, u.tags, u.created_at \
     FROM access_keys k JOIN iam_users u ON u.id = k.user_id";

const IAM_USER_SELECT: &str = "SELECT id, account_id, path, name, tags, created_at FROM iam_users";

#[derive(sqlx::FromRow)]
struct OidcProviderRow {
    id: String,
    account_id: String,
    url: String,
    #[sqlx(json)]
    client_ids: Vec<String>,
    created_at: DateTime<Utc>,
}

impl OidcProviderRow {
    fn into_provider(self, partition: &Partition) -> StoreResult<OidcProvider> {
        let account_id = AccountId::parse(self.account_id)?;
        Ok(OidcProvider {
            arn: partition
                .oidc_provider_arn(&account_id, &self.url)
                .to_string(),
            id: self.id,
            account_id,
            url: self.url,
            client_ids: self.client_ids,
            created_at: self.created_at,
        })
    }
}

const OIDC_PROVIDER_SELECT: &str =
    "SELECT id, account_id, url, client_ids, created_at FROM oidc_providers";

/// IAM names OIDC providers by issuer URL without the scheme or a trailing slash.
fn provider_url(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Identity source ids are slugs used in URLs.
fn check_source_id(id: &str) -> StoreResult<()> {
    let slug_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if slug_ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "id",
            format!("identity source id {id:?} must be 1 to 64 lower-case letters, digits or '-'"),
        )
        .into())
    }
}

/// IAM allows two access keys per user.
const MAX_ACCESS_KEYS: i64 = 2;

const USER_SELECT: &str = "SELECT id, identity_source_id, user_name, display_name, email, \
     password_hash, disabled, created_at, totp_secret, totp_enabled_at FROM users";

const GROUP_SELECT: &str =
    "SELECT id, identity_source_id, name, description, created_at FROM user_groups";

macro_rules! impl_store {
    ($db:ty, $backend:expr, $begin:expr) => {
        impl SqlStore<$db> {
            async fn policy_row(
                &self,
                conn: &mut <$db as Database>::Connection,
                arn: &str,
            ) -> StoreResult<PolicyRow> {
                let (owner, path, name) = policy_arn_parts(&self.partition, arn)?;
                let sql = format!(
                    "{POLICY_SELECT} WHERE coalesce(account_id, 'aws') = $1 \
                     AND lower(name) = lower($2) AND path = $3"
                );
                sqlx::query_as::<_, PolicyRow>(&sql)
                    .bind(owner)
                    .bind(name)
                    .bind(path)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| not_found("policy", arn))
            }

            async fn role_row(
                &self,
                conn: &mut <$db as Database>::Connection,
                account: &AccountId,
                name: &RoleName,
            ) -> StoreResult<Role> {
                let sql = format!(
                    "{ROLE_SELECT} WHERE r.account_id = $1 AND lower(r.name) = lower($2)"
                );
                sqlx::query_as::<_, RoleRow>(&sql)
                    .bind(account.as_str())
                    .bind(name.as_str())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| not_found("role", name.as_str()))?
                    .into_role(&self.partition)
            }

            async fn user_row(
                &self,
                conn: &mut <$db as Database>::Connection,
                source: &str,
                user_name: &UserName,
            ) -> StoreResult<User> {
                let sql = format!(
                    "{USER_SELECT} WHERE identity_source_id = $1 AND lower(user_name) = lower($2)"
                );
                sqlx::query_as::<_, User>(&sql)
                    .bind(source)
                    .bind(user_name.as_str())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| not_found("user", user_name.as_str()))
            }

            async fn group_id(
                &self,
                conn: &mut <$db as Database>::Connection,
                source: &str,
                group: &GroupName,
            ) -> StoreResult<String> {
                sqlx::query_scalar::<_, String>(
                    "SELECT id FROM user_groups WHERE identity_source_id = $1 AND lower(name) = lower($2)",
                )
                .bind(source)
                .bind(group.as_str())
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| not_found("group", group.as_str()))
            }

            async fn iam_user_row(
                &self,
                conn: &mut <$db as Database>::Connection,
                account: &AccountId,
                name: &UserName,
            ) -> StoreResult<IamUser> {
                let sql = format!("{IAM_USER_SELECT} WHERE account_id = $1 AND lower(name) = lower($2)");
                sqlx::query_as::<_, IamUserRow>(&sql)
                    .bind(account.as_str())
                    .bind(name.as_str())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| not_found("user", name.as_str()))?
                    .into_user(&self.partition)
            }

            /// Inline documents of an owner, then the default versions of its attached
            /// managed policies: `owner` is "role" or "user" (the table-name stem).
            async fn identity_documents(
                &self,
                conn: &mut <$db as Database>::Connection,
                owner: &str,
                owner_id: &str,
            ) -> StoreResult<Vec<NamedDocument>> {
                let (inline_table, attach_table, column) = match owner {
                    "role" => ("role_inline_policies", "role_policy_attachments", "role_id"),
                    _ => ("iam_user_inline_policies", "iam_user_policy_attachments", "user_id"),
                };
                let mut documents: Vec<NamedDocument> = sqlx::query_as::<_, (String, String)>(
                    &format!("SELECT name, document FROM {inline_table} WHERE {column} = $1 ORDER BY name"),
                )
                .bind(owner_id)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(source, document)| NamedDocument { source, document })
                .collect();
                let attached = sqlx::query_as::<_, (Option<String>, String, String, String)>(&format!(
                    "SELECT p.account_id, p.path, p.name, v.document FROM {attach_table} a \
                     JOIN managed_policies p ON p.id = a.policy_id \
                     JOIN policy_versions v ON v.policy_id = p.id AND v.version_id = p.default_version_id \
                     WHERE a.{column} = $1 ORDER BY lower(p.name)"
                ))
                .bind(owner_id)
                .fetch_all(&mut *conn)
                .await?;
                for (owner, path, name, document) in attached {
                    let owner = owner.map(AccountId::parse).transpose()?;
                    let path = IamPath::parse(path)?;
                    documents.push(NamedDocument {
                        source: self.partition.policy_arn(owner.as_ref(), &path, &name).to_string(),
                        document,
                    });
                }
                Ok(documents)
            }

            async fn attach(
                &self,
                conn: &mut <$db as Database>::Connection,
                holder: (PolicyHolder, &str),
                policy_arn: &str,
            ) -> StoreResult<()> {
                let (kind, holder_id) = holder;
                let policy = self.policy_row(&mut *conn, policy_arn).await?;
                sqlx::query(&format!(
                    "INSERT INTO {table} ({id}, policy_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    table = kind.attachment_table(),
                    id = kind.id_column(),
                ))
                .bind(holder_id)
                .bind(&policy.id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn upsert_inline(
                &self,
                conn: &mut <$db as Database>::Connection,
                holder: (PolicyHolder, &str),
                name: &PolicyName,
                document: &str,
            ) -> StoreResult<()> {
                let (kind, holder_id) = holder;
                check_document(
                    document,
                    PolicyKind::Identity,
                    true,
                    &format!("inline policy {name}"),
                )?;
                sqlx::query(&format!(
                    "INSERT INTO {table} ({id}, name, document) VALUES ($1, $2, $3) \
                     ON CONFLICT ({id}, name) DO UPDATE SET document = excluded.document",
                    table = kind.inline_table(),
                    id = kind.id_column(),
                ))
                .bind(holder_id)
                .bind(name.as_str())
                .bind(document)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn versions(
                &self,
                conn: &mut <$db as Database>::Connection,
                policy: &PolicyRow,
            ) -> StoreResult<Vec<PolicyVersion>> {
                let mut versions = sqlx::query_as::<_, PolicyVersion>(
                    "SELECT version_id, document, created_at FROM policy_versions \
                     WHERE policy_id = $1",
                )
                .bind(&policy.id)
                .fetch_all(&mut *conn)
                .await?;
                for version in &mut versions {
                    version.is_default = version.version_id == policy.default_version_id;
                }
                // v10 sorts after v9: order by the number, not the text.
                versions.sort_by_key(|v| version_number(&v.version_id));
                Ok(versions)
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            fn backend(&self) -> Backend {
                $backend
            }

            fn partition(&self) -> &Partition {
                &self.partition
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_account(&self, id: &AccountId, name: &str) -> StoreResult<Account> {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 50 {
                    return Err(ValidationError::new(
                        "AccountName",
                        "account name must be 1 to 50 characters",
                    )
                    .into());
                }
                sqlx::query_as::<_, Account>(
                    "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) \
                     RETURNING id, name, created_at",
                )
                .bind(id.as_str())
                .bind(name)
                .bind(now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| write_error(e, "account", id.as_str(), ""))
            }

            async fn get_account(&self, id: &AccountId) -> StoreResult<Account> {
                sqlx::query_as::<_, Account>(
                    "SELECT id, name, created_at FROM accounts WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("account", id.as_str()))
            }

            async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
                Ok(sqlx::query_as::<_, Account>(
                    "SELECT id, name, created_at FROM accounts ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_account(&self, id: &AccountId) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM accounts WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| delete_error(e, &format!("account {id}")))?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("account", id.as_str()));
                }
                Ok(())
            }

            async fn console_destinations(
                &self,
                id: &AccountId,
            ) -> StoreResult<Vec<ConsoleDestination>> {
                let Json(stored) = sqlx::query_scalar::<_, Json<Vec<String>>>(
                    "SELECT console_destinations FROM accounts WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("account", id.as_str()))?;
                Ok(stored
                    .iter()
                    .filter_map(|entry| match ConsoleDestination::parse(entry) {
                        Ok(destination) => Some(destination),
                        Err(error) => {
                            tracing::warn!(account = %id, %error, "skipping an invalid stored console destination");
                            None
                        }
                    })
                    .collect())
            }

            async fn set_console_destinations(
                &self,
                id: &AccountId,
                destinations: &[ConsoleDestination],
            ) -> StoreResult<Vec<ConsoleDestination>> {
                let mut kept: Vec<ConsoleDestination> = Vec::new();
                for destination in destinations {
                    if !kept.contains(destination) {
                        kept.push(destination.clone());
                    }
                }
                if kept.len() > ConsoleDestination::MAX_PER_ACCOUNT {
                    return Err(ValidationError::new(
                        "console_destinations",
                        format!(
                            "{} console destinations given; an account may have at most {}",
                            kept.len(),
                            ConsoleDestination::MAX_PER_ACCOUNT
                        ),
                    )
                    .into());
                }
                let stored: Vec<&str> = kept.iter().map(ConsoleDestination::as_str).collect();
                let updated =
                    sqlx::query("UPDATE accounts SET console_destinations = $1 WHERE id = $2")
                        .bind(Json(&stored))
                        .bind(id.as_str())
                        .execute(&self.pool)
                        .await?;
                if updated.rows_affected() == 0 {
                    return Err(not_found("account", id.as_str()));
                }
                Ok(kept)
            }

            async fn create_policy(&self, new: &NewManagedPolicy) -> StoreResult<ManagedPolicy> {
                let customer = new.account_id.is_some();
                check_document(
                    &new.document,
                    PolicyKind::Identity,
                    customer,
                    &format!("policy {}", new.name),
                )?;
                let at = now();
                let mut tx = self.pool.begin_with($begin).await?;
                let row = sqlx::query_as::<_, PolicyRow>(
                    "INSERT INTO managed_policies (id, account_id, path, name, description, \
                     default_version_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'v1', $6, $6) \
                     RETURNING id, account_id, path, name, description, default_version_id, \
                     created_at, updated_at",
                )
                .bind(new_id(IdKind::Policy))
                .bind(new.account_id.as_ref().map(AccountId::as_str))
                .bind(new.path.as_str())
                .bind(new.name.as_str())
                .bind(new.description.as_str())
                .bind(at)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    write_error(
                        e,
                        "policy",
                        new.name.as_str(),
                        &format!(
                            "account {}",
                            new.account_id.as_ref().map_or("aws", AccountId::as_str)
                        ),
                    )
                })?;
                sqlx::query(
                    "INSERT INTO policy_versions (policy_id, version_id, document, created_at) \
                     VALUES ($1, 'v1', $2, $3)",
                )
                .bind(&row.id)
                .bind(&new.document)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                row.into_policy(&self.partition)
            }

            async fn get_policy(&self, arn: &str) -> StoreResult<ManagedPolicy> {
                let mut conn = self.pool.acquire().await?;
                self.policy_row(&mut conn, arn)
                    .await?
                    .into_policy(&self.partition)
            }

            async fn list_policies(
                &self,
                scope: PolicyScope<'_>,
            ) -> StoreResult<Vec<ManagedPolicy>> {
                let owner = match scope {
                    PolicyScope::Global => "aws",
                    PolicyScope::Account(id) => id.as_str(),
                };
                let sql = format!(
                    "{POLICY_SELECT} WHERE coalesce(account_id, 'aws') = $1 ORDER BY lower(name)"
                );
                sqlx::query_as::<_, PolicyRow>(&sql)
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_policy(&self.partition))
                    .collect()
            }

            async fn delete_policy(&self, arn: &str) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let policy = self.policy_row(&mut tx, arn).await?;
                sqlx::query("DELETE FROM managed_policies WHERE id = $1")
                    .bind(&policy.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        delete_error(e, &format!("policy {arn}: detach it from every role and remove it as a permissions boundary first"))
                    })?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_policy_version(
                &self,
                arn: &str,
                document: &str,
                set_as_default: bool,
            ) -> StoreResult<PolicyVersion> {
                let mut tx = self.pool.begin_with($begin).await?;
                let policy = self.policy_row(&mut tx, arn).await?;
                check_document(
                    document,
                    PolicyKind::Identity,
                    policy.account_id.is_some(),
                    &format!("policy {arn}"),
                )?;
                let existing = self.versions(&mut tx, &policy).await?;
                if existing.len() >= MAX_POLICY_VERSIONS {
                    return Err(StoreError::LimitExceeded(format!(
                        "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. \
                         Before you create a new version, you must delete an existing version."
                    )));
                }
                let next = existing
                    .iter()
                    .map(|v| version_number(&v.version_id))
                    .max()
                    .unwrap_or(0)
                    + 1;
                let version_id = format!("v{next}");
                let at = now();
                sqlx::query(
                    "INSERT INTO policy_versions (policy_id, version_id, document, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&policy.id)
                .bind(&version_id)
                .bind(document)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if set_as_default {
                    sqlx::query(
                        "UPDATE managed_policies SET default_version_id = $1, updated_at = $2 \
                         WHERE id = $3",
                    )
                    .bind(&version_id)
                    .bind(at)
                    .bind(&policy.id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(PolicyVersion {
                    version_id,
                    document: document.to_owned(),
                    is_default: set_as_default,
                    created_at: at,
                })
            }

            async fn get_policy_version(
                &self,
                arn: &str,
                version_id: &str,
            ) -> StoreResult<PolicyVersion> {
                let mut conn = self.pool.acquire().await?;
                let policy = self.policy_row(&mut conn, arn).await?;
                self.versions(&mut conn, &policy)
                    .await?
                    .into_iter()
                    .find(|v| v.version_id == version_id)
                    .ok_or_else(|| not_found("policy version", format!("{arn} {version_id}")))
            }

            async fn list_policy_versions(&self, arn: &str) -> StoreResult<Vec<PolicyVersion>> {
                let mut conn = self.pool.acquire().await?;
                let policy = self.policy_row(&mut conn, arn).await?;
                self.versions(&mut conn, &policy).await
            }

            async fn set_default_policy_version(
                &self,
                arn: &str,
                version_id: &str,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let policy = self.policy_row(&mut tx, arn).await?;
                if !self
                    .versions(&mut tx, &policy)
                    .await?
                    .iter()
                    .any(|v| v.version_id == version_id)
                {
                    return Err(not_found("policy version", format!("{arn} {version_id}")));
                }
                sqlx::query(
                    "UPDATE managed_policies SET default_version_id = $1, updated_at = $2 \
                     WHERE id = $3",
                )
                .bind(version_id)
                .bind(now())
                .bind(&policy.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let policy = self.policy_row(&mut tx, arn).await?;
                if policy.default_version_id == version_id {
                    return Err(StoreError::Conflict(
                        "Cannot delete the default version of a policy.".into(),
                    ));
                }
                let deleted = sqlx::query(
                    "DELETE FROM policy_versions WHERE policy_id = $1 AND version_id = $2",
                )
                .bind(&policy.id)
                .bind(version_id)
                .execute(&mut *tx)
                .await?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("policy version", format!("{arn} {version_id}")));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_role(&self, new: &NewRole) -> StoreResult<Role> {
                check_document(
                    &new.trust_policy,
                    PolicyKind::Trust,
                    false,
                    &format!("trust policy of role {}", new.name),
                )?;
                let mut tx = self.pool.begin_with($begin).await?;
                let boundary_id = match &new.permissions_boundary {
                    Some(arn) => Some(self.policy_row(&mut tx, arn).await?.id),
                    None => None,
                };
                let role_id = new_id(IdKind::Role);
                sqlx::query(
                    "INSERT INTO roles (id, account_id, path, name, description, trust_policy, \
                     max_session_duration, permissions_boundary_id, tags, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&role_id)
                .bind(new.account_id.as_str())
                .bind(new.path.as_str())
                .bind(new.name.as_str())
                .bind(new.description.as_str())
                .bind(&new.trust_policy)
                .bind(new.max_session_duration.seconds())
                .bind(boundary_id)
                .bind(Json(&new.tags))
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    write_error(
                        e,
                        "role",
                        new.name.as_str(),
                        &format!("account {}", new.account_id),
                    )
                })?;
                for (name, document) in &new.inline_policies {
                    self.upsert_inline(&mut tx, (PolicyHolder::Role, &role_id), name, document).await?;
                }
                for arn in &new.attached_policies {
                    self.attach(&mut tx, (PolicyHolder::Role, &role_id), arn).await?;
                }
                let role = self.role_row(&mut tx, &new.account_id, &new.name).await?;
                tx.commit().await?;
                Ok(role)
            }

            async fn get_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<Role> {
                let mut conn = self.pool.acquire().await?;
                self.role_row(&mut conn, account, name).await
            }

            async fn list_roles(&self, account: &AccountId) -> StoreResult<Vec<Role>> {
                let sql = format!("{ROLE_SELECT} WHERE r.account_id = $1 ORDER BY lower(r.name)");
                sqlx::query_as::<_, RoleRow>(&sql)
                    .bind(account.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_role(&self.partition))
                    .collect()
            }

            async fn update_role(
                &self,
                account: &AccountId,
                name: &RoleName,
                update: &RoleUpdate,
            ) -> StoreResult<Role> {
                if let Some(trust) = &update.trust_policy {
                    check_document(
                        trust,
                        PolicyKind::Trust,
                        false,
                        &format!("trust policy of role {name}"),
                    )?;
                }
                let mut tx = self.pool.begin_with($begin).await?;
                let role = self.role_row(&mut tx, account, name).await?;
                let boundary_id = match &update.permissions_boundary {
                    Some(Some(arn)) => Some(Some(self.policy_row(&mut tx, arn).await?.id)),
                    Some(None) => Some(None),
                    None => None,
                };
                // COALESCE keeps a column when the update leaves it out; the boundary
                // needs a flag because "remove" and "leave as is" both bind NULL.
                sqlx::query(
                    "UPDATE roles SET \
                     description = coalesce($1, description), \
                     trust_policy = coalesce($2, trust_policy), \
                     max_session_duration = coalesce($3, max_session_duration), \
                     permissions_boundary_id = CASE WHEN $4 THEN $5 ELSE permissions_boundary_id END, \
                     tags = coalesce($6, tags) \
                     WHERE id = $7",
                )
                .bind(update.description.as_ref().map(|d| d.as_str()))
                .bind(update.trust_policy.as_deref())
                .bind(update.max_session_duration.map(MaxSessionDuration::seconds))
                .bind(boundary_id.is_some())
                .bind(boundary_id.flatten())
                .bind(update.tags.as_ref().map(Json))
                .bind(&role.id)
                .execute(&mut *tx)
                .await?;
                let role = self.role_row(&mut tx, account, name).await?;
                tx.commit().await?;
                Ok(role)
            }

            async fn revoke_role_sessions(
                &self,
                account: &AccountId,
                name: &RoleName,
                before: DateTime<Utc>,
            ) -> StoreResult<()> {
                let updated = sqlx::query(
                    "UPDATE roles SET revoke_sessions_before = $1 \
                     WHERE account_id = $2 AND lower(name) = lower($3)",
                )
                .bind(before)
                .bind(account.as_str())
                .bind(name.as_str())
                .execute(&self.pool)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(not_found("role", name.as_str()));
                }
                Ok(())
            }

            async fn delete_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let role = self.role_row(&mut tx, account, name).await?;
                let in_use: i64 = sqlx::query_scalar(
                    "SELECT (SELECT count(*) FROM role_inline_policies WHERE role_id = $1) \
                     + (SELECT count(*) FROM role_policy_attachments WHERE role_id = $1)",
                )
                .bind(&role.id)
                .fetch_one(&mut *tx)
                .await?;
                if in_use > 0 {
                    return Err(StoreError::Conflict(
                        "Cannot delete entity, must delete policies first.".into(),
                    ));
                }
                sqlx::query("DELETE FROM roles WHERE id = $1")
                    .bind(&role.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| delete_error(e, &format!("role {name}")))?;
                tx.commit().await?;
                Ok(())
            }

            async fn put_role_policy(
                &self,
                account: &AccountId,
                role: &RoleName,
                name: &PolicyName,
                document: &str,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let role = self.role_row(&mut tx, account, role).await?;
                self.upsert_inline(&mut tx, (PolicyHolder::Role, &role.id), name, document).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_role_policy(
                &self,
                account: &AccountId,
                role: &RoleName,
                name: &PolicyName,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let role = self.role_row(&mut tx, account, role).await?;
                let deleted = sqlx::query(
                    "DELETE FROM role_inline_policies WHERE role_id = $1 AND name = $2",
                )
                .bind(&role.id)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("inline policy", name.as_str()));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_role_policies(
                &self,
                account: &AccountId,
                role: &RoleName,
            ) -> StoreResult<Vec<InlinePolicy>> {
                let mut conn = self.pool.acquire().await?;
                let role = self.role_row(&mut conn, account, role).await?;
                Ok(sqlx::query_as::<_, InlinePolicy>(
                    "SELECT name, document FROM role_inline_policies WHERE role_id = $1 ORDER BY name",
                )
                .bind(&role.id)
                .fetch_all(&mut *conn)
                .await?)
            }

            async fn attach_role_policy(
                &self,
                account: &AccountId,
                role: &RoleName,
                policy_arn: &str,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let role = self.role_row(&mut tx, account, role).await?;
                self.attach(&mut tx, (PolicyHolder::Role, &role.id), policy_arn).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn detach_role_policy(
                &self,
                account: &AccountId,
                role: &RoleName,
                policy_arn: &str,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let role = self.role_row(&mut tx, account, role).await?;
                let policy = self.policy_row(&mut tx, policy_arn).await?;
                let deleted = sqlx::query(
                    "DELETE FROM role_policy_attachments WHERE role_id = $1 AND policy_id = $2",
                )
                .bind(&role.id)
                .bind(&policy.id)
                .execute(&mut *tx)
                .await?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("attachment", policy_arn));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_attached_role_policies(
                &self,
                account: &AccountId,
                role: &RoleName,
            ) -> StoreResult<Vec<ManagedPolicy>> {
                let mut conn = self.pool.acquire().await?;
                let role = self.role_row(&mut conn, account, role).await?;
                sqlx::query_as::<_, PolicyRow>(
                    "SELECT p.id, p.account_id, p.path, p.name, p.description, \
                     p.default_version_id, p.created_at, p.updated_at \
                     FROM managed_policies p JOIN role_policy_attachments a ON a.policy_id = p.id \
                     WHERE a.role_id = $1 ORDER BY lower(p.name)",
                )
                .bind(&role.id)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|row| row.into_policy(&self.partition))
                .collect()
            }

            async fn role_permissions(
                &self,
                account: &AccountId,
                role: &RoleName,
            ) -> StoreResult<RolePermissions> {
                let mut tx = self.pool.begin().await?;
                let role = self.role_row(&mut tx, account, role).await?;
                let identity_policies = self.identity_documents(&mut tx, "role", &role.id).await?;
                let permissions_boundary = match &role.permissions_boundary_arn {
                    Some(arn) => {
                        let policy = self.policy_row(&mut tx, arn).await?;
                        let document: String = sqlx::query_scalar(
                            "SELECT document FROM policy_versions \
                             WHERE policy_id = $1 AND version_id = $2",
                        )
                        .bind(&policy.id)
                        .bind(&policy.default_version_id)
                        .fetch_one(&mut *tx)
                        .await?;
                        Some(NamedDocument {
                            source: arn.clone(),
                            document,
                        })
                    }
                    None => None,
                };
                tx.commit().await?;
                Ok(RolePermissions {
                    role,
                    identity_policies,
                    permissions_boundary,
                })
            }

            async fn create_identity_source(
                &self,
                new: &NewIdentitySource,
            ) -> StoreResult<IdentitySource> {
                check_source_id(&new.id)?;
                sqlx::query_as::<_, IdentitySource>(
                    "INSERT INTO identity_sources (id, kind, display_name, config, enabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     RETURNING id, kind, display_name, config, enabled, created_at",
                )
                .bind(&new.id)
                .bind(new.kind.as_str())
                .bind(&new.display_name)
                .bind(Json(&new.config))
                .bind(new.enabled)
                .bind(now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| write_error(e, "identity source", &new.id, ""))
            }

            async fn get_identity_source(&self, id: &str) -> StoreResult<IdentitySource> {
                sqlx::query_as::<_, IdentitySource>(
                    "SELECT id, kind, display_name, config, enabled, created_at \
                     FROM identity_sources WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("identity source", id))
            }

            async fn list_identity_sources(&self) -> StoreResult<Vec<IdentitySource>> {
                Ok(sqlx::query_as::<_, IdentitySource>(
                    "SELECT id, kind, display_name, config, enabled, created_at \
                     FROM identity_sources ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn upsert_identity_source(
                &self,
                new: &NewIdentitySource,
            ) -> StoreResult<(IdentitySource, Upserted)> {
                check_source_id(&new.id)?;
                let mut tx = self.pool.begin_with($begin).await?;
                let inserted = sqlx::query_as::<_, IdentitySource>(
                    "INSERT INTO identity_sources (id, kind, display_name, config, enabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING \
                     RETURNING id, kind, display_name, config, enabled, created_at",
                )
                .bind(&new.id)
                .bind(new.kind.as_str())
                .bind(&new.display_name)
                .bind(Json(&new.config))
                .bind(new.enabled)
                .bind(now())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| write_error(e, "identity source", &new.id, ""))?;
                if let Some(created) = inserted {
                    tx.commit().await?;
                    return Ok((created, Upserted::Created));
                }
                // Serialise concurrent upserts of this source (a row lock on
                // PostgreSQL; SQLite holds the database write lock) before comparing.
                sqlx::query("UPDATE identity_sources SET id = id WHERE id = $1")
                    .bind(&new.id)
                    .execute(&mut *tx)
                    .await?;
                let existing = sqlx::query_as::<_, IdentitySource>(
                    "SELECT id, kind, display_name, config, enabled, created_at \
                     FROM identity_sources WHERE id = $1",
                )
                .bind(&new.id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found("identity source", new.id.as_str()))?;
                if existing.kind != new.kind {
                    return Err(StoreError::Conflict(format!(
                        "identity source {} exists with kind {}, not {}; its kind cannot change",
                        new.id,
                        existing.kind.as_str(),
                        new.kind.as_str()
                    )));
                }
                if existing.display_name == new.display_name
                    && existing.config == new.config
                    && existing.enabled == new.enabled
                {
                    tx.commit().await?;
                    return Ok((existing, Upserted::Unchanged));
                }
                let updated = sqlx::query_as::<_, IdentitySource>(
                    "UPDATE identity_sources SET display_name = $1, config = $2, enabled = $3 \
                     WHERE id = $4 RETURNING id, kind, display_name, config, enabled, created_at",
                )
                .bind(&new.display_name)
                .bind(Json(&new.config))
                .bind(new.enabled)
                .bind(&new.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| write_error(e, "identity source", &new.id, ""))?;
                tx.commit().await?;
                Ok((updated, Upserted::Updated))
            }

            async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
                let sql = "INSERT INTO users (id, identity_source_id, user_name, display_name, \
                     email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING id, identity_source_id, user_name, display_name, email, \
                     password_hash, disabled, created_at, totp_secret, totp_enabled_at";
                sqlx::query_as::<_, User>(sql)
                    .bind(new_id(IdKind::User))
                    .bind(&new.identity_source_id)
                    .bind(new.user_name.as_str())
                    .bind(&new.display_name)
                    .bind(new.email.as_deref())
                    .bind(new.password_hash.as_deref())
                    .bind(now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| {
                        write_error(
                            e,
                            "user",
                            new.user_name.as_str(),
                            &format!("identity source {}", new.identity_source_id),
                        )
                    })
            }

            async fn get_user(&self, source: &str, user_name: &UserName) -> StoreResult<User> {
                let mut conn = self.pool.acquire().await?;
                self.user_row(&mut conn, source, user_name).await
            }

            async fn list_users(&self, source: &str) -> StoreResult<Vec<User>> {
                let sql =
                    format!("{USER_SELECT} WHERE identity_source_id = $1 ORDER BY lower(user_name)");
                Ok(sqlx::query_as::<_, User>(&sql)
                    .bind(source)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn set_password_hash(
                &self,
                source: &str,
                user_name: &UserName,
                password_hash: Option<&str>,
            ) -> StoreResult<()> {
                let updated = sqlx::query(
                    "UPDATE users SET password_hash = $1 \
                     WHERE identity_source_id = $2 AND lower(user_name) = lower($3)",
                )
                .bind(password_hash)
                .bind(source)
                .bind(user_name.as_str())
                .execute(&self.pool)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(not_found("user", user_name.as_str()));
                }
                Ok(())
            }

            async fn set_totp_secret(
                &self,
                source: &str,
                user_name: &UserName,
                totp: Option<(&str, DateTime<Utc>)>,
            ) -> StoreResult<()> {
                // Turning it on never replaces a secret another session just enrolled:
                // that person's authenticator would silently stop matching.
                let only_if_off = if totp.is_some() {
                    " AND totp_secret IS NULL"
                } else {
                    ""
                };
                let updated = sqlx::query(&format!(
                    "UPDATE users SET totp_secret = $1, totp_enabled_at = $2 \
                     WHERE identity_source_id = $3 AND lower(user_name) = lower($4){only_if_off}"
                ))
                .bind(totp.map(|(sealed, _)| sealed))
                .bind(totp.map(|(_, enabled_at)| enabled_at))
                .bind(source)
                .bind(user_name.as_str())
                .execute(&self.pool)
                .await?;
                if updated.rows_affected() == 0 {
                    self.get_user(source, user_name).await?;
                    return Err(StoreError::AlreadyExists {
                        entity: "TOTP second factor of user",
                        key: user_name.to_string(),
                    });
                }
                Ok(())
            }

            async fn delete_user(&self, source: &str, user_name: &UserName) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let user = self.user_row(&mut tx, source, user_name).await?;
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(&user.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| delete_error(e, &format!("user {user_name}")))?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_group(&self, new: &NewGroup) -> StoreResult<Group> {
                sqlx::query_as::<_, Group>(
                    "INSERT INTO user_groups (id, identity_source_id, name, description, created_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     RETURNING id, identity_source_id, name, description, created_at",
                )
                .bind(new_id(IdKind::Group))
                .bind(&new.identity_source_id)
                .bind(new.name.as_str())
                .bind(&new.description)
                .bind(now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| {
                    write_error(
                        e,
                        "group",
                        new.name.as_str(),
                        &format!("identity source {}", new.identity_source_id),
                    )
                })
            }

            async fn list_groups(&self, source: &str) -> StoreResult<Vec<Group>> {
                let sql =
                    format!("{GROUP_SELECT} WHERE identity_source_id = $1 ORDER BY lower(name)");
                Ok(sqlx::query_as::<_, Group>(&sql)
                    .bind(source)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn add_user_to_group(
                &self,
                source: &str,
                group: &GroupName,
                user_name: &UserName,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let group_id = self.group_id(&mut tx, source, group).await?;
                let user = self.user_row(&mut tx, source, user_name).await?;
                sqlx::query(
                    "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(group_id)
                .bind(&user.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_user_from_group(
                &self,
                source: &str,
                group: &GroupName,
                user_name: &UserName,
            ) -> StoreResult<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                let group_id = self.group_id(&mut tx, source, group).await?;
                let user = self.user_row(&mut tx, source, user_name).await?;
                let deleted =
                    sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                        .bind(group_id)
                        .bind(&user.id)
                        .execute(&mut *tx)
                        .await?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found(
                        "group membership",
                        format!("{user_name} in {group}"),
                    ));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn groups_for_user(
                &self,
                source: &str,
                user_name: &UserName,
            ) -> StoreResult<Vec<Group>> {
                let mut conn = self.pool.acquire().await?;
                let user = self.user_row(&mut conn, source, user_name).await?;
                Ok(sqlx::query_as::<_, Group>(
                    "SELECT g.id, g.identity_source_id, g.name, g.description, g.created_at \
                     FROM user_groups g JOIN group_members m ON m.group_id = g.id \
                     WHERE m.user_id = $1 ORDER BY lower(g.name)",
                )
                .bind(&user.id)
                .fetch_all(&mut *conn)
                .await?)
            }

            async fn create_iam_user(&self, new: &NewIamUser) -> StoreResult<IamUser> {
                let mut tx = self.pool.begin_with($begin).await?;
                let user_id = new_id(IdKind::User);
                sqlx::query(
                    "INSERT INTO iam_users (id, account_id, path, name, tags, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&user_id)
                .bind(new.account_id.as_str())
                .bind(new.path.as_str())
                .bind(new.name.as_str())
                .bind(Json(&new.tags))
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(|e| write_error(e, "user", new.name.as_str(), &format!("account {}", new.account_id)))?;
                let holder = (PolicyHolder::IamUser, user_id.as_str());
                for (name, document) in &new.inline_policies {
                    self.upsert_inline(&mut tx, holder, name, document).await?;
                }
                for arn in &new.attached_policies {
                    self.attach(&mut tx, holder, arn).await?;
                }
                let user = self.iam_user_row(&mut tx, &new.account_id, &new.name).await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn get_iam_user(&self, account: &AccountId, name: &UserName) -> StoreResult<IamUser> {
                let mut conn = self.pool.acquire().await?;
                self.iam_user_row(&mut conn, account, name).await
            }

            async fn list_iam_users(&self, account: &AccountId) -> StoreResult<Vec<IamUser>> {
                let sql = format!("{IAM_USER_SELECT} WHERE account_id = $1 ORDER BY lower(name)");
                sqlx::query_as::<_, IamUserRow>(&sql)
                    .bind(account.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_user(&self.partition))
                    .collect()
            }

            async fn user_permissions(
                &self,
                account: &AccountId,
                name: &UserName,
            ) -> StoreResult<UserPermissions> {
                let mut tx = self.pool.begin().await?;
                let user = self.iam_user_row(&mut tx, account, name).await?;
                let identity_policies = self.identity_documents(&mut tx, "user", &user.id).await?;
                tx.commit().await?;
                Ok(UserPermissions { user, identity_policies })
            }

            async fn create_access_key(
                &self,
                account: &AccountId,
                user: &UserName,
                access_key_id: &str,
                sealed_secret: &str,
            ) -> StoreResult<AccessKeyRecord> {
                let mut tx = self.pool.begin_with($begin).await?;
                let owner = self.iam_user_row(&mut tx, account, user).await?;
                // Serialise concurrent key creation for this user (a row lock on
                // PostgreSQL; SQLite holds the database write lock) before counting.
                sqlx::query("UPDATE iam_users SET id = id WHERE id = $1")
                    .bind(&owner.id)
                    .execute(&mut *tx)
                    .await?;
                let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM access_keys WHERE user_id = $1")
                    .bind(&owner.id)
                    .fetch_one(&mut *tx)
                    .await?;
                if existing >= MAX_ACCESS_KEYS {
                    return Err(StoreError::LimitExceeded(format!(
                        "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"
                    )));
                }
                let at = now();
                sqlx::query(
                    "INSERT INTO access_keys (access_key_id, user_id, sealed_secret, status, created_at) \
                     VALUES ($1, $2, $3, 'Active', $4)",
                )
                .bind(access_key_id)
                .bind(&owner.id)
                .bind(sealed_secret)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(|e| write_error(e, "access key", access_key_id, ""))?;
                tx.commit().await?;
                Ok(AccessKeyRecord {
                    access_key_id: access_key_id.to_owned(),
                    user: owner,
                    sealed_secret: sealed_secret.to_owned(),
                    status: AccessKeyStatus::Active,
                    created_at: at,
                })
            }

            async fn get_access_key(&self, access_key_id: &str) -> StoreResult<AccessKeyRecord> {
                let sql = format!("{ACCESS_KEY_SELECT} WHERE k.access_key_id = $1");
                sqlx::query_as::<_, AccessKeyRow>(&sql)
                    .bind(access_key_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("access key", access_key_id))?
                    .into_record(&self.partition)
            }

            async fn list_access_keys(
                &self,
                account: &AccountId,
                user: &UserName,
            ) -> StoreResult<Vec<AccessKeyRecord>> {
                let mut conn = self.pool.acquire().await?;
                let owner = self.iam_user_row(&mut conn, account, user).await?;
                let sql = format!("{ACCESS_KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.created_at");
                sqlx::query_as::<_, AccessKeyRow>(&sql)
                    .bind(&owner.id)
                    .fetch_all(&mut *conn)
                    .await?
                    .into_iter()
                    .map(|row| row.into_record(&self.partition))
                    .collect()
            }

            async fn set_access_key_status(
                &self,
                access_key_id: &str,
                status: AccessKeyStatus,
            ) -> StoreResult<()> {
                let updated = sqlx::query("UPDATE access_keys SET status = $1 WHERE access_key_id = $2")
                    .bind(status.as_str())
                    .bind(access_key_id)
                    .execute(&self.pool)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Err(not_found("access key", access_key_id));
                }
                Ok(())
            }

            async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1")
                    .bind(access_key_id)
                    .execute(&self.pool)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("access key", access_key_id));
                }
                Ok(())
            }

            async fn policy_document(&self, arn: &str) -> StoreResult<String> {
                let mut conn = self.pool.acquire().await?;
                let policy = self.policy_row(&mut conn, arn).await?;
                Ok(sqlx::query_scalar(
                    "SELECT document FROM policy_versions WHERE policy_id = $1 AND version_id = $2",
                )
                .bind(&policy.id)
                .bind(&policy.default_version_id)
                .fetch_one(&mut *conn)
                .await?)
            }

            async fn list_token_keys(&self) -> StoreResult<Vec<TokenKeyRecord>> {
                Ok(sqlx::query_as::<_, TokenKeyRecord>(
                    "SELECT id, sealed_key, created_at FROM token_keys ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn add_token_key(&self, id: i64, sealed_key: &str) -> StoreResult<()> {
                sqlx::query("INSERT INTO token_keys (id, sealed_key, created_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(sealed_key)
                    .bind(now())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| write_error(e, "token key", &id.to_string(), ""))?;
                Ok(())
            }

            async fn create_oidc_provider(&self, new: &NewOidcProvider) -> StoreResult<OidcProvider> {
                if !new.url.starts_with("https://") && !new.url.starts_with("http://") {
                    return Err(ValidationError::new("Url", format!("OIDC provider URL {:?} must start with https://", new.url)).into());
                }
                let url = provider_url(&new.url);
                let sql = "INSERT INTO oidc_providers (id, account_id, url, client_ids, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id, account_id, url, client_ids, created_at";
                sqlx::query_as::<_, OidcProviderRow>(sql)
                    .bind(new_id(IdKind::Provider))
                    .bind(new.account_id.as_str())
                    .bind(&url)
                    .bind(Json(&new.client_ids))
                    .bind(now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| write_error(e, "OIDC provider", &url, &format!("account {}", new.account_id)))?
                    .into_provider(&self.partition)
            }

            async fn find_oidc_provider(&self, account: &AccountId, url: &str) -> StoreResult<OidcProvider> {
                let url = provider_url(url);
                let sql = format!("{OIDC_PROVIDER_SELECT} WHERE account_id = $1 AND url = $2");
                sqlx::query_as::<_, OidcProviderRow>(&sql)
                    .bind(account.as_str())
                    .bind(&url)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("OIDC provider", url))?
                    .into_provider(&self.partition)
            }

            async fn list_oidc_providers(&self) -> StoreResult<Vec<OidcProvider>> {
                let sql = format!("{OIDC_PROVIDER_SELECT} ORDER BY account_id, url");
                sqlx::query_as::<_, OidcProviderRow>(&sql)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_provider(&self.partition))
                    .collect()
            }

            async fn append_audit(&self, event: &AuditEvent) -> StoreResult<i64> {
                let event = &event.bounded();
                Ok(sqlx::query_scalar::<_, i64>(
                    "INSERT INTO audit_events (at, actor, action, target, outcome, source_ip, \
                     user_agent, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(event.at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.target)
                .bind(event.outcome.as_str())
                .bind(event.source_ip.as_deref())
                .bind(event.user_agent.as_deref())
                .bind(Json(&event.details))
                .fetch_one(&self.pool)
                .await?)
            }

            async fn list_audit(
                &self,
                limit: i64,
                before_id: Option<i64>,
            ) -> StoreResult<Vec<AuditRecord>> {
                Ok(sqlx::query_as::<_, AuditRecord>(
                    "SELECT id, at, actor, action, target, outcome, source_ip, user_agent, details \
                     FROM audit_events WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                )
                .bind(before_id)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

/// `v7` -> 7; anything unexpected sorts first.
fn version_number(version_id: &str) -> u32 {
    version_id
        .strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

// SQLite: writing transactions take the write lock up front (`BEGIN IMMEDIATE`), so
// they wait (busy_timeout) for another writer instead of failing with SQLITE_BUSY
// when a deferred transaction that has already read tries to upgrade.
impl_store!(sqlx::Sqlite, Backend::Sqlite, "BEGIN IMMEDIATE");
impl_store!(sqlx::Postgres, Backend::Postgres, "BEGIN");
