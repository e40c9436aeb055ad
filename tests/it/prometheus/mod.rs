//! The dashboards and rules against a real Prometheus (Debian's `prometheus`) scraping a
//! real daemon: `maildrift demo` (its in-process DNS server and zones, its scripted MX
//! drift). Every PromQL expression in `dashboards/*.json` (panel targets, annotations,
//! `label_values` variables) and `deploy/prometheus/rules.yml` is run through Prometheus'
//! HTTP API: each must be valid and return data, except those listed in
//! [`EMPTY_ON_THE_DEMO`] with the reason — and those must indeed be empty.

mod expressions;

use crate::binary::BIN;
use crate::harness::{request, terminate, tool_installed, wait_until};
use expressions::{
    Expression, Kind, dashboard_expressions, label_values, rule_expressions, substitute,
};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Expressions that are valid but return nothing while the demo's zones are watched, and why.
const EMPTY_ON_THE_DEMO: [(&str, &str); 16] = [
    (
        "maildrift_drift{check=\"spf\"} == 1",
        "the demo's scripted edit moves the MX only",
    ),
    (
        "sum by (receiver, outcome) (increase(maildrift_notifications_total{instance=~\"$instance\"}[$__rate_interval]))",
        "the demo configures no receiver: the series appear with the first delivery attempt",
    ),
    (
        "max by (domain, record, resolver) (maildrift_propagation_pending_seconds{domain=~\"$domain\"}) > 0",
        "the demo's resolver is its authoritative server, which is never compared with itself",
    ),
    (
        "max by (record, resolver) (maildrift_propagation_pending_seconds{domain=\"$domain\", instance=~\"$instance\"})",
        "the demo's resolver is its authoritative server, which is never compared with itself",
    ),
    (
        "changes(maildrift_spf_ipset_fingerprint{domain=~\"$domain\"}[24h]) > 0",
        "no provider changes the networks its SPF include authorises during the test",
    ),
    (
        "maildrift_spf_dns_lookups >= 9 <= 10",
        "no demo domain needs 9 or 10 SPF lookups (bulk-sender needs 13: the critical rule)",
    ),
    (
        "sum without (severity) (maildrift_findings{check=\"dkim\", severity=\"critical\"}) > 0",
        "the demo's DKIM selector publishes its key",
    ),
    (
        "maildrift_nameservers_consistent == 0",
        "the demo zones have one authoritative server, which agrees with itself",
    ),
    (
        "maildrift_check_success == 0",
        "every check of the demo domains gets a conclusive DNS answer",
    ),
    ("up{job=\"maildrift\"} == 0", "the daemon is up"),
    (
        "maildrift_domain_expiry_timestamp_seconds - time() < 7 * 86400",
        "the demo domains are under .example, which no registry holds: no expiry date",
    ),
    (
        "maildrift_domain_expiry_timestamp_seconds - time() >= 7 * 86400 < 30 * 86400",
        "the demo domains are under .example, which no registry holds: no expiry date",
    ),
    (
        "sum without (severity) (maildrift_findings{check=\"dnsbl\", severity=\"critical\"}) > 0",
        "the demo configures no DNS blocklist (none by default)",
    ),
    (
        "sort((maildrift_mx_tls_cert_not_after_timestamp_seconds{instance=~\"$instance\"} - time()) / 86400)",
        "the demo's MX hosts have documentation addresses, which smtp_tls never dials: no host presents a certificate",
    ),
    (
        "(maildrift_mx_tls_cert_not_after_timestamp_seconds - time()) / 86400 < 21 >= 7",
        "the demo's MX hosts have documentation addresses, which smtp_tls never dials",
    ),
    (
        "(maildrift_mx_tls_cert_not_after_timestamp_seconds - time()) / 86400 < 7",
        "the demo's MX hosts have documentation addresses, which smtp_tls never dials",
    ),
];

