//! Where a federation sign-in may continue: Rolegate's own console, or an absolute
//! web URL that one of the account's console destinations allows. The whole
//! allow-list lives here: the entries an administrator stores
//! ([`ConsoleDestination`]) and the classification of a sign-in link's
//! `Destination` ([`LoginDestination`]).

use serde::Serialize;

use super::{ValidationError, is_loopback};

/// One entry of an account's console-destination allow-list: where a federation
/// sign-in link (`/federation?Action=login&Destination=...`) for a role session of
/// the account may continue to, besides Rolegate's own `/console`.
///
/// An entry is an absolute URL `https://host[:port][/path-prefix]` (plain `http://`
/// only for loopback hosts): no user info, query, fragment or wildcard. A destination
/// matches it when, both parsed as URLs, scheme, host and port are equal and the
/// destination's path equals the entry's path or continues it at a `/` boundary
/// (`/app` matches `/app` and `/app/x`, not `/apples`). String prefixes never count,
/// so `https://good.example.com.evil.example` and `https://good.example.com@evil`
/// match nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConsoleDestination(reqwest::Url);

impl ConsoleDestination {
    /// At most this many entries per account.
    pub const MAX_PER_ACCOUNT: usize = 20;
    const MAX_LEN: usize = 2_048;

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let refuse = |why: &str| {
            ValidationError::new(
                "console_destinations",
                format!("console destination {value:?} {why}"),
            )
        };
        let value = value.trim();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(refuse("must be 1 to 2048 characters"));
        }
        if !value.is_ascii() || value.chars().any(|c| c.is_ascii_control() || c == '\\') {
            return Err(refuse(
                "must be plain ASCII without spaces, control characters or backslashes",
            ));
        }
        let url = reqwest::Url::parse(value).map_err(|_| {
            refuse("is not an absolute URL such as https://app.example.com/console")
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            _ => return Err(refuse("must use https (http only for loopback hosts)")),
        }
        let Some(host) = url.host_str() else {
            return Err(refuse("has no host"));
        };
        if host.contains('*') || value.contains('*') {
            return Err(refuse("must not contain wildcards: name the exact host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "must not contain user info (user@ or user:password@)",
            ));
        }
        if url.query().is_some() {
            return Err(refuse("must not have a query"));
        }
        if url.fragment().is_some() || value.contains('#') {
            return Err(refuse("must not have a fragment"));
        }
        if has_encoded_separator(url.path()) {
            return Err(refuse("must not contain encoded slashes or backslashes"));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `destination` (an absolute URL) is allowed by this entry.
    pub fn allows(&self, destination: &reqwest::Url) -> bool {
        let entry = &self.0;
        if destination.scheme() != entry.scheme()
            || destination.host() != entry.host()
            || destination.port_or_known_default() != entry.port_or_known_default()
            || !destination.username().is_empty()
            || destination.password().is_some()
            || has_encoded_separator(destination.path())
        {
            return false;
        }
        let (prefix, path) = (entry.path(), destination.path());
        path == prefix
            || (path.starts_with(prefix)
                && (prefix.ends_with('/') || path[prefix.len()..].starts_with('/')))
    }
}

/// `%2f` or `%5c` in a path: a server behind the destination may decode them into
/// separators and climb out of the allowed prefix.
fn has_encoded_separator(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2f") || lower.contains("%5c")
}

impl std::fmt::Display for ConsoleDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for ConsoleDestination {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ConsoleDestination> for String {
    fn from(value: ConsoleDestination) -> String {
        value.0.into()
    }
}

/// Where a sign-in link asks to continue, before the account's list is consulted.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginDestination {
    /// Rolegate's own console; the query to carry over (`""` or `?...`).
    Console(String),
    /// An absolute `http(s)://` URL; the account's console destinations decide.
    External(reqwest::Url),
}

impl LoginDestination {
    /// Classifies a Destination given on `own_origin` (e.g. `http://127.0.0.1:8080`):
    /// the own console, an absolute web URL without user info, or nothing acceptable
    /// (relative paths other than `/console`, `//host`, other schemes such as
    /// `javascript:`, control characters, backslashes).
    pub fn parse(destination: &str, own_origin: &str) -> Option<Self> {
        if let Some(query) = own_console_query(destination, own_origin) {
            return Some(Self::Console(query));
        }
        let destination = destination.trim();
        if destination.len() > ConsoleDestination::MAX_LEN || !is_plain(destination) {
            return None;
        }
        let lower = destination.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return None;
        }
        let url = reqwest::Url::parse(destination).ok()?;
        if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        Some(Self::External(url))
    }

    /// Whether an entry of `entries` allows `url`.
    pub fn listed(entries: &[ConsoleDestination], url: &reqwest::Url) -> bool {
        entries.iter().any(|entry| entry.allows(url))
    }
}

