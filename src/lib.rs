//! Rolegate: a self-hosted federated identity broker with its own AWS-compatible STS.
//!
//! The pure cores (`policy`, `iam`) do no I/O; `store` persists the IAM model;
//! `web` translates HTTP to calls into the cores and back; `app` wires it all up.

pub mod app;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod iam;
pub mod idp;
pub mod mapping;
pub mod policy;
pub mod secrets;
pub mod seed;
pub mod service;
pub mod store;
pub mod sts;
pub mod web;
