//! maildrift watches the mail DNS (MX, SPF, ...) of many domains, straight at their
//! authoritative nameservers and through resolvers, and reports drift.
//!
//! The public modules are the entry points ([`app`] the daemon, [`demo`], [`cli`]) and the
//! library a test or a tool builds on ([`config`], [`checks`], [`dns`], [`finding`],
//! [`alert`]'s payloads); the rest is private, with what tests and benchmarks need
//! re-exported here. `ARCHITECTURE.md` maps the modules.

pub mod alert;
pub mod app;
pub mod checks;
pub mod cli;
pub mod config;
pub mod demo;
pub mod dns;
pub mod finding;
pub mod kind_map;

mod http;
mod i18n;
mod metrics;
mod monitor;
mod notify;
mod report;
mod scheduler;
mod state;
mod views;

pub use http::web_config::WebConfig;
pub use report::run_once;
/// A throwaway PostgreSQL server for the tests of fleet mode (testkit only).
#[cfg(any(test, feature = "testkit"))]
pub use state::pg_server;
