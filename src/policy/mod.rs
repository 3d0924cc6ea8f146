//! The IAM JSON policy language: parsing and validation with IAM's error
//! messages, compilation, and AWS-compatible evaluation.
//!
//! Pure: no I/O, no clock, no randomness. Everything a decision depends on
//! (the caller, the action, the resource ARN and the request context keys such
//! as `aws:username`, `aws:PrincipalTag/team`, `aws:SourceIp`,
//! `aws:CurrentTime`) is supplied by the caller.
//!
//! ```
//! use rolegate::policy::*;
//!
//! let policy = Policy::parse(
//!     r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
//!         "Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}]}"#,
//!     ParseOptions::new(PolicyKind::Identity),
//! ).unwrap();
//! let ctx = ContextKeys::new().with("aws:username", "alice");
//! let identity = [&policy];
//! let set = PolicySet { identity: &identity, ..Default::default() };
//! let request = Request {
//!     principal: PrincipalRef::Aws { arn: "arn:aws:iam::111122223333:user/alice", account: "111122223333" },
//!     action: "s3:GetObject",
//!     resource: "arn:aws:s3:::home/alice/notes.txt",
//!     context: &ctx,
//! };
//! assert_eq!(evaluate(&set, &request).decision, Decision::Allowed);
//! ```

mod action;
mod condition;
mod context;
mod document;
mod error;
mod eval;
mod lint;
mod locate;
pub mod matcher;
mod principal;
mod resource;
mod variables;

pub use condition::parse_date;
pub use context::ContextKeys;
pub use document::{
    CUSTOMER_POLICY_SIZE_LIMIT, Effect, MAX_SUPPLIED_RESOURCE_POLICY, ParseOptions, Policy,
    PolicyKind, PolicyVersion, Statement, UnknownPolicyKind, parse_supplied_resource_policy,
};
pub use error::{LIMIT_EXCEEDED, Location, MALFORMED_POLICY_DOCUMENT, PolicyError};
pub use eval::{
    DecidingStatement, Decision, Evaluation, ImplicitDenyReason, PolicySet, PolicySource,
    PrincipalRef, Request, ResourcePolicy, evaluate, foreign_resource_owner,
};
pub use lint::{Warning, warnings};
pub use matcher::{ArnPattern, wildcard_match, wildcard_match_ignore_case};
