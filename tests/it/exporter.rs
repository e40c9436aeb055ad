//! Exporter conventions on the real binary: repeatable `--web.listen-address`,
//! `--web.telemetry-path`, OpenMetrics negotiation, `process_*` metrics, the revision
//! label, the landing page's link, socket activation, and `sd_notify` messages read from a
//! `NOTIFY_SOCKET` datagram socket the test creates.

use crate::binary::{Running, ZONE, expected_revision, run_command};
use crate::harness::{dns_server, metric, request, request_with, tool_installed, wait_until};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prometheus 2.x's scrape `Accept` header.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("maildrift.yml");
    // No timeout written: the default (30 s) is clamped to the 1 s interval.
    std::fs::write(
        &file,
        "defaults:\n  interval: 1s\ndomains:\n  - name: acme.example\n",
    )
    .unwrap();
    file
}

#[tokio::test]
async fn telemetry_path_listen_addresses_openmetrics_process_metrics_and_revision() {
    let dns = dns_server(&[ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = run_command(dir.path(), &config(dir.path()), dns.addr());
    command.args([
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.telemetry-path",
        "/probe/metrics",
    ]);
    let daemon = Running::start(command);
    assert_eq!(daemon.addresses.len(), 2, "{:?}", daemon.addresses);
    assert_ne!(daemon.addresses[0], daemon.addresses[1]);
    let ready = wait_until(Duration::from_secs(20), || async {
        request(daemon.addr(), "GET", "/-/ready").await.status == 200
    })
    .await;
    assert!(ready, "ready");

    for addr in &daemon.addresses {
        let text = request(*addr, "GET", "/probe/metrics").await;
        assert_eq!(text.status, 200, "{addr}");
        assert!(
            text.headers
                .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{}",
            text.headers
        );
        assert!(!text.body.contains("# EOF"), "text format has no EOF");
        assert_eq!(
            metric(
                &text.body,
                "maildrift_check_success",
                &[("domain", "acme.example"), ("check", "mx")]
            ),
            Some(1.0)
        );
    }
    assert_eq!(
        request(daemon.addr(), "GET", "/metrics").await.status,
        404,
        "the metrics moved"
    );
    let landing = request(daemon.addr(), "GET", "/").await.body;
    assert!(
        landing.contains("<a href=\"/probe/metrics\">metrics</a>"),
        "{landing}"
    );

    // OpenMetrics when the scraper prefers it, as Prometheus does.
    let open = request_with(
        daemon.addresses[1],
        "GET",
        "/probe/metrics",
        &[("Accept", PROMETHEUS_ACCEPT)],
    )
    .await;
    assert!(
        open.headers
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{}",
        open.headers
    );
    assert!(open.body.ends_with("# EOF\n"), "ends with # EOF");
    assert!(
        open.body
            .contains("# TYPE maildrift_domain_checks counter\n"),
        "counter metadata without _total"
    );
    assert!(
        open.body
            .contains("maildrift_domain_checks_total{outcome=\"success\"}")
    );
    assert!(open.body.contains("# TYPE process_cpu_seconds counter\n"));

    // process_* metrics describe this very process.
    let text = request(daemon.addr(), "GET", "/probe/metrics").await.body;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let value = |name| metric(&text, name, &[]).unwrap_or_else(|| panic!("no {name}"));
    let started = value("process_start_time_seconds");
    assert!(
        now - 600.0 < started && started <= now + 1.0,
        "{started} vs {now}"
    );
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_virtual_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 5.0, "sockets, database, pipes");
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_cpu_seconds_total") >= 0.0);

    // The revision is stamped at build time.
    let revision = expected_revision();
    assert_eq!(
        metric(
            &text,
            "maildrift_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", &revision)
            ]
        ),
        Some(1.0),
        "build_info with revision {revision:?}:\n{}",
        text.lines()
            .filter(|l| l.starts_with("maildrift_build_info"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (code, _) = daemon.terminate().await;
    assert_eq!(code, Some(0));
}

/// Datagrams received on the test's notification socket, as they arrive.
fn notifications(socket: UnixDatagram) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Waits (bounded) for a message starting with `prefix`; returns it and the messages before.
fn next(rx: &Receiver<String>, prefix: &str) -> (String, Vec<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut before = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(message) if message.starts_with(prefix) => return (message, before),
            Ok(message) => before.push(message),
            Err(_) => break,
        }
    }
    panic!("no {prefix:?} within 20 s; received {before:?}");
}

