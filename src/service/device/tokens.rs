//! The terminal sign-ins that approvals start: one token family per sign-in (a
//! grant record that every access and refresh token names), refresh-token rotation
//! with replay ending the family, the bearer lookup of the SSO portal API, Logout,
//! and a per-user index of live families for listing and revoking.

use serde::{Deserialize, Serialize};

use super::approval::Approver;
use super::{DeviceError, DeviceService, Registration, same};
use crate::cache::{digest, hashed_key};
use crate::idp::identity::Identity;
use crate::service::sign_in_settings::ended_by_settings_change;

/// The longest an access token lives (refresh tokens renew it until the sign-in ends).
const ACCESS_TOKEN_SECONDS: i64 = 3600;
/// The longest access token looked up.
const ACCESS_TOKEN_LIMIT: usize = 512;
const REFRESH_REPLAYED: &str = "The refresh token was already used, so the sign-in it belongs to has been ended; sign in again";
const SIGN_IN_ENDED: &str = "The sign-in session has ended; sign in again";

fn access_key(token: &str) -> String {
    hashed_key("sso-access", token)
}

fn refresh_key(token: &str) -> String {
    hashed_key("sso-refresh", token)
}

fn grant_key(grant_id: &str) -> String {
    format!("sso-grant:{grant_id}")
}

/// The set of a person's live families (grant ids).
fn user_index_key(source_id: &str, user_name: &str) -> String {
    hashed_key(
        "sso-user-grants",
        &format!("{source_id}|{}", user_name.to_lowercase()),
    )
}

/// One terminal sign-in (token family): every access and refresh token it produces
/// names it, and deleting it ends them all.
#[derive(Debug, Serialize, Deserialize)]
struct GrantRecord {
    client_id: String,
    user_name: String,
    /// The rest is for listing (absent in records stored before).
    #[serde(default)]
    source_id: String,
    #[serde(default)]
    client_name: String,
    #[serde(default)]
    issued_at: i64,
    #[serde(default)]
    deadline: i64,
}

/// What an access or refresh token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    grant_id: String,
    pub client_id: String,
    pub identity: Identity,
    /// The absolute end of the sign-in (approval + the portal session lifetime).
    deadline: i64,
    expires_at: i64,
    /// When the approving portal sign-in began (Unix seconds; 0 in tokens stored
    /// before): a change of the user's second factor after it ends the sign-in.
    #[serde(default)]
    signed_in_at: i64,
    /// Since when the approving session stood for the user's sign-in settings (Unix
    /// milliseconds; 0 if unknown).
    #[serde(default)]
    valid_from_ms: i64,
}

/// CreateToken's answer.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// A live terminal sign-in of one person, for an administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerminalSignIn {
    /// What [`DeviceService::revoke_for_user`] takes to end this one.
    pub id: String,
    /// The short client id (`rgc-...`).
    pub client_id: String,
    pub client_name: String,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
}

impl DeviceService {
    /// Starts a terminal sign-in that a person approved (device code or authorization
    /// code): a new family, indexed under its person, and its first tokens. Returns
    /// the family's id with the tokens.
    pub(super) async fn begin_sign_in(
        &self,
        registration: &Registration,
        approver: &Approver,
    ) -> Result<(String, Tokens), DeviceError> {
        let now = self.now();
        let grant_id = self.random.hex::<32>();
        let lifetime = i64::try_from(self.sign_in_lifetime.as_secs()).unwrap_or(0);
        let deadline = approver.signed_in_at.saturating_add(lifetime);
        let identity = &approver.identity;
        let family = GrantRecord {
            client_id: registration.client_id.clone(),
            user_name: identity.user_name.clone(),
            source_id: identity.source_id.clone(),
            client_name: registration.client_name.clone(),
            issued_at: now,
            deadline,
        };
        self.put_json(&grant_key(&grant_id), &family, deadline - now)
            .await?;
        self.cache
            .set_add(
                &user_index_key(&identity.source_id, &identity.user_name),
                &grant_id,
                super::ttl(deadline - now),
            )
            .await?;
        let record = TokenRecord {
            grant_id,
            client_id: registration.client_id.clone(),
            identity: identity.clone(),
            deadline,
            // Each token's own, set as it is issued.
            expires_at: 0,
            signed_in_at: approver.signed_in_at,
            valid_from_ms: approver.valid_from_ms,
        };
        let tokens = self.issue_tokens(&record).await?;
        Ok((record.grant_id, tokens))
    }

