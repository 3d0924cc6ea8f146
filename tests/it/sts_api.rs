//! The STS query API driven by the real AWS CLI and boto3 (from the project's .venv),
//! and by an independent SigV4 signer (the `aws-sigv4` crate) for exact error cases.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use rolegate::iam::{AccountId, RoleName};
use rolegate::seed;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Keys, TestStore, app_state, spawn_state, venv_bin};

const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;

struct Fixture {
    _db: TestStore,
    store: std::sync::Arc<dyn rolegate::store::Store>,
    sts: std::sync::Arc<rolegate::service::issuance::Sts>,
    base: String,
    access_key_id: String,
    secret: String,
    dir: tempfile::TempDir,
}

async fn fixture(db: TestStore) -> Fixture {
    let state = app_state(db.store.clone()).await;
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    let (access_key_id, secret) =
        seed::seed_workload(state.store.as_ref(), &state.sts, &mut report, None)
            .await
            .unwrap()
            .expect("new keys");
    let store = state.store.clone();
    let sts = state.sts.clone();
    let base = spawn_state(state);
    let dir = tempfile::tempdir().unwrap();
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    std::fs::write(
        dir.path().join("config"),
        format!(
            "[profile app]\nregion = us-east-1\nservices = local\ncli_follow_urlparam = false\n\n\
             [profile app-role]\nregion = us-east-1\nrole_arn = {role_arn}\nsource_profile = app\n\
             role_session_name = ci-job\nservices = local\n\n\
             [services local]\nsts =\n  endpoint_url = {base}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("credentials"),
        format!("[app]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    Fixture {
        _db: db,
        store,
        sts,
        base,
        access_key_id,
        secret,
        dir,
    }
}

impl Fixture {
    /// A command with only this fixture's AWS settings in its environment.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Private HOME: the CLI caches assumed-role credentials in ~/.aws/cli/cache.
            .env("HOME", self.dir.path());
        command
    }

    fn aws(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut command = self.command(&venv_bin("aws"));
        command.args(args).args(["--output", "json"]);
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().expect("run aws");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn python(&self, script: &str) -> (i32, String, String) {
        let out = self
            .command(&venv_bin("python"))
            .arg("-c")
            .arg(script)
            .output()
            .expect("run python");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A SigV4-signed STS call from Rust, at `time`.
    async fn call(
        &self,
        keys: (&str, &str, Option<&str>),
        params: &[(&str, &str)],
        time: SystemTime,
    ) -> (u16, String) {
        signed_call(&self.base, keys, params, time).await
    }

    fn user_keys(&self) -> (&str, &str, Option<&str>) {
        (&self.access_key_id, &self.secret, None)
    }
}

async fn signed_call(
    base: &str,
    keys: Keys<'_>,
    params: &[(&str, &str)],
    time: SystemTime,
) -> (u16, String) {
    crate::helpers::signed_sts_call_at(base, keys, params, time).await
}

/// The text of the first `<name>` element.
pub(crate) fn xml_value<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// The unescaped text of the first `<name>` element.
fn xml_text(xml: &str, name: &str) -> String {
    let raw = xml_value(xml, name).unwrap_or_default();
    quick_xml::escape::unescape(raw).unwrap().into_owned()
}

fn error_code(xml: &str) -> &str {
    xml_value(xml, "Code").unwrap_or("<no code>")
}

async fn aws_cli_identity_and_assume_role(db: TestStore) {
    let fx = fixture(db).await;
    let (code, out, err) = fx.aws(&["sts", "get-caller-identity", "--profile", "app"], &[]);
    assert_eq!(code, 0, "{err}");
    let identity: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        identity["Arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/{}", seed::WORKLOAD_USER)
    );
    assert_eq!(identity["Account"], ACCOUNT);
    assert!(identity["UserId"].as_str().unwrap().starts_with("AIDA"));

    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let (code, out, err) = fx.aws(
        &[
            "sts",
            "assume-role",
            "--profile",
            "app",
            "--role-arn",
            &role_arn,
            "--role-session-name",
            "deploy-42",
            "--duration-seconds",
            "900",
            "--tags",
            "Key=pipeline,Value=main",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let assumed: Value = serde_json::from_str(&out).unwrap();
    let creds = &assumed["Credentials"];
    let key = creds["AccessKeyId"].as_str().unwrap();
    assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    assert_eq!(creds["SecretAccessKey"].as_str().unwrap().len(), 40);
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{}/deploy-42",
            seed::WORKLOAD_ROLE
        )
    );
    assert!(
        assumed["AssumedRoleUser"]["AssumedRoleId"]
            .as_str()
            .unwrap()
            .starts_with("AROA")
    );

    // Those credentials work with the CLI (as environment variables, with the
    // endpoint from AWS_ENDPOINT_URL_STS), and identify as the assumed role.
    let (code, out, err) = fx.aws(
        &["sts", "get-caller-identity"],
        &[
            ("AWS_ACCESS_KEY_ID", key),
            (
                "AWS_SECRET_ACCESS_KEY",
                creds["SecretAccessKey"].as_str().unwrap(),
            ),
            ("AWS_SESSION_TOKEN", creds["SessionToken"].as_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", fx.base.as_str()),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let identity: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{}/deploy-42",
            seed::WORKLOAD_ROLE
        )
    );

    // GetAccessKeyInfo answers the account of any key id.
    let (code, out, err) = fx.aws(
        &[
            "sts",
            "get-access-key-info",
            "--profile",
            "app",
            "--access-key-id",
            key,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["Account"],
        ACCOUNT
    );

    // Every issuance is audited, without secrets.
    let audit = fx.store.list_audit(20, None).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.action == "sts:AssumeRole")
        .expect("audited");
    assert_eq!(event.target, role_arn);
    assert_eq!(event.outcome, rolegate::store::Outcome::Success);
    let rendered = serde_json::to_string(&audit).unwrap();
    assert!(!rendered.contains(creds["SecretAccessKey"].as_str().unwrap()));
    assert!(!rendered.contains(&fx.secret));
}

async fn boto3_source_profile_and_denials(db: TestStore) {
    let fx = fixture(db).await;
    let (code, out, err) = fx.python(
        "import boto3, json\n\
         s = boto3.Session(profile_name='app-role')\n\
         print(json.dumps(s.client('sts').get_caller_identity()))\n",
    );
    assert_eq!(code, 0, "{err}");
    let identity: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{}/ci-job",
            seed::WORKLOAD_ROLE
        )
    );

    // A role in an account that does not trust us: AccessDenied, parsed by botocore.
    let (code, out, err) = fx.python(
        "import boto3, botocore\n\
         c = boto3.Session(profile_name='app').client('sts')\n\
         try:\n\
         \x20   c.assume_role(RoleArn='arn:aws:iam::999999999999:role/Other', RoleSessionName='x1')\n\
         \x20   print('allowed')\n\
         except botocore.exceptions.ClientError as e:\n\
         \x20   print(e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode'], e.response['Error']['Message'])\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("AccessDenied 403 User: arn:aws:iam::123456789012:user/demo-app is not authorized to perform: sts:AssumeRole"), "{out}");

    // The workload role does not trust the seeded human roles' sessions, and the
    // Admin role is not assumable from the workload role (no identity permission).
    let (code, out, err) = fx.python(&format!(
        "import boto3, botocore\n\
         c = boto3.Session(profile_name='app-role').client('sts')\n\
         try:\n\
         \x20   c.assume_role(RoleArn='arn:aws:iam::{ACCOUNT}:role/Admin', RoleSessionName='x1')\n\
         \x20   print('allowed')\n\
         except botocore.exceptions.ClientError as e:\n\
         \x20   print(e.response['Error']['Code'])\n"
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "AccessDenied");
}

async fn signature_and_token_errors(db: TestStore) {
    let fx = fixture(db).await;
    let now = SystemTime::now();
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];

    let (status, body) = fx.call(fx.user_keys(), &identity, now).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(xml_value(&body, "Account"), Some(ACCOUNT));
    assert!(body.contains(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));

    let wrong_secret = "0000000000000000000000000000000000000000";
    let (status, body) = fx
        .call((&fx.access_key_id, wrong_secret, None), &identity, now)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );

    let (status, body) = fx
        .call(("AKIAAAAAAAAAAAAAAAAA", wrong_secret, None), &identity, now)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "InvalidClientTokenId"),
        "{body}"
    );

    // A stale signature: real STS answers SignatureDoesNotMatch "Signature expired".
    let stale = now - Duration::from_secs(20 * 60);
    let (status, body) = fx.call(fx.user_keys(), &identity, stale).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    assert!(body.contains("Signature expired"), "{body}");

    let (status, body) = reqwest::Client::new()
        .post(format!("{}/", fx.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    let body = body.text().await.unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (403, "MissingAuthenticationToken"),
        "{body}"
    );

    let (status, body) = fx
        .call(
            fx.user_keys(),
            &[("Action", "LaunchRockets"), ("Version", "2011-06-15")],
            now,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "InvalidAction"),
        "{body}"
    );

    // Session credentials: a tampered token, and an expired one.
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let assume = |name: &'static str, duration: &'static str| {
        vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn.as_str()),
            ("RoleSessionName", name),
            ("DurationSeconds", duration),
        ]
    };
    let (status, body) = fx.call(fx.user_keys(), &assume("short", "900"), now).await;
    assert_eq!(status, 200, "{body}");
    let (key, secret, token) = (
        xml_value(&body, "AccessKeyId").unwrap().to_owned(),
        xml_value(&body, "SecretAccessKey").unwrap().to_owned(),
        xml_value(&body, "SessionToken").unwrap().to_owned(),
    );
    let (status, body) = fx.call((&key, &secret, Some(&token)), &identity, now).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        xml_value(&body, "Arn"),
        Some(
            format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/{}/short",
                seed::WORKLOAD_ROLE
            )
            .as_str()
        )
    );

    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, body) = fx
        .call((&key, &secret, Some(&tampered)), &identity, now)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "InvalidClientTokenId"),
        "{body}"
    );

    // The server's clock decides expiry: 16 minutes on, the 15-minute session is over.
    let later = chrono::Utc::now().timestamp() + 16 * 60;
    let expired = fx
        .sts
        .resolve_keys(&key, Some(&token), later)
        .await
        .unwrap_err();
    assert_eq!((expired.status, expired.code), (403, "ExpiredToken"));

    // A well-formed token sealed under someone else's key ring is not ours.
    let foreign = {
        let other = rolegate::sts::token::TokenKeyring::new(9, &[(9, [7u8; 32])]).unwrap();
        let mut claims = fx_claims(&key, &secret);
        claims.expires_at = chrono::Utc::now().timestamp() + 600;
        other.seal(&claims, &mut rand::rng())
    };
    let (status, body) = fx
        .call((&key, &secret, Some(&foreign)), &identity, now)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "InvalidClientTokenId"),
        "{body}"
    );

    // A session key used without its token is unknown.
    let (status, body) = fx.call((&key, &secret, None), &identity, now).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "InvalidClientTokenId"),
        "{body}"
    );

    // Malformed Authorization headers are IncompleteSignature.
    let response = reqwest::Client::new()
        .post(format!("{}/", fx.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-amz-date", chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
        .header("authorization", format!("AWS4-HMAC-SHA256 Credential={}/20261123/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date", fx.access_key_id))
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (400, "IncompleteSignature"),
        "{body}"
    );
    assert!(body.contains("Signature"), "{body}");
}

