//! Roles: the role itself (trust policy, session duration, boundary, tags, session
//! revocation), its inline and attached policies, and `role_permissions`, the one read
//! that gathers every document governing the role's sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Postgres, Sqlite};

use super::holders::PolicyHolder;
use super::policies::PolicyRow;
use super::{SqlStore, check_document, delete_error, not_found, write_error};
use crate::iam::{
    AccountId, IamPath, IdKind, MaxSessionDuration, Partition, PolicyName, RoleArn, RoleName, Tags,
};
use crate::policy::PolicyKind;
use crate::store::{
    InlinePolicy, ManagedPolicy, NamedDocument, NewRole, Role, RolePermissions, RoleUpdate,
    StoreError, StoreResult,
};

/// Roles and the policies they hold (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Creates the role with its inline policies and attachments, all or nothing.
    async fn create_role(&self, new: &NewRole) -> StoreResult<Role>;
    /// Role names are unique per account ignoring case, and looked up the same way.
    async fn get_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<Role>;
    async fn list_roles(&self, account: &AccountId) -> StoreResult<Vec<Role>>;
    /// Every role of every account, by account then name: one query for what the
    /// mapping rules may grant.
    async fn list_all_roles(&self) -> StoreResult<Vec<Role>>;
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
    /// Deletes the role with its inline policies and attachments (what the console
    /// does for an admin), all or nothing.
    async fn delete_role_with_policies(
        &self,
        account: &AccountId,
        name: &RoleName,
    ) -> StoreResult<()>;
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
            arn: RoleArn::new(partition, account_id.clone(), path.clone(), name.clone()),
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

macro_rules! impl_role_store {
    ($db:ty) => {
        impl SqlStore<$db> {
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
        }

        #[async_trait]
        impl RoleStore for SqlStore<$db> {
            async fn create_role(&self, new: &NewRole) -> StoreResult<Role> {
                check_document(
                    &new.trust_policy,
                    PolicyKind::Trust,
                    false,
                    &format!("trust policy of role {}", new.name),
                )?;
                let mut tx = self.begin_write().await?;
                let boundary_id = match &new.permissions_boundary {
                    Some(arn) => Some(self.policy_row(&mut tx, arn).await?.id),
                    None => None,
                };
                let role_id = self.new_id(IdKind::Role);
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
                .bind(self.now())
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
                self.hold_policies(
                    &mut tx,
                    (PolicyHolder::Role, &role_id),
                    &new.inline_policies,
                    &new.attached_policies,
                )
                .await?;
                let role = self.role_row(&mut tx, &new.account_id, &new.name).await?;
                tx.commit().await?;
                Ok(role)
            }

            async fn get_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<Role> {
                let mut conn = self.pool.acquire().await?;
                self.role_row(&mut conn, account, name).await
            }

            async fn list_all_roles(&self) -> StoreResult<Vec<Role>> {
                let sql = format!("{ROLE_SELECT} ORDER BY r.account_id, lower(r.name)");
                sqlx::query_as::<_, RoleRow>(&sql)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_role(&self.partition))
                    .collect()
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
                let mut tx = self.begin_write().await?;
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
                if let Some(inline) = &update.inline_policies {
                    sqlx::query("DELETE FROM role_inline_policies WHERE role_id = $1")
                        .bind(&role.id)
                        .execute(&mut *tx)
                        .await?;
                    self.hold_policies(&mut tx, (PolicyHolder::Role, &role.id), inline, &[])
                        .await?;
                }
                if let Some(attached) = &update.attached_policies {
                    sqlx::query("DELETE FROM role_policy_attachments WHERE role_id = $1")
                        .bind(&role.id)
                        .execute(&mut *tx)
                        .await?;
                    self.hold_policies(&mut tx, (PolicyHolder::Role, &role.id), &[], attached)
                        .await?;
                }
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
                let mut tx = self.begin_write().await?;
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

            async fn delete_role_with_policies(
                &self,
                account: &AccountId,
                name: &RoleName,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let role = self.role_row(&mut tx, account, name).await?;
                // Inline policies and attachments go with the role (ON DELETE CASCADE).
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
                let mut tx = self.begin_write().await?;
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
                let mut tx = self.begin_write().await?;
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
                let mut tx = self.begin_write().await?;
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
                let mut tx = self.begin_write().await?;
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
                let identity_policies = self.identity_documents(&mut tx, (PolicyHolder::Role, &role.id)).await?;
                let permissions_boundary = match &role.permissions_boundary_arn {
                    Some(arn) => {
                        let policy = self.policy_row(&mut tx, arn).await?;
                        Some(NamedDocument {
                            source: arn.clone(),
                            document: self.default_document(&mut tx, &policy).await?,
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
        }
    };
}

impl_role_store!(Sqlite);
impl_role_store!(Postgres);
