//! Credential issuance: authenticates callers' keys and session tokens, gathers
//! their policies through the store, and issues sessions (AssumeRole, GetSessionToken,
//! web identity, portal identities) by the pure rules of [`crate::sts`]. Holds the
//! session-token key ring and the parsed-policy cache; the one role loader and
//! PolicyArns check every issuance path uses are here. Verifying a role session needs
//! neither the database nor the cache: the token carries the session, sealed.

mod portal;
mod saml;
mod web_identity;

pub use saml::{SAML_CLOCK_SKEW, SamlRefusal, saml_error_to_sts};

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::clock::{Clock, Random};
use crate::iam::{AccountId, RoleArn, RoleName, UserName};
use crate::policy::{
    ParseOptions, Policy, PolicyKind, PolicySet, PrincipalRef, Request, ResourcePolicy,
};
use crate::secrets::Sealer;
use crate::store::{AccessKeyStatus, IamCache, IamCacheSettings, Role, Store, StoreError};
use crate::sts::assume::{self, AssumeRoleParams, Caller, CallerKind};
use crate::sts::credentials::{self, AssumedRole, IssuedCredentials, KeyKind};
use crate::sts::error::StsError;
use crate::sts::policies::CallerPolicies;
use crate::sts::sigv4;
use crate::sts::token::{SessionClaims, SessionKind, TokenError, TokenKeyring};

use super::jwks::WebIdentityVerifier;

/// Parsed policies by the SHA-256 of (kind, document). Stored documents change
/// rarely and parsing costs far more than evaluating, so every request after the
/// first reuses the compiled form. Bounded: cleared when it outgrows `CAPACITY`.
#[derive(Default)]
struct PolicyCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], Arc<Policy>>>,
}

impl PolicyCache {
    const CAPACITY: usize = 4_096;

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Arc<Policy>>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn get_or_parse(
        &self,
        document: &str,
        kind: PolicyKind,
        source: &str,
    ) -> Result<Arc<Policy>, StsError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(kind.to_string().as_bytes());
        hasher.update([0]);
        hasher.update(document.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        if let Some(policy) = self.lock().get(&key) {
            return Ok(policy.clone());
        }
        let policy = Arc::new(parse_stored(document, kind, source)?);
        let mut entries = self.lock();
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(key, policy.clone());
        Ok(policy)
    }
}

pub struct Sts {
    store: Arc<dyn Store>,
    /// What verification and issuance read on every call (access keys, users' and
    /// roles' permissions, roles, policy documents, OIDC providers), cached with
    /// invalidation across replicas.
    iam: IamCache,
    sealer: Sealer,
    keyring: RwLock<TokenKeyring>,
    /// Validates web identity tokens (JWKS cache per provider).
    web_identity: WebIdentityVerifier,
    policies: PolicyCache,
    /// When the key ring was last reloaded for an unknown key id: unauthenticated
    /// tokens must not be able to make every request a database query.
    /// (Milliseconds since the epoch.)
    last_reload: std::sync::Mutex<Option<i64>>,
    clock: Clock,
    random: Random,
    /// How far a request's signing time may be from the server's clock.
    max_clock_skew: chrono::Duration,
    /// Who is granted which role (the published mapping rules).
    entitlements: Arc<super::entitlements::Entitlements>,
}

fn parse_stored(document: &str, kind: PolicyKind, source: &str) -> Result<Policy, StsError> {
    Policy::parse(document, ParseOptions::new(kind)).map_err(|error| {
        // Stored documents were validated on write; failing here means data damage.
        tracing::error!(%error, source, "stored policy no longer parses");
        StsError::internal()
    })
}

const AUTHORIZATION_MESSAGE_CONTEXT: &str = "authorization-message";

fn key_context(id: i64) -> String {
    format!("token-key:{id}")
}

fn access_key_context(access_key_id: &str) -> String {
    format!("access-key:{access_key_id}")
}

