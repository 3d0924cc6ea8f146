//! One integration-test binary (each file under tests/ would be a slow separate link).

// Tests and benchmarks may panic on what they did not expect; server code may not.
// They also keep real time with the real peers they drive (the AWS CLI, Chromium, the
// OIDC provider); the server under test reads only its injected clock.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

mod admin;
mod admin_client;
mod admin_directory;
mod admin_iam;
mod admin_ui;
mod admin_ui_browser;
mod admin_ui_iam;
mod admin_ui_people;
mod admin_ui_policies;
mod audit;
mod authorize;
mod browser;
mod cache;
mod cli;
mod cli_login;
mod config;
mod db_faults;
mod device_browser;
mod directory;
mod faults;
mod federation;
mod hardening;
mod helpers;
mod iam;
mod iam_cache;
mod mapping_api;
mod metrics;
mod nginx;
mod oidc_login;
mod oidc_peer;
mod policy;
mod portal;
mod proxy;
mod rules_cli;
mod rulesets;
mod saml_attacks;
mod saml_login;
mod saml_peer;
mod session_tags;
mod sigv4;
mod sso;
mod store;
mod sts_api;
mod sts_saml;
mod totp;
mod web;
mod web_client;
mod web_identity;
