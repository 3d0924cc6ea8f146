//! One sign-in at a provider: begin, take the pending login back, complete (code
//! redemption and ID-token validation), and the provider's logout URL.

use super::*;

/// A sign-in that went to the provider and has not come back yet. Stored in the
/// cache under a hash of its `state`, for [`LOGIN_TTL`], and consumed once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub source_id: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
    /// Where to go after sign-in (a local path).
    pub return_to: String,
    /// SHA-256 of the browser-binding cookie the sign-in was started with.
    pub browser: String,
    pub started_at: i64,
    /// A test sign-in an admin started from the admin pages (the admin's audit
    /// actor, `directory:alice`): its callback starts no portal session, it only
    /// shows that admin what the source sent. Absent in ordinary sign-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_by: Option<String>,
}

pub(super) fn pending_key(state: &str) -> String {
    format!("oidc-login:{}", digest(state))
}

pub(super) fn used_key(state: &str) -> String {
    format!("oidc-login-used:{}", digest(state))
}

/// The relying party of every OIDC source: the cache (pending logins, discovery), the
/// clock and the sealer (client secrets) a sign-in needs, held once.
pub struct OidcLogin {
    cache: std::sync::Arc<dyn Cache>,
    clock: Clock,
    sealer: SecretSealer,
}

impl OidcLogin {
    pub fn new(cache: std::sync::Arc<dyn Cache>, clock: Clock, sealer: SecretSealer) -> Self {
        Self {
            cache,
            clock,
            sealer,
        }
    }
}

impl OidcLogin {
    /// Starts a sign-in at `source`: remembers it and returns the provider's
    /// authorization URL to send the browser to. `default_redirect_uri` is used when
    /// the source configures none; `browser` is the browser-binding cookie's value.
    pub async fn begin(
        &self,
        source: &IdentitySource,
        default_redirect_uri: &str,
        return_to: &str,
        browser: &str,
    ) -> Result<String, OidcError> {
        self.start(source, default_redirect_uri, return_to, browser, None)
            .await
    }

    /// Starts a test sign-in at `source` for the admin `admin` (their audit actor):
    /// the real flow, also for a source that is not enabled yet, whose pending state
    /// records the test so that its callback starts no session.
    pub async fn begin_test(
        &self,
        source: &IdentitySource,
        default_redirect_uri: &str,
        admin: &str,
        browser: &str,
    ) -> Result<String, OidcError> {
        self.start(
            source,
            default_redirect_uri,
            "/admin",
            browser,
            Some(admin.to_owned()),
        )
        .await
    }

    async fn start(
        &self,
        source: &IdentitySource,
        default_redirect_uri: &str,
        return_to: &str,
        browser: &str,
        test_by: Option<String>,
    ) -> Result<String, OidcError> {
        let (cache, clock, sealer) = (self.cache.as_ref(), &self.clock, &self.sealer);
        if !source.enabled && test_by.is_none() {
            return Err(OidcError::UnknownSource(source.id.clone()));
        }
        let config = OidcConfig::from_source(source)?;
        let secret = client_secret(sealer, &source.id, &config)?;
        let metadata = discover(cache, &config, false).await?;
        let redirect_uri = config
            .redirect_uri
            .clone()
            .unwrap_or_else(|| default_redirect_uri.to_owned());
        let client = build_client(&config, metadata, secret.as_ref(), &redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in config
            .scopes
            .iter()
            .filter(|s| *s != "openid" && !s.is_empty())
        {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = PendingLogin {
            source_id: source.id.clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri,
            return_to: return_to.to_owned(),
            browser: digest(browser),
            started_at: clock.timestamp(),
            test_by,
        };
        let bytes =
            serde_json::to_vec(&pending).map_err(|e| OidcError::Unavailable(e.to_string()))?;
        cache
            .put(&pending_key(state.secret()), &bytes, LOGIN_TTL)
            .await
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        Ok(url.to_string())
    }
}

impl OidcLogin {
    /// Consumes the pending sign-in named by `state`: the first call wins, a second
    /// (a replayed callback) gets [`OidcError::ReplayedState`], an unknown or expired
    /// state [`OidcError::UnknownState`].
    pub async fn take_pending(&self, state: &str) -> Result<PendingLogin, OidcError> {
        let cache = self.cache.as_ref();
        if state.is_empty() {
            return Err(OidcError::MissingState);
        }
        if state.len() > 512 {
            return Err(OidcError::UnknownState);
        }
        let unavailable = |e: crate::cache::CacheError| OidcError::Unavailable(e.to_string());
        let first = cache
            .put_if_absent(&used_key(state), b"1", LOGIN_TTL)
            .await
            .map_err(unavailable)?;
        if !first {
            return Err(OidcError::ReplayedState);
        }
        let key = pending_key(state);
        let Some(stored) = cache.get(&key).await.map_err(unavailable)? else {
            return Err(OidcError::UnknownState);
        };
        cache.delete(&key).await.map_err(unavailable)?;
        serde_json::from_slice(&stored).map_err(|_| OidcError::UnknownState)
    }
}

/// Whether `browser` (the binding cookie's value) is the one the sign-in started with.
pub fn same_browser(pending: &PendingLogin, browser: Option<&str>) -> bool {
    browser.is_some_and(|b| {
        let presented = digest(b);
        presented.len() == pending.browser.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                presented.as_bytes(),
                pending.browser.as_bytes(),
            ))
    })
}

