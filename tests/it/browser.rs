//! The portal in a real browser: Debian Chromium (headless) through chromedriver,
//! driven with `thirtyfour`. Sign in, see accounts and roles, filter them with the
//! page's own JavaScript, read the access keys shown and use them with boto3, sign out.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (scripts/test.sh installs
//! them). In CI (`CI=true`) their absence fails the tests; elsewhere they are skipped
//! with a printed reason. Screenshots go to `target/screenshots/` (not committed).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use rolegate::seed;
use thirtyfour::prelude::*;

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state, venv_bin};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest wait for any one thing in the browser (an element, a navigation).
pub(crate) const WAIT: Duration = Duration::from_secs(10);
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// Bound on a whole test body, browser start included.
const TEST_BUDGET: Duration = Duration::from_secs(60);

/// Flags for Chromium as root in a container, from shared/PEERS.md.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether Chromium and chromedriver are installed. Missing in CI is a failure;
/// elsewhere the caller skips the test after this prints why.
pub(crate) fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing: install Debian chromium and chromium-driver (scripts/test.sh does)",
        missing.join(" and ")
    );
    assert!(!in_ci(), "{why} (required in CI)");
    eprintln!("SKIPPED: {why}");
    false
}

/// `chromedriver` in its own process group, on a port it picks itself; the whole
/// group (driver and the browsers it started) is stopped on drop.
struct ChromeDriver {
    child: Option<Child>,
    url: String,
}