/// ASCII without control characters, backslashes or spaces.
fn is_plain(destination: &str) -> bool {
    destination.is_ascii()
        && !destination
            .chars()
            .any(|c| c.is_ascii_control() || c == '\\' || c == ' ')
}

/// Whether `destination` is Rolegate's own console on `own_origin`: `/console` or
/// `/console/`, relative or absolute on this origin, with an optional query. Returns
/// the query to carry over (`""` or `?...`).
fn own_console_query(destination: &str, own_origin: &str) -> Option<String> {
    let destination = destination.trim();
    if destination.is_empty() || !is_plain(destination) {
        return None;
    }
    let local = if destination.starts_with('/') {
        if destination.starts_with("//") {
            return None;
        }
        destination
    } else {
        let head = destination.get(..own_origin.len())?;
        if !head.eq_ignore_ascii_case(own_origin) {
            return None;
        }
        let rest = destination.get(own_origin.len()..)?;
        if !rest.starts_with('/') {
            return None;
        }
        rest
    };
    let without_fragment = local.split('#').next().unwrap_or_default();
    let (path, query) = match without_fragment.split_once('?') {
        Some((path, query)) => (path, query),
        None => (without_fragment, ""),
    };
    if path != "/console" && path != "/console/" {
        return None;
    }
    Some(if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:8080";

    #[test]
    fn only_the_own_console_is_an_allowed_destination() {
        for (destination, query) in [
            ("/console", ""),
            ("/console/", ""),
            ("/console?action=s3:GetObject", "?action=s3:GetObject"),
            ("http://127.0.0.1:8080/console", ""),
            ("HTTP://127.0.0.1:8080/console#x", ""),
        ] {
            assert_eq!(
                own_console_query(destination, ORIGIN).as_deref(),
                Some(query),
                "{destination}"
            );
        }
        for destination in [
            "https://evil.example/console",
            "//evil.example/console",
            "http://127.0.0.1:8080.evil.example/console",
            "http://127.0.0.1:8080@evil.example/console",
            "https://127.0.0.1:8080/console",
            "/start",
            "/console/../start",
            "/consolex",
            "/console/abc",
            "/\\evil.example",
            "javascript:alert(1)",
            "/console\r\nSet-Cookie: x=y",
            "",
        ] {
            assert_eq!(
                own_console_query(destination, ORIGIN),
                None,
                "{destination}"
            );
        }
    }

    fn entries(list: &[&str]) -> Vec<ConsoleDestination> {
        list.iter()
            .map(|e| ConsoleDestination::parse(e).unwrap())
            .collect()
    }

    fn external(destination: &str) -> reqwest::Url {
        match LoginDestination::parse(destination, ORIGIN) {
            Some(LoginDestination::External(url)) => url,
            other => panic!("{destination}: {other:?}"),
        }
    }

    #[test]
    fn destinations_are_the_console_or_absolute_web_urls() {
        assert_eq!(
            LoginDestination::parse("/console?a=b", ORIGIN),
            Some(LoginDestination::Console("?a=b".into()))
        );
        for refused in [
            "//evil.example/console",
            "/start",
            "javascript:alert(1)",
            "JaVaScRiPt://good.example.com/%0aalert(1)",
            "data:text/html,x",
            "ftp://good.example.com/",
            "https://user@good.example.com/",
            "https://good.example.com:pw@evil.example/",
            "https:\\\\evil.example",
            "https://good.example.com/\tx",
            "",
        ] {
            assert_eq!(LoginDestination::parse(refused, ORIGIN), None, "{refused}");
        }
        assert_eq!(
            external("HTTPS://Good.Example.COM:443/app/x?q=1#f").as_str(),
            "https://good.example.com/app/x?q=1#f"
        );
        // Lenient forms are matched, and redirected to, as the URL they parse to.
        assert_eq!(
            external("https:///good.example.com/app").as_str(),
            "https://good.example.com/app"
        );
    }

    #[test]
    fn the_allow_list_matches_parsed_urls_not_strings() {
        let list = entries(&["https://good.example.com/app", "https://other.example.com/"]);
        for allowed in [
            "https://good.example.com/app",
            "https://good.example.com/app/",
            "https://good.example.com/app/deep/x?y=1",
            "https://GOOD.example.com:443/app/x",
            "https://good.example.com/other/../app/x",
            "https://other.example.com/",
            "https://other.example.com/anything",
        ] {
            assert!(
                LoginDestination::listed(&list, &external(allowed)),
                "{allowed}"
            );
        }
        for refused in [
            "https://good.example.com/apples",
            "https://good.example.com/",
            "https://good.example.com/app/../admin",
            "https://good.example.com/app/%2e%2e/admin",
            "https://good.example.com/app/..%2fadmin",
            "https://good.example.com/app%2fx",
            "https://good.example.com.evil.example/app",
            "https://evil.example/good.example.com/app",
            "https://good.example.com:8443/app",
            "http://good.example.com/app",
            "https://sub.good.example.com/app",
            "https://other.example.com.evil.example/",
        ] {
            assert!(
                !LoginDestination::listed(&list, &external(refused)),
                "{refused}"
            );
        }
        let slash = entries(&["https://good.example.com/app/"]);
        assert!(LoginDestination::listed(
            &slash,
            &external("https://good.example.com/app/x")
        ));
        assert!(!LoginDestination::listed(
            &slash,
            &external("https://good.example.com/app")
        ));
        let port = entries(&["http://127.0.0.1:9000/ui"]);
        assert!(LoginDestination::listed(
            &port,
            &external("http://127.0.0.1:9000/ui/x")
        ));
        assert!(!LoginDestination::listed(
            &port,
            &external("http://127.0.0.1:9001/ui/x")
        ));
    }

    #[test]
    fn allow_list_entries_are_validated() {
        for ok in [
            "https://good.example.com",
            "https://good.example.com/app",
            "https://good.example.com:8443/app/",
            "http://127.0.0.1:9000/ui",
            "http://localhost/x",
            "http://[::1]:8080/",
        ] {
            assert!(ConsoleDestination::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://good.example.com/", "https"),
            ("https://*.example.com/", "wildcard"),
            ("https://good.example.com/*", "wildcard"),
            ("https://user@good.example.com/", "user info"),
            ("https://user:pw@good.example.com/", "user info"),
            ("https://good.example.com/#x", "fragment"),
            ("https://good.example.com/?q=1", "query"),
            ("https://good.example.com/a%2Fb", "encoded"),
            ("/console", "absolute URL"),
            ("javascript:alert(1)", "https"),
            ("", "1 to 2048"),
        ] {
            let error = ConsoleDestination::parse(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert_eq!(
            ConsoleDestination::parse(" HTTPS://Good.Example.com ")
                .unwrap()
                .as_str(),
            "https://good.example.com/"
        );
    }
}
