//! Identity sources: where people sign in. `directory` is Rolegate's own users and
//! groups; the federated sources (OIDC, SAML) sit alongside it.

pub mod directory;
pub mod identity;
pub mod oidc;
pub mod saml;
pub mod totp;
