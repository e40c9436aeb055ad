//! `maildrift demo`: its embedded zones and config run, and the scripted drift turns
//! `maildrift_drift{check="mx"}` to 1.

use crate::harness::{metric, request, wait_until};
use maildrift::demo::{self, DemoSettings};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn demo_drifts_the_mx_and_reports_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let settings = DemoSettings {
        duration: Some(Duration::from_secs(60)),
        drift_after: Duration::from_secs(3),
        interval: Duration::from_secs(1),
    };
    let demo = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let mut out = Vec::new();
            demo::run(settings, listener, shutdown, &mut out)
                .await
                .map(|()| out)
        }
    });
    let scrape = || async move { request(addr, "GET", "/metrics").await.body };
    let jade = [("domain", "jade-trading.example"), ("check", "mx")];
    let ready = wait_until(Duration::from_secs(10), || async {
        request(addr, "GET", "/-/ready").await.status == 200
    })
    .await;
    assert!(ready);
    let text = scrape().await;
    assert_eq!(metric(&text, "maildrift_domains", &[]), Some(3.0));
    assert_eq!(
        metric(&text, "maildrift_drift", &jade),
        Some(0.0),
        "no drift before the edit"
    );
    assert_eq!(
        metric(
            &text,
            "maildrift_spf_dns_lookups",
            &[("domain", "bulk-sender.example")]
        ),
        Some(13.0)
    );
    assert_eq!(
        metric(
            &text,
            "maildrift_findings",
            &[
                ("domain", "bulk-sender.example"),
                ("check", "spf"),
                ("severity", "critical")
            ]
        ),
        Some(1.0)
    );
    for domain in ["jade-trading.example", "calm-harbor.example"] {
        for check in ["mx", "spf"] {
            let labels = [("domain", domain), ("check", check)];
            assert_eq!(
                metric(&text, "maildrift_check_success", &labels),
                Some(1.0),
                "{domain} {check}"
            );
            assert_eq!(
                metric(
                    &text,
                    "maildrift_findings",
                    &[labels[0], labels[1], ("severity", "critical")]
                ),
                Some(0.0),
                "{domain} {check}"
            );
        }
    }
    let drifted = wait_until(Duration::from_secs(10), || async {
        metric(&scrape().await, "maildrift_drift", &jade) == Some(1.0)
    })
    .await;
    assert!(drifted, "the scripted edit shows as MX drift");
    shutdown.cancel();
    let out = tokio::time::timeout(Duration::from_secs(15), demo)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("http://{addr}/metrics")), "{out}");
    assert!(out.contains("edited jade-trading.example"), "{out}");
}

/// The embedded DNS server warns about every query outside its zones (hundreds of lines in
/// the first seconds): quiet by default, shown again when `--log.level` asks for them.
#[test]
fn demo_keeps_the_embedded_dns_server_quiet_unless_asked() {
    let hickory_lines = |extra: &[&str]| {
        let output = std::process::Command::new(crate::binary::BIN)
            .args([
                "demo",
                "--web.listen-address",
                "127.0.0.1:0",
                "--duration",
                "2s",
                "--interval",
                "500ms",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&output.stdout).contains("demo stopped"));
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|line| line.contains("hickory_server"))
            .count()
    };
    assert_eq!(hickory_lines(&[]), 0);
    assert!(hickory_lines(&["--log.level", "info,hickory_server=warn"]) > 0);
}
