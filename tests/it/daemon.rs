//! The daemon against a real authoritative server: drift appears within one interval after
//! a zone edit and clears when it is restored; DNS failures are "unknown", never drift.

use crate::harness::{Daemon, dns_server, request};
use maildrift::dns::server::ServerMode;
use std::net::SocketAddr;
use std::time::Duration;

const PROVIDER_ZONE: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx1      A   192.0.2.11
mx2      A   192.0.2.12
spf      TXT "v=spf1 ip4:192.0.2.0/24 -all"
"#;

fn acme_zone(mx: &str, spf: &str) -> String {
    format!(
        r#"
$ORIGIN acme.example.
$TTL 120
@        SOA ns1.acme.example. hostmaster.acme.example. 1 3600 600 86400 60
@        NS  ns1.acme.example.
ns1      A   192.0.2.53
@        MX  10 {mx}
@        TXT "{spf}"
"#
    )
}

const GOOD_SPF: &str = "v=spf1 include:spf.provider.example -all";

fn config(dns: SocketAddr, interval: &str, timeout: &str) -> String {
    format!(
        r#"
defaults:
  interval: {interval}
  timeout: {timeout}
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
domains:
  - name: acme.example
    expect:
      mx: [mx1.provider.example]
      spf: {{ includes: [spf.provider.example], all: "-all" }}
  - name: learned.example
"#
    )
}

fn learned_zone(mx: &str) -> String {
    format!(
        r#"
$ORIGIN learned.example.
$TTL 120
@        SOA ns1.learned.example. hostmaster.learned.example. 1 3600 600 86400 60
@        NS  ns1.learned.example.
ns1      A   192.0.2.54
@        MX  10 {mx}
@        TXT "v=spf1 ip4:192.0.2.99 -all"
"#
    )
}

const ACME_MX: [(&str, &str); 2] = [("domain", "acme.example"), ("check", "mx")];
const ACME_SPF: [(&str, &str); 2] = [("domain", "acme.example"), ("check", "spf")];
const LEARNED_MX: [(&str, &str); 2] = [("domain", "learned.example"), ("check", "mx")];

