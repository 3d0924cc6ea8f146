//! The STS query API (`POST /` or `/sts` with `Action=...&Version=2011-06-15`, or GET
//! with the parameters and optionally a presigned signature in the query), with
//! XML responses and AWS error XML exactly as AWS clients parse them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use chrono::{DateTime, Utc};
use quick_xml::escape::escape;
use serde_json::json;

use super::AppState;
use super::request_id::RequestId;
use crate::store::{AuditEvent, Outcome};
use crate::sts::action::StsAction;
use crate::sts::assume::{self, AssumeRoleParams, Caller, ListLimit};
use crate::sts::credentials::account_of_access_key_id;
use crate::sts::credentials::{AssumedRole, IssuedCredentials};
use crate::sts::error::StsError;
use crate::sts::saml::{self, SamlParams};
use crate::sts::sigv4;
use crate::sts::web_identity::WebIdentityParams;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const VERSION: &str = "2011-06-15";

/// POST (form body) and GET (query string, e.g. a presigned URL) at `/`, `/sts` and
/// `/sts/`, all through one [`handle`]. `GET /` is STS's only when the query names an
/// `Action`; otherwise it falls through to the portal (a route's guards become its
/// resource's, so a failed guard tries the next resource).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::post().to(handle)).route(
        "/",
        web::get().guard(guard::fn_guard(has_action)).to(handle),
    );
    for path in ["/sts", "/sts/"] {
        cfg.route(path, web::post().to(handle))
            .route(path, web::get().to(handle));
    }
}

/// Whether the query string has an `Action` parameter.
fn has_action(ctx: &guard::GuardContext<'_>) -> bool {
    ctx.head()
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair.split('=').next() == Some("Action"))
}

/// The request's parameters (query string, then form body), parsed once into a map:
/// every lookup is constant time, so reading a `.member.N` list costs time linear
/// in its length and a request costs time linear in its size. The first occurrence
/// of a repeated name wins.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses the query string (a malformed one counts as empty, as before a
    /// presigned signature is checked) and the form body (a malformed one is
    /// `MalformedQueryString`); query parameters come first, so they win.
    pub(crate) fn parse(query: &str, body: &[u8]) -> Result<Self, StsError> {
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).unwrap_or_default();
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
            Ok(form) => pairs.extend(form),
            Err(_) => {
                return Err(StsError::new(
                    "MalformedQueryString",
                    400,
                    "The request body is not a valid application/x-www-form-urlencoded form.",
                ));
            }
        }
        Ok(Self::new(pairs))
    }

    fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut map = HashMap::new();
        for (name, value) in pairs {
            map.entry(name).or_insert(value);
        }
        Self(map)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str, StsError> {
        self.get(name)
            .ok_or_else(|| StsError::missing_parameter(name))
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, StsError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    StsError::new(
                        "InvalidParameterValue",
                        400,
                        format!(
                            "Value ({v}) for parameter {name} is invalid. It must be an integer."
                        ),
                    )
                })
            })
            .transpose()
    }

    /// `Name.member.1[.suffix]`, `Name.member.2[.suffix]`, ... until the first gap,
    /// refused with AWS's validation error as soon as the list is longer than
    /// `limit` allows (nothing beyond the limit is copied).
    fn members(&self, name: &str, suffix: &str, limit: ListLimit) -> Result<Vec<String>, StsError> {
        let key = |i: usize| format!("{name}.member.{i}{suffix}");
        let mut out = Vec::new();
        for i in 1.. {
            let Some(value) = self.get(&key(i)) else {
                break;
            };
            if out.len() == limit.max {
                // Count the rest for the message: one lookup each, no copies.
                let len = (i..).take_while(|&j| self.0.contains_key(&key(j))).count();
                return Err(limit.too_long(limit.max + len));
            }
            out.push(value.to_owned());
        }
        Ok(out)
    }

    fn tags(&self) -> Result<Vec<(String, String)>, StsError> {
        let keys = self.members("Tags", ".Key", assume::TAGS)?;
        Ok(keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let value = self
                    .get(&format!("Tags.member.{}.Value", i + 1))
                    .unwrap_or_default()
                    .to_owned();
                (key, value)
            })
            .collect())
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn element(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(value));
}

