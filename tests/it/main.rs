//! Integration tests: the daemon against a real in-process authoritative DNS server, over
//! real HTTP; the binary for CLI behaviour. One test binary, small helpers (ripgrep style).

// Helpers are `pub` for the sibling modules of this test binary.
#![allow(unreachable_pub)]

mod alerting;
mod analysis;
mod architecture;
mod authoritative;
mod bad_configs;
mod binary;
mod browser;
mod cli;
mod daemon;
mod demo;
mod deploy;
mod dnsbl;
mod exporter;
mod faults;
mod generated;
mod harness;
mod hostile;
mod mx_transport;
mod progress;
mod prometheus;
mod registration;
mod scope;
mod security;
mod series;
mod spf;
mod state;
mod tls_servers;
mod web_config;
