//! What the two AWS JSON surfaces (SSO-OIDC in `oauth`, the SSO portal API in
//! `sso_api`) share on the wire: success and error responses (the request id header
//! comes from the request middleware, see `request_id`) with the
//! exception name in `x-amzn-ErrorType` (botocore reads the code from there), bounded
//! request bodies, and the client network that rate limits ([`crate::cache::RateLimit`])
//! count anonymous callers by.

use std::net::IpAddr;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

pub(super) const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// `200` with a JSON body; never cached (bodies carry tokens and credentials).
pub(super) fn json_ok(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `200` with no body (Logout), typed JSON like every answer of these APIs.
pub(super) fn empty_ok() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .finish()
}

/// An error answer: `error_type` in `x-amzn-ErrorType`, `body` as JSON, and
/// `Retry-After` (seconds) when the caller should come back later.
pub(super) fn json_error(
    status: StatusCode,
    error_type: &str,
    body: &serde_json::Value,
    retry_after: Option<u64>,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .insert_header((ERROR_TYPE_HEADER, error_type))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(seconds) = retry_after {
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    response.json(body)
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Longer than the limit given to [`read_body`].
    TooLarge,
    /// The connection failed while the body arrived.
    Broken(String),
}

/// The whole request body, refused as soon as it grows past `limit` bytes (or its
/// `Content-Length` says it will).
pub(super) async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(BodyError::Broken(error.to_string())),
        Err(_) => Err(BodyError::TooLarge),
    }
}

/// The caller's network for rate limits: its IPv4 address, or its IPv6 /64 (one
/// host usually has a whole /64, so counting addresses would count nothing). The
/// client address as [`super::request_info::client_ip`] has it: `X-Forwarded-For`
/// only from a trusted proxy.
pub(super) fn client_network(request: &HttpRequest) -> String {
    match super::request_info::client_ip(request) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_callers_are_counted_by_their_64() {
        let request = actix_web::test::TestRequest::default()
            .peer_addr("[2001:db8:1:2:aaaa::1]:4000".parse().unwrap())
            .to_http_request();
        assert_eq!(client_network(&request), "2001:db8:1:2::/64");
        let request = actix_web::test::TestRequest::default()
            .peer_addr("[::ffff:192.0.2.7]:4000".parse().unwrap())
            .to_http_request();
        assert_eq!(client_network(&request), "192.0.2.7");
    }
}
