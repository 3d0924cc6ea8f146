//! The command-line client end to end, with real programs: `rolegate login` (the
//! real binary, `HOME` in a temporary directory) approved in real Chromium, then
//! `rolegate credentials` and `rolegate exec`, and the AWS CLI v1 and boto3 (the
//! project's .venv) using what `login` wrote: the `credential_process` profiles in
//! `~/.aws/config` and the SSO token in `~/.aws/sso/cache` (botocore's own format).
//!
//! Chromium and .venv are required in CI (`CI=true`); elsewhere a missing Chromium
//! skips the browser tests with a printed reason (see browser.rs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use rolegate::seed;
use thirtyfour::By;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::both_backends;
use crate::browser::{
    Browser, backend, browser_installed, password_of, role_css, seeded_server, submit_sign_in,
    with_browser,
};
use crate::helpers::{TestStore, rolegate_bin, spawn_state, venv_bin};

/// sha1("rolegate"): the token file of the default sso-session.
const DEFAULT_TOKEN_FILE: &str = "c6a7474d9fab04c0f64fafcfcddeab32f29961a5.json";
const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;
/// Longest a child program may run.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(60);

fn developer_arn() -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/Developer/alice@example.com")
}

fn token_path(home: &Path) -> PathBuf {
    home.join(".aws/sso/cache").join(DEFAULT_TOKEN_FILE)
}

/// The environment every child gets: nothing of the developer's (no AWS_*), a
/// private HOME, and PATH with the `rolegate` binary first (as `credential_process
/// = rolegate credentials ...` needs it).
fn base_env(home: &Path) -> Vec<(String, String)> {
    let bin_dir = Path::new(rolegate_bin())
        .parent()
        .expect("binary directory");
    vec![
        ("HOME".into(), home.display().to_string()),
        (
            "PATH".into(),
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
            ),
        ),
        ("LANG".into(), "C.UTF-8".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ]
}

/// Runs `program ARGS` with [`base_env`] plus `envs`: (exit code, stdout, stderr).
pub(crate) async fn run(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    home: &Path,
    envs: &[(&str, &str)],
) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(program.as_ref());
    command.args(args).env_clear().kill_on_drop(true);
    command.envs(base_env(home));
    command.envs(envs.iter().copied());
    let output = tokio::time::timeout(PROGRAM_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{:?} {args:?} took too long", program.as_ref()))
        .expect("run program");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) async fn rolegate(
    args: &[&str],
    home: &Path,
    envs: &[(&str, &str)],
) -> (i32, String, String) {
    run(rolegate_bin(), args, home, envs).await
}

/// A running `rolegate login`: its stderr is collected as it comes (the
/// verification URL is printed before it starts polling).
pub(crate) struct LoginRun {
    child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
    stdout: tokio::task::JoinHandle<String>,
    stderr_reader: tokio::task::JoinHandle<()>,
}

