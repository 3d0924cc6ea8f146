//! SigV4 verification (`rolegate::sts::sigv4`) against the AWS test suites in
//! `../shared/corpora/sigv4-test-suite`, real botocore traffic captured in
//! `../shared/spec/aws-wire-protocols.md`, every error AWS reports, and a
//! property test (sign -> verify; any changed byte -> rejected).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use rolegate::sts::sigv4::{
    self, ExpiryKind, SigV4Error, SignatureInfo, SignatureLocation, SignedRequest, SigningParams,
    VerifyOptions,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// 2015-08-30T12:36:00Z, the suite's fixed time.
fn suite_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/sigv4-test-suite")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// A raw HTTP request as the suites write it, and a borrowed view of it.

#[derive(Debug, Clone)]
struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    /// Parses the suites' request files: request line (the target may hold raw
    /// spaces and UTF-8, `HTTP/1.1` may be missing), headers with obsolete line
    /// folding, a blank line, the body.
    fn parse(text: &str) -> Self {
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let request_line = lines.next().unwrap();
        let (method, rest) = request_line.split_once(' ').unwrap();
        let target = match rest.rsplit_once(' ') {
            Some((target, version)) if version.starts_with("HTTP/") => target,
            _ => rest,
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body_lines: Option<Vec<&str>> = None;
        for line in lines {
            if let Some(body) = body_lines.as_mut() {
                body.push(line);
            } else if line.is_empty() {
                body_lines = Some(Vec::new());
            } else if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().unwrap();
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.trim().to_owned(), value.to_owned()));
            }
        }
        RawRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: body_lines
                .map(|b| b.join("\n"))
                .unwrap_or_default()
                .into_bytes(),
        }
    }

    fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn with<R>(&self, f: impl FnOnce(&SignedRequest<'_>) -> R) -> R {
        let headers = self.header_pairs();
        let req = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            payload_sha256: Cow::Owned(sigv4::hash_payload(&self.body)),
        };
        f(&req)
    }

    fn parse_sig(&self) -> Result<SignatureInfo, SigV4Error> {
        self.with(sigv4::parse)
    }

    fn verify_at(
        &self,
        secret: &str,
        now: DateTime<Utc>,
        opts: &VerifyOptions,
    ) -> Result<SignatureInfo, SigV4Error> {
        self.with(|req| {
            let info = sigv4::parse(req)?;
            sigv4::verify(req, &info, secret, now, opts)?;
            Ok(info)
        })
    }

    fn canonical(&self, info: &SignatureInfo, opts: &VerifyOptions) -> String {
        self.with(|req| sigv4::canonical_request(req, info, opts))
    }

    fn without_header(&self, name: &str) -> Self {
        let mut out = self.clone();
        out.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        out
    }

    fn set_header(&mut self, name: &str, value: &str) {
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value.to_owned(),
            None => self.headers.push((name.to_owned(), value.to_owned())),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Signs with the module's header signer and returns the signed request.
    fn signed(&self, params: &SigningParams<'_>, opts: &VerifyOptions) -> Self {
        let added = self.with(|req| sigv4::sign_request(req, params, opts));
        let mut out = self.clone();
        out.headers.extend(added);
        out
    }

    /// Presigns with the module's signer and returns the presigned request.
    fn presigned(
        &self,
        params: &SigningParams<'_>,
        expires: Duration,
        opts: &VerifyOptions,
    ) -> Self {
        let query = self.with(|req| sigv4::presign_query(req, params, expires, opts));
        RawRequest {
            query,
            ..self.clone()
        }
    }
}

fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|p| {
        p.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

fn authorization_signature(authz: &str) -> &str {
    authz.rsplit_once("Signature=").unwrap().1.trim()
}

fn params<'a>(
    akid: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    region: &'a str,
    service: &'a str,
    time: DateTime<Utc>,
) -> SigningParams<'a> {
    SigningParams {
        access_key_id: akid,
        secret_access_key: secret,
        session_token: token,
        region,
        service,
        time,
    }
}

fn suite_params(token: Option<&str>) -> SigningParams<'_> {
    params(AKID, SECRET, token, "us-east-1", "service", suite_time())
}

// ---------------------------------------------------------------------------
// classic-format: the AWS-published 2015 suite (botocore's copy), 34 cases.

fn classic_case_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.join(format!("{name}.req")).is_file() {
                out.push(path.clone());
            }
            classic_case_dirs(&path, out);
        }
    }
}

#[test]
fn classic_suite_canonical_request_string_to_sign_and_verification() {
    let mut dirs = Vec::new();
    classic_case_dirs(&suite_dir().join("classic-format"), &mut dirs);
    dirs.sort();
    let opts = VerifyOptions::default();
    let mut ran = 0;
    let mut signer_checked = 0;
    let mut repaired_sreq = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let file = |ext: &str| read(&dir.join(format!("{name}.{ext}")));
        let unsigned = RawRequest::parse(&file("req"));
        let mut signed = RawRequest::parse(&file("sreq"));
        let expected_creq = file("creq");
        let expected_sts = file("sts");
        let expected_authz = file("authz");

        // Upstream defect: this case's .sreq carries a garbage signature (a
        // slice of its own session token) while .authz has the real one. The
        // shipped .sreq must be rejected; verify it with the .authz value.
        if signed.header("authorization").map(str::trim) != Some(expected_authz.as_str()) {
            assert_eq!(
                name, "get-vanilla-with-session-token",
                "unexpected .sreq/.authz mismatch"
            );
            let err = signed.verify_at(SECRET, suite_time(), &opts).unwrap_err();
            assert_eq!(err.code(), "SignatureDoesNotMatch");
            signed.set_header("Authorization", &expected_authz);
            repaired_sreq += 1;
        }

        let info = signed.parse_sig().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.location, SignatureLocation::Header, "{name}");
        assert_eq!(info.access_key_id, AKID, "{name}");
        assert_eq!(info.request_time, suite_time(), "{name}");
        assert_eq!(
            info.scope.to_string(),
            "20150830/us-east-1/service/aws4_request"
        );

        // get-vanilla-with-session-token: the signer adds the (signed) token,
        // so the .req does not carry it.
        let added_token = info
            .session_token
            .as_deref()
            .filter(|_| unsigned.header("x-amz-security-token").is_none())
            .filter(|_| {
                info.signed_headers
                    .iter()
                    .any(|h| h == "x-amz-security-token")
            });
        let mut unsigned_with_token = unsigned.clone();
        if let Some(token) = added_token {
            unsigned_with_token.set_header("X-Amz-Security-Token", token);
        }

        // The canonical request of the unsigned request and of the signed one.
        assert_eq!(
            unsigned_with_token.canonical(&info, &opts),
            expected_creq,
            "{name}: .req canonical"
        );
        assert_eq!(
            signed.canonical(&info, &opts),
            expected_creq,
            "{name}: .sreq canonical"
        );
        assert_eq!(
            sigv4::string_to_sign(&info, &expected_creq),
            expected_sts,
            "{name}: string to sign"
        );
        assert_eq!(info.signature, authorization_signature(&expected_authz));

        signed
            .verify_at(SECRET, suite_time(), &opts)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", e.detailed_message()));

        // Our signer reproduces AWS's Authorization header from the .req
        // (X-Amz-Date is added by the signer itself).
        let resigned = unsigned
            .without_header("x-amz-date")
            .signed(&suite_params(added_token), &opts);
        assert_eq!(
            resigned.header("authorization"),
            Some(expected_authz.as_str()),
            "{name}"
        );
        signer_checked += 1;
        ran += 1;
    }
    assert_eq!(
        ran, 34,
        "classic-format cases run (corpus missing or changed?)"
    );
    assert_eq!(signer_checked, 34);
    assert_eq!(repaired_sreq, 1);
}

