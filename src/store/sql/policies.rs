//! Managed policies and their versions (at most five, one the default), looked up by
//! ARN; also the `PolicyRow` and `policy_row` lookup that roles and IAM users attach by.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Postgres, Sqlite};

use super::{SqlStore, check_document, delete_error, not_found, write_error};
use crate::iam::{AccountId, IamPath, IdKind, Partition, PolicyName};
use crate::policy::PolicyKind;
use crate::store::{
    ManagedPolicy, NewManagedPolicy, PolicyUse, PolicyVersion, StoreError, StoreResult,
};

/// Which managed policies to list.
#[derive(Debug, Clone, Copy)]
pub enum PolicyScope<'a> {
    /// Global policies (ARN account `aws`), like AWS managed policies.
    Global,
    /// An account's own customer managed policies.
    Account(&'a AccountId),
}

/// Managed policies and their versions (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Creates the policy and its version `v1` as the default.
    async fn create_policy(&self, new: &NewManagedPolicy) -> StoreResult<ManagedPolicy>;
    async fn get_policy(&self, arn: &str) -> StoreResult<ManagedPolicy>;
    /// Looks a policy up by its unique id (`ANPA...`), which never changes.
    async fn get_policy_by_id(&self, id: &str) -> StoreResult<ManagedPolicy>;
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
    /// The default version's document of a managed policy.
    async fn policy_document(&self, arn: &str) -> StoreResult<String>;
    /// Every role and IAM user that holds the policy (attached, or as a role's
    /// permissions boundary), by account and name.
    async fn policy_uses(&self, arn: &str) -> StoreResult<Vec<PolicyUse>>;
}

/// IAM keeps at most five versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

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
pub(super) struct PolicyRow {
    pub(super) id: String,
    account_id: Option<String>,
    path: String,
    name: String,
    description: String,
    pub(super) default_version_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PolicyRow {
    pub(super) fn into_policy(self, partition: &Partition) -> StoreResult<ManagedPolicy> {
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

const POLICY_SELECT: &str = "SELECT id, account_id, path, name, description, \
     default_version_id, created_at, updated_at FROM managed_policies";

macro_rules! impl_policy_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            pub(super) async fn policy_row(
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

            /// The document of the policy's default version.
            pub(super) async fn default_document(
                &self,
                conn: &mut <$db as Database>::Connection,
                policy: &PolicyRow,
            ) -> StoreResult<String> {
                Ok(sqlx::query_scalar(
                    "SELECT document FROM policy_versions WHERE policy_id = $1 AND version_id = $2",
                )
                .bind(&policy.id)
                .bind(&policy.default_version_id)
                .fetch_one(&mut *conn)
                .await?)
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
        impl PolicyStore for SqlStore<$db> {
            async fn create_policy(&self, new: &NewManagedPolicy) -> StoreResult<ManagedPolicy> {
                let customer = new.account_id.is_some();
                check_document(
                    &new.document,
                    PolicyKind::Identity,
                    customer,
                    &format!("policy {}", new.name),
                )?;
                let at = self.now();
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<_, PolicyRow>(
                    "INSERT INTO managed_policies (id, account_id, path, name, description, \
                     default_version_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'v1', $6, $6) \
                     RETURNING id, account_id, path, name, description, default_version_id, \
                     created_at, updated_at",
                )
                .bind(self.new_id(IdKind::Policy))
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

            async fn get_policy_by_id(&self, id: &str) -> StoreResult<ManagedPolicy> {
                let sql = format!("{POLICY_SELECT} WHERE id = $1");
                sqlx::query_as::<_, PolicyRow>(&sql)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("policy", id))?
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
                let mut tx = self.begin_write().await?;
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
                let mut tx = self.begin_write().await?;
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
                let at = self.now();
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
                let mut tx = self.begin_write().await?;
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
                .bind(self.now())
                .bind(&policy.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
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

            async fn policy_uses(&self, arn: &str) -> StoreResult<Vec<PolicyUse>> {
                let mut conn = self.pool.acquire().await?;
                let policy = self.policy_row(&mut conn, arn).await?;
                Ok(sqlx::query_as::<_, PolicyUse>(
                    "SELECT 'role' AS holder, r.account_id, r.name, 'attached' AS usage \
                     FROM role_policy_attachments a JOIN roles r ON r.id = a.role_id \
                     WHERE a.policy_id = $1 \
                     UNION ALL SELECT 'role', account_id, name, 'boundary' FROM roles \
                     WHERE permissions_boundary_id = $1 \
                     UNION ALL SELECT 'iam-user', u.account_id, u.name, 'attached' \
                     FROM iam_user_policy_attachments a JOIN iam_users u ON u.id = a.user_id \
                     WHERE a.policy_id = $1 \
                     ORDER BY 2, 1, 3, 4",
                )
                .bind(&policy.id)
                .fetch_all(&mut *conn)
                .await?)
            }

            async fn policy_document(&self, arn: &str) -> StoreResult<String> {
                let mut conn = self.pool.acquire().await?;
                let policy = self.policy_row(&mut conn, arn).await?;
                self.default_document(&mut conn, &policy).await
            }
        }
    };
}

impl_policy_store!(Sqlite);
impl_policy_store!(Postgres);

/// `v7` -> 7; anything unexpected sorts first.
fn version_number(version_id: &str) -> u32 {
    version_id
        .strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