impl LoginRun {
    pub(crate) fn start(base: &str, home: &Path, extra: &[&str]) -> Self {
        let mut command = tokio::process::Command::new(rolegate_bin());
        command
            .args(["login", "--url", base, "--no-browser"])
            .args(extra)
            .env_clear()
            .envs(base_env(home))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn rolegate login");
        let mut out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = collected.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        let stdout = tokio::spawn(async move {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text).await;
            text
        });
        Self {
            child,
            stderr,
            stdout,
            stderr_reader,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The verification URL (with the user code) once printed.
    pub(crate) async fn verification_url(&mut self) -> anyhow::Result<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.stderr();
            if let Some(url) = text
                .lines()
                .map(str::trim)
                .find(|line| line.starts_with("http") && line.contains("/device?user_code="))
            {
                let code = url.rsplit("user_code=").next().unwrap_or_default();
                ensure!(
                    text.contains(&format!("\n    {code}\n")),
                    "the user code is shown on its own: {text}"
                );
                return Ok((url.to_owned(), code.to_owned()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                anyhow::bail!("login exited ({status}) before printing a URL: {text}");
            }
            ensure!(Instant::now() < deadline, "no verification URL: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the command to end: (exit code, stdout, stderr).
    pub(crate) async fn finish(self) -> anyhow::Result<(i32, String, String)> {
        let Self {
            mut child,
            stderr,
            stdout,
            stderr_reader,
        } = self;
        let collected = || stderr.lock().expect("stderr lock").clone();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .with_context(|| format!("login still running; stderr: {}", collected()))??;
        let stdout = stdout.await?;
        stderr_reader.await?;
        Ok((status.code().unwrap_or(-1), stdout, collected()))
    }
}

/// Opens the verification URL, signs in as alice if asked to, checks the code shown
/// and clicks `button` (`#approve` or `#deny`); returns the result page's heading.
async fn decide_in_browser(
    browser: &Browser,
    (url, code): &(String, String),
    sign_in: bool,
    button: &str,
) -> anyhow::Result<String> {
    browser.goto(url).await?;
    if sign_in {
        browser.wait_for_path("/signin").await?;
        submit_sign_in(browser, "alice", password_of("alice")).await?;
    }
    browser.wait_for_path("/device").await?;
    let shown = browser
        .find("#user_code")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(
        &shown == code,
        "page shows code {shown:?}, terminal {code:?}"
    );
    let button = browser.find(button).await?;
    browser.click_to_next_page(&button).await?;
    Ok(browser.find("#device-result").await?.text().await?)
}

/// The whole developer path: login approved in Chromium, the portal's
/// credential_process block, a second login (reusing the client registration) that
/// writes ~/.aws/config, then credentials, exec, the AWS CLI and boto3.
async fn login_then_aws_tools(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let base = seeded_server(&db).await;
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path().to_owned();
    // The user's own settings, which --write-config must keep.
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let own = "[default]\nregion = eu-west-1\n\n[profile mine]\nregion = eu-north-1\n";
    std::fs::write(home.join(".aws/config"), own).unwrap();

    let name = format!("cli-login-{}", backend(&db));
    let (first, second) = {
        let base = base.clone();
        let home = home.clone();
        let results = Arc::new(Mutex::new(None));
        let out = results.clone();
        with_browser(&name, |browser| async move {
            let outcome = async {
                let mut login = LoginRun::start(&base, &home, &[]);
                let link = login.verification_url().await?;
                ensure!(
                    link.0 == format!("{base}/device?user_code={}", link.1),
                    "verification URL {link:?}"
                );
                let result = decide_in_browser(&browser, &link, true, "#approve").await?;
                ensure!(result.contains("approved"), "result page says {result:?}");
                let first = login.finish().await?;

                // The portal's access-keys page offers the credential_process profile.
                browser.goto(&format!("{base}/start")).await?;
                let keys = browser
                    .find(&format!(
                        "{} form[action='/start/credentials'] button[type=submit]",
                        role_css("Developer")
                    ))
                    .await?;
                browser.click_to_next_page(&keys).await?;
                let block = browser.find("pre#credential-process").await?.text().await?;
                // Self-contained: the profile sends STS (and SSO) to this server.
                for expected in [
                    format!(
                        "[profile Developer-{ACCOUNT}]\ncredential_process = rolegate credentials \
                         --account-id {ACCOUNT} --role-name Developer\nregion = us-east-1\n\
                         services = rolegate"
                    ),
                    format!("[services rolegate]\nsts =\n  endpoint_url = {base}"),
                    // http here: the AWS-shaped identifier the CLI v2 accepts.
                    "[sso-session rolegate]\nsso_start_url = https://d-0000000000.awsapps.com/start"
                        .to_owned(),
                    "[profile rolegate]\nsso_session = rolegate\nservices = rolegate".to_owned(),
                ] {
                    ensure!(
                        block.contains(&expected),
                        "credential_process block {block:?} lacks {expected:?}"
                    );
                }
                let card = browser
                    .find("section.card:has(pre#credential-process)")
                    .await?;
                let hint = card.text().await?;
                ensure!(
                    hint.contains(&format!("rolegate login --url {base}")),
                    "hint {hint:?}"
                );
                card.find(By::Css("button.copy[data-copy=credential-process]"))
                    .await?;

                // Signed in already: a second login is one click, and writes the config.
                let mut login = LoginRun::start(&base, &home, &["--write-config"]);
                let link = login.verification_url().await?;
                let result = decide_in_browser(&browser, &link, false, "#approve").await?;
                ensure!(result.contains("approved"), "result page says {result:?}");
                let second = login.finish().await?;
                *out.lock().unwrap() = Some((first, second));
                Ok(())
            }
            .await;
            (browser, outcome)
        })
        .await;
        let taken = results.lock().unwrap().take();
        taken.expect("both logins ran")
    };

    // First login: the token saved, roles listed, the config snippet on stdout.
    let (code, stdout, stderr) = first;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("Signed in."), "{stderr}");
    for role in ["Admin", "Developer", "ReadOnly"] {
        assert!(
            stderr.contains(&format!("{role}-{ACCOUNT}")),
            "{role} listed: {stderr}"
        );
        assert!(
            stdout.contains(&format!(
                "[profile {role}-{ACCOUNT}]\ncredential_process = rolegate credentials \
                 --account-id {ACCOUNT} --role-name {role}\nregion = us-east-1\nservices = rolegate\n"
            )),
            "{role} profile: {stdout}"
        );
    }
    assert!(!stdout.contains("DemoWorkload"), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "[sso-session rolegate]\nsso_start_url = https://d-0000000000.awsapps.com/start\n\
             sso_region = us-east-1\n\
             sso_registration_scopes = sso:account:access\n\n[services rolegate]\n\
             sts =\n  endpoint_url = {base}\nsso =\n  endpoint_url = {base}\n\
             sso_oidc =\n  endpoint_url = {base}\n\n[profile rolegate]\nsso_session = rolegate\n\
             services = rolegate\nregion = us-east-1\n"
        )),
        "{stdout}"
    );

    // Second login: same registration reused, config written around the user's own.
    let (code, stdout, stderr) = second;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.is_empty(), "written, not printed: {stdout}");
    assert!(stderr.contains("Updated"), "{stderr}");
    let config = std::fs::read_to_string(home.join(".aws/config")).unwrap();
    assert!(config.starts_with(own), "user's sections kept: {config}");
    assert_eq!(config.matches("[sso-session rolegate]").count(), 1);
    assert!(
        config.contains(&format!("[profile Developer-{ACCOUNT}]")),
        "{config}"
    );
    // The start URL the server's HEAD /start names (base is http here).
    assert!(
        config.contains("sso_start_url = https://d-0000000000.awsapps.com/start\n"),
        "{config}"
    );
    // What `aws sso login --profile rolegate` would use, as botocore reads it.
    let endpoints = botocore_endpoints(&home).await;
    assert_eq!(endpoints["rolegate"]["sso-oidc"], base, "{endpoints}");
    assert_eq!(
        endpoints["default"]["sso-oidc"], "https://oidc.eu-west-1.amazonaws.com",
        "{endpoints}"
    );