impl Sts {
    /// Loads the session-token key ring, creating the first key on a new deployment.
    pub async fn open(store: Arc<dyn Store>, sealer: Sealer) -> Result<Self, String> {
        let clock = store.clock().clone();
        let random = store.random();
        let keyring = load_keyring(store.as_ref(), &sealer, true).await?;
        Ok(Self {
            entitlements: Arc::new(super::entitlements::Entitlements::new(store.clone())),
            iam: IamCache::new(store.clone(), IamCacheSettings::default()),
            store,
            sealer,
            keyring: RwLock::new(keyring),
            web_identity: WebIdentityVerifier::new(),
            policies: PolicyCache::default(),
            last_reload: std::sync::Mutex::new(None),
            clock,
            random,
            max_clock_skew: chrono::Duration::minutes(5),
        })
    }

    /// The entitlement service every issuance path asks (shared with the admin API,
    /// so both see one compiled ruleset).
    pub fn entitlement_service(&self) -> &Arc<super::entitlements::Entitlements> {
        &self.entitlements
    }

    /// The cache of the store's hot reads.
    pub fn iam_cache(&self) -> &IamCache {
        &self.iam
    }

    /// A store error as the STS answers it (an opaque internal failure), logged
    /// with where the database is.
    /// A database that cannot be reached is `ServiceUnavailable` (503, which SDKs
    /// retry); its cause (host:port and why) is logged.
    fn store_failure(&self, error: StoreError) -> StsError {
        if error.is_unavailable() {
            tracing::warn!(%error, "STS: database unavailable");
            return StsError::service_unavailable();
        }
        tracing::error!(%error, database = %self.store.target(), "store failure in STS");
        StsError::internal()
    }

