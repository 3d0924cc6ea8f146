//! AssumeRoleWithWebIdentity against a real OpenID Connect provider: npm
//! `oidc-provider` (tests/peers/oidc) on 127.0.0.1, tokens from its authorization
//! code flow with a password-checking login, driven over plain HTTP.

use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rolegate::iam::{AccountId, RoleName};
use rolegate::service::issuance::Sts;
use rolegate::store::{NewOidcProvider, NewRole, Store};
use rolegate::sts::error::StsError;
use rolegate::sts::web_identity::{AssumedRoleWithWebIdentity, WebIdentityParams};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestStore, test_sealer};
use crate::oidc_peer::{OidcPeer, peer_dir};

const ACCOUNT: &str = "123456789012";
const OTHER_ACCOUNT: &str = "210987654321";
const ROLE: &str = "CiDeploy";
const CLIENT: &str = "rolegate-sts";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn account(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn provider_arn(account: &str, peer: &OidcPeer) -> String {
    format!("arn:aws:iam::{account}:oidc-provider/{}", peer.host_path())
}

/// A trust policy for the peer's provider requiring `aud`, `sub` and a password `amr`.
fn trust_policy(peer: &OidcPeer, subject: &str) -> String {
    let url = peer.host_path();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(ACCOUNT, peer)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    format!("{url}:aud"): CLIENT,
                    format!("{url}:sub"): subject,
                },
                "ForAnyValue:StringEquals": {format!("{url}:amr"): "pwd"}
            }
        }]
    })
    .to_string()
}

async fn create_role(store: &dyn Store, name: &str, trust: String) {
    store
        .create_role(&NewRole::new(
            account(ACCOUNT),
            RoleName::parse(name).unwrap(),
            trust,
        ))
        .await
        .unwrap();
}

/// The account, an IAM OIDC provider for the peer (audience `rolegate-sts`) and the
/// role `CiDeploy` that trusts subject `ci-runner`; returns a fresh STS.
async fn setup(db: &TestStore, peer: &OidcPeer) -> Sts {
    let store = db.store.as_ref();
    store.create_account(&account(ACCOUNT), "ci").await.unwrap();
    let provider = store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account(ACCOUNT),
            url: peer.issuer.clone(),
            client_ids: vec![CLIENT.to_owned()],
        })
        .await
        .unwrap();
    assert_eq!(provider.arn, provider_arn(ACCOUNT, peer));
    create_role(store, ROLE, trust_policy(peer, "ci-runner")).await;
    sts(db).await
}

async fn sts(db: &TestStore) -> Sts {
    Sts::open(Arc::clone(&db.store), test_sealer())
        .await
        .expect("open sts")
}

fn params(token: &str) -> WebIdentityParams {
    WebIdentityParams {
        role_arn: role_arn(ROLE),
        role_session_name: "ci-job-1".to_owned(),
        web_identity_token: token.to_owned(),
        ..WebIdentityParams::default()
    }
}

async fn assume(sts: &Sts, token: &str, now: i64) -> Result<AssumedRoleWithWebIdentity, StsError> {
    sts.assume_role_with_web_identity(&params(token), Some("127.0.0.1"), now)
        .await
}

async fn refused(sts: &Sts, token: &str, now: i64) -> StsError {
    match assume(sts, token, now).await {
        Ok(ok) => panic!("expected a refusal, got {:?}", ok.assumed.assumed_role_arn),
        Err(error) => error,
    }
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let decode = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    let header = decode(it.next().unwrap());
    let claims = decode(it.next().unwrap());
    (header, claims, it.next().unwrap().to_owned())
}

