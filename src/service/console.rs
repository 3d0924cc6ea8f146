//! Console sign-in tokens and console sessions.
//!
//! A sign-in token (`/federation?Action=getSigninToken`) is a random single-use
//! bearer value, valid 15 minutes, stored in the cache under its hash together with
//! the role session it was minted for; the login takes it once (the first presenter
//! stores a used-marker, so replicas sharing the cache agree). A console session is a
//! random id in the cache (under its hash) that lives no longer than the role session
//! behind it; the id's first [`SHORT_ID_LEN`] characters name the console in its
//! address, so several consoles for different roles can be open side by side.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheError, RateLimit, hashed_key};
use crate::clock::{Clock, Random};
use crate::iam::{AccountId, LoginDestination, RoleName};
use crate::idp::identity::Identity;
use crate::policy::PolicySource;
use crate::service::issuance::Sts;
use crate::store::{NamedDocument, Store};
use crate::sts::assume::{Caller, CallerKind};
use crate::sts::credentials::KeyKind;
use crate::sts::error::StsError;
use crate::sts::policies::CallerPolicies;

/// AWS: a sign-in URL is valid for 15 minutes after the token was issued.
const SIGNIN_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
const SIGNIN_PREFIX: &str = "federation-signin";
const SIGNIN_USED_PREFIX: &str = "federation-signin-used";
const CONSOLE_PREFIX: &str = "console-session";
/// The console id's prefix that names the console in its address and cookie.
pub const SHORT_ID_LEN: usize = 12;
const CONSOLE_ID_LEN: usize = 64;

/// Refused federation requests one client network may make per window; past it
/// every request from that network is refused unevaluated until the window ends, so
/// guessing sign-in tokens or session keys stays slow and the audit log small.
const REFUSALS: RateLimit = RateLimit {
    name: "federation-failures",
    max: 30,
    window: Duration::from_secs(5 * 60),
};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    // `getSigninToken`: the presented credentials are refused (the messages are the
    // endpoint's own).
    #[error("sessionId must be the access key id of temporary role credentials (ASIA...).")]
    NotTemporaryCredentials,
    #[error("sessionKey does not match the credentials.")]
    WrongSessionKey,
    #[error("The session token has expired.")]
    ExpiredSessionToken,
    #[error("The session token is not valid for sessionId.")]
    InvalidSessionToken,
    #[error("Console sessions are only for assumed-role credentials.")]
    NotRoleCredentials,
    // The login.
    #[error("Destination is not on the account's console destinations")]
    DestinationNotListed { account: String },
    #[error("sign-in token already used")]
    SigninTokenUsed,
    #[error("sign-in token expired or unknown")]
    SigninTokenUnknown,
    /// The role session behind a sign-in token or a console no longer verifies
    /// (`cause` when the STS said why).
    #[error("the role session ended")]
    RoleSessionEnded {
        access_key_id: String,
        cause: Option<StsError>,
    },
    // Opening a console.
    #[error("console sessions are only for role sessions")]
    NotRoleSession,
    #[error("the role session has expired")]
    RoleSessionExpired,
    // An open console.
    #[error("unknown or tampered console cookie")]
    UnknownConsole,
    /// The role session was revoked or its role is gone; the console is ended.
    #[error("{}", .0.message)]
    RoleGone(StsError),
    #[error("cannot read the role's policy documents: {0}")]
    PolicyDocuments(String),
    /// A failure of the STS itself (5xx; its message is already opaque).
    #[error("{}", .0.message)]
    Sts(StsError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot encode a console record: {0}")]
    Encode(#[from] serde_json::Error),
}

impl ConsoleError {
    /// The STS's answer behind this error, when the STS gave one.
    pub fn sts_cause(&self) -> Option<&StsError> {
        match self {
            Self::RoleSessionEnded { cause, .. } => cause.as_ref(),
            Self::RoleGone(cause) | Self::Sts(cause) => Some(cause),
            _ => None,
        }
    }
}

/// What a sign-in token stands for, in the cache under the token's hash.
#[derive(Serialize, Deserialize)]
struct SigninGrant {
    access_key_id: String,
    session_token: String,
    /// The console session length asked for with `SessionDuration`.
    duration: Option<i64>,
    issued_at: i64,
}

/// A console session, in the cache under the hash of its id.
#[derive(Serialize, Deserialize)]
struct StoredConsole {
    access_key_id: String,
    session_token: String,
    csrf: String,
    /// Where "Back" goes: a local path (the login's `Issuer`, or `/start`).
    back: String,
    expires_at: i64,
}

/// The keys of role credentials as `getSigninToken` receives them.
pub struct RoleCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: &'a str,
}