fn fx_claims(key: &str, secret: &str) -> rolegate::sts::token::SessionClaims {
    rolegate::sts::token::SessionClaims {
        access_key_id: key.into(),
        secret_access_key: secret.into(),
        kind: rolegate::sts::token::SessionKind::AssumedRole,
        account: ACCOUNT.into(),
        principal_arn: format!("arn:aws:sts::{ACCOUNT}:assumed-role/Admin/forged"),
        principal_id: "AROAFORGED:forged".into(),
        role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/Admin")),
        session_name: Some("forged".into()),
        issued_at: 0,
        expires_at: 0,
        session_policy: None,
        policy_arns: Vec::new(),
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        source_identity: None,
        identity_subject: None,
        chained: false,
    }
}

async fn assume_role_parameter_rules(db: TestStore) {
    let fx = fixture(db).await;
    let now = SystemTime::now();
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let call = |extra: Vec<(&'static str, String)>| {
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), "AssumeRole".into()),
            ("Version".into(), "2011-06-15".into()),
            ("RoleArn".into(), role_arn.clone()),
        ];
        params.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        params
    };
    let send = |params: Vec<(String, String)>| {
        let fx = &fx;
        async move {
            let borrowed: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            fx.call(fx.user_keys(), &borrowed, now).await
        }
    };

    let (status, body) = send(call(vec![])).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "MissingParameter"),
        "{body}"
    );

    let (status, body) = send(call(vec![("RoleSessionName", "has space".into())])).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "ValidationError"),
        "{body}"
    );
    assert!(body.contains("roleSessionName"), "{body}");

    // DemoWorkload allows one hour at most.
    let (status, body) = send(call(vec![
        ("RoleSessionName", "s1".into()),
        ("DurationSeconds", "7200".into()),
    ]))
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "ValidationError"),
        "{body}"
    );
    assert!(body.contains("MaxSessionDuration"), "{body}");
    let (status, body) = send(call(vec![
        ("RoleSessionName", "s1".into()),
        ("DurationSeconds", "60".into()),
    ]))
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "ValidationError"),
        "{body}"
    );

    let big = format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":[{}],\"Resource\":\"*\"}}]}}",
        (0..200)
            .map(|i| format!("\"s3:Action{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, body) = send(call(vec![
        ("RoleSessionName", "s1".into()),
        ("Policy", big),
    ]))
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "PackedPolicyTooLarge"),
        "{body}"
    );
    // Issue 15 item 12: a small packed size padded with 70 KB of white space
    // is refused on its raw size (64 KiB), before any parsing.
    let padded = format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::b/{}{}\"}}]}}",
        "${".repeat(500),
        " ".repeat(70_000)
    );
    let (status, body) = send(call(vec![
        ("RoleSessionName", "s1".into()),
        ("Policy", padded),
    ]))
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "PackedPolicyTooLarge"),
        "{body}"
    );
    assert!(body.contains("65536 bytes"), "{body}");
    let (status, body) = send(call(vec![
        ("RoleSessionName", "s1".into()),
        ("Policy", "{\"Version\":\"2012-10-17\"}".into()),
    ]))
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "MalformedPolicyDocument"),
        "{body}"
    );

    // A session policy narrows the session: SourceIdentity is echoed back.
    let (status, body) = send(call(vec![
        ("RoleSessionName", "narrow".into()),
        ("SourceIdentity", "alice".into()),
        ("Policy", "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}]}".into()),
    ]))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(xml_value(&body, "SourceIdentity"), Some("alice"));
    let packed: u32 = xml_value(&body, "PackedPolicySize")
        .unwrap()
        .parse()
        .unwrap();
    assert!(packed > 0 && packed < 100, "{packed}");

    // Role chaining: at most one hour, and revocation stops the old sessions.
    let (key, secret, token) = (
        xml_value(&body, "AccessKeyId").unwrap().to_owned(),
        xml_value(&body, "SecretAccessKey").unwrap().to_owned(),
        xml_value(&body, "SessionToken").unwrap().to_owned(),
    );
    let chained = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn.as_str()),
        ("RoleSessionName", "chained"),
        ("DurationSeconds", "3601"),
    ];
    let (status, body) = fx.call((&key, &secret, Some(&token)), &chained, now).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "ValidationError"),
        "{body}"
    );
    assert!(body.contains("role chaining"), "{body}");

    fx.store
        .revoke_role_sessions(
            &AccountId::parse(ACCOUNT).unwrap(),
            &RoleName::parse(seed::WORKLOAD_ROLE).unwrap(),
            chrono::Utc::now() + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    let (status, body) = fx
        .call((&key, &secret, Some(&token)), &chained[..4], now)
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");
    assert!(body.contains("revoked"), "{body}");

    // GetSessionToken needs long-term keys.
    let session_token = [
        ("Action", "GetSessionToken"),
        ("Version", "2011-06-15"),
        ("DurationSeconds", "900"),
    ];
    let (status, body) = fx
        .call((&key, &secret, Some(&token)), &session_token, now)
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");
    let (status, body) = fx.call(fx.user_keys(), &session_token, now).await;
    assert_eq!(status, 200, "{body}");
    assert!(xml_value(&body, "AccessKeyId").unwrap().starts_with("ASIA"));

    // Denials are audited with the reason.
    let audit = fx.store.list_audit(50, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.outcome == rolegate::store::Outcome::Denied
                && e.details["code"] == "AccessDenied")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.outcome == rolegate::store::Outcome::Failure
                && e.details["code"] == "PackedPolicyTooLarge")
    );
}