fn b64json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn key(name: &str) -> Vec<u8> {
    std::fs::read(peer_dir().join("keys").join(name)).unwrap()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

both_backends!(
    token_from_real_provider_gets_role_credentials,
    wrong_audience_is_refused,
    trust_policy_conditions_decide,
    issuer_without_iam_provider_is_refused,
    expired_and_future_tokens_are_refused,
    forged_tokens_are_refused,
    rotated_keys_are_refetched_on_unknown_kid,
    provider_outage_uses_cached_keys_else_idp_communication_error,
    unsigned_query_api_call_returns_aws_xml,
    boto3_web_identity_token_file_profile,
    session_policy_is_parsed_only_after_the_token_is_verified,
);

async fn token_from_real_provider_gets_role_credentials(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let t = now();
    // As boto3 sends a token file: with its trailing newline.
    let mut request = params(&format!("{token}\n"));
    request.duration_seconds = Some(1800);
    let result = sts
        .assume_role_with_web_identity(&request, Some("127.0.0.1"), t)
        .await
        .unwrap();

    let assumed_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/ci-job-1");
    assert_eq!(result.subject, "ci-runner");
    assert_eq!(result.provider, peer.issuer);
    assert_eq!(result.audience, CLIENT);
    assert_eq!(result.assumed.assumed_role_arn, assumed_arn);
    let role = db
        .store
        .get_role(&account(ACCOUNT), &RoleName::parse(ROLE).unwrap())
        .await
        .unwrap();
    assert_eq!(
        result.assumed.assumed_role_id,
        format!("{}:ci-job-1", role.id)
    );
    let creds = &result.assumed.credentials;
    assert!(
        creds.access_key_id.starts_with("ASIA"),
        "{}",
        creds.access_key_id
    );
    assert_eq!(creds.expiration.timestamp(), t + 1800);

    // The session token opens to the assumed role, with the web identity subject...
    let claims = sts.open_token(&creds.session_token, t).await.unwrap();
    assert_eq!(claims.principal_arn, assumed_arn);
    assert_eq!(claims.role_arn.as_deref(), Some(role_arn(ROLE).as_str()));
    assert_eq!(
        claims.identity_subject.as_deref(),
        Some(format!("{}|ci-runner", peer.issuer).as_str())
    );
    assert!(!claims.chained);
    // ...and the keys authenticate requests as that session.
    let (caller, secret) = sts
        .resolve_keys(&creds.access_key_id, Some(&creds.session_token), t + 60)
        .await
        .unwrap();
    assert_eq!(caller.arn, assumed_arn);
    assert_eq!(secret, creds.secret_access_key);

    // Longer than the role allows (one hour by default): refused.
    let mut long = params(&token);
    long.duration_seconds = Some(7200);
    let error = sts
        .assume_role_with_web_identity(&long, None, t)
        .await
        .unwrap_err();
    assert_eq!(error.code, "ValidationError");
    assert!(error.message.contains("MaxSessionDuration"), "{error}");
}

async fn wrong_audience_is_refused(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    // Another application of the same issuer: a valid token, but not for Rolegate.
    let token = peer
        .id_token("other-app", "ci-runner", "runner-password")
        .await;
    assert_eq!(parts(&token).1["aud"], "other-app");
    let error = refused(&sts, &token, now()).await;
    assert_eq!((error.code, error.status), ("InvalidIdentityToken", 400));
    assert_eq!(error.message, "Incorrect token audience");
}

async fn trust_policy_conditions_decide(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    // The peer checks passwords: a wrong one yields no token at all.
    assert!(
        peer.try_id_token(CLIENT, "intruder", "runner-password")
            .await
            .is_err()
    );
    // A genuine token of another subject: the trust policy's :sub condition refuses.
    let intruder = peer.id_token(CLIENT, "intruder", "intruder-password").await;
    let error = refused(&sts, &intruder, now()).await;
    assert_eq!((error.code, error.status), ("AccessDenied", 403));
    assert_eq!(
        error.message,
        "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    );

    let runner = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    // A role that trusts another provider: denied, as is a role that does not exist.
    let url = peer.host_path();
    create_role(
        db.store.as_ref(),
        "OtherIdp",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com")},
            "Action": "sts:AssumeRoleWithWebIdentity"
        }]})
        .to_string(),
    )
    .await;
    // A role whose trust reads the subject through a policy variable and requires
    // every amr value to be pwd or mfa.
    create_role(
        db.store.as_ref(),
        "NamedSessions",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(ACCOUNT, &peer)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"sts:RoleSessionName": format!("${{{url}:sub}}")},
                "ForAllValues:StringEquals": {format!("{url}:amr"): ["pwd", "mfa"]}
            }
        }]})
        .to_string(),
    )
    .await;
    // A role that requires multi-factor sign-in.
    create_role(
        db.store.as_ref(),
        "MfaOnly",
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(ACCOUNT, &peer)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"ForAnyValue:StringEquals": {format!("{url}:amr"): "mfa"}}
        }]})
        .to_string(),
    )
    .await;
    for role in ["OtherIdp", "Missing", "MfaOnly"] {
        let mut p = params(&runner);
        p.role_arn = role_arn(role);
        let error = sts
            .assume_role_with_web_identity(&p, None, now())
            .await
            .unwrap_err();
        assert_eq!(error.code, "AccessDenied", "{role}");
    }
    let mut named = params(&runner);
    named.role_arn = role_arn("NamedSessions");
    // The session name must be the token's subject.
    assert_eq!(
        sts.assume_role_with_web_identity(&named, None, now())
            .await
            .unwrap_err()
            .code,
        "AccessDenied"
    );
    named.role_session_name = "ci-runner".to_owned();
    let ok = sts
        .assume_role_with_web_identity(&named, None, now())
        .await
        .unwrap();
    assert_eq!(
        ok.assumed.assumed_role_arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/NamedSessions/ci-runner")
    );
    // The subject itself, trusted by CiDeploy, succeeds.
    assert!(assume(&sts, &runner, now()).await.is_ok());
}

