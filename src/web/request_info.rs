//! Where a request came from, answered in one place: this server's public origin
//! (for the absolute URLs Rolegate hands out), the client's IP address (audit
//! events, `aws:SourceIp`, rate limits) and whether the browser talks https (the
//! cookies' `Secure` flag).
//!
//! Forwarding headers (`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`)
//! are read only when the connection comes from one of `server.trusted_proxies`;
//! from anyone else they are ignored, since any client can send them. The RFC 7239
//! `Forwarded` header is not read. With `server.public_url` set, the origin is that
//! URL whatever the request says.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::uri::Authority;
use actix_web::web;
use ipnet::IpNet;

use super::AppState;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// `server.public_url`: the origin (`scheme://host[:port]`) clients reach Rolegate
/// at, normalised (lower-case host, no default port, no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// An absolute `http` or `https` URL of the root of an origin: no user info,
    /// path (other than `/`), query or fragment. Rolegate's own links and cookies are
    /// at the root, so it cannot be served under a path prefix.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let url = reqwest::Url::parse(value)
            .map_err(|e| format!("{value:?} is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{value:?} must start with https:// (or http://)"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{value:?} has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{value:?} must not carry a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{value:?} must not have a query or fragment"));
        }
        if url.path() != "/" {
            return Err(format!(
                "{value:?} has a path: Rolegate must be served at the root of its origin (e.g. https://rolegate.example.com)"
            ));
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `server.trusted_proxies`: the addresses whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry an IP address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`,
    /// `fd00::/8`); blank entries (an empty environment variable) are skipped.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "{entry:?} is neither an IP address nor a network in CIDR notation"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// How this server is reached: `[server]`'s `public_url` and `trusted_proxies`.
/// The default (no public URL, no proxies) derives the origin from the request's
/// `Host` and trusts no forwarding header: right for `dev` and loopback use.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    pub public_url: Option<PublicUrl>,
    pub trusted_proxies: TrustedProxies,
}

impl ServerSettings {
    /// The client's address: the peer's, unless the peer is a trusted proxy; then
    /// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.trusted_proxies.contains(peer) {
            return Some(peer);
        }
        let forwarded: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        Some(forwarded_client(peer, &forwarded, &self.trusted_proxies))
    }

    /// `scheme://host[:port]` as clients reach this server.
    pub fn public_origin(&self, request: &HttpRequest) -> String {
        if let Some(url) = &self.public_url {
            return url.as_str().to_owned();
        }
        let from_proxy = request
            .peer_addr()
            .is_some_and(|peer| self.trusted_proxies.contains(peer.ip()));
        let scheme = from_proxy
            .then(|| last_value(request.headers(), X_FORWARDED_PROTO))
            .flatten()
            .and_then(|proto| {
                let proto = proto.to_ascii_lowercase();
                matches!(proto.as_str(), "http" | "https").then_some(proto)
            })
            .unwrap_or_else(|| {
                if request.app_config().secure() {
                    "https".to_owned()
                } else {
                    "http".to_owned()
                }
            });
        let forwarded_host = from_proxy
            .then(|| last_value(request.headers(), X_FORWARDED_HOST))
            .flatten()
            .and_then(|host| valid_host(&host));
        let host = forwarded_host
            .or_else(|| {
                request
                    .headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .and_then(valid_host)
            })
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .and_then(|a| valid_host(a.as_str()))
            })
            .unwrap_or_else(|| request.app_config().host().to_owned());
        format!("{scheme}://{host}")
    }
}

/// The right-to-left walk over `X-Forwarded-For` (`forwarded`: its comma-separated
/// entries, left to right, from a request whose peer `peer` is a trusted proxy).
/// Each trusted hop vouches for the entry to its left; the first entry that is not a
/// trusted proxy is the client. When every entry is trusted, the left-most is the
/// client. An entry that is not an address ends the walk at the last trusted hop:
/// what is to its left cannot be believed.
pub fn forwarded_client(peer: IpAddr, forwarded: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    for entry in forwarded.iter().rev() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some(ip) = parse_forwarded_ip(entry) else {
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, or some proxies' `1.2.3.4:port` and
/// `[v6]:port`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(address) = entry.parse::<std::net::SocketAddr>() {
        return Some(address.ip().to_canonical());
    }
    let bracketed = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']'))?;
    bracketed.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The last comma-separated value of the last `name` header: the one the proxy in
/// front of this server set (proxies that append add to the right).
fn last_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get_all(name).last()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    (!last.is_empty()).then(|| last.to_owned())
}

/// A `host[:port]` fit to go into a URL (no user info, path or stray characters).
fn valid_host(value: &str) -> Option<String> {
    let value = value.trim();
    let authority: Authority = value.parse().ok()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(authority.as_str().to_ascii_lowercase())
}

fn settings(request: &HttpRequest) -> Option<&ServerSettings> {
    request
        .app_data::<web::Data<AppState>>()
        .map(|state| &state.server)
}

/// This request's public origin (`https://rolegate.example.com`), for absolute URLs.
pub(crate) fn public_origin(request: &HttpRequest) -> String {
    match settings(request) {
        Some(settings) => settings.public_origin(request),
        None => ServerSettings::default().public_origin(request),
    }
}

/// Whether the public origin is https: then cookies are `Secure`.
pub(crate) fn is_https(request: &HttpRequest) -> bool {
    public_origin(request).starts_with("https://")
}

/// The client's IP address (see [`ServerSettings::client_ip`]).
pub(crate) fn client_ip(request: &HttpRequest) -> Option<IpAddr> {
    let peer = request.peer_addr().map(|a| a.ip());
    match settings(request) {
        Some(settings) => settings.client_ip(peer, request.headers()),
        None => peer.map(|ip| ip.to_canonical()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn ip(value: &str) -> IpAddr {
        value.parse().unwrap()
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_entry_from_the_right() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        // The left-most entry is whatever the client claimed: not believed.
        let xff = ["6.6.6.6", " 203.0.113.9", "10.1.2.3 "];
        assert_eq!(forwarded_client(peer, &xff, &proxies), ip("203.0.113.9"));
        // Every hop trusted: the left-most is the client.
        assert_eq!(
            forwarded_client(peer, &["10.9.9.9", "10.1.1.1"], &proxies),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(forwarded_client(peer, &[], &proxies), peer);
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(
            forwarded_client(peer, &["203.0.113.9", "bogus", "10.1.1.1"], &proxies),
            ip("10.1.1.1")
        );
        // Ports and brackets, and IPv4-mapped addresses.
        assert_eq!(
            forwarded_client(peer, &["[2001:db8::7]:443"], &proxies),
            ip("2001:db8::7")
        );
        assert_eq!(
            forwarded_client(peer, &["192.0.2.1:5000"], &proxies),
            ip("192.0.2.1")
        );
        assert_eq!(
            forwarded_client(peer, &["::ffff:192.0.2.1"], &proxies),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn hosts_must_be_plain_authorities() {
        assert_eq!(
            valid_host("Example.COM:8443").as_deref(),
            Some("example.com:8443")
        );
        assert_eq!(valid_host("[::1]:8080").as_deref(), Some("[::1]:8080"));
        assert_eq!(valid_host("evil.example/path"), None);
        assert_eq!(valid_host("user@evil.example"), None);
        assert_eq!(valid_host(""), None);
    }
}