fn credentials_xml(out: &mut String, credentials: &IssuedCredentials) {
    out.push_str("<Credentials>");
    element(out, "AccessKeyId", &credentials.access_key_id);
    element(out, "SecretAccessKey", &credentials.secret_access_key);
    element(out, "SessionToken", &credentials.session_token);
    element(out, "Expiration", &timestamp(credentials.expiration));
    out.push_str("</Credentials>");
}

/// `carries_credentials`: the body holds a secret key (never cached).
fn success(
    action: &str,
    carries_credentials: bool,
    result_body: &str,
    request_id: &str,
) -> HttpResponse {
    let body = format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>{result_body}</{action}Result>\n  \
         <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\n</{action}Response>\n"
    );
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/xml")
        .insert_header(("x-amzn-RequestId", request_id));
    if carries_credentials {
        // Never kept by a browser or a proxy: the body holds a secret key.
        response.insert_header((header::CACHE_CONTROL, "no-store"));
    }
    response.body(body)
}

fn failure(error: &StsError, request_id: &str) -> HttpResponse {
    let mut body = format!("<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>");
    element(&mut body, "Type", error.fault());
    element(&mut body, "Code", error.code);
    element(&mut body, "Message", &error.message);
    let _ = write!(
        body,
        "</Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    );
    HttpResponse::build(StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/xml")
        .insert_header(("x-amzn-RequestId", request_id))
        .body(body)
}

/// Who asked, for the audit log.
struct Origin {
    source_ip: Option<String>,
    user_agent: Option<String>,
}

async fn handle(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let request_id = RequestId::of(&request).to_string();
    let now = state.clock.now();
    let origin = Origin {
        source_ip: super::request_info::client_ip(&request).map(|ip| ip.to_string()),
        user_agent: request
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    // Parameters come from the form body (POST) and the query string (GET).
    let params = match Params::parse(request.query_string(), &body) {
        Ok(params) => params,
        Err(error) => return failure(&error, &request_id),
    };
    let action = params.get("Action").unwrap_or_default().to_owned();
    // Parsed once: every later decision takes the enum.
    let known = StsAction::parse(&action);
    let mut audit = AuditNote::new(known);
    let result = dispatch(
        &state, &request, &body, &params, &action, known, now, &origin, &mut audit,
    )
    .await;
    let outcome = match &result {
        Ok(_) => Outcome::Success,
        Err(e) if e.status == 403 => Outcome::Denied,
        Err(_) => Outcome::Failure,
    };
    let issues = known.is_some_and(StsAction::issues_credentials);
    state.metrics.sts_call(
        if known.is_some() { &action } else { "Unknown" },
        outcome.as_str(),
        issues && result.is_ok(),
    );
    if audit.worth_recording(&result) {
        let mut details = json!({ "request_id": request_id });
        if let Err(error) = &result {
            details["code"] = json!(error.code);
            details["reason"] = json!(error.message);
        }
        if let Some(key) = &audit.access_key_id {
            details["access_key_id"] = json!(key);
        }
        if let Some(extra) = audit.extra.as_object() {
            for (key, value) in extra {
                details[key] = value.clone();
            }
        }
        let event = AuditEvent {
            at: now,
            actor: audit.actor.clone().unwrap_or_else(|| "anonymous".into()),
            action: format!(
                "sts:{}",
                if action.is_empty() {
                    "Unknown"
                } else {
                    &action
                }
            ),
            target: audit.target.clone().unwrap_or_default(),
            outcome,
            source_ip: origin.source_ip.clone(),
            user_agent: origin.user_agent.clone(),
            details,
        };
        state.audit.record(event).await;
    }
    match result {
        Ok(result_body) => success(&action, issues, &result_body, &request_id),
        Err(error) => {
            if error.status >= 500 {
                tracing::error!(code = error.code, %request_id, "STS request failed");
            }
            failure(&error, &request_id)
        }
    }
}

/// What the audit event says about a request, filled in as the request is handled.
struct AuditNote {
    actor: Option<String>,
    target: Option<String>,
    access_key_id: Option<String>,
    /// Further details for the event (SAML: reason code, provider, issuer).
    extra: serde_json::Value,
    /// GetCallerIdentity successes are routine reads, not security events.
    routine: bool,
}

impl AuditNote {
    fn new(action: Option<StsAction>) -> Self {
        Self {
            actor: None,
            target: None,
            access_key_id: None,
            extra: json!({}),
            routine: action.is_some_and(StsAction::is_routine),
        }
    }

    fn worth_recording(&self, result: &Result<String, StsError>) -> bool {
        result.is_err() || !self.routine
    }
}

/// The action a request names, once its `Version` is the one this API speaks.
pub(crate) fn resolve_action(
    params: &Params,
    action: &str,
    known: Option<StsAction>,
) -> Result<StsAction, StsError> {
    if action.is_empty() {
        return Err(StsError::new("MissingAction", 400, "Missing Action"));
    }
    let version = params.required("Version")?;
    known.filter(|_| version == VERSION).ok_or_else(|| {
        StsError::new(
            "InvalidAction",
            400,
            format!("Could not find operation {action} for version {version}"),
        )
    })
}

/// AssumeRole's parameters as the form carries them.
pub(crate) fn assume_role_params(params: &Params) -> Result<AssumeRoleParams, StsError> {
    Ok(AssumeRoleParams {
        role_arn: params.required("RoleArn")?.to_owned(),
        role_session_name: params.required("RoleSessionName")?.to_owned(),
        duration_seconds: params.integer("DurationSeconds")?,
        policy: params.get("Policy").map(str::to_owned),
        policy_arns: params.members("PolicyArns", ".arn", assume::POLICY_ARNS)?,
        tags: params.tags()?,
        transitive_tag_keys: params.members(
            "TransitiveTagKeys",
            "",
            assume::TRANSITIVE_TAG_KEYS,
        )?,
        external_id: params.get("ExternalId").map(str::to_owned),
        source_identity: params.get("SourceIdentity").map(str::to_owned),
    })
}

/// AssumeRoleWithWebIdentity's parameters as the form carries them.
pub(crate) fn web_identity_params(params: &Params) -> Result<WebIdentityParams, StsError> {
    Ok(WebIdentityParams {
        role_arn: params.required("RoleArn")?.to_owned(),
        role_session_name: params.required("RoleSessionName")?.to_owned(),
        web_identity_token: params.required("WebIdentityToken")?.to_owned(),
        provider_id: params.get("ProviderId").map(str::to_owned),
        duration_seconds: params.integer("DurationSeconds")?,
        policy: params.get("Policy").map(str::to_owned),
        policy_arns: params.members("PolicyArns", ".arn", assume::POLICY_ARNS)?,
    })
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    state: &AppState,
    request: &HttpRequest,
    body: &[u8],
    params: &Params,
    action: &str,
    known: Option<StsAction>,
    now: DateTime<Utc>,
    origin: &Origin,
    audit: &mut AuditNote,
) -> Result<String, StsError> {
    let action = resolve_action(params, action, known)?;
    let mut out = String::with_capacity(2048);
    if !action.is_signed() {
        // Unsigned by design: the web identity token or the SAML assertion is the
        // credential.
        if action == StsAction::AssumeRoleWithSaml {
            saml(state, request, params, now, origin, audit, &mut out).await?;
        } else {
            web_identity(state, params, now, origin, audit, &mut out).await?;
        }
        return Ok(out);
    }
    let caller = authenticate(state, request, body, now, audit).await?;
    audit.actor = Some(caller.arn.clone());
    match action {
        StsAction::GetCallerIdentity => {
            element(&mut out, "Arn", &caller.arn);
            element(&mut out, "UserId", &caller.user_id);
            element(&mut out, "Account", &caller.account);
        }
        StsAction::AssumeRole => {
            let assume = assume_role_params(params)?;
            audit.target = Some(assume.role_arn.clone());
            let assumed = state
                .sts
                .assume_role(
                    &caller,
                    &assume,
                    origin.source_ip.as_deref(),
                    now.timestamp(),
                )
                .await?;
            credentials_xml(&mut out, &assumed.credentials);
            assumed_role_user_xml(&mut out, &assumed);
            element(
                &mut out,
                "PackedPolicySize",
                &assumed.packed_policy_size.to_string(),
            );
            if let Some(source_identity) = &assumed.source_identity {
                element(&mut out, "SourceIdentity", source_identity);
            }
            audit.access_key_id = Some(assumed.credentials.access_key_id.clone());
        }
        StsAction::GetSessionToken => {
            let credentials = state
                .sts
                .get_session_token(&caller, params.integer("DurationSeconds")?, now.timestamp())
                .await?;
            credentials_xml(&mut out, &credentials);
            audit.access_key_id = Some(credentials.access_key_id.clone());
        }
        StsAction::GetAccessKeyInfo => {
            let key = params.required("AccessKeyId")?;
            let account = account_of_access_key_id(key).ok_or_else(|| {
                StsError::constraint(
                    "accessKeyId",
                    key,
                    "Member must be an access key id such as AKIAIOSFODNN7EXAMPLE",
                )
            })?;
            element(&mut out, "Account", &account);
        }
        StsAction::DecodeAuthorizationMessage => {
            let encoded = params.required("EncodedMessage")?;
            let decoded = state
                .sts
                .decode_authorization_message(&caller, encoded, now.timestamp())
                .await?;
            element(&mut out, "DecodedMessage", &decoded);
        }
        // Answered above, before any signature check.
        StsAction::AssumeRoleWithWebIdentity | StsAction::AssumeRoleWithSaml => {}
    }
    Ok(out)
}

async fn web_identity(
    state: &AppState,
    params: &Params,
    now: DateTime<Utc>,
    origin: &Origin,
    audit: &mut AuditNote,
    out: &mut String,
) -> Result<(), StsError> {
    let request = web_identity_params(params)?;
    audit.actor = Some("web-identity".into());
    audit.target = Some(request.role_arn.clone());
    let result = state
        .sts
        .assume_role_with_web_identity(&request, origin.source_ip.as_deref(), now.timestamp())
        .await?;
    audit.actor = Some(format!("{}|{}", result.provider, result.subject));
    audit.access_key_id = Some(result.assumed.credentials.access_key_id.clone());
    credentials_xml(out, &result.assumed.credentials);
    element(out, "SubjectFromWebIdentityToken", &result.subject);
    assumed_role_user_xml(out, &result.assumed);
    element(out, "Provider", &result.provider);
    element(out, "Audience", &result.audience);
    element(
        out,
        "PackedPolicySize",
        &result.assumed.packed_policy_size.to_string(),
    );
    if let Some(source_identity) = &result.assumed.source_identity {
        element(out, "SourceIdentity", source_identity);
    }
    Ok(())
}

/// AssumeRoleWithSAML: required parameters missing are AWS's "Value null"
/// ValidationError; every accepted and refused assertion is audited with the reason
/// code and the provider, never the assertion.
async fn saml(
    state: &AppState,
    request: &HttpRequest,
    params: &Params,
    now: DateTime<Utc>,
    origin: &Origin,
    audit: &mut AuditNote,
    out: &mut String,
) -> Result<(), StsError> {
    audit.actor = Some("saml".into());
    // Until the service says otherwise: a parameter is missing or malformed.
    audit.extra["saml_reason"] = json!("invalid_parameter");
    let required = |name: &str, member: &str| {
        params
            .get(name)
            .map(str::to_owned)
            .ok_or_else(|| saml::missing(member))
    };
    let role_arn = required("RoleArn", "roleArn");
    audit.target = role_arn.as_ref().ok().cloned();
    let request_params = SamlParams {
        role_arn: role_arn?,
        principal_arn: required("PrincipalArn", "principalArn")?,
        saml_assertion: required("SAMLAssertion", "SAMLAssertion")?,
        duration_seconds: params.integer("DurationSeconds")?,
        policy: params.get("Policy").map(str::to_owned),
        policy_arns: params.members("PolicyArns", ".arn", assume::POLICY_ARNS)?,
    };
    audit.extra["principal_arn"] = json!(request_params.principal_arn);
    let audience = state.sts_settings.saml_audience(&state.server, request);
    let result = state
        .sts
        .assume_role_with_saml(
            &request_params,
            state.cache.as_ref(),
            &audience,
            origin.source_ip.as_deref(),
            now,
        )
        .await;
    let result = match result {
        Ok(result) => result,
        Err(refusal) => {
            audit.extra["saml_reason"] = json!(refusal.reason);
            if let Some(provider) = &refusal.provider {
                audit.extra["provider"] = json!(provider);
            }
            if let Some(issuer) = &refusal.issuer {
                audit.extra["issuer"] = json!(issuer);
            }
            return Err(refusal.error);
        }
    };
    audit.actor = Some(format!("{}|{}", result.issuer, result.subject));
    audit.extra["saml_reason"] = json!("accepted");
    audit.extra["provider"] = json!(result.provider_arn);
    audit.extra["issuer"] = json!(result.issuer);
    audit.access_key_id = Some(result.assumed.credentials.access_key_id.clone());
    credentials_xml(out, &result.assumed.credentials);
    assumed_role_user_xml(out, &result.assumed);
    element(
        out,
        "PackedPolicySize",
        &result.assumed.packed_policy_size.to_string(),
    );
    element(out, "Subject", &result.subject);
    element(out, "SubjectType", &result.subject_type);
    element(out, "Issuer", &result.issuer);
    element(out, "Audience", &result.audience);
    element(out, "NameQualifier", &result.name_qualifier);
    if let Some(source_identity) = &result.assumed.source_identity {
        element(out, "SourceIdentity", source_identity);
    }
    Ok(())
}

fn assumed_role_user_xml(out: &mut String, assumed: &AssumedRole) {
    out.push_str("<AssumedRoleUser>");
    element(out, "AssumedRoleId", &assumed.assumed_role_id);
    element(out, "Arn", &assumed.assumed_role_arn);
    out.push_str("</AssumedRoleUser>");
}

/// The request as SigV4 sees it: method, raw path and query, headers, body hash.
pub(crate) fn signed_request<'a>(
    request: &'a HttpRequest,
    headers: &'a [(&'a str, &'a str)],
    body: &[u8],
) -> sigv4::SignedRequest<'a> {
    sigv4::SignedRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.query_string(),
        headers,
        payload_sha256: Cow::Owned(sigv4::hash_payload(body)),
    }
}