impl ChromeDriver {
    fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(CHROMEDRIVER)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining: a full pipe would stall chromedriver.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut driver = Self {
            child: Some(child),
            url: String::new(),
        };
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(port) = line
                .strip_prefix("ChromeDriver was started successfully on port ")
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
            {
                driver.url = format!("http://127.0.0.1:{port}");
                return driver;
            }
            seen.push(line);
        }
        driver.stop();
        panic!("chromedriver did not start; its output: {seen:#?}");
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (Chromium's helpers) goes too.
        signal("-KILL");
        let _ = child.wait();
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A headless Chromium session with a fresh profile. Deref to the `WebDriver`.
pub(crate) struct Browser {
    driver: Option<WebDriver>,
    // Dropped after `driver`, in this order: the process group, then the profile.
    chromedriver: ChromeDriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let chromedriver = ChromeDriver::start();
        let profile = tempfile::tempdir()?;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM)?;
        for flag in CHROMIUM_FLAGS {
            caps.add_arg(flag)?;
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))?;
        // Console messages (CSP violations, script errors) for failure reports.
        caps.set_browser_log_level(thirtyfour::LoggingPrefsLogLevel::Warning)?;
        let driver = WebDriver::builder(chromedriver.url.as_str(), caps)
            .request_timeout(Duration::from_secs(30))
            .connect()
            .await
            .context("start a Chromium session through chromedriver")?;
        driver
            .set_page_load_timeout(Duration::from_secs(15))
            .await?;
        driver.set_script_timeout(Duration::from_secs(10)).await?;
        driver.set_implicit_wait_timeout(Duration::ZERO).await?;
        Ok(Self {
            driver: Some(driver),
            chromedriver,
            _profile: profile,
        })
    }

    pub(crate) fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("browser already quit")
    }

    /// Ends the session politely (the process group is stopped on drop anyway).
    pub(crate) async fn quit(mut self) {
        if let Some(driver) = self.driver.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), driver.quit()).await;
        }
        self.chromedriver.stop();
    }

    pub(crate) async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.driver()
            .goto(url)
            .await
            .with_context(|| format!("open {url}"))
    }

    /// The first element matching `css`, waiting for it up to [`WAIT`].
    pub(crate) async fn find(&self, css: &str) -> anyhow::Result<WebElement> {
        self.driver()
            .query(By::Css(css))
            .wait(WAIT, POLL)
            .first()
            .await
            .with_context(|| format!("no element `{css}` on the page"))
    }

    /// The current URL's path and query (`/signin?return_to=/start`).
    async fn location(&self) -> anyhow::Result<String> {
        let url = self.driver().current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Waits until the current path is `path`; returns path and query.
    pub(crate) async fn wait_for_path(&self, path: &str) -> anyhow::Result<String> {
        self.wait_for_path_where(path, |p| p == path).await
    }

    /// Waits until the current path satisfies `test` (described by `what`).
    async fn wait_for_path_where(
        &self,
        what: &str,
        test: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let location = self.location().await?;
            if test(location.split('?').next().unwrap_or_default()) {
                return Ok(location);
            }
            if Instant::now() > deadline {
                bail!("expected to be at {what}, still at {location}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks `element` and waits until the page it was on has been replaced (for
    /// form posts that may come back to the same address).
    pub(crate) async fn click_to_next_page(&self, element: &WebElement) -> anyhow::Result<()> {
        let page = self.find("html").await?;
        element.click().await?;
        page.wait_until()
            .wait(WAIT, POLL)
            .stale()
            .await
            .context("the click did not load a new page")
    }

    /// Saves a screenshot as `target/screenshots/<name>.png` and prints its path.
    pub(crate) async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        self.driver().screenshot(&path).await?;
        println!("screenshot: {}", path.display());
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // On a failed test, skip thirtyfour's blocking teardown: stopping the
        // process group (chromedriver's own drop) ends the browser.
        if let Some(driver) = self.driver.take() {
            let _ = driver.leak();
        }
    }
}

/// Runs `body` with a fresh browser within [`TEST_BUDGET`]; on failure prints the
/// page's URL and source and keeps a screenshot. Skips (outside CI) without Chromium.
pub(crate) async fn with_browser<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = (Browser, anyhow::Result<()>)>,
{
    with_browser_within(name, TEST_BUDGET, body).await;
}

/// [`with_browser`] for a longer story, bounded by `budget`.
pub(crate) async fn with_browser_within<F, Fut>(name: &str, budget: Duration, body: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = (Browser, anyhow::Result<()>)>,
{
    if !browser_installed() {
        return;
    }
    let run = async {
        let browser = Browser::start().await.expect("start the browser");
        let (browser, outcome) = body(browser).await;
        if let Err(error) = &outcome {
            let at = browser.location().await.unwrap_or_default();
            let source = browser.driver().source().await.unwrap_or_default();
            let console: Vec<String> = browser
                .driver()
                .browser_log()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|entry| format!("{} {}", entry.level, entry.message))
                .collect();
            let _ = browser.screenshot(&format!("{name}-failure")).await;
            browser.quit().await;
            panic!(
                "{name} failed at {at}: {error:#}\nbrowser console: {console:#?}\npage source:\n{source}"
            );
        }
        browser.quit().await;
    };
    tokio::time::timeout(budget, run)
        .await
        .unwrap_or_else(|_| panic!("{name} took longer than {budget:?}"));
}

pub(crate) fn password_of(user: &str) -> &'static str {
    seed::DEMO_SIGN_INS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("demo user")
        .1
}

pub(crate) fn backend(db: &TestStore) -> &'static str {
    if db.url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    }
}

pub(crate) fn role_css(role: &str) -> String {
    format!("#role-{}-{role}", seed::DEMO_ACCOUNT_ID)
}

/// Fills in the directory form on the sign-in page and submits it.
pub(crate) async fn submit_sign_in(
    browser: &Browser,
    user: &str,
    password: &str,
) -> anyhow::Result<()> {
    let username = browser.find("input[name=username]").await?;
    username.clear().await?;
    username.send_keys(user).await?;
    browser
        .find("input[name=password]")
        .await?
        .send_keys(password)
        .await?;
    browser
        .find("form[action='/signin/directory'] button[type=submit]")
        .await?
        .click()
        .await?;
    Ok(())
}

