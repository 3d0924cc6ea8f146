//! `/federation`, as AWS has it: `getSigninToken` trades a role session's
//! credentials for a single-use sign-in token (JSON), and `login` trades the token
//! for a console session and a redirect to the Destination (HTML).
//!
//! Destination allow-list ([`LoginDestination`]): Rolegate's own console, i.e.
//! `/console` (optionally with a query, which pre-fills the "can I?" form) as a
//! relative path or as an absolute URL on the request's own origin; a missing
//! Destination means `/console`, and the redirect is then the relative
//! `/console/<short id>`. Besides that, an absolute URL on the console destinations
//! of the account *of the role session being signed in* gets the console session and
//! a 302 to the URL as parsed and re-serialised. Anything else is refused before the
//! sign-in token is looked at; a Destination off the account's list is refused
//! without using the token up. Every refusal is audited ([`refuse_login`]) and
//! counted against the client network's budget.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::console::{entered, open_failure};
use super::{ANONYMOUS, accounts_page, role_arn_of, truncated};
use crate::iam::LoginDestination;
use crate::service::console::{ConsoleError, RoleCredentials};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::api_error::ApiError;
use crate::web::audit::{audit, audit_anonymous};
use crate::web::aws_json::client_network;
use crate::web::page::safe_return_to;
use crate::web::request_info;

/// AWS's bounds for `SessionDuration`.
const MIN_SESSION_DURATION: i64 = 900;
const MAX_SESSION_DURATION: i64 = 43_200;
const LOGIN_ACTION: &str = "federation:Login";

#[derive(Debug, Default, Deserialize)]
pub(super) struct FederationParams {
    #[serde(rename = "Action")]
    action: Option<String>,
    #[serde(rename = "Session")]
    session: Option<String>,
    #[serde(rename = "SessionDuration")]
    session_duration: Option<String>,
    #[serde(rename = "SigninToken")]
    signin_token: Option<String>,
    #[serde(rename = "Destination")]
    destination: Option<String>,
    #[serde(rename = "Issuer")]
    issuer: Option<String>,
}

/// The `Session` parameter. No `Debug`: it holds the secret key.
#[derive(Deserialize)]
struct SessionParam {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "sessionKey")]
    session_key: String,
    #[serde(rename = "sessionToken")]
    session_token: String,
}

pub(super) async fn federation_get(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params =
        serde_urlencoded::from_str::<FederationParams>(request.query_string()).map_err(|_| {
            ApiError::bad_request("InvalidParameter", "The query string could not be read.")
        })?;
    federation(&state, &request, params).await
}

/// AWS accepts the same fields form-encoded in a POST body.
pub(super) async fn federation_post(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let parsed = if body.is_empty() {
        serde_urlencoded::from_str::<FederationParams>(request.query_string())
    } else {
        serde_urlencoded::from_bytes::<FederationParams>(&body)
    };
    let params = parsed
        .map_err(|_| ApiError::bad_request("InvalidParameter", "The form could not be read."))?;
    federation(&state, &request, params).await
}

async fn federation(
    state: &AppState,
    request: &HttpRequest,
    params: FederationParams,
) -> Result<HttpResponse, ApiError> {
    let network = client_network(request);
    if let Some(retry_after) = state.console.throttled(&network).await {
        tracing::warn!(%network, "federation: too many refused requests from this network");
        let message = format!(
            "Too many refused sign-in requests from your network. Try again in {} minutes.",
            retry_after.div_ceil(60)
        );
        if params.action.as_deref() != Some("login") {
            return Err(ApiError::too_many_requests(
                "Throttling",
                message,
                retry_after,
            ));
        }
        let mut page = accounts_page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &message);
        page.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        return Ok(page);
    }
    match params.action.as_deref() {
        Some("getSigninToken") => get_signin_token(state, request, params).await,
        Some("login") => Ok(login(state, request, params).await),
        Some(_) => Err(ApiError::bad_request(
            "InvalidAction",
            "Action must be getSigninToken or login.",
        )),
        None => Err(ApiError::bad_request(
            "MissingAction",
            "The Action parameter is required: getSigninToken or login.",
        )),
    }
}