both_backends!(
    aws_cli_identity_and_assume_role,
    boto3_source_profile_and_denials,
    signature_and_token_errors,
    assume_role_parameter_rules,
);

/// Rotation: new sessions are sealed with the new key, old sessions keep working, and
/// a second replica sharing the database learns the new key when it meets it.
async fn token_key_rotation(db: TestStore) {
    let fx = fixture(db).await;
    let now = SystemTime::now();
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let assume = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn.as_str()),
        ("RoleSessionName", "before"),
    ];
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    let session = |body: &str| {
        (
            xml_value(body, "AccessKeyId").unwrap().to_owned(),
            xml_value(body, "SecretAccessKey").unwrap().to_owned(),
            xml_value(body, "SessionToken").unwrap().to_owned(),
        )
    };
    let (_, body) = fx.call(fx.user_keys(), &assume, now).await;
    let old = session(&body);
    assert_eq!(
        rolegate::sts::token::TokenKeyring::key_id_of(&old.2),
        Some(1)
    );

    // Another replica over the same database rotates.
    let replica = app_state(fx.store.clone()).await;
    assert_eq!(replica.sts.rotate_token_key().await.unwrap(), 2);
    let (status, body) = signed_call(&spawn_state(replica), fx.user_keys(), &assume, now).await;
    assert_eq!(status, 200, "{body}");
    let new = session(&body);
    assert_eq!(
        rolegate::sts::token::TokenKeyring::key_id_of(&new.2),
        Some(2)
    );

    // The first replica accepts both: the new key is loaded on first sight.
    for (key, secret, token) in [&old, &new] {
        let (status, body) = fx.call((key, secret, Some(token)), &identity, now).await;
        assert_eq!(status, 200, "{body}");
    }
}

