//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636) for native apps
//! on a loopback redirect (RFC 8252 §7.3), as the AWS CLI v2's default `aws sso
//! login` speaks it: RegisterClient with `grantTypes: ["authorization_code",
//! "refresh_token"]` and `redirectUris: ["http://127.0.0.1/oauth/callback"]`, the
//! browser at `/authorize`, then CreateToken with `grantType: "authorization_code"`.
//!
//! `/authorize` needs the client's name and redirect URIs before any secret is shown,
//! so an auth-code client's id carries its public registration, sealed (registrations
//! stay stateless, as the device grant's are). Codes live in the cache under their
//! hash for [`CODE_SECONDS`], are single-use, and are bound to the client, the
//! redirect URI and the PKCE S256 challenge. Tokens come from the same
//! [`begin_login`] as the device grant's.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    AppState, Approval, CreateTokenResponse, OidcError, Registration, begin_login, digest, first,
    get_json, put_json, valid_scope,
};
use crate::idp::identity::Identity;
use crate::store::Outcome;
use crate::web::audit::{audit, audit_anonymous};
use crate::web::page::{error_page, html, random_token, redirect, same};
use crate::web::session::{PortalSession, session, signed_in_form};

pub(super) const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
/// Binds a sealed client id to its purpose.
const CLIENT_ID_CONTEXT: &str = "rolegate:sso-oidc:client-id:v1";
/// How long an authorization code can be exchanged (RFC 6749 §4.1.2: at most 10 min).
const CODE_SECONDS: i64 = 120;
/// How long an exchanged code is remembered, so that presenting it again ends the
/// login it started (RFC 6749 §4.1.2 allows codes up to 10 minutes).
const REPLAY_WATCH_SECONDS: u64 = 600;
/// The longest `state` carried back to the client.
const STATE_LIMIT: usize = 512;
/// The longest redirect URI accepted.
const REDIRECT_URI_LIMIT: usize = 512;
/// Redirect URIs one client may register.
const REDIRECT_URI_COUNT: usize = 10;
const ACTION: &str = "sso:Authorize";
// ---------------------------------------------------------------------------------
// Pure parts: loopback redirect URIs and PKCE

/// A loopback redirect URI (RFC 8252 §7.3): `http`, host `127.0.0.1`, `[::1]` or
/// `localhost`, any port, no user info or fragment. Returns (host, path and query).
fn loopback(uri: &str) -> Option<(String, String)> {
    if uri.len() > REDIRECT_URI_LIMIT || uri.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let url = reqwest::Url::parse(uri).ok()?;
    if url.scheme() != "http"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    // The parser normalises the host (`127.1` is `127.0.0.1`, names are lower case).
    let host = url.host_str()?;
    if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        return None;
    }
    let host = host.to_owned();
    let rest = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    Some((host, rest))
}

/// Whether `presented` is one of the `registered` loopback URIs, any port (RFC 8252
/// §7.3: the client picks a free port when it runs): same host, path and query.
pub(super) fn redirect_uri_registered(registered: &[String], presented: &str) -> bool {
    let Some(presented) = loopback(presented) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|uri| loopback(uri))
        .any(|uri| uri == presented)
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge: base64url (no padding) of a SHA-256 digest.
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
pub(super) fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier)
        && same(
            &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            challenge,
        )
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match reqwest::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

// ---------------------------------------------------------------------------------
// Client ids that carry their registration

/// What `/authorize` must know of a client before it shows anything: sealed into the
/// client id (so it cannot be forged), opened on every use.
#[derive(Debug, Serialize, Deserialize)]
struct PublicRegistration {
    /// The short id (`rgc-...`), shown to people.
    id: String,
    name: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    expires_at: i64,
}

/// Checks RegisterClient's `redirectUris` for a client of `grant_types`: an
/// authorization-code client needs at least one, and every one must be loopback.
pub(super) fn check_redirect_uris(
    grant_types: &[String],
    redirect_uris: &[String],
) -> Result<(), OidcError> {
    let wants_code = grant_types.iter().any(|g| g == AUTHORIZATION_CODE_GRANT);
    if !wants_code && redirect_uris.is_empty() {
        return Ok(());
    }
    if wants_code && redirect_uris.is_empty() {
        return Err(OidcError::InvalidRedirectUri(
            "the authorization_code grant needs redirectUris".into(),
        ));
    }
    if redirect_uris.len() > REDIRECT_URI_COUNT {
        return Err(OidcError::InvalidRedirectUri(format!(
            "at most {REDIRECT_URI_COUNT} redirectUris"
        )));
    }
    if let Some(bad) = redirect_uris.iter().find(|uri| loopback(uri).is_none()) {
        return Err(OidcError::InvalidRedirectUri(format!(
            "redirect URI {:?} is not a loopback URI (http://127.0.0.1, http://[::1] or http://localhost, RFC 8252 §7.3)",
            bad.chars().take(128).collect::<String>()
        )));
    }
    Ok(())
}