/// A Prometheus on a loopback port with its own data directory, stopped by PID on drop.
struct Prometheus {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

impl Prometheus {
    /// Scrapes `target` every second as job `maildrift`.
    async fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: maildrift\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        // A free port: bind, read, release (Prometheus cannot report a port 0 binding).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            addr,
            child,
            _dir: dir,
        };
        let ready = wait_until(Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(addr).await.is_ok()
                && request(addr, "GET", "/-/ready").await.status == 200
        })
        .await;
        assert!(ready, "prometheus ready on {addr}");
        prometheus
    }

    /// `GET /api/v1/<endpoint>?<params>`: the `data` of a successful answer, or the error.
    async fn api(
        &self,
        endpoint: &str,
        params: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let response = request(
            self.addr,
            "GET",
            &format!("/api/v1/{endpoint}?{}", query.join("&")),
        )
        .await;
        let body: serde_json::Value = serde_json::from_str(&response.body)
            .map_err(|e| format!("HTTP {}: {e}: {}", response.status, response.body))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// The value of an instant query's first sample.
    async fn value(&self, expr: &str) -> Option<f64> {
        let data = self.api("query", &[("query", expr)]).await.ok()?;
        data["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits (bounded) until Prometheus has `count` more scrapes of the daemon.
    async fn wait_scrapes(&self, count: f64) {
        let scrapes = "count_over_time(up{job=\"maildrift\"}[1h])";
        let before = self.value(scrapes).await.unwrap_or(0.0);
        let done = wait_until(Duration::from_secs(30), || async {
            self.value(scrapes).await.unwrap_or(0.0) >= before + count
        })
        .await;
        assert!(done, "{count} scrapes within 30 s");
    }
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs the expression; `Ok(true)` when it returned data.
async fn run(
    prometheus: &Prometheus,
    expression: &Expression,
    start: f64,
    end: f64,
) -> Result<bool, String> {
    let text = substitute(expression);
    assert!(!text.contains('$'), "unsubstituted variable in {text:?}");
    let (start, end) = (format!("{start:.3}"), format!("{end:.3}"));
    match expression.kind {
        Kind::Instant => {
            let data = prometheus
                .api("query", &[("query", &text), ("time", &end)])
                .await?;
            Ok(data["result"].as_array().is_some_and(|r| !r.is_empty()))
        }
        Kind::Range => {
            let params = [
                ("query", text.as_str()),
                ("start", &start),
                ("end", &end),
                ("step", "1"),
            ];
            let data = prometheus.api("query_range", &params).await?;
            Ok(data["result"].as_array().is_some_and(|r| !r.is_empty()))
        }
        Kind::LabelValues => {
            let (selector, label) =
                label_values(&text).ok_or_else(|| format!("not label_values(…): {text}"))?;
            let params = [
                ("match[]", selector.as_str()),
                ("start", &start),
                ("end", &end),
            ];
            let data = prometheus.api("series", &params).await?;
            Ok(data
                .as_array()
                .is_some_and(|series| series.iter().any(|s| s[&label].is_string())))
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `maildrift demo` as a child process; its address from the URLs it prints.
fn start_demo() -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--interval",
            "1s",
            "--drift-after",
            "12s",
            "--duration",
            "180s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read stdout to the end on a thread: the demo keeps narrating, and a closed pipe
    // would stop it.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("metrics:") {
                let addr = url
                    .trim()
                    .trim_start_matches("http://")
                    .trim_end_matches("/metrics");
                let _ = tx.send(addr.parse::<SocketAddr>());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(addr)) => (child, addr),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo printed no metrics URL: {other:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_rule_expression_runs_against_real_prometheus() {
    if !tool_installed(
        PROMETHEUS,
        "apt-get install prometheus",
        "every_dashboard_and_rule_expression_runs_against_real_prometheus",
    ) {
        return;
    }
    let (mut demo, target) = start_demo();
    let result = std::panic::AssertUnwindSafe(check_expressions(target));
    let outcome = futures::FutureExt::catch_unwind(result).await;
    let _ = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status();
    let _ = demo.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check_expressions(target: SocketAddr) {
    let prometheus = Prometheus::start(target).await;
    // Two scrapes of the running daemon before the window starts, so that every query in
    // it sees the daemon up and every series present.
    let up = wait_until(Duration::from_secs(30), || async {
        prometheus.value("up{job=\"maildrift\"}").await == Some(1.0)
    })
    .await;
    assert!(up, "Prometheus scrapes the demo at {target}");
    prometheus.wait_scrapes(2.0).await;
    let start = unix_now();
    // The scripted edit, seen by Prometheus, then two more scrapes.
    let drifted = wait_until(Duration::from_secs(60), || async {
        prometheus
            .value("maildrift_drift{domain=\"jade-trading.example\", check=\"mx\"}")
            .await
            == Some(1.0)
    })
    .await;
    assert!(drifted, "the demo's MX drift reaches Prometheus");
    prometheus.wait_scrapes(2.0).await;
    let end = unix_now();

    let mut expressions = Vec::new();
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    dashboards.sort();
    assert!(dashboards.len() >= 2, "{dashboards:?}");
    for file in &dashboards {
        expressions.extend(dashboard_expressions(file, "jade-trading.example"));
    }
    expressions.extend(rule_expressions(
        &repo().join("deploy/prometheus/rules.yml"),
    ));

    let mut failures = Vec::new();
    let mut empty = Vec::new();
    for expression in &expressions {
        let listed = EMPTY_ON_THE_DEMO
            .iter()
            .find(|(expr, _)| *expr == expression.expr);
        match (run(&prometheus, expression, start, end).await, listed) {
            (Err(error), _) => failures.push(format!(
                "{}: {:?} is invalid: {error}",
                expression.source, expression.expr
            )),
            (Ok(true), Some((_, reason))) => failures.push(format!(
                "{}: {:?} returned data, but is listed as empty ({reason})",
                expression.source, expression.expr
            )),
            (Ok(false), None) => failures.push(format!(
                "{}: {:?} returned no data",
                expression.source, expression.expr
            )),
            (Ok(false), Some((expr, reason))) => empty.push(format!("{expr}: {reason}")),
            (Ok(true), None) => {}
        }
    }
    for (expr, _) in EMPTY_ON_THE_DEMO {
        assert!(
            expressions.iter().any(|e| e.expr == expr),
            "listed expression no longer used anywhere: {expr}"
        );
    }
    eprintln!(
        "{} PromQL expressions checked against Prometheus; {} empty on the demo:\n  {}",
        expressions.len(),
        empty.len(),
        empty.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} of {} expressions failed:\n{}",
        failures.len(),
        expressions.len(),
        failures.join("\n")
    );
    assert!(
        expressions.len() >= 50,
        "only {} expressions",
        expressions.len()
    );
}