both_backends!(token_key_rotation);

/// The trust policy must admit the caller: identity permissions alone never let a
/// principal assume a role, even in its own account. Also ExternalId conditions,
/// session policies narrowing chained sessions, and inactive keys.
async fn trust_policies_gate_every_assume_role(db: TestStore) {
    let fx = fixture(db).await;
    let now = SystemTime::now();
    let account = AccountId::parse(ACCOUNT).unwrap();
    // demo-app may assume role/* and Admin trusts the account: an Admin session.
    let admin_arn = format!("arn:aws:iam::{ACCOUNT}:role/Admin");
    let (status, body) = fx
        .call(
            fx.user_keys(),
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", admin_arn.as_str()),
                ("RoleSessionName", "ops"),
            ],
            now,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let admin = (
        xml_value(&body, "AccessKeyId").unwrap().to_owned(),
        xml_value(&body, "SecretAccessKey").unwrap().to_owned(),
        xml_value(&body, "SessionToken").unwrap().to_owned(),
    );
    let admin_keys = (admin.0.as_str(), admin.1.as_str(), Some(admin.2.as_str()));
    // Admin may do anything (Action *), but DemoWorkload trusts only demo-app.
    let workload = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let (status, body) = fx
        .call(
            admin_keys,
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", workload.as_str()),
                ("RoleSessionName", "hop"),
            ],
            now,
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");

    // A role that demands an ExternalId.
    let mut vendor = rolegate::store::NewRole::new(
        account.clone(),
        RoleName::parse("VendorAudit").unwrap(),
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/{}", seed::WORKLOAD_USER)},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "vendor-7731"}}}]})
        .to_string(),
    );
    vendor.description = rolegate::iam::Description::parse("external auditor").unwrap();
    fx.store.create_role(&vendor).await.unwrap();
    let vendor_arn = format!("arn:aws:iam::{ACCOUNT}:role/VendorAudit");
    let assume_vendor = |external: Option<&'static str>| {
        let mut p = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", vendor_arn.as_str()),
            ("RoleSessionName", "audit"),
        ];
        if let Some(e) = external {
            p.push(("ExternalId", e));
        }
        p
    };
    let (status, body) = fx.call(fx.user_keys(), &assume_vendor(None), now).await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");
    let (status, body) = fx
        .call(fx.user_keys(), &assume_vendor(Some("wrong-id")), now)
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");
    let (status, body) = fx
        .call(fx.user_keys(), &assume_vendor(Some("vendor-7731")), now)
        .await;
    assert_eq!(status, 200, "{body}");

    // A session policy narrows the session: this Admin session may not chain on.
    let narrow = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}]}";
    let (status, body) = fx
        .call(
            fx.user_keys(),
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", admin_arn.as_str()),
                ("RoleSessionName", "narrow"),
                ("Policy", narrow),
            ],
            now,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let narrowed = (
        xml_value(&body, "AccessKeyId").unwrap().to_owned(),
        xml_value(&body, "SecretAccessKey").unwrap().to_owned(),
        xml_value(&body, "SessionToken").unwrap().to_owned(),
    );
    let readonly = format!("arn:aws:iam::{ACCOUNT}:role/ReadOnly");
    let chain = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", readonly.as_str()),
        ("RoleSessionName", "chain"),
    ];
    let (status, body) = fx
        .call((&narrowed.0, &narrowed.1, Some(&narrowed.2)), &chain, now)
        .await;
    assert_eq!((status, error_code(&body)), (403, "AccessDenied"), "{body}");
    let (status, body) = fx.call(admin_keys, &chain, now).await;
    assert_eq!(
        status, 200,
        "the unrestricted Admin session may chain: {body}"
    );

    // Deactivated long-term keys stop working; IAM's two-key quota holds.
    let user = rolegate::iam::UserName::parse(seed::WORKLOAD_USER).unwrap();
    fx.sts.create_access_key(&account, &user).await.unwrap();
    let third = fx.sts.create_access_key(&account, &user).await.unwrap_err();
    assert_eq!(third.code(), "LimitExceeded");
    fx.store
        .set_access_key_status(
            &fx.access_key_id,
            rolegate::store::AccessKeyStatus::Inactive,
        )
        .await
        .unwrap();
    crate::helpers::past_iam_cache_check(&fx._db.hand);
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    let (status, body) = fx.call(fx.user_keys(), &identity, now).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "InvalidClientTokenId"),
        "{body}"
    );
}

