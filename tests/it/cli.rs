//! The `rolegate` binary as a user runs it: dev, serve, migrate and policy.

use std::time::{Duration, Instant};

use crate::helpers::{corpus, create_postgres_database, run_binary, start_binary};

fn write(dir: &std::path::Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn dev_seeds_serves_and_reseeds_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let started = Instant::now();
    let first = start_binary(
        &["dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        &[],
        Duration::from_secs(30),
    );
    let startup = started.elapsed();
    let out = first.stdout.join("\n");
    assert!(
        out.contains("created role arn:aws:iam::123456789012:role/Developer"),
        "{out}"
    );
    assert!(out.contains("created user alice"), "{out}");
    let body: serde_json::Value = reqwest::get(format!("{}/readyz", first.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ready");
    assert!(std::path::Path::new(data).join("rolegate.db").exists());
    eprintln!("dev cold start took {startup:?}");

    // The newcomer's path: the AWS CLI with the files dev wrote.
    let data_path = std::path::Path::new(data);
    for (profile, arn) in [
        (
            "rolegate-dev",
            "arn:aws:iam::123456789012:user/demo-app".to_owned(),
        ),
        (
            "rolegate-dev-role",
            "arn:aws:sts::123456789012:assumed-role/DemoWorkload/rolegate-dev".to_owned(),
        ),
    ] {
        let mut aws = std::process::Command::new(crate::helpers::venv_bin("aws"));
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                aws.env_remove(key);
            }
        }
        let out = aws
            .args([
                "sts",
                "get-caller-identity",
                "--profile",
                profile,
                "--output",
                "json",
            ])
            .env("AWS_CONFIG_FILE", data_path.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                data_path.join("aws-credentials"),
            )
            // The CLI caches assumed-role credentials under ~/.aws/cli/cache.
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(identity["Arn"], arn);
    }
    assert!(out.contains("Generated a master key in"), "{out}");
    drop(first);

    let second = start_binary(
        &["dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        &[],
        Duration::from_secs(30),
    );
    let out = second.stdout.join("\n");
    assert!(out.contains("Seed: 0 created"), "{out}");
    assert!(
        !out.contains("Generated a master key"),
        "the key is kept: {out}"
    );
    assert!(
        out.contains("kept    role arn:aws:iam::123456789012:role/Admin"),
        "{out}"
    );
}

#[test]
fn dev_with_unwritable_data_dir_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // A path below a regular file can never be created (even as root).
    let file = write(dir.path(), "plain-file", "x");
    let (code, stdout, stderr) = run_binary(
        &[
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &format!("{file}/data"),
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("rolegate: dev: data directory") && lines[0].contains("not writable"),
        "{stderr}"
    );
}

#[test]
fn serve_with_unreachable_database_fails_fast() {
    let started = Instant::now();
    let (code, _stdout, stderr) = run_binary(
        &["serve"],
        &[
            (
                "ROLEGATE_DATABASE__URL",
                "postgres://rolegate:secret-pw@127.0.0.1:1/rolegate",
            ),
            ("ROLEGATE_DATABASE__CONNECT_TIMEOUT_SECONDS", "2"),
            (
                "ROLEGATE_SECRETS__MASTER_KEY",
                crate::helpers::TEST_MASTER_KEY,
            ),
            ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_ne!(code, 0);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "rolegate: cannot use database postgres://rolegate:***@127.0.0.1:1/rolegate"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret-pw"),
        "the password must never be printed: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// `serve` listening beyond loopback without `server.public_url` warns at start-up
/// (links, redirects and cookies would follow each request's Host header); on
/// loopback it does not.
#[test]
fn serve_warns_without_a_public_url_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    let config = write(
        dir.path(),
        "rolegate.toml",
        &format!("[database]\nurl = \"{url}\"\n"),
    );
    assert_eq!(run_binary(&["migrate", "--config", &config], &[]).0, 0);
    let stderr_of = |listen: &str| {
        let mut server = start_binary(
            &["serve", "--config", &config],
            &[
                ("ROLEGATE_SERVER__LISTEN", listen),
                (
                    "ROLEGATE_SECRETS__MASTER_KEY",
                    crate::helpers::TEST_MASTER_KEY,
                ),
            ],
            Duration::from_secs(30),
        );
        let _ = server.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = server.child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        }
        stderr
    };
    let wide = stderr_of("0.0.0.0:0");
    assert!(
        wide.contains("server.public_url is not set"),
        "warned: {wide}"
    );
    let local = stderr_of("127.0.0.1:0");
    assert!(!local.contains("server.public_url is not set"), "{local}");
}

#[test]
fn serve_rejects_bad_configuration_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "bad.toml",
        "[server]\nlisten = \"not-an-address\"\n",
    );
    let (code, _, stderr) = run_binary(&["serve", "--config", &config], &[]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("invalid configuration") && stderr.contains("listen"),
        "{stderr}"
    );

    let unknown = write(
        dir.path(),
        "unknown.toml",
        "[database]\nurll = \"sqlite://x\"\n",
    );
    let (code, _, stderr) = run_binary(&["serve", "--config", &unknown], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("urll"), "{stderr}");

    let (code, _, stderr) = run_binary(&["serve", "--config", "/no/such/rolegate.toml"], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("/no/such/rolegate.toml"), "{stderr}");

    let (code, _, stderr) = run_binary(&["serve"], &[("ROLEGATE_DATABASE__URL", "mysql://x")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("must start with sqlite: or postgres:"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_then_serve_on_postgres_and_sqlite() {
    let (pg_url, _name) = create_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("serve.db").display());
    for url in [pg_url.as_str(), sqlite_url.as_str()] {
        let config = write(
            dir.path(),
            "rolegate.toml",
            &format!("[database]\nurl = \"{url}\"\n[server]\nlisten = \"127.0.0.1:0\"\n"),
        );
        let (code, stdout, stderr) = run_binary(&["migrate", "--config", &config], &[]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("migrations applied"), "{stdout}");
        // Running it again is a no-op, not an error.
        assert_eq!(run_binary(&["migrate", "--config", &config], &[]).0, 0);

        // The first start creates session-token key 1; rotating adds key 2.
        let key = [(
            "ROLEGATE_SECRETS__MASTER_KEY",
            crate::helpers::TEST_MASTER_KEY,
        )];
        let (code, stdout, stderr) = run_binary(&["rotate-token-key", "--config", &config], &key);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout.trim(), "session-token key 2 is now current");
        let other = [(
            "ROLEGATE_SECRETS__MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )];
        let (code, _, stderr) = run_binary(&["rotate-token-key", "--config", &config], &other);
        assert_ne!(code, 0, "a different master key cannot open the key ring");
        assert!(stderr.contains("master key"), "{stderr}");

        // The environment overrides the file.
        let server = start_binary(
            &["serve", "--config", &config],
            &[
                ("ROLEGATE_LOG__FORMAT", "json"),
                (
                    "ROLEGATE_SECRETS__MASTER_KEY",
                    crate::helpers::TEST_MASTER_KEY,
                ),
            ],
            Duration::from_secs(30),
        );
        let ready = reqwest::get(format!("{}/readyz", server.base_url))
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{url}");
    }
    drop_db(&_name).await;
}

async fn drop_db(name: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&crate::helpers::postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

const S3_READ: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadReports", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]},
    {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::reports/secret/*"},
    {"Sid": "TeamsOnly", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::reports/*",
     "Condition": {"ForAnyValue:StringEquals": {"aws:PrincipalTag/teams": ["finance"]}}}
  ]
}"#;

#[test]
fn policy_validate_reports_each_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", S3_READ);
    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "*"}}"#,
    );
    let (code, stdout, _) = run_binary(&["policy", "validate", &good], &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.is_empty());

    let (code, stdout, stderr) = run_binary(&["policy", "validate", &good, &bad], &[]);
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{bad}: MalformedPolicyDocument: Policy statement must contain actions."
        )),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 2"), "{stderr}");

    // An identity policy is not a trust policy: it has no Principal.
    let (code, stdout, _) = run_binary(&["policy", "validate", "--type", "trust", &good], &[]);
    assert_eq!(code, 1, "{stdout}");
    let (code, _, stderr) = run_binary(&["policy", "validate", "--type", "bogus", &good], &[]);
    assert_eq!(code, 2, "{stderr}");

    // The customer size limit applies only with --customer.
    let read_only = corpus("aws-managed-policies/ReadOnlyAccess.json");
    let read_only = read_only.to_str().unwrap();
    assert_eq!(run_binary(&["policy", "validate", read_only], &[]).0, 0);
    let (code, stdout, _) = run_binary(&["policy", "validate", "--customer", read_only], &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("LimitExceeded"), "{stdout}");

    let (code, stdout, _) = run_binary(&["policy", "validate", "/no/such/policy.json"], &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("cannot read file"), "{stdout}");
}

#[test]
fn policy_simulate_prints_the_decision_first() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "p.json", S3_READ);
    let simulate = |action: &str, resource: &str, context: &[&str]| {
        let mut args = vec![
            "policy",
            "simulate",
            "--policy",
            &policy,
            "--action",
            action,
            "--resource",
            resource,
        ];
        for c in context {
            args.extend(["--context", c]);
        }
        let (code, stdout, stderr) = run_binary(&args, &[]);
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    let out = simulate("S3:getobject", "arn:aws:s3:::reports/2026/q3.csv", &[]);
    assert_eq!(out.lines().next(), Some("Allowed"), "{out}");
    assert!(
        out.contains("statement 1") && out.contains("ReadReports"),
        "{out}"
    );

    let out = simulate(
        "s3:GetObject",
        "arn:aws:s3:::reports/secret/salaries.csv",
        &[],
    );
    assert_eq!(out.lines().next(), Some("ExplicitDeny"), "{out}");
    assert!(out.contains("NoSecrets"), "{out}");

    let out = simulate("s3:DeleteObject", "arn:aws:s3:::reports/a", &[]);
    assert_eq!(out.lines().next(), Some("ImplicitDeny"), "{out}");

    // A repeated --context key is a multi-valued key.
    let out = simulate(
        "s3:PutObject",
        "arn:aws:s3:::reports/a",
        &[
            "aws:PrincipalTag/teams=ops",
            "aws:PrincipalTag/teams=finance",
        ],
    );
    assert_eq!(out.lines().next(), Some("Allowed"), "{out}");
    assert!(out.contains("TeamsOnly"), "{out}");
    let out = simulate(
        "s3:PutObject",
        "arn:aws:s3:::reports/a",
        &["aws:PrincipalTag/teams=ops"],
    );
    assert_eq!(out.lines().next(), Some("ImplicitDeny"), "{out}");

    let (code, _, stderr) = run_binary(
        &[
            "policy",
            "simulate",
            "--policy",
            &policy,
            "--action",
            "s3:GetObject",
            "--resource",
            "*",
            "--context",
            "novalue",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("key=value"), "{stderr}");
}

/// Issue 9: the common guardrail Deny with `StringNotEquals` on a principal
/// tag denies a caller without that tag (AWS: a negated operator on a key
/// absent from the request context is true), and still lets a tagged member
/// of the team through.
#[test]
fn policy_simulate_guardrail_denies_a_principal_without_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "guardrail.json",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Sid":"OnlyData","Effect":"Deny","Action":"s3:*","Resource":"*",
             "Condition":{"StringNotEquals":{"aws:PrincipalTag/team":"data"}}}]}"#,
    );
    let simulate = |context: &[&str]| {
        let mut args = vec![
            "policy",
            "simulate",
            "--policy",
            &policy,
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::b/k",
        ];
        for c in context {
            args.extend(["--context", c]);
        }
        let (code, stdout, stderr) = run_binary(&args, &[]);
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    let out = simulate(&[]);
    assert_eq!(out.lines().next(), Some("ExplicitDeny"), "{out}");
    assert!(out.contains("OnlyData"), "{out}");
    let out = simulate(&["aws:PrincipalTag/team=data"]);
    assert_eq!(out.lines().next(), Some("Allowed"), "{out}");
    let out = simulate(&["aws:PrincipalTag/team=web"]);
    assert_eq!(out.lines().next(), Some("ExplicitDeny"), "{out}");
}
