//! `rolegate logout`: signs a terminal out as `aws sso logout` does. The SSO portal's
//! Logout with the cached access token makes Rolegate refuse that token and every
//! refresh token of the sign-in; then the token file is deleted. The cached client
//! registration stays (as CLI v2 keeps it), so the next `rolegate login` reuses it.
//!
//! Idempotent: without a cached token it says "not signed in" and succeeds. The
//! token file is deleted even when Rolegate cannot be reached (with a warning), and
//! the command still succeeds: signing this machine out must not depend on the
//! server, and once the file is gone running it again could not do more.

use std::process::ExitCode;

use super::login::{block_on, parse_session_name};
use super::sso_cache::{CachedToken, DEFAULT_SESSION, Freshness, SsoCache};
use super::sso_client::{ApiError, SsoClient};

/// `rolegate logout`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogoutArgs {
    /// The sso-session to sign out of (see `rolegate login --sso-session`).
    #[arg(long, default_value = DEFAULT_SESSION, value_parser = parse_session_name)]
    pub sso_session: String,
}

/// Runs `rolegate logout`.
pub fn run(args: &LogoutArgs) -> Result<ExitCode, String> {
    block_on(logout(args))?.map(|()| ExitCode::SUCCESS)
}

/// What became of the sign-in at Rolegate.
#[derive(Debug, PartialEq, Eq)]
enum AtServer {
    /// Logout succeeded: the access and refresh tokens are refused from now on.
    Ended,
    /// Rolegate no longer accepted the token (logged out, expired or ended).
    AlreadyOver,
    /// Rolegate could not be told: why.
    NotReached(String),
}

async fn logout(args: &LogoutArgs) -> Result<(), String> {
    let session = args.sso_session.as_str();
    let cache = SsoCache::for_home()?;
    let token = match cache.load_token(session) {
        Ok(Some(token)) => token,
        Ok(None) => {
            eprintln!("Not signed in (no cached token for sso-session {session}): nothing to do.");
            return Ok(());
        }
        // Not a token file: nothing to send to Rolegate, but it goes all the same.
        Err(e) => {
            cache.remove_token(session)?;
            eprintln!("rolegate: warning: {e}");
            eprintln!("Signed out of sso-session {session}: the token file was deleted.");
            return Ok(());
        }
    };
    let at_server = match super::aws_config::rolegate_base(session, token.start_url.as_deref()) {
        Some(base) => end_at_server(&base, &token).await,
        None => {
            AtServer::NotReached("the cached token does not say which Rolegate issued it".into())
        }
    };
    let path = cache.token_path(session);
    cache.remove_token(session)?;
    match at_server {
        AtServer::Ended => eprintln!(
            "Signed out of sso-session {session}: Rolegate ended the sign-in and {} was deleted.",
            path.display()
        ),
        AtServer::AlreadyOver => eprintln!(
            "Signed out of sso-session {session}: the sign-in had already ended (logged out or \
             expired); {} was deleted.",
            path.display()
        ),
        AtServer::NotReached(detail) => {
            eprintln!(
                "rolegate: warning: could not end the sign-in at Rolegate ({detail}); a copy of \
                 its token keeps working there until the sign-in expires."
            );
            eprintln!(
                "Signed out of sso-session {session} on this machine: {} was deleted.",
                path.display()
            );
        }
    }
    Ok(())
}

/// Logout at Rolegate with the cached access token. An expired one cannot name the
/// sign-in any more, but its refresh token still could renew it: refresh first then.
async fn end_at_server(base: &str, token: &CachedToken) -> AtServer {
    let client = match SsoClient::new(base) {
        Ok(client) => client,
        Err(e) => return AtServer::NotReached(e),
    };
    let now = crate::clock::Clock::system().now();
    let mut access_token = token.access_token.clone();
    if token.freshness(now) == Freshness::Expired {
        let Some((id, secret, refresh)) = token.refresh_material(now) else {
            // Neither token is usable: nothing left to end.
            return AtServer::AlreadyOver;
        };
        match client.refresh_token(id, secret, refresh).await {
            Ok(grant) => access_token = grant.access_token,
            Err(e) => return refused(e, &["InvalidGrantException", "InvalidClientException"]),
        }
    }
    match client.logout(&access_token).await {
        Ok(()) => AtServer::Ended,
        Err(e) => refused(e, &["UnauthorizedException"]),
    }
}

/// A failed call: the sign-in is over if Rolegate answered with one of `over`.
fn refused(error: ApiError, over: &[&str]) -> AtServer {
    match error.code() {
        Some(code) if over.contains(&code) => AtServer::AlreadyOver,
        _ => AtServer::NotReached(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_of_the_token_means_the_sign_in_is_over() {
        let over = ["UnauthorizedException"];
        assert_eq!(
            refused(ApiError::service("UnauthorizedException"), &over),
            AtServer::AlreadyOver
        );
        assert_eq!(
            refused(ApiError::service("InternalServerException"), &over),
            AtServer::NotReached("InternalServerException: m".into())
        );
        let unreachable = ApiError::Transport {
            url: "http://127.0.0.1:1/logout".into(),
            detail: "connection refused".into(),
        };
        assert!(matches!(
            refused(unreachable, &over),
            AtServer::NotReached(detail) if detail.contains("cannot reach Rolegate")
        ));
    }
}
