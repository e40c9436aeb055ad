//! The state store end to end: learned baseline → zone edit → drift with from/to → accept →
//! drift clears; restarts keep baselines and open incidents and re-announce nothing; a
//! change made while stopped is found on the next start; a corrupt database stops the
//! start-up; an unusable state directory does not stop monitoring.

mod crash;
mod fleet;
mod fleet_restart;
mod fleet_views;
mod notes;
mod status_page;
mod writes;

use crate::harness::{dns_server, metric, request, wait_until};
use maildrift::app::{self, RunOptions};
use maildrift::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const BIN: &str = env!("CARGO_BIN_EXE_maildrift");

/// The zone of the learned domain with one MX host.
pub fn learned_zone(mx: &str) -> String {
    format!(
        "$ORIGIN learned.example.\n$TTL 60\n\
         @ SOA ns1.learned.example. h.learned.example. 1 3600 600 86400 60\n\
         @ NS ns1.learned.example.\nns1 A 192.0.2.53\n\
         @ MX 10 {mx}.learned.example.\n{mx} A 192.0.2.25\n\
         @ TXT \"v=spf1 mx -all\"\n"
    )
}

pub const DECLARED_ZONE: &str = "$ORIGIN declared.example.\n$TTL 60\n\
    @ SOA ns1.declared.example. h.declared.example. 1 3600 600 86400 60\n\
    @ NS ns1.declared.example.\nns1 A 192.0.2.54\n\
    @ MX 10 mx.declared.example.\nmx A 192.0.2.26\n@ TXT \"v=spf1 mx -all\"\n";

pub fn config(dns: SocketAddr, interval: &str) -> String {
    format!(
        "defaults:\n  interval: {interval}\n  timeout: {interval}\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n\
         domains:\n  - name: learned.example\n  - name: declared.example\n    expect:\n      mx: [mx.declared.example]\n"
    )
}

/// The learned and declared zones on a DNS server, and a daemon watching them (every
/// 300 ms, state in `dir/data`) past its first round.
pub async fn ready_daemon(dir: &Path) -> (maildrift::dns::server::LocalDnsServer, StateDaemon) {
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let daemon = start(dir, &config(dns.addr(), "300ms"), &dir.join("data"))
        .await
        .unwrap();
    daemon.wait_ready().await;
    (dns, daemon)
}

