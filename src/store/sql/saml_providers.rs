//! IAM SAML providers: the SAML identity providers an account trusts for
//! AssumeRoleWithSAML, each holding its IdP's metadata document.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::{SqlStore, delete_error, not_found, write_error};
use crate::iam::{AccountId, IdKind, Partition, ValidationError};
use crate::store::{NewSamlProvider, SamlProvider, StoreResult, Upserted};

/// IAM SAML providers (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait SamlProviderStore: Send + Sync {
    /// `AlreadyExists` when the account has a provider of that name.
    async fn create_saml_provider(&self, new: &NewSamlProvider) -> StoreResult<SamlProvider>;
    /// Creates the provider, or replaces its metadata when it differs (the
    /// configuration's `[[saml_providers]]`); applying the same entry twice writes nothing.
    async fn upsert_saml_provider(
        &self,
        new: &NewSamlProvider,
    ) -> StoreResult<(SamlProvider, Upserted)>;
    async fn get_saml_provider(&self, account: &AccountId, name: &str)
    -> StoreResult<SamlProvider>;
    /// Every account's providers, by account and name.
    async fn list_saml_providers(&self) -> StoreResult<Vec<SamlProvider>>;
    /// Replaces a provider's metadata document (IAM's UpdateSAMLProvider).
    async fn update_saml_provider_metadata(
        &self,
        account: &AccountId,
        name: &str,
        metadata_document: &str,
    ) -> StoreResult<SamlProvider>;
    /// Deletes a provider; assertions of its IdP are no longer trusted.
    async fn delete_saml_provider(&self, account: &AccountId, name: &str) -> StoreResult<()>;
}

/// IAM's rule for SAML provider names.
pub fn check_saml_provider_name(name: &str) -> Result<(), ValidationError> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'=' | b',' | b'.' | b'@' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "Name",
            format!(
                "SAML provider name {name:?} must be 1 to 128 letters, digits or any of _+=,.@-"
            ),
        ))
    }
}

/// IAM's limits on a metadata document's size.
const METADATA_MIN: usize = 1_000;
const METADATA_MAX: usize = 10_000_000;

fn check_metadata_size(document: &str) -> Result<(), ValidationError> {
    if (METADATA_MIN..=METADATA_MAX).contains(&document.len()) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "SAMLMetadataDocument",
            format!(
                "the SAML metadata document must be {METADATA_MIN} to {METADATA_MAX} characters"
            ),
        ))
    }
}

#[derive(sqlx::FromRow)]
struct SamlProviderRow {
    id: String,
    account_id: String,
    name: String,
    metadata_document: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SamlProviderRow {
    fn into_provider(self, partition: &Partition) -> StoreResult<SamlProvider> {
        let account_id = AccountId::parse(self.account_id)?;
        Ok(SamlProvider {
            arn: partition
                .saml_provider_arn(&account_id, &self.name)
                .to_string(),
            id: self.id,
            account_id,
            name: self.name,
            metadata_document: self.metadata_document,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const COLUMNS: &str = "id, account_id, name, metadata_document, created_at, updated_at";

macro_rules! impl_saml_provider_store {
    ($db:ty) => {
        #[async_trait]
        impl SamlProviderStore for SqlStore<$db> {
            async fn create_saml_provider(&self, new: &NewSamlProvider) -> StoreResult<SamlProvider> {
                check_saml_provider_name(&new.name)?;
                check_metadata_size(&new.metadata_document)?;
                let now = self.now();
                let sql = format!(
                    "INSERT INTO saml_providers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
                );
                sqlx::query_as::<_, SamlProviderRow>(&sql)
                    .bind(self.new_id(IdKind::Provider))
                    .bind(new.account_id.as_str())
                    .bind(&new.name)
                    .bind(&new.metadata_document)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| write_error(e, "SAML provider", &new.name, &format!("account {}", new.account_id)))?
                    .into_provider(&self.partition)
            }

            async fn upsert_saml_provider(
                &self,
                new: &NewSamlProvider,
            ) -> StoreResult<(SamlProvider, Upserted)> {
                check_saml_provider_name(&new.name)?;
                check_metadata_size(&new.metadata_document)?;
                let mut tx = self.begin_write().await?;
                let select = format!("SELECT {COLUMNS} FROM saml_providers WHERE account_id = $1 AND name = $2");
                let existing = sqlx::query_as::<_, SamlProviderRow>(&select)
                    .bind(new.account_id.as_str())
                    .bind(&new.name)
                    .fetch_optional(&mut *tx)
                    .await?;
                let now = self.now();
                let (row, done) = match existing {
                    Some(row) if row.metadata_document == new.metadata_document => (row, Upserted::Unchanged),
                    Some(_) => {
                        let sql = format!(
                            "UPDATE saml_providers SET metadata_document = $3, updated_at = $4 \
                             WHERE account_id = $1 AND name = $2 RETURNING {COLUMNS}"
                        );
                        let row = sqlx::query_as::<_, SamlProviderRow>(&sql)
                            .bind(new.account_id.as_str())
                            .bind(&new.name)
                            .bind(&new.metadata_document)
                            .bind(now)
                            .fetch_one(&mut *tx)
                            .await?;
                        (row, Upserted::Updated)
                    }
                    None => {
                        let sql = format!(
                            "INSERT INTO saml_providers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
                        );
                        let row = sqlx::query_as::<_, SamlProviderRow>(&sql)
                            .bind(self.new_id(IdKind::Provider))
                            .bind(new.account_id.as_str())
                            .bind(&new.name)
                            .bind(&new.metadata_document)
                            .bind(now)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| write_error(e, "SAML provider", &new.name, &format!("account {}", new.account_id)))?;
                        (row, Upserted::Created)
                    }
                };
                tx.commit().await?;
                Ok((row.into_provider(&self.partition)?, done))
            }

            async fn get_saml_provider(&self, account: &AccountId, name: &str) -> StoreResult<SamlProvider> {
                let sql = format!("SELECT {COLUMNS} FROM saml_providers WHERE account_id = $1 AND name = $2");
                sqlx::query_as::<_, SamlProviderRow>(&sql)
                    .bind(account.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("SAML provider", name))?
                    .into_provider(&self.partition)
            }

            async fn list_saml_providers(&self) -> StoreResult<Vec<SamlProvider>> {
                let sql = format!("SELECT {COLUMNS} FROM saml_providers ORDER BY account_id, name");
                sqlx::query_as::<_, SamlProviderRow>(&sql)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| row.into_provider(&self.partition))
                    .collect()
            }

            async fn update_saml_provider_metadata(
                &self,
                account: &AccountId,
                name: &str,
                metadata_document: &str,
            ) -> StoreResult<SamlProvider> {
                check_metadata_size(metadata_document)?;
                let sql = format!(
                    "UPDATE saml_providers SET metadata_document = $3, updated_at = $4 \
                     WHERE account_id = $1 AND name = $2 RETURNING {COLUMNS}"
                );
                sqlx::query_as::<_, SamlProviderRow>(&sql)
                    .bind(account.as_str())
                    .bind(name)
                    .bind(metadata_document)
                    .bind(self.now())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("SAML provider", name))?
                    .into_provider(&self.partition)
            }

            async fn delete_saml_provider(&self, account: &AccountId, name: &str) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM saml_providers WHERE account_id = $1 AND name = $2")
                    .bind(account.as_str())
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| delete_error(e, &format!("SAML provider {name}")))?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("SAML provider", name));
                }
                Ok(())
            }
        }
    };
}

impl_saml_provider_store!(Sqlite);
impl_saml_provider_store!(Postgres);