// ---------------------------------------------------------------------------
// Completing a sign-in
// ---------------------------------------------------------------------------

/// The claims beyond the standard ones (groups and whatever the source maps).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct OtherClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

/// A validated sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Identity,
    /// The raw ID token, kept for `id_token_hint` at RP-initiated logout.
    pub id_token: String,
    /// The validated claims (ID token, then userinfo), for diagnostics and mapping.
    pub claims: Map<String, Value>,
}

impl OidcLogin {
    /// Redeems `code` for the sign-in `pending` at `source` and validates the answer.
    pub async fn complete(
        &self,
        source: &IdentitySource,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<SignedIn, OidcError> {
        let (cache, clock, sealer) = (self.cache.as_ref(), &self.clock, &self.sealer);
        if !source.enabled && pending.test_by.is_none() {
            return Err(OidcError::UnknownSource(source.id.clone()));
        }
        if pending.source_id != source.id {
            return Err(OidcError::SourceMismatch);
        }
        let config = OidcConfig::from_source(source)?;
        let secret = client_secret(sealer, &source.id, &config)?;
        let mut metadata = discover(cache, &config, false).await?;
        let client = build_client(
            &config,
            metadata.clone(),
            secret.as_ref(),
            &pending.redirect_uri,
        )?;
        let http = http()?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(answer) => OidcError::CodeRejected(format!(
                    "{}{}",
                    answer.error().as_ref(),
                    answer
                        .error_description()
                        .map(|d| format!(": {}", clip(d)))
                        .unwrap_or_default()
                )),
                // The body may hold tokens: never include it.
                RequestTokenError::Parse(error, _) => OidcError::InvalidToken(format!(
                    "unreadable token response at {}",
                    error.path()
                )),
                RequestTokenError::Request(error) => {
                    OidcError::Provider(format!("token request failed: {}", error_chain(&error)))
                }
                RequestTokenError::Other(reason) => OidcError::Provider(reason),
            })?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or(OidcError::MissingIdToken)?;
        let nonce = Nonce::new(pending.nonce.clone());
        let access_token = response.access_token();
        let claims = match verify(
            &config,
            &metadata,
            id_token,
            &nonce,
            access_token,
            clock.now(),
        ) {
            // The provider may have rotated its keys since discovery: look again, once.
            Err(OidcError::BadSignature(reason)) if reason == NO_MATCHING_KEY => {
                metadata = discover(cache, &config, true).await?;
                verify(
                    &config,
                    &metadata,
                    id_token,
                    &nonce,
                    access_token,
                    clock.now(),
                )?
            }
            other => other?,
        };
        let raw = id_token.to_string();
        let mut all = verified_payload(&raw)?;
        if config.userinfo && metadata.userinfo_endpoint().is_some() {
            let client = build_client(&config, metadata, secret.as_ref(), &pending.redirect_uri)?;
            let request = client
                .user_info(access_token.clone(), Some(claims.subject().clone()))
                .map_err(|e| OidcError::UserInfo(e.to_string()))?;
            let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
                .request_async(http)
                .await
                .map_err(|e| OidcError::UserInfo(error_chain(&e)))?;
            if let Ok(Value::Object(extra)) = serde_json::to_value(&info) {
                for (name, value) in extra {
                    // The ID token's own claims (iss, aud, nonce...) stay as validated.
                    if !matches!(
                        name.as_str(),
                        "iss" | "aud" | "sub" | "exp" | "iat" | "nonce" | "azp"
                    ) {
                        all.insert(name, value);
                    }
                }
            }
        }
        let mut identity = map_identity(&source.id, &all, &config.claims)?;
        identity.attributes =
            claim_attributes(&source.id, &identity.user_name, &all, &config.session_tags);
        Ok(SignedIn {
            identity,
            id_token: raw,
            claims: all,
        })
    }
}

pub(super) fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

pub(super) const NO_MATCHING_KEY: &str = "no matching key in the provider's key set";

