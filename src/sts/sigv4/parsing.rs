//! Finding and parsing the signature of a request: the `Authorization` header
//! or the presigned `X-Amz-*` query parameters.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use percent_encoding::percent_decode_str;

use super::{ALGORITHM, AMZ_DATE_FORMAT, MAX_PRESIGN_EXPIRES_SECS, SigV4Error, SignedRequest};

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
    Header,
    /// Presigned URL: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
    /// `X-Amz-SignedHeaders`, `X-Amz-Signature` (and `X-Amz-Expires`) in the query.
    Query,
}

/// The credential scope `date/region/service/terminator` from the `Credential`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`, as sent (checked against the request date by `validate`).
    pub date: String,
    pub region: String,
    pub service: String,
    /// Should be `aws4_request` (checked by `validate`).
    pub terminator: String,
}

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

/// What [`parse`] learned from a request's signature. Needs no secret; the
/// caller uses `access_key_id` and `session_token` to find the secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    pub location: SignatureLocation,
    pub access_key_id: String,
    pub scope: CredentialScope,
    /// `X-Amz-Date` (header or query), else the `Date` header.
    pub request_time: DateTime<Utc>,
    /// Lower-case, sorted, de-duplicated.
    pub signed_headers: Vec<String>,
    /// The signature as sent (64 lower-case hex digits when well formed).
    pub signature: String,
    /// `X-Amz-Security-Token` header, else the `X-Amz-Security-Token` query parameter.
    pub session_token: Option<String>,
    /// `X-Amz-Expires` of a presigned URL (0..=604800 s), if present.
    pub expires: Option<chrono::Duration>,
}

impl SignatureInfo {
    /// The request time in the `YYYYMMDD'T'HHMMSS'Z'` form of `X-Amz-Date`.
    pub fn amz_date(&self) -> String {
        self.request_time.format(AMZ_DATE_FORMAT).to_string()
    }
}

const Q_ALGORITHM: &str = "X-Amz-Algorithm";
const Q_CREDENTIAL: &str = "X-Amz-Credential";
const Q_DATE: &str = "X-Amz-Date";
const Q_EXPIRES: &str = "X-Amz-Expires";
const Q_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const Q_SIGNATURE: &str = "X-Amz-Signature";
const Q_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

/// Finds the request's signature and parses it, without any secret and
/// without looking at the clock. Errors: [`SigV4Error::MissingAuthenticationToken`]
/// (no signature), [`SigV4Error::IncompleteSignature`] (malformed) and
/// [`SigV4Error::MalformedDate`].
///
/// An `Authorization` header that does not start with `AWS4-` is not a SigV4
/// signature (AWS answers `MissingAuthenticationToken` for it).
pub fn parse(req: &SignedRequest<'_>) -> Result<SignatureInfo, SigV4Error> {
    let header = req
        .header("authorization")
        .filter(|h| h.trim_start().starts_with("AWS4-"));
    let presigned = [Q_ALGORITHM, Q_CREDENTIAL, Q_SIGNATURE]
        .iter()
        .any(|name| query_param(req.query, name).is_some());
    match (header, presigned) {
        (Some(_), true) => Err(SigV4Error::incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        )),
        (Some(h), false) => parse_header(req, h),
        (None, true) => parse_query(req),
        (None, false) => Err(SigV4Error::MissingAuthenticationToken),
    }
}

