//! SigV4 on an arbitrary HTTP request, given as the raw request text of the AWS
//! SigV4 test suite (`METHOD /path?query HTTP/1.1`, header lines, an empty line,
//! the body): `Authorization`-header and presigned-query parsing, the checks that
//! need no secret, full verification with the test suite's secret at its fixed
//! time, and canonicalisation of the request as received (every header signed,
//! header and query forms, with and without S3's path rules) and as re-signed by
//! the signer. Seeds: /work/shared/corpora/sigv4-test-suite.
#![no_main]

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use rolegate::sts::sigv4::{
    CredentialScope, SignatureInfo, SignatureLocation, SignedRequest, SigningParams, VerifyOptions,
    canonical_request, hash_payload, parse, presign_query, sign_request, string_to_sign, validate,
    verify,
};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The test suite's time, 2015-08-30T12:36:00Z.
fn suite_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_440_938_160, 0).unwrap_or_default()
}

/// Splits the raw request text; folded header lines (starting with white space)
/// continue the previous header's value, as in the suite's multi-line cases.
fn split_request(text: &str) -> Option<(&str, &str, Vec<(&str, String)>, &str)> {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.split('\n');
    let request_line = lines.next()?;
    let mut parts = request_line.splitn(3, ' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name, value.to_owned()));
        }
    }
    Some((method, target, headers, body))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((method, target, owned_headers, body)) = split_request(text) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &str)> = owned_headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let req = SignedRequest {
        method,
        path,
        query,
        headers: &headers,
        payload_sha256: Cow::Owned(hash_payload(body.as_bytes())),
    };
    let now = suite_time();
    let strict = VerifyOptions {
        region: Some("us-east-1".into()),
        service: Some("service".into()),
        allow_unsigned_query_session_token: true,
        ..VerifyOptions::default()
    };
    let all_options = [VerifyOptions::default(), VerifyOptions::s3(), strict];

    if let Ok(info) = parse(&req) {
        for opts in &all_options {
            let _ = validate(&info, now, opts);
            let _ = verify(&req, &info, SECRET, now, opts);
            let _ = string_to_sign(&info, &canonical_request(&req, &info, opts));
        }
    }

    // Canonicalisation of the request as received, whatever its signature.
    let mut signed_headers: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    for location in [SignatureLocation::Header, SignatureLocation::Query] {
        let info = SignatureInfo {
            location,
            access_key_id: "AKIDEXAMPLE".into(),
            scope: CredentialScope {
                date: "20150830".into(),
                region: "us-east-1".into(),
                service: "service".into(),
                terminator: "aws4_request".into(),
            },
            request_time: now,
            signed_headers: signed_headers.clone(),
            signature: String::new(),
            session_token: None,
            expires: None,
        };
        for opts in &all_options[..2] {
            let _ = string_to_sign(&info, &canonical_request(&req, &info, opts));
        }
    }

    // The signer on the same request.
    let params = SigningParams {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: SECRET,
        session_token: Some("token"),
        region: "us-east-1",
        service: "service",
        time: now,
    };
    let _ = sign_request(&req, &params, &VerifyOptions::default());
    let _ = presign_query(
        &req,
        &params,
        chrono::Duration::seconds(300),
        &VerifyOptions::default(),
    );
});
