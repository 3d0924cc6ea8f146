//! The one clock and the one random source. Everything that reads the time or draws
//! random bytes gets them from here, held by the application state (and by the
//! store, the cache and the STS it builds), so that tests move time instead of
//! sleeping and nothing decides on a clock of its own. `clippy.toml` forbids the
//! standard ways of reading either anywhere else.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// Wall-clock time. The system clock in production; in tests, the system clock
/// plus a shift that only the [`ClockHand`] can move, so real time still passes
/// (peers such as the AWS CLI keep their own clocks) and expiries arrive at once.
#[derive(Clone, Default)]
pub struct Clock {
    shift_ms: Option<Arc<AtomicI64>>,
}

/// Moves an adjustable [`Clock`] (and every copy of it) forward.
#[derive(Clone)]
pub struct ClockHand {
    shift_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that the returned hand moves forward: for tests.
    pub fn adjustable() -> (Self, ClockHand) {
        let shift_ms = Arc::new(AtomicI64::new(0));
        (
            Self {
                shift_ms: Some(shift_ms.clone()),
            },
            ClockHand { shift_ms },
        )
    }

    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.shift_ms {
            Some(shift) => now + TimeDelta::milliseconds(shift.load(Ordering::Relaxed)),
            None => now,
        }
    }

    /// Seconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.now().timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp_millis(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shift_ms {
            Some(shift) => write!(f, "Clock(system + {} ms)", shift.load(Ordering::Relaxed)),
            None => f.write_str("Clock(system)"),
        }
    }
}

impl ClockHand {
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.shift_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// How long something took, on the monotonic clock: for metrics only, never for a
/// decision (decisions read the [`Clock`], which tests move).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// Cryptographically secure random bytes: the operating system's generator behind
/// a per-thread ChaCha stream (`rand`'s thread generator). Pass `&mut random.rng()`
/// where a generator is wanted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random;

impl Random {
    pub fn system() -> Self {
        Self
    }

    /// A generator handle for functions that take `&mut impl Rng`.
    pub fn rng(&self) -> RandomRng {
        RandomRng(rand::rng())
    }

    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut bytes = [0u8; N];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        bytes
    }

    /// `N` random bytes in lowercase hexadecimal.
    pub fn hex<const N: usize>(&self) -> String {
        hex::encode(self.bytes::<N>())
    }

    /// A bearer token: 32 random bytes in unpadded base64url (43 characters).
    pub fn token(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.bytes::<32>())
    }
}

/// A generator drawn from [`Random`].
pub struct RandomRng(rand::rngs::ThreadRng);

impl rand::RngCore for RandomRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
}

impl rand::CryptoRng for RandomRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_moves_every_copy_of_an_adjustable_clock() {
        let (clock, hand) = Clock::adjustable();
        let copy = clock.clone();
        let before = copy.now();
        hand.advance(std::time::Duration::from_secs(3600));
        let moved = copy.now() - before;
        assert!(moved >= TimeDelta::seconds(3600), "{moved}");
        assert!(moved < TimeDelta::seconds(3660), "{moved}");
    }

    #[test]
    fn random_bytes_differ_between_draws() {
        let random = Random::system();
        assert_ne!(random.bytes::<16>(), random.bytes::<16>());
        assert_eq!(random.hex::<8>().len(), 16);
    }
}