    // The token file is botocore's format, private, keyed by sha1("rolegate").
    let path = token_path(&home);
    let text = std::fs::read_to_string(&path).unwrap();
    let token: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = token
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected_keys = vec![
        "accessToken",
        "clientId",
        "clientSecret",
        "expiresAt",
        "refreshToken",
        "region",
        "registrationExpiresAt",
        "startUrl",
    ];
    expected_keys.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected_keys, "{text}");
    assert_eq!(token["startUrl"], format!("{base}/start"));
    assert_eq!(token["region"], "us-east-1");
    for field in ["expiresAt", "registrationExpiresAt"] {
        let at = token[field].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
            "{field} {at}"
        );
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let registrations: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy() != DEFAULT_TOKEN_FILE)
        .collect();
    assert_eq!(
        registrations.len(),
        1,
        "one cached registration: {registrations:?}"
    );
    let registration: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path.parent().unwrap().join(&registrations[0])).unwrap(),
    )
    .unwrap();
    assert_eq!(registration["clientId"], token["clientId"], "reused");

    // credentials: only the §7.2 JSON on stdout.
    let role = ["--account-id", ACCOUNT, "--role-name", "Developer"];
    let (code, stdout, stderr) =
        rolegate(&[&["credentials"][..], &role].concat(), &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).expect("only JSON on stdout");
    assert_eq!(document["Version"], serde_json::json!(1));
    assert!(
        document["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    assert!(!document["SecretAccessKey"].as_str().unwrap().is_empty());
    assert!(!document["SessionToken"].as_str().unwrap().is_empty());
    assert_eq!(document["AccountId"], ACCOUNT);
    let expiration =
        chrono::DateTime::parse_from_rfc3339(document["Expiration"].as_str().unwrap()).unwrap();
    assert!(expiration > chrono::Utc::now() + chrono::TimeDelta::minutes(15));

    let (code, stdout, stderr) = rolegate(
        &[&["credentials"][..], &role, &["--format", "env"]].concat(),
        &home,
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
    ] {
        assert!(stdout.contains(&format!("export {name}=\"")), "{stdout}");
    }

    // The AWS CLI v1 with the credential_process profile --write-config wrote.
    let aws = venv_bin("aws");
    let (code, stdout, stderr) = run(
        &aws,
        &[
            "sts",
            "get-caller-identity",
            "--profile",
            &format!("Developer-{ACCOUNT}"),
            "--output",
            "json",
        ],
        &home,
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let identity: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(identity["Arn"], developer_arn());

    // boto3 with an sso_session profile reads the token file itself.
    let mut config = std::fs::read_to_string(home.join(".aws/config")).unwrap();
    config.push_str(&format!(
        "\n[profile sso-developer]\nsso_session = rolegate\nsso_account_id = {ACCOUNT}\n\
         sso_role_name = Developer\nregion = us-east-1\nservices = rolegate\n"
    ));
    std::fs::write(home.join(".aws/config"), config).unwrap();
    let script = "import boto3\n\
                  s = boto3.Session(profile_name='sso-developer')\n\
                  print(s.get_credentials().method)\n\
                  print(s.client('sts').get_caller_identity()['Arn'])\n";
    let (code, stdout, stderr) = run(venv_bin("python"), &["-c", script], &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("sso\n{}\n", developer_arn()), "{stderr}");

    // exec: the command gets the credentials; its exit code comes back.
    let sts_env = [
        ("AWS_ENDPOINT_URL_STS", base.as_str()),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    let aws_path = aws.display().to_string();
    let (code, stdout, stderr) = rolegate(
        &[
            &["exec"][..],
            &role,
            &[
                "--",
                &aws_path,
                "sts",
                "get-caller-identity",
                "--output",
                "json",
            ],
        ]
        .concat(),
        &home,
        &sts_env,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let identity: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(identity["Arn"], developer_arn());
    let (code, _, stderr) = rolegate(
        &[
            &["exec"][..],
            &role,
            &[
                "--",
                "sh",
                "-c",
                "test -n \"$AWS_SESSION_TOKEN\" && test -n \"$AWS_CREDENTIAL_EXPIRATION\" && exit 7",
            ],
        ]
        .concat(),
        &home,
        &[],
    )
    .await;
    assert_eq!(code, 7, "exit code passed through: {stderr}");
    let (code, _, stderr) = rolegate(
        &[&["exec"][..], &role, &["--", "/nonexistent/program"]].concat(),
        &home,
        &[],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        stderr.starts_with("rolegate: cannot run `/nonexistent/program`: "),
        "{stderr}"
    );

    // A role alice is not entitled to: refused, nothing on stdout.
    let (code, stdout, stderr) = rolegate(
        &[
            "credentials",
            "--account-id",
            ACCOUNT,
            "--role-name",
            seed::WORKLOAD_ROLE,
        ],
        &home,
        &[],
    )
    .await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "rolegate: no credentials for role {} in account {ACCOUNT}: ",
            seed::WORKLOAD_ROLE
        )),
        "{stderr}"
    );

    // Less than 15 minutes left: credentials refreshes the token and saves it.
    let mut token: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let old_access = token["accessToken"].clone();
    let soon = chrono::Utc::now() + chrono::TimeDelta::minutes(5);
    token["expiresAt"] = soon.format("%Y-%m-%dT%H:%M:%SZ").to_string().into();
    std::fs::write(&path, token.to_string()).unwrap();
    let (code, stdout, stderr) =
        rolegate(&[&["credentials"][..], &role].concat(), &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    serde_json::from_str::<serde_json::Value>(&stdout).expect("JSON");
    let refreshed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(refreshed["accessToken"], old_access, "a new access token");
    let expires = chrono::NaiveDateTime::parse_from_str(
        refreshed["expiresAt"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%SZ",
    )
    .unwrap()
    .and_utc();
    assert!(
        expires > soon + chrono::TimeDelta::minutes(15),
        "{refreshed}"
    );
    assert_eq!(refreshed["clientId"], token["clientId"]);

    // logout: Rolegate ends the sign-in, the token file goes, the registration stays.
    let signed_in = std::fs::read_to_string(&path).unwrap();
    let (code, stdout, stderr) = rolegate(&["logout"], &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr,
        format!(
            "Signed out of sso-session rolegate: Rolegate ended the sign-in and {} was deleted.\n",
            path.display()
        )
    );
    assert!(!path.exists());
    assert!(
        path.parent().unwrap().join(&registrations[0]).exists(),
        "the client registration is kept"
    );
    let hint = format!("run `rolegate login --url {base}`");
    let (code, stdout, stderr) =
        rolegate(&[&["credentials"][..], &role].concat(), &home, &[]).await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("rolegate: not signed in (no cached token for sso-session rolegate)")
            && stderr.ends_with(&format!("{hint}\n")),
        "{stderr}"
    );
    // The old token, put back, is refused by Rolegate: the access token ...
    std::fs::write(&path, &signed_in).unwrap();
    let (code, stdout, stderr) =
        rolegate(&[&["credentials"][..], &role].concat(), &home, &[]).await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(
            "rolegate: Rolegate no longer accepts the sign-in of sso-session rolegate \
             (UnauthorizedException: "
        ) && stderr.ends_with(&format!("{hint}\n")),
        "{stderr}"
    );
    // ... and its refresh token.
    let mut old: serde_json::Value = serde_json::from_str(&signed_in).unwrap();
    old["expiresAt"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&path, old.to_string()).unwrap();
    let (code, _, stderr) = rolegate(&[&["credentials"][..], &role].concat(), &home, &[]).await;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("could not be refreshed (InvalidGrantException: ")
            && stderr.ends_with(&format!("{hint}\n")),
        "{stderr}"
    );
    // Signing out of an ended sign-in, or of none, is fine.
    let (code, _, stderr) = rolegate(&["logout"], &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("had already ended"), "{stderr}");
    assert!(!path.exists());
    let (code, stdout, stderr) = rolegate(&["logout"], &home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr,
        "Not signed in (no cached token for sso-session rolegate): nothing to do.\n"
    );
}

