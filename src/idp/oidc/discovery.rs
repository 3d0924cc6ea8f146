//! Finding and checking a provider (discovery, cached per issuer in the shared
//! cache) and building the `openidconnect` client for it.

use super::*;

#[derive(Serialize, Deserialize)]
pub(super) struct Discovered {
    metadata: ProviderMetadataWithLogout,
    jwks: CoreJsonWebKeySet,
}

pub(super) fn discovery_key(issuer: &str) -> String {
    format!("oidc-discovery:{}", digest(issuer))
}

/// The provider's discovery document and keys: from the cache unless `refresh`.
pub(super) async fn discover(
    cache: &dyn Cache,
    config: &OidcConfig,
    refresh: bool,
) -> Result<ProviderMetadataWithLogout, OidcError> {
    let key = discovery_key(&config.issuer);
    if !refresh
        && let Ok(Some(bytes)) = cache.get(&key).await
        && let Ok(found) = serde_json::from_slice::<Discovered>(&bytes)
    {
        return Ok(found.metadata.set_jwks(found.jwks));
    }
    let issuer = IssuerUrl::new(config.issuer.clone())
        .map_err(|e| OidcError::Misconfigured(format!("issuer: {e}")))?;
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, http()?)
        .await
        .map_err(|e| OidcError::Provider(format!("discovery failed: {}", error_chain(&e))))?;
    check_metadata(&metadata)?;
    let stored = Discovered {
        jwks: metadata.jwks().clone(),
        metadata: metadata.clone(),
    };
    if let Ok(bytes) = serde_json::to_vec(&stored)
        && let Err(error) = cache.put(&key, &bytes, DISCOVERY_TTL).await
    {
        tracing::warn!(%error, "cannot cache OIDC discovery document");
    }
    Ok(metadata)
}

/// Every endpoint Rolegate talks to or sends people to follows the issuer rule.
pub(super) fn check_metadata(metadata: &ProviderMetadataWithLogout) -> Result<(), OidcError> {
    let provider = |e: OidcError| OidcError::Provider(e.to_string());
    provider_url(
        metadata.authorization_endpoint().as_str(),
        "authorization endpoint",
        ProviderUrlKind::Endpoint,
    )
    .map_err(provider)?;
    provider_url(
        metadata.jwks_uri().as_str(),
        "JWKS URI",
        ProviderUrlKind::Endpoint,
    )
    .map_err(provider)?;
    let Some(token) = metadata.token_endpoint() else {
        return Err(OidcError::Provider(
            "the provider has no token endpoint".into(),
        ));
    };
    provider_url(token.as_str(), "token endpoint", ProviderUrlKind::Endpoint).map_err(provider)?;
    if let Some(userinfo) = metadata.userinfo_endpoint() {
        provider_url(
            userinfo.as_str(),
            "userinfo endpoint",
            ProviderUrlKind::Endpoint,
        )
        .map_err(provider)?;
    }
    if let Some(end) = &metadata.additional_metadata().end_session_endpoint {
        provider_url(
            end.as_str(),
            "end session endpoint",
            ProviderUrlKind::Endpoint,
        )
        .map_err(provider)?;
    }
    Ok(())
}

/// An error and its sources on one line (no bodies: openidconnect keeps those apart).
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// Starting a sign-in
// ---------------------------------------------------------------------------

/// The relying party's client as built from discovery.
pub(super) type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The client for one sign-in.
pub(super) fn build_client(
    config: &OidcConfig,
    metadata: ProviderMetadataWithLogout,
    secret: Option<&Secret>,
    redirect_uri: &str,
) -> Result<Rp, OidcError> {
    let auth = match config.token_endpoint_auth {
        Some(TokenEndpointAuth::ClientSecretPost) => AuthType::RequestBody,
        Some(TokenEndpointAuth::ClientSecretBasic) => AuthType::BasicAuth,
        None => preferred_auth(&metadata),
    };
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| OidcError::Misconfigured(format!("redirect URI: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.expose().to_owned())),
    )
    .set_redirect_uri(redirect)
    .set_auth_type(auth))
}

pub(super) fn preferred_auth(metadata: &ProviderMetadataWithLogout) -> AuthType {
    match metadata.token_endpoint_auth_methods_supported() {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

pub(super) fn client_secret(
    sealer: &SecretSealer,
    source_id: &str,
    config: &OidcConfig,
) -> Result<Option<Secret>, OidcError> {
    config
        .client_secret
        .as_deref()
        .map(|sealed| {
            sealer
                .open_secret(sealed, &client_secret_context(source_id))
                .map_err(|e| OidcError::Misconfigured(format!("client secret: {e}")))
        })
        .transpose()
}
