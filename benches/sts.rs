//! Throughput of the STS core: everything an STS request costs apart from the HTTP
//! stack and the store. Each benchmark is one operation; criterion prints the time per
//! operation and, as `thrpt`, operations per second (one element = one operation).
//!
//! `cargo bench --bench sts -- --warm-up-time 1 --measurement-time 3`
//!
//! - `token`: seal / open an AssumeRole session token (AES-256-GCM over JSON claims).
//! - `sigv4`: a botocore-style `POST /` STS request signed with `sign_request` in
//!   setup, verified as the handler does (hash the body, `parse`, `verify`), with
//!   long-term keys and with a session token; also the parts on their own.
//! - `credentials`: access key id and secret generation.
//! - `policy`: the AssumeRole decision for the seeded `demo-app` -> `DemoWorkload`
//!   (identity policy + trust policy as the resource policy), with and without
//!   building the request context, and the cost of parsing the trust policy that the
//!   parsed-policy cache saves.
//! - `web_identity`: an RS256 ID token as AssumeRoleWithWebIdentity checks it
//!   (parse, signature against a JWKS, claims) and its trust-policy decision.
//! - `pipeline`: the pure part of one AssumeRole request end to end: verify the
//!   signature, decide, mint keys, seal the token.

// Tests and benchmarks may panic on what they did not expect; server code may not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

use std::borrow::Cow;
use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rolegate::clock::Random;
use rolegate::iam::Partition;
use rolegate::policy::{
    ContextKeys, ParseOptions, Policy, PolicyKind, PolicySet, PrincipalRef, Request,
    ResourcePolicy, evaluate,
};
use rolegate::sts::assume::{self, AssumeRoleParams, Caller, CallerKind};
use rolegate::sts::credentials::{self, KeyKind};
use rolegate::sts::sigv4::{self, SignedRequest, SigningParams, VerifyOptions};
use rolegate::sts::token::{SessionClaims, TokenKeyring};
use rolegate::sts::web_identity::jwt::{KeySet, UnverifiedToken, validate_claims};
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const USER_ARN: &str = "arn:aws:iam::123456789012:user/demo-app";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/DemoWorkload";
const ROLE_ID: &str = "AROAQ3EGRQCBZYXWVUTSR";
const HOST: &str = "127.0.0.1:8080";
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const USER_AGENT: &str = "Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 os/linux#6.1.0 md/arch#x86_64 \
                          lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.44.5";
const ASSUME_ROLE_BODY: &str = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A\
                                123456789012%3Arole%2FDemoWorkload&RoleSessionName=bench-session";
const ACCESS_KEY_ID: &str = "AKIAAAAAB4XEJ7K2M5QP";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The seeded `DemoWorkload` trust policy and `demo-app`'s inline policy (src/seed.rs).
const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"TrustDemoApp","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/demo-app"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}"#;
const IDENTITY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AssumeDemoRoles","Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],"Resource":"arn:aws:iam::123456789012:role/*"}]}"#;

const ISSUER: &str = "https://oidc.example.test";
const PROVIDER_ARN: &str = "arn:aws:iam::123456789012:oidc-provider/oidc.example.test";
const CLIENT_ID: &str = "rolegate-sts";
const WEB_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.example.test"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.example.test:aud":"rolegate-sts"},"StringLike":{"oidc.example.test:sub":"system:serviceaccount:ci:*"}}}]}"#;

fn signing_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn now() -> DateTime<Utc> {
    signing_time() + chrono::Duration::seconds(2)
}

fn parse(document: &str, kind: PolicyKind) -> Policy {
    Policy::parse(document, ParseOptions::new(kind))
        .unwrap_or_else(|e| panic!("{kind} policy: {e:#}"))
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group
}

fn keyring() -> TokenKeyring {
    TokenKeyring::new(1, &[(1, [7u8; 32])]).unwrap_or_else(|| panic!("key ring"))
}

fn assume_params() -> AssumeRoleParams {
    AssumeRoleParams {
        role_arn: ROLE_ARN.into(),
        role_session_name: "bench-session".into(),
        ..AssumeRoleParams::default()
    }
}

/// Claims of a typical AssumeRole session, as `role_session_claims` builds them.
fn role_claims(now: i64) -> SessionClaims {
    let mut rng = Random::system().rng();
    assume::role_session_claims(
        &Partition::default(),
        ACCOUNT,
        ROLE_ID,
        ROLE_ARN,
        "DemoWorkload",
        &assume_params(),
        (
            credentials::new_access_key_id(KeyKind::Temporary, ACCOUNT, &mut rng),
            credentials::new_secret_access_key(&mut rng),
        ),
        now,
        3_600,
        (vec![("team".into(), "apps".into())], Vec::new()),
        None,
        false,
    )
}

