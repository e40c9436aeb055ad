//! Complete mail-DNS analysis against real servers: `maildrift check` (the binary, JSON and
//! text, exit codes) over an in-process authoritative server; MTA-STS with a local HTTPS
//! server whose certificate comes from a test CA (and DMARC weakening seen by the daemon);
//! DNSSEC against signed zones.

mod check_concurrency;
pub mod dnssec;
mod mta_sts;

use crate::harness::{dns_server, finding_codes};
use std::net::SocketAddr;

pub(super) const BIN: &str = env!("CARGO_BIN_EXE_maildrift");

/// A 2048-bit RSA public key (SubjectPublicKeyInfo, base64), split in two TXT strings.
const DKIM_KEY: (&str, &str) = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyFQjM/UdIJH0OL42tn+514xqlKZKORYbcKfyBw1AgJyLlljmmEd3uZsxBXZqli9UytZj7Yz4Ev3DUaRXQSvsDzX3m5x+JXgvrzccv21b/e6aA//Vv3vgcEqur6dD4gEFtXwSL6iSbjSI4fbAnZCTSaYmy4e2",
    "uUSflcpdEAS8kiijOBiQ9wEldCJ2nOxeOKRxHu2UOR15Zu+siPFB0QjlIDiLi9BtrJuxPIP6oiRAqvcVj35ay6mWyAkdv5+nWsl5zqnWW+ukveCwYyJOgwSK3/0afwt6CUv/4kteKnVyTS6LXm7gDlLZaHIoKQQlsXOpNPhtfBqPVNQY4d9iq9fjTQIDAQAB",
);

const PROVIDER_ZONE: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx1      A   192.0.2.11
spf      TXT "v=spf1 ip4:192.0.2.0/24 -all"
"#;

/// A DMARC report vendor that has not authorised shop.example's reports.
const VENDOR_ZONE: &str = r#"
$ORIGIN vendor.example.
$TTL 300
@        SOA ns1.vendor.example. hostmaster.vendor.example. 1 3600 600 86400 60
@        NS  ns1.vendor.example.
ns1      A   192.0.2.2
other.example._report._dmarc.reports TXT "v=DMARC1"
"#;

fn shop_zone(dmarc: &str) -> String {
    let (k1, k2) = DKIM_KEY;
    format!(
        r#"
$ORIGIN shop.example.
$TTL 120
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 mx1.provider.example.
@        TXT "v=spf1 include:spf.provider.example -all"
_dmarc   TXT "{dmarc}"
s1._domainkey TXT "v=DKIM1; k=rsa; " "p={k1}" "{k2}"
"#
    )
}

fn check_config(dns: SocketAddr, authorizes: &str) -> String {
    format!(
        r#"
defaults:
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  timeout: 5s
domains:
  - name: shop.example
    expect:
      mx: [mx1.provider.example]
      spf: {{ includes: [spf.provider.example], all: "-all", authorizes: [{authorizes}] }}
      dmarc: {{ policy: reject }}
      dkim: {{ selectors: [s1] }}
"#
    )
}

