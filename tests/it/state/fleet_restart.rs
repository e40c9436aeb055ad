//! PostgreSQL stopped (by PID) and started again on the same port and data directory under
//! a running daemon that keeps checking: the daemon neither stops nor stops checking,
//! health and readiness stay 200 while the pages say the store is unavailable, it
//! reconnects on its own, what the API acknowledged before the stop is kept, the changes
//! made while the database was down and after it came back are recorded once each, and
//! `maildrift_state_write_failures_total` stays 0 (only a full queue loses writes; the
//! counting of those is tested in `src/state/pg_tests.rs`).

use super::fleet::{drift, fleet_config, postgres, start_shard, with_state, zone};
use super::{StateDaemon, of_kind};
use crate::harness::{dns_server, metric, request, wait_until};
use serde_json::Value;
use std::time::Duration;

/// The opened drift events of `domain` through the fleet scope, once the API answers
/// (`None` while the store cannot be read).
async fn opened_drift(daemon: &StateDaemon, domain: &str) -> Option<Vec<Value>> {
    let path = format!("/api/v1/events?scope=fleet&domain={domain}&check=mx");
    let response = request(daemon.addr, "GET", &path).await;
    if response.status != 200 {
        return None;
    }
    let events: Value = serde_json::from_str(&response.body).ok()?;
    let events = events["events"].as_array()?.clone();
    Some(
        of_kind(&events, "opened", Some("drift"))
            .into_iter()
            .cloned()
            .collect(),
    )
}

async fn counter(daemon: &StateDaemon, name: &str) -> f64 {
    let body = request(daemon.addr, "GET", "/metrics").await.body;
    metric(&body, name, &[]).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rides_out_a_postgresql_restart_and_loses_nothing_acknowledged() {
    let Some(pg) = postgres("the_daemon_rides_out_a_postgresql_restart") else {
        return;
    };
    let domains: Vec<String> = (0..6).map(|i| format!("r{i}.fleet.example")).collect();
    let zones: Vec<String> = domains.iter().map(|d| zone(d, "mx-a")).collect();
    let dns = dns_server(&zones.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = with_state(&pg, &fleet_config(dns.addr(), &domains, ""));
    let daemon = start_shard(dir.path(), &yaml, None).await;
    let learned = "SELECT count(*) FROM baselines WHERE check_name = 'mx'";
    let all_learned = wait_until(Duration::from_secs(20), || async {
        pg.query_i64("maildrift", learned) == 6
    })
    .await;
    assert!(
        all_learned,
        "{} baselines",
        pg.query_i64("maildrift", learned)
    );
    let (before, during, after) = (&domains[0], &domains[1], &domains[2]);

    // Acknowledged: an opening the API returned (reads flush the queue first).
    dns.set_zone(&zone(before, "mx-b")).unwrap();
    let acknowledged = wait_until(Duration::from_secs(20), || async {
        opened_drift(&daemon, before)
            .await
            .is_some_and(|e| e.len() == 1)
    })
    .await;
    assert!(acknowledged, "the drift of {before} was never recorded");
    let acked = opened_drift(&daemon, before).await.unwrap()[0].clone();

    // Stopped by PID (SIGINT, fast shutdown) on a blocking thread: the daemon runs on.
    let mut pg = tokio::task::spawn_blocking(move || {
        let mut pg = pg;
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let rounds = "maildrift_check_round_duration_seconds_count";
    let rounds_at_stop = counter(&daemon, rounds).await;
    dns.set_zone(&zone(during, "mx-b")).unwrap();
    let seen = wait_until(Duration::from_secs(20), || async {
        drift(&daemon, during).await == Some(1.0)
            && counter(&daemon, rounds).await >= rounds_at_stop + 2.0
    })
    .await;
    assert!(
        seen,
        "the daemon stopped checking while the database was down"
    );
    assert!(daemon.is_running(), "the daemon stopped");
    for path in ["/-/healthy", "/-/ready", "/metrics", "/api/v1/domains"] {
        let response = request(daemon.addr, "GET", path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
    }
    let page = request(daemon.addr, "GET", "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("state store unavailable"),
        "the page does not say the store is down"
    );
    let page = request(daemon.addr, "GET", "/?scope=fleet").await;
    assert_eq!(page.status, 503, "{}", page.body);
    let fleet = request(daemon.addr, "GET", "/api/v1/domains?scope=fleet").await;
    assert_ne!(fleet.status, 200, "{}", fleet.body);
    assert!(
        !fleet.body.contains(pg.password()),
        "the password was shown"
    );

    // Started again on the same port and data directory; a change after the restart.
    let pg = tokio::task::spawn_blocking(move || {
        pg.start_again();
        pg
    })
    .await
    .unwrap();
    dns.set_zone(&zone(after, "mx-b")).unwrap();
    let reconnected = wait_until(Duration::from_secs(40), || async {
        let mut all = true;
        for domain in [during, after] {
            all &= opened_drift(&daemon, domain)
                .await
                .is_some_and(|e| e.len() == 1);
        }
        all
    })
    .await;
    assert!(
        reconnected,
        "the openings made during and after the outage never landed: {:?} {:?}",
        opened_drift(&daemon, during).await,
        opened_drift(&daemon, after).await
    );
    // What was acknowledged is kept, unchanged; nothing was recorded twice or lost.
    let kept = opened_drift(&daemon, before).await.unwrap();
    assert_eq!(kept, [acked]);
    let openings = |domain: &str| {
        pg.query_i64(
            "maildrift",
            &format!(
                "SELECT count(*) FROM events WHERE domain = '{domain}' AND kind = 'opened' AND code = 'drift'"
            ),
        )
    };
    for domain in [before, during, after] {
        assert_eq!(openings(domain), 1, "{domain}");
    }
    for domain in &domains[3..] {
        assert_eq!(openings(domain), 0, "{domain}");
    }
    assert_eq!(
        counter(&daemon, "maildrift_state_write_failures_total").await,
        0.0,
        "a write was lost although the queue never filled"
    );
    let page = request(daemon.addr, "GET", "/?scope=fleet").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("state store unavailable"));
    assert!(daemon.is_running());
    daemon.stop().await;
}
