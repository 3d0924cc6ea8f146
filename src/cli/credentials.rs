//! `rolegate credentials` and `rolegate exec`: role credentials from the SSO portal
//! API with the token `rolegate login` cached, refreshed first when less than 15
//! minutes remain (as botocore does). `credentials` prints the `credential_process`
//! JSON (spec §7.2) or shell exports; `exec` runs a command with them in its environment.

use std::ffi::OsString;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::login::{block_on, login_hint, parse_session_name};
use super::sso_cache::{CachedToken, DEFAULT_SESSION, Freshness, SsoCache};
use super::sso_client::{RoleCredentials, SsoClient};

/// Which role, with which sign-in.
#[derive(Debug, Clone, clap::Args)]
pub struct RoleArgs {
    /// The 12-digit AWS account id.
    #[arg(long)]
    pub account_id: String,
    /// The role's name in that account.
    #[arg(long)]
    pub role_name: String,
    /// The sso-session whose cached token to use (see `rolegate login --sso-session`).
    #[arg(long, default_value = DEFAULT_SESSION, value_parser = parse_session_name)]
    pub sso_session: String,
}

/// How `rolegate credentials` prints the credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `credential_process` JSON (the only output on stdout).
    #[default]
    Process,
    /// `export NAME="value"` lines for Bash and Zsh.
    Env,
    /// `set -x NAME "value"` lines for fish.
    Fish,
    /// `$Env:NAME="value"` lines for PowerShell.
    Powershell,
}

/// Runs `rolegate credentials`.
pub fn run_credentials(args: &RoleArgs, format: Format) -> Result<ExitCode, String> {
    let credentials = block_on(role_credentials(args))??;
    print!("{}", render(&credentials, &args.account_id, format));
    Ok(ExitCode::SUCCESS)
}

/// Runs `rolegate exec`: `command` with the role's credentials in its environment.
/// On Unix the command replaces this process (so its exit status and signals are
/// the command's own); elsewhere its exit code is passed through.
pub fn run_exec(args: &RoleArgs, command: &[OsString]) -> Result<ExitCode, String> {
    let (program, rest) = command
        .split_first()
        .ok_or("give the command to run after `--`, e.g. `-- aws s3 ls`")?;
    let credentials = block_on(role_credentials(args))??;
    let mut child = std::process::Command::new(program);
    child.args(rest).envs(environment(&credentials));
    let cannot = |e: std::io::Error| format!("cannot run `{}`: {e}", program.to_string_lossy());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // Returns only if the command could not be started.
        Err(cannot(child.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = child.status().map_err(cannot)?;
        let code = status.code().unwrap_or(1);
        Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)))
    }
}

/// The cached token for the session (refreshed if due), then GetRoleCredentials.
pub async fn role_credentials(args: &RoleArgs) -> Result<RoleCredentials, String> {
    let session = args.sso_session.as_str();
    let cache = SsoCache::for_home()?;
    let Some(mut token) = cache.load_token(session)? else {
        let configured = super::aws_config::rolegate_base(session, None);
        return Err(format!(
            "not signed in (no cached token for sso-session {session}): run {}",
            login_hint(configured.as_deref(), session)
        ));
    };
    let Some(base) = super::aws_config::rolegate_base(session, token.start_url.as_deref()) else {
        return Err(format!(
            "the cached token of sso-session {session} does not say which Rolegate issued it: run {}",
            login_hint(None, session)
        ));
    };
    let hint = login_hint(Some(&base), session);
    let client = SsoClient::new(&base)?;
    let now = crate::clock::Clock::system().now();
    let freshness = token.freshness(now);
    if freshness != Freshness::Fresh {
        let refreshed = match token.refresh_material(now) {
            Some((id, secret, refresh)) => Some(client.refresh_token(id, secret, refresh).await),
            None => None,
        };
        match refreshed {
            Some(Ok(grant)) => {
                token.apply_refresh(
                    grant.access_token,
                    grant.expires_in,
                    grant.refresh_token,
                    crate::clock::Clock::system().now(),
                );
                if let Err(e) = cache.save_token(session, &token) {
                    eprintln!("rolegate: warning: the refreshed token was not saved: {e}");
                }
            }
            failed => {
                // Refresh tokens are single-use: a parallel `credential_process` (or
                // botocore) may have just spent this one and saved what it got.
                let reloaded = cache.load_token(session).ok().flatten();
                if let Some(newer) =
                    refreshed_elsewhere(&token, reloaded, crate::clock::Clock::system().now())
                {
                    token = newer;
                } else {
                    match (failed, freshness) {
                        (Some(Err(e)), Freshness::ExpiringSoon) => eprintln!(
                            "rolegate: warning: could not refresh the token of sso-session {session} ({e}); \
                             it expires at {}",
                            token.expires_at
                        ),
                        (_, Freshness::ExpiringSoon) => {}
                        (Some(Err(e)), _) => {
                            return Err(format!(
                                "the sign-in of sso-session {session} has expired and could not be refreshed ({e}): run {hint}"
                            ));
                        }
                        _ => {
                            return Err(format!(
                                "the sign-in of sso-session {session} has expired: run {hint}"
                            ));
                        }
                    }
                }
            }
        }
    }
    client
        .get_role_credentials(&token.access_token, &args.account_id, &args.role_name)
        .await
        .map_err(|e| match e.code() {
            Some("UnauthorizedException") => format!(
                "Rolegate no longer accepts the sign-in of sso-session {session} ({e}): run {hint}"
            ),
            Some(_) => format!(
                "no credentials for role {} in account {}: {e}",
                args.role_name, args.account_id
            ),
            None => format!(
                "cannot get credentials for role {} in account {}: {e}",
                args.role_name, args.account_id
            ),
        })
}

