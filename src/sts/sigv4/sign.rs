//! A small SigV4 signer (header and presigned-query forms), for clients and
//! tests. It uses the same canonicalisation code as the verifier.

use chrono::{DateTime, Utc};

use super::canonical::{
    build_canonical_request, compute_signature, signing_key, string_to_sign, uri_encode,
};
use super::{
    ALGORITHM, AMZ_DATE_FORMAT, CredentialScope, SignatureInfo, SignatureLocation, SignedRequest,
    TERMINATOR, VerifyOptions,
};

/// Credentials, scope and time for signing.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: DateTime<Utc>,
}

impl SigningParams<'_> {
    fn scope(&self) -> CredentialScope {
        CredentialScope {
            date: self.time.format("%Y%m%d").to_string(),
            region: self.region.to_owned(),
            service: self.service.to_owned(),
            terminator: TERMINATOR.to_owned(),
        }
    }
}

fn signed_header_names(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty() && n != "authorization")
        .collect();
    names.sort();
    names.dedup();
    names
}

fn sign_info(
    req: &SignedRequest<'_>,
    params: &SigningParams<'_>,
    location: SignatureLocation,
    signed_headers: Vec<String>,
    expires: Option<chrono::Duration>,
    opts: &VerifyOptions,
) -> String {
    let info = SignatureInfo {
        location,
        access_key_id: params.access_key_id.to_owned(),
        scope: params.scope(),
        request_time: params.time,
        signed_headers,
        signature: String::new(),
        session_token: params.session_token.map(str::to_owned),
        expires,
    };
    let creq = build_canonical_request(req, &info.signed_headers, location, opts, false);
    let sts = string_to_sign(&info, &creq);
    let key = signing_key(
        params.secret_access_key,
        &info.scope.date,
        &info.scope.region,
        &info.scope.service,
    );
    compute_signature(&key, &sts)
}

/// Signs `req` in the `Authorization` header form and returns the headers to
/// add to it, in order: `X-Amz-Date`, `X-Amz-Security-Token` (with a session
/// token) and `Authorization`. Every header of `req` (which must include
/// `Host`, and must not already carry these three) is signed, plus the added
/// date and token.
pub fn sign_request(
    req: &SignedRequest<'_>,
    params: &SigningParams<'_>,
    opts: &VerifyOptions,
) -> Vec<(String, String)> {
    let amz_date = params.time.format(AMZ_DATE_FORMAT).to_string();
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(name, _)| !name.trim().eq_ignore_ascii_case("authorization"))
        .copied()
        .collect();
    headers.push(("X-Amz-Date", &amz_date));
    if let Some(token) = params.session_token {
        headers.push(("X-Amz-Security-Token", token));
    }
    let signed_headers = signed_header_names(&headers);
    let with_date = SignedRequest {
        headers: &headers,
        ..req.clone()
    };
    let signature = sign_info(
        &with_date,
        params,
        SignatureLocation::Header,
        signed_headers.clone(),
        None,
        opts,
    );
    let mut out = vec![("X-Amz-Date".to_owned(), amz_date.clone())];
    if let Some(token) = params.session_token {
        out.push(("X-Amz-Security-Token".to_owned(), token.to_owned()));
    }
    out.push((
        "Authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
            params.access_key_id,
            params.scope(),
            signed_headers.join(";")
        ),
    ));
    out
}

/// Presigns `req`: returns the complete query string to send (the request's
/// own query followed by the `X-Amz-*` parameters, `X-Amz-Signature` last).
/// All headers of `req` are signed; it must include `Host`. The session token,
/// if any, is signed as `X-Amz-Security-Token`.
pub fn presign_query(
    req: &SignedRequest<'_>,
    params: &SigningParams<'_>,
    expires_in: chrono::Duration,
    opts: &VerifyOptions,
) -> String {
    let signed_headers = signed_header_names(req.headers);
    let base = req.query.strip_prefix('?').unwrap_or(req.query);
    let mut query = String::from(base);
    let mut add = |name: &str, value: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&uri_encode(value));
    };
    add("X-Amz-Algorithm", ALGORITHM);
    add(
        "X-Amz-Credential",
        &format!("{}/{}", params.access_key_id, params.scope()),
    );
    add(
        "X-Amz-Date",
        &params.time.format(AMZ_DATE_FORMAT).to_string(),
    );
    add("X-Amz-Expires", &expires_in.num_seconds().to_string());
    if let Some(token) = params.session_token {
        add("X-Amz-Security-Token", token);
    }
    add("X-Amz-SignedHeaders", &signed_headers.join(";"));
    let unsigned = SignedRequest {
        query: &query,
        ..req.clone()
    };
    let signature = sign_info(
        &unsigned,
        params,
        SignatureLocation::Query,
        signed_headers,
        Some(expires_in),
        opts,
    );
    format!("{query}&X-Amz-Signature={signature}")
}