fn parse_duration(raw: Option<&str>) -> Result<Option<i64>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(seconds) if (MIN_SESSION_DURATION..=MAX_SESSION_DURATION).contains(&seconds) => {
            Ok(Some(seconds))
        }
        _ => Err(format!(
            "SessionDuration must be a number of seconds from {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION}."
        )),
    }
}

async fn get_signin_token(
    state: &AppState,
    request: &HttpRequest,
    params: FederationParams,
) -> Result<HttpResponse, ApiError> {
    const ACTION: &str = "federation:GetSigninToken";
    let raw = params
        .session
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "MissingParameter",
                "The Session parameter is required: url-encoded JSON with sessionId, sessionKey and sessionToken.",
            )
        })?;
    let given = serde_json::from_str::<SessionParam>(raw).map_err(|_| {
        ApiError::bad_request(
            "MalformedSession",
            "Session must be JSON with the string fields sessionId, sessionKey and sessionToken.",
        )
    })?;
    let duration = parse_duration(params.session_duration.as_deref())
        .map_err(|message| ApiError::bad_request("InvalidParameterValue", message))?;
    let credentials = RoleCredentials {
        access_key_id: &given.session_id,
        secret_access_key: &given.session_key,
        session_token: &given.session_token,
    };
    let error = match state
        .console
        .issue_signin_token(&credentials, duration)
        .await
    {
        Ok(issued) => {
            audit(
                state,
                request,
                &issued.caller.arn,
                ACTION,
                &role_arn_of(&issued.caller),
                Outcome::Success,
                json!({ "access_key_id": issued.caller.access_key_id, "session_duration": duration }),
            )
            .await;
            return Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({ "SigninToken": issued.token })));
        }
        Err(error) => error,
    };
    let code = match &error {
        ConsoleError::NotTemporaryCredentials | ConsoleError::InvalidSessionToken => {
            "InvalidClientTokenId"
        }
        ConsoleError::WrongSessionKey => "SignatureDoesNotMatch",
        ConsoleError::ExpiredSessionToken => "ExpiredToken",
        ConsoleError::NotRoleCredentials | ConsoleError::RoleSessionEnded { .. } => "AccessDenied",
        ConsoleError::Sts(failure) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                failure.code,
                failure.message.clone(),
            ));
        }
        ConsoleError::Cache(_) => {
            tracing::error!(%error, "cannot store a sign-in token");
            return Err(ApiError::unavailable(
                "The sign-in token could not be issued. Try again shortly.",
            ));
        }
        _ => {
            return Err(ApiError::internal_saying(
                "The sign-in token could not be issued.",
                error,
            ));
        }
    };
    // A refusal of the presented credentials: counted and audited.
    let message = error.to_string();
    state.console.count_refusal(&client_network(request)).await;
    audit_anonymous(
        state,
        request,
        ANONYMOUS,
        ACTION,
        &truncated(&given.session_id),
        Outcome::Denied,
        json!({ "code": code, "reason": message }),
    )
    .await;
    Err(ApiError::forbidden(code, message))
}

/// A sign-in link refused before any session exists: counted, an audited denial,
/// and a page that says what happened and how to continue.
async fn refuse_login(
    state: &AppState,
    request: &HttpRequest,
    target: &str,
    details: serde_json::Value,
    status: StatusCode,
    title: &str,
    message: &str,
) -> HttpResponse {
    state.console.count_refusal(&client_network(request)).await;
    audit_anonymous(
        state,
        request,
        ANONYMOUS,
        LOGIN_ACTION,
        target,
        Outcome::Denied,
        details,
    )
    .await;
    accounts_page(status, title, message)
}

fn sign_in_unavailable() -> HttpResponse {
    accounts_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "The console could not be opened right now. Please try again shortly.",
    )
}

