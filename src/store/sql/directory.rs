//! Rolegate's own directory: identity sources, their users (password hash, TOTP
//! second factor) and groups with their members.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Postgres, Sqlite};

use super::{SqlStore, delete_error, not_found, write_error};
use crate::iam::{GroupName, IdKind, UserName, ValidationError};
use crate::store::{
    Group, IdentitySource, NewGroup, NewIdentitySource, NewUser, StoreError, StoreResult, Upserted,
    User,
};

/// Identity sources, directory users and groups (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait DirectoryStore: Send + Sync {
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
    /// Replaces the display name, settings and enabled flag of the existing source
    /// `new.id` in one transaction: (before, after). `NotFound` when there is none,
    /// `Conflict` when it is of another kind, `Stale` when `expected` is given and
    /// the stored source is no longer equal to it (someone saved first).
    async fn update_identity_source(
        &self,
        new: &NewIdentitySource,
        expected: Option<&IdentitySource>,
    ) -> StoreResult<(IdentitySource, IdentitySource)>;
    /// Deletes the source and returns it; `Conflict` while users or groups of it
    /// exist.
    async fn delete_identity_source(&self, id: &str) -> StoreResult<IdentitySource>;

    async fn create_user(&self, new: &NewUser) -> StoreResult<User>;
    async fn get_user(&self, source: &str, user_name: &UserName) -> StoreResult<User>;
    async fn list_users(&self, source: &str) -> StoreResult<Vec<User>>;
    /// Whether `source` has at least one user (the sign-in page of an empty server).
    async fn has_users(&self, source: &str) -> StoreResult<bool>;
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
    /// Replaces a directory user's display name and email; returns the user as it
    /// is now.
    async fn update_user_profile(
        &self,
        source: &str,
        user_name: &UserName,
        display_name: &str,
        email: Option<&str>,
    ) -> StoreResult<User>;
    /// Locks a directory user (`Some(when)`; an existing lock keeps its time) or
    /// unlocks (`None`); returns the user as it is now.
    async fn set_user_locked(
        &self,
        source: &str,
        user_name: &UserName,
        locked_at: Option<DateTime<Utc>>,
    ) -> StoreResult<User>;
    async fn create_group(&self, new: &NewGroup) -> StoreResult<Group>;
    async fn list_groups(&self, source: &str) -> StoreResult<Vec<Group>>;
    /// The user names of a group's members, in name order.
    async fn group_members(&self, source: &str, group: &GroupName) -> StoreResult<Vec<UserName>>;
    /// Deletes a group (its memberships with it); returns the group and the user
    /// names of the members it had.
    async fn delete_group(
        &self,
        source: &str,
        group: &GroupName,
    ) -> StoreResult<(Group, Vec<UserName>)>;
    async fn add_user_to_group(
        &self,
        source: &str,
        group: &GroupName,
        user_name: &UserName,
    ) -> StoreResult<()>;
    async fn remove_user_from_group(
        &self,
        source: &str,
        group: &GroupName,
        user_name: &UserName,
    ) -> StoreResult<()>;
    async fn groups_for_user(&self, source: &str, user_name: &UserName) -> StoreResult<Vec<Group>>;
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

macro_rules! user_columns {
    () => {
        "id, identity_source_id, user_name, display_name, email, password_hash, disabled, \
         created_at, totp_secret, totp_enabled_at, locked_at"
    };
}

const USER_SELECT: &str = concat!("SELECT ", user_columns!(), " FROM users");

const GROUP_COLUMNS: &str = "id, identity_source_id, name, description, created_at";

const GROUP_SELECT: &str =
    "SELECT id, identity_source_id, name, description, created_at FROM user_groups";

const SOURCE_COLUMNS: &str = "id, kind, display_name, config, enabled, created_at";

