//! The shared-host rule: 1,000 domains whose MX is one provider host with two addresses
//! (IPv4 and IPv6 loopback) open one SMTP connection per host address per round, counted by
//! the test server; every domain gets the host's findings and the host's series.

use super::{check, codes, report};
use crate::harness::dns_server;
use crate::tls_servers::{Smtp, TestCa, smtp_server};
use maildrift::finding::CheckKind;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

const DOMAINS: usize = 1000;
const HOST: &str = "mx.bigmail.example";

/// The host's second address: IPv6 loopback when the machine has it, else 127.0.0.2.
fn second_address() -> IpAddr {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Err(_) => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_domains_on_one_mx_host_open_one_connection_per_address() {
    let ca = TestCa::new("maildrift test CA");
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let other = second_address();
    let server = smtp_server(&[v4, other], Smtp::StartTls(ca.leaf(&[HOST], 5))).await;
    let family = if other.is_ipv6() { "AAAA" } else { "A" };
    let provider = format!(
        "$ORIGIN bigmail.example.\n$TTL 300\n@ SOA ns1.bigmail.example. h.bigmail.example. 1 3600 600 86400 60\n@ NS ns1.bigmail.example.\nns1 A 192.0.2.1\nmx A 127.0.0.1\nmx {family} {other}\n"
    );
    let mut customers = String::from(
        "$ORIGIN customers.example.\n$TTL 300\n@ SOA ns1.customers.example. h.customers.example. 1 3600 600 86400 60\n@ NS ns1.customers.example.\nns1 A 192.0.2.53\n",
    );
    let mut yaml = String::new();
    for i in 0..DOMAINS {
        let _ = writeln!(customers, "d{i:04} MX 10 {HOST}.");
    }
    let dns = dns_server(&[&provider, &customers]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let _ = write!(
        yaml,
        "defaults:\n  timeout: 60s\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  smtp: {{ port: {port}, timeout: 5s, ca_file: \"{ca}\" }}\ndomains:\n",
        dns = dns.addr(),
        port = server.port,
        ca = ca_file.display()
    );
    for i in 0..DOMAINS {
        let _ = writeln!(yaml, "  - name: d{i:04}.customers.example");
    }
    let started = Instant::now();
    let reports = check(&yaml).await;
    eprintln!(
        "{DOMAINS} domains checked in {:?}; SMTP connections: {v4}: {}, {other}: {}",
        started.elapsed(),
        server.connections(v4),
        server.connections(other)
    );
    assert_eq!(reports.len(), DOMAINS);
    for domain in &reports {
        let smtp = report(domain, CheckKind::SmtpTls);
        assert!(smtp.success, "{}: {:?}", domain.domain, smtp.error);
        assert_eq!(
            codes(smtp),
            ["mx_tls_cert_expiring:critical"],
            "{}: every domain gets the host's finding",
            domain.domain
        );
        let hosts: Vec<&str> = smtp.shared.iter().map(|s| s.object.as_str()).collect();
        assert_eq!(hosts, ["", "", HOST, HOST], "the host's two series");
        assert_eq!(
            smtp.records[0].values.len(),
            2,
            "both addresses: {:?}",
            smtp.records
        );
    }
    assert_eq!(server.connections(v4), 1, "one connection to {v4}");
    assert_eq!(server.connections(other), 1, "one connection to {other}");
}
