//! The IAM model's value types: validated names, account ids, paths, ARNs and tags.
//!
//! Every type here can only be built by parsing, so a `RoleName` in hand is a valid
//! role name; the store and the web layer never re-check.

mod arn;
mod console_destination;
mod names;
mod provider_url;

pub use arn::{Arn, Partition, RoleArn};
pub use console_destination::{ConsoleDestination, LoginDestination};
pub use names::{
    AccountId, Description, GroupName, IamPath, MaxSessionDuration, PolicyName, RoleName, Tag,
    Tags, UserName,
};
pub use provider_url::{ProviderUrlError, ProviderUrlKind, check_provider_url, is_loopback};

use std::fmt;

/// A value that failed IAM's naming or format rules. `field` names the offending input,
/// `message` says what to change, in IAM's `ValidationError` style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The kinds of IAM unique ids (`AROA...` for roles and so on), as IAM prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Role,
    Policy,
    User,
    Group,
    Provider,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::Role => "AROA",
            IdKind::Policy => "ANPA",
            IdKind::User => "AIDA",
            IdKind::Group => "AGPA",
            IdKind::Provider => "AOPA",
        }
    }
}

/// A new IAM-style unique id: the kind's prefix and 17 upper-case base32 characters.
pub fn new_unique_id(kind: IdKind, rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::with_capacity(21);
    id.push_str(kind.prefix());
    for _ in 0..17 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

/// Characters IAM allows in user, role, group and policy names: `[\w+=,.@-]`.
pub(crate) fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

pub(crate) struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.escape_debug())
    }
}
