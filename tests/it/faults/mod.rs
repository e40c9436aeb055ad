//! Every DNS fault class against the daemon, on both transports it uses: the direct client
//! asking the configured nameservers (`authoritative: true`) and hickory's resolver
//! (`authoritative: false`). Each class ends unknown (`check_success` 0) or with the correct
//! conclusive answer, never in drift, and the domain recovers once the server heals.
//! `transport.rs` holds the direct client's timing and spoofing cases under a paused clock.

mod classes;
pub mod server;
mod transport;

use crate::harness::{Daemon, wait_until};
use server::{FaultDns, a, mx, txt};
use std::time::Duration;

/// The domain under test.
pub const DOMAIN: &str = "fault.test";
/// Its declared SPF record.
pub const GOOD_SPF: &str = "v=spf1 include:spf.provider.test -all";

/// A fault server holding the healthy zones: `fault.test` (MX, SPF) and `provider.test`
/// (the MX host and the SPF include).
pub async fn healthy_server() -> FaultDns {
    let dns = FaultDns::start(&[DOMAIN, "provider.test"]).await;
    dns.add(DOMAIN, mx(10, "mx1.provider.test"));
    dns.add(DOMAIN, txt(GOOD_SPF));
    dns.add("mx1.provider.test", a([192, 0, 2, 11]));
    dns.add("spf.provider.test", txt("v=spf1 ip4:192.0.2.0/24 -all"));
    dns
}

/// Which of the daemon's transports the domain's lookups take.
#[derive(Clone, Copy, Debug)]
pub enum Path {
    /// `authoritative: true` with `nameservers:`: the direct client, recursion off, AA
    /// required.
    Direct,
    /// `authoritative: false`: hickory's resolver.
    Resolver,
}

/// The daemon's config: only mx and spf run, both declared, a 1 s interval and timeout;
/// `extra` is appended to `defaults:`.
pub fn config(dns: &FaultDns, path: Path, extra: &str) -> String {
    let authoritative = matches!(path, Path::Direct);
    format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{addr}"]
  nameservers: ["{addr}"]
  authoritative: {authoritative}
  checks: {{ skip: [dkim, dmarc, mta_sts, tls_rpt, nameservers, dnssec, smtp_tls, dane, bimi, registration, dnsbl] }}
{extra}domains:
  - name: {DOMAIN}
    expect:
      mx: [mx1.provider.test]
      spf: {{ includes: [spf.provider.test], all: "-all" }}
"#,
        addr = dns.addr()
    )
}

/// What the daemon showed over a few rounds.
#[derive(Debug, Default)]
pub struct Seen {
    /// Highest `maildrift_drift` of each check seen while polling (mx, spf).
    pub max_drift: [f64; 2],
    /// Last `maildrift_check_success` of each check (mx, spf).
    pub success: [Option<f64>; 2],
}

const CHECKS: [&str; 2] = ["mx", "spf"];

/// The domain's completed checks so far (every outcome).
async fn rounds(daemon: &Daemon) -> f64 {
    let mut total = 0.0;
    for outcome in ["success", "failure", "timeout"] {
        total += daemon
            .metric("maildrift_domain_checks_total", &[("outcome", outcome)])
            .await
            .unwrap_or(0.0);
    }
    total
}

/// Polls `/metrics` (every 25 ms) until `count` more rounds of the domain completed
/// (bounded by `count` × 5 s), recording the highest drift seen and the last success.
pub async fn watch_rounds(daemon: &Daemon, count: u32) -> Seen {
    let start = rounds(daemon).await;
    let seen = std::sync::Mutex::new(Seen::default());
    let done = wait_until(Duration::from_secs(5) * count, || async {
        let text = daemon.get("/metrics").await.body;
        {
            let mut seen = seen.lock().unwrap();
            for (i, check) in CHECKS.iter().enumerate() {
                let labels = [("domain", DOMAIN), ("check", *check)];
                let drift =
                    crate::harness::metric(&text, "maildrift_drift", &labels).unwrap_or(0.0);
                seen.max_drift[i] = seen.max_drift[i].max(drift);
                seen.success[i] = crate::harness::metric(&text, "maildrift_check_success", &labels);
            }
        }
        rounds(daemon).await >= start + f64::from(count)
    })
    .await;
    assert!(done, "{count} rounds did not complete in time");
    seen.into_inner().unwrap()
}

/// Waits until both checks are conclusive and not in drift (the recovery after a fault).
pub async fn assert_recovers(daemon: &Daemon) {
    for check in CHECKS {
        let labels = [("domain", DOMAIN), ("check", check)];
        daemon
            .wait_metric(
                "maildrift_check_success",
                &labels,
                1.0,
                Duration::from_secs(10),
            )
            .await;
        daemon
            .wait_metric("maildrift_drift", &labels, 0.0, Duration::from_secs(5))
            .await;
    }
}

/// The expected end of a fault class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Both checks unknown (`check_success` 0), no drift.
    Unknown,
    /// Both checks conclusive with the genuine records: success 1, no drift.
    Genuine,
    /// `check` (index in [`CHECKS`]) unknown, the other conclusive; no drift.
    OnlyUnknown(usize),
}

/// Runs the daemon against the server with `fault` at `name` from the start, checks three
/// rounds against `outcome` (never drift), heals the name and checks the recovery.
pub async fn fault_class(path: Path, name: &str, fault: server::Fault, outcome: Outcome) {
    let dns = healthy_server().await;
    dns.fault(name, fault.clone());
    let daemon = Daemon::start(&config(&dns, path, "")).await;
    daemon.wait_ready(Duration::from_secs(15)).await;
    let seen = watch_rounds(&daemon, 3).await;
    assert_eq!(
        seen.max_drift,
        [0.0, 0.0],
        "{fault:?} at {name} over {path:?} gave drift: {seen:?}"
    );
    let expected = match outcome {
        Outcome::Unknown => [Some(0.0), Some(0.0)],
        Outcome::Genuine => [Some(1.0), Some(1.0)],
        Outcome::OnlyUnknown(0) => [Some(0.0), Some(1.0)],
        Outcome::OnlyUnknown(_) => [Some(1.0), Some(0.0)],
    };
    assert_eq!(
        seen.success, expected,
        "{fault:?} at {name} over {path:?}: check_success (mx, spf)"
    );
    if matches!(fault, server::Fault::Spoof(_) | server::Fault::SpoofOnly(_)) {
        assert!(dns.spoofed() > 0, "no forged answer was sent");
    }
    // Liveness never depends on DNS.
    assert_eq!(daemon.get("/-/healthy").await.status, 200);
    dns.heal(name);
    assert_recovers(&daemon).await;
    daemon.stop().await;
}