async fn issuer_without_iam_provider_is_refused(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let store = db.store.as_ref();
    store.create_account(&account(ACCOUNT), "ci").await.unwrap();
    store
        .create_account(&account(OTHER_ACCOUNT), "other")
        .await
        .unwrap();
    // The issuer is registered, but in another account than the role's.
    store
        .create_oidc_provider(&NewOidcProvider {
            account_id: account(OTHER_ACCOUNT),
            url: peer.issuer.clone(),
            client_ids: vec![CLIENT.to_owned()],
        })
        .await
        .unwrap();
    create_role(store, ROLE, trust_policy(&peer, "ci-runner")).await;
    let sts = sts(&db).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let error = refused(&sts, &token, now()).await;
    assert_eq!((error.code, error.status), ("InvalidIdentityToken", 400));
    assert_eq!(
        error.message,
        format!(
            "No OpenIDConnect provider found in your account for {}",
            peer.issuer
        )
    );
    // Nothing was fetched from an issuer no account of the role's registered.
    assert_eq!(peer.stats().await, (0, 0));
}

async fn expired_and_future_tokens_are_refused(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let claims = parts(&token).1;
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );

    // Within the 60 s skew after exp: still accepted.
    assert!(assume(&sts, &token, exp + 30).await.is_ok());
    let error = refused(&sts, &token, exp + 61).await;
    assert_eq!((error.code, error.status), ("ExpiredTokenException", 400));
    assert!(error.message.starts_with("Token expired"), "{error}");
    // A verifier whose clock is two minutes behind the issuer's: issued in the future.
    let error = refused(&sts, &token, iat - 120).await;
    assert_eq!(error.code, "InvalidIdentityToken");
    assert!(error.message.contains("future"), "{error}");
    assert!(assume(&sts, &token, iat - 30).await.is_ok());
}