#[tokio::test]
async fn sd_notify_ready_after_first_round_reloading_watchdog_and_stopping() {
    let dns = dns_server(&[ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let rx = notifications(UnixDatagram::bind(&socket_path).unwrap());
    let config_path = config(dir.path());
    let mut command = run_command(dir.path(), &config_path, dns.addr());
    command
        .args(["--web.listen-address", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &socket_path)
        // WatchdogSec=400ms: a ping every 200 ms.
        .env("WATCHDOG_USEC", "400000");
    let daemon = Running::start(command);

    let (ready, before) = next(&rx, "READY=1");
    assert_eq!(ready, "READY=1\nSTATUS=first check round finished");
    assert!(
        before.iter().all(|m| m == "WATCHDOG=1"),
        "only watchdog pings before READY=1: {before:?}"
    );
    assert_eq!(
        request(daemon.addr(), "GET", "/-/ready").await.status,
        200,
        "READY=1 is sent once the first round finished"
    );
    for _ in 0..2 {
        next(&rx, "WATCHDOG=1");
    }

    // A reload: RELOADING=1 with the monotonic clock, then READY=1.
    assert_eq!(
        request(daemon.addr(), "POST", "/-/reload").await.status,
        200
    );
    let (reloading, _) = next(&rx, "RELOADING=1");
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|n| n.parse::<u64>().ok());
    assert!(usec.is_some_and(|n| n > 0), "{reloading:?}");
    let (ready, _) = next(&rx, "READY=1");
    assert_eq!(ready, "READY=1\nSTATUS=configuration reloaded");
    // A refused reload still ends the reloading state, and says so.
    std::fs::write(&config_path, "domains: [\n").unwrap();
    assert_eq!(
        request(daemon.addr(), "POST", "/-/reload").await.status,
        500
    );
    next(&rx, "RELOADING=1");
    let (ready, _) = next(&rx, "READY=1");
    assert_eq!(
        ready,
        "READY=1\nSTATUS=reload failed; previous configuration kept"
    );

    let (code, _) = daemon.terminate().await;
    assert_eq!(code, Some(0));
    next(&rx, "STOPPING=1");
}

#[tokio::test]
async fn systemd_socket_activation_serves_on_the_passed_socket() {
    const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";
    if !tool_installed(
        ACTIVATE,
        "apt-get install systemd",
        "systemd_socket_activation_serves_on_the_passed_socket",
    ) {
        return;
    }
    let dns = dns_server(&[ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    // A free port for systemd-socket-activate (it cannot bind port 0): bind, read, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(ACTIVATE);
    command
        .args(["-l", &format!("127.0.0.1:{port}"), crate::binary::BIN])
        .args(run_command(dir.path(), &config(dir.path()), dns.addr()).get_args())
        .arg("--web.systemd-socket");
    // systemd-socket-activate starts the daemon on the first connection; the request waits
    // in the socket's backlog meanwhile.
    let mut child = command.stderr(std::process::Stdio::null()).spawn().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listening = wait_until(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    assert!(listening, "systemd-socket-activate listens");
    let healthy = wait_until(Duration::from_secs(20), || async {
        request(addr, "GET", "/-/healthy").await.status == 200
    })
    .await;
    assert!(healthy, "the daemon serves on the socket systemd passed");
    assert_eq!(crate::binary::terminate(&mut child).await, Some(0));
}

#[test]
fn systemd_socket_without_systemd_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(crate::binary::BIN)
        .args(["run", "--web.systemd-socket", "--config"])
        .arg(config(dir.path()))
        .arg("--state-dir")
        .arg(dir.path().join("data"))
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--web.systemd-socket: no socket passed by systemd"),
        "{stderr}"
    );
}
