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
    sts: std::sync::Arc<rolegate::sts::service::Sts>,
    base: String,
    access_key_id: String,
    secret: String,
    dir: tempfile::TempDir,
}

async fn fixture(db: TestStore) -> Fixture {
    let state = app_state(db.store.clone()).await;
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    let (access_key_id, secret) = seed::seed_workload(&state.sts, &mut report, None)
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
fn xml_value<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
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

    // A leaked session key can be denied until it expires: it stops working at once.
    let expires = chrono::Utc::now() + chrono::Duration::minutes(15);
    fx.sts
        .deny_access_key(&key, expires, chrono::Utc::now())
        .await
        .unwrap();
    let (status, body) = fx.call((&key, &secret, Some(&token)), &identity, now).await;
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
