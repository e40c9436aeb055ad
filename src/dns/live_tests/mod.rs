//! Tests against a real [`LocalDnsServer`](super::server::LocalDnsServer) on 127.0.0.1.

mod direct;
mod lookups;
mod odd_data;

use super::QueryMetrics;
use super::direct::{DirectClient, DirectOptions};
use super::server::LocalDnsServer;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

/// Loopback only.
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The main test zone: negative TTL = min(SOA TTL 300, MINIMUM 120) = 120.
fn example_zone() -> String {
    let mut zone = String::from(
        "$ORIGIN example.test.
$TTL 300
@       IN SOA ns1.example.test. hostmaster.example.test. 2024010101 3600 600 86400 120
@       IN NS  ns1.example.test.
ns1     IN A   127.0.0.1
@       IN MX  10 mx1.example.test.
@       IN MX  20 MX2.Example.Test.
@       IN TXT \"v=spf1 include:_spf.provider.test\" \" -all\"
mx1     IN A   192.0.2.10
www     IN CNAME alias.example.test.
alias   IN CNAME target.example.test.
target  60 IN A 192.0.2.20
",
    );
    // Eight 200-octet strings: about 1.7 kB, more than the 1232-byte EDNS payload.
    for i in 0..8 {
        let text: String = std::iter::repeat_n(char::from(b'a' + i), 200).collect();
        zone.push_str(&format!("big     IN TXT \"{text}\"\n"));
    }
    zone
}

/// A server with [`example_zone`].
async fn example_server() -> LocalDnsServer {
    LocalDnsServer::start(LOCALHOST, &[&example_zone()])
        .await
        .expect("local server starts")
}

/// A direct client with a short timeout, and its metrics.
async fn direct_client(timeout_ms: u64) -> (Arc<DirectClient>, QueryMetrics) {
    let metrics = QueryMetrics::unregistered();
    let options = DirectOptions {
        timeout: Duration::from_millis(timeout_ms),
        attempts: 2,
        ..DirectOptions::default()
    };
    let client = DirectClient::new(options, metrics.clone()).await.unwrap();
    (client, metrics)
}
