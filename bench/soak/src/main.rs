//! The soak (bench/soak.sh): DOMAINS domains on an INTERVAL, half of them healthy and half
//! behind the faults of the tests' fault server (silence, SERVFAIL, REFUSED, truncation, a
//! TCP cut, flapping answers, forged answers, slow answers, malformed packets, answers
//! without AA, NXDOMAIN), watched by the release `maildrift` binary for SECONDS. Every 10 s
//! it samples the daemon's resident memory, open file descriptors, live tokio tasks
//! (`maildrift_tokio_alive_tasks`) and state database size, and fails when the end of the
//! run exceeds the start (after warm-up) by more than the bounds below.
//!
//! Usage: maildrift-soak MAILDRIFT_BINARY SECONDS DOMAINS INTERVAL_SECONDS

#[path = "../../../tests/it/faults/server.rs"]
#[allow(dead_code)]
mod server;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use server::{Fault, FaultDns, Spoof, a, mx, txt};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Resident memory may grow by 20 % plus 16 MiB from the start to the end.
const RSS_FACTOR: f64 = 1.2;
const RSS_SLACK_KIB: u64 = 16 * 1024;
/// Open file descriptors may grow by 16 (sockets in flight at the sampling instant).
const FD_SLACK: u64 = 16;
/// Live tasks may grow by 20 % plus 200 (checks in flight at the sampling instant).
const TASK_FACTOR: f64 = 1.2;
const TASK_SLACK: u64 = 200;
/// The state database (events of the flapping domains included) stays under 64 MiB.
const DB_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// Between two samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    at: u64,
    rss_kib: u64,
    fds: u64,
    tasks: u64,
    db_bytes: u64,
    checks: u64,
    /// `maildrift_alert_updates_queued`: alert keys waiting for the alerting task.
    alert_queue: u64,
}

fn faults() -> Vec<Fault> {
    vec![
        Fault::Silent,
        Fault::Rcode(ResponseCode::ServFail),
        Fault::Rcode(ResponseCode::Refused),
        Fault::TruncatedUdp,
        Fault::TcpCutMidMessage,
        Fault::Flapping {
            rtype: RecordType::TXT,
            a: vec![txt("v=spf1 ip4:192.0.2.0/24 -all")],
            b: vec![txt("v=spf1 ip4:192.0.2.0/24 ~all")],
        },
        Fault::Spoof(Spoof::Id),
        Fault::SpoofOnly(Spoof::SourcePort),
        Fault::Slow(Duration::from_millis(300)),
        Fault::Malformed { then_genuine: true },
        Fault::NoAa,
        Fault::NxDomain,
    ]
}

fn read_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.ok()?;
    Some(raw)
}

fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A webhook receiver that accepts everything (the alerts of the flapping domains).
async fn sink() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (addr, count)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: maildrift-soak MAILDRIFT_BINARY SECONDS DOMAINS INTERVAL_SECONDS");
        std::process::exit(2);
    }
    let binary = &args[1];
    let seconds: u64 = args[2].parse().expect("SECONDS");
    let domains: usize = args[3].parse().expect("DOMAINS");
    let interval: u64 = args[4].parse().expect("INTERVAL_SECONDS");

    let names: Vec<String> = (0..domains).map(|i| format!("d{i}.soak.test")).collect();
    let mut zones: Vec<&str> = names.iter().map(String::as_str).collect();
    zones.push("provider.soak.test");
    let dns = FaultDns::start(&zones).await;
    dns.add("mx1.provider.soak.test", a([192, 0, 2, 11]));
    dns.add(
        "spf.provider.soak.test",
        txt("v=spf1 ip4:192.0.2.0/24 -all"),
    );
    let mix = faults();
    for (i, name) in names.iter().enumerate() {
        dns.add(name, mx(10, "mx1.provider.soak.test"));
        dns.add(name, txt("v=spf1 include:spf.provider.soak.test -all"));
        dns.add(&format!("_dmarc.{name}"), txt("v=DMARC1; p=reject"));
        if i % 2 == 1 {
            dns.fault(name, mix[(i / 2) % mix.len()].clone());
        }
    }
    let (webhook, delivered) = sink().await;

    let dir = std::env::temp_dir().join(format!("maildrift-soak-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config = dir.join("maildrift.yml");
    let mut yaml = format!(
        "defaults:\n  interval: {interval}s\n  resolvers: [\"{addr}\"]\n  nameservers: [\"{addr}\"]\n  concurrency: 256\n  checks: {{ skip: [dkim, mta_sts, smtp_tls, dane, bimi, registration, dnsbl] }}\nalerting:\n  for: 0s\n  webhooks:\n    - {{ name: sink, format: generic, url: \"http://{webhook}/\" }}\ndomains:\n",
        addr = dns.addr()
    );
    for name in &names {
        yaml.push_str(&format!("  - name: {name}\n"));
    }
    std::fs::write(&config, yaml).unwrap();

    let mut child = Command::new(binary)
        .args([
            "run",
            "--log.format",
            "json",
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("maildrift starts");
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let address = Arc::new(Mutex::new(None::<SocketAddr>));
    let log_lines = Arc::new(AtomicU64::new(0));
    {
        let (address, log_lines) = (address.clone(), log_lines.clone());
        // Drains the logs for the whole run (a full pipe would block the daemon).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log_lines.fetch_add(1, Ordering::Relaxed);
                if line.contains("maildrift started") {
                    let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    if let Some(first) = json["fields"]["addresses"]
                        .as_str()
                        .and_then(|a| a.split(',').next())
                    {
                        *address.lock().unwrap() = first.parse().ok();
                    }
                }
            }
        });
    }
    let started = Instant::now();
    let addr = loop {
        if let Some(addr) = *address.lock().unwrap() {
            break addr;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no start-up line"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    println!(
        "soak: {domains} domains every {interval} s for {seconds} s (half behind faults), daemon pid {pid}"
    );
    println!(
        "| t (s) | RSS (MiB) | open fds | tokio tasks | state DB (KiB) | domain checks | alert keys queued |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut samples: Vec<Sample> = Vec::new();
    let deadline = started + Duration::from_secs(seconds);
    let mut next = Instant::now();
    let mut last_metrics = String::new();
    // Bounded: one sample per 10 s until the deadline.
    while next <= deadline {
        tokio::time::sleep_until(next.into()).await;
        // A late sample (the machine busy) moves the schedule rather than bunching up.
        next = (next + SAMPLE_EVERY).max(Instant::now() + SAMPLE_EVERY / 2);
        if let Ok(Some(status)) = child.try_wait() {
            panic!("maildrift exited during the soak: {status}");
        }
        let metrics = get(addr, "/metrics").await.unwrap_or_default();
        let sample = Sample {
            at: started.elapsed().as_secs(),
            rss_kib: read_status(pid, "VmRSS"),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            tasks: metric_sum(&metrics, "maildrift_tokio_alive_tasks"),
            db_bytes: dir_bytes(&dir.join("data")),
            checks: metric_sum(&metrics, "maildrift_domain_checks_total"),
            alert_queue: metric_sum(&metrics, "maildrift_alert_updates_queued"),
        };
        if !metrics.is_empty() {
            last_metrics = metrics;
        }
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} |",
            sample.at,
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.tasks,
            sample.db_bytes / 1024,
            sample.checks,
            sample.alert_queue
        );
        let _ = std::io::stdout().flush();
        samples.push(sample);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stop = Instant::now();
    while child.try_wait().ok().flatten().is_none() && stop.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = child.try_wait().ok().flatten();
    if exit.is_none() {
        let _ = child.kill();
    }

    // Start: the highest of the samples in the second fifth of the run (after warm-up);
    // end: the highest of the last fifth.
    let fifth = (samples.len() / 5).max(1);
    let window = |s: &[Sample]| Sample {
        at: s.last().map_or(0, |x| x.at),
        rss_kib: s.iter().map(|x| x.rss_kib).max().unwrap_or(0),
        fds: s.iter().map(|x| x.fds).max().unwrap_or(0),
        tasks: s.iter().map(|x| x.tasks).max().unwrap_or(0),
        db_bytes: s.iter().map(|x| x.db_bytes).max().unwrap_or(0),
        checks: s.iter().map(|x| x.checks).max().unwrap_or(0),
        alert_queue: s.iter().map(|x| x.alert_queue).max().unwrap_or(0),
    };
    let start = window(&samples[fifth.min(samples.len() - 1)..(2 * fifth).min(samples.len())]);
    let end = window(&samples[samples.len().saturating_sub(fifth)..]);
    let mut failures = Vec::new();
    if end.rss_kib as f64 > start.rss_kib as f64 * RSS_FACTOR + RSS_SLACK_KIB as f64 {
        failures.push(format!("RSS grew {} → {} KiB", start.rss_kib, end.rss_kib));
    }
    if end.fds > start.fds + FD_SLACK {
        failures.push(format!("open fds grew {} → {}", start.fds, end.fds));
    }
    if end.tasks as f64 > start.tasks as f64 * TASK_FACTOR + TASK_SLACK as f64 {
        failures.push(format!("tokio tasks grew {} → {}", start.tasks, end.tasks));
    }
    if end.db_bytes > DB_LIMIT_BYTES {
        failures.push(format!("state database at {} bytes", end.db_bytes));
    }
    if exit.is_none_or(|status| !status.success()) {
        failures.push(format!(
            "maildrift did not exit cleanly on SIGTERM: {exit:?}"
        ));
    }
    println!();
    println!(
        "start (max of samples {}–{} s) → end (max of the last {} samples):",
        samples[fifth.min(samples.len() - 1)].at,
        start.at,
        fifth
    );
    println!(
        "RSS {:.1} → {:.1} MiB (bound ×{RSS_FACTOR} + {} MiB); fds {} → {} (bound +{FD_SLACK}); tasks {} → {} (bound ×{TASK_FACTOR} + {TASK_SLACK}); state DB {} → {} KiB (bound {} MiB)",
        start.rss_kib as f64 / 1024.0,
        end.rss_kib as f64 / 1024.0,
        RSS_SLACK_KIB / 1024,
        start.fds,
        end.fds,
        start.tasks,
        end.tasks,
        start.db_bytes / 1024,
        end.db_bytes / 1024,
        DB_LIMIT_BYTES / 1024 / 1024
    );
    println!(
        "domain checks: {}; webhook deliveries: {}; log lines: {}; forged answers sent: {}; exit: {exit:?}",
        end.checks,
        delivered.load(Ordering::Relaxed),
        log_lines.load(Ordering::Relaxed),
        dns.spoofed()
    );
    // The daemon's own account at the last sample: how far alerting and the scheduler fell
    // behind, what alerting sent.
    for name in [
        "maildrift_alert_updates_queued",
        "maildrift_alert_updates_coalesced_total",
        "maildrift_domain_checks_skipped_total",
        "maildrift_alerts_firing",
        "maildrift_notifications_total",
    ] {
        println!("{name} {}", metric_sum(&last_metrics, name));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failures.is_empty() {
        println!("PASS");
    } else {
        println!("FAIL: {}", failures.join("; "));
        std::process::exit(1);
    }
}