/// The client id of a new registration: the short id alone for device clients,
/// `<short id>.<sealed public registration>` for authorization-code clients.
pub(super) fn client_id_for(
    state: &AppState,
    short_id: &str,
    name: &str,
    scopes: &[String],
    grant_types: &[String],
    redirect_uris: &[String],
    expires_at: i64,
) -> Result<String, OidcError> {
    if !grant_types.iter().any(|g| g == AUTHORIZATION_CODE_GRANT) {
        return Ok(short_id.to_owned());
    }
    let public = PublicRegistration {
        id: short_id.to_owned(),
        name: name.to_owned(),
        redirect_uris: redirect_uris.to_vec(),
        scopes: scopes.to_vec(),
        expires_at,
    };
    let text = serde_json::to_string(&public).map_err(|e| super::internal("encode", e))?;
    let sealed = state.sealer.seal_secret(&text, CLIENT_ID_CONTEXT);
    let client_id = format!("{short_id}.{}", URL_SAFE_NO_PAD.encode(sealed));
    // Every later call carries it (at most 4096 characters, as other members).
    if client_id.len() > 4096 {
        return Err(OidcError::InvalidRedirectUri(
            "the redirectUris (with the client name and scopes) are too long in total".into(),
        ));
    }
    Ok(client_id)
}

/// The registration a client id carries, if it is one of ours and current.
fn open_client_id(state: &AppState, client_id: &str, now: i64) -> Option<PublicRegistration> {
    let (short, sealed) = client_id.split_once('.')?;
    let sealed = String::from_utf8(URL_SAFE_NO_PAD.decode(sealed).ok()?).ok()?;
    let opened = state.sealer.open_secret(&sealed, CLIENT_ID_CONTEXT).ok()?;
    let public: PublicRegistration = serde_json::from_str(opened.expose()).ok()?;
    (same(&public.id, short) && public.expires_at > now).then_some(public)
}

/// The short form of a client id, for pages and the audit log.
pub(super) fn short_client_id(client_id: &str) -> &str {
    let short = client_id.split('.').next().unwrap_or(client_id);
    let end = short.char_indices().nth(64).map_or(short.len(), |(i, _)| i);
    &short[..end]
}

// ---------------------------------------------------------------------------------
// /authorize: checking the request

/// The query of `/authorize` (and the hidden fields of its approval form).
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// AWS's name (space-separated); `scope` is RFC 6749's.
    scopes: Option<String>,
    scope: Option<String>,
}

/// A request that may be shown for approval.
struct Checked {
    registration: PublicRegistration,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scopes: String,
}