#[tokio::test]
async fn drift_appears_within_one_interval_and_clears_when_restored() {
    let good = acme_zone("mx1.provider.example.", GOOD_SPF);
    let learned = learned_zone("mx2.provider.example.");
    let dns = dns_server(&[PROVIDER_ZONE, &good, &learned]).await;
    let daemon = Daemon::start(&config(dns.addr(), "1s", "1s")).await;
    daemon.wait_ready(Duration::from_secs(10)).await;

    let metrics = daemon.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        metrics.headers
    );
    assert_eq!(daemon.metric("maildrift_domains", &[]).await, Some(2.0));
    assert_eq!(
        daemon.metric("maildrift_check_success", &ACME_MX).await,
        Some(1.0)
    );
    assert_eq!(
        daemon.metric("maildrift_check_success", &ACME_SPF).await,
        Some(1.0)
    );
    assert_eq!(daemon.metric("maildrift_drift", &ACME_MX).await, Some(0.0));
    assert_eq!(daemon.metric("maildrift_drift", &ACME_SPF).await, Some(0.0));
    assert_eq!(
        daemon
            .metric("maildrift_mx_records", &[("domain", "acme.example")])
            .await,
        Some(1.0)
    );
    assert_eq!(
        daemon
            .metric("maildrift_spf_dns_lookups", &[("domain", "acme.example")])
            .await,
        Some(1.0)
    );
    assert_eq!(
        daemon
            .metric(
                "maildrift_record_ttl_seconds",
                &[("domain", "acme.example"), ("record", "mx")]
            )
            .await,
        Some(120.0)
    );
    let fingerprint_before = daemon
        .metric(
            "maildrift_record_fingerprint",
            &[("domain", "acme.example"), ("record", "mx")],
        )
        .await
        .unwrap();
    assert!(
        daemon
            .metric("maildrift_dns_queries_total", &[("rcode", "noerror")])
            .await
            .unwrap()
            > 0.0
    );

    // Someone points the MX at the old provider and drops the SPF include.
    dns.set_zone(&acme_zone(
        "mx.old-provider.example.",
        "v=spf1 ip4:198.51.100.7 -all",
    ))
    .unwrap();
    dns.set_zone(&learned_zone("mx1.provider.example."))
        .unwrap();
    let took = daemon
        .wait_metric("maildrift_drift", &ACME_MX, 1.0, Duration::from_secs(5))
        .await;
    assert!(
        took <= Duration::from_millis(2500),
        "drift took {took:?} with a 1 s interval"
    );
    daemon
        .wait_metric("maildrift_drift", &ACME_SPF, 1.0, Duration::from_secs(3))
        .await;
    daemon
        .wait_metric("maildrift_drift", &LEARNED_MX, 1.0, Duration::from_secs(3))
        .await;
    let fingerprint_after = daemon
        .metric(
            "maildrift_record_fingerprint",
            &[("domain", "acme.example"), ("record", "mx")],
        )
        .await
        .unwrap();
    assert_ne!(fingerprint_before, fingerprint_after);

    let detail = daemon.get("/api/v1/domains/acme.example").await;
    assert_eq!(detail.status, 200);
    let json: serde_json::Value = serde_json::from_str(&detail.body).unwrap();
    let findings = json["checks"]["mx"]["findings"].as_array().unwrap();
    let drift = findings
        .iter()
        .find(|f| f["code"] == "drift")
        .expect("drift finding");
    assert_eq!(
        drift["evidence"]["from"],
        serde_json::json!(["mx1.provider.example"])
    );
    assert_eq!(
        drift["evidence"]["to"],
        serde_json::json!(["mx.old-provider.example"])
    );
    let learned_json: serde_json::Value =
        serde_json::from_str(&daemon.get("/api/v1/domains/learned.example").await.body).unwrap();
    let drift = learned_json["checks"]["mx"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "drift")
        .cloned()
        .expect("baseline drift");
    assert_eq!(
        drift["evidence"]["from"],
        serde_json::json!(["10 mx2.provider.example"])
    );

    dns.set_zone(&good).unwrap();
    dns.set_zone(&learned).unwrap();
    daemon
        .wait_metric("maildrift_drift", &ACME_MX, 0.0, Duration::from_secs(5))
        .await;
    daemon
        .wait_metric("maildrift_drift", &ACME_SPF, 0.0, Duration::from_secs(3))
        .await;
    daemon
        .wait_metric("maildrift_drift", &LEARNED_MX, 0.0, Duration::from_secs(3))
        .await;
    daemon.stop().await;
}