/// The token file as another process left it, if it holds a different access token
/// that is still valid at `now`.
fn refreshed_elsewhere(
    ours: &CachedToken,
    reloaded: Option<CachedToken>,
    now: DateTime<Utc>,
) -> Option<CachedToken> {
    reloaded.filter(|newer| {
        newer.access_token != ours.access_token && newer.freshness(now) != Freshness::Expired
    })
}

/// The expiration as RFC 3339 UTC (`2026-11-23T19:56:41Z`).
fn expiration(credentials: &RoleCredentials) -> String {
    DateTime::<Utc>::from_timestamp_millis(credentials.expiration)
        .map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The `credential_process` document (spec §7.2); `Version` is the integer 1.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessOutput<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
    account_id: &'a str,
}

/// The variables `exec` sets and the export formats print.
fn environment(credentials: &RoleCredentials) -> [(&'static str, String); 4] {
    [
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key.clone(),
        ),
        ("AWS_SESSION_TOKEN", credentials.session_token.clone()),
        ("AWS_CREDENTIAL_EXPIRATION", expiration(credentials)),
    ]
}

/// `value` in double quotes, with the characters special there escaped by `escape`.
fn quoted(value: &str, special: &[char], escape: char) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if special.contains(&c) {
            out.push(escape);
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The credentials in `format`, newline-terminated.
pub fn render(credentials: &RoleCredentials, account_id: &str, format: Format) -> String {
    if format == Format::Process {
        let document = ProcessOutput {
            version: 1,
            access_key_id: &credentials.access_key_id,
            secret_access_key: &credentials.secret_access_key,
            session_token: &credentials.session_token,
            expiration: expiration(credentials),
            account_id,
        };
        let json = serde_json::to_string_pretty(&document).unwrap_or_default();
        return format!("{json}\n");
    }
    environment(credentials)
        .iter()
        .map(|(name, value)| match format {
            Format::Fish => format!("set -x {name} {}\n", quoted(value, &['\\', '"', '$'], '\\')),
            Format::Powershell => format!("$Env:{name}={}\n", quoted(value, &['`', '"', '$'], '`')),
            _ => format!(
                "export {name}={}\n",
                quoted(value, &['\\', '"', '$', '`'], '\\')
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RoleCredentials {
        RoleCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "se/cr+et".into(),
            session_token: "tok$en".into(),
            expiration: 1_795_463_516_618,
        }
    }

    #[test]
    fn process_output_is_the_credential_process_schema() {
        let text = render(&sample(), "123456789012", Format::Process);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "Version": 1,
                "AccessKeyId": "ASIAEXAMPLE",
                "SecretAccessKey": "se/cr+et",
                "SessionToken": "tok$en",
                "Expiration": "2026-11-23T19:51:56Z",
                "AccountId": "123456789012",
            })
        );
        assert!(
            text.trim_start().starts_with("{\n  \"Version\": 1,"),
            "{text}"
        );
    }

    #[test]
    fn a_token_refreshed_by_another_process_is_taken_over() {
        let token = |access: &str, expires: &str| -> CachedToken {
            serde_json::from_value(serde_json::json!({
                "accessToken": access, "expiresAt": expires
            }))
            .unwrap()
        };
        let now = DateTime::parse_from_rfc3339("2026-11-24T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ours = token("old", "2026-11-24T01:59:00Z");
        let newer = token("new", "2026-11-24T03:00:00Z");
        assert_eq!(
            refreshed_elsewhere(&ours, Some(newer.clone()), now),
            Some(newer)
        );
        assert_eq!(refreshed_elsewhere(&ours, Some(ours.clone()), now), None);
        assert_eq!(
            refreshed_elsewhere(&ours, Some(token("new", "2026-11-24T01:00:00Z")), now),
            None,
            "expired"
        );
        assert_eq!(refreshed_elsewhere(&ours, None, now), None);
    }

    #[test]
    fn shell_formats_quote_their_special_characters() {
        let env = render(&sample(), "1", Format::Env);
        assert!(
            env.contains("export AWS_ACCESS_KEY_ID=\"ASIAEXAMPLE\"\n"),
            "{env}"
        );
        assert!(
            env.contains("export AWS_SESSION_TOKEN=\"tok\\$en\"\n"),
            "{env}"
        );
        assert!(env.contains("export AWS_CREDENTIAL_EXPIRATION=\"2026-11-23T19:51:56Z\"\n"));
        let fish = render(&sample(), "1", Format::Fish);
        assert!(
            fish.contains("set -x AWS_SECRET_ACCESS_KEY \"se/cr+et\"\n"),
            "{fish}"
        );
        let ps = render(&sample(), "1", Format::Powershell);
        assert!(ps.contains("$Env:AWS_SESSION_TOKEN=\"tok`$en\"\n"), "{ps}");
    }
}
