//! The STS core: credentials, stateless session tokens, SigV4 verification and
//! assume-role decisions. Pure: time, keys and randomness are passed in; the store,
//! the cache and the identity providers' keys are the issuance service's
//! ([`crate::service::issuance`]).

pub mod action;
pub mod assume;
pub mod credentials;
pub mod error;
pub mod policies;
pub mod portal;
pub mod saml;
pub mod sigv4;
pub mod token;
pub mod web_identity;