/// A sign-in token just issued, and the verified session it stands for.
pub struct SigninToken {
    pub token: String,
    pub caller: Caller,
}

/// A verified role session a console may be opened for.
pub struct RoleSession {
    pub caller: Caller,
    session_token: String,
    /// The console session length asked for at `getSigninToken`.
    duration: Option<i64>,
}

/// A console session just created: `id` goes into the console's cookie, `short`
/// names it, `ttl` (seconds) is how long both live.
pub struct OpenedConsole {
    pub id: String,
    pub short: String,
    pub ttl: i64,
}

/// An open console whose id checked out, with the role session behind it.
pub struct Console {
    id: String,
    pub short: String,
    pub caller: Caller,
    stored: StoredConsole,
}

impl Console {
    /// The token the console's forms carry.
    pub fn csrf(&self) -> &str {
        &self.stored.csrf
    }

    /// Whether a form's token is this console's (constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        crate::secrets::same_secret(&self.stored.csrf, given)
    }

    /// Where "Back" and "Close console" go (a local path, as stored).
    pub fn back(&self) -> &str {
        &self.stored.back
    }

    /// When the console ends: its own expiry or its role session's, whichever is first.
    pub fn expires_at(&self) -> i64 {
        self.caller
            .session
            .as_ref()
            .map_or(self.stored.expires_at, |claims| claims.expires_at)
            .min(self.stored.expires_at)
    }
}

/// What a console's role may do: the parsed policies the evaluation uses and, in the
/// same order, the documents they came from.
pub struct ConsolePolicies {
    pub policies: CallerPolicies,
    pub documents: PolicyDocuments,
}

/// The documents behind a session's policies as (name, JSON), in the order the
/// evaluation indexes them.
pub struct PolicyDocuments {
    pub identity: Vec<(String, String)>,
    pub boundary: Option<(String, String)>,
    pub session: Vec<(String, String)>,
}

impl PolicyDocuments {
    /// The document a verdict's deciding statement came from.
    pub fn get(&self, source: PolicySource) -> Option<&(String, String)> {
        match source {
            PolicySource::Identity(i) => self.identity.get(i),
            PolicySource::Boundary => self.boundary.as_ref(),
            PolicySource::Session(i) => self.session.get(i),
            PolicySource::Resource => None,
        }
    }
}

/// A role the deep link to its console may offer, as the confirmation shows it.
pub struct EntitledRole {
    pub account_name: String,
    pub description: String,
}

