//! The command-line side of Rolegate: offline policy tools, and the client of a
//! running Rolegate (`login`, `credentials`, `exec`) that speaks its AWS SSO APIs.

pub mod aws_config;
pub mod credentials;
pub mod login;
pub mod policy;
pub mod sso_cache;
pub mod sso_client;