#[test]
fn classic_suite_rejects_every_case_with_the_wrong_secret_or_a_tampered_body() {
    let mut dirs = Vec::new();
    classic_case_dirs(&suite_dir().join("classic-format"), &mut dirs);
    let opts = VerifyOptions::default();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let mut signed = RawRequest::parse(&read(&dir.join(format!("{name}.sreq"))));
        signed.set_header("Authorization", &read(&dir.join(format!("{name}.authz"))));
        signed.verify_at(SECRET, suite_time(), &opts).unwrap();
        let err = signed
            .verify_at(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ",
                suite_time(),
                &opts,
            )
            .unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch", "{name}");
        let mut tampered = signed.clone();
        tampered.body.push(b'x');
        let err = tampered.verify_at(SECRET, suite_time(), &opts).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch", "{name}");
    }
    assert_eq!(dirs.len(), 34);
}

// ---------------------------------------------------------------------------
// crt-format/v4: aws-c-auth's suite, 38 cases x (header, query).
// crt-format/v4a is SigV4A (ECDSA P-256, region sets): not supported by this
// verifier (AWS STS does not accept it either), so it is skipped on purpose.

struct CrtContext {
    secret: String,
    token: Option<String>,
    region: String,
    service: String,
    time: DateTime<Utc>,
    normalize: bool,
    sign_body: bool,
    omit_session_token: bool,
    expires: i64,
}

fn crt_context(dir: &Path) -> CrtContext {
    let v: serde_json::Value = serde_json::from_str(&read(&dir.join("context.json"))).unwrap();
    let creds = &v["credentials"];
    assert_eq!(creds["access_key_id"], AKID);
    CrtContext {
        secret: creds["secret_access_key"].as_str().unwrap().to_owned(),
        token: creds["token"].as_str().map(str::to_owned),
        region: v["region"].as_str().unwrap().to_owned(),
        service: v["service"].as_str().unwrap().to_owned(),
        time: DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc),
        normalize: v["normalize"].as_bool().unwrap(),
        sign_body: v["sign_body"].as_bool().unwrap_or(false),
        omit_session_token: v["omit_session_token"].as_bool().unwrap_or(false),
        expires: v["expiration_in_seconds"].as_i64().unwrap(),
    }
}

#[test]
fn crt_v4_suite_header_and_query_forms() {
    let root = suite_dir().join("crt-format/v4");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut header_ran = 0;
    let mut query_ran = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let ctx = crt_context(dir);
        let opts = VerifyOptions {
            normalize_path: ctx.normalize,
            allow_unsigned_query_session_token: ctx.omit_session_token,
            region: Some(ctx.region.clone()),
            service: Some(ctx.service.clone()),
            ..VerifyOptions::default()
        };
        let unsigned = RawRequest::parse(&read(&dir.join("request.txt")));
        // A token the signer must sign (post-sts-header-after adds it afterwards).
        let signing_token = ctx.token.as_deref().filter(|_| !ctx.omit_session_token);
        let signing = params(
            AKID,
            &ctx.secret,
            signing_token,
            &ctx.region,
            &ctx.service,
            ctx.time,
        );

        for variant in ["header", "query"] {
            let file = |suffix: &str| read(&dir.join(format!("{variant}-{suffix}")));
            let signed = RawRequest::parse(&file("signed-request.txt"));
            let expected_creq = file("canonical-request.txt");
            let expected_sts = file("string-to-sign.txt");
            let expected_sig = file("signature.txt");

            let info = signed
                .parse_sig()
                .unwrap_or_else(|e| panic!("{name}/{variant}: {e}"));
            assert_eq!(info.signature, expected_sig.trim(), "{name}/{variant}");
            assert_eq!(info.request_time, ctx.time);
            assert_eq!(
                info.session_token.as_deref(),
                ctx.token.as_deref(),
                "{name}/{variant}: session token found"
            );

            // With omit_session_token the query token was appended after
            // signing, so it is not part of the canonical request.
            let for_canonical = if variant == "query" && ctx.omit_session_token {
                let mut r = signed.clone();
                r.query = r
                    .query
                    .split('&')
                    .filter(|p| !p.starts_with("X-Amz-Security-Token="))
                    .collect::<Vec<_>>()
                    .join("&");
                r
            } else {
                signed.clone()
            };
            let creq = for_canonical.canonical(&info, &opts);
            assert_eq!(creq, expected_creq, "{name}/{variant}: canonical request");
            assert_eq!(
                sigv4::string_to_sign(&info, &creq),
                expected_sts,
                "{name}/{variant}: string to sign"
            );
            signed
                .verify_at(&ctx.secret, ctx.time, &opts)
                .unwrap_or_else(|e| panic!("{name}/{variant}: {e}\n{}", e.detailed_message()));

            // Our signer produces the same signature from request.txt.
            let ours = if variant == "header" {
                assert_eq!(info.location, SignatureLocation::Header);
                assert_eq!(info.expires, None);
                let mut req = unsigned.clone();
                if ctx.sign_body {
                    let hash = sigv4::hash_payload(&req.body);
                    req.headers.push(("X-Amz-Content-Sha256".to_owned(), hash));
                }
                let signed_by_us = req.signed(&signing, &opts);
                authorization_signature(signed_by_us.header("authorization").unwrap()).to_owned()
            } else {
                assert_eq!(info.location, SignatureLocation::Query);
                assert_eq!(info.expires, Some(Duration::seconds(ctx.expires)));
                let presigned = unsigned.presigned(&signing, Duration::seconds(ctx.expires), &opts);
                query_value(&presigned.query, "X-Amz-Signature")
                    .unwrap()
                    .to_owned()
            };
            assert_eq!(ours, expected_sig.trim(), "{name}/{variant}: our signer");

            if variant == "header" {
                header_ran += 1;
            } else {
                query_ran += 1;
            }
        }

        // The post-signing query token is only accepted when allowed.
        if ctx.omit_session_token {
            let signed = RawRequest::parse(&read(&dir.join("query-signed-request.txt")));
            let strict = VerifyOptions {
                allow_unsigned_query_session_token: false,
                ..opts.clone()
            };
            let err = signed
                .verify_at(&ctx.secret, ctx.time, &strict)
                .unwrap_err();
            assert_eq!(err.code(), "SignatureDoesNotMatch", "{name}");
        }
    }
    assert_eq!(header_ran, 38, "crt v4 header cases run");
    assert_eq!(query_ran, 38, "crt v4 query cases run");

    // v4a exists in the corpus but is deliberately not run (SigV4A/ECDSA).
    let v4a = std::fs::read_dir(suite_dir().join("crt-format/v4a"))
        .unwrap()
        .count();
    assert_eq!(
        v4a, 40,
        "crt v4a cases present (skipped: SigV4A is not supported)"
    );
}