/// Whether `short` can name a console (lowercase hexadecimal of the right length).
pub fn is_short_id(short: &str) -> bool {
    short.len() == SHORT_ID_LEN
        && short
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub struct ConsoleService {
    cache: Arc<dyn Cache>,
    store: Arc<dyn Store>,
    sts: Arc<Sts>,
    clock: Clock,
    random: Random,
}

impl ConsoleService {
    pub fn new(
        cache: Arc<dyn Cache>,
        store: Arc<dyn Store>,
        sts: Arc<Sts>,
        clock: Clock,
        random: Random,
    ) -> Self {
        Self {
            cache,
            store,
            sts,
            clock,
            random,
        }
    }

    /// `Some(seconds to wait)` when `network` has used up its budget of refused
    /// federation requests. An unreadable counter does not refuse.
    pub async fn throttled(&self, network: &str) -> Option<u64> {
        REFUSALS
            .exceeded(self.cache.as_ref(), network)
            .await
            .ok()
            .flatten()
    }

    /// Counts a refused federation request against `network`'s budget.
    pub async fn count_refusal(&self, network: &str) {
        if let Err(error) = REFUSALS.count(self.cache.as_ref(), network).await {
            tracing::warn!(%error, "cannot count a refused federation request");
        }
    }

    /// A role session that its role revoked since ("revoke active sessions") signs
    /// nothing in: the one database read that verifying the token alone skips.
    async fn not_revoked(&self, caller: &Caller, access_key_id: &str) -> Result<(), ConsoleError> {
        match self.sts.caller_policies(caller).await {
            Ok(_) => Ok(()),
            Err(cause) if cause.status < 500 => Err(ConsoleError::RoleSessionEnded {
                access_key_id: access_key_id.to_owned(),
                cause: Some(cause),
            }),
            Err(cause) => Err(ConsoleError::Sts(cause)),
        }
    }

    /// `getSigninToken`: checks the role credentials (all three parts) and issues a
    /// single-use sign-in token for them.
    pub async fn issue_signin_token(
        &self,
        credentials: &RoleCredentials<'_>,
        duration: Option<i64>,
    ) -> Result<SigninToken, ConsoleError> {
        let now = self.clock.timestamp();
        if KeyKind::of(credentials.access_key_id) != Some(KeyKind::Temporary) {
            return Err(ConsoleError::NotTemporaryCredentials);
        }
        let caller = match self
            .sts
            .resolve_keys(
                credentials.access_key_id,
                Some(credentials.session_token),
                now,
            )
            .await
        {
            Ok((caller, secret))
                if crate::secrets::same_secret(&secret, credentials.secret_access_key) =>
            {
                caller
            }
            Ok(_) => return Err(ConsoleError::WrongSessionKey),
            Err(error) if error.status >= 500 => return Err(ConsoleError::Sts(error)),
            Err(error) if error.code == "ExpiredToken" => {
                return Err(ConsoleError::ExpiredSessionToken);
            }
            Err(_) => return Err(ConsoleError::InvalidSessionToken),
        };
        if !caller.is_role_session() || caller.session.is_none() {
            return Err(ConsoleError::NotRoleCredentials);
        }
        self.not_revoked(&caller, credentials.access_key_id).await?;
        let token = self.random.token();
        let grant = SigninGrant {
            access_key_id: credentials.access_key_id.to_owned(),
            session_token: credentials.session_token.to_owned(),
            duration,
            issued_at: now,
        };
        self.cache
            .put(
                &hashed_key(SIGNIN_PREFIX, &token),
                &serde_json::to_vec(&grant)?,
                SIGNIN_TOKEN_TTL,
            )
            .await?;
        Ok(SigninToken { token, caller })
    }

    /// The login: takes the sign-in `token` once and returns the role session it
    /// stands for. An `external` destination must be on the console destinations
    /// of that session's account; it is checked before the token is used up too, so
    /// a link with a wrong destination does not cost the token.
    pub async fn redeem_signin_token(
        &self,
        token: &str,
        external: Option<&reqwest::Url>,
    ) -> Result<RoleSession, ConsoleError> {
        let now = self.clock.timestamp();
        if let Some(url) = external
            && let Some(account) = self.signin_account(token, now).await?
            && !self.destination_allowed(&account, url).await
        {
            return Err(ConsoleError::DestinationNotListed { account });
        }
        let grant = self.take_signin_token(token, now).await?;
        let caller = self
            .sts
            .resolve_keys(&grant.access_key_id, Some(&grant.session_token), now)
            .await
            .map_err(|cause| ConsoleError::RoleSessionEnded {
                access_key_id: grant.access_key_id.clone(),
                cause: Some(cause),
            })?
            .0;
        self.not_revoked(&caller, &grant.access_key_id).await?;
        // The decision itself, on the session actually signed in.
        if let Some(url) = external
            && !self.destination_allowed(&caller.account, url).await
        {
            return Err(ConsoleError::DestinationNotListed {
                account: caller.account,
            });
        }
        Ok(RoleSession {
            caller,
            session_token: grant.session_token,
            duration: grant.duration,
        })
    }

    /// The role session behind freshly issued credentials (the portal's "Console"
    /// button), for [`ConsoleService::open`].
    pub async fn role_session(
        &self,
        access_key_id: &str,
        session_token: &str,
    ) -> Result<RoleSession, ConsoleError> {
        let now = self.clock.timestamp();
        let (caller, _) = self
            .sts
            .resolve_keys(access_key_id, Some(session_token), now)
            .await
            .map_err(|cause| ConsoleError::RoleSessionEnded {
                access_key_id: access_key_id.to_owned(),
                cause: Some(cause),
            })?;
        Ok(RoleSession {
            caller,
            session_token: session_token.to_owned(),
            duration: None,
        })
    }

    /// Creates a console session for `session`, living as long as the role session
    /// (or the duration asked for, if shorter); "Back" goes to `back`.
    pub async fn open(
        &self,
        session: &RoleSession,
        back: &str,
    ) -> Result<OpenedConsole, ConsoleError> {
        let now = self.clock.timestamp();
        let caller = &session.caller;
        let Some(claims) = caller.session.as_ref().filter(|_| caller.is_role_session()) else {
            return Err(ConsoleError::NotRoleSession);
        };
        let remaining = claims.expires_at - now;
        if remaining <= 0 {
            return Err(ConsoleError::RoleSessionExpired);
        }
        let ttl = session.duration.map_or(remaining, |d| d.min(remaining));
        let id = self.random.hex::<32>();
        let short = id.get(..SHORT_ID_LEN).unwrap_or_default().to_owned();
        let stored = StoredConsole {
            access_key_id: caller.access_key_id.clone(),
            session_token: session.session_token.clone(),
            csrf: self.random.token(),
            back: back.to_owned(),
            expires_at: now + ttl,
        };
        self.cache
            .put(
                &hashed_key(CONSOLE_PREFIX, &id),
                &serde_json::to_vec(&stored)?,
                Duration::from_secs(ttl.unsigned_abs()),
            )
            .await?;
        Ok(OpenedConsole { id, short, ttl })
    }

    /// The console named `short` whose id (from its cookie) is `id`, while its role
    /// session still verifies; a console whose role session ended is ended too.
    pub async fn find(&self, short: &str, id: &str) -> Result<Console, ConsoleError> {
        let well_formed = is_short_id(short)
            && id.len() == CONSOLE_ID_LEN
            && id.starts_with(short)
            && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(ConsoleError::UnknownConsole);
        }
        let key = hashed_key(CONSOLE_PREFIX, id);
        let Some(stored) = self
            .cache
            .get(&key)
            .await?
            .and_then(|s| serde_json::from_slice::<StoredConsole>(&s).ok())
        else {
            return Err(ConsoleError::UnknownConsole);
        };
        let now = self.clock.timestamp();
        match self
            .sts
            .resolve_keys(&stored.access_key_id, Some(&stored.session_token), now)
            .await
        {
            Ok((caller, _)) if caller.is_role_session() => Ok(Console {
                id: id.to_owned(),
                short: short.to_owned(),
                caller,
                stored,
            }),
            verified => {
                self.forget(id).await;
                Err(ConsoleError::RoleSessionEnded {
                    access_key_id: stored.access_key_id,
                    cause: verified.err(),
                })
            }
        }
    }

    /// Ends `console` (signing out): its id no longer opens anything.
    pub async fn end(&self, console: &Console) -> Result<(), ConsoleError> {
        Ok(self
            .cache
            .delete(&hashed_key(CONSOLE_PREFIX, &console.id))
            .await?)
    }

    /// The policies of `console`'s role session, parsed and as documents. A session
    /// that was revoked, or whose role is gone, ends the console.
    pub async fn policies(&self, console: &Console) -> Result<ConsolePolicies, ConsoleError> {
        let policies = match self.sts.caller_policies(&console.caller).await {
            Ok(policies) => policies,
            Err(error) if error.status >= 500 => return Err(ConsoleError::Sts(error)),
            Err(error) => {
                self.forget(&console.id).await;
                return Err(ConsoleError::RoleGone(error));
            }
        };
        let documents = self
            .documents(&console.caller)
            .await
            .map_err(ConsoleError::PolicyDocuments)?;
        Ok(ConsolePolicies {
            policies,
            documents,
        })
    }

    /// Role `role` of `account` if `identity` is entitled to it (a deep link names
    /// any role; only an entitled one gets the Console button).
    pub async fn entitled_role(
        &self,
        identity: &Identity,
        account: &str,
        role: &str,
    ) -> Result<Option<EntitledRole>, ConsoleError> {
        let roles = self
            .sts
            .entitlements(identity)
            .await
            .map_err(ConsoleError::Sts)?;
        let Some(granted) = roles
            .into_iter()
            .find(|g| g.account().as_str() == account && g.role_name().as_str() == role)
        else {
            return Ok(None);
        };
        // The name only decorates the page: without it the button still works.
        let account_name = self
            .store
            .list_accounts()
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|a| &a.id == granted.account())
            .map(|a| a.name)
            .unwrap_or_default();
        Ok(Some(EntitledRole {
            account_name,
            description: granted.description().to_owned(),
        }))
    }

    /// Deletes a console that can no longer be used; a failure leaves it to expire.
    async fn forget(&self, id: &str) {
        if let Err(error) = self.cache.delete(&hashed_key(CONSOLE_PREFIX, id)).await {
            tracing::warn!(%error, "cannot delete an ended console session");
        }
    }

    async fn documents(&self, caller: &Caller) -> Result<PolicyDocuments, String> {
        let CallerKind::AssumedRole { role_name, .. } = &caller.kind else {
            return Err("not a role session".into());
        };
        let account = AccountId::parse(caller.account.clone()).map_err(|e| e.to_string())?;
        let name = RoleName::parse(role_name.clone()).map_err(|e| e.to_string())?;
        let permissions = self
            .store
            .role_permissions(&account, &name)
            .await
            .map_err(|e| e.to_string())?;
        let mut session = Vec::new();
        if let Some(claims) = &caller.session {
            if let Some(document) = &claims.session_policy {
                session.push(("inline session policy".to_owned(), document.clone()));
            }
            for arn in &claims.policy_arns {
                let document = self
                    .store
                    .policy_document(arn)
                    .await
                    .map_err(|e| e.to_string())?;
                session.push((arn.clone(), document));
            }
        }
        let named = |d: NamedDocument| (d.source, d.document);
        Ok(PolicyDocuments {
            identity: permissions
                .identity_policies
                .into_iter()
                .map(named)
                .collect(),
            boundary: permissions.permissions_boundary.map(named),
            session,
        })
    }

    /// The account of the role session a sign-in token stands for, without using the
    /// token up; `None` when the token is unknown, used or its session no longer
    /// valid (taking it then refuses it for that reason).
    async fn signin_account(&self, token: &str, now: i64) -> Result<Option<String>, CacheError> {
        let Some(stored) = self.cache.get(&hashed_key(SIGNIN_PREFIX, token)).await? else {
            return Ok(None);
        };
        let Ok(grant) = serde_json::from_slice::<SigninGrant>(&stored) else {
            return Ok(None);
        };
        Ok(self
            .sts
            .resolve_keys(&grant.access_key_id, Some(&grant.session_token), now)
            .await
            .ok()
            .map(|(caller, _)| caller.account))
    }

    /// Whether `account`'s console destinations allow `url`; a store failure is
    /// logged and allows nothing.
    async fn destination_allowed(&self, account: &str, url: &reqwest::Url) -> bool {
        let Ok(account_id) = AccountId::parse(account.to_owned()) else {
            return false;
        };
        match self.store.console_destinations(&account_id).await {
            Ok(entries) => LoginDestination::listed(&entries, url),
            Err(error) => {
                tracing::error!(%error, account, "cannot read console destinations");
                false
            }
        }
    }

    /// Takes a sign-in token exactly once: the first presenter stores the used-marker.
    async fn take_signin_token(&self, token: &str, now: i64) -> Result<SigninGrant, ConsoleError> {
        let key = hashed_key(SIGNIN_PREFIX, token);
        let used_key = hashed_key(SIGNIN_USED_PREFIX, token);
        let Some(stored) = self.cache.get(&key).await? else {
            return Err(if self.cache.get(&used_key).await?.is_some() {
                ConsoleError::SigninTokenUsed
            } else {
                ConsoleError::SigninTokenUnknown
            });
        };
        if !self
            .cache
            .put_if_absent(&used_key, b"1", SIGNIN_TOKEN_TTL)
            .await?
        {
            return Err(ConsoleError::SigninTokenUsed);
        }
        if let Err(error) = self.cache.delete(&key).await {
            // The used-marker already refuses any second use.
            tracing::warn!(%error, "cannot delete a used sign-in token");
        }
        match serde_json::from_slice::<SigninGrant>(&stored) {
            Ok(grant) if now - grant.issued_at <= SIGNIN_TOKEN_TTL.as_secs() as i64 => Ok(grant),
            _ => Err(ConsoleError::SigninTokenUnknown),
        }
    }
}