async fn forged_tokens_are_refused(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let t = now();
    // The genuine token works, so each refusal below is about the forgery.
    assert!(assume(&sts, &token, t).await.is_ok());
    let (header, claims, signature) = parts(&token);
    let (h, c) = (b64json(&header), b64json(&claims));
    let mut admin_claims = claims.clone();
    admin_claims["sub"] = json!("admin");

    let mut forged: Vec<(&str, String)> = Vec::new();
    // One bit of the signature flipped.
    let mut sig = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    sig[100] ^= 0x01;
    forged.push((
        "flipped signature bit",
        format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(&sig)),
    ));
    // Claims changed under the original signature.
    forged.push((
        "edited claims",
        format!("{h}.{}.{signature}", b64json(&admin_claims)),
    ));
    // alg "none", with and without a signature.
    let none = b64json(&json!({"alg": "none", "typ": "JWT", "kid": header["kid"]}));
    forged.push(("alg none", format!("{none}.{c}.")));
    forged.push(("alg none with signature", format!("{none}.{c}.{signature}")));
    // HS256 keyed with the provider's public key (the algorithm confusion attack).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = header["kid"].as_str().map(str::to_owned);
    let public_pem = key("idp-a.pub.pem");
    forged.push((
        "HS256 with the public key as secret",
        jsonwebtoken::encode(&hs, &admin_claims, &EncodingKey::from_secret(&public_pem)).unwrap(),
    ));
    // Signed by an attacker's key, which the header carries as `jwk`.
    let attacker = EncodingKey::from_rsa_pem(&key("attacker.pem")).unwrap();
    let mut embedded = Header::new(Algorithm::RS256);
    embedded.kid = hs.kid.clone();
    embedded.jwk =
        Some(jsonwebtoken::jwk::Jwk::from_encoding_key(&attacker, Algorithm::RS256).unwrap());
    forged.push((
        "embedded jwk",
        jsonwebtoken::encode(&embedded, &admin_claims, &attacker).unwrap(),
    ));
    // ... or points to with `jku`.
    let mut jku = Header::new(Algorithm::RS256);
    jku.kid = hs.kid.clone();
    jku.jku = Some("http://127.0.0.1:9/jwks".to_owned());
    forged.push((
        "jku",
        jsonwebtoken::encode(&jku, &admin_claims, &attacker).unwrap(),
    ));
    // Signed by the attacker's key under the provider's kid.
    let mut plain = Header::new(Algorithm::RS256);
    plain.kid = hs.kid.clone();
    forged.push((
        "attacker key with the provider's kid",
        jsonwebtoken::encode(&plain, &admin_claims, &attacker).unwrap(),
    ));
    // ... and without any kid.
    forged.push((
        "attacker key without kid",
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &admin_claims, &attacker).unwrap(),
    ));
    forged.push(("not a JWT", "not-a-jwt".to_owned()));

    for (what, forgery) in &forged {
        let error = refused(&sts, forgery, t).await;
        assert_eq!(
            (error.code, error.status),
            ("InvalidIdentityToken", 400),
            "{what}: {error}"
        );
    }
    for (what, needle) in [
        ("alg none", "unsigned"),
        ("HS256 with the public key as secret", "HMAC"),
        ("embedded jwk", "(jwk)"),
        ("jku", "(jku)"),
        ("flipped signature bit", "signature is not valid"),
    ] {
        let forgery = &forged.iter().find(|(w, _)| *w == what).unwrap().1;
        let message = refused(&sts, forgery, t).await.message;
        assert!(message.contains(needle), "{what}: {message}");
    }
}

async fn rotated_keys_are_refetched_on_unknown_kid(db: TestStore) {
    let Some(mut peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    let t = now();
    let old = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    assert!(assume(&sts, &old, t).await.is_ok());
    assert_eq!(peer.stats().await, (1, 1));

    // The provider rotates: key b signs now, key a is still published.
    peer.restart("b,a");
    let new = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    assert_eq!(parts(&new).0["kid"], "rolegate-test-b");
    // Cached keys still verify old tokens without asking the provider.
    assert!(assume(&sts, &old, t + 1).await.is_ok());
    assert_eq!(peer.stats().await, (0, 0));
    // The unknown kid triggers exactly one refetch.
    let result = assume(&sts, &new, t + 2).await.unwrap();
    assert_eq!(result.subject, "ci-runner");
    assert_eq!(peer.stats().await, (1, 1));
    assert!(assume(&sts, &new, t + 3).await.is_ok());
    assert_eq!(peer.stats().await, (1, 1));

    // Tokens naming keys nobody publishes cannot make Rolegate hammer the provider:
    // within the refresh interval they are refused from the cache.
    let attacker = EncodingKey::from_rsa_pem(&key("attacker.pem")).unwrap();
    let claims = parts(&new).1;
    for i in 0..5 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("forged-{i}"));
        let forged = jsonwebtoken::encode(&header, &claims, &attacker).unwrap();
        let error = refused(&sts, &forged, t + 4 + i).await;
        assert_eq!(error.code, "InvalidIdentityToken");
        assert!(error.message.contains("does not publish"), "{error}");
    }
    assert_eq!(peer.stats().await, (1, 1));
    // After the interval one more refetch is allowed.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("forged-late".to_owned());
    let forged = jsonwebtoken::encode(&header, &claims, &attacker).unwrap();
    refused(&sts, &forged, t + 60).await;
    assert_eq!(peer.stats().await, (2, 2));
}