/// `AWS_ENDPOINT_URL_STS` with a path prefix (`/sts/`): the path is signed as sent.
async fn sts_under_a_path_prefix(db: TestStore) {
    let fx = fixture(db).await;
    for prefix in ["/sts", "/sts/"] {
        let endpoint = format!("{}{prefix}", fx.base);
        let (code, out, err) = fx.aws(
            &["sts", "get-caller-identity"],
            &[
                ("AWS_ACCESS_KEY_ID", fx.access_key_id.as_str()),
                ("AWS_SECRET_ACCESS_KEY", fx.secret.as_str()),
                ("AWS_ENDPOINT_URL_STS", endpoint.as_str()),
                ("AWS_DEFAULT_REGION", "us-east-1"),
            ],
        );
        assert_eq!(code, 0, "{prefix}: {err}");
        assert!(out.contains(seed::WORKLOAD_USER), "{out}");
    }
}

both_backends!(
    trust_policies_gate_every_assume_role,
    sts_under_a_path_prefix
);

// ---------------------------------------------------------------------------------
// STS over GET: presigned URLs (botocore's presigner, the aws-iam-authenticator
// token) and header-signed GETs (the `aws-sigv4` crate).

/// A presigned STS GET URL computed by AWS's own `aws-sigv4` crate, signed at `time`,
/// valid `expires` from then, with `headers` (beside `host`) signed too.
fn presigned_url(
    base: &str,
    (akid, secret, token): Keys<'_>,
    params: &[(&str, &str)],
    time: SystemTime,
    expires: Duration,
) -> String {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;
    let url = format!(
        "{base}/?{}",
        serde_urlencoded::to_string(params).expect("query")
    );
    let identity =
        aws_credential_types::Credentials::new(akid, secret, token.map(str::to_owned), None, "t")
            .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let host = crate::helpers::host_of(base);
    let signable = SignableRequest::new(
        "GET",
        &url,
        [("host", host)].into_iter(),
        SignableBody::Bytes(b""),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &signing).expect("sign").into_parts();
    let added: Vec<(&str, &str)> = instructions
        .params()
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .collect();
    format!(
        "{url}&{}",
        serde_urlencoded::to_string(added).expect("query")
    )
}

