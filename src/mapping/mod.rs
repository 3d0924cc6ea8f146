//! Who gets which role: the rule engine, pure (no I/O, no clock of its own: the
//! evaluation time is an argument). The entitlement service
//! ([`crate::service::entitlements`]) feeds it the published ruleset, the catalog
//! of accounts and roles and an identity's claims; every place that lists or checks
//! a person's roles asks that service.
//!
//! [`rules`] (the JSON wire and export format), [`compile`] (checks with JSON
//! pointers, compiles once per ruleset version, `content_hash`,
//! `check_references`), [`claims`] (per-source claims hygiene), [`catalog`] (the
//! accounts and roles grants resolve against) and [`evaluate`] (entitlements with
//! their explanation: who granted, what was removed, warnings, near misses).

pub mod catalog;
pub mod claims;
pub mod compile;
pub mod evaluate;
pub mod rules;
mod template;

pub use catalog::{Catalog, CatalogRole};
pub use claims::{ClaimsError, ClaimsHygiene, SourceClaims};
pub use compile::{CompiledRuleset, RuleError, check_references, content_hash};
pub use evaluate::{
    ConditionReport, Entitlement, Evaluation, GrantedBy, NotApplied, Removed, SessionSettings,
    Warning,
};
pub use rules::{
    Case, Condition, Effect, ForEach, GrantTemplate, Leaf, Op, Rule, Selector, SessionTemplate,
    Sources, Target, Validity,
};