async fn provider_outage_uses_cached_keys_else_idp_communication_error(db: TestStore) {
    let Some(mut peer) = OidcPeer::start("a") else {
        return;
    };
    let warm = setup(&db, &peer).await;
    let first = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let second = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let t = now();
    assert!(assume(&warm, &first, t).await.is_ok());
    peer.stop();

    // Keys cached before the outage keep working.
    assert!(assume(&warm, &second, t + 5).await.is_ok());
    // A replica that never fetched them cannot verify: IDPCommunicationError, which
    // botocore retries.
    let cold = sts(&db).await;
    let error = refused(&cold, &second, t + 5).await;
    assert_eq!((error.code, error.status), ("IDPCommunicationError", 400));
    // Once the provider is back, the same replica recovers (after its back-off).
    peer.restart("a");
    assert_eq!(
        refused(&cold, &second, t + 6).await.code,
        "IDPCommunicationError"
    );
    assert!(assume(&cold, &second, t + 11).await.is_ok());
}

/// The text of the first `<name>` element.
fn xml_value<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

async fn unsigned_query_api_call_returns_aws_xml(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    setup(&db, &peer).await;
    let base = crate::helpers::spawn_server(Arc::clone(&db.store)).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let post = |token: String| {
        let base = base.clone();
        async move {
            // As the AWS CLI sends it: unsigned, form-encoded, no Authorization header.
            let body = serde_urlencoded::to_string([
                ("Action", "AssumeRoleWithWebIdentity"),
                ("Version", "2011-06-15"),
                ("RoleArn", role_arn(ROLE).as_str()),
                ("RoleSessionName", "w1"),
                ("WebIdentityToken", token.as_str()),
                ("DurationSeconds", "3600"),
            ])
            .unwrap();
            let response = reqwest::Client::new()
                .post(format!("{base}/"))
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let (status, xml) = post(token.clone()).await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    assert!(xml.contains("<AssumeRoleWithWebIdentityResult>"), "{xml}");
    assert_eq!(
        xml_value(&xml, "SubjectFromWebIdentityToken"),
        Some("ci-runner")
    );
    assert_eq!(xml_value(&xml, "Provider"), Some(peer.issuer.as_str()));
    assert_eq!(xml_value(&xml, "Audience"), Some(CLIENT));
    let user = xml_value(&xml, "AssumedRoleUser").expect("AssumedRoleUser");
    let assumed_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/w1");
    assert_eq!(xml_value(user, "Arn"), Some(assumed_arn.as_str()));
    assert!(xml_value(user, "AssumedRoleId").unwrap().ends_with(":w1"));
    // The returned session token is one this STS issued for that session.
    let session_token = xml_value(&xml, "SessionToken").expect("SessionToken");
    let claims = sts(&db)
        .await
        .open_token(session_token, now())
        .await
        .unwrap();
    assert_eq!(claims.principal_arn, assumed_arn);
    assert_eq!(
        Some(claims.access_key_id.as_str()),
        xml_value(&xml, "AccessKeyId")
    );

    // A token for another audience: AWS error XML with the right code and status.
    let other = peer
        .id_token("other-app", "ci-runner", "runner-password")
        .await;
    let (status, xml) = post(other).await;
    assert_eq!(status, 400, "{xml}");
    assert_eq!(xml_value(&xml, "Code"), Some("InvalidIdentityToken"));
    assert_eq!(xml_value(&xml, "Message"), Some("Incorrect token audience"));
}

/// boto3 with a `web_identity_token_file` profile (how EKS pods and CI jobs run):
/// botocore reads the token file, calls AssumeRoleWithWebIdentity unsigned, then
/// signs GetCallerIdentity with the session it got.
async fn boto3_web_identity_token_file_profile(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    setup(&db, &peer).await;
    let base = crate::helpers::spawn_server(Arc::clone(&db.store)).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile ci]\nregion = eu-west-1\nrole_arn = {}\nweb_identity_token_file = {}\n\
             role_session_name = pipeline-7\nservices = local\n\n[services local]\nsts =\n  endpoint_url = {base}\n",
            role_arn(ROLE),
            token_file.display()
        ),
    )
    .unwrap();
    let mut command = Command::new(crate::helpers::venv_bin("python"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let out = command
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg("import boto3, json; print(json.dumps(boto3.Session(profile_name='ci').client('sts').get_caller_identity()))")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        identity["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/pipeline-7")
    );
    assert_eq!(identity["Account"], ACCOUNT);
}