/// Deny in the browser: login stops with a clear message and saves nothing.
async fn denied_login_fails(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let base = seeded_server(&db).await;
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path().to_owned();
    let name = format!("cli-login-denied-{}", backend(&db));
    let results = Arc::new(Mutex::new(None));
    let out = results.clone();
    {
        let home = home.clone();
        with_browser(&name, |browser| async move {
            let outcome = async {
                let mut login = LoginRun::start(&base, &home, &[]);
                let link = login.verification_url().await?;
                let result = decide_in_browser(&browser, &link, true, "#deny").await?;
                ensure!(result.contains("denied"), "result page says {result:?}");
                *out.lock().unwrap() = Some(login.finish().await?);
                Ok(())
            }
            .await;
            (browser, outcome)
        })
        .await;
    }
    let taken = results.lock().unwrap().take();
    let (code, stdout, stderr) = taken.expect("login ran");
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("rolegate: the sign-in request was denied")),
        "{stderr}"
    );
    assert!(!token_path(&home).exists(), "no token saved");
}

both_backends!(login_then_aws_tools);

mod denied {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::denied_login_fails(crate::helpers::sqlite_store().await).await
    }
}

/// A loopback proxy in front of a real server that answers 500 to the first
/// `failures` CreateToken polls (`POST /token`) and forwards everything else.
struct FlakyProxy {
    upstream: String,
    failures: usize,
    token_polls: Arc<std::sync::atomic::AtomicUsize>,
    client: reqwest::Client,
}