/// Header pairs of a request (values that are not visible ASCII are left out; they
/// cannot have been signed by a conforming client).
pub(crate) fn header_pairs(request: &HttpRequest) -> Vec<(&str, &str)> {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
        .collect()
}

/// Verifies the request's SigV4 signature (scoped to `sts`) and resolves the caller.
async fn authenticate(
    state: &AppState,
    request: &HttpRequest,
    body: &[u8],
    now: DateTime<Utc>,
    audit: &mut AuditNote,
) -> Result<Caller, StsError> {
    let headers = header_pairs(request);
    let signed = signed_request(request, &headers, body);
    if let Ok(info) = sigv4::parse(&signed) {
        audit.actor = Some(info.access_key_id.clone());
    }
    let options = state.sts.verify_options("sts");
    state.sts.authenticate(&signed, now, &options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_far_over_its_limit_is_refused_with_awss_validation_error() {
        let pairs = (1..=20_000)
            .map(|i| (format!("PolicyArns.member.{i}.arn"), format!("arn{i}")))
            .chain([("Action".to_owned(), "AssumeRole".to_owned())]);
        let params = Params::new(pairs);
        let error = params
            .members("PolicyArns", ".arn", assume::POLICY_ARNS)
            .unwrap_err();
        assert_eq!((error.code, error.status), ("ValidationError", 400));
        assert_eq!(
            error.message,
            "1 validation error detected: Value '20000 ARNs' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10"
        );
    }

    #[test]
    fn lists_within_their_limit_are_read_in_order_until_the_first_gap() {
        let params = Params::new(
            [
                ("Tags.member.2.Key", "b"),
                ("Tags.member.1.Key", "a"),
                ("Tags.member.1.Value", "1"),
                ("Tags.member.1.Key", "ignored: the first occurrence wins"),
                ("Tags.member.4.Key", "after a gap"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(
            params.tags().unwrap(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new())
            ]
        );
    }
}
