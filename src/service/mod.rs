//! The flows that hold state, between the handlers (which translate HTTP) and the
//! pure cores (which decide): each service takes its dependencies explicitly (store,
//! cache, sealer, clock, random source), keeps its own cache keys, and has its own
//! error enum that the handlers map onto their surface's wire format.

pub mod admin_access;
pub mod audit;
pub mod audit_spool;
pub mod console;
pub mod device;
pub mod entitlements;
pub mod issuance;
pub mod jwks;
pub mod readiness;
pub mod rulesets;
pub mod saml_login;
pub mod sealing;
pub mod second_factor;
pub mod sessions;
pub mod sign_in_settings;
pub mod sign_in_test;