#[tokio::test]
async fn servfail_gives_check_success_zero_and_no_drift() {
    let good = acme_zone("mx1.provider.example.", GOOD_SPF);
    let learned = learned_zone("mx2.provider.example.");
    let dns = dns_server(&[PROVIDER_ZONE, &good, &learned]).await;
    dns.set_mode(ServerMode::ServFail);
    let daemon = Daemon::start(&config(dns.addr(), "1s", "1s")).await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(
        daemon.metric("maildrift_check_success", &ACME_MX).await,
        Some(0.0)
    );
    assert_eq!(
        daemon.metric("maildrift_check_success", &ACME_SPF).await,
        Some(0.0)
    );
    assert_eq!(daemon.metric("maildrift_drift", &ACME_MX).await, Some(0.0));
    assert_eq!(daemon.metric("maildrift_drift", &ACME_SPF).await, Some(0.0));
    assert_eq!(
        daemon.metric("maildrift_drift", &LEARNED_MX).await,
        Some(0.0)
    );
    assert!(
        daemon
            .metric("maildrift_dns_queries_total", &[("rcode", "servfail")])
            .await
            .unwrap()
            > 0.0
    );
    // Liveness never depends on DNS.
    assert_eq!(daemon.get("/-/healthy").await.status, 200);
    assert_eq!(daemon.get("/healthz").await.status, 200);

    // When the server recovers, the checks become conclusive and compare with expectations.
    dns.set_mode(ServerMode::Normal);
    daemon
        .wait_metric(
            "maildrift_check_success",
            &ACME_MX,
            1.0,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(daemon.metric("maildrift_drift", &ACME_MX).await, Some(0.0));
    daemon.stop().await;
}

#[tokio::test]
async fn silent_nameserver_is_unknown_and_keeps_the_last_known_state() {
    let good = acme_zone("mx1.provider.example.", GOOD_SPF);
    let learned = learned_zone("mx2.provider.example.");
    let dns = dns_server(&[PROVIDER_ZONE, &good, &learned]).await;
    let daemon = Daemon::start(&config(dns.addr(), "1s", "800ms")).await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    dns.set_zone(&acme_zone("mx.old-provider.example.", GOOD_SPF))
        .unwrap();
    daemon
        .wait_metric("maildrift_drift", &ACME_MX, 1.0, Duration::from_secs(5))
        .await;
    dns.set_mode(ServerMode::Silent);
    daemon
        .wait_metric(
            "maildrift_check_success",
            &ACME_MX,
            0.0,
            Duration::from_secs(5),
        )
        .await;
    // Unknown is neither drift nor recovery: the last conclusive state stays.
    assert_eq!(daemon.metric("maildrift_drift", &ACME_MX).await, Some(1.0));
    // Each check gives up within its share of the domain's timeout, so the domain's run
    // completes (outcome "failure": some checks unknown) instead of timing out as a whole.
    assert!(
        daemon
            .metric("maildrift_domain_checks_total", &[("outcome", "failure")])
            .await
            .unwrap()
            > 0.0
    );
    let detail: serde_json::Value =
        serde_json::from_str(&daemon.get("/api/v1/domains/acme.example").await.body).unwrap();
    let error = detail["checks"]["mx"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("timeout") || error.contains("did not finish"),
        "{detail}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn reload_keeps_the_old_config_when_the_new_one_is_invalid() {
    let good = acme_zone("mx1.provider.example.", GOOD_SPF);
    let learned = learned_zone("mx2.provider.example.");
    let dns = dns_server(&[PROVIDER_ZONE, &good, &learned]).await;
    let daemon = Daemon::start(&config(dns.addr(), "1s", "1s")).await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(
        daemon
            .metric("maildrift_config_last_reload_successful", &[])
            .await,
        Some(1.0)
    );

    std::fs::write(
        &daemon.config_path,
        "domains:\n  - name: bad..example\n    intervall: 5m\n",
    )
    .unwrap();
    let response = request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(response.status, 500, "{}", response.body);
    assert!(
        response
            .body
            .contains("maildrift.yml:3:5: domains[0].intervall: unknown field"),
        "{}",
        response.body
    );
    assert_eq!(
        daemon
            .metric("maildrift_config_last_reload_successful", &[])
            .await,
        Some(0.0)
    );
    assert_eq!(daemon.metric("maildrift_domains", &[]).await, Some(2.0));
    assert_eq!(
        daemon.metric("maildrift_check_success", &ACME_MX).await,
        Some(1.0)
    );

    // A valid reload that drops a domain removes its series.
    let only_acme = config(dns.addr(), "1s", "1s").replace("  - name: learned.example\n", "");
    std::fs::write(&daemon.config_path, only_acme).unwrap();
    let response = request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        daemon
            .metric("maildrift_config_last_reload_successful", &[])
            .await,
        Some(1.0)
    );
    assert_eq!(daemon.metric("maildrift_domains", &[]).await, Some(1.0));
    let text = daemon.get("/metrics").await.body;
    assert!(!text.contains("learned.example"), "stale series:\n{text}");
    let list: serde_json::Value =
        serde_json::from_str(&daemon.get("/api/v1/domains").await.body).unwrap();
    assert_eq!(list["domains"].as_array().unwrap().len(), 1);
    daemon.stop().await;
}
