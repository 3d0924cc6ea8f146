//! What the STS signs with and trusts: its sealed token-signing keys, and the OIDC
//! providers (issuer URL and audiences per account) that web identity federation
//! accepts tokens from.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite};

use super::{SqlStore, not_found, write_error};
use crate::iam::{AccountId, IdKind, Partition, ValidationError};
use crate::store::{NewOidcProvider, OidcProvider, StoreResult, TokenKeyRecord};

/// Token-signing keys and OIDC providers (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait StsKeyStore: Send + Sync {
    async fn list_token_keys(&self) -> StoreResult<Vec<TokenKeyRecord>>;
    /// Adds a key; `AlreadyExists` when another replica added the same id first.
    async fn add_token_key(&self, id: i64, sealed_key: &str) -> StoreResult<()>;

    async fn create_oidc_provider(&self, new: &NewOidcProvider) -> StoreResult<OidcProvider>;
    /// Looks a provider up by its issuer URL (with or without the scheme).
    async fn find_oidc_provider(&self, account: &AccountId, url: &str)
    -> StoreResult<OidcProvider>;
    async fn list_oidc_providers(&self) -> StoreResult<Vec<OidcProvider>>;
    /// An account's provider by its id (`AOPA...`).
    async fn get_oidc_provider(&self, account: &AccountId, id: &str) -> StoreResult<OidcProvider>;
    /// Deletes an account's provider by its id; its tokens are no longer trusted.
    async fn delete_oidc_provider(&self, account: &AccountId, id: &str) -> StoreResult<()>;
}

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

macro_rules! impl_sts_key_store {
    ($db:ty) => {
        #[async_trait]
        impl StsKeyStore for SqlStore<$db> {
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
                    .bind(self.now())
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
                    .bind(self.new_id(IdKind::Provider))
                    .bind(new.account_id.as_str())
                    .bind(&url)
                    .bind(Json(&new.client_ids))
                    .bind(self.now())
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

            async fn get_oidc_provider(&self, account: &AccountId, id: &str) -> StoreResult<OidcProvider> {
                let sql = format!("{OIDC_PROVIDER_SELECT} WHERE account_id = $1 AND id = $2");
                sqlx::query_as::<_, OidcProviderRow>(&sql)
                    .bind(account.as_str())
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found("OIDC provider", id))?
                    .into_provider(&self.partition)
            }

            async fn delete_oidc_provider(&self, account: &AccountId, id: &str) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM oidc_providers WHERE account_id = $1 AND id = $2")
                    .bind(account.as_str())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("OIDC provider", id));
                }
                Ok(())
            }
        }
    };
}

impl_sts_key_store!(Sqlite);
impl_sts_key_store!(Postgres);
