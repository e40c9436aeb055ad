//! MTA-STS through a real HTTPS server: a local server with a certificate from a test CA
//! passed in the config; the domain's MX moves while the policy does not.

use super::run_check;
use crate::harness::{Daemon, dns_server};
use crate::tls_servers::{Route, TestCa, https_server};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The policy at its well-known path, 404 elsewhere.
fn policy_route(path: &str) -> Route {
    match path {
        "/.well-known/mta-sts.txt" => (200, "text/plain", Vec::new(), POLICY.into()),
        _ => (404, "text/plain", Vec::new(), Vec::new()),
    }
}

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx1.provider.example\nmax_age: 86400\n";

fn sts_zone(mx: &str, dmarc: &str) -> String {
    format!(
        r#"
$ORIGIN shop.example.
$TTL 120
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 {mx}
@        TXT "v=spf1 include:spf.provider.example -all"
_dmarc   TXT "{dmarc}"
_mta-sts TXT "v=STSv1; id=20250101"
mta-sts  A   127.0.0.1
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@shop.example"
"#
    )
}

const PROVIDER_WITH_MX2: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx1      A   192.0.2.11
mx2      A   192.0.2.12
spf      TXT "v=spf1 ip4:192.0.2.0/24 -all"
"#;

fn sts_config(dns: SocketAddr, https: SocketAddr, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map_or(String::new(), |p| format!("ca_file: \"{}\", ", p.display()));
    format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  mta_sts: {{ {ca}port: {port}, timeout: 1s }}
domains:
  - name: shop.example
"#,
        port = https.port()
    )
}

const STS_CRITICAL: [(&str, &str); 3] = [
    ("domain", "shop.example"),
    ("check", "mta_sts"),
    ("severity", "critical"),
];

#[tokio::test(flavor = "multi_thread")]
async fn mx_moving_while_the_mta_sts_policy_stays_is_a_mismatch() {
    let ca = TestCa::new("maildrift test CA");
    let https = https_server(&ca.leaf(&["mta-sts.shop.example"], 90), policy_route).await;
    let dns = dns_server(&[
        PROVIDER_WITH_MX2,
        &sts_zone("mx1.provider.example.", "v=DMARC1; p=reject"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let daemon = Daemon::start(&sts_config(dns.addr(), https.addr, Some(&ca_file))).await;
    daemon.wait_ready(Duration::from_secs(10)).await;

    let success = [("domain", "shop.example"), ("check", "mta_sts")];
    assert_eq!(
        daemon.metric("maildrift_check_success", &success).await,
        Some(1.0)
    );
    assert_eq!(
        daemon.metric("maildrift_findings", &STS_CRITICAL).await,
        Some(0.0)
    );
    assert!(
        https.requests.load(Ordering::SeqCst) >= 1,
        "policy fetched over HTTPS"
    );
    let api = daemon.get("/api/v1/domains/shop.example").await.body;
    assert!(!api.contains("mta_sts_"), "no MTA-STS finding yet: {api}");
    let reject = [("domain", "shop.example"), ("policy", "reject")];
    assert_eq!(
        daemon.metric("maildrift_dmarc_policy_info", &reject).await,
        Some(1.0)
    );

    // The MX moves to mx2, the policy still lists only mx1; DMARC drops to p=none.
    dns.set_zone(&sts_zone("mx2.provider.example.", "v=DMARC1; p=none"))
        .unwrap();
    daemon
        .wait_metric(
            "maildrift_findings",
            &STS_CRITICAL,
            1.0,
            Duration::from_secs(10),
        )
        .await;
    let api = daemon.get("/api/v1/domains/shop.example").await.body;
    assert!(api.contains("mta_sts_mx_mismatch"), "{api}");
    assert!(
        api.contains("MX host mx2.provider.example of shop.example matches no mx: pattern"),
        "{api}"
    );
    assert!(
        api.contains("dmarc_policy_weakened"),
        "weakened against the learned p=reject: {api}"
    );
    let none = [("domain", "shop.example"), ("policy", "none")];
    assert_eq!(
        daemon.metric("maildrift_dmarc_policy_info", &none).await,
        Some(1.0)
    );

    // Back to mx1: the mismatch clears.
    dns.set_zone(&sts_zone("mx1.provider.example.", "v=DMARC1; p=reject"))
        .unwrap();
    daemon
        .wait_metric(
            "maildrift_findings",
            &STS_CRITICAL,
            0.0,
            Duration::from_secs(10),
        )
        .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_policy_from_an_untrusted_ca_is_unreachable() {
    let ca = TestCa::new("maildrift test CA");
    let https = https_server(&ca.leaf(&["mta-sts.shop.example"], 90), policy_route).await;
    let dns = dns_server(&[
        PROVIDER_WITH_MX2,
        &sts_zone("mx1.provider.example.", "v=DMARC1; p=reject"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("check.yml");
    std::fs::write(&config, sts_config(dns.addr(), https.addr, None)).unwrap();
    let config = config.display().to_string();
    let (code, stdout, stderr) =
        run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(0), "warnings only:\n{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let finding = &json["domains"][0]["checks"]["mta_sts"]["findings"][0];
    assert_eq!(finding["code"], "mta_sts_policy_unreachable", "{stdout}");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains("TLS with mta-sts.shop.example failed"),
        "{message}"
    );
    assert_eq!(https.requests.load(Ordering::SeqCst), 0);
}