pub async fn run_check(args: &[&str]) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_reports_json_and_text_with_spec_exit_codes() {
    let healthy = shop_zone("v=DMARC1; p=reject; rua=mailto:dmarc@shop.example");
    let dns = dns_server(&[PROVIDER_ZONE, VENDOR_ZONE, &healthy]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("check.yml");
    std::fs::write(&config, check_config(dns.addr(), "192.0.2.77")).unwrap();
    let config = config.display().to_string();

    let (code, stdout, stderr) =
        run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let domain = &json["domains"][0];
    assert_eq!(domain["domain"], "shop.example");
    for check in ["mx", "spf", "dkim", "dmarc"] {
        let report = &domain["checks"][check];
        assert_eq!(report["success"], true, "{check}: {report}");
        assert_eq!(
            report["findings"],
            serde_json::json!([]),
            "{check}: {report}"
        );
    }
    assert_eq!(domain["metrics"]["dkim_key_bits"]["s1"], 2048);
    assert_eq!(domain["metrics"]["dmarc_policy"], "reject");
    assert_eq!(domain["metrics"]["spf_dns_lookups"], 1);

    // Weakened DMARC with an unauthorised report destination, and a sender outside SPF.
    dns.set_zone(&shop_zone(
        "v=DMARC1; p=quarantine; pct=50; rua=mailto:d@reports.vendor.example",
    ))
    .unwrap();
    std::fs::write(
        &config,
        check_config(dns.addr(), "192.0.2.77, 198.51.100.9"),
    )
    .unwrap();
    let (code, stdout, stderr) =
        run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(
        code,
        Some(1),
        "critical findings exit 1:\n{stdout}\n{stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let codes = |check: &str| finding_codes(&json["domains"][0]["checks"][check]);
    assert_eq!(
        codes("dmarc"),
        [
            "dmarc_external_report_unauthorized:warning",
            "dmarc_pct_partial:warning",
            "dmarc_policy_weakened:warning",
            "drift:critical"
        ],
        "{stdout}"
    );
    assert_eq!(codes("spf"), ["spf_not_authorized:critical"]);
    let finding = &json["domains"][0]["checks"]["spf"]["findings"][0];
    assert_eq!(finding["evidence"]["ip"], "198.51.100.9");
    assert_eq!(finding["evidence"]["result"], "fail");

    // Text: grouped by domain and check, no colour codes when stdout is not a terminal.
    let (code, stdout, _) = run_check(&["check", "--config", &config]).await;
    assert_eq!(code, Some(1));
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(stdout.starts_with("shop.example\n"), "{stdout}");
    assert!(stdout.contains("  dmarc       FAIL"), "{stdout}");
    assert!(stdout.contains("critical spf_not_authorized: SPF of shop.example gives fail for sending IP 198.51.100.9"), "{stdout}");

    // DNS that does not answer: exit 2.
    dns.set_mode(maildrift::dns::server::ServerMode::ServFail);
    let (code, stdout, _) = run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(2), "{stdout}");

    // Usage error: exit 2.
    let (code, _, stderr) = run_check(&["check"]).await;
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_takes_domains_and_servers_from_flags() {
    let zone = shop_zone("v=DMARC1; p=none");
    let dns = dns_server(&[PROVIDER_ZONE, &zone]).await;
    let server = dns.addr().to_string();
    let (code, stdout, stderr) = run_check(&[
        "check",
        "--resolver",
        &server,
        "--nameserver",
        &server,
        "--format",
        "json",
        "shop.example",
    ])
    .await;
    // p=none without expectation is a warning: exit 0.
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let dmarc = &json["domains"][0]["checks"]["dmarc"];
    assert_eq!(dmarc["findings"][0]["code"], "dmarc_policy_none", "{dmarc}");
    assert_eq!(dmarc["records"][0]["values"][0], "v=DMARC1; p=none");
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_reports_a_provider_ipset_change_once_as_info() {
    let dns = dns_server(&[PROVIDER_ZONE, &shop_zone("v=DMARC1; p=reject")]).await;
    let config = format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
domains:
  - name: shop.example
    expect: {{ spf: {{ includes: [spf.provider.example], all: "-all" }} }}
"#,
        dns = dns.addr()
    );
    let daemon = crate::harness::Daemon::start(&config).await;
    daemon.wait_ready(std::time::Duration::from_secs(10)).await;
    let labels = [("domain", "shop.example")];
    let before = daemon
        .metric("maildrift_spf_ipset_fingerprint", &labels)
        .await
        .unwrap();
    assert!(before > 0.0);

    // The provider adds a network to its include; the domain's own record is unchanged.
    dns.set_zone(&PROVIDER_ZONE.replace(
        "ip4:192.0.2.0/24 -all",
        "ip4:192.0.2.0/24 ip4:198.51.100.0/25 -all",
    ))
    .unwrap();
    let event = std::sync::Mutex::new(None);
    let seen = crate::harness::wait_until(std::time::Duration::from_secs(10), || async {
        let body = daemon.get("/api/v1/domains/shop.example").await.body;
        let found = body.contains("spf_ipset_changed");
        if found {
            *event.lock().unwrap() = Some(body);
        }
        found
    })
    .await;
    assert!(seen, "no spf_ipset_changed event");
    let body = event.into_inner().unwrap().unwrap();
    assert!(
        body.contains("198.51.100.0/25"),
        "the added network is named: {body}"
    );
    let after = daemon
        .metric("maildrift_spf_ipset_fingerprint", &labels)
        .await
        .unwrap();
    assert_ne!(before, after);
    let drift = [("domain", "shop.example"), ("check", "spf")];
    assert_eq!(daemon.metric("maildrift_drift", &drift).await, Some(0.0));
    assert_eq!(
        daemon
            .metric(
                "maildrift_findings",
                &[
                    ("domain", "shop.example"),
                    ("check", "spf"),
                    ("severity", "critical")
                ]
            )
            .await,
        Some(0.0)
    );
    // An event, not a state: the next run no longer reports it.
    let gone = crate::harness::wait_until(std::time::Duration::from_secs(10), || async {
        !daemon
            .get("/api/v1/domains/shop.example")
            .await
            .body
            .contains("spf_ipset_changed")
    })
    .await;
    assert!(gone);
    daemon.stop().await;
}