async fn forward(
    request: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    proxy: actix_web::web::Data<FlakyProxy>,
) -> actix_web::HttpResponse {
    use std::sync::atomic::Ordering;
    if request.method() == actix_web::http::Method::POST && request.path() == "/token" {
        let poll = proxy.token_polls.fetch_add(1, Ordering::SeqCst);
        if poll < proxy.failures {
            return actix_web::HttpResponse::InternalServerError()
                .content_type("application/json")
                .body(
                    r#"{"error":"server_error","error_description":"injected by the test proxy"}"#,
                );
        }
    }
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut upstream = proxy
        .client
        .request(method, format!("{}{path}", proxy.upstream))
        .body(body.to_vec());
    for (name, value) in request.headers() {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = upstream.send().await.unwrap();
    let mut response = actix_web::HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status().as_u16()).unwrap(),
    );
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    response.body(answer.bytes().await.unwrap())
}

/// Starts a [`FlakyProxy`] for `upstream`: its base URL and the poll counter.
fn flaky_proxy(upstream: &str, failures: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let token_polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let proxy = actix_web::web::Data::new(FlakyProxy {
        upstream: upstream.to_owned(),
        failures,
        token_polls: token_polls.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(proxy.clone())
            .default_service(actix_web::web::to(forward))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://{address}"), token_polls)
}

/// Rolegate answers 500 to the first three CreateToken polls (through a proxy that
/// injects them): `rolegate login` backs off and keeps polling, and signs in once
/// the device is approved, instead of giving up at the first 500.
async fn login_rides_out_server_errors(db: TestStore) {
    let base = spawn_state(crate::web_client::seeded(&db).await);
    let (proxy, token_polls) = flaky_proxy(&base, 3);
    let home_dir = tempfile::tempdir().unwrap();
    let mut login = LoginRun::start(&proxy, home_dir.path(), &[]);
    let (_, code) = login.verification_url().await.unwrap();

    let mut browser = crate::web_client::Browser::new(&base);
    let page = browser
        .sign_in_via(&format!("/device?user_code={code}"), "alice")
        .await;
    let approved = crate::sso::decide(&mut browser, &page, "approve").await;
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );

    let (status, _, stderr) = login.finish().await.unwrap();
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("Signed in."), "{stderr}");
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("trying again in"))
        .collect();
    assert_eq!(retries.len(), 3, "{stderr}");
    assert!(retries[0].contains("500"), "{stderr}");
    let polls = token_polls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(polls >= 4, "three failed polls, then real ones: {polls}");
    assert!(token_path(home_dir.path()).exists(), "token saved");
}

