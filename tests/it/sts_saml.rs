//! AssumeRoleWithSAML against a real SAML IdP (Debian simplesamlphp under `php -S`,
//! see `saml_peer`), driven by the AWS CLI v1 and boto3 from the project's .venv and
//! by raw HTTP for exact error cases; IAM SAML providers through the admin API and
//! the configuration.

use std::process::Command;

use reqwest::{Method, StatusCode};
use rolegate::seed;
use rolegate::store::Outcome;
use serde_json::{Value, json};

use crate::admin_client::Api;
use crate::both_backends;
use crate::helpers::{TestStore, app_state, assert_audited, venv_bin};
use crate::saml_peer::{
    AWS_ROLE_ATTRIBUTE, AWS_SESSION_NAME_ATTRIBUTE, KeyPair, SamlIdp, SamlSp, SamlUser,
};
use crate::sts_api::xml_value;

const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;
const PROVIDER: &str = "corp-idp";
const TAG_TEAM: &str = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:Team";
const TRANSITIVE: &str = "https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys";
const SESSION_DURATION: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";
const SOURCE_IDENTITY: &str = "https://aws.amazon.com/SAML/Attributes/SourceIdentity";

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn provider_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:saml-provider/{name}")
}

/// alice: Developer (role first) and Admin (provider first), a team tag, transitive,
/// a 30-minute SessionDuration and a source identity; bob: Conditional only;
/// carol: no Role attribute at all.
fn users() -> Vec<SamlUser> {
    let provider = provider_arn(PROVIDER);
    let developer = format!("{},{provider}", role_arn("Developer"));
    let admin = format!("{provider},{}", role_arn("Admin"));
    let conditional = format!("{},{provider}", role_arn("SamlConditional"));
    vec![
        SamlUser::new(
            "alice",
            "alice-pass",
            &[
                ("groups", &["developers", "admins"]),
                (AWS_ROLE_ATTRIBUTE, &[&developer, &admin, &conditional]),
                (AWS_SESSION_NAME_ATTRIBUTE, &["alice@corp.example"]),
                (TAG_TEAM, &["platform"]),
                (TRANSITIVE, &["Team"]),
                (SESSION_DURATION, &["1800"]),
                (SOURCE_IDENTITY, &["alice"]),
                ("eduPersonAffiliation", &["staff", "member"]),
            ],
        ),
        SamlUser::new(
            "bob",
            "bob-pass",
            &[
                (AWS_ROLE_ATTRIBUTE, &[&conditional]),
                (AWS_SESSION_NAME_ATTRIBUTE, &["bob"]),
            ],
        ),
        SamlUser::new(
            "carol",
            "carol-pass",
            &[(AWS_SESSION_NAME_ATTRIBUTE, &["carol"])],
        ),
    ]
}

struct Fixture {
    db: TestStore,
    api: Api,
    idp: SamlIdp,
    /// `<base>/saml`: the audience and recipient of assertions to this STS.
    audience: String,
    dir: tempfile::TempDir,
}

/// The demo seed, the server (admin tokens), the IdP with an SP entry for this STS's
/// SAML endpoint, the IAM SAML provider `corp-idp` created through the admin API from
/// the IdP's metadata, and the demo roles trusting it as `rolegate dev` makes them;
/// plus `SamlConditional`, trusting only subject alice at this audience.
async fn fixture(db: TestStore) -> Option<Fixture> {
    let state = app_state(db.store.clone()).await;
    seed::seed_demo(state.store.as_ref()).await.unwrap();
    let api = Api::serve(state).await;
    let audience = format!("{}/saml", api.base);
    let sp = SamlSp::new(&audience, &audience);
    let idp = SamlIdp::start_with(&[sp], &users())?;
    let created = api
        .call(
            Method::POST,
            "/saml-providers",
            Some(json!({
                "account_id": ACCOUNT,
                "name": PROVIDER,
                "metadata_document": idp.metadata_xml().await,
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["arn"], provider_arn(PROVIDER));
    assert_eq!(created.body["idp"]["entity_id"], idp.entity_id);
    let lines = seed::trust_saml_provider(db.store.as_ref(), &provider_arn(PROVIDER), PROVIDER)
        .await
        .unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(PROVIDER)},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
            "Condition": {"StringEquals": {"SAML:aud": audience, "SAML:sub": "alice",
                                           "SAML:iss": idp.entity_id},
                          "ForAnyValue:StringEquals": {"SAML:edupersonaffiliation": "staff"}}
        }]
    });
    let role = api
        .call(
            Method::POST,
            &format!("/accounts/{ACCOUNT}/roles"),
            Some(json!({"name": "SamlConditional", "trust_policy": trust})),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.text);
    Some(Fixture {
        db,
        api,
        idp,
        audience,
        dir: tempfile::tempdir().unwrap(),
    })
}