/// GET `url` (no redirects followed) with extra headers: (status, headers, body).
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// Session credentials of the workload role, from AssumeRole.
async fn role_session(fx: &Fixture, name: &str) -> (String, String, String) {
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let params = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn.as_str()),
        ("RoleSessionName", name),
    ];
    let (status, body) = fx.call(fx.user_keys(), &params, SystemTime::now()).await;
    assert_eq!(status, 200, "{body}");
    let value = |name| xml_value(&body, name).unwrap().to_owned();
    (
        value("AccessKeyId"),
        value("SecretAccessKey"),
        value("SessionToken"),
    )
}

fn with_signature(url: &str, change: impl Fn(&str) -> String) -> String {
    let start = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let end = url[start..].find('&').map_or(url.len(), |i| start + i);
    format!(
        "{}{}{}",
        &url[..start],
        change(&url[start..end]),
        &url[end..]
    )
}

/// botocore's `generate_presigned_url('get_caller_identity', HttpMethod='GET')`, with
/// an IAM user's keys and with role-session credentials (token in the query), as
/// Vault's AWS auth method and "prove who you are" schemes replay them; and the
/// aws-iam-authenticator / `aws eks get-token` token: the same URL with the
/// `x-k8s-aws-id` header signed, base64url-encoded behind `k8s-aws-v1.`.
async fn sts_get_presigned_urls_from_botocore(db: TestStore) {
    let fx = fixture(db).await;
    let (role_key, role_secret, role_token) = role_session(&fx, "presigner").await;
    let script = "import base64, json, os, boto3\n\
         def client(key, secret, token=None):\n\
         \x20   return boto3.client('sts', endpoint_url=os.environ['BASE'], region_name='us-east-1',\n\
         \x20       aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)\n\
         def presign(c):\n\
         \x20   return c.generate_presigned_url('get_caller_identity', Params={}, ExpiresIn=60, HttpMethod='GET')\n\
         user = client(os.environ['KEY'], os.environ['SECRET'])\n\
         role = client(os.environ['ROLE_KEY'], os.environ['ROLE_SECRET'], os.environ['ROLE_TOKEN'])\n\
         k8s = client(os.environ['KEY'], os.environ['SECRET'])\n\
         def add_cluster_id(request, **kwargs):\n\
         \x20   request.headers['x-k8s-aws-id'] = 'rolegate-test'\n\
         k8s.meta.events.register('before-sign.sts.GetCallerIdentity', add_cluster_id)\n\
         token = 'k8s-aws-v1.' + base64.urlsafe_b64encode(presign(k8s).encode()).decode().rstrip('=')\n\
         print(json.dumps({'user': presign(user), 'role': presign(role), 'token': token}))\n";
    let out = fx
        .command(&venv_bin("python"))
        .arg("-c")
        .arg(script)
        .env("BASE", &fx.base)
        .env("KEY", &fx.access_key_id)
        .env("SECRET", &fx.secret)
        .env("ROLE_KEY", &role_key)
        .env("ROLE_SECRET", &role_secret)
        .env("ROLE_TOKEN", &role_token)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls: Value = serde_json::from_slice(&out.stdout).unwrap();
    let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/{}", seed::WORKLOAD_USER);

    // The IAM user's URL: the caller's ARN, in STS's XML.
    let user_url = urls["user"].as_str().unwrap();
    assert!(
        user_url.starts_with(&format!("{}/?Action=GetCallerIdentity", fx.base)),
        "{user_url}"
    );
    assert!(user_url.contains("X-Amz-Expires=60"), "{user_url}");
    let (status, _, body) = get(user_url, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("<GetCallerIdentityResponse"), "{body}");
    assert_eq!(xml_value(&body, "Arn"), Some(user_arn.as_str()));
    assert_eq!(xml_value(&body, "Account"), Some(ACCOUNT));

    // Role-session credentials: the session token travels in the query.
    let role_url = urls["role"].as_str().unwrap();
    assert!(role_url.contains("X-Amz-Security-Token="), "{role_url}");
    let (status, _, body) = get(role_url, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        xml_value(&body, "Arn"),
        Some(
            format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/{}/presigner",
                seed::WORKLOAD_ROLE
            )
            .as_str()
        )
    );

    // A tampered signature: SignatureDoesNotMatch in AWS error XML.
    for url in [user_url, role_url] {
        let tampered = with_signature(url, |sig| {
            let flipped = if sig.ends_with('0') { '1' } else { '0' };
            format!("{}{flipped}", &sig[..sig.len() - 1])
        });
        let (status, _, body) = get(&tampered, &[]).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "SignatureDoesNotMatch"),
            "{body}"
        );
        assert!(
            body.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
            "{body}"
        );
        assert_eq!(xml_value(&body, "Type"), Some("Sender"));
    }

    // The aws-iam-authenticator token, decoded as its server does, replayed with the
    // cluster id header it signed.
    use base64::Engine as _;
    let token = urls["token"].as_str().unwrap();
    let encoded = token.strip_prefix("k8s-aws-v1.").expect("token prefix");
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    assert!(
        url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"),
        "{url}"
    );
    let (status, _, body) = get(&url, &[("x-k8s-aws-id", "rolegate-test")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(xml_value(&body, "Arn"), Some(user_arn.as_str()));
    // Replayed for another cluster: the signature does not match.
    let (status, _, body) = get(&url, &[("x-k8s-aws-id", "other-cluster")]).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    // Replayed without the header it signed: refused with AWS's wording for a
    // signed header the request lacks.
    let (status, _, body) = get(&url, &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "IncompleteSignature"),
        "{body}"
    );
    assert_eq!(
        xml_text(&body, "Message"),
        "'x-k8s-aws-id' is named as a SignedHeader, but it does not exist in the HTTP request."
    );
}