/// Why a request is refused: on a page (the client or its redirect URI cannot be
/// trusted: never redirect there), or back at the client's redirect URI with an
/// RFC 6749 §4.1.2.1 error.
enum Refusal {
    Page {
        reason: &'static str,
    },
    Redirect {
        client: Box<PublicRegistration>,
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

fn check(state: &AppState, params: &AuthorizeParams, now: i64) -> Result<Checked, Refusal> {
    let Some(client_id) = params.client_id.as_deref().filter(|c| c.len() <= 4096) else {
        return Err(Refusal::Page {
            reason: "missing client_id",
        });
    };
    let Some(registration) = open_client_id(state, client_id, now) else {
        return Err(Refusal::Page {
            reason: "unknown or expired client",
        });
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref() else {
        return Err(Refusal::Page {
            reason: "missing redirect_uri",
        });
    };
    if !redirect_uri_registered(&registration.redirect_uris, redirect_uri) {
        return Err(Refusal::Page {
            reason: "redirect_uri is not a loopback URI registered by the client",
        });
    }
    let redirect_uri = redirect_uri.to_owned();
    let client_state = params.state.clone().filter(|s| !s.is_empty());
    let refuse = |client, error, description: &str| {
        Err(Refusal::Redirect {
            client: Box::new(client),
            redirect_uri: redirect_uri.clone(),
            state: client_state.clone().filter(|s| s.len() <= STATE_LIMIT),
            error,
            description: description.to_owned(),
        })
    };
    if client_state.as_ref().is_some_and(|s| s.len() > STATE_LIMIT) {
        return refuse(registration, "invalid_request", "state is too long");
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return refuse(registration, "invalid_request", "response_type is required"),
        Some(_) => {
            return refuse(
                registration,
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    match params.code_challenge_method.as_deref() {
        Some("S256") => {}
        _ => {
            return refuse(
                registration,
                "invalid_request",
                "PKCE is required with code_challenge_method=S256",
            );
        }
    }
    let Some(challenge) = params
        .code_challenge
        .as_deref()
        .filter(|c| valid_challenge(c))
    else {
        return refuse(
            registration,
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code verifier",
        );
    };
    let scopes = params
        .scopes
        .as_deref()
        .or(params.scope.as_deref())
        .unwrap_or("");
    let requested: Vec<&str> = scopes.split_whitespace().collect();
    if requested.len() > 25
        || requested.iter().any(|s| {
            !valid_scope(s)
                || (!registration.scopes.is_empty() && !registration.scopes.iter().any(|r| r == s))
        })
    {
        return refuse(
            registration,
            "invalid_scope",
            "a requested scope is not registered for this client",
        );
    }
    Ok(Checked {
        client_id: client_id.to_owned(),
        redirect_uri,
        state: client_state,
        code_challenge: challenge.to_owned(),
        scopes: requested.join(" "),
        registration,
    })
}

// ---------------------------------------------------------------------------------
// Codes

/// What an authorization code stands for, under the hash of the code.
#[derive(Debug, Serialize, Deserialize)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    identity: Identity,
    signed_in_at: i64,
    valid_from_ms: i64,
    expires_at: i64,
}

fn code_key(code_hash: &str) -> String {
    format!("sso-auth-code:{code_hash}")
}

/// A new single-use code for an approved request.
async fn issue_code(
    state: &AppState,
    checked: &Checked,
    session: &PortalSession,
    now: i64,
) -> Result<String, OidcError> {
    let code = format!("rgac-{}", random_token(&state.random));
    let record = CodeRecord {
        client_id: checked.client_id.clone(),
        redirect_uri: checked.redirect_uri.clone(),
        code_challenge: checked.code_challenge.clone(),
        identity: session.identity.clone(),
        // Tokens live no longer than the portal sign-in that approved them.
        signed_in_at: session.sign_in_time(now),
        valid_from_ms: session.valid_from_ms,
        expires_at: now + CODE_SECONDS,
    };
    put_json(state, &code_key(&digest(&code)), &record, CODE_SECONDS).await?;
    Ok(code)
}

/// What CreateToken's authorization-code grant presents.
pub(super) struct CodeExchange<'a> {
    pub(super) code: &'a str,
    pub(super) redirect_uri: &'a str,
    pub(super) code_verifier: &'a str,
}

/// CreateToken, `grantType: "authorization_code"`: the code's first presentation
/// spends it whatever follows (a wrong verifier or client cannot try again), and
/// only the client it was issued to, with the same redirect URI and the verifier of
/// its challenge, gets tokens.
pub(super) async fn exchange_code(
    state: &AppState,
    registration: &Registration,
    input: &CodeExchange<'_>,
    now: i64,
) -> Result<(Identity, CreateTokenResponse), OidcError> {
    let invalid =
        || OidcError::InvalidGrant("The authorization code is invalid, expired or already used");
    let hash = digest(input.code);
    let issued = format!("sso-auth-code-grant:{hash}");
    let Some(record) = get_json::<CodeRecord>(state, &code_key(&hash)).await? else {
        // A code presented again after it was exchanged: whoever holds a copy must
        // not keep the login it started (RFC 6749 §4.1.2), so it ends.
        let grant_id = match state.cache.get(&issued).await {
            Ok(value) => value.and_then(|v| String::from_utf8(v).ok()),
            Err(error) => return Err(super::internal("cache read", error)),
        };
        if let Some(grant_id) = grant_id {
            super::end_grant(state, &grant_id).await?;
            return Err(OidcError::InvalidGrant(
                "The authorization code was already used, so the sign-in it started has been ended",
            ));
        }
        return Err(invalid());
    };
    if !first(state, &format!("sso-auth-code-used:{hash}"), CODE_SECONDS).await? {
        return Err(invalid());
    }
    let _ = state.cache.delete(&code_key(&hash)).await;
    if record.expires_at <= now {
        return Err(invalid());
    }
    if !same(&record.client_id, &registration.client_id) {
        return Err(OidcError::InvalidGrant(
            "The authorization code was issued to another client",
        ));
    }
    if !same(&record.redirect_uri, input.redirect_uri) {
        return Err(OidcError::InvalidGrant(
            "redirectUri is not the one the authorization code was issued for",
        ));
    }
    if !pkce_s256_matches(input.code_verifier, &record.code_challenge) {
        return Err(OidcError::InvalidGrant(
            "codeVerifier does not match the code challenge",
        ));
    }
    let (grant_id, response) = begin_login(
        state,
        &registration.client_id,
        &Approval {
            identity: &record.identity,
            signed_in_at: record.signed_in_at,
            valid_from_ms: record.valid_from_ms,
        },
        now,
    )
    .await?;
    state
        .cache
        .put(
            &issued,
            grant_id.as_bytes(),
            std::time::Duration::from_secs(REPLAY_WATCH_SECONDS),
        )
        .await
        .map_err(|e| super::internal("cache write", e))?;
    Ok((record.identity, response))
}

// ---------------------------------------------------------------------------------
// Handlers

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage<'a> {
    display_name: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    client_id: &'a str,
    response_type: &'a str,
    full_client_id: &'a str,
    redirect_uri: &'a str,
    state: &'a str,
    code_challenge: &'a str,
    scopes: &'a str,
}

/// A page that shows no form from a foreign client: the client or redirect URI of
/// the request cannot be trusted, so nothing goes back to it.
fn refusal_page() -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "Sign-in request not valid",
        "This sign-in link is not valid: the application is unknown, its registration has expired, or it asked to return somewhere it did not register. Nothing was sent back to it. Start the sign-in again in your terminal (aws sso login).",
        "/start",
        "Your accounts",
    )
}

/// One audit record of `/authorize`: the signed-in person's, or an anonymous one
/// within the network's budget.
async fn record(
    state: &AppState,
    request: &HttpRequest,
    session: Option<&PortalSession>,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    match session {
        Some(session) => {
            let user = &session.identity.user_name;
            audit(state, request, user, action, target, outcome, details).await;
        }
        None => {
            audit_anonymous(
                state,
                request,
                "anonymous",
                action,
                target,
                outcome,
                details,
            )
            .await
        }
    }
}

/// Audits a refusal (within the network's anonymous budget when nobody is signed
/// in, see [`audit_anonymous`]) and renders it: a page, or the RFC 6749 §4.1.2.1
/// error on the client's redirect URI.
async fn refuse(
    state: &AppState,
    request: &HttpRequest,
    session: Option<&PortalSession>,
    refusal: Refusal,
) -> HttpResponse {
    match refusal {
        Refusal::Page { reason } => {
            record(
                state,
                request,
                session,
                ACTION,
                "authorize",
                Outcome::Failure,
                json!({ "reason": reason }),
            )
            .await;
            refusal_page()
        }
        Refusal::Redirect {
            client,
            redirect_uri,
            state: client_state,
            error,
            description,
        } => {
            record(
                state,
                request,
                session,
                ACTION,
                &client.name,
                if error == "access_denied" {
                    Outcome::Denied
                } else {
                    Outcome::Failure
                },
                json!({ "client_id": client.id, "error": error, "reason": description }),
            )
            .await;
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = client_state.as_deref() {
                params.push(("state", s));
            }
            crate::web::page::found(&with_query(&redirect_uri, &params))
        }
    }
}

/// `GET /authorize`: checks the request, signs the person in (keeping the whole
/// request as the way back), then asks them to approve the client.
pub(super) async fn authorize_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    params: web::Query<AuthorizeParams>,
) -> HttpResponse {
    let now = state.clock.now().timestamp();
    let signed_in = session(&state, &request).await.map(|(_, s)| s);
    let checked = match check(&state, &params, now) {
        Ok(checked) => checked,
        Err(refusal) => return refuse(&state, &request, signed_in.as_ref(), refusal).await,
    };
    let Some(session) = signed_in else {
        let back = format!("/authorize?{}", request.query_string());
        return redirect(&format!(
            "/signin?return_to={}",
            utf8_percent_encode(&back, NON_ALPHANUMERIC)
        ));
    };
    approval_page(&session, &checked)
}

