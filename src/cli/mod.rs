//! The command-line side of Rolegate: offline policy tools, and the client of a
//! running Rolegate (`login`, `credentials`, `exec`, `logout`) that speaks its AWS SSO
//! APIs.

pub mod aws_config;
pub mod credentials;
pub mod login;
pub mod logout;
pub mod policy;
pub mod rules;
pub mod sso_cache;
pub mod sso_client;
