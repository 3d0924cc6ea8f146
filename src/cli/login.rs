//! `rolegate login`: the OAuth 2.0 device authorization grant (RFC 8628) against
//! Rolegate's AWS SSO-OIDC API, done the way the AWS CLI v2 does it (spec §5.5), and
//! the token saved where botocore reads it (`~/.aws/sso/cache`, spec §7.1). Then the
//! accounts and roles of the signed-in person, as a ready-to-use `~/.aws/config`.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::aws_config::{self, RoleEntry};
use super::sso_cache::{CachedToken, DEFAULT_SESSION, SsoCache};
use super::sso_client::{
    ApiError, ClientRegistration, DeviceAuthorization, SsoClient, TokenGrant, normalize_base_url,
    start_url,
};

/// `rolegate login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Rolegate's base URL, e.g. https://rolegate.example.com (default: the URL this
    /// sso-session last signed in to).
    #[arg(long)]
    pub url: Option<String>,
    /// Name of the sso-session: the token cache key and the `[sso-session]` in ~/.aws/config.
    #[arg(long, default_value = DEFAULT_SESSION, value_parser = parse_session_name)]
    pub sso_session: String,
    /// Region written as `sso_region` and into the suggested profiles.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Do not try to open a browser ($BROWSER); only print the URL.
    #[arg(long)]
    pub no_browser: bool,
    /// Add (or update) the suggested sections in ~/.aws/config ($AWS_CONFIG_FILE)
    /// instead of printing them; other sections are kept.
    #[arg(long)]
    pub write_config: bool,
}

/// Accepts sso-session names that are safe in a config header and a command line.
pub fn parse_session_name(name: &str) -> Result<String, String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(name.to_owned())
    } else {
        Err("use letters, digits, '-', '_' and '.' only".to_owned())
    }
}

/// "`rolegate login --url …`", the command that gets a new token for `session`.
pub fn login_hint(base: Option<&str>, session: &str) -> String {
    let url = base.unwrap_or("<Rolegate URL>");
    if session == DEFAULT_SESSION {
        format!("`rolegate login --url {url}`")
    } else {
        format!("`rolegate login --url {url} --sso-session {session}`")
    }
}

/// A current-thread runtime for the command-line calls.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(future))
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Runs `rolegate login`.
pub fn run(args: &LoginArgs) -> Result<ExitCode, String> {
    block_on(login(args))?.map(|()| ExitCode::SUCCESS)
}

async fn login(args: &LoginArgs) -> Result<(), String> {
    let cache = SsoCache::for_home()?;
    let session = args.sso_session.as_str();
    let base = match &args.url {
        Some(url) => normalize_base_url(url)?,
        None => remembered_base(&cache, session).ok_or_else(|| {
            "which Rolegate? Give its URL: `rolegate login --url https://rolegate.example.com`"
                .to_owned()
        })?,
    };
    let start = start_url(&base);
    let client = SsoClient::new(&base)?;

    let (registration, authorization) = start_sign_in(&cache, &client, args, &start).await?;
    show_prompt(&base, &authorization, args.no_browser);
    let grant = poll_for_token(&client, &registration, &authorization).await?;

    let token = CachedToken::new(
        &start,
        &args.region,
        grant.access_token,
        grant.expires_in,
        grant.refresh_token,
        &registration,
        crate::clock::Clock::system().now(),
    );
    let path = cache.save_token(session, &token)?;
    eprintln!(
        "Signed in. Token for sso-session {session} saved to {} (valid until {}).",
        path.display(),
        token.expires_at
    );

    let roles = list_roles(&client, &token.access_token)
        .await
        .map_err(|e| {
            format!("signed in (token saved), but cannot list your accounts and roles: {e}")
        })?;
    print_roles(&roles);
    let aws_start_url = client.aws_start_url().await;
    let config_start = aws_config::start_url_for_cli_v2(&base, aws_start_url.as_deref());
    let sections = aws_config::sections(
        session,
        aws_config::Target {
            base: &base,
            start_url: &config_start,
            region: &args.region,
        },
        &roles,
    );
    if args.write_config {
        let path = aws_config::write(&sections)?;
        eprintln!(
            "Updated {}: [sso-session {session}], [services {session}], [profile {session}] \
             (for `aws sso login --profile {session}` with the AWS CLI v2) and {} role profile(s).",
            path.display(),
            roles.len()
        );
        if let Some(first) = roles.first() {
            eprintln!(
                "Try: aws sts get-caller-identity --profile {}",
                aws_config::profile_name(&first.role_name, &first.account_id)
            );
        }
    } else {
        eprintln!(
            "\nAdd this to ~/.aws/config (or run again with --write-config), then use e.g. \
             `aws --profile <profile> ...`:\n"
        );
        print!("{}", aws_config::render(&sections));
    }
    Ok(())
}