fn approval_page(session: &PortalSession, checked: &Checked) -> HttpResponse {
    let page = AuthorizePage {
        display_name: &session.identity.display_name,
        csrf: &session.csrf,
        client_name: &checked.registration.name,
        client_id: &checked.registration.id,
        response_type: "code",
        full_client_id: &checked.client_id,
        redirect_uri: &checked.redirect_uri,
        state: checked.state.as_deref().unwrap_or(""),
        code_challenge: &checked.code_challenge,
        scopes: &checked.scopes,
    };
    let Ok(body) = page.render() else {
        return refusal_page();
    };
    let mut response = html(StatusCode::OK, body);
    // The form's answer redirects to the client's loopback listener: the page's
    // `form-action` must allow that origin (and only it) or browsers stop there.
    if let Ok(url) = reqwest::Url::parse(&checked.redirect_uri) {
        let origin = url.origin().ascii_serialization();
        if let Ok(value) = header::HeaderValue::from_str(
            &crate::web::page::content_security_policy_with_form_action(&origin),
        ) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub(super) struct AuthorizeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// `POST /authorize`: the person's Approve or Deny (the same CSRF guard as every
/// portal form), answered with a redirect to the client's registered loopback URI.
pub(super) async fn authorize_decision(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<AuthorizeForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let session = match signed_in_form(&state, &request, &form.csrf, ACTION, "authorize").await {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    let now = state.clock.now().timestamp();
    let checked = match check(&state, &form.params, now) {
        Ok(checked) => checked,
        Err(refusal) => return refuse(&state, &request, Some(&session), refusal).await,
    };
    match form.decision.as_str() {
        "approve" => {}
        "deny" => {
            let refusal = Refusal::Redirect {
                client: Box::new(checked.registration),
                redirect_uri: checked.redirect_uri,
                state: checked.state,
                error: "access_denied",
                description: "The sign-in was denied in the browser".into(),
            };
            return refuse(&state, &request, Some(&session), refusal).await;
        }
        _ => return approval_page(&session, &checked),
    }
    let code = match issue_code(&state, &checked, &session, now).await {
        Ok(code) => code,
        Err(_) => {
            // The client and its redirect URI are known good: tell the client, as
            // RFC 6749 §4.1.2.1 says, rather than leaving it waiting.
            let refusal = Refusal::Redirect {
                client: Box::new(checked.registration),
                redirect_uri: checked.redirect_uri,
                state: checked.state,
                error: "server_error",
                description: "Rolegate could not complete the sign-in; try again shortly".into(),
            };
            return refuse(&state, &request, Some(&session), refusal).await;
        }
    };
    audit(
        &state,
        &request,
        &session.identity.user_name,
        ACTION,
        &checked.registration.name,
        Outcome::Success,
        json!({ "client_id": checked.registration.id, "decision": "approve" }),
    )
    .await;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = checked.state.as_deref() {
        params.push(("state", s));
    }
    crate::web::page::found(&with_query(&checked.redirect_uri, &params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirect_uris_match_on_any_port() {
        let registered = vec!["http://127.0.0.1/oauth/callback".to_owned()];
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1:44295/oauth/callback"
        ));
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1/oauth/callback"
        ));
        for bad in [
            "http://127.0.0.1:44295/other",
            "https://127.0.0.1:44295/oauth/callback",
            "http://127.0.0.2:44295/oauth/callback",
            "http://evil.example/oauth/callback",
            "http://127.0.0.1.evil.example/oauth/callback",
            "http://user@127.0.0.1:1/oauth/callback",
            "http://127.0.0.1:1/oauth/callback#x",
            "http://localhost:1/oauth/callback",
        ] {
            assert!(!redirect_uri_registered(&registered, bad), "{bad}");
        }
        let v6 = vec![
            "http://[::1]/cb".to_owned(),
            "http://localhost/cb".to_owned(),
        ];
        assert!(redirect_uri_registered(&v6, "http://[::1]:8080/cb"));
        assert!(redirect_uri_registered(&v6, "http://LOCALHOST:8080/cb"));
        assert!(check_redirect_uris(&["authorization_code".into()], &[]).is_err());
        assert!(
            check_redirect_uris(
                &["authorization_code".into()],
                &["https://app.example/cb".into()]
            )
            .is_err()
        );
        assert!(check_redirect_uris(&["authorization_code".into()], &registered).is_ok());
    }

    #[test]
    fn pkce_s256_is_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_s256_matches("short", challenge));
        assert!(valid_challenge(challenge));
        assert!(!valid_challenge("too-short"));
        assert!(!valid_challenge(&"a".repeat(44)));
        assert!(!valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