/// GET without a signature, with a header signature, with an expired presigned URL;
/// and the portal keeps `GET /` without `Action`.
async fn sts_get_header_signatures_expiry_and_the_portal(db: TestStore) {
    let fx = fixture(db).await;
    let now = SystemTime::now();
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    let user_arn = format!("arn:aws:iam::{ACCOUNT}:user/{}", seed::WORKLOAD_USER);

    // `GET /` without Action is still the portal's.
    let (status, headers, _) = get(&format!("{}/", fx.base), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/start");
    let (status, headers, _) = get(&format!("{}/?foo=Action", fx.base), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/start");

    // Unsigned: the same error as POST.
    let query = "Action=GetCallerIdentity&Version=2011-06-15";
    for path in ["/", "/sts", "/sts/"] {
        let (status, _, body) = get(&format!("{}{path}?{query}", fx.base), &[]).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "MissingAuthenticationToken"),
            "{path}: {body}"
        );
    }

    // Signed in the Authorization header, for a GET with the parameters in the query.
    let url = format!("{}/?{query}", fx.base);
    let host = crate::helpers::host_of(&fx.base);
    let sign = |secret: &str| {
        crate::helpers::sigv4_headers(
            "GET",
            &url,
            &[("host", host)],
            b"",
            (&fx.access_key_id, secret, None),
            "sts",
            now,
        )
    };
    let signed = sign(&fx.secret);
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = get(&url, &headers).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(xml_value(&body, "Arn"), Some(user_arn.as_str()));
    let wrong = sign("0000000000000000000000000000000000000000");
    let headers: Vec<(&str, &str)> = wrong
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = get(&url, &headers).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );

    // A presigned URL from AWS's signer works at once...
    let fresh = presigned_url(
        &fx.base,
        fx.user_keys(),
        &identity,
        now,
        Duration::from_secs(60),
    );
    let (status, _, body) = get(&fresh, &[]).await;
    assert_eq!(status, 200, "{body}");
    // STS does not honour X-Amz-Expires: signed two minutes ago "for 60 s", it still
    // works (as aws-iam-authenticator's tokens must)...
    let older = presigned_url(
        &fx.base,
        fx.user_keys(),
        &identity,
        now - Duration::from_secs(120),
        Duration::from_secs(60),
    );
    let (status, _, body) = get(&older, &[]).await;
    assert_eq!(status, 200, "{body}");
    // ...and 15 minutes after its date it is stale, whatever it claims: STS's
    // answer to a stale signature.
    for claimed in [60, 604_800] {
        let expired = presigned_url(
            &fx.base,
            fx.user_keys(),
            &identity,
            now - Duration::from_secs(16 * 60),
            Duration::from_secs(claimed),
        );
        let (status, _, body) = get(&expired, &[]).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "SignatureDoesNotMatch"),
            "{body}"
        );
        let message = xml_text(&body, "Message");
        assert!(message.starts_with("Signature expired: "), "{message}");
        assert!(message.ends_with(" - 15 min.)"), "{message}");
    }

    // GET serves every action, credentials included, never cacheable.
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let assume = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn.as_str()),
        ("RoleSessionName", "over-get"),
    ];
    let url = presigned_url(
        &fx.base,
        fx.user_keys(),
        &assume,
        now,
        Duration::from_secs(60),
    );
    let (status, headers, body) = get(&url, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(xml_value(&body, "SessionToken").is_some(), "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let (status, headers, body) = get(&fresh, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("cache-control").is_none());
}

/// Credential-issuing answers must not be kept by browsers or proxies.
async fn sts_credentials_are_not_cacheable(db: TestStore) {
    let fx = fixture(db).await;
    let form = "Action=GetSessionToken&Version=2011-06-15";
    let url = format!("{}/", fx.base);
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let host = crate::helpers::host_of(&fx.base);
    let signature = crate::helpers::sigv4_headers(
        "POST",
        &url,
        &[("content-type", content_type), ("host", host)],
        form.as_bytes(),
        fx.user_keys(),
        "sts",
        SystemTime::now(),
    );
    let mut request = reqwest::Client::new()
        .post(&url)
        .header("content-type", content_type)
        .body(form);
    for (name, value) in signature {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    assert!(xml_value(&body, "SecretAccessKey").is_some(), "{body}");
}

/// `.member.N` lists are refused with AWS's validation error once longer than the
/// model allows, however long (the parser is linear in the request's size).
async fn sts_over_long_member_lists_are_refused(db: TestStore) {
    let fx = fixture(db).await;
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let request = |list: &str, suffix: &str, n: usize| {
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), "AssumeRole".into()),
            ("Version".into(), "2011-06-15".into()),
            ("RoleArn".into(), role_arn.clone()),
            ("RoleSessionName".into(), "lists".into()),
        ];
        for i in 1..=n {
            params.push((format!("{list}.member.{i}{suffix}"), format!("k{i}")));
        }
        params
    };
    // As many as fit in the 256 KiB body limit.
    let cases = [
        (
            "PolicyArns",
            ".arn",
            8_000,
            "'8000 ARNs' at 'policyArns'",
            10,
        ),
        ("PolicyArns", ".arn", 11, "'11 ARNs' at 'policyArns'", 10),
        ("Tags", ".Key", 51, "'51 tags' at 'tags'", 50),
        (
            "TransitiveTagKeys",
            "",
            51,
            "'51 keys' at 'transitiveTagKeys'",
            50,
        ),
    ];
    for (list, suffix, n, value, max) in cases {
        let params = request(list, suffix, n);
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, body) = fx.call(fx.user_keys(), &borrowed, SystemTime::now()).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "ValidationError"),
            "{body}"
        );
        assert_eq!(
            xml_text(&body, "Message"),
            format!(
                "1 validation error detected: Value {value} failed to satisfy constraint: Member must have length less than or equal to {max}"
            ),
        );
    }
}

both_backends!(
    sts_get_presigned_urls_from_botocore,
    sts_get_header_signatures_expiry_and_the_portal,
    sts_credentials_are_not_cacheable,
    sts_over_long_member_lists_are_refused,
);