async fn login(state: &AppState, request: &HttpRequest, params: FederationParams) -> HttpResponse {
    let raw_destination = params.destination.as_deref().unwrap_or("/console");
    let Some(destination) =
        LoginDestination::parse(raw_destination, &request_info::public_origin(request))
    else {
        return refuse_login(
            state,
            request,
            &truncated(raw_destination),
            json!({ "reason": "Destination is not on the allow-list" }),
            StatusCode::BAD_REQUEST,
            "Destination not allowed",
            "This sign-in link asks to continue to an address that Rolegate does not send console sessions to: only this Rolegate's own console (/console) or an https:// address on the account's console destinations is allowed. No session was created. Open the console from your accounts instead.",
        )
        .await;
    };
    let Some(token) = params
        .signin_token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 256)
    else {
        return refuse_login(
            state,
            request,
            "-",
            json!({ "reason": "no SigninToken" }),
            StatusCode::BAD_REQUEST,
            "Sign-in link incomplete",
            "This sign-in link has no sign-in token. Get a new link, or open the console from your accounts.",
        )
        .await;
    };
    let (query, external) = match destination {
        LoginDestination::Console(query) => (query, None),
        LoginDestination::External(url) => (String::new(), Some(url)),
    };
    let session = match state
        .console
        .redeem_signin_token(token, external.as_ref())
        .await
    {
        Ok(session) => session,
        Err(ConsoleError::DestinationNotListed { account }) => {
            let url = external
                .as_ref()
                .map_or_else(String::new, |u| truncated(u.as_str()));
            return refuse_login(
                state,
                request,
                &url,
                json!({ "reason": "Destination is not on the account's console destinations", "account": account }),
                StatusCode::BAD_REQUEST,
                "Destination not allowed",
                &format!(
                    "This sign-in link asks to continue to {url}, which is not one of the console destinations of account {account}. No session was created. Open the console from your accounts instead, or ask an administrator to add the address to the account's console destinations."
                ),
            )
            .await;
        }
        Err(ConsoleError::SigninTokenUsed) => {
            return refuse_login(
                state,
                request,
                "-",
                json!({ "reason": "sign-in token already used" }),
                StatusCode::FORBIDDEN,
                "Sign-in link already used",
                "Each sign-in link works once, and this one has been used. No session was created. Get a new link, or open the console from your accounts.",
            )
            .await;
        }
        Err(ConsoleError::SigninTokenUnknown) => {
            return refuse_login(
                state,
                request,
                "-",
                json!({ "reason": "sign-in token expired or unknown" }),
                StatusCode::FORBIDDEN,
                "Sign-in link expired",
                "This sign-in link has expired (links are valid for 15 minutes) or was not issued by this Rolegate. No session was created. Get a new link, or open the console from your accounts.",
            )
            .await;
        }
        Err(ConsoleError::RoleSessionEnded {
            access_key_id,
            cause,
        }) => {
            return refuse_login(
                state,
                request,
                &access_key_id,
                json!({ "code": cause.map(|c| c.code), "reason": "the role session ended" }),
                StatusCode::FORBIDDEN,
                "Role session ended",
                "The role session behind this sign-in link has expired or was revoked. No console session was created. Open the console again from your accounts.",
            )
            .await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot read sign-in tokens");
            return sign_in_unavailable();
        }
    };
    let back = params.issuer.as_deref().map_or("/start", safe_return_to);
    let opened = match state.console.open(&session, back).await {
        Ok(opened) => opened,
        Err(error) => return open_failure(&error),
    };
    let location = match &external {
        Some(url) => url.as_str().to_owned(),
        None => format!("/console/{}{query}", opened.short),
    };
    let Some(response) = entered(request, StatusCode::FOUND, &location, &opened) else {
        return sign_in_unavailable();
    };
    let caller = &session.caller;
    audit(
        state,
        request,
        &caller.arn,
        LOGIN_ACTION,
        &role_arn_of(caller),
        Outcome::Success,
        json!({
            "access_key_id": caller.access_key_id,
            "console": opened.short,
            "destination": external.as_ref().map(|u| truncated(u.as_str())),
        }),
    )
    .await;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration(None), Ok(None));
        assert_eq!(parse_duration(Some("900")), Ok(Some(900)));
        assert!(parse_duration(Some("899")).is_err());
        assert!(parse_duration(Some("43201")).is_err());
        assert!(parse_duration(Some("x")).is_err());
    }
}