#[tokio::test]
async fn parameters_are_validated_before_any_lookup() {
    let db = crate::helpers::sqlite_store().await;
    let sts = sts(&db).await;
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLnRlc3QifQ.c2ln";
    let cases: Vec<(WebIdentityParams, &str, &str)> = vec![
        (
            WebIdentityParams {
                role_session_name: "a".into(),
                ..params(token)
            },
            "ValidationError",
            "roleSessionName",
        ),
        (
            WebIdentityParams {
                role_session_name: "has space".into(),
                ..params(token)
            },
            "ValidationError",
            "roleSessionName",
        ),
        (params("abc"), "ValidationError", "webIdentityToken"),
        (
            params(&"a".repeat(20_001)),
            "ValidationError",
            "webIdentityToken",
        ),
        (
            WebIdentityParams {
                duration_seconds: Some(600),
                ..params(token)
            },
            "ValidationError",
            "durationSeconds",
        ),
        (
            WebIdentityParams {
                role_arn: "arn:aws:iam::123456789012:user/bob".into(),
                ..params(token)
            },
            "ValidationError",
            "roleArn",
        ),
        (
            WebIdentityParams {
                provider_id: Some("www.amazon.com".into()),
                ..params(token)
            },
            "InvalidParameterValue",
            "ProviderId",
        ),
        // A malformed session policy is not even looked at before the token is
        // verified: this token names no known provider.
        (
            WebIdentityParams {
                policy: Some("{not json".into()),
                ..params(token)
            },
            "InvalidIdentityToken",
            "No OpenIDConnect provider",
        ),
        // Issue 15 item 12: ~1,000 `${` and 250 KB of white space (packed size
        // small) are refused on their raw size, before any parsing.
        (
            WebIdentityParams {
                policy: Some(hostile_session_policy(1_000, 250_000)),
                ..params(token)
            },
            "PackedPolicyTooLarge",
            "65536 bytes",
        ),
    ];
    for (p, code, needle) in cases {
        let error = sts
            .assume_role_with_web_identity(&p, None, now())
            .await
            .unwrap_err();
        assert_eq!(error.code, code, "{p:?}: {error}");
        assert!(error.message.contains(needle), "{p:?}: {error}");
    }
    // The token is never echoed in errors or debug output.
    let secretish = format!("{token}SECRETPART");
    let p = params(&secretish);
    assert!(!format!("{p:?}").contains("SECRETPART"));
}

/// A session policy whose Resource holds `dollars` unclosed `${` followed by
/// `spaces` spaces (the packed size counts only the `${`).
fn hostile_session_policy(dollars: usize, spaces: usize) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/{}{}"}}]}}"#,
        "${".repeat(dollars),
        " ".repeat(spaces)
    )
}

/// Issue 15 item 12: the session policy is parsed only after the web identity
/// token is verified. A forged token with a malformed policy gets the token's
/// error; the genuine token with the same policy gets MalformedPolicyDocument;
/// the genuine token with a hostile (but under the limits) template policy is
/// parsed and the role session issued.
async fn session_policy_is_parsed_only_after_the_token_is_verified(db: TestStore) {
    let Some(peer) = OidcPeer::start("a") else {
        return;
    };
    let sts = setup(&db, &peer).await;
    let token = peer.id_token(CLIENT, "ci-runner", "runner-password").await;
    let t = now();
    let (h, c, _) = parts(&token);
    let forged = format!(
        "{}.{}.{}",
        b64json(&h),
        b64json(&c),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    let with_policy = |token: &str, policy: &str| WebIdentityParams {
        policy: Some(policy.to_owned()),
        ..params(token)
    };
    let error = sts
        .assume_role_with_web_identity(&with_policy(&forged, "{not json"), None, t)
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidIdentityToken", "{error}");
    let error = sts
        .assume_role_with_web_identity(&with_policy(&token, "{not json"), None, t)
        .await
        .unwrap_err();
    assert_eq!(error.code, "MalformedPolicyDocument", "{error}");
    // 900 unclosed `${` (1,800 packed characters) and 60 KB of spaces: under
    // both limits, parsed (linearly) once the caller is known.
    let hostile = hostile_session_policy(900, 60_000);
    let result = sts
        .assume_role_with_web_identity(&with_policy(&token, &hostile), None, t)
        .await
        .unwrap();
    assert!(
        result.assumed.packed_policy_size > 80,
        "{}",
        result.assumed.packed_policy_size
    );
}