/// The base URL a session last signed in to (its token file), or the one configured
/// for it in ~/.aws/config.
fn remembered_base(cache: &SsoCache, session: &str) -> Option<String> {
    let token_start = cache
        .load_token(session)
        .ok()
        .flatten()
        .and_then(|t| t.start_url);
    let base = aws_config::rolegate_base(session, token_start.as_deref())?;
    normalize_base_url(&base).ok()
}

/// A client registration (cached while valid, as CLI v2 does) and a started device
/// authorization. A cached registration the server no longer knows is replaced once.
async fn start_sign_in(
    cache: &SsoCache,
    client: &SsoClient,
    args: &LoginArgs,
    start: &str,
) -> Result<(ClientRegistration, DeviceAuthorization), String> {
    let session = args.sso_session.as_str();
    let cached = cache.load_registration(
        start,
        &args.region,
        session,
        crate::clock::Clock::system().now(),
    );
    let reused = cached.is_some();
    let mut registration = match cached {
        Some(registration) => registration,
        None => register(cache, client, args, start).await?,
    };
    let mut started = client
        .start_device_authorization(&registration, start)
        .await;
    if reused
        && let Err(e) = &started
        && matches!(
            e.code(),
            Some("InvalidClientException" | "UnauthorizedClientException")
        )
    {
        cache.forget_registration(start, &args.region, session);
        registration = register(cache, client, args, start).await?;
        started = client
            .start_device_authorization(&registration, start)
            .await;
    }
    let authorization = started.map_err(|e| format!("cannot start the sign-in: {e}"))?;
    Ok((registration, authorization))
}

async fn register(
    cache: &SsoCache,
    client: &SsoClient,
    args: &LoginArgs,
    start: &str,
) -> Result<ClientRegistration, String> {
    let name = format!("rolegate-cli-{}", args.sso_session);
    let registration = client
        .register_client(&name)
        .await
        .map_err(|e| format!("cannot register this command line with Rolegate: {e}"))?;
    // Not fatal: the next login registers again.
    if let Err(e) = cache.save_registration(start, &args.region, &args.sso_session, &registration) {
        eprintln!("rolegate: warning: {e}");
    }
    Ok(registration)
}

fn absolute(base: &str, url: &str) -> String {
    if url.starts_with('/') {
        format!("{base}{url}")
    } else {
        url.to_owned()
    }
}

/// Text from the server made safe for a terminal: control characters (escape
/// sequences could rewrite what the screen shows) become `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The verification URL, if it is one a browser may be given: absolute http(s).
fn browsable(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https")
        .then(|| parsed.to_string())
        .filter(|_| parsed.host_str().is_some())
}

fn show_prompt(base: &str, authorization: &DeviceAuthorization, no_browser: bool) {
    let url = printable(&absolute(base, &authorization.verification_uri_complete));
    let minutes = (authorization.expires_in + 59) / 60;
    eprintln!(
        "To sign in to Rolegate, open this URL in a browser:\n\n    {url}\n\n\
         and approve the request with the code\n\n    {}\n",
        printable(&authorization.user_code)
    );
    if !no_browser {
        match browsable(&url) {
            Some(url) => open_browser(&url),
            None => eprintln!("(Not an http(s) URL: not opening a browser.)"),
        }
    }
    eprintln!("Waiting for approval (the request expires in {minutes} min; Ctrl-C to cancel)...");
}

/// Starts `$BROWSER` (first entry; `%s` replaced by the URL, else appended) if set.
fn open_browser(url: &str) {
    let Some(browser) = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
    else {
        return;
    };
    let command = browser.split(':').next().unwrap_or_default();
    let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    if words.iter().any(|w| w.contains("%s")) {
        for word in &mut words {
            *word = word.replace("%s", url);
        }
    } else {
        words.push(url.to_owned());
    }
    let Some((program, rest)) = words.split_first() else {
        return;
    };
    let spawned = std::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(_) => eprintln!("(Opened it with {program}.)"),
        Err(e) => eprintln!("(Could not start $BROWSER {program}: {e}; open the URL yourself.)"),
    }
}

