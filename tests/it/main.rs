//! One integration-test binary (each file under tests/ would be a slow separate link).

mod authorize;
mod cache;
mod cli;
mod config;
mod directory;
mod helpers;
mod iam;
mod policy;
mod portal;
mod sigv4;
mod store;
mod sts_api;
mod web;
mod web_identity;