both_backends!(login_rides_out_server_errors);

/// No token, an expired one, an unreachable server: non-zero, nothing on stdout,
/// and a message that says what to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_without_a_usable_sign_in_say_how_to_get_one() {
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    let role = [
        "credentials",
        "--account-id",
        ACCOUNT,
        "--role-name",
        "Developer",
    ];
    let (code, stdout, stderr) = rolegate(&role, home, &[]).await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr,
        "rolegate: not signed in (no cached token for sso-session rolegate): run \
         `rolegate login --url <Rolegate URL>`\n"
    );

    // exec does not run the command without credentials.
    let marker = home.join("ran");
    let (code, _, stderr) = rolegate(
        &[
            "exec",
            "--account-id",
            ACCOUNT,
            "--role-name",
            "Developer",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
        home,
        &[],
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("rolegate login --url"), "{stderr}");
    assert!(!marker.exists());

    // Expired, no refresh token (a file as a legacy tool writes it): no network call.
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        cache.join(DEFAULT_TOKEN_FILE),
        r#"{"startUrl": "http://127.0.0.1:1/start", "region": "us-east-1",
            "accessToken": "old", "expiresAt": "2020-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = rolegate(&role, home, &[]).await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr,
        "rolegate: the sign-in of sso-session rolegate has expired: run \
         `rolegate login --url http://127.0.0.1:1`\n"
    );

    // Another sso-session says so in the hint.
    let (code, _, stderr) =
        rolegate(&[&role[..], &["--sso-session", "corp"]].concat(), home, &[]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("--sso-session corp`"), "{stderr}");

    // login against nothing: one clear line.
    let (code, stdout, stderr) = rolegate(
        &["login", "--url", "http://127.0.0.1:1", "--no-browser"],
        home,
        &[],
    )
    .await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(
            "rolegate: cannot register this command line with Rolegate: cannot reach Rolegate at http://127.0.0.1:1/client/register"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = rolegate(&["login", "--url", "rolegate.example.com"], home, &[]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("not a URL"), "{stderr}");

    // logout with Rolegate unreachable: the token is deleted anyway, with a warning.
    let later = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let corp_file = cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
    std::fs::write(
        &corp_file,
        format!(
            r#"{{"startUrl": "http://127.0.0.1:1/start", "region": "us-east-1",
                "accessToken": "live", "expiresAt": "{later}"}}"#
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = rolegate(&["logout", "--sso-session", "corp"], home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(
            "rolegate: warning: could not end the sign-in at Rolegate (cannot reach Rolegate at \
             http://127.0.0.1:1/logout"
        ) && stderr.contains("Signed out of sso-session corp on this machine"),
        "{stderr}"
    );
    assert!(!corp_file.exists());
    assert!(
        cache.join(DEFAULT_TOKEN_FILE).exists(),
        "other sessions kept"
    );
    let (code, _, stderr) = rolegate(&["logout", "--sso-session", "corp"], home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.starts_with("Not signed in"), "{stderr}");
}