/// What one CreateToken poll means for the loop.
#[derive(Debug, PartialEq, Eq)]
enum Poll {
    Pending,
    SlowDown,
    /// Rolegate (or a proxy in front of it) failed or could not be reached: worth
    /// asking again, after a back-off.
    Transient(String),
    Failed(String),
}

fn classify(error: &ApiError) -> Poll {
    match error.code() {
        Some("AuthorizationPendingException") => Poll::Pending,
        Some("SlowDownException") => Poll::SlowDown,
        Some("ExpiredTokenException") => Poll::Failed(
            "the sign-in request expired before it was approved; run `rolegate login` again"
                .to_owned(),
        ),
        Some("AccessDeniedException") => {
            Poll::Failed(format!("the sign-in request was denied ({error})"))
        }
        _ if is_transient(error) => Poll::Transient(error.to_string()),
        _ => Poll::Failed(format!("sign-in failed: {error}")),
    }
}

/// Connection failures, 5xx answers (the server's or a proxy's) and throttling.
fn is_transient(error: &ApiError) -> bool {
    match error {
        ApiError::Transport { .. } => true,
        ApiError::Service { status, .. } => *status >= 500 || *status == 429,
        ApiError::Malformed { .. } => false,
    }
}

/// The longest wait between two polls after failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How long to wait after the `failures`-th transient failure in a row: doubling
/// from one second up to [`MAX_RETRY_DELAY`], less up to half of it by `jitter`
/// (in `[0, 1)`, so that many terminals do not retry in step), and never less than
/// the polling interval.
fn retry_delay(failures: u32, interval_seconds: u64, jitter: f64) -> Duration {
    let doubling = 2f64.powi(i32::try_from(failures.saturating_sub(1).min(16)).unwrap_or(16));
    let backoff = doubling.min(MAX_RETRY_DELAY.as_secs_f64());
    let jittered = backoff * (1.0 - jitter.clamp(0.0, 1.0) / 2.0);
    #[allow(clippy::cast_precision_loss)]
    let interval = interval_seconds as f64;
    Duration::from_secs_f64(jittered.max(interval))
}

/// One immediate CreateToken, then one every `interval` seconds (+5 s after each
/// SlowDown) until approved, denied or expired. Transient failures (5xx, no
/// connection) are retried with a capped, jittered exponential back-off until the
/// device code expires.
async fn poll_for_token(
    client: &SsoClient,
    registration: &ClientRegistration,
    authorization: &DeviceAuthorization,
) -> Result<TokenGrant, String> {
    use rand::Rng;
    let clock = crate::clock::Clock::system();
    let random = crate::clock::Random::system();
    let mut interval = authorization.interval.unwrap_or(5).max(1);
    // The server expires the code; this only guards against one that never does.
    let give_up: DateTime<Utc> =
        clock.now() + TimeDelta::seconds(authorization.expires_in.max(0) + 60);
    let mut wait = Duration::ZERO;
    let mut failures = 0u32;
    let mut last_failure: Option<String> = None;
    loop {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let error = match client
            .create_token_for_device(registration, &authorization.device_code)
            .await
        {
            Ok(grant) => return Ok(grant),
            Err(error) => error,
        };
        match classify(&error) {
            Poll::Pending => {
                failures = 0;
                wait = Duration::from_secs(interval);
            }
            Poll::SlowDown => {
                failures = 0;
                interval += 5;
                wait = Duration::from_secs(interval);
            }
            Poll::Transient(message) => {
                failures += 1;
                wait = retry_delay(failures, interval, random.rng().random::<f64>());
                eprintln!(
                    "(Rolegate did not answer the sign-in poll: {message}; trying again in {:.1} s.)",
                    wait.as_secs_f64()
                );
                last_failure = Some(message);
            }
            Poll::Failed(message) => return Err(message),
        }
        let next = clock.now() + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
        if next > give_up {
            return Err(match last_failure.filter(|_| failures > 0) {
                Some(failure) => format!(
                    "the sign-in request expired while Rolegate kept failing (last: {failure}); run `rolegate login` again"
                ),
                None => {
                    "the sign-in request expired before it was approved; run `rolegate login` again"
                        .to_owned()
                }
            });
        }
    }
}

