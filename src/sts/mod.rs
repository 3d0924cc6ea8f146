//! The STS core: credentials, stateless session tokens, SigV4 verification and
//! assume-role decisions. Pure: time, keys and randomness are passed in.

pub mod action;
pub mod assume;
pub mod credentials;
pub mod error;
pub mod portal;
pub mod service;
pub mod sigv4;
pub mod token;
pub mod web_identity;
