//! Rolegate: a self-hosted federated identity broker with its own AWS-compatible STS.
//!
//! A request flows handler (`web`) → service (`service`) → pure cores (`policy`,
//! `sts`, `mapping`, `iam`), with `store` and `cache` behind the services; `idp` are
//! the identity sources, `clock` the one clock and random source, `app` the wiring.

pub mod app;
pub mod bootstrap;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod fuzzing;
pub mod iam;
pub mod iam_document;
pub mod idp;
pub mod mapping;
pub mod metrics;
pub mod policy;
pub mod secrets;
pub mod seed;
pub mod service;
pub mod store;
pub mod sts;
pub mod web;