async fn list_roles(client: &SsoClient, access_token: &str) -> Result<Vec<RoleEntry>, ApiError> {
    let mut roles = Vec::new();
    for account in client.list_accounts(access_token).await? {
        for role in client
            .list_account_roles(access_token, &account.account_id)
            .await?
        {
            roles.push(RoleEntry {
                account_id: account.account_id.clone(),
                account_name: account.account_name.clone(),
                role_name: role.role_name,
            });
        }
    }
    Ok(roles)
}

fn print_roles(roles: &[RoleEntry]) {
    if roles.is_empty() {
        eprintln!("No roles are granted to you in any account.");
        return;
    }
    eprintln!("\nYour roles (account, role, profile name):");
    for role in roles {
        let account = match &role.account_name {
            Some(name) if !name.is_empty() => format!("{} ({name})", role.account_id),
            _ => role.account_id.clone(),
        };
        eprintln!(
            "  {account:<28} {:<24} {}",
            role.role_name,
            aws_config::profile_name(&role.role_name, &role.account_id)
        );
    }
    eprintln!(
        "\nCredentials for one: `rolegate credentials --account-id ID --role-name ROLE` \
         or `rolegate exec --account-id ID --role-name ROLE -- COMMAND`."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_capped_and_jittered() {
        let seconds = |failures, jitter| retry_delay(failures, 1, jitter).as_secs_f64();
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 7, 50].map(|n| seconds(n, 0.0)),
            [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
        );
        // Jitter takes up to half off, never below the polling interval.
        assert_eq!(seconds(4, 0.5), 6.0);
        assert_eq!(seconds(6, 0.999_999).round(), 15.0);
        assert_eq!(retry_delay(1, 5, 0.9).as_secs_f64(), 5.0);
    }

    #[test]
    fn polling_reacts_to_each_error() {
        assert_eq!(
            classify(&ApiError::service("AuthorizationPendingException")),
            Poll::Pending
        );
        assert_eq!(
            classify(&ApiError::service("SlowDownException")),
            Poll::SlowDown
        );
        for status in [500, 502, 503, 504, 429] {
            let error = ApiError::Service {
                status,
                code: "InternalServerException".to_owned(),
                message: "m".to_owned(),
            };
            assert!(matches!(classify(&error), Poll::Transient(_)), "{status}");
        }
        let unreachable = ApiError::Transport {
            url: "http://127.0.0.1:9/token".to_owned(),
            detail: "connection refused".to_owned(),
        };
        assert!(matches!(classify(&unreachable), Poll::Transient(_)));
        for (code, says) in [
            ("ExpiredTokenException", "expired"),
            ("AccessDeniedException", "denied"),
            (
                "InvalidGrantException",
                "sign-in failed: InvalidGrantException",
            ),
        ] {
            match classify(&ApiError::service(code)) {
                Poll::Failed(message) => assert!(message.contains(says), "{message}"),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn server_text_cannot_drive_the_terminal_or_the_browser() {
        assert_eq!(printable("BCDF-GHJK\u{1b}[2J\r"), "BCDF-GHJK?[2J?");
        assert_eq!(
            browsable("https://rg.example.com/device?user_code=BCDF-GHJK").as_deref(),
            Some("https://rg.example.com/device?user_code=BCDF-GHJK")
        );
        assert_eq!(browsable("--incognito"), None);
        assert_eq!(browsable("file:///etc/passwd"), None);
        assert_eq!(browsable("javascript:alert(1)"), None);
    }

    #[test]
    fn session_names_and_hints() {
        assert!(parse_session_name("corp-1.x_y").is_ok());
        assert!(parse_session_name("").is_err());
        assert!(parse_session_name("a b").is_err());
        assert!(parse_session_name("a]").is_err());
        assert_eq!(
            login_hint(Some("http://h"), "rolegate"),
            "`rolegate login --url http://h`"
        );
        assert_eq!(
            login_hint(None, "corp"),
            "`rolegate login --url <Rolegate URL> --sso-session corp`"
        );
    }
}
