//! An in-process authoritative DNS server (hickory-server) on loopback, for `maildrift demo`
//! and integration tests: zones from zone-file text, editable while it runs.

use std::net::{IpAddr, SocketAddr};

/// How the server behaves; tests switch it to simulate failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    /// Answer from the zones.
    Normal,
    /// Answer every query with SERVFAIL.
    ServFail,
    /// Read queries and never answer (timeouts).
    Silent,
}

/// A running server; stops when dropped.
pub struct LocalDnsServer {}

impl LocalDnsServer {
    /// Binds UDP and TCP on `ip` port 0 and serves the zones (each a zone-file text with
    /// `$ORIGIN` and an SOA record).
    pub async fn start(ip: IpAddr, zones: &[&str]) -> std::io::Result<LocalDnsServer> {
        let _ = (ip, zones);
        todo!()
    }

    /// The bound address (same port for UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        todo!()
    }

    /// Replaces (or adds) the zone given by the text's `$ORIGIN`.
    pub fn set_zone(&self, zone_text: &str) -> Result<(), String> {
        let _ = zone_text;
        todo!()
    }

    /// Switches failure simulation.
    pub fn set_mode(&self, mode: ServerMode) {
        let _ = mode;
        todo!()
    }

    /// Queries received so far.
    pub fn query_count(&self) -> u64 {
        todo!()
    }
}