impl Fixture {
    async fn assertion(&self, user: &str) -> String {
        self.idp
            .idp_initiated_response(&self.audience, user, &format!("{user}-pass"))
            .await
    }

    /// A command with no AWS credentials or configuration but this STS's endpoint.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(venv_bin(program));
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_STS", &self.api.base)
            .env("HOME", self.dir.path());
        command
    }

    /// Raw unsigned STS call: (status, body).
    async fn call(&self, params: &[(&str, &str)]) -> (u16, String) {
        let mut form = vec![("Action", "AssumeRoleWithSAML"), ("Version", "2011-06-15")];
        form.extend_from_slice(params);
        let response = reqwest::Client::new()
            .post(format!("{}/", self.api.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn assume(&self, role: &str, provider: &str, assertion: &str) -> (u16, String) {
        self.call(&[
            ("RoleArn", &role_arn(role)),
            ("PrincipalArn", &provider_arn(provider)),
            ("SAMLAssertion", assertion),
        ])
        .await
    }
}

fn run(mut command: Command) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn error_code(xml: &str) -> &str {
    xml_value(xml, "Code").unwrap_or_default()
}

/// AWS's NameQualifier, computed independently of Rolegate's code.
fn name_qualifier(issuer: &str, provider: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let digest = sha1::Sha1::digest(format!("{issuer}{ACCOUNT}/{provider}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

async fn cli_and_boto3_trade_an_idp_assertion_for_working_credentials(db: TestStore) {
    let Some(fx) = fixture(db).await else {
        return;
    };
    // The AWS CLI v1, with no credentials at all (the call is unsigned).
    let assertion = fx.assertion("alice").await;
    let mut command = fx.command("aws");
    command.args([
        "sts",
        "assume-role-with-saml",
        "--role-arn",
        &role_arn("Developer"),
        "--principal-arn",
        &provider_arn(PROVIDER),
        "--saml-assertion",
        &assertion,
        "--output",
        "json",
    ]);
    let (code, out, err) = run(command);
    assert_eq!(code, 0, "{out}{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        result["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@corp.example")
    );
    assert_eq!(result["Subject"], "alice");
    assert_eq!(
        result["SubjectType"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    );
    assert_eq!(result["Issuer"], fx.idp.entity_id);
    assert_eq!(result["Audience"], fx.audience);
    assert_eq!(
        result["NameQualifier"],
        name_qualifier(&fx.idp.entity_id, PROVIDER)
    );
    assert_eq!(result["SourceIdentity"], "alice");
    let credentials = &result["Credentials"];
    // The credentials work: get-caller-identity, signed with them.
    let mut command = fx.command("aws");
    command
        .env(
            "AWS_ACCESS_KEY_ID",
            credentials["AccessKeyId"].as_str().unwrap(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            credentials["SecretAccessKey"].as_str().unwrap(),
        )
        .env(
            "AWS_SESSION_TOKEN",
            credentials["SessionToken"].as_str().unwrap(),
        )
        .args(["sts", "get-caller-identity", "--output", "json"]);
    let (code, out, err) = run(command);
    assert_eq!(code, 0, "{out}{err}");
    let identity: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        identity["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@corp.example")
    );
    assert_eq!(identity["Account"], ACCOUNT);

    // boto3: a fresh assertion for Admin (its Role value names the provider first);
    // then the same assertion again, which is a replay.
    let fresh = fx.assertion("alice").await;
    let script = format!(
        "import boto3, botocore, json, sys\n\
         sts = boto3.client('sts')\n\
         r = sts.assume_role_with_saml(RoleArn='{role}', PrincipalArn='{provider}', SAMLAssertion=sys.argv[1])\n\
         c = r['Credentials']\n\
         me = boto3.client('sts', aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken']).get_caller_identity()\n\
         try:\n\
         \x20   sts.assume_role_with_saml(RoleArn='{role}', PrincipalArn='{provider}', SAMLAssertion=sys.argv[1])\n\
         \x20   replay = 'accepted'\n\
         except botocore.exceptions.ClientError as e:\n\
         \x20   replay = e.response['Error']['Code']\n\
         print(json.dumps({{'arn': me['Arn'], 'user': r['AssumedRoleUser']['Arn'], 'replay': replay}}))\n",
        role = role_arn("Admin"),
        provider = provider_arn(PROVIDER),
    );
    let mut command = fx.command("python");
    command.arg("-c").arg(&script).arg(&fresh);
    let (code, out, err) = run(command);
    assert_eq!(code, 0, "{out}{err}");
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    let admin = format!("arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@corp.example");
    assert_eq!(result["arn"], admin);
    assert_eq!(result["user"], admin);
    assert_eq!(result["replay"], "IDPRejectedClaim");

    let audit = fx.db.store.list_audit(100, None).await.unwrap();
    let saml: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "sts:AssumeRoleWithSAML")
        .collect();
    assert_eq!(saml.len(), 3, "{saml:#?}");
    assert!(saml.iter().any(|e| e.outcome == Outcome::Success
        && e.details["saml_reason"] == "accepted"
        && e.details["provider"] == provider_arn(PROVIDER)
        && e.actor == format!("{}|alice", fx.idp.entity_id)));
    assert!(saml.iter().any(|e| e.outcome == Outcome::Denied
        && e.details["saml_reason"] == "replayed"
        && e.details["code"] == "IDPRejectedClaim"));
    assert_audited(
        fx.db.store.as_ref(),
        &[("sts:AssumeRoleWithSAML", Outcome::Success)],
        &[
            &assertion[..200],
            &fresh[..200],
            &assertion[assertion.len() - 200..],
        ],
    )
    .await;
}

async fn trust_conditions_and_session_attributes_decide(db: TestStore) {
    let Some(fx) = fixture(db).await else {
        return;
    };
    let now = fx.db.store.clock().timestamp();
    // alice: SAML:aud, :sub, :iss and the multi-valued eduPersonAffiliation match.
    let (status, body) = fx
        .assume("SamlConditional", PROVIDER, &fx.assertion("alice").await)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(xml_value(&body, "SourceIdentity"), Some("alice"));
    // SessionDuration 1800 caps the default hour.
    let expiration = chrono::DateTime::parse_from_rfc3339(xml_value(&body, "Expiration").unwrap())
        .unwrap()
        .timestamp();
    assert!(
        (expiration - now - 1800).abs() <= 5,
        "{expiration} vs {now}"
    );
    // The PrincipalTag attribute is a (transitive) session tag of the new session.
    let token = xml_value(&body, "SessionToken").unwrap();
    let claims = fx.api.state.sts.open_token(token, now).await.unwrap();
    assert_eq!(claims.tags, [("Team".to_owned(), "platform".to_owned())]);
    assert_eq!(claims.transitive_tag_keys, ["Team"]);
    assert_eq!(claims.source_identity.as_deref(), Some("alice"));

    // bob's assertion names the role, but SAML:sub is not alice: refused.
    let (status, body) = fx
        .assume("SamlConditional", PROVIDER, &fx.assertion("bob").await)
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");
    assert_eq!(
        xml_value(&body, "Message"),
        Some("Not authorized to perform sts:AssumeRoleWithSAML")
    );
    assert!(xml_value(&body, "AccessKeyId").is_none());

    // A trust policy for another audience refuses even alice.
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn(PROVIDER)},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}
        }]
    });
    let updated = fx
        .api
        .call(
            Method::PUT,
            &format!("/accounts/{ACCOUNT}/roles/SamlConditional"),
            Some(json!({"trust_policy": trust})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let (status, body) = fx
        .assume("SamlConditional", PROVIDER, &fx.assertion("alice").await)
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");

    // A DurationSeconds above the SessionDuration is capped by it, below it is kept.
    let (status, body) = fx
        .call(&[
            ("RoleArn", &role_arn("Developer")),
            ("PrincipalArn", &provider_arn(PROVIDER)),
            ("SAMLAssertion", &fx.assertion("alice").await),
            ("DurationSeconds", "900"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    let expiration = chrono::DateTime::parse_from_rfc3339(xml_value(&body, "Expiration").unwrap())
        .unwrap()
        .timestamp();
    assert!((expiration - now - 900).abs() <= 5);
}

async fn bad_saml_input_gets_awss_error_codes_and_no_credentials(db: TestStore) {
    let Some(fx) = fixture(db).await else {
        return;
    };
    // An IAM provider whose metadata names this IdP but another signing certificate.
    let metadata = fx.idp.metadata_xml().await;
    let stranger = KeyPair::generate("not-the-idp");
    let strip = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    let untrusted = metadata.replace(&strip(&fx.idp.keys.cert_pem), &strip(&stranger.cert_pem));
    assert_ne!(untrusted, metadata);
    let created = fx
        .api
        .call(
            Method::POST,
            "/saml-providers",
            Some(json!({"account_id": ACCOUNT, "name": "stale", "metadata_document": untrusted})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    let alice = fx.assertion("alice").await;
    let mut cases: Vec<(&str, (u16, String), u16, &str)> = Vec::new();
    // No Role pair for this role in the assertion.
    cases.push((
        "role pair missing",
        fx.assume("Developer", PROVIDER, &fx.assertion("carol").await)
            .await,
        403,
        "AccessDenied",
    ));
    // A provider that does not exist.
    cases.push((
        "unknown provider",
        fx.assume("Developer", "nobody", &alice).await,
        400,
        "InvalidIdentityToken",
    ));
    // Signed by a key the provider's metadata does not hold.
    cases.push((
        "untrusted metadata",
        fx.assume("Developer", "stale", &alice).await,
        400,
        "InvalidIdentityToken",
    ));
    // The real response altered: every signature removed; a NameID changed under
    // the signatures.
    let xml = crate::saml_peer::decode_response(&alice);
    let mut unsigned = xml.clone();
    while let (Some(start), Some(end)) = (
        unsigned.find("<ds:Signature"),
        unsigned.find("</ds:Signature>"),
    ) {
        unsigned.replace_range(start..end + "</ds:Signature>".len(), "");
    }
    assert!(!unsigned.contains("SignatureValue") && unsigned != xml);
    cases.push((
        "unsigned",
        fx.assume(
            "Developer",
            PROVIDER,
            &crate::saml_peer::encode_response(&unsigned),
        )
        .await,
        400,
        "InvalidIdentityToken",
    ));
    let tampered = xml.replacen(">alice</saml:NameID>", ">mallory</saml:NameID>", 1);
    assert_ne!(tampered, xml);
    cases.push((
        "tampered",
        fx.assume(
            "Developer",
            PROVIDER,
            &crate::saml_peer::encode_response(&tampered),
        )
        .await,
        400,
        "InvalidIdentityToken",
    ));
    cases.push((
        "malformed base64",
        fx.assume("Developer", PROVIDER, "%%% not base64 %%%").await,
        400,
        "InvalidIdentityToken",
    ));
    cases.push((
        "oversize",
        fx.assume("Developer", PROVIDER, &"A".repeat(100_001)).await,
        400,
        "ValidationError",
    ));
    cases.push((
        "missing assertion",
        fx.call(&[
            ("RoleArn", &role_arn("Developer")),
            ("PrincipalArn", &provider_arn(PROVIDER)),
        ])
        .await,
        400,
        "ValidationError",
    ));
    cases.push((
        "malformed principal arn",
        fx.call(&[
            ("RoleArn", &role_arn("Developer")),
            ("PrincipalArn", "arn:aws:iam::123456789012:role/Developer"),
            ("SAMLAssertion", &alice),
        ])
        .await,
        400,
        "ValidationError",
    ));
    cases.push((
        "malformed session policy",
        fx.call(&[
            ("RoleArn", &role_arn("Developer")),
            ("PrincipalArn", &provider_arn(PROVIDER)),
            ("SAMLAssertion", &fx.assertion("alice").await),
            ("Policy", "{\"Version\": \"2012-10-17\", \"Statement\": 7}"),
        ])
        .await,
        400,
        "MalformedPolicyDocument",
    ));
    // A server whose configured SAML audience is another URL: this assertion names
    // `<base>/saml` (as Destination, Recipient and Audience), so it is not meant for
    // that server (the Destination is checked first).
    let other =
        app_state(fx.db.store.clone())
            .await
            .with_sts_settings(rolegate::web::StsSettings {
                saml_audience: Some("https://sts.rolegate.example/saml".into()),
            });
    let other_base = crate::helpers::spawn_state(other);
    let response = reqwest::Client::new()
        .post(format!("{other_base}/"))
        .form(&[
            ("Action", "AssumeRoleWithSAML"),
            ("Version", "2011-06-15"),
            ("RoleArn", &role_arn("Developer")),
            ("PrincipalArn", &provider_arn(PROVIDER)),
            ("SAMLAssertion", &fx.assertion("alice").await),
        ])
        .send()
        .await
        .unwrap();
    cases.push((
        "another audience",
        (response.status().as_u16(), response.text().await.unwrap()),
        403,
        "IDPRejectedClaim",
    ));
    // Later than NotOnOrAfter (and the skew): move the server's clock on.
    fx.db.hand.advance(std::time::Duration::from_secs(3600));
    cases.push((
        "expired",
        fx.assume("Developer", PROVIDER, &alice).await,
        400,
        "ExpiredTokenException",
    ));
    for (what, (status, body), want_status, want_code) in &cases {
        assert_eq!(
            (*status, error_code(body)),
            (*want_status, *want_code),
            "{what}: {body}"
        );
        assert!(xml_value(body, "AccessKeyId").is_none(), "{what}");
    }

    let audit = fx.db.store.list_audit(100, None).await.unwrap();
    let reasons: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e.action == "sts:AssumeRoleWithSAML")
        .map(|e| {
            assert_ne!(e.outcome, Outcome::Success, "{e:?}");
            (
                e.details["code"].as_str().unwrap_or_default().to_owned(),
                e.details["saml_reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    for wanted in [
        ("AccessDenied", "role_not_in_assertion"),
        ("InvalidIdentityToken", "unknown_provider"),
        ("InvalidIdentityToken", "untrusted_signature"),
        ("InvalidIdentityToken", "malformed_base64"),
        ("InvalidIdentityToken", "unsigned"),
        ("InvalidIdentityToken", "invalid_signature"),
        ("ValidationError", "invalid_parameter"),
        ("MalformedPolicyDocument", "malformed_policy"),
        ("ExpiredTokenException", "expired"),
        ("IDPRejectedClaim", "wrong_destination"),
    ] {
        assert!(
            reasons.contains(&(wanted.0.to_owned(), wanted.1.to_owned())),
            "{wanted:?} not in {reasons:?}"
        );
    }
    assert_eq!(reasons.len(), cases.len(), "{reasons:?}");
    assert_audited(
        fx.db.store.as_ref(),
        &[("sts:AssumeRoleWithSAML", Outcome::Denied)],
        &[&alice[..200], &alice[alice.len() - 200..]],
    )
    .await;
}

both_backends!(
    cli_and_boto3_trade_an_idp_assertion_for_working_credentials,
    trust_conditions_and_session_attributes_decide,
    bad_saml_input_gets_awss_error_codes_and_no_credentials,
);

/// IdP metadata with `entity_id` and, when given, a signing certificate (PEM).
fn metadata(entity_id: &str, signing_cert_pem: Option<&str>) -> String {
    let key = signing_cert_pem
        .map(|pem| {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            format!(
                "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            )
        })
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\"?>\n<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{entity_id}\">\
         <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{key}\
         <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>\
         <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" \
         Location=\"https://idp.example.test/sso\"/></md:IDPSSODescriptor></md:EntityDescriptor>\n"
    )
}

async fn saml_providers_through_the_admin_api(db: TestStore) {
    let state = app_state(db.store.clone()).await;
    seed::seed_demo(state.store.as_ref()).await.unwrap();
    let api = Api::serve(state).await;
    let first = KeyPair::generate("idp-2026");
    let second = KeyPair::generate("idp-2027");
    let entity = "https://idp.example.test/saml";
    let document = metadata(entity, Some(&first.cert_pem));
    let body = |name: &str, document: &str| {
        Some(json!({"account_id": ACCOUNT, "name": name, "metadata_document": document}))
    };
    let created = api
        .call(Method::POST, "/saml-providers", body("Corp", &document))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.headers["location"],
        format!("/admin/api/v1/saml-providers/{ACCOUNT}/Corp").as_str()
    );
    assert_eq!(created.body["arn"], provider_arn("Corp"));
    assert_eq!(created.body["idp"]["entity_id"], entity);
    assert_eq!(created.body["idp"]["signing_certificates"], 1);
    let again = api
        .call(Method::POST, "/saml-providers", body("Corp", &document))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    // Refused, and nothing stored: no signing certificate, a DTD, a bad name, an
    // account that does not exist.
    let unsigned = api
        .call(
            Method::POST,
            "/saml-providers",
            body("NoCert", &metadata(entity, None)),
        )
        .await;
    assert_eq!(
        unsigned.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unsigned.text
    );
    assert_eq!(
        (unsigned.code(), unsigned.pointer()),
        ("INVALID_SAML_METADATA", "/metadata_document")
    );
    let dtd = document.replacen(
        "<?xml version=\"1.0\"?>\n",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE md [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n",
        1,
    );
    let refused = api
        .call(Method::POST, "/saml-providers", body("Dtd", &dtd))
        .await;
    assert_eq!(refused.code(), "INVALID_SAML_METADATA", "{}", refused.text);
    let refused = api
        .call(Method::POST, "/saml-providers", body("bad name", &document))
        .await;
    assert_eq!(
        (refused.code(), refused.pointer()),
        ("VALIDATION_ERROR", "/name")
    );
    let refused = api
        .call(
            Method::POST,
            "/saml-providers",
            Some(json!({"account_id": "999999999999", "name": "Corp", "metadata_document": document})),
        )
        .await;
    assert_eq!(
        (refused.status, refused.pointer()),
        (StatusCode::UNPROCESSABLE_ENTITY, "/account_id")
    );

    let list = api
        .call(
            Method::GET,
            &format!("/saml-providers?account_id={ACCOUNT}"),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let providers = list.body["saml_providers"].as_array().unwrap();
    assert_eq!(providers.len(), 1, "{}", list.text);
    assert!(providers[0].get("metadata_document").is_none());
    let path = format!("/saml-providers/{ACCOUNT}/Corp");
    let got = api.call(Method::GET, &path, None).await;
    assert_eq!(got.body["metadata_document"], document);

    // A certificate rollover: the new metadata names both certificates.
    let rolled = document.replace(
        "<md:NameIDFormat>",
        &format!(
            "{}<md:NameIDFormat>",
            metadata(entity, Some(&second.cert_pem))
                .split("<md:KeyDescriptor")
                .nth(1)
                .map(|rest| format!(
                    "<md:KeyDescriptor{}",
                    rest.split("<md:NameIDFormat>").next().unwrap()
                ))
                .unwrap()
        ),
    );
    let updated = api
        .call(
            Method::PUT,
            &path,
            Some(json!({"metadata_document": rolled})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["idp"]["signing_certificates"], 2);
    let refused = api
        .call(
            Method::PUT,
            &path,
            Some(json!({"metadata_document": metadata(entity, None)})),
        )
        .await;
    assert_eq!(refused.code(), "INVALID_SAML_METADATA");
    let got = api.call(Method::GET, &path, None).await;
    assert_eq!(got.body["metadata_document"], rolled);

    let deleted = api.call(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = api.call(Method::GET, &path, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(db.store.list_saml_providers().await.unwrap().is_empty());
    assert_audited(
        db.store.as_ref(),
        &[
            ("admin:CreateSamlProvider", Outcome::Success),
            ("admin:UpdateSamlProvider", Outcome::Success),
            ("admin:DeleteSamlProvider", Outcome::Success),
        ],
        &[],
    )
    .await;
}

both_backends!(saml_providers_through_the_admin_api);

/// `rolegate dev --config` with a `[[saml_providers]]` entry for the real IdP: the
/// provider is created, the demo roles trust it, and `aws sts assume-role-with-saml`
/// works out of the box; a restart keeps everything as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_applies_configured_saml_providers_and_trusts_them() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let audience = format!("{base}/saml");
    let pair = format!("{},{}", role_arn("Developer"), provider_arn(PROVIDER));
    let user = SamlUser::new(
        "dana",
        "dana-pass",
        &[
            (AWS_ROLE_ATTRIBUTE, &[&pair]),
            (AWS_SESSION_NAME_ATTRIBUTE, &["dana"]),
        ],
    );
    let Some(idp) = SamlIdp::start_with(&[SamlSp::new(&audience, &audience)], &[user]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let metadata_file = dir.path().join("idp.xml");
    std::fs::write(&metadata_file, idp.metadata_xml().await).unwrap();
    let config = dir.path().join("rolegate.toml");
    std::fs::write(
        &config,
        format!(
            "[[saml_providers]]\naccount_id = \"{ACCOUNT}\"\nname = \"{PROVIDER}\"\nmetadata_file = \"{}\"\n",
            metadata_file.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [
        "dev",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let first = crate::helpers::start_binary(&args, &[], std::time::Duration::from_secs(60));
    let out = first.stdout.join("\n");
    assert!(
        out.contains(&format!("created SAML provider {}", provider_arn(PROVIDER))),
        "{out}"
    );
    assert!(
        out.contains("updated trust of role Developer in SAML provider"),
        "{out}"
    );

    let assertion = idp
        .idp_initiated_response(&audience, "dana", "dana-pass")
        .await;
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(venv_bin("aws"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_STS", &base)
        .env("HOME", home.path())
        .args([
            "sts",
            "assume-role-with-saml",
            "--role-arn",
            &role_arn("Developer"),
            "--principal-arn",
            &provider_arn(PROVIDER),
            "--saml-assertion",
            &assertion,
            "--output",
            "json",
        ]);
    let (code, out, err) = run(command);
    assert_eq!(code, 0, "{out}{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        result["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/dana")
    );
    drop(first);

    let second = crate::helpers::start_binary(&args, &[], std::time::Duration::from_secs(60));
    let out = second.stdout.join("\n");
    assert!(
        out.contains(&format!("kept    SAML provider {}", provider_arn(PROVIDER))),
        "{out}"
    );
    assert!(out.contains("kept    trust of role Developer"), "{out}");
}

#[test]
fn saml_configuration_is_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let file = dir.path().join("rolegate.toml");
        std::fs::write(&file, text).unwrap();
        rolegate::config::Config::load(Some(&file), Vec::new())
    };
    let good = load(
        "[sts]\nsaml_audience = \"https://rolegate.example.com/saml\"\n\
         [[saml_providers]]\naccount_id = \"123456789012\"\nname = \"Corp\"\nmetadata_file = \"/etc/idp.xml\"\n",
    )
    .unwrap();
    assert_eq!(good.saml_providers.len(), 1);
    assert_eq!(
        good.sts.settings().unwrap().saml_audience.as_deref(),
        Some("https://rolegate.example.com/saml")
    );
    for (text, named) in [
        (
            "[[saml_providers]]\naccount_id = \"1234\"\nname = \"Corp\"\nmetadata_file = \"/x\"\n",
            "saml_providers[0] \"Corp\"",
        ),
        (
            "[[saml_providers]]\naccount_id = \"123456789012\"\nname = \"bad name\"\nmetadata_file = \"/x\"\n",
            "saml_providers[0] \"bad name\"",
        ),
        (
            "[[saml_providers]]\naccount_id = \"123456789012\"\nname = \"A\"\nmetadata_file = \"/x\"\n\
             [[saml_providers]]\naccount_id = \"123456789012\"\nname = \"A\"\nmetadata_file = \"/y\"\n",
            "saml_providers[1] \"A\"",
        ),
        (
            "[sts]\nsaml_audience = \"not a url\"\n",
            "sts.saml_audience",
        ),
    ] {
        let error = load(text).unwrap_err().to_string();
        assert!(error.contains(named), "{error}");
    }
}
