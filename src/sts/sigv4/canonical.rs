//! Canonical request, string to sign, signing key and signature, exactly as
//! AWS computes them (Signature Version 4, `AWS4-HMAC-SHA256`).

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};

use super::{ALGORITHM, SignatureInfo, SignatureLocation, SignedRequest, VerifyOptions};

/// Everything except the RFC 3986 unreserved characters `A-Z a-z 0-9 - . _ ~`
/// is percent-encoded (upper-case hex), as SigV4 requires.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Path encoding: as [`UNRESERVED`], but `/` separates segments and stays.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// Hex SHA-256 of a request body, for [`SignedRequest::payload_sha256`].
pub fn hash_payload(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// URI-encodes `value` with the SigV4 rules (unreserved characters kept,
/// everything else `%XX`), e.g. for building presigned query strings.
pub fn uri_encode(value: &str) -> String {
    percent_encode(value.as_bytes(), UNRESERVED).to_string()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the
    // `else` branch only exists to avoid a panic path.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The SigV4 signing key `kSigning` for a secret and a credential scope:
/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
///
/// It depends only on the secret and the scope, so a caller may cache it per
/// `(access key id, date, region, service)` and call
/// [`verify_with_signing_key`](super::verify_with_signing_key).
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret_access_key.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret_access_key.as_bytes());
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, super::TERMINATOR.as_bytes())
}

/// Lower-case hex `HMAC-SHA256(signing_key, string_to_sign)`.
pub fn compute_signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// The canonical request AWS would build for `req` given the signature's
/// signed headers and location (see the module docs for the rules).
///
/// A signed header that is absent from the request contributes `name:`;
/// [`verify`](super::verify) rejects that case before computing anything.
pub fn canonical_request(
    req: &SignedRequest<'_>,
    info: &SignatureInfo,
    opts: &VerifyOptions,
) -> String {
    build_canonical_request(req, &info.signed_headers, info.location, opts, false)
}

/// `AWS4-HMAC-SHA256\n<X-Amz-Date>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(info: &SignatureInfo, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        info.amz_date(),
        info.scope,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

pub(crate) fn build_canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[String],
    location: SignatureLocation,
    opts: &VerifyOptions,
    omit_query_session_token: bool,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path, opts));
    out.push('\n');
    out.push_str(&canonical_query(
        req.query,
        location == SignatureLocation::Query,
        omit_query_session_token,
    ));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for value in req.header_values(name) {
            if !first {
                out.push(',');
            }
            first = false;
            push_folded(&mut out, value);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(&req.payload_sha256);
    out
}

/// Appends `value` trimmed, with every inner run of whitespace (including the
/// line breaks of obsolete folded headers) replaced by one space.
fn push_folded(out: &mut String, value: &str) {
    let mut pending_space = false;
    for c in value.trim_matches(is_http_space).chars() {
        if is_http_space(c) {
            pending_space = true;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
}

fn is_http_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The canonical URI. With `normalize_path`, dot segments and empty segments
/// are removed first (as botocore and the AWS services other than S3 do). With
/// `double_encode_path` the path as received (already percent-encoded) is
/// encoded once more, so `%3A` becomes `%253A` (every service but S3);
/// otherwise (S3) it is decoded and encoded exactly once.
pub(crate) fn canonical_uri(path: &str, opts: &VerifyOptions) -> String {
    let normalized: Cow<'_, str> = if opts.normalize_path {
        Cow::Owned(remove_dot_segments(path))
    } else {
        Cow::Borrowed(path)
    };
    if normalized.is_empty() {
        return "/".to_owned();
    }
    if opts.double_encode_path {
        percent_encode(normalized.as_bytes(), PATH).to_string()
    } else {
        let decoded: Vec<u8> = percent_decode_str(&normalized).collect();
        percent_encode(&decoded, PATH).to_string()
    }
}

/// RFC 3986 §5.2.4 dot-segment removal, also collapsing empty segments (`//`),
/// keeping a leading and (for a non-empty result) a trailing slash. Same
/// algorithm as botocore's `remove_dot_segments`.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query string: each parameter's name and value percent-decoded
/// then re-encoded with the SigV4 rules, sorted by encoded name then encoded
/// value, joined as `name=value` with `&` (a parameter without `=` gets an empty
/// value). For presigned requests `X-Amz-Signature` is left out.
pub(crate) fn canonical_query(query: &str, presigned: bool, omit_session_token: bool) -> String {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = param.split_once('=').unwrap_or((param, ""));
        let name: Vec<u8> = percent_decode_str(raw_name).collect();
        if presigned && name == b"X-Amz-Signature" {
            continue;
        }
        if omit_session_token && name == b"X-Amz-Security-Token" {
            continue;
        }
        let value: Vec<u8> = percent_decode_str(raw_value).collect();
        pairs.push((
            percent_encode(&name, UNRESERVED).to_string(),
            percent_encode(&value, UNRESERVED).to_string(),
        ));
    }
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_follow_botocore() {
        assert_eq!(remove_dot_segments("/example/.."), "/");
        assert_eq!(remove_dot_segments("/example1/example2/../.."), "/");
        assert_eq!(remove_dot_segments("/./"), "/");
        assert_eq!(remove_dot_segments("/./example"), "/example");
        assert_eq!(remove_dot_segments("//example//"), "/example/");
        assert_eq!(remove_dot_segments("//"), "/");
        assert_eq!(remove_dot_segments("/a/b/../c/"), "/a/c/");
        assert_eq!(remove_dot_segments("/a/b/.."), "/a");
    }

    #[test]
    fn header_values_are_trimmed_and_folded() {
        let mut out = String::new();
        push_folded(&mut out, "  value1\n  value2 \t  value3  ");
        assert_eq!(out, "value1 value2 value3");
    }

    #[test]
    fn s3_style_path_is_encoded_once() {
        let s3 = VerifyOptions::s3();
        assert_eq!(canonical_uri("/my%20key/a%3Ab", &s3), "/my%20key/a%3Ab");
        assert_eq!(canonical_uri("/a//b/../c", &s3), "/a//b/../c");
        let default = VerifyOptions::default();
        assert_eq!(
            canonical_uri("/my%20key/a%3Ab", &default),
            "/my%2520key/a%253Ab"
        );
    }
}
