//! The rules for an identity provider's URLs, one place for the OIDC sign-in source
//! and the web-identity (IAM OIDC provider) verifier: `https://`, plain `http://` only
//! on loopback (a provider on this machine, and tests), never credentials or a
//! fragment. An issuer identifier has no query either (OpenID Connect Core §2,
//! "contains no query or fragment components"); the endpoints a discovery document
//! names may (Azure AD B2C's `jwks_uri` carries `?p=<policy>`).

use reqwest::Url;

/// Which kind of provider URL is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderUrlKind {
    /// An issuer identifier (`iss`).
    Issuer,
    /// A discovery document's endpoint (JWKS, token, userinfo, end session).
    Endpoint,
}

/// Why a provider URL was refused: a phrase that completes "the issuer "…" ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderUrlError {
    #[error("is not a URL")]
    NotAUrl,
    #[error("must use https (http only on loopback)")]
    NotHttps,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must not have a query")]
    Query,
    #[error("must not have a fragment")]
    Fragment,
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `value` as a provider URL of `kind`, or why not.
pub fn check_provider_url(value: &str, kind: ProviderUrlKind) -> Result<Url, ProviderUrlError> {
    let url = Url::parse(value).map_err(|_| ProviderUrlError::NotAUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err(ProviderUrlError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ProviderUrlError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(ProviderUrlError::Fragment);
    }
    if kind == ProviderUrlKind::Issuer && url.query().is_some() {
        return Err(ProviderUrlError::Query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_everywhere_http_only_on_loopback() {
        for ok in [
            "https://idp.example.com",
            "https://idp.example.com/realms/x",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:9000/issuer",
            "http://[::1]:1234",
        ] {
            assert!(
                check_provider_url(ok, ProviderUrlKind::Issuer).is_ok(),
                "{ok}"
            );
        }
        for (bad, why) in [
            ("http://idp.example.com", ProviderUrlError::NotHttps),
            ("http://10.0.0.1", ProviderUrlError::NotHttps),
            ("ftp://127.0.0.1", ProviderUrlError::NotHttps),
            (
                "https://user:pw@idp.example.com",
                ProviderUrlError::Credentials,
            ),
            ("https://idp.example.com/#f", ProviderUrlError::Fragment),
            ("idp.example.com", ProviderUrlError::NotAUrl),
        ] {
            for kind in [ProviderUrlKind::Issuer, ProviderUrlKind::Endpoint] {
                assert_eq!(check_provider_url(bad, kind), Err(why.clone()), "{bad}");
            }
        }
    }

    #[test]
    fn only_endpoints_may_carry_a_query() {
        let b2c =
            "https://tenant.b2clogin.com/tenant.onmicrosoft.com/discovery/v2.0/keys?p=b2c_1_signin";
        assert!(check_provider_url(b2c, ProviderUrlKind::Endpoint).is_ok());
        assert_eq!(
            check_provider_url("https://idp.example.com/?q=1", ProviderUrlKind::Issuer),
            Err(ProviderUrlError::Query)
        );
    }
}