    /// Sets the SigV4 clock-skew window (default five minutes).
    pub fn with_max_clock_skew(mut self, skew: chrono::Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// SigV4 verification settings for a surface whose signing name is `service`.
    pub fn verify_options(&self, service: &str) -> sigv4::VerifyOptions {
        sigv4::VerifyOptions {
            max_clock_skew: self.max_clock_skew,
            service: Some(service.to_owned()),
            ..sigv4::VerifyOptions::default()
        }
    }

    /// Seals the details of a denial so that only principals allowed
    /// `sts:DecodeAuthorizationMessage` can read them (AWS's encoded messages).
    pub fn encode_authorization_message(&self, message: &serde_json::Value) -> String {
        self.sealer.seal(
            message.to_string().as_bytes(),
            AUTHORIZATION_MESSAGE_CONTEXT,
            &mut self.random.rng(),
        )
    }

    /// DecodeAuthorizationMessage: the caller's policies must allow it.
    pub async fn decode_authorization_message(
        &self,
        caller: &Caller,
        encoded: &str,
        now: i64,
    ) -> Result<String, StsError> {
        let action = "sts:DecodeAuthorizationMessage";
        let policies = self.caller_policies(caller).await?;
        let context = caller.context(now, None);
        if !policies.decide(caller, action, "*", &context).is_allowed() {
            return Err(StsError::not_authorized(&caller.arn, action, "*"));
        }
        self.sealer
            .open(encoded.trim(), AUTHORIZATION_MESSAGE_CONTEXT)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                StsError::new(
                    "InvalidAuthorizationMessageException",
                    400,
                    "The encoded authorization message is invalid.",
                )
            })
    }

    /// Adds a new current key; tokens sealed with older keys stay valid until they expire.
    pub async fn rotate_token_key(&self) -> Result<u32, String> {
        let next = i64::from(self.read_keyring().current_key_id()) + 1;
        let sealed = new_sealed_key(&self.sealer, self.random, next);
        self.store
            .add_token_key(next, &sealed)
            .await
            .map_err(|e| format!("cannot add token key: {e}"))?;
        self.reload_keys().await?;
        Ok(self.read_keyring().current_key_id())
    }

    fn read_keyring(&self) -> TokenKeyring {
        match self.keyring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn reload_keys(&self) -> Result<(), String> {
        let fresh = load_keyring(self.store.as_ref(), &self.sealer, false).await?;
        match self.keyring.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    fn seal(&self, claims: &SessionClaims) -> String {
        let keyring = self.keyring.read();
        match keyring {
            Ok(k) => k.seal(claims, &mut self.random.rng()),
            Err(poisoned) => poisoned.into_inner().seal(claims, &mut self.random.rng()),
        }
    }

    /// Opens a session token; a key id this replica has not seen yet (another replica
    /// rotated) triggers one reload of the key ring.
    pub async fn open_token(&self, token: &str, now: i64) -> Result<SessionClaims, StsError> {
        let known = |sts: &Self| {
            TokenKeyring::key_id_of(token)
                .is_some_and(|id| sts.keyring.read().map(|k| k.knows(id)).unwrap_or(false))
        };
        if !known(self) && TokenKeyring::key_id_of(token).is_some() && self.may_reload() {
            let _ = self.reload_keys().await;
        }
        let keyring = self.read_keyring();
        keyring.open(token, now).map_err(|error| match error {
            TokenError::Invalid => StsError::invalid_client_token_id(),
            TokenError::Expired => StsError::expired_token(),
        })
    }

    /// At most one key-ring reload per ten seconds per replica.
    fn may_reload(&self) -> bool {
        const INTERVAL_MS: i64 = 10_000;
        let mut last = match self.last_reload.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = self.clock.timestamp_millis();
        if last.is_some_and(|at| now.saturating_sub(at) < INTERVAL_MS) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Resolves an access key (and session token for temporary keys) to the caller
    /// and the secret the request must have been signed with.
    pub async fn resolve_keys(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
        now: i64,
    ) -> Result<(Caller, String), StsError> {
        match (KeyKind::of(access_key_id), session_token) {
            (Some(KeyKind::Temporary), Some(token)) => {
                let claims = self.open_token(token, now).await?;
                if claims.access_key_id != access_key_id {
                    return Err(StsError::invalid_client_token_id());
                }
                let secret = claims.secret_access_key.clone();
                Ok((Caller::from_session(claims), secret))
            }
            (Some(KeyKind::LongTerm), _) => {
                let record = match self.iam.get_access_key(access_key_id).await {
                    Ok(record) => record,
                    Err(StoreError::NotFound { .. }) => {
                        return Err(StsError::invalid_client_token_id());
                    }
                    Err(error) => return Err(self.store_failure(error)),
                };
                if record.status != AccessKeyStatus::Active {
                    return Err(StsError::invalid_client_token_id());
                }
                let secret = self
                    .sealer
                    .open(&record.sealed_secret, &access_key_context(access_key_id))
                    .map_err(|error| {
                        tracing::error!(%error, access_key_id, "cannot unseal access key secret");
                        StsError::internal()
                    })
                    .and_then(|bytes| String::from_utf8(bytes).map_err(|_| StsError::internal()))?;
                let user = &record.user;
                Ok((
                    Caller {
                        access_key_id: access_key_id.to_owned(),
                        account: user.account_id.to_string(),
                        arn: user.arn.clone(),
                        user_id: user.id.clone(),
                        kind: CallerKind::IamUser {
                            user_name: user.name.to_string(),
                        },
                        principal_tags: user
                            .tags
                            .iter()
                            .map(|t| (t.key.clone(), t.value.clone()))
                            .collect(),
                        session: None,
                    },
                    secret,
                ))
            }
            _ => Err(StsError::invalid_client_token_id()),
        }
    }

    /// Verifies a SigV4-signed request and resolves its credentials to the caller.
    /// The secret is looked up before the signature is checked, as AWS does, so an
    /// unknown key is `InvalidClientTokenId` and a wrong secret `SignatureDoesNotMatch`.
    pub async fn authenticate(
        &self,
        request: &sigv4::SignedRequest<'_>,
        now: DateTime<Utc>,
        options: &sigv4::VerifyOptions,
    ) -> Result<Caller, StsError> {
        let info = sigv4::parse(request).map_err(StsError::from)?;
        // Reject stale or malformed requests before any lookup.
        sigv4::validate(&info, now, options).map_err(StsError::from)?;
        let (caller, secret) = self
            .resolve_keys(
                &info.access_key_id,
                info.session_token.as_deref(),
                now.timestamp(),
            )
            .await?;
        sigv4::verify(request, &info, &secret, now, options).map_err(StsError::from)?;
        Ok(caller)
    }

    /// The caller's identity policies, boundary and session policies. Role sessions
    /// issued before the role's "revoke sessions before" time are refused here.
    pub async fn caller_policies(&self, caller: &Caller) -> Result<CallerPolicies, StsError> {
        let account = AccountId::parse(caller.account.clone()).map_err(|_| StsError::internal())?;
        let parse_all = |documents: &[crate::store::NamedDocument]| {
            documents
                .iter()
                .map(|d| {
                    self.policies
                        .get_or_parse(&d.document, PolicyKind::Identity, &d.source)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        match &caller.kind {
            CallerKind::IamUser { user_name } | CallerKind::UserSession { user_name } => {
                let name = UserName::parse(user_name.clone()).map_err(|_| StsError::internal())?;
                let permissions =
                    self.iam
                        .user_permissions(&account, &name)
                        .await
                        .map_err(|e| match e {
                            StoreError::NotFound { .. } => StsError::invalid_client_token_id(),
                            other => self.store_failure(other),
                        })?;
                Ok(CallerPolicies {
                    identity: parse_all(&permissions.identity_policies)?,
                    boundary: None,
                    session: Vec::new(),
                })
            }
            CallerKind::AssumedRole { role_name, .. } => {
                let name = RoleName::parse(role_name.clone()).map_err(|_| StsError::internal())?;
                let permissions =
                    self.iam
                        .role_permissions(&account, &name)
                        .await
                        .map_err(|e| match e {
                            StoreError::NotFound { .. } => StsError::invalid_client_token_id(),
                            other => self.store_failure(other),
                        })?;
                let issued_at = caller.session.as_ref().map_or(0, |s| s.issued_at);
                if let Some(before) = permissions.role.revoke_sessions_before
                    && issued_at < before.timestamp()
                {
                    return Err(StsError::access_denied(format!(
                        "The session of {} was revoked: sessions of role {} issued before {} are no longer valid.",
                        caller.arn,
                        permissions.role.name,
                        before.format("%Y-%m-%dT%H:%M:%SZ")
                    )));
                }
                let mut session = Vec::new();
                if let Some(claims) = &caller.session {
                    if let Some(document) = &claims.session_policy {
                        session.push(self.policies.get_or_parse(
                            document,
                            PolicyKind::Session,
                            "session policy",
                        )?);
                    }
                    for arn in &claims.policy_arns {
                        let document = self
                            .iam
                            .policy_document(arn)
                            .await
                            .map_err(|e| self.store_failure(e))?;
                        session.push(self.policies.get_or_parse(
                            &document,
                            PolicyKind::Session,
                            arn,
                        )?);
                    }
                }
                Ok(CallerPolicies {
                    identity: parse_all(&permissions.identity_policies)?,
                    boundary: permissions
                        .permissions_boundary
                        .as_ref()
                        .map(|b| {
                            self.policies
                                .get_or_parse(&b.document, PolicyKind::Identity, &b.source)
                        })
                        .transpose()?,
                    session,
                })
            }
        }
    }

    /// A stored document, parsed once and then served from the cache.
    fn parsed(
        &self,
        document: &str,
        kind: PolicyKind,
        source: &str,
    ) -> Result<Arc<Policy>, StsError> {
        self.policies.get_or_parse(document, kind, source)
    }

    /// Session-policy ARNs must name managed policies that exist, as AWS answers:
    /// `InvalidParameterValue` "Policy … does not exist or is not attachable." Every
    /// issuance path that takes `PolicyArns` checks them here.
    async fn check_policy_arns(&self, arns: &[String]) -> Result<(), StsError> {
        for arn in arns {
            if let Err(error) = self.iam.policy_document(arn).await {
                return Err(match error {
                    StoreError::NotFound { .. } | StoreError::Invalid(_) => StsError::new(
                        "InvalidParameterValue",
                        400,
                        format!("Policy {arn} does not exist or is not attachable."),
                    ),
                    other => self.store_failure(other),
                });
            }
        }
        Ok(())
    }

    /// The role `arn` names, for every issuance path. No such role, or one whose ARN
    /// differs (the same name under another path or partition), is `denied()`: the
    /// caller learns nothing about which roles exist.
    async fn load_role(
        &self,
        arn: &RoleArn,
        denied: impl Fn() -> StsError,
    ) -> Result<Role, StsError> {
        let role = self.find_role(&arn.account, &arn.name, &denied).await?;
        if role.arn != *arn {
            return Err(denied());
        }
        Ok(role)
    }

    /// The role `name` of `account`, whatever its path; none is `denied()`.
    async fn find_role(
        &self,
        account: &AccountId,
        name: &RoleName,
        denied: impl Fn() -> StsError,
    ) -> Result<Role, StsError> {
        match self.iam.get_role(account, name).await {
            Ok(role) => Ok(Role::clone(&role)),
            Err(StoreError::NotFound { .. }) => Err(denied()),
            Err(error) => Err(self.store_failure(error)),
        }
    }

    /// A new session of `role` for `params.role_session_name`, with fresh keys.
    #[allow(clippy::too_many_arguments)]
    fn role_session(
        &self,
        role: &Role,
        params: &AssumeRoleParams,
        now: i64,
        duration: i64,
        tags: (Vec<(String, String)>, Vec<String>),
        source_identity: Option<String>,
        chained: bool,
    ) -> SessionClaims {
        let account = role.account_id.as_str();
        let keys = (
            credentials::new_access_key_id(KeyKind::Temporary, account, &mut self.random.rng()),
            credentials::new_secret_access_key(&mut self.random.rng()),
        );
        assume::role_session_claims(
            &role.arn.partition,
            account,
            &role.id,
            &role.arn.to_string(),
            role.name.as_str(),
            params,
            keys,
            now,
            duration,
            tags,
            source_identity,
            chained,
        )
    }

    /// The role session `claims` as STS returns it.
    fn assumed(&self, claims: &SessionClaims, packed_policy_size: u32) -> AssumedRole {
        AssumedRole {
            credentials: self.credentials_for(claims),
            assumed_role_arn: claims.principal_arn.clone(),
            assumed_role_id: claims.principal_id.clone(),
            packed_policy_size,
            source_identity: claims.source_identity.clone(),
        }
    }

    /// AssumeRole: validates, checks the trust policy (and the caller's own policies
    /// where AWS requires them), and issues a role session.
    pub async fn assume_role(
        &self,
        caller: &Caller,
        params: &AssumeRoleParams,
        source_ip: Option<&str>,
        now: i64,
    ) -> Result<AssumedRole, StsError> {
        let role_arn = assume::validate_assume_role(params)?;
        let denied = || StsError::not_authorized(&caller.arn, "sts:AssumeRole", &params.role_arn);
        let session_policy = assume::parse_session_policy(params.policy.as_deref())?;
        self.check_policy_arns(&params.policy_arns).await?;
        let Some(role_arn) = role_arn else {
            return Err(denied());
        };
        let role = self.load_role(&role_arn, denied).await?;
        let role_arn = role_arn.to_string();
        let account = role.account_id.clone();
        let chained = caller.is_role_session();
        let duration = assume::role_session_duration(
            params.duration_seconds,
            role.max_session_duration.seconds(),
            chained,
        )?;
        let tags = assume::session_tags(caller, &params.tags, &params.transitive_tag_keys)?;
        let source_identity = assume::source_identity(caller, params.source_identity.as_deref())?;

        let trust = self.parsed(&role.trust_policy, PolicyKind::Trust, &role_arn)?;
        let policies = self.caller_policies(caller).await?;
        let (identity, session) = policies.refs();
        let set = PolicySet {
            identity: &identity,
            boundary: policies.boundary.as_deref(),
            session: &session,
            resource: Some(ResourcePolicy {
                policy: &trust,
                owner_account: account.as_str(),
            }),
        };
        let mut context = caller.context(now, source_ip);
        assume::trust_context(&mut context, params, &tags.0, source_identity.as_deref());
        // The session ARN for role sessions: a trust policy naming the role matches its
        // sessions indirectly, so the session's boundary and policies still apply.
        let principal = PrincipalRef::Aws {
            arn: &caller.arn,
            account: &caller.account,
        };
        // Inherited (transitive) tags and source identity need the trust policy's
        // consent as much as requested ones.
        let mut actions = vec!["sts:AssumeRole"];
        if !tags.0.is_empty() {
            actions.push("sts:TagSession");
        }
        if source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        for action in actions {
            let request = Request {
                principal,
                action,
                resource: &role_arn,
                context: &context,
            };
            let evaluation = crate::policy::evaluate(&set, &request);
            if !evaluation.is_allowed() {
                return Err(StsError::not_authorized(&caller.arn, action, &role_arn));
            }
        }

        let claims =
            self.role_session(&role, params, now, duration, tags, source_identity, chained);
        let packed_policy_size = assume::packed_size_percent(params, session_policy.is_some());
        Ok(self.assumed(&claims, packed_policy_size))
    }

    /// GetSessionToken: temporary keys for an IAM user's long-term keys.
    pub async fn get_session_token(
        &self,
        caller: &Caller,
        duration_seconds: Option<i64>,
        now: i64,
    ) -> Result<IssuedCredentials, StsError> {
        let CallerKind::IamUser { user_name } = &caller.kind else {
            return Err(StsError::access_denied(
                "Cannot call GetSessionToken with session credentials",
            ));
        };
        let duration = duration_seconds.unwrap_or(assume::SESSION_TOKEN_DEFAULT_DURATION);
        if !(assume::MIN_DURATION..=assume::SESSION_TOKEN_MAX_DURATION).contains(&duration) {
            return Err(StsError::constraint(
                "durationSeconds",
                &duration.to_string(),
                "Member must have value greater than or equal to 900 and less than or equal to 129600",
            ));
        }
        let claims = SessionClaims {
            access_key_id: credentials::new_access_key_id(
                KeyKind::Temporary,
                &caller.account,
                &mut self.random.rng(),
            ),
            secret_access_key: credentials::new_secret_access_key(&mut self.random.rng()),
            kind: SessionKind::UserSession,
            account: caller.account.clone(),
            principal_arn: caller.arn.clone(),
            principal_id: caller.user_id.clone(),
            role_arn: None,
            session_name: Some(user_name.clone()),
            issued_at: now,
            expires_at: now + duration,
            session_policy: None,
            policy_arns: Vec::new(),
            tags: caller.principal_tags.clone(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            identity_subject: None,
            chained: false,
        };
        Ok(self.credentials_for(&claims))
    }

    fn credentials_for(&self, claims: &SessionClaims) -> IssuedCredentials {
        IssuedCredentials {
            access_key_id: claims.access_key_id.clone(),
            secret_access_key: claims.secret_access_key.clone(),
            session_token: self.seal(claims),
            expiration: DateTime::from_timestamp(claims.expires_at, 0).unwrap_or_default(),
        }
    }

    /// Creates a long-term access key for an IAM user; the secret is returned once and
    /// stored only sealed.
    pub async fn create_access_key(
        &self,
        account: &AccountId,
        user: &UserName,
    ) -> Result<(String, String), StoreError> {
        let access_key_id = credentials::new_access_key_id(
            KeyKind::LongTerm,
            account.as_str(),
            &mut self.random.rng(),
        );
        let secret = credentials::new_secret_access_key(&mut self.random.rng());
        let sealed = self.sealer.seal(
            secret.as_bytes(),
            &access_key_context(&access_key_id),
            &mut self.random.rng(),
        );
        self.store
            .create_access_key(account, user, &access_key_id, &sealed)
            .await?;
        Ok((access_key_id, secret))
    }
}

fn new_sealed_key(sealer: &Sealer, random: Random, id: i64) -> String {
    let key: [u8; 32] = random.bytes();
    sealer.seal(&key, &key_context(id), &mut random.rng())
}

async fn load_keyring(
    store: &dyn Store,
    sealer: &Sealer,
    create: bool,
) -> Result<TokenKeyring, String> {
    let mut records = store
        .list_token_keys()
        .await
        .map_err(|e| format!("cannot read session-token keys: {e}"))?;
    if records.is_empty() && create {
        match store
            .add_token_key(1, &new_sealed_key(sealer, store.random(), 1))
            .await
        {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(format!("cannot create the first session-token key: {e}")),
        }
        records = store
            .list_token_keys()
            .await
            .map_err(|e| format!("cannot read session-token keys: {e}"))?;
    }
    let mut keys = Vec::with_capacity(records.len());
    for record in &records {
        let bytes = sealer.open(&record.sealed_key, &key_context(record.id)).map_err(|e| {
            format!(
                "cannot unseal session-token key {}: {e}. Is the master key the one this database was set up with?",
                record.id
            )
        })?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("session-token key {} has the wrong length", record.id))?;
        keys.push((record.id as u32, key));
    }
    let current = keys
        .iter()
        .map(|(id, _)| *id)
        .max()
        .ok_or("no session-token keys")?;
    TokenKeyring::new(current, &keys).ok_or_else(|| "inconsistent session-token keys".to_owned())
}