macro_rules! impl_directory_store {
    ($db:ty) => {
        impl SqlStore<$db> {
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
            async fn member_names(
                &self,
                conn: &mut <$db as Database>::Connection,
                group_id: &str,
            ) -> StoreResult<Vec<UserName>> {
                let names = sqlx::query_scalar::<_, String>(
                    "SELECT u.user_name FROM users u JOIN group_members m ON m.user_id = u.id \
                     WHERE m.group_id = $1 ORDER BY lower(u.user_name)",
                )
                .bind(group_id)
                .fetch_all(&mut *conn)
                .await?;
                names
                    .into_iter()
                    .map(|name| UserName::parse(&name).map_err(StoreError::from))
                    .collect()
            }
        }

        #[async_trait]
        impl DirectoryStore for SqlStore<$db> {
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
                .bind(self.now())
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
                let mut tx = self.begin_write().await?;
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
                .bind(self.now())
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

            async fn update_identity_source(
                &self,
                new: &NewIdentitySource,
                expected: Option<&IdentitySource>,
            ) -> StoreResult<(IdentitySource, IdentitySource)> {
                let mut tx = self.begin_write().await?;
                // Lock the row (PostgreSQL; SQLite holds the write lock) before reading.
                sqlx::query("UPDATE identity_sources SET id = id WHERE id = $1")
                    .bind(&new.id)
                    .execute(&mut *tx)
                    .await?;
                let sql = format!("SELECT {SOURCE_COLUMNS} FROM identity_sources WHERE id = $1");
                let before = sqlx::query_as::<_, IdentitySource>(&sql)
                    .bind(&new.id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("identity source", new.id.as_str()))?;
                if expected.is_some_and(|expected| *expected != before) {
                    return Err(StoreError::Stale(format!(
                        "identity source {} changed since it was read",
                        new.id
                    )));
                }
                if before.kind != new.kind {
                    return Err(StoreError::Conflict(format!(
                        "identity source {} is of kind {}, not {}; its kind cannot change",
                        new.id,
                        before.kind.as_str(),
                        new.kind.as_str()
                    )));
                }
                let sql = format!(
                    "UPDATE identity_sources SET display_name = $1, config = $2, enabled = $3 \
                     WHERE id = $4 RETURNING {SOURCE_COLUMNS}"
                );
                let after = sqlx::query_as::<_, IdentitySource>(&sql)
                    .bind(&new.display_name)
                    .bind(Json(&new.config))
                    .bind(new.enabled)
                    .bind(&new.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| write_error(e, "identity source", &new.id, ""))?;
                tx.commit().await?;
                Ok((before, after))
            }

            async fn delete_identity_source(&self, id: &str) -> StoreResult<IdentitySource> {
                let mut tx = self.begin_write().await?;
                let sql = format!("DELETE FROM identity_sources WHERE id = $1 RETURNING {SOURCE_COLUMNS}");
                let deleted = sqlx::query_as::<_, IdentitySource>(&sql)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| delete_error(e, &format!("identity source {id} (it has users or groups)")))?
                    .ok_or_else(|| not_found("identity source", id))?;
                tx.commit().await?;
                Ok(deleted)
            }

            async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
                let sql = concat!("INSERT INTO users (id, identity_source_id, user_name, display_name, \
                     email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING ", user_columns!());
                sqlx::query_as::<_, User>(sql)
                    .bind(self.new_id(IdKind::User))
                    .bind(&new.identity_source_id)
                    .bind(new.user_name.as_str())
                    .bind(&new.display_name)
                    .bind(new.email.as_deref())
                    .bind(new.password_hash.as_deref())
                    .bind(self.now())
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

            async fn has_users(&self, source: &str) -> StoreResult<bool> {
                Ok(sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM users WHERE identity_source_id = $1 LIMIT 1) AS one",
                )
                .bind(source)
                .fetch_one(&self.pool)
                .await?
                    > 0)
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
                let mut tx = self.begin_write().await?;
                let user = self.user_row(&mut tx, source, user_name).await?;
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(&user.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| delete_error(e, &format!("user {user_name}")))?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_user_profile(
                &self,
                source: &str,
                user_name: &UserName,
                display_name: &str,
                email: Option<&str>,
            ) -> StoreResult<User> {
                let sql = format!(
                    "UPDATE users SET display_name = $1, email = $2 \
                     WHERE identity_source_id = $3 AND lower(user_name) = lower($4) \
                     RETURNING {}",
                    user_columns!()
                );
                sqlx::query_as::<_, User>(&sql)
                    .bind(display_name)
                    .bind(email)
                    .bind(source)
                    .bind(user_name.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("user", user_name.as_str()))
            }

            async fn set_user_locked(
                &self,
                source: &str,
                user_name: &UserName,
                locked_at: Option<DateTime<Utc>>,
            ) -> StoreResult<User> {
                // COALESCE keeps the time of an existing lock; NULL unlocks.
                let keep = if locked_at.is_some() {
                    "COALESCE(locked_at, $1)"
                } else {
                    "$1"
                };
                let sql = format!(
                    "UPDATE users SET locked_at = {keep} \
                     WHERE identity_source_id = $2 AND lower(user_name) = lower($3) \
                     RETURNING {}",
                    user_columns!()
                );
                sqlx::query_as::<_, User>(&sql)
                    .bind(locked_at)
                    .bind(source)
                    .bind(user_name.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("user", user_name.as_str()))
            }

            async fn create_group(&self, new: &NewGroup) -> StoreResult<Group> {
                sqlx::query_as::<_, Group>(
                    "INSERT INTO user_groups (id, identity_source_id, name, description, created_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     RETURNING id, identity_source_id, name, description, created_at",
                )
                .bind(self.new_id(IdKind::Group))
                .bind(&new.identity_source_id)
                .bind(new.name.as_str())
                .bind(&new.description)
                .bind(self.now())
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

            async fn group_members(
                &self,
                source: &str,
                group: &GroupName,
            ) -> StoreResult<Vec<UserName>> {
                let mut conn = self.pool.acquire().await?;
                let group_id = self.group_id(&mut conn, source, group).await?;
                self.member_names(&mut conn, &group_id).await
            }

            async fn delete_group(
                &self,
                source: &str,
                group: &GroupName,
            ) -> StoreResult<(Group, Vec<UserName>)> {
                let mut tx = self.begin_write().await?;
                let group_id = self.group_id(&mut tx, source, group).await?;
                let members = self.member_names(&mut tx, &group_id).await?;
                let sql = format!("DELETE FROM user_groups WHERE id = $1 RETURNING {GROUP_COLUMNS}");
                let deleted = sqlx::query_as::<_, Group>(&sql)
                    .bind(&group_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| delete_error(e, &format!("group {group}")))?;
                tx.commit().await?;
                Ok((deleted, members))
            }

            async fn add_user_to_group(
                &self,
                source: &str,
                group: &GroupName,
                user_name: &UserName,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
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
                let mut tx = self.begin_write().await?;
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
        }
    };
}

impl_directory_store!(Sqlite);
impl_directory_store!(Postgres);