fn demo_app() -> Caller {
    Caller {
        access_key_id: ACCESS_KEY_ID.into(),
        account: ACCOUNT.into(),
        arn: USER_ARN.into(),
        user_id: "AIDAQ3EGRQCBZYXWVUTSR".into(),
        kind: CallerKind::IamUser {
            user_name: "demo-app".into(),
        },
        principal_tags: vec![("team".into(), "apps".into())],
        session: None,
    }
}

/// A request as it arrives: botocore signs `content-type`, `host` and `x-amz-date`
/// (plus `x-amz-security-token`); `user-agent` and `content-length` come along unsigned.
struct WireRequest {
    headers: Vec<(String, String)>,
    body: &'static str,
}

impl WireRequest {
    fn signed(body: &'static str, access_key_id: &str, secret: &str, token: Option<&str>) -> Self {
        let base = [("Host", HOST), ("Content-Type", CONTENT_TYPE)];
        let unsigned = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &base,
            payload_sha256: Cow::Owned(sigv4::hash_payload(body.as_bytes())),
        };
        let params = SigningParams {
            access_key_id,
            secret_access_key: secret,
            session_token: token,
            region: "us-east-1",
            service: "sts",
            time: signing_time(),
        };
        let added = sigv4::sign_request(&unsigned, &params, &VerifyOptions::default());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), HOST.into()),
            ("accept-encoding".into(), "identity".into()),
            ("content-type".into(), CONTENT_TYPE.into()),
            ("user-agent".into(), USER_AGENT.into()),
        ];
        headers.extend(added.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)));
        headers.push(("content-length".into(), body.len().to_string()));
        Self { headers, body }
    }

    fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

fn sts_options() -> VerifyOptions {
    VerifyOptions {
        service: Some("sts".into()),
        ..VerifyOptions::default()
    }
}

/// What the handler does per signed request before any lookup and after it: hash the
/// body, parse the signature, validate, then verify with the secret.
fn verify_wire(
    request: &WireRequest,
    secret: &str,
    options: &VerifyOptions,
) -> sigv4::SignatureInfo {
    let headers = request.header_pairs();
    let signed = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        payload_sha256: Cow::Owned(sigv4::hash_payload(request.body.as_bytes())),
    };
    let info = sigv4::parse(&signed).unwrap_or_else(|e| panic!("parse: {e:?}"));
    sigv4::validate(&info, now(), options).unwrap_or_else(|e| panic!("validate: {e:?}"));
    sigv4::verify(&signed, &info, secret, now(), options)
        .unwrap_or_else(|e| panic!("verify: {e:?}"));
    info
}

fn bench_token(c: &mut Criterion) {
    let keyring = keyring();
    let t = now().timestamp();
    let claims = role_claims(t);
    let token = keyring.seal(&claims, &mut Random::system().rng());
    assert_eq!(keyring.open(&token, t + 1).ok().as_ref(), Some(&claims));
    eprintln!("session token: {} characters", token.len());

    let mut g = group(c, "token");
    g.bench_function("seal", |b| {
        let mut rng = Random::system().rng();
        b.iter(|| keyring.seal(black_box(&claims), &mut rng));
    });
    g.bench_function("open", |b| {
        b.iter(|| keyring.open(black_box(&token), t + 1));
    });
    g.finish();
}

