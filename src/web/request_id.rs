//! One id per request: minted by the server's request middleware (`app.rs`), carried
//! by the request's `tracing` span, sent back in `x-amzn-RequestId` on every answer
//! (the header AWS SDKs log), and written into the AWS-shaped bodies that repeat it
//! (`<RequestId>` in STS XML). So a client's error report, the access log line and
//! the server's log lines of that request all name the same id.

use actix_web::{HttpMessage, HttpRequest};

/// The response header that carries the id.
pub const HEADER: &str = "x-amzn-RequestId";

/// A request id in the UUID shape the AWS SDKs log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn new(random: &crate::clock::Random) -> Self {
        let hex = random.hex::<16>();
        let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default().to_owned();
        Self(format!(
            "{}-{}-{}-{}-{}",
            part(0..8),
            part(8..12),
            part(12..16),
            part(16..20),
            part(20..32)
        ))
    }

    /// The id the middleware gave `request` (a fresh one where none did).
    pub fn of(request: &HttpRequest) -> Self {
        request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| Self::new(&crate::clock::Random::system()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Random;

    #[test]
    fn ids_have_the_uuid_shape_and_differ() {
        let (a, b) = (RequestId::new(&Random), RequestId::new(&Random));
        assert_ne!(a, b);
        let lengths: Vec<usize> = a.as_str().split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12]);
    }
}
