//! Alerting across a restart on the same state directory: the open incident is re-sent to
//! Alertmanager (a second, fresh one, so only a re-send can put it there) with its original
//! start, and the webhook that announced it is not told again.

use super::{Alertmanager, Receiver, acme_zone, find_alert};
use crate::harness::{dns_server, metric, request, wait_until};
use crate::state::start;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

fn config(dns: SocketAddr, am: SocketAddr, hook: SocketAddr) -> String {
    format!(
        r#"
defaults:
  interval: 300ms
  timeout: 300ms
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
domains:
  - name: acme.example
    expect: {{ mx: [mx1.acme.example] }}
alerting:
  for: 1s
  resend_interval: 30s
  alertmanager: {{ url: "http://{am}" }}
  webhooks:
    - {{ name: generic, format: generic, url: "http://{hook}/hook" }}
"#
    )
}

/// Announcements committed to the state database (read from the test, like an operator).
fn stored_announcements(state_dir: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(state_dir.join("maildrift.db")) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM alert_announcements", [], |r| r.get(0))
        .unwrap_or(0)
}

fn statuses(hook: &Receiver) -> Vec<Value> {
    hook.received()
        .iter()
        .map(|r| r.body["status"].clone())
        .collect()
}

#[tokio::test]
async fn restart_resends_to_alertmanager_and_does_not_reannounce_to_webhooks() {
    let Some(am1) = Alertmanager::start().await else {
        return;
    };
    let Some(am2) = Alertmanager::start().await else {
        return;
    };
    let hook = Receiver::start("ok").await;
    let good = acme_zone("mx1.acme.example.");
    let dns = dns_server(&[&good]).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("data");

    // 1. Drift fires: Alertmanager has it, the webhook got exactly one firing message, and
    //    the announcement is committed before the daemon stops.
    let daemon = start(
        dir.path(),
        &config(dns.addr(), am1.addr, hook.addr),
        &state_dir,
    )
    .await
    .unwrap();
    daemon.wait_ready().await;
    dns.set_zone(&acme_zone("mx.old-provider.example."))
        .unwrap();
    let fired = wait_until(Duration::from_secs(20), || async {
        find_alert(&am1.alerts().await, "MailDnsMxDrift").is_some() && !hook.received().is_empty()
    })
    .await;
    assert!(
        fired,
        "not fired: {:?} {:?}",
        am1.alerts().await,
        statuses(&hook)
    );
    let first_start =
        find_alert(&am1.alerts().await, "MailDnsMxDrift").unwrap()["startsAt"].clone();
    assert_eq!(statuses(&hook), [json!("firing")]);
    let recorded = wait_until(Duration::from_secs(10), || async {
        stored_announcements(&state_dir) == 1
    })
    .await;
    assert!(recorded, "announcement never committed");
    daemon.stop().await;

    // 2. Restart on the same state directory while the drift persists, pointed at a fresh
    //    Alertmanager: the incident reaches it with its original start.
    let daemon = start(
        dir.path(),
        &config(dns.addr(), am2.addr, hook.addr),
        &state_dir,
    )
    .await
    .unwrap();
    daemon.wait_ready().await;
    let resent = wait_until(Duration::from_secs(20), || async {
        find_alert(&am2.alerts().await, "MailDnsMxDrift").is_some()
    })
    .await;
    assert!(
        resent,
        "not re-sent after restart: {:?}",
        am2.alerts().await
    );
    let alerts = am2.alerts().await;
    let alert = find_alert(&alerts, "MailDnsMxDrift").unwrap();
    assert_eq!(alert["startsAt"], first_start, "{alert}");
    // Checks ran after the restart and still see the drift (well past `for: 1s`).
    let labels = [("domain", "acme.example"), ("check", "mx")];
    let body = || async { request(daemon.addr, "GET", "/metrics").await.body };
    let before = metric(
        &body().await,
        "maildrift_last_check_timestamp_seconds",
        &labels,
    )
    .unwrap_or(0.0);
    let checked = wait_until(Duration::from_secs(15), || async {
        let text = body().await;
        metric(&text, "maildrift_last_check_timestamp_seconds", &labels).unwrap_or(0.0)
            > before + 1.5
            && metric(&text, "maildrift_drift", &labels) == Some(1.0)
    })
    .await;
    assert!(checked, "no drifting checks after the restart");
    assert_eq!(
        metric(
            &body().await,
            "maildrift_alerts_firing",
            &[("alertname", "MailDnsMxDrift")]
        ),
        Some(1.0)
    );

    // 3. The drift clears: the webhook that announced the incident gets its resolution. It
    //    delivers in order, so a firing re-announcement would have come before it.
    dns.set_zone(&good).unwrap();
    let resolved = wait_until(Duration::from_secs(20), || async {
        statuses(&hook).contains(&json!("resolved"))
    })
    .await;
    assert!(resolved, "{:?}", statuses(&hook));
    assert_eq!(
        statuses(&hook),
        [json!("firing"), json!("resolved")],
        "webhook re-announced after the restart"
    );
    let gone = wait_until(Duration::from_secs(10), || async {
        stored_announcements(&state_dir) == 0
    })
    .await;
    assert!(gone, "announcement of the resolved incident kept");
    daemon.stop().await;
}