fn bench_sigv4(c: &mut Criterion) {
    let options = sts_options();
    let long_term = WireRequest::signed(ASSUME_ROLE_BODY, ACCESS_KEY_ID, SECRET, None);
    verify_wire(&long_term, SECRET, &options);

    let t = now().timestamp();
    let claims = role_claims(t);
    let token = keyring().seal(&claims, &mut Random::system().rng());
    let with_token = WireRequest::signed(
        "Action=GetCallerIdentity&Version=2011-06-15",
        &claims.access_key_id,
        &claims.secret_access_key,
        Some(&token),
    );
    verify_wire(&with_token, &claims.secret_access_key, &options);

    let headers = long_term.header_pairs();
    let signed = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        payload_sha256: Cow::Owned(sigv4::hash_payload(long_term.body.as_bytes())),
    };
    let info = sigv4::parse(&signed).unwrap_or_else(|e| panic!("parse: {e:?}"));
    let key = sigv4::signing_key(
        SECRET,
        &info.scope.date,
        &info.scope.region,
        &info.scope.service,
    );

    let mut g = group(c, "sigv4");
    g.bench_function("request_long_term_key", |b| {
        b.iter(|| verify_wire(black_box(&long_term), SECRET, &options));
    });
    g.bench_function("request_session_token", |b| {
        b.iter(|| verify_wire(black_box(&with_token), &claims.secret_access_key, &options));
    });
    g.bench_function("hash_payload", |b| {
        b.iter(|| sigv4::hash_payload(black_box(long_term.body.as_bytes())));
    });
    g.bench_function("parse", |b| {
        b.iter(|| sigv4::parse(black_box(&signed)));
    });
    g.bench_function("verify", |b| {
        b.iter(|| sigv4::verify(black_box(&signed), &info, SECRET, now(), &options));
    });
    g.bench_function("verify_cached_signing_key", |b| {
        b.iter(|| sigv4::verify_with_signing_key(black_box(&signed), &info, &key, now(), &options));
    });
    g.bench_function("signing_key", |b| {
        b.iter(|| sigv4::signing_key(black_box(SECRET), "20260302", "us-east-1", "sts"));
    });
    g.finish();
}

fn bench_credentials(c: &mut Criterion) {
    let mut g = group(c, "credentials");
    g.bench_function("new_access_key_id", |b| {
        let mut rng = Random::system().rng();
        b.iter(|| credentials::new_access_key_id(KeyKind::Temporary, black_box(ACCOUNT), &mut rng));
    });
    g.bench_function("new_secret_access_key", |b| {
        let mut rng = Random::system().rng();
        b.iter(|| credentials::new_secret_access_key(&mut rng));
    });
    g.finish();
}

/// The AssumeRole decision as `Sts::assume_role` makes it, from a ready context.
fn decide(trust: &Policy, identity: &[&Policy], caller: &Caller, context: &ContextKeys) -> bool {
    let set = PolicySet {
        identity,
        boundary: None,
        session: &[],
        resource: Some(ResourcePolicy {
            policy: trust,
            owner_account: ACCOUNT,
        }),
    };
    let request = Request {
        principal: PrincipalRef::Aws {
            arn: caller.principal_arn(),
            account: &caller.account,
        },
        action: "sts:AssumeRole",
        resource: ROLE_ARN,
        context,
    };
    evaluate(&set, &request).is_allowed()
}

fn assume_role_context(caller: &Caller, params: &AssumeRoleParams, t: i64) -> ContextKeys {
    let mut context = caller.context(t, Some("127.0.0.1"));
    assume::trust_context(&mut context, params, &[], None);
    context
}

fn bench_policy(c: &mut Criterion) {
    let trust = parse(TRUST_POLICY, PolicyKind::Trust);
    let identity = parse(IDENTITY_POLICY, PolicyKind::Identity);
    let identity_refs = [&identity];
    let caller = demo_app();
    let params = assume_params();
    let t = now().timestamp();
    let context = assume_role_context(&caller, &params, t);
    assert!(decide(&trust, &identity_refs, &caller, &context));

    let mut g = group(c, "policy");
    g.bench_function("assume_role_evaluate", |b| {
        b.iter(|| decide(black_box(&trust), &identity_refs, &caller, &context));
    });
    g.bench_function("assume_role_context_and_evaluate", |b| {
        b.iter(|| {
            let context = assume_role_context(black_box(&caller), &params, t);
            decide(&trust, &identity_refs, &caller, &context)
        });
    });
    g.bench_function("parse_trust_policy", |b| {
        b.iter(|| parse(black_box(TRUST_POLICY), PolicyKind::Trust));
    });
    g.bench_function("parse_identity_policy", |b| {
        b.iter(|| parse(black_box(IDENTITY_POLICY), PolicyKind::Identity));
    });
    g.finish();
}

