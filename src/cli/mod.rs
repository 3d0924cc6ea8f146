//! The command-line side of Rolegate: offline tools that need no server.

pub mod policy;
