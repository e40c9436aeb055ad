//! The daemon with two domains on one MX host whose certificate expires in 3 days: the
//! host's series exported once, `MailMxCertificateExpiring` firing natively for each
//! domain, the API and the status page showing the new checks, the host asked again each
//! round (never served from an earlier round) but once per round for both domains.

use super::{customer_zone, provider_zone};
use crate::harness::{Daemon, dns_server};
use crate::tls_servers::{Smtp, TestCa, smtp_server};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn host_series_once_native_alert_and_one_dialogue_per_round() {
    let ca = TestCa::new("maildrift test CA");
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let server = smtp_server(
        &[loopback],
        Smtp::StartTls(ca.leaf(&["mx1.provider.example"], 3)),
    )
    .await;
    let dns = dns_server(&[
        &provider_zone(""),
        &customer_zone("shop.example", ""),
        &customer_zone("store.example", ""),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let daemon = Daemon::start(&format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  smtp: {{ port: {port}, timeout: 1s, ca_file: "{ca}" }}
domains:
  - name: shop.example
  - name: store.example
alerting:
  for: 0s
"#,
        dns = dns.addr(),
        port = server.port,
        ca = ca_file.display()
    ))
    .await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    daemon
        .wait_metric(
            "maildrift_alerts_firing",
            &[("alertname", "MailMxCertificateExpiring")],
            2.0,
            Duration::from_secs(10),
        )
        .await;
    let metrics = daemon.get("/metrics").await.body;
    let host = "{host=\"mx1.provider.example\"}";
    let not_after: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("maildrift_mx_tls_cert_not_after_timestamp_seconds{"))
        .collect();
    assert_eq!(not_after.len(), 1, "one series per host: {not_after:?}");
    assert!(not_after[0].starts_with(&format!(
        "maildrift_mx_tls_cert_not_after_timestamp_seconds{host} "
    )));
    let expiry: f64 = not_after[0].rsplit_once(' ').unwrap().1.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((expiry - now - 3.0 * 86_400.0).abs() < 3_600.0, "{expiry}");
    assert!(
        metrics.contains(&format!("maildrift_mx_starttls{host} 1\n")),
        "{metrics}"
    );
    for domain in ["shop.example", "store.example"] {
        let labels = [
            ("domain", domain),
            ("check", "smtp_tls"),
            ("severity", "critical"),
        ];
        assert_eq!(
            daemon.metric("maildrift_findings", &labels).await,
            Some(1.0)
        );
        for check in ["smtp_tls", "dane", "bimi"] {
            let labels = [("domain", domain), ("check", check)];
            assert_eq!(
                daemon.metric("maildrift_check_success", &labels).await,
                Some(1.0),
                "{domain} {check}"
            );
        }
    }
    let api = daemon.get("/api/v1/domains/shop.example").await.body;
    assert!(api.contains("mx_tls_cert_expiring"), "{api}");
    assert!(api.contains("expires in 3 days"), "{api}");
    let page = daemon.get("/").await.body;
    for check in ["smtp_tls", "dane", "bimi"] {
        assert!(page.contains(&format!(">{check}</th>")), "{check} column");
    }

    // Later rounds ask the host again, once per round for both domains: at most one
    // dialogue per two domain checks (plus the round under way).
    let domain_checks = || async {
        let mut total = 0.0;
        for outcome in ["success", "failure", "timeout"] {
            let labels = [("outcome", outcome)];
            total += daemon
                .metric("maildrift_domain_checks_total", &labels)
                .await
                .unwrap_or(0.0);
        }
        total
    };
    let again =
        crate::harness::wait_until(Duration::from_secs(15), || async { server.total() >= 3 }).await;
    let dialogues = server.total() as f64;
    let checks = domain_checks().await;
    assert!(
        again,
        "the host asked again in later rounds: {dialogues} dialogues"
    );
    assert!(
        dialogues <= checks / 2.0 + 1.0,
        "{dialogues} dialogues for {checks} domain checks: the host is asked once per round, not per domain"
    );

    // The certificate is renewed: the info event, the alert resolves.
    server.set(Smtp::StartTls(ca.leaf(&["mx1.provider.example"], 90)));
    let changed = crate::harness::wait_until(Duration::from_secs(10), || async {
        daemon
            .get("/api/v1/domains/shop.example")
            .await
            .body
            .contains("mx_tls_cert_changed")
    })
    .await;
    assert!(changed, "mx_tls_cert_changed reported");
    daemon
        .wait_metric(
            "maildrift_alerts_firing",
            &[("alertname", "MailMxCertificateExpiring")],
            0.0,
            Duration::from_secs(10),
        )
        .await;
    daemon.stop().await;
}
