//! maildrift watches the mail DNS (MX, SPF, ...) of many domains, straight at their
//! authoritative nameservers and through resolvers, and reports drift.

pub mod alert;
pub mod app;
pub mod checks;
pub mod cli;
pub mod config;
pub mod demo;
pub mod dns;
pub mod drift;
pub mod engine;
pub mod finding;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod report;
pub mod scheduler;
pub mod state;
pub mod views;