/// Which of `roles` are shown on the accounts page right now.
pub(crate) async fn visible_roles(
    browser: &Browser,
    roles: &[&str],
) -> anyhow::Result<Vec<String>> {
    let mut shown = Vec::new();
    for role in roles {
        let elements = browser.driver().find_all(By::Css(role_css(role))).await?;
        if let Some(element) = elements.first()
            && element.is_displayed().await?
        {
            shown.push((*role).to_owned());
        }
    }
    Ok(shown)
}

/// Waits until exactly `expected` of `all` roles are shown.
pub(crate) async fn wait_for_visible_roles(
    browser: &Browser,
    all: &[&str],
    expected: &[&str],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = visible_roles(browser, all).await?;
        if shown == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("roles shown: {shown:?}, expected {expected:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `export NAME="value"` lines of the Bash block, as (key id, secret, token).
fn exported(text: &str) -> anyhow::Result<(String, String, String)> {
    let value = |name: &str| {
        let marker = format!("export {name}=\"");
        let line = text
            .lines()
            .find_map(|line| line.trim().strip_prefix(&marker))
            .ok_or_else(|| anyhow!("no {name} export in {text:?}"))?;
        let value = line
            .strip_suffix('"')
            .ok_or_else(|| anyhow!("unterminated {name}"))?;
        anyhow::Ok(value.to_owned())
    };
    Ok((
        value("AWS_ACCESS_KEY_ID")?,
        value("AWS_SECRET_ACCESS_KEY")?,
        value("AWS_SESSION_TOKEN")?,
    ))
}

/// `sts.get_caller_identity()['Arn']` by boto3 (the project's .venv) with these
/// credentials against Rolegate's STS at `base`.
async fn caller_arn(
    base: &str,
    (key, secret, token): &(String, String, String),
) -> anyhow::Result<String> {
    let python = tokio::process::Command::new(venv_bin("python"))
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_ENDPOINT_URL_STS", base)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg("import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), python)
        .await
        .context("boto3 took longer than 30 s")??;
    ensure!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(crate) async fn seeded_server(db: &TestStore) -> String {
    let state = crate::helpers::app_state(db.store.clone()).await;
    seed::seed_demo(state.store.as_ref())
        .await
        .expect("seed demo");
    spawn_state(state)
}

/// The built-in directory in Chromium: sign in (after one wrong password), see the
/// roles alice's groups grant, filter them, get access keys for Developer from the
/// page and use them with boto3, sign out; then carol sees ReadOnly only.
async fn directory_sign_in_in_chromium(db: TestStore) {
    let base = seeded_server(&db).await;
    let shot = |page: &str| format!("directory-{page}-{}", backend(&db));
    let all_roles = ["Admin", "Developer", "ReadOnly", "DemoWorkload"];
    with_browser(&shot("test"), |browser| async move {
        let outcome = async {
            // Not signed in: /start sends the browser to the sign-in page.
            browser.goto(&format!("{base}/start")).await?;
            let at = browser.wait_for_path("/signin").await?;
            ensure!(at.contains("return_to="), "return path kept: {at}");
            let title = browser.driver().title().await?;
            ensure!(title.contains("Sign in"), "title {title:?}");
            browser.screenshot(&shot("signin")).await?;

            // A wrong password: an error on the page, still signed out.
            submit_sign_in(&browser, "alice", "not-alices-password").await?;
            let alert = browser.find("p.error[role=alert]").await?.text().await?;
            ensure!(alert.contains("incorrect"), "error shown: {alert:?}");
            browser.wait_for_path("/signin/directory").await?;

            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            browser.wait_for_path("/start").await?;
            browser.find("#filter").await?;
            let heading = browser.find("main h1").await?.text().await?;
            ensure!(heading == "AWS accounts", "heading {heading:?}");
            let who = browser.find("header .who").await?.text().await?;
            ensure!(who.contains("Alice"), "signed-in name shown: {who:?}");
            let account = browser.find("section.account h2").await?.text().await?;
            ensure!(
                account.contains(seed::DEMO_ACCOUNT_NAME)
                    && account.contains(seed::DEMO_ACCOUNT_ID),
                "account heading {account:?}"
            );
            for role in ["Admin", "Developer", "ReadOnly"] {
                let name = browser
                    .find(&format!("{} .role-name", role_css(role)))
                    .await?
                    .text()
                    .await?;
                ensure!(name == role, "role {role} shows {name:?}");
            }
            wait_for_visible_roles(&browser, &all_roles, &["Admin", "Developer", "ReadOnly"])
                .await?;
            browser.screenshot(&shot("accounts")).await?;

            // The filter box hides what does not match as you type (static/portal.js).
            let filter = browser.find("#filter").await?;
            filter.send_keys("develop").await?;
            wait_for_visible_roles(&browser, &all_roles, &["Developer"]).await?;
            filter.clear().await?;
            filter.send_keys("AUDIT").await?;
            wait_for_visible_roles(&browser, &all_roles, &["ReadOnly"]).await?;
            filter.send_keys("no-such-role").await?;
            wait_for_visible_roles(&browser, &all_roles, &[]).await?;
            let account_shown = browser
                .find("section.account")
                .await?
                .is_displayed()
                .await?;
            ensure!(!account_shown, "an account with no matching role is hidden");
            filter.clear().await?;
            filter.send_keys(" ").await?;
            wait_for_visible_roles(&browser, &all_roles, &["Admin", "Developer", "ReadOnly"])
                .await?;

            // Access keys for Developer, read off the page.
            browser
                .find(&format!(
                    "{} form[action='/start/credentials'] button[type=submit]",
                    role_css("Developer")
                ))
                .await?
                .click()
                .await?;
            browser.wait_for_path("/start/credentials").await?;
            let bash = browser.find("pre#bash").await?.text().await?;
            let keys = exported(&bash)?;
            ensure!(keys.0.starts_with("ASIA"), "temporary key id {:?}", keys.0);
            let heading = browser.find("main h1").await?.text().await?;
            ensure!(heading.contains("Developer"), "heading {heading:?}");
            let expected = format!(
                "arn:aws:sts::{}:assumed-role/Developer/alice@example.com",
                seed::DEMO_ACCOUNT_ID
            );
            let session = browser.find("main p code").await?.text().await?;
            ensure!(session == expected, "session shown {session:?}");
            for block in ["fish", "powershell", "file"] {
                let text = browser.find(&format!("pre#{block}")).await?.text().await?;
                ensure!(text.contains(&keys.0), "{block} block has the key id");
            }
            browser.screenshot(&shot("credentials")).await?;

            // The keys from the page work with boto3 against Rolegate's STS.
            let arn = caller_arn(&base, &keys).await?;
            ensure!(arn == expected, "boto3 says {arn}");

            // Sign out; /start asks for a sign-in again.
            browser.find("a[href='/start']").await?.click().await?;
            browser.wait_for_path("/start").await?;
            browser
                .find("form[action='/logout'] button[type=submit]")
                .await?
                .click()
                .await?;
            browser.wait_for_path("/signin").await?;
            browser.goto(&format!("{base}/start")).await?;
            let at = browser.wait_for_path("/signin").await?;
            ensure!(at.contains("return_to="), "signed out, back at {at}");

            // carol (auditors) sees ReadOnly only.
            submit_sign_in(&browser, "carol", password_of("carol")).await?;
            browser.wait_for_path("/start").await?;
            browser.find("#filter").await?;
            wait_for_visible_roles(&browser, &all_roles, &["ReadOnly"]).await?;
            let who = browser.find("header .who").await?.text().await?;
            ensure!(who.contains("Carol"), "signed-in name shown: {who:?}");
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

fn is_console(path: &str) -> bool {
    path.strip_prefix("/console/")
        .is_some_and(|short| !short.is_empty() && !short.contains('/'))
}

/// The ARN on the console page the browser shows.
pub(crate) async fn console_arn(browser: &Browser) -> anyhow::Result<String> {
    browser
        .wait_for_path_where("a console page", is_console)
        .await?;
    Ok(browser.find("#assumed-role-arn").await?.text().await?)
}

/// Asks the console page's "Can I?" box; returns the decision shown.
async fn can_i(browser: &Browser, action: &str, resource: &str) -> anyhow::Result<String> {
    for (field, value) in [("action", action), ("resource", resource)] {
        let input = browser.find(&format!("#can-i input[name={field}]")).await?;
        input.clear().await?;
        input.send_keys(value).await?;
    }
    let button = browser.find("#can-i button[type=submit]").await?;
    browser.click_to_next_page(&button).await?;
    browser
        .wait_for_path_where("the check result", |p| p.ends_with("/check"))
        .await?;
    let result = browser.find("#result").await?;
    let shown = browser
        .find("#can-i input[name=action]")
        .await?
        .prop("value")
        .await?;
    ensure!(
        shown.as_deref() == Some(action),
        "result for {shown:?}, asked {action}"
    );
    Ok(result.attr("data-decision").await?.unwrap_or_default())
}

/// Console sessions in Chromium: a deep link to a role's console survives the
/// sign-in (the fragment rides along in the form's return path, static/portal.js)
/// and opens that console; the Console button opens another role's console in a
/// second tab; both stay open side by side; "Can I?" evaluates against the session.
async fn console_sessions_in_chromium(db: TestStore) {
    let base = seeded_server(&db).await;
    let shot = |page: &str| format!("console-{page}-{}", backend(&db));
    let arn = |role: &str| {
        format!(
            "arn:aws:sts::{}:assumed-role/{role}/alice@example.com",
            seed::DEMO_ACCOUNT_ID
        )
    };
    with_browser(&shot("test"), |browser| async move {
        let outcome = async {
            // Signed out, a deep link to ReadOnly's console: sign in first, then
            // the console opens by itself.
            let link = format!(
                "{base}/start#/account/{}/role/ReadOnly/console",
                seed::DEMO_ACCOUNT_ID
            );
            browser.goto(&link).await?;
            browser.wait_for_path("/signin").await?;
            let kept = browser
                .find("input[name=return_to]")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            ensure!(
                kept.ends_with("/role/ReadOnly/console"),
                "the sign-in form keeps the deep link: {kept:?}"
            );
            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            let shown = console_arn(&browser).await?;
            ensure!(shown == arn("ReadOnly"), "deep link opened {shown}");
            let first_tab = browser.driver().window().await?;
            let first_console = browser.location().await?;

            // A second tab: the Console button for Developer.
            let second_tab = browser.driver().new_tab().await?;
            browser.driver().switch_to_window(second_tab).await?;
            browser.goto(&format!("{base}/start")).await?;
            browser
                .find(&format!(
                    "{} form.console button[type=submit]",
                    role_css("Developer")
                ))
                .await?
                .click()
                .await?;
            let shown = console_arn(&browser).await?;
            ensure!(shown == arn("Developer"), "Console button opened {shown}");
            ensure!(
                browser.location().await? != first_console,
                "each role's console has its own address"
            );
            let facts = browser.find("#who").await?.text().await?;
            ensure!(
                facts.contains("alice@example.com"),
                "source identity and session name shown: {facts:?}"
            );
            let policies = browser.find("#policies").await?.text().await?;
            ensure!(
                policies.contains("PowerUserAccess") && policies.contains("DeveloperBoundary"),
                "the role's policies are shown: {policies:?}"
            );

            // "Can I?" evaluates against the session: no IAM for Developer, STS yes.
            for (action, allowed) in [("iam:CreateUser", false), ("sts:GetCallerIdentity", true)] {
                let decision = can_i(&browser, action, "*").await?;
                ensure!(
                    (decision == "Allowed") == allowed,
                    "{action} for Developer: {decision}"
                );
            }
            browser.screenshot(&shot("developer")).await?;

            // The first tab still shows its own role's console.
            browser.driver().switch_to_window(first_tab).await?;
            browser.driver().refresh().await?;
            let shown = console_arn(&browser).await?;
            ensure!(shown == arn("ReadOnly"), "first tab after reload: {shown}");
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

/// Adds OIDC source `id` for the peer's `rolegate-portal` client at `issuer`.
pub(crate) async fn add_oidc_source(
    state: &rolegate::web::AppState,
    id: &str,
    name: &str,
    issuer: &str,
) {
    use rolegate::idp::oidc::{self, OidcConfig};
    use rolegate::store::{IdentitySourceKind, NewIdentitySource};
    let mut config = OidcConfig::new(issuer, "rolegate-portal");
    config.client_secret = Some(oidc::seal_client_secret(
        &state.sealer,
        id,
        "rolegate-portal-secret",
    ));
    config.scopes = ["openid", "profile", "email", "groups"]
        .map(str::to_owned)
        .to_vec();
    state
        .store
        .create_identity_source(&NewIdentitySource {
            id: id.into(),
            kind: IdentitySourceKind::Oidc,
            display_name: name.into(),
            config: config.to_json(),
            enabled: true,
        })
        .await
        .expect("OIDC source");
}

/// A fresh provider peer that knows the callback and sign-out return of source
/// `corp` on the Rolegate at `base`; `None` (skip) only outside CI without Node.
pub(crate) fn corp_peer(base: &str) -> Option<crate::oidc_peer::OidcPeer> {
    crate::oidc_peer::OidcPeer::start_with(
        "a",
        &[
            "--redirect-uris",
            &format!("{base}/signin/oidc/corp/callback"),
            "--post-logout-uris",
            &format!("{base}/signin"),
        ],
    )
}

/// A seeded Rolegate with OIDC source `corp` at a fresh provider peer that knows
/// Rolegate's callback; `None` (skip) only outside CI without Node or the peer.
pub(crate) async fn with_oidc_peer(
    db: &TestStore,
) -> Option<(String, rolegate::web::AppState, crate::oidc_peer::OidcPeer)> {
    let state = crate::helpers::app_state(db.store.clone()).await;
    seed::seed_demo(state.store.as_ref())
        .await
        .expect("seed demo");
    let base = spawn_state(state.clone());
    let peer = corp_peer(&base)?;
    add_oidc_source(&state, "corp", "Corp IdP", &peer.issuer).await;
    // The demo rules are the directory's: corp's `developers` get Developer too.
    crate::helpers::grant_group(
        &state,
        "corp",
        "developers",
        seed::DEMO_ACCOUNT_ID,
        "Developer",
    )
    .await;
    Some((base, state, peer))
}

/// Fills in the provider's password form as alice and submits it.
pub(crate) async fn provider_login(browser: &Browser, password: &str) -> anyhow::Result<()> {
    browser
        .wait_for_path_where("the provider's login form", |p| {
            p.starts_with("/interaction/")
        })
        .await?;
    let login = browser.find("input[name=login]").await?;
    login.clear().await?;
    login.send_keys("alice").await?;
    browser
        .find("input[name=password]")
        .await?
        .send_keys(password)
        .await?;
    let submit = browser.find("form button[type=submit]").await?;
    browser.click_to_next_page(&submit).await
}

/// After the provider's login form: consents when asked (`must_consent`: it has to
/// ask) until the provider sends the browser back to Rolegate at `base`.
pub(crate) async fn back_from_provider(
    browser: &Browser,
    base: &str,
    must_consent: bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    let mut consented = false;
    loop {
        let url = browser.driver().current_url().await?;
        if url.as_str().starts_with(base) {
            ensure!(
                consented || !must_consent,
                "the provider asked for no consent"
            );
            return Ok(());
        }
        let allow = browser
            .driver()
            .find_all(By::Css("form[action$='/confirm'] button"))
            .await?;
        if let Some(allow) = allow.first() {
            browser.click_to_next_page(allow).await?;
            consented = true;
            continue;
        }
        if Instant::now() > deadline {
            bail!("still at the provider: {url}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Signing in through a real OpenID Connect provider in Chromium: Rolegate's sign-in
/// page sends the browser to npm `oidc-provider` (tests/peers/oidc), whose password
/// form refuses a wrong password and accepts the right one; after consent the
/// browser is back at Rolegate with the roles the provider's groups grant. The
/// access keys shown work with boto3; signing out also ends the provider's session
/// (RP-initiated logout) and returns to Rolegate's sign-in page.
async fn oidc_sign_in_in_chromium(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let Some((base, _state, peer)) = with_oidc_peer(&db).await else {
        return;
    };
    let shot = |page: &str| format!("oidc-{page}-{}", backend(&db));
    let all_roles = ["Admin", "Developer", "ReadOnly", "DemoWorkload"];
    let issuer = peer.issuer.clone();
    with_browser(&shot("test"), |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/start")).await?;
            browser.wait_for_path("/signin").await?;
            let button = browser.find("a.signin-source").await?;
            let label = button.text().await?;
            ensure!(label.contains("Corp IdP"), "sign-in button {label:?}");
            browser.screenshot(&shot("signin")).await?;
            button.click().await?;

            // The provider's own password form, on the provider's origin.
            provider_login(&browser, "not-alices-password").await?;
            let at = browser.driver().current_url().await?;
            ensure!(
                at.as_str().starts_with(&issuer),
                "at the provider ({issuer}): {at}"
            );
            let refused = browser.find("p.error").await?.text().await?;
            ensure!(refused.contains("Invalid"), "provider refused: {refused:?}");
            provider_login(&browser, "alice-password").await?;
            // Consent, then back to Rolegate's callback and on to /start.
            back_from_provider(&browser, &base, true).await?;
            browser.wait_for_path("/start").await?;

            let who = browser.find("header .who").await?.text().await?;
            ensure!(
                who.contains("Alice Example"),
                "name from the ID token: {who:?}"
            );
            wait_for_visible_roles(&browser, &all_roles, &["Developer"]).await?;
            browser.screenshot(&shot("accounts")).await?;

            browser
                .find(&format!(
                    "{} form[action='/start/credentials'] button[type=submit]",
                    role_css("Developer")
                ))
                .await?
                .click()
                .await?;
            browser.wait_for_path("/start/credentials").await?;
            let keys = exported(&browser.find("pre#bash").await?.text().await?)?;
            let arn = caller_arn(&base, &keys).await?;
            let expected = format!(
                "arn:aws:sts::{}:assumed-role/Developer/alice@example.com",
                seed::DEMO_ACCOUNT_ID
            );
            ensure!(arn == expected, "boto3 says {arn}");

            // Sign out: Rolegate's session ends at once, and a link offers the
            // provider's sign-out (RP-initiated logout), which asks to confirm and
            // then sends the browser back to Rolegate's sign-in page.
            browser.goto(&format!("{base}/start")).await?;
            browser
                .find("form[action='/logout'] button[type=submit]")
                .await?
                .click()
                .await?;
            browser.wait_for_path("/logout").await?;
            let heading = browser.find("main h1").await?.text().await?;
            ensure!(heading.contains("Signed out"), "heading {heading:?}");
            browser
                .find(&format!("a[href^='{issuer}/session/end']"))
                .await?
                .click()
                .await?;
            browser
                .wait_for_path_where("the provider's sign-out", |p| p.starts_with("/session/end"))
                .await?;
            browser
                .find("button[name=logout][value=yes]")
                .await?
                .click()
                .await?;
            browser.wait_for_path("/signin").await?;
            let here = browser.driver().current_url().await?;
            ensure!(here.as_str().starts_with(&base), "back at Rolegate: {here}");
            browser.goto(&format!("{base}/start")).await?;
            browser.wait_for_path("/signin").await?;

            // Signed out at the provider too: it asks for the password again.
            browser.find("a.signin-source").await?.click().await?;
            browser
                .wait_for_path_where("the provider's login form", |p| {
                    p.starts_with("/interaction/")
                })
                .await?;
            browser.find("input[name=password]").await?;
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
    drop(peer);
}

/// A deep link to a role's console (`/start#/account/<id>/role/<name>/console`)
/// survives every way of signing in when the sign-in page offers several: the
/// directory form (whose return path must carry the fragment, static/portal.js)
/// and the round trip through the OIDC provider.
async fn deep_link_survives_every_sign_in(db: TestStore) {
    if !browser_installed() {
        return;
    }
    let Some((base, _state, peer)) = with_oidc_peer(&db).await else {
        return;
    };
    let shot = format!("deep-link-test-{}", backend(&db));
    with_browser(&shot, |browser| async move {
        let outcome = async {
            let link = format!(
                "{base}/start#/account/{}/role/Developer/console",
                seed::DEMO_ACCOUNT_ID
            );
            let expected = format!(
                "arn:aws:sts::{}:assumed-role/Developer/alice@example.com",
                seed::DEMO_ACCOUNT_ID
            );

            // Through the directory form, below the provider's button.
            browser.goto(&link).await?;
            browser.wait_for_path("/signin").await?;
            browser.find("a.signin-source").await?;
            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            let shown = console_arn(&browser).await.context("directory sign-in")?;
            ensure!(
                shown == expected,
                "directory sign-in: deep link opened {shown}"
            );
            browser.goto(&format!("{base}/start")).await?;
            browser
                .find("form[action='/logout'] button[type=submit]")
                .await?
                .click()
                .await?;
            browser.wait_for_path("/signin").await?;

            // Through the OIDC provider.
            browser.goto(&link).await?;
            browser.wait_for_path("/signin").await?;
            browser.find("a.signin-source").await?.click().await?;
            provider_login(&browser, "alice-password").await?;
            back_from_provider(&browser, &base, true).await?;
            let shown = console_arn(&browser).await.context("OIDC sign-in")?;
            ensure!(shown == expected, "OIDC sign-in: deep link opened {shown}");
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
    drop(peer);
}

/// A deep link that this tab's own sign-in did not carry (a link followed from
/// another site while signed in) must not open a console by itself: the page offers
/// the console and waits for a click (hardening finding 5).
async fn a_foreign_deep_link_asks_before_opening_a_console(db: TestStore) {
    let base = seeded_server(&db).await;
    let shot = format!("deep-link-confirm-{}", backend(&db));
    with_browser(&shot, |browser| async move {
        let outcome = async {
            browser.goto(&format!("{base}/signin")).await?;
            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            browser.wait_for_path("/start").await?;

            // As if another site navigated here.
            browser
                .goto(&format!(
                    "{base}/start#/account/{}/role/ReadOnly/console",
                    seed::DEMO_ACCOUNT_ID
                ))
                .await?;
            let offer = browser.find("#deep-link-confirm").await?;
            ensure!(offer.is_displayed().await?, "the console is offered");
            let text = offer.text().await?;
            ensure!(text.contains("ReadOnly"), "names the role: {text:?}");
            ensure!(
                browser.location().await?.ends_with("/start"),
                "no console opened by itself"
            );
            browser.find("#deep-link-open").await?.click().await?;
            let shown = console_arn(&browser).await?;
            ensure!(
                shown.contains(":assumed-role/ReadOnly/"),
                "opened after the click: {shown}"
            );
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

both_backends!(
    directory_sign_in_in_chromium,
    console_sessions_in_chromium,
    oidc_sign_in_in_chromium,
    deep_link_survives_every_sign_in,
    a_foreign_deep_link_asks_before_opening_a_console,
);