/// An in-process daemon with a state directory.
pub struct StateDaemon {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

pub async fn start(config_dir: &Path, yaml: &str, state_dir: &Path) -> anyhow::Result<StateDaemon> {
    let options = RunOptions {
        state_dir: Some(state_dir.to_path_buf()),
        ..RunOptions::default()
    };
    start_with(config_dir, yaml, options).await
}

/// [`start`] with every run option given.
pub async fn start_with(
    config_dir: &Path,
    yaml: &str,
    options: RunOptions,
) -> anyhow::Result<StateDaemon> {
    let path = config_dir.join("maildrift.yml");
    std::fs::write(&path, crate::harness::with_detail(yaml)).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app::run(config, options, listener, shutdown.clone()));
    // A start-up error ends the task at once; otherwise the server answers.
    let up = wait_until(Duration::from_secs(10), || async {
        task.is_finished() || tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    assert!(up, "daemon neither started nor failed");
    if task.is_finished() {
        return match task.await.unwrap() {
            Ok(()) => Err(anyhow::anyhow!("daemon stopped at once")),
            Err(e) => Err(e),
        };
    }
    Ok(StateDaemon {
        addr,
        shutdown,
        task,
    })
}

impl StateDaemon {
    pub async fn json(&self, path: &str) -> Value {
        let response = request(self.addr, "GET", path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        serde_json::from_str(&response.body).unwrap()
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric(
            &request(self.addr, "GET", "/metrics").await.body,
            name,
            labels,
        )
    }

    /// Whether the daemon still runs (it has neither failed nor stopped).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    pub async fn wait_ready(&self) {
        let ready = wait_until(Duration::from_secs(15), || async {
            request(self.addr, "GET", "/-/ready").await.status == 200
        })
        .await;
        assert!(ready, "not ready");
    }

    pub async fn wait_drift(&self, value: f64) {
        let labels = [("domain", "learned.example"), ("check", "mx")];
        let reached = wait_until(Duration::from_secs(15), || async {
            self.metric("maildrift_drift", &labels).await == Some(value)
        })
        .await;
        assert!(reached, "drift never became {value}");
    }

    /// Waits until the learned domain's MX check has run again after now.
    async fn wait_next_check(&self) {
        let labels = [("domain", "learned.example"), ("check", "mx")];
        let name = "maildrift_last_check_timestamp_seconds";
        let before = self.metric(name, &labels).await.unwrap_or(0.0);
        let ran = wait_until(Duration::from_secs(15), || async {
            self.metric(name, &labels).await.unwrap_or(0.0) > before
        })
        .await;
        assert!(ran, "no check ran");
    }

    pub async fn events(&self, query: &str) -> Vec<Value> {
        self.json(&format!("/api/v1/events?{query}")).await["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The events once `until` holds for them (bounded wait): the writer thread commits
    /// them shortly after the check that produced them, not with it.
    pub async fn events_when(&self, query: &str, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_until(Duration::from_secs(10), || async {
            until(&self.events(query).await)
        })
        .await;
        self.events(query).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("daemon stops within 15 s");
        result.unwrap().unwrap();
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str, code: Option<&str>) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && code.is_none_or(|c| e["code"] == c))
        .collect()
}

#[tokio::test]
async fn learned_baseline_drift_from_to_accept_clears() {
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("data");
    let daemon = start(dir.path(), &config(dns.addr(), "300ms"), &state_dir)
        .await
        .unwrap();
    daemon.wait_ready().await;
    let domain = daemon.json("/api/v1/domains/learned.example").await;
    assert_eq!(
        domain["checks"]["mx"]["baseline"],
        serde_json::json!(["10 mx-a.learned.example"])
    );
    let learned = daemon
        .events_when("domain=learned.example&check=mx", |e| {
            !of_kind(e, "baseline_learned", None).is_empty()
        })
        .await;
    assert_eq!(
        of_kind(&learned, "baseline_learned", None).len(),
        1,
        "{learned:?}"
    );

    dns.set_zone(&learned_zone("mx-b")).unwrap();
    daemon.wait_drift(1.0).await;
    let events = daemon
        .events_when("domain=learned.example&check=mx", |e| {
            !of_kind(e, "changed", None).is_empty()
        })
        .await;
    let opened = of_kind(&events, "opened", Some("drift"));
    assert_eq!(opened.len(), 1, "{events:?}");
    assert_eq!(
        opened[0]["from"],
        serde_json::json!(["10 mx-a.learned.example"])
    );
    assert_eq!(
        opened[0]["to"],
        serde_json::json!(["10 mx-b.learned.example"])
    );
    assert_eq!(opened[0]["severity"], "critical");
    assert!(
        opened[0]["server"]
            .as_str()
            .unwrap()
            .contains(&dns.addr().to_string())
    );
    let changed = of_kind(&events, "changed", None);
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(
        changed[0]["from"],
        serde_json::json!(["10 mx-a.learned.example"])
    );

    // A check with a declared expectation cannot be accepted; an unknown domain is 404.
    let refused = request(
        daemon.addr,
        "POST",
        "/api/v1/domains/declared.example/accept?check=mx",
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("declared expectation"),
        "{}",
        refused.body
    );
    let unknown = request(daemon.addr, "POST", "/api/v1/domains/nope.example/accept").await;
    assert_eq!(unknown.status, 404);

    let accepted = request(
        daemon.addr,
        "POST",
        "/api/v1/domains/learned.example/accept?check=mx",
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let body: Value = serde_json::from_str(&accepted.body).unwrap();
    assert_eq!(body["persisted"], true);
    assert_eq!(body["accepted"][0]["cleared_drift"], true);
    assert_eq!(
        body["accepted"][0]["baseline"],
        serde_json::json!(["10 mx-b.learned.example"])
    );
    assert_eq!(
        daemon
            .metric(
                "maildrift_drift",
                &[("domain", "learned.example"), ("check", "mx")]
            )
            .await,
        Some(0.0)
    );
    // Still clear after the next checks against the new baseline.
    daemon.wait_next_check().await;
    daemon.wait_next_check().await;
    daemon.wait_drift(0.0).await;
    let events = daemon
        .events_when("domain=learned.example&check=mx", |e| {
            !of_kind(e, "resolved", Some("drift")).is_empty()
        })
        .await;
    let resolved = of_kind(&events, "resolved", Some("drift"));
    assert_eq!(resolved.len(), 1, "{events:?}");
    assert!(resolved[0]["resolution_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(of_kind(&events, "baseline_accepted", None).len(), 1);
    assert_eq!(
        of_kind(&events, "opened", Some("drift")).len(),
        1,
        "no new drift"
    );

    // Pagination: one event per page, following `next`.
    let mut seen = Vec::new();
    let mut next = Some("/api/v1/events?domain=learned.example&limit=1".to_owned());
    while let Some(path) = next {
        let page = daemon.json(&path).await;
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        next = page["next"].as_str().map(str::to_owned);
    }
    let all: Vec<i64> = daemon
        .events("domain=learned.example")
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, all);
    assert_eq!(
        request(daemon.addr, "GET", "/api/v1/events?limit=0")
            .await
            .status,
        400
    );
    daemon.stop().await;
}

#[tokio::test]
async fn restart_keeps_baseline_and_incidents_and_finds_changes_made_while_stopped() {
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("data");
    let yaml = config(dns.addr(), "300ms");

    // 1. Learn, drift, stop with the drift open.
    let daemon = start(dir.path(), &yaml, &state_dir).await.unwrap();
    daemon.wait_ready().await;
    dns.set_zone(&learned_zone("mx-b")).unwrap();
    daemon.wait_drift(1.0).await;
    daemon.stop().await;

    // 2. Restart: the incident is known before any check, and is not announced again.
    let daemon = start(dir.path(), &yaml, &state_dir).await.unwrap();
    let domain = daemon.json("/api/v1/domains/learned.example").await;
    assert_eq!(domain["checks"]["mx"]["drift"], true, "{domain}");
    assert_eq!(
        domain["checks"]["mx"]["baseline"],
        serde_json::json!(["10 mx-a.learned.example"])
    );
    let open_mx_drift = domain["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["check"] == "mx" && i["code"] == "drift")
        .count();
    assert_eq!(open_mx_drift, 1, "{domain}");
    daemon.wait_ready().await;
    daemon.wait_next_check().await;
    daemon.wait_drift(1.0).await;
    let events = daemon.events("domain=learned.example&check=mx").await;
    assert_eq!(
        of_kind(&events, "opened", Some("drift")).len(),
        1,
        "re-announced: {events:?}"
    );
    assert_eq!(
        of_kind(&events, "baseline_learned", None).len(),
        1,
        "relearned: {events:?}"
    );
    // Restore: drift resolves, with how long it was open (across the restart).
    dns.set_zone(&learned_zone("mx-a")).unwrap();
    daemon.wait_drift(0.0).await;
    daemon.stop().await;

    // 3. Edit while stopped: the next start finds it against the stored baseline.
    dns.set_zone(&learned_zone("mx-c")).unwrap();
    let daemon = start(dir.path(), &yaml, &state_dir).await.unwrap();
    daemon.wait_ready().await;
    daemon.wait_drift(1.0).await;
    let events = daemon
        .events_when("domain=learned.example&check=mx", |e| {
            of_kind(e, "opened", Some("drift")).len() >= 2
        })
        .await;
    let opened = of_kind(&events, "opened", Some("drift"));
    assert_eq!(opened.len(), 2, "{events:?}");
    assert_eq!(
        opened[0]["from"],
        serde_json::json!(["10 mx-a.learned.example"])
    );
    assert_eq!(
        opened[0]["to"],
        serde_json::json!(["10 mx-c.learned.example"])
    );
    daemon.stop().await;

    // 4. Accept with the daemon down (nothing listens on the URL): straight into the store.
    let output = tokio::process::Command::new(BIN)
        .args([
            "baseline",
            "accept",
            "learned.example",
            "--check",
            "mx",
            "--url",
            "http://127.0.0.1:1",
        ])
        .arg("--state-dir")
        .arg(&state_dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("[10 mx-c.learned.example] (was [10 mx-a.learned.example]); drift cleared"),
        "{stdout}"
    );
    let daemon = start(dir.path(), &yaml, &state_dir).await.unwrap();
    daemon.wait_ready().await;
    daemon.wait_next_check().await;
    daemon.wait_drift(0.0).await;
    let events = daemon.events("domain=learned.example&check=mx").await;
    assert_eq!(
        of_kind(&events, "opened", Some("drift")).len(),
        2,
        "{events:?}"
    );
    assert_eq!(
        of_kind(&events, "resolved", Some("drift")).len(),
        2,
        "{events:?}"
    );

    // 5. And through the running daemon's API.
    dns.set_zone(&learned_zone("mx-d")).unwrap();
    daemon.wait_drift(1.0).await;
    let output = tokio::process::Command::new(BIN)
        .args(["baseline", "accept", "learned.example", "--url"])
        .arg(format!("http://{}", daemon.addr))
        .arg("--state-dir")
        .arg(dir.path().join("elsewhere"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("by the daemon at"), "{stdout}");
    assert_eq!(
        daemon
            .metric(
                "maildrift_drift",
                &[("domain", "learned.example"), ("check", "mx")]
            )
            .await,
        Some(0.0)
    );
    assert!(
        !dir.path().join("elsewhere").exists(),
        "the API path must not open a store"
    );
    daemon.stop().await;
}

fn checksum(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn corrupt_database_stops_the_start_and_is_left_alone() {
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("data");
    std::fs::create_dir_all(&state_dir).unwrap();
    let db = state_dir.join("maildrift.db");
    std::fs::write(&db, b"SQLite format 3\0 but then garbage ".repeat(300)).unwrap();
    let before = checksum(&db);
    let error = start(dir.path(), &config(dns.addr(), "1s"), &state_dir)
        .await
        .err()
        .expect("start-up refused");
    let message = format!("{error:#}");
    assert!(message.contains("corrupt"), "{message}");
    assert!(message.contains(&db.display().to_string()), "{message}");
    assert_eq!(checksum(&db), before, "the database was modified");
}

#[tokio::test]
async fn unusable_state_dir_does_not_stop_monitoring() {
    let dns = dns_server(&[&learned_zone("mx-a"), DECLARED_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    // A path under a regular file can never be created, not even by root.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, "x").unwrap();
    let state_dir: PathBuf = blocker.join("data");
    let daemon = start(dir.path(), &config(dns.addr(), "300ms"), &state_dir)
        .await
        .unwrap();
    daemon.wait_ready().await;
    assert_eq!(
        daemon
            .metric(
                "maildrift_check_success",
                &[("domain", "learned.example"), ("check", "mx")]
            )
            .await,
        Some(1.0)
    );
    dns.set_zone(&learned_zone("mx-b")).unwrap();
    daemon.wait_drift(1.0).await;
    let failures = daemon
        .metric("maildrift_state_write_failures_total", &[])
        .await;
    assert!(failures.unwrap_or(0.0) >= 2.0, "failures: {failures:?}");
    assert_eq!(
        request(daemon.addr, "GET", "/api/v1/events").await.status,
        503
    );
    let page = request(daemon.addr, "GET", "/").await;
    assert!(
        page.body.contains("state store unavailable"),
        "{}",
        page.body
    );
    daemon.stop().await;
}