#[test]
fn crt_v4_path_normalization_pairs_differ_only_when_normalizing() {
    let root = suite_dir().join("crt-format/v4");
    let mut pairs = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(base) = name.strip_suffix("-normalized") else {
            continue;
        };
        let other = root.join(format!("{base}-unnormalized"));
        let signed = RawRequest::parse(&read(&dir.join("header-signed-request.txt")));
        let info = signed.parse_sig().unwrap();
        let unnormalized = VerifyOptions {
            normalize_path: false,
            ..VerifyOptions::default()
        };
        assert_eq!(
            signed.canonical(&info, &unnormalized),
            read(&other.join("header-canonical-request.txt")),
            "{name}: the same request without normalization gives the -unnormalized canonical request"
        );
        pairs += 1;
    }
    assert_eq!(pairs, 7);
}

// ---------------------------------------------------------------------------
// smithy-rs-extra: the double-encoding cases.

fn first_line_after_method(creq: &str) -> &str {
    creq.lines().nth(1).unwrap()
}

#[test]
fn smithy_double_url_encode_lambda_arn() {
    let dir = suite_dir().join("smithy-rs-extra/double-url-encode");
    let signed = RawRequest::parse(&read(&dir.join("header-signed-request.txt")));
    let info = signed.parse_sig().unwrap();
    assert_eq!(
        info.scope.to_string(),
        "20210511/us-east-2/lambda/aws4_request"
    );
    let opts = VerifyOptions::default();
    let creq = signed.canonical(&info, &opts);
    assert_eq!(creq, read(&dir.join("header-canonical-request.txt")));
    assert_eq!(
        sigv4::string_to_sign(&info, &creq),
        read(&dir.join("header-string-to-sign.txt")).trim_end()
    );
    // The unsigned request gives the same canonical request.
    let unsigned = RawRequest::parse(&read(&dir.join("request.txt")));
    assert_eq!(unsigned.canonical(&info, &opts), creq);
    // S3 rules would encode once: `%3A` stays `%3A`.
    assert!(
        first_line_after_method(&signed.canonical(&info, &VerifyOptions::s3()))
            .contains("arn%3Aaws%3Alambda")
    );
}

#[test]
fn smithy_double_encode_path_verifies_with_its_credentials() {
    let dir = suite_dir().join("smithy-rs-extra/double-encode-path");
    let signed = RawRequest::parse(&read(&dir.join("header-signed-request.txt")));
    let info = signed.parse_sig().unwrap();
    assert_eq!(info.access_key_id, "ANOTREAL");
    let opts = VerifyOptions::default();
    // The upstream file's x-amz-date line is inconsistent (see README); the URI
    // line is the point of the case.
    assert_eq!(
        first_line_after_method(&signed.canonical(&info, &opts)),
        first_line_after_method(&read(&dir.join("header-canonical-request.txt")))
    );
    assert_eq!(
        first_line_after_method(&signed.canonical(&info, &opts)),
        "/test/%40connections/JBDvjfGEIAMCERw%253D"
    );
    signed
        .verify_at("notrealrnrELgWzOk3IfjzDKtFBhDby", suite_time(), &opts)
        .unwrap();
    assert_eq!(
        info.signature,
        "57d157672191bac40bae387e48bbe14b15303c001fdbb01f4abf295dccb09705"
    );
}

#[test]
fn smithy_get_space_normalized_wire_path_is_encoded_again() {
    // smithy-rs's variant holds the path as it travels on the wire
    // (`/example%20space/`). A non-S3 verifier encodes that again, exactly as
    // botocore does when signing it; S3 rules decode then encode once.
    let dir = suite_dir().join("smithy-rs-extra/get-space-normalized");
    let req = RawRequest::parse(&read(&dir.join("request.txt")));
    assert_eq!(req.path, "/example%20space/");
    let signed = req.signed(&suite_params(None), &VerifyOptions::default());
    let info = signed
        .verify_at(SECRET, suite_time(), &VerifyOptions::default())
        .unwrap();
    assert_eq!(
        first_line_after_method(&signed.canonical(&info, &VerifyOptions::default())),
        "/example%2520space/"
    );
    assert_eq!(
        first_line_after_method(&signed.canonical(&info, &VerifyOptions::s3())),
        "/example%20space/"
    );
    // Signed under one rule set, rejected under the other.
    let err = signed
        .verify_at(SECRET, suite_time(), &VerifyOptions::s3())
        .unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
}

