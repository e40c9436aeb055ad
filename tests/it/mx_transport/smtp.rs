//! `smtp_tls` against an SMTP server on loopback: valid, expired, expiring in 3 days, wrong
//! name, untrusted CA, no STARTTLS, TLS below 1.2, connection refused, a server that never
//! sends its banner; and `maildrift check` showing the three new checks.

use super::{check, codes, customer_zone, provider_zone, report};
use crate::analysis::run_check;
use crate::harness::dns_server;
use crate::tls_servers::{Smtp, TestCa, smtp_server};
use maildrift::finding::CheckKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

const HOST: &str = "mx1.provider.example";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn config(dns: SocketAddr, port: u16, ca_file: &Path) -> String {
    format!(
        r#"
defaults:
  timeout: 8s
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  smtp: {{ port: {port}, timeout: 1s, ca_file: "{ca}" }}
domains:
  - name: shop.example
"#,
        ca = ca_file.display()
    )
}

/// What one case must give: success, findings, and a text the record or error contains.
struct Want {
    success: bool,
    findings: &'static [&'static str],
    says: &'static str,
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_responder_cases() {
    let dns = dns_server(&[&provider_zone(""), &customer_zone("shop.example", "")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("maildrift test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let rogue = TestCa::new("rogue CA");
    // A port nothing listens on: bound, read, released.
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases: Vec<(&str, Option<Smtp>, Want)> = vec![
        (
            "valid",
            Some(Smtp::StartTls(ca.leaf(&[HOST], 90))),
            Want {
                success: true,
                findings: &[],
                says: "mx1.provider.example [127.0.0.1]",
            },
        ),
        (
            "expired",
            Some(Smtp::StartTls(ca.leaf(&[HOST], -2))),
            Want {
                success: true,
                findings: &["mx_tls_cert_expired:critical"],
                says: "expired 2 days ago",
            },
        ),
        (
            "expiring in 3 days",
            Some(Smtp::StartTls(ca.leaf(&[HOST], 3))),
            Want {
                success: true,
                findings: &["mx_tls_cert_expiring:critical"],
                says: "expires in 3 days",
            },
        ),
        (
            "wrong name",
            Some(Smtp::StartTls(ca.leaf(&["mail.other.example"], 90))),
            Want {
                success: true,
                findings: &["mx_tls_name_mismatch:warning"],
                says: "names mail.other.example but not mx1.provider.example",
            },
        ),
        (
            "untrusted CA",
            Some(Smtp::StartTls(rogue.leaf(&[HOST], 90))),
            Want {
                success: true,
                findings: &["mx_tls_cert_untrusted:warning"],
                says: "does not lead to a trusted root",
            },
        ),
        (
            "no STARTTLS offered",
            Some(Smtp::NoStartTls),
            Want {
                success: true,
                findings: &["mx_starttls_missing:warning"],
                says: "STARTTLS is not among the EHLO capabilities",
            },
        ),
        (
            "TLS below 1.2 only",
            Some(Smtp::OldTls),
            Want {
                success: true,
                findings: &["mx_tls_old_version:warning"],
                says: "speaks only TLS versions below 1.2",
            },
        ),
        (
            "connection refused",
            None,
            Want {
                success: false,
                findings: &[],
                says: "unreachable at connect",
            },
        ),
        (
            "never answers the banner",
            Some(Smtp::Silent),
            Want {
                success: false,
                findings: &[],
                says: "unreachable at banner (no answer within 1 s)",
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, behaviour, want) in cases {
        let server = match behaviour {
            Some(behaviour) => Some(smtp_server(&[LOOPBACK], behaviour).await),
            None => None,
        };
        let port = server.as_ref().map_or(refused, |s| s.port);
        let started = Instant::now();
        let reports = check(&config(dns.addr(), port, &ca_file)).await;
        let took = started.elapsed();
        let smtp = report(&reports[0], CheckKind::SmtpTls);
        let got = codes(smtp);
        let text = format!(
            "{:?} {} {}",
            smtp.records,
            smtp.error.as_deref().unwrap_or(""),
            smtp.findings
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        if smtp.success != want.success || got != want.findings || !text.contains(want.says) {
            failures.push(format!(
                "{name}: success {}, findings {got:?}, want {} {:?} saying {:?}:\n  {text}",
                smtp.success, want.success, want.findings, want.says
            ));
        }
        if let Some(server) = &server {
            // One dialogue per address, bounded by the step timeout (1 s) when silent.
            if server.total() != 1 {
                failures.push(format!("{name}: {} connections, want 1", server.total()));
            }
        }
        if took > Duration::from_secs(5) {
            failures.push(format!("{name}: took {took:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_shows_the_three_checks() {
    let ca = TestCa::new("maildrift test CA");
    let server = smtp_server(&[LOOPBACK], Smtp::StartTls(ca.leaf(&[HOST], 90))).await;
    let dns = dns_server(&[&provider_zone(""), &customer_zone("shop.example", "")]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let path = dir.path().join("check.yml");
    std::fs::write(&path, config(dns.addr(), server.port, &ca_file)).unwrap();
    let path = path.display().to_string();
    let (code, stdout, stderr) = run_check(&["check", "--config", &path, "--format", "json"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let checks = &json["domains"][0]["checks"];
    for name in ["smtp_tls", "dane", "bimi"] {
        assert_eq!(checks[name]["success"], true, "{name}: {stdout}");
    }
    let record = checks["smtp_tls"]["records"][0]["values"][0]
        .as_str()
        .unwrap();
    assert!(
        record.starts_with("mx1.provider.example [127.0.0.1]:")
            && record.contains("TLSv1.3")
            && record.contains("issuer CN=maildrift test CA"),
        "{record}"
    );
    let (_, text, _) = run_check(&["check", "--config", &path]).await;
    for name in ["smtp_tls", "dane", "bimi"] {
        assert!(text.contains(&format!("  {name}")), "{name} in:\n{text}");
    }
}
