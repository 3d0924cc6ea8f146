//! IAM users (long-term identities inside an account), their identity policies and
//! their access keys (at most two, secrets sealed before they get here).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Postgres, Sqlite};

use super::holders::PolicyHolder;
use super::{SqlStore, not_found, write_error};
use crate::iam::{AccountId, IamPath, IdKind, Partition, Tags, UserName};
use crate::store::{
    AccessKeyRecord, AccessKeyStatus, IamUser, NewIamUser, StoreError, StoreResult, UserPermissions,
};

/// IAM users, their identity policies and access keys (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait IamUserStore: Send + Sync {
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
}

/// IAM allows two access keys per user.
const MAX_ACCESS_KEYS: i64 = 2;

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

macro_rules! impl_iam_user_store {
    ($db:ty) => {
        impl SqlStore<$db> {
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
        }

        #[async_trait]
        impl IamUserStore for SqlStore<$db> {
            async fn create_iam_user(&self, new: &NewIamUser) -> StoreResult<IamUser> {
                let mut tx = self.begin_write().await?;
                let user_id = self.new_id(IdKind::User);
                sqlx::query(
                    "INSERT INTO iam_users (id, account_id, path, name, tags, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&user_id)
                .bind(new.account_id.as_str())
                .bind(new.path.as_str())
                .bind(new.name.as_str())
                .bind(Json(&new.tags))
                .bind(self.now())
                .execute(&mut *tx)
                .await
                .map_err(|e| write_error(e, "user", new.name.as_str(), &format!("account {}", new.account_id)))?;
                self.hold_policies(
                    &mut tx,
                    (PolicyHolder::IamUser, &user_id),
                    &new.inline_policies,
                    &new.attached_policies,
                )
                .await?;
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
                let identity_policies = self.identity_documents(&mut tx, (PolicyHolder::IamUser, &user.id)).await?;
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
                let mut tx = self.begin_write().await?;
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
                let at = self.now();
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
        }
    };
}

impl_iam_user_store!(Sqlite);
impl_iam_user_store!(Postgres);
