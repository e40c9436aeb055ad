//! maildrift watches the mail DNS (MX, SPF, ...) of many domains, straight at their
//! authoritative nameservers and through resolvers, and reports drift.

pub mod checks;
pub mod config;
pub mod dns;
pub mod drift;
pub mod finding;