/// Validates the ID token: signature (with the provider's keys and an asymmetric
/// algorithm it advertises), issuer, audience and `azp`, expiry and issue time,
/// nonce, `at_hash`.
pub(super) fn verify(
    config: &OidcConfig,
    metadata: &ProviderMetadataWithLogout,
    id_token: &CoreIdToken,
    nonce: &Nonce,
    access_token: &AccessToken,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CoreIdTokenClaims, OidcError> {
    let trusted: BTreeSet<String> = config.trusted_audiences.iter().cloned().collect();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(config.client_id.clone()),
        metadata.issuer().clone(),
        metadata.jwks().clone(),
    )
    .set_allowed_algs(asymmetric_algs(
        metadata.id_token_signing_alg_values_supported(),
    ))
    .set_other_audience_verifier_fn(move |aud| trusted.contains(aud.as_str()))
    .set_time_fn(move || now - CLOCK_SKEW)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > now + CLOCK_SKEW {
            Err(format!("issued in the future ({iat})"))
        } else {
            Ok(())
        }
    });
    let claims = id_token.claims(&verifier, nonce).map_err(claims_error)?;
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != config.client_id => {
            return Err(OidcError::WrongAudience(format!(
                "azp is {:?}, not this client",
                azp.as_str()
            )));
        }
        None if claims.audiences().len() > 1 => {
            return Err(OidcError::WrongAudience(
                "several audiences but no azp claim".into(),
            ));
        }
        _ => {}
    }
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| OidcError::BadSignature(e.to_string()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| OidcError::BadSignature(e.to_string()))?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|e| OidcError::InvalidToken(format!("at_hash: {e}")))?;
        if actual != *expected {
            return Err(OidcError::InvalidToken(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(claims.clone())
}

/// RS/PS/ES/EdDSA only: never `none`, never HMAC with the client secret.
pub(super) fn asymmetric_algs(
    advertised: &[CoreJwsSigningAlgorithm],
) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    let allowed = [
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ];
    let picked: Vec<_> = advertised
        .iter()
        .filter(|alg| allowed.contains(alg))
        .cloned()
        .collect();
    if picked.is_empty() {
        allowed.to_vec()
    } else {
        picked
    }
}

pub(super) fn claims_error(error: ClaimsVerificationError) -> OidcError {
    match error {
        ClaimsVerificationError::InvalidIssuer(why) => OidcError::WrongIssuer(why),
        ClaimsVerificationError::InvalidAudience(why) => OidcError::WrongAudience(why),
        ClaimsVerificationError::Expired(why) => OidcError::Expired(why),
        ClaimsVerificationError::InvalidNonce(why) => OidcError::WrongNonce(why),
        ClaimsVerificationError::SignatureVerification(inner) => {
            OidcError::BadSignature(match inner {
                SignatureVerificationError::NoSignature => "unsigned token (alg none)".into(),
                SignatureVerificationError::NoMatchingKey => NO_MATCHING_KEY.into(),
                other => other.to_string(),
            })
        }
        other => OidcError::InvalidToken(other.to_string()),
    }
}

/// The payload of an ID token whose signature has been verified.
pub(super) fn verified_payload(raw: &str) -> Result<Map<String, Value>, OidcError> {
    let payload = raw
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::InvalidToken("not a JWS".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OidcError::InvalidToken("payload is not base64url".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(OidcError::InvalidToken(
            "payload is not a JSON object".into(),
        )),
    }
}

// ---------------------------------------------------------------------------
// Claim mapping
// ---------------------------------------------------------------------------

impl OidcLogin {
    /// The provider's end-session URL for a session signed in with `id_token`, when the
    /// provider advertises one: `id_token_hint`, `client_id` and
    /// `post_logout_redirect_uri` (the source's, else `default_post_logout`).
    pub async fn logout_url(
        &self,
        source: &IdentitySource,
        id_token: &str,
        default_post_logout: &str,
    ) -> Result<Option<String>, OidcError> {
        let cache = self.cache.as_ref();
        let config = OidcConfig::from_source(source)?;
        let metadata = discover(cache, &config, false).await?;
        let Some(end) = metadata.additional_metadata().end_session_endpoint.clone() else {
            return Ok(None);
        };
        let hint: CoreIdToken = id_token
            .parse()
            .map_err(|_| OidcError::InvalidToken("stored ID token unreadable".into()))?;
        let post_logout = config
            .post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| default_post_logout.to_owned());
        let post_logout = PostLogoutRedirectUrl::new(post_logout)
            .map_err(|e| OidcError::Misconfigured(format!("post_logout_redirect_uri: {e}")))?;
        let url = LogoutRequest::from(end)
            .set_id_token_hint(&hint)
            .set_client_id(ClientId::new(config.client_id.clone()))
            .set_post_logout_redirect_uri(post_logout)
            .http_get_url();
        Ok(Some(url.to_string()))
    }
}