fn parse_header(req: &SignedRequest<'_>, header: &str) -> Result<SignatureInfo, SigV4Error> {
    let trimmed = header.trim();
    let (algorithm, rest) = trimmed
        .split_once(|c: char| c.is_ascii_whitespace() || c == ',')
        .unwrap_or((trimmed, ""));

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = part.split_once('=') else {
            return Err(SigV4Error::incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    let date_header = req
        .header("x-amz-date")
        .map(|v| (v, true))
        .or_else(|| req.header("date").map(|v| (v, false)));

    // AWS lists every missing part at once, in this order, then echoes the header.
    let credential = credential.filter(|c| !c.is_empty());
    let signature = signature.filter(|s| !s.is_empty());
    let (Some(credential), Some(signed_headers), Some(signature), Some((date, is_amz_date))) =
        (credential, signed_headers, signature, date_header)
    else {
        let mut missing = Vec::new();
        if credential.is_none() {
            missing.push("Authorization header requires 'Credential' parameter.");
        }
        if signature.is_none() {
            missing.push("Authorization header requires 'Signature' parameter.");
        }
        if signed_headers.is_none() {
            missing.push("Authorization header requires 'SignedHeaders' parameter.");
        }
        if date_header.is_none() {
            missing.push(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            );
        }
        return Err(SigV4Error::incomplete(format!(
            "{} Authorization={header}",
            missing.join(" ")
        )));
    };

    let request_time = if is_amz_date {
        parse_amz_date(date.trim())?
    } else {
        parse_http_date(date)?
    };
    check_algorithm(algorithm)?;
    let (access_key_id, scope) = parse_credential(credential)?;

    let session_token = req
        .header("x-amz-security-token")
        .map(|t| t.trim().to_owned())
        .or_else(|| query_param(req.query, Q_SECURITY_TOKEN));

    Ok(SignatureInfo {
        location: SignatureLocation::Header,
        access_key_id,
        scope,
        request_time,
        signed_headers: split_signed_headers(signed_headers),
        signature: signature.to_owned(),
        session_token,
        expires: None,
    })
}

fn parse_query(req: &SignedRequest<'_>) -> Result<SignatureInfo, SigV4Error> {
    let algorithm = query_param(req.query, Q_ALGORITHM);
    let credential = query_param(req.query, Q_CREDENTIAL);
    let signature = query_param(req.query, Q_SIGNATURE);
    let signed_headers = query_param(req.query, Q_SIGNED_HEADERS);
    let date = query_param(req.query, Q_DATE);
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date)) =
        (algorithm, credential, signature, signed_headers, date)
    else {
        let missing: Vec<String> = [
            Q_ALGORITHM,
            Q_CREDENTIAL,
            Q_SIGNATURE,
            Q_SIGNED_HEADERS,
            Q_DATE,
        ]
        .iter()
        .filter(|name| query_param(req.query, name).is_none())
        .map(|name| format!("AWS query-string parameters must include '{name}'."))
        .collect();
        return Err(SigV4Error::incomplete(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    };

    let request_time = parse_amz_date(&date)?;
    check_algorithm(&algorithm)?;
    let expires = match query_param(req.query, Q_EXPIRES) {
        None => None,
        Some(raw) => Some(parse_expires(&raw)?),
    };
    let (access_key_id, scope) = parse_credential(&credential)?;
    let session_token = query_param(req.query, Q_SECURITY_TOKEN).or_else(|| {
        req.header("x-amz-security-token")
            .map(|t| t.trim().to_owned())
    });

    Ok(SignatureInfo {
        location: SignatureLocation::Query,
        access_key_id,
        scope,
        request_time,
        signed_headers: split_signed_headers(&signed_headers),
        signature,
        session_token,
        expires,
    })
}

/// The first value of query parameter `name` (exact, case-sensitive name),
/// percent-decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .find_map(|param| {
            let (raw_name, raw_value) = param.split_once('=').unwrap_or((param, ""));
            (percent_decode_str(raw_name).decode_utf8_lossy() == name).then(|| {
                percent_decode_str(raw_value)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
}

fn split_signed_headers(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn check_algorithm(algorithm: &str) -> Result<(), SigV4Error> {
    if algorithm == ALGORITHM {
        Ok(())
    } else {
        Err(SigV4Error::incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now)."
        )))
    }
}

fn parse_credential(credential: &str) -> Result<(String, CredentialScope), SigV4Error> {
    // AWS ignores trailing slashes here.
    let parts: Vec<&str> = credential.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, terminator] => Ok((
            (*akid).to_owned(),
            CredentialScope {
                date: (*date).to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
                terminator: (*terminator).to_owned(),
            },
        )),
        _ => Err(SigV4Error::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        ))),
    }
}

fn malformed_date(value: &str) -> SigV4Error {
    SigV4Error::MalformedDate {
        message: format!(
            "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ),
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'`, exactly 16 characters.
pub(crate) fn parse_amz_date(value: &str) -> Result<DateTime<Utc>, SigV4Error> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes.get(8) == Some(&b'T')
        && bytes.get(15) == Some(&b'Z')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit());
    if !shape_ok {
        return Err(malformed_date(value));
    }
    NaiveDateTime::parse_from_str(value, AMZ_DATE_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| malformed_date(value))
}

/// The HTTP `Date` header (IMF-fixdate, e.g. `Sun, 30 Aug 2015 12:36:00 GMT`).
fn parse_http_date(value: &str) -> Result<DateTime<Utc>, SigV4Error> {
    DateTime::parse_from_rfc2822(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| malformed_date(value))
}

fn parse_expires(raw: &str) -> Result<chrono::Duration, SigV4Error> {
    let Ok(seconds) = raw.trim().parse::<i64>() else {
        return Err(SigV4Error::incomplete("X-Amz-Expires should be a number"));
    };
    if seconds < 0 {
        return Err(SigV4Error::incomplete("X-Amz-Expires must be non-negative"));
    }
    if seconds > MAX_PRESIGN_EXPIRES_SECS {
        return Err(SigV4Error::incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than {MAX_PRESIGN_EXPIRES_SECS} seconds"
        )));
    }
    Ok(chrono::Duration::seconds(seconds))
}