/// The endpoints botocore (the .venv's, as the AWS CLI v2 has it) resolves for the
/// SSO-OIDC, SSO and STS clients of the profiles `default`, `rolegate` and
/// `Developer-<account>` in `home`'s config, and the `rolegate` sso-session's start
/// URL, as JSON.
async fn botocore_endpoints(home: &Path) -> serde_json::Value {
    let script = r#"
import json, botocore.session
from botocore import UNSIGNED
from botocore.config import Config
out = {}
for profile in ["default", "rolegate", "Developer-%s"]:
    session = botocore.session.Session(profile=profile)
    region = session.get_scoped_config().get("region")
    out[profile] = {service: session.create_client(
                        service, region_name=region, config=Config(signature_version=UNSIGNED)
                    ).meta.endpoint_url
                    for service in ["sso-oidc", "sso", "sts"]}
session = botocore.session.Session(profile="rolegate")
out["sso_session"] = session.full_config["sso_sessions"][session.get_scoped_config()["sso_session"]]
print(json.dumps(out))
"#
    .replace("%s", ACCOUNT);
    let (code, stdout, stderr) = run(venv_bin("python"), &["-c", &script], home, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// Issue 9: `aws sso login` and `aws sso logout` take their SSO-OIDC and SSO
/// endpoints from the profile they run with, never from the sso-session. The config
/// Rolegate writes (`rolegate login --write-config`, the portal's access-keys page)
/// adds a `[profile rolegate]` with the session and the `[services rolegate]`
/// endpoints, so `aws sso login --profile rolegate` (and `aws sso logout --profile
/// rolegate`) reach Rolegate, while a default profile that points at real AWS keeps
/// doing so: botocore's own config loader resolves each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_config_sends_the_login_profile_to_rolegate_and_leaves_default_alone() {
    use rolegate::cli::aws_config::{RoleEntry, Target, merge, sections, start_url_for_cli_v2};
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let own = "[default]\nregion = eu-west-1\n";
    let base = "http://127.0.0.1:18080";
    let start_url = start_url_for_cli_v2(base, Some("https://d-0000000000.awsapps.com/start"));
    let roles = [RoleEntry {
        account_id: ACCOUNT.into(),
        account_name: None,
        role_name: "Developer".into(),
    }];
    let written = sections(
        "rolegate",
        Target {
            base,
            start_url: &start_url,
            region: "us-east-1",
        },
        &roles,
    );
    std::fs::write(home.join(".aws/config"), merge(own, &written)).unwrap();

    let endpoints = botocore_endpoints(home).await;
    for service in ["sso-oidc", "sso", "sts"] {
        assert_eq!(endpoints["rolegate"][service], base, "{endpoints}");
        assert_eq!(
            endpoints[format!("Developer-{ACCOUNT}")][service],
            base,
            "{endpoints}"
        );
    }
    assert_eq!(
        endpoints["default"]["sso-oidc"], "https://oidc.eu-west-1.amazonaws.com",
        "the default profile still goes to AWS: {endpoints}"
    );
    assert_eq!(
        endpoints["default"]["sso"], "https://portal.sso.eu-west-1.amazonaws.com",
        "{endpoints}"
    );
    assert_eq!(
        endpoints["sso_session"]["sso_start_url"], "https://d-0000000000.awsapps.com/start",
        "an https start URL on an AWS-owned host, as the CLI v2 requires: {endpoints}"
    );
    assert_eq!(endpoints["sso_session"]["sso_region"], "us-east-1");
}