fn bench_web_identity(c: &mut Criterion) {
    // A throw-away test key of the OIDC peer (tests/peers/oidc/keys): protects nothing.
    let pem_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc/keys/idp-a.pem");
    let pem = std::fs::read(&pem_path).unwrap_or_else(|e| panic!("{}: {e}", pem_path.display()));
    let encoding = EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| panic!("RSA key: {e}"));
    let jwk =
        Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap_or_else(|e| panic!("JWK: {e}"));
    let mut jwk = serde_json::to_value(&jwk).unwrap_or_else(|e| panic!("JWK: {e}"));
    jwk["kid"] = json!("bench-a");
    jwk["use"] = json!("sig");
    let keys = KeySet::from_jwks(&json!({ "keys": [jwk] })).unwrap_or_else(|| panic!("JWKS"));
    assert_eq!(keys.len(), 1);

    let t = now().timestamp();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bench-a".into());
    let claims = json!({
        "iss": ISSUER,
        "sub": "system:serviceaccount:ci:runner",
        "aud": CLIENT_ID,
        "iat": t - 10,
        "nbf": t - 10,
        "exp": t + 3_600,
    });
    let jwt =
        jsonwebtoken::encode(&header, &claims, &encoding).unwrap_or_else(|e| panic!("JWT: {e}"));
    let client_ids = vec![CLIENT_ID.to_owned()];
    let trust = parse(WEB_TRUST_POLICY, PolicyKind::Trust);

    let check = |jwt: &str| {
        let token = UnverifiedToken::parse(jwt).unwrap_or_else(|e| panic!("JWT: {e:?}"));
        keys.verify(&token)
            .unwrap_or_else(|e| panic!("signature: {e:?}"));
        validate_claims(&token.claims, &token.issuer, &client_ids, t)
            .unwrap_or_else(|e| panic!("claims: {e:?}"))
    };
    let decide_web = |verified: &rolegate::sts::web_identity::jwt::VerifiedClaims| {
        let provider = "oidc.example.test";
        let mut context = ContextKeys::new();
        context.insert("aws:FederatedProvider", PROVIDER_ARN);
        context.insert("aws:PrincipalType", "WebIdentityUser");
        context.insert("sts:RoleSessionName", "bench-session");
        context.insert(&format!("{provider}:sub"), verified.subject.as_str());
        context.insert(&format!("{provider}:aud"), verified.audience.as_str());
        context.set(
            &format!("{provider}:oaud"),
            verified.audiences.iter().cloned(),
        );
        context.insert("aws:SourceIp", "127.0.0.1");
        context.insert("aws:EpochTime", t.to_string());
        let set = PolicySet {
            identity: &[],
            boundary: None,
            session: &[],
            resource: Some(ResourcePolicy {
                policy: &trust,
                owner_account: ACCOUNT,
            }),
        };
        let request = Request {
            principal: PrincipalRef::Federated(PROVIDER_ARN),
            action: "sts:AssumeRoleWithWebIdentity",
            resource: ROLE_ARN,
            context: &context,
        };
        evaluate(&set, &request).is_allowed()
    };
    assert!(decide_web(&check(&jwt)));

    let mut g = group(c, "web_identity");
    g.bench_function("jwt_parse", |b| {
        b.iter(|| UnverifiedToken::parse(black_box(&jwt)).map(|t| t.claims.len()));
    });
    let parsed = UnverifiedToken::parse(&jwt).unwrap_or_else(|e| panic!("JWT: {e:?}"));
    g.bench_function("jwt_rs256_signature", |b| {
        b.iter(|| keys.verify(black_box(&parsed)));
    });
    g.bench_function("jwt_parse_verify_claims", |b| {
        b.iter(|| check(black_box(&jwt)));
    });
    let verified = check(&jwt);
    g.bench_function("trust_context_and_evaluate", |b| {
        b.iter(|| decide_web(black_box(&verified)));
    });
    g.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let options = sts_options();
    let request = WireRequest::signed(ASSUME_ROLE_BODY, ACCESS_KEY_ID, SECRET, None);
    let trust = parse(TRUST_POLICY, PolicyKind::Trust);
    let identity = parse(IDENTITY_POLICY, PolicyKind::Identity);
    let identity_refs = [&identity];
    let caller = demo_app();
    let params = assume_params();
    let keyring = keyring();
    let t = now().timestamp();

    let mut g = group(c, "pipeline");
    g.bench_function("assume_role_core", |b| {
        let mut rng = Random::system().rng();
        b.iter(|| {
            verify_wire(black_box(&request), SECRET, &options);
            let context = assume_role_context(&caller, &params, t);
            assert!(decide(&trust, &identity_refs, &caller, &context));
            let claims = assume::role_session_claims(
                &Partition::default(),
                ACCOUNT,
                ROLE_ID,
                ROLE_ARN,
                "DemoWorkload",
                &params,
                (
                    credentials::new_access_key_id(KeyKind::Temporary, ACCOUNT, &mut rng),
                    credentials::new_secret_access_key(&mut rng),
                ),
                t,
                3_600,
                (vec![("team".into(), "apps".into())], Vec::new()),
                None,
                false,
            );
            keyring.seal(&claims, &mut rng)
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_token,
    bench_sigv4,
    bench_credentials,
    bench_policy,
    bench_web_identity,
    bench_pipeline
);
criterion_main!(benches);