// ---------------------------------------------------------------------------
// Real botocore / AWS CLI requests captured in the wire-protocol spec.

/// `(access key id, secret)` pairs handed out in the spec's captured responses.
fn spec_secrets(spec: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let patterns = [
        ("\"accessKeyId\": \"", "\"secretAccessKey\": \"", '"'),
        ("\"AccessKeyId\": \"", "\"SecretAccessKey\": \"", '"'),
        ("<AccessKeyId>", "<SecretAccessKey>", '<'),
    ];
    for (akid_marker, secret_marker, end) in patterns {
        for (i, _) in spec.match_indices(akid_marker) {
            let rest = &spec[i + akid_marker.len()..];
            let akid = &rest[..rest.find(end).unwrap()];
            if let Some(j) = rest.find(secret_marker).filter(|j| *j < 200) {
                let rest = &rest[j + secret_marker.len()..];
                let secret = &rest[..rest.find(end).unwrap()];
                if secret != "..." {
                    out.insert(akid.to_owned(), secret.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn botocore_requests_captured_in_the_spec_verify() {
    let spec =
        read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/aws-wire-protocols.md"));
    let secrets = spec_secrets(&spec);
    let mut verified = 0;
    let mut seen_signed = 0;
    for block in spec.split("```http\n").skip(1) {
        let block = &block[..block.find("\n```").unwrap()];
        if !block.contains("Authorization: AWS4-HMAC-SHA256") {
            continue;
        }
        seen_signed += 1;
        let mut req = RawRequest::parse(block);
        if let Some(len) = req.header("content-length") {
            req.body.truncate(len.trim().parse().unwrap());
        }
        let info = req.parse_sig().unwrap();
        let Some(secret) = secrets.get(&info.access_key_id) else {
            continue; // the static IAM user's secret is not in the spec
        };
        let opts = VerifyOptions {
            service: Some("sts".to_owned()),
            ..VerifyOptions::default()
        };
        req.verify_at(secret, info.request_time, &opts)
            .unwrap_or_else(|e| panic!("{e}\n{}\n{block}", e.detailed_message()));
        assert_eq!(
            info.session_token.is_some(),
            info.access_key_id.starts_with("ASIA")
        );
        // Tampering with the form body breaks it.
        let mut tampered = req.clone();
        tampered.body = b"Action=GetCallerIdentity&Version=2011-06-16".to_vec();
        assert_eq!(
            tampered
                .verify_at(secret, info.request_time, &opts)
                .unwrap_err()
                .code(),
            "SignatureDoesNotMatch"
        );
        verified += 1;
    }
    assert!(
        seen_signed >= 10,
        "signed requests in the spec: {seen_signed}"
    );
    assert_eq!(
        verified, 13,
        "botocore requests with a known secret verified"
    );
}

// ---------------------------------------------------------------------------
// Errors, as AWS reports them.

const T0: &str = "20150830T123600Z";

/// An STS GetCallerIdentity request as botocore sends it, signed at the suite time.
fn sts_request(token: Option<&str>) -> RawRequest {
    let unsigned = RawRequest {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: vec![
            ("Host".to_owned(), "127.0.0.1:18080".to_owned()),
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
            ),
            ("User-Agent".to_owned(), "aws-cli/1.46.3".to_owned()),
        ],
        body: b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    };
    unsigned.signed(
        &params(AKID, SECRET, token, "us-east-1", "sts", suite_time()),
        &VerifyOptions::default(),
    )
}

fn presigned_request(expires: i64) -> RawRequest {
    presigned_request_for("sts", expires)
}

fn presigned_request_for(service: &str, expires: i64) -> RawRequest {
    let unsigned = RawRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: "Action=GetCallerIdentity&Version=2011-06-15".to_owned(),
        headers: vec![("Host".to_owned(), "sts.example.test".to_owned())],
        body: Vec::new(),
    };
    unsigned.presigned(
        &params(
            AKID,
            SECRET,
            Some("tok/en+=="),
            "us-east-1",
            service,
            suite_time(),
        ),
        Duration::seconds(expires),
        &VerifyOptions::default(),
    )
}

fn at(offset_secs: i64) -> DateTime<Utc> {
    suite_time() + Duration::seconds(offset_secs)
}

fn expect_err(req: &RawRequest, now: DateTime<Utc>) -> SigV4Error {
    req.verify_at(SECRET, now, &VerifyOptions::default())
        .unwrap_err()
}

#[test]
fn a_correctly_signed_sts_request_verifies_and_exposes_its_parts() {
    let req = sts_request(Some("session-token-value"));
    let info = req
        .verify_at(SECRET, suite_time(), &VerifyOptions::default())
        .unwrap();
    assert_eq!(info.access_key_id, AKID);
    assert_eq!(info.scope.date, "20150830");
    assert_eq!(info.scope.region, "us-east-1");
    assert_eq!(info.scope.service, "sts");
    assert_eq!(info.amz_date(), T0);
    assert_eq!(info.session_token.as_deref(), Some("session-token-value"));
    assert_eq!(
        info.signed_headers,
        [
            "content-type",
            "host",
            "user-agent",
            "x-amz-date",
            "x-amz-security-token"
        ]
    );
    assert_eq!(info.location, SignatureLocation::Header);
    assert_eq!(info.expires, None);

    // The cache-friendly path gives the same answer.
    let key = sigv4::signing_key(SECRET, "20150830", "us-east-1", "sts");
    req.with(|r| {
        sigv4::verify_with_signing_key(r, &info, &key, suite_time(), &VerifyOptions::default())
    })
    .unwrap();
    let wrong_key = sigv4::signing_key(SECRET, "20150830", "us-east-1", "iam");
    let err = req
        .with(|r| {
            sigv4::verify_with_signing_key(
                r,
                &info,
                &wrong_key,
                suite_time(),
                &VerifyOptions::default(),
            )
        })
        .unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
}

#[test]
fn signature_mismatch_is_403_with_aws_message_and_canonical_detail() {
    let mut req = sts_request(None);
    let authz = req.header("authorization").unwrap().to_owned();
    let last = authz.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &authz[..authz.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    req.set_header("Authorization", &flipped);
    let err = expect_err(&req, suite_time());
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert_eq!(err.http_status(), 403);
    assert_eq!(
        err.message(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    assert_eq!(err.to_string(), err.message());
    let detail = err.detailed_message();
    assert!(detail.contains("\n\nThe Canonical String for this request should have been\n'POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:127.0.0.1:18080\n"), "{detail}");
    assert!(detail.contains("\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/sts/aws4_request\n"), "{detail}");
}

#[test]
fn any_modified_part_or_wrong_secret_is_signature_does_not_match() {
    let req = sts_request(Some("tok"));
    let check = |r: &RawRequest, what: &str| {
        let err = expect_err(r, suite_time());
        assert!(
            matches!(err, SigV4Error::SignatureDoesNotMatch { .. }),
            "{what}: {err:?}"
        );
    };
    let mut r = req.clone();
    r.set_header("Content-Type", "application/json");
    check(&r, "header");
    let mut r = req.clone();
    r.set_header("X-Amz-Security-Token", "other-token");
    check(&r, "session token");
    let mut r = req.clone();
    r.query = "Action=AssumeRole".to_owned();
    check(&r, "query");
    let mut r = req.clone();
    r.path = "/other".to_owned();
    check(&r, "path");
    let mut r = req.clone();
    r.method = "PUT".to_owned();
    check(&r, "method");
    let mut r = req.clone();
    r.body = b"Action=GetCallerIdentity&Version=2011-06-15&X=1".to_vec();
    check(&r, "body");
    let mut r = req.clone();
    r.set_header("Host", "127.0.0.1:18081");
    check(&r, "host");
    let err = req
        .verify_at("not-the-secret", suite_time(), &VerifyOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");

    // Unsigned headers may change; header whitespace and case do not matter.
    let mut r = req.clone();
    r.headers
        .push(("amz-sdk-request".to_owned(), "attempt=2".to_owned()));
    r.set_header("User-Agent", "  aws-cli/1.46.3  ");
    for h in r.headers.iter_mut() {
        h.0 = h.0.to_ascii_uppercase();
    }
    r.verify_at(SECRET, suite_time(), &VerifyOptions::default())
        .unwrap();
}

#[test]
fn clock_skew_uses_aws_wording_for_expired_and_future_requests() {
    let req = sts_request(None);
    // The brief's example: 12:51 is 15 minutes later; 5 minutes of skew allowed.
    let err = expect_err(&req, at(15 * 60));
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124600Z (20150830T125100Z - 5 min.)"
    );
    assert!(matches!(
        err,
        SigV4Error::RequestExpired {
            kind: ExpiryKind::SignatureExpired,
            ..
        }
    ));
    // Real STS answers SignatureDoesNotMatch / 403 for this (see error.rs).
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert_eq!(err.http_status(), 403);

    let err = expect_err(&req, at(6 * 60));
    assert_eq!(
        err.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T124200Z - 5 min.)"
    );
    let err = expect_err(&req, at(-6 * 60));
    assert_eq!(
        err.message(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z (20150830T123000Z + 5 min.)"
    );
    assert!(matches!(
        err,
        SigV4Error::RequestExpired {
            kind: ExpiryKind::SignatureNotYetCurrent,
            ..
        }
    ));

    // The window is inclusive.
    let opts = VerifyOptions::default();
    req.verify_at(SECRET, at(5 * 60), &opts).unwrap();
    req.verify_at(SECRET, at(-5 * 60), &opts).unwrap();
    expect_err(&req, at(5 * 60 + 1));

    // A configurable window, worded as AWS does with its own 15 minutes.
    let wide = VerifyOptions {
        max_clock_skew: Duration::minutes(15),
        ..VerifyOptions::default()
    };
    req.verify_at(SECRET, at(14 * 60), &wide).unwrap();
    let err = req.verify_at(SECRET, at(16 * 60), &wide).unwrap_err();
    assert_eq!(
        err.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)"
    );
}

#[test]
fn presigned_urls_are_valid_from_date_until_expiry() {
    let req = presigned_request(60);
    let info = req.parse_sig().unwrap();
    assert_eq!(info.location, SignatureLocation::Query);
    assert_eq!(info.expires, Some(Duration::seconds(60)));
    assert_eq!(info.session_token.as_deref(), Some("tok/en+=="));
    assert_eq!(info.signed_headers, ["host"]);
    assert!(req.query.starts_with("Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request&"));
    assert!(
        req.query
            .contains("&X-Amz-Security-Token=tok%2Fen%2B%3D%3D&")
    );

    let opts = VerifyOptions::default();
    req.verify_at(SECRET, at(0), &opts).unwrap();
    req.verify_at(SECRET, at(60), &opts).unwrap();
    req.verify_at(SECRET, at(-5 * 60), &opts).unwrap();

    // STS does not honour X-Amz-Expires: a presigned URL is good for 15 minutes from
    // its date (aws-iam-authenticator's tokens say 60 s and are used for 14 minutes),
    // then gets the answer of a stale signature (SignatureDoesNotMatch "Signature
    // expired").
    req.verify_at(SECRET, at(61), &opts).unwrap();
    req.verify_at(SECRET, at(15 * 60), &opts).unwrap();
    let err = expect_err(&req, at(15 * 60 + 1));
    assert_eq!(
        err,
        SigV4Error::RequestExpired {
            kind: ExpiryKind::SignatureExpired,
            message: "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)".to_owned()
        }
    );
    assert_eq!(
        (err.code(), err.http_status()),
        ("SignatureDoesNotMatch", 403)
    );

    let err = expect_err(&req, at(-6 * 60));
    assert!(
        err.message()
            .starts_with("Signature not yet current: 20150830T123600Z")
    );

    // A URL that claims a week lives those 15 minutes too.
    let week = presigned_request(604_800);
    week.verify_at(SECRET, at(15 * 60), &opts).unwrap();
    let err = expect_err(&week, at(15 * 60 + 1));
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert!(
        err.message().ends_with("(20150830T125101Z - 15 min.)"),
        "{err}"
    );

    // S3 honours X-Amz-Expires up to a week and answers AccessDenied "Request has expired".
    let s3 = presigned_request_for("s3", 60);
    s3.verify_at(SECRET, at(60), &opts).unwrap();
    let err = expect_err(&s3, at(61));
    assert_eq!(
        err,
        SigV4Error::RequestExpired {
            kind: ExpiryKind::PresignedUrlExpired,
            message: "Request has expired".to_owned()
        }
    );
    assert_eq!((err.code(), err.http_status()), ("AccessDenied", 403));
    let week = presigned_request_for("s3", 604_800);
    week.verify_at(SECRET, at(604_800), &opts).unwrap();
    assert_eq!(expect_err(&week, at(604_801)).code(), "AccessDenied");

    // The signature is bound to the query: a changed parameter fails.
    let mut r = req.clone();
    r.query = r.query.replace("Version=2011-06-15", "Version=2011-06-16");
    assert_eq!(expect_err(&r, at(0)).code(), "SignatureDoesNotMatch");
    let mut r = req.clone();
    r.query = r.query.replace("X-Amz-Expires=60", "X-Amz-Expires=600");
    assert_eq!(expect_err(&r, at(0)).code(), "SignatureDoesNotMatch");
    let mut r = req.clone();
    r.query = r.query.replace("tok%2Fen", "tok%2Fem");
    assert_eq!(expect_err(&r, at(0)).code(), "SignatureDoesNotMatch");
}

#[test]
fn presigned_expires_must_be_a_number_up_to_a_week() {
    let req = presigned_request(60);
    let cases = [
        (
            "X-Amz-Expires=604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ),
        ("X-Amz-Expires=abc", "X-Amz-Expires should be a number"),
        ("X-Amz-Expires=-1", "X-Amz-Expires must be non-negative"),
    ];
    for (replacement, message) in cases {
        let mut r = req.clone();
        r.query = r.query.replace("X-Amz-Expires=60", replacement);
        let err = r.parse_sig().unwrap_err();
        assert_eq!(
            err,
            SigV4Error::IncompleteSignature {
                message: message.to_owned()
            }
        );
        assert_eq!(
            (err.code(), err.http_status()),
            ("IncompleteSignature", 400)
        );
    }
}

#[test]
fn presigned_query_missing_parameters_are_named() {
    let req = presigned_request(60);
    let mut r = req.clone();
    r.query = r
        .query
        .split('&')
        .filter(|p| !p.starts_with("X-Amz-Credential=") && !p.starts_with("X-Amz-Date="))
        .collect::<Vec<_>>()
        .join("&");
    let err = r.parse_sig().unwrap_err();
    assert_eq!(
        err.message(),
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters."
    );
    assert_eq!(err.code(), "IncompleteSignature");

    // A header signature and a presigned query together are refused.
    let mut both = req.clone();
    both.headers.push((
        "Authorization".to_owned(),
        sts_request(None)
            .header("authorization")
            .unwrap()
            .to_owned(),
    ));
    let err = both.parse_sig().unwrap_err();
    assert_eq!(err.code(), "IncompleteSignature");
    assert!(err.message().starts_with("Only one auth mechanism allowed"));
}

fn with_authorization(value: &str) -> RawRequest {
    let mut r = sts_request(None);
    r.set_header("Authorization", value);
    r
}

#[test]
fn incomplete_authorization_headers_name_what_is_missing() {
    let sig = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request";
    let cases = [
        (
            format!("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, {sig}"),
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, {sig}"),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date"),
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 ".to_owned(),
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
        ),
    ];
    for (header, missing) in cases {
        let err = with_authorization(&header).parse_sig().unwrap_err();
        assert_eq!(err.code(), "IncompleteSignature", "{header}");
        assert_eq!(err.http_status(), 400);
        assert_eq!(err.message(), format!("{missing} Authorization={header}"));
    }

    // No date at all.
    let r = sts_request(None).without_header("x-amz-date");
    let err = r.parse_sig().unwrap_err();
    assert!(
        err.message().starts_with(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential="
        ),
        "{err}"
    );

    // Spacing is tolerated as AWS does; a part without `=` is not.
    let signed = sts_request(None);
    let authz = signed.header("authorization").unwrap();
    let squeezed = authz
        .replace(", ", ",")
        .replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256   ");
    let mut r = signed.clone();
    r.set_header("Authorization", &squeezed);
    r.verify_at(SECRET, suite_time(), &VerifyOptions::default())
        .unwrap();
    let header = format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders, {sig}");
    let err = with_authorization(&header).parse_sig().unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
        )
    );
}

#[test]
fn unsupported_algorithm_and_bad_credentials_are_incomplete() {
    let signed = sts_request(None);
    let authz = signed.header("authorization").unwrap();
    let err = with_authorization(&authz.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"))
        .parse_sig()
        .unwrap_err();
    assert_eq!(err.code(), "IncompleteSignature");
    assert_eq!(
        err.message(),
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now)."
    );

    let err = with_authorization(
        &authz.replace("/us-east-1/sts/aws4_request", "/us-east-1/aws4_request"),
    )
    .parse_sig()
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20150830/us-east-1/aws4_request'"
    );

    // Not SigV4 at all.
    for value in ["Bearer abc.def.ghi", "AWS AKIDEXAMPLE:c2lnbmF0dXJl", ""] {
        let err = with_authorization(value).parse_sig().unwrap_err();
        assert_eq!(err, SigV4Error::MissingAuthenticationToken, "{value:?}");
    }
}

#[test]
fn no_signature_at_all_is_missing_authentication_token() {
    let r = sts_request(None).without_header("authorization");
    let err = r.parse_sig().unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthenticationToken);
    assert_eq!(err.code(), "MissingAuthenticationToken");
    assert_eq!(err.http_status(), 403);
    assert_eq!(err.message(), "Request is missing Authentication Token");
}

#[test]
fn malformed_dates_are_rejected_with_aws_wording() {
    let mut r = sts_request(None);
    r.set_header("X-Amz-Date", "2015-08-30T12:36:00Z");
    let err = r.parse_sig().unwrap_err();
    assert!(matches!(err, SigV4Error::MalformedDate { .. }));
    assert_eq!(
        (err.code(), err.http_status()),
        ("IncompleteSignature", 400)
    );
    assert_eq!(
        err.message(),
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
    for bad in [
        "20150830T123600",
        "20151330T123600Z",
        "2015083OT123600Z",
        "+0150830T123600Z",
    ] {
        r.set_header("X-Amz-Date", bad);
        assert!(
            matches!(r.parse_sig().unwrap_err(), SigV4Error::MalformedDate { .. }),
            "{bad}"
        );
    }
}

#[test]
fn scope_date_must_match_request_date() {
    // Signed correctly, but with a credential scope dated the next day.
    let req = sts_request(None);
    let info = req.parse_sig().unwrap();
    let mut other_day = info.clone();
    other_day.scope.date = "20150831".to_owned();
    let creq = req.canonical(&other_day, &VerifyOptions::default());
    let sts = sigv4::string_to_sign(&other_day, &creq);
    let key = sigv4::signing_key(SECRET, "20150831", "us-east-1", "sts");
    let sig = sigv4::compute_signature(&key, &sts);
    let mut r = req.clone();
    r.set_header(
        "Authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/sts/aws4_request, SignedHeaders={}, Signature={sig}",
            info.signed_headers.join(";")
        ),
    );
    let err = expect_err(&r, suite_time());
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert_eq!(
        err.message(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != '20150830', from '20150830T123600Z'."
    );
}

#[test]
fn scope_region_service_and_terminator_are_checked() {
    let req = sts_request(None);
    let opts = VerifyOptions {
        region: Some("eu-west-1".to_owned()),
        service: Some("iam".to_owned()),
        ..VerifyOptions::default()
    };
    let err = req.verify_at(SECRET, suite_time(), &opts).unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert_eq!(
        err.message(),
        "Credential should be scoped to a valid region, not 'us-east-1'. Credential should be scoped to correct service: 'iam'."
    );
    let matching = VerifyOptions {
        region: Some("us-east-1".to_owned()),
        service: Some("sts".to_owned()),
        ..VerifyOptions::default()
    };
    req.verify_at(SECRET, suite_time(), &matching).unwrap();

    let authz = req
        .header("authorization")
        .unwrap()
        .replace("aws4_request", "aws5_request");
    let err = with_authorization(&authz)
        .verify_at(SECRET, suite_time(), &VerifyOptions::default())
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
    );
}

#[test]
fn host_must_be_signed_and_signed_headers_must_exist() {
    // A request signed without a Host header.
    let unsigned = sts_request(None)
        .without_header("authorization")
        .without_header("x-amz-date")
        .without_header("host");
    let signed = unsigned.signed(
        &params(AKID, SECRET, None, "us-east-1", "sts", suite_time()),
        &VerifyOptions::default(),
    );
    let mut r = signed.clone();
    r.headers
        .push(("Host".to_owned(), "127.0.0.1:18080".to_owned()));
    let err = expect_err(&r, suite_time());
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert_eq!(
        err.message(),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );

    let r = sts_request(None).without_header("content-type");
    let err = expect_err(&r, suite_time());
    assert_eq!(err.code(), "IncompleteSignature");
    assert_eq!(
        err.message(),
        "'content-type' is named as a SignedHeader, but it does not exist in the HTTP request."
    );
}

#[test]
fn date_header_is_the_fallback_request_time() {
    // Built by hand from the public pieces: Date instead of X-Amz-Date.
    let mut req = RawRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: "Action=GetCallerIdentity".to_owned(),
        headers: vec![
            ("Host".to_owned(), "sts.example.test".to_owned()),
            ("Date".to_owned(), "Sun, 30 Aug 2015 12:36:00 GMT".to_owned()),
            (
                "Authorization".to_owned(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=date;host, Signature=pending".to_owned(),
            ),
        ],
        body: Vec::new(),
    };
    let info = req.parse_sig().unwrap();
    assert_eq!(info.request_time, suite_time());
    let creq = req.canonical(&info, &VerifyOptions::default());
    assert_eq!(
        creq,
        "GET\n/\nAction=GetCallerIdentity\ndate:Sun, 30 Aug 2015 12:36:00 GMT\nhost:sts.example.test\n\ndate;host\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let sts = sigv4::string_to_sign(&info, &creq);
    let key = sigv4::signing_key(SECRET, "20150830", "us-east-1", "sts");
    let sig = sigv4::compute_signature(&key, &sts);
    let authz = req
        .header("authorization")
        .unwrap()
        .replace("pending", &sig);
    req.set_header("Authorization", &authz);
    req.verify_at(SECRET, suite_time(), &VerifyOptions::default())
        .unwrap();
    req.set_header("Date", "Sun, 30 Aug 2015 12:36:01 GMT");
    assert_eq!(
        expect_err(&req, suite_time()).code(),
        "SignatureDoesNotMatch"
    );
    req.set_header("Date", "yesterday");
    assert!(matches!(
        req.parse_sig().unwrap_err(),
        SigV4Error::MalformedDate { .. }
    ));
}

#[test]
fn s3_options_neither_normalize_nor_double_encode() {
    let unsigned = RawRequest {
        method: "GET".to_owned(),
        path: "/bucket/my-object//example//photo.user".to_owned(),
        query: String::new(),
        headers: vec![("Host".to_owned(), "s3.example.test".to_owned())],
        body: Vec::new(),
    };
    let s3 = VerifyOptions::s3();
    let signed = unsigned.signed(
        &params(AKID, SECRET, None, "us-east-1", "s3", suite_time()),
        &s3,
    );
    let info = signed.verify_at(SECRET, suite_time(), &s3).unwrap();
    assert_eq!(
        first_line_after_method(&signed.canonical(&info, &s3)),
        "/bucket/my-object//example//photo.user"
    );
    assert_eq!(
        first_line_after_method(&signed.canonical(&info, &VerifyOptions::default())),
        "/bucket/my-object/example/photo.user"
    );
    assert_eq!(
        signed
            .verify_at(SECRET, suite_time(), &VerifyOptions::default())
            .unwrap_err()
            .code(),
        "SignatureDoesNotMatch"
    );
}

#[test]
fn error_codes_and_statuses() {
    let table = [
        (
            SigV4Error::MissingAuthenticationToken,
            "MissingAuthenticationToken",
            403,
        ),
        (
            SigV4Error::IncompleteSignature {
                message: "m".into(),
            },
            "IncompleteSignature",
            400,
        ),
        (
            SigV4Error::MalformedDate {
                message: "m".into(),
            },
            "IncompleteSignature",
            400,
        ),
        (
            SigV4Error::SignatureDoesNotMatch {
                message: "m".into(),
                canonical_request: None,
                string_to_sign: None,
            },
            "SignatureDoesNotMatch",
            403,
        ),
        (
            SigV4Error::RequestExpired {
                kind: ExpiryKind::SignatureExpired,
                message: "m".into(),
            },
            "SignatureDoesNotMatch",
            403,
        ),
        (
            SigV4Error::RequestExpired {
                kind: ExpiryKind::PresignedUrlExpired,
                message: "m".into(),
            },
            "AccessDenied",
            403,
        ),
        (
            SigV4Error::InvalidClientTokenId,
            "InvalidClientTokenId",
            403,
        ),
        (SigV4Error::ExpiredToken, "ExpiredToken", 403),
    ];
    for (err, code, status) in table {
        assert_eq!((err.code(), err.http_status()), (code, status), "{err:?}");
    }
    assert_eq!(
        SigV4Error::InvalidClientTokenId.message(),
        "The security token included in the request is invalid."
    );
    assert_eq!(
        SigV4Error::ExpiredToken.message(),
        "The security token included in the request is expired"
    );
}

// ---------------------------------------------------------------------------
// Property: whatever we sign verifies; any changed byte of a signed part fails.

#[derive(Debug, Clone, Copy)]
enum Part {
    Method,
    Path,
    Query,
    Header,
    Body,
    Signature,
}

/// Changes one alphanumeric character to a different one (also different
/// ignoring case, so percent-escapes really change).
fn bump(c: char) -> char {
    match c {
        '0'..='8' | 'a'..='y' | 'A'..='Y' => char::from(c as u8 + 1),
        '9' => '0',
        'z' => 'a',
        'Z' => 'A',
        other => other,
    }
}

fn mutate_alnum(s: &str, pick: usize) -> Option<String> {
    let positions: Vec<usize> = s
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphanumeric())
        .map(|(i, _)| i)
        .collect();
    let i = *positions.get(pick % positions.len().max(1))?;
    let mut out = s.to_owned();
    let c = out[i..].chars().next()?;
    out.replace_range(i..i + 1, &bump(c).to_string());
    Some(out)
}

fn segment() -> impl Strategy<Value = String> {
    "([A-Za-z0-9_~-]|%[0-9A-F]{2}|[:@!$]){1,8}"
}

fn request_strategy() -> impl Strategy<Value = RawRequest> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        prop::collection::vec(segment(), 0..4),
        any::<bool>(),
        prop::collection::vec(
            (
                "[A-Za-z0-9_.~-]{1,6}",
                "([A-Za-z0-9_.~-]|%[0-9A-F]{2}){0,6}",
            ),
            0..4,
        ),
        "[ -~]{0,24}",
        "[A-Za-z0-9 ,;=/-]{0,16}",
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(method, segments, trailing, query, h1, h2, body)| {
            let mut path = format!("/{}", segments.join("/"));
            if trailing && !segments.is_empty() {
                path.push('/');
            }
            RawRequest {
                method: method.to_owned(),
                path,
                query: query
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&"),
                headers: vec![
                    ("Host".to_owned(), "svc.example.test:8443".to_owned()),
                    ("X-Prop-One".to_owned(), h1),
                    ("x-prop-two".to_owned(), h2),
                ],
                body,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_requests_verify_and_any_changed_byte_fails(
        unsigned in request_strategy(),
        presign in any::<bool>(),
        part in prop::sample::select(vec![Part::Method, Part::Path, Part::Query, Part::Header, Part::Body, Part::Signature]),
        pick in any::<usize>(),
    ) {
        let opts = VerifyOptions::default();
        let p = params(AKID, SECRET, Some("token/+="), "eu-west-1", "execute-api", suite_time());
        let user_query = unsigned.query.clone();
        let signed = if presign {
            unsigned.presigned(&p, Duration::minutes(10), &opts)
        } else {
            unsigned.signed(&p, &opts)
        };
        let info = signed.verify_at(SECRET, suite_time(), &opts);
        prop_assert!(info.is_ok(), "{:?}", info);

        let mut changed = signed.clone();
        let done = match part {
            Part::Method => {
                changed.method = if signed.method == "GET" { "HEAD".into() } else { "GET".into() };
                true
            }
            Part::Path => mutate_alnum(&signed.path, pick).map(|p| changed.path = p).is_some(),
            Part::Query => mutate_alnum(&user_query, pick)
                .map(|q| changed.query = signed.query.replacen(&user_query, &q, 1))
                .is_some(),
            Part::Header => {
                let idx = if pick % 2 == 0 { 1 } else { 2 };
                mutate_alnum(&signed.headers[idx].1, pick).map(|v| changed.headers[idx].1 = v).is_some()
            }
            Part::Body => {
                if changed.body.is_empty() {
                    changed.body.push(b'x');
                } else {
                    let i = pick % changed.body.len();
                    changed.body[i] ^= 0x01;
                }
                true
            }
            Part::Signature => false,
        };
        if !done {
            // Nothing alphanumeric to change in that part: change the signature.
            if presign {
                let sig = query_value(&signed.query, "X-Amz-Signature").unwrap();
                let bumped = mutate_alnum(sig, pick).unwrap();
                changed.query = signed.query.replace(sig, &bumped);
            } else {
                let authz = signed.header("authorization").unwrap().to_owned();
                let sig = authorization_signature(&authz);
                let bumped = mutate_alnum(sig, pick).unwrap();
                changed.set_header("Authorization", &authz.replace(sig, &bumped));
            }
        }
        let err = changed.verify_at(SECRET, suite_time(), &opts);
        prop_assert!(
            matches!(err, Err(SigV4Error::SignatureDoesNotMatch { .. })),
            "{:?} changed {:?} -> {:?}", part, changed, err
        );
    }
}