    /// New access and refresh tokens for the family `login` belongs to.
    async fn issue_tokens(&self, login: &TokenRecord) -> Result<Tokens, DeviceError> {
        let now = self.now();
        let remaining = login.deadline - now;
        if remaining <= 0 {
            return Err(DeviceError::InvalidGrant(SIGN_IN_ENDED));
        }
        let lifetime = remaining.min(ACCESS_TOKEN_SECONDS);
        let access_token = self.new_token("rgat-");
        let refresh_token = self.new_token("rgrt-");
        let access = TokenRecord {
            expires_at: now + lifetime,
            ..login.clone()
        };
        self.put_json(&access_key(&access_token), &access, lifetime)
            .await?;
        let refresh = TokenRecord {
            expires_at: login.deadline,
            ..access
        };
        self.put_json(&refresh_key(&refresh_token), &refresh, remaining)
            .await?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_in: lifetime,
        })
    }

    /// The refresh grant. Rotation: the first presenter wins and the old token never
    /// works again; a rotated token presented again means two parties hold copies of
    /// it, so the whole family ends (OAuth 2.0 Security BCP §4.14.2).
    pub(super) async fn refresh(
        &self,
        registration: &Registration,
        refresh_token: &str,
    ) -> Result<(Identity, Tokens), DeviceError> {
        let now = self.now();
        let invalid =
            || DeviceError::InvalidGrant("The refresh token is invalid, expired or already used");
        let key = refresh_key(refresh_token);
        // Names the family of a rotated refresh token, for as long as it could last.
        let used = format!("sso-refresh-used:{}", digest(refresh_token));
        let Some(record) = self.get_json::<TokenRecord>(&key).await? else {
            if let Some(grant_id) = self.get_text(&used).await? {
                self.end_family(&grant_id).await?;
                return Err(DeviceError::InvalidGrant(REFRESH_REPLAYED));
            }
            return Err(invalid());
        };
        if !same(&record.client_id, &registration.client_id) {
            return Err(DeviceError::InvalidClient(
                "The refresh token was issued to another client",
            ));
        }
        if !self
            .first(&used, &record.grant_id, record.deadline - now)
            .await?
        {
            self.end_family(&record.grant_id).await?;
            return Err(DeviceError::InvalidGrant(REFRESH_REPLAYED));
        }
        let _ = self.cache.delete(&key).await;
        if record.deadline <= now {
            return Err(DeviceError::InvalidGrant(SIGN_IN_ENDED));
        }
        // Ended as by Logout: by Logout itself, by revocation, or by a second-factor
        // change since.
        if !self.is_live(&record).await? {
            return Err(invalid());
        }
        let tokens = self.issue_tokens(&record).await?;
        Ok((record.identity, tokens))
    }

    /// Whether the family behind a token is still on: not ended, and not ended by a
    /// change of the user's second factor since its portal sign-in (as that change
    /// ends the user's other portal sessions).
    async fn is_live(&self, record: &TokenRecord) -> Result<bool, DeviceError> {
        if self
            .cache
            .get(&grant_key(&record.grant_id))
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let ended = ended_by_settings_change(
            self.cache.as_ref(),
            &record.identity,
            record.signed_in_at,
            record.valid_from_ms,
        )
        .await?;
        Ok(!ended)
    }

    /// The live sign-in behind an access token of the SSO portal API, or None
    /// (unknown, expired, logged out, revoked).
    pub async fn bearer(&self, access_token: &str) -> Result<Option<TokenRecord>, DeviceError> {
        if access_token.is_empty() || access_token.len() > ACCESS_TOKEN_LIMIT {
            return Ok(None);
        }
        let Some(record) = self
            .get_json::<TokenRecord>(&access_key(access_token))
            .await?
        else {
            return Ok(None);
        };
        let now = self.now();
        if record.expires_at <= now || record.deadline <= now || !self.is_live(&record).await? {
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// Logout: ends the sign-in behind an access token (every token of its family).
    pub async fn logout(
        &self,
        access_token: &str,
        record: &TokenRecord,
    ) -> Result<(), DeviceError> {
        self.end_family(&record.grant_id).await?;
        Ok(self.cache.delete(&access_key(access_token)).await?)
    }

    /// Ends a family: Logout, a replayed refresh token or authorization code, or an
    /// administrator's revocation. Its tokens find no family any more.
    pub(super) async fn end_family(&self, grant_id: &str) -> Result<(), DeviceError> {
        let key = grant_key(grant_id);
        if let Some(family) = self.get_json::<GrantRecord>(&key).await? {
            self.cache
                .set_remove(
                    &user_index_key(&family.source_id, &family.user_name),
                    grant_id,
                )
                .await?;
        }
        Ok(self.cache.delete(&key).await?)
    }

    /// A person's live terminal sign-ins, oldest first. Families that ended on their
    /// own (expired) leave the index here.
    pub async fn list_for_user(
        &self,
        source_id: &str,
        user_name: &str,
    ) -> Result<Vec<TerminalSignIn>, DeviceError> {
        let index = user_index_key(source_id, user_name);
        let mut live = Vec::new();
        for grant_id in self.cache.set_members(&index).await? {
            match self.get_json::<GrantRecord>(&grant_key(&grant_id)).await? {
                Some(family) => live.push(TerminalSignIn {
                    client_id: super::short_client_id(&family.client_id).to_owned(),
                    client_name: family.client_name,
                    issued_at: family.issued_at,
                    expires_at: family.deadline,
                    id: grant_id,
                }),
                None => self.cache.set_remove(&index, &grant_id).await?,
            }
        }
        live.sort_by(|a, b| (a.issued_at, &a.id).cmp(&(b.issued_at, &b.id)));
        Ok(live)
    }

    /// Ends one person's terminal sign-ins: the one named `id` (if it is theirs), or
    /// all of them. Returns how many ended.
    pub async fn revoke_for_user(
        &self,
        source_id: &str,
        user_name: &str,
        id: Option<&str>,
    ) -> Result<usize, DeviceError> {
        let mut ended = 0;
        for sign_in in self.list_for_user(source_id, user_name).await? {
            if id.is_none_or(|id| same(id, &sign_in.id)) {
                self.end_family(&sign_in.id).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }
}
