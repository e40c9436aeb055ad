//! Round benchmark: the daemon's first pass over N generated domains against the in-process
//! authoritative server on loopback, through the real path (config → scheduler → monitor →
//! checks → DNS). Prints domains/s, queries/s and peak RSS.
//!
//! `cargo bench --bench round -- [DOMAINS] [CONCURRENCY] [--state]` (defaults 2000, 256;
//! `--state` keeps state in a temporary directory and reports lost writes).
#![allow(clippy::print_stdout)]

use maildrift::app::{self, RunOptions};
use maildrift::config::Config;
use maildrift::dns::server::LocalDnsServer;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The provider's zone, and one zone per customer domain (each watched domain is a zone
/// apex, as in real life: hickory's in-memory handler answers negative questions below an
/// apex by walking its records, which would make a single 30,000-record zone the bottleneck).
fn zones(domains: usize) -> Vec<String> {
    let mut zones = vec![String::from(
        "$ORIGIN provider.bench.\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n\
         mx1 A 192.0.2.11\nmx2 A 192.0.2.12\nspf TXT \"v=spf1 include:spf2.provider.bench ip4:192.0.2.0/24 -all\"\n\
         spf2 TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n",
    )];
    for i in 0..domains {
        zones.push(format!(
            "$ORIGIN d{i}.customers.bench.\n$TTL 300\n@ SOA ns1.provider.bench. hostmaster 1 3600 600 86400 300\n\
             @ NS ns1.provider.bench.\n@ MX 10 mx1.provider.bench.\n@ MX 20 mx2.provider.bench.\n\
             @ TXT \"v=spf1 include:spf.provider.bench -all\"\n_dmarc TXT \"v=DMARC1; p=reject\"\n"
        ));
    }
    zones
}

fn config(domains: usize, concurrency: usize) -> String {
    let mut text = format!(
        "defaults:\n  interval: 1h\n  timeout: 60s\n  concurrency: {concurrency}\ndomains:\n"
    );
    for i in 0..domains {
        let _ = writeln!(text, "  - name: d{i}.customers.bench");
        let _ = writeln!(
            text,
            "    expect: {{ mx: [mx1.provider.bench, mx2.provider.bench], spf: {{ includes: [spf.provider.bench], all: \"-all\" }} }}"
        );
    }
    text
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw).await;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

/// `VmHWM` (peak) or `VmRSS` (current) of this process, in KiB.
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let domains: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let zones = zones(domains);
    let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let baseline_rss = rss_kib("VmRSS:");
    let dns = LocalDnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &zone_refs).await?;
    let config = Config::parse(&config(domains, concurrency), Path::new("bench.yml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let setup_rss = rss_kib("VmRSS:");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    // `--state`: run with a state directory (SQLite baselines, check states, timeline).
    let state_dir = if std::env::args().any(|a| a == "--state") {
        Some(tempfile::tempdir()?)
    } else {
        None
    };
    let options = RunOptions {
        resolvers: vec![dns.addr()],
        nameservers: vec![dns.addr()],
        shard: None,
        state_dir: state_dir.as_ref().map(|d| d.path().to_owned()),
        web_config: None,
        telemetry_path: None,
        dns_limits: Default::default(),
    };
    let started = Instant::now();
    let daemon = tokio::spawn(app::run(config, options, listener, shutdown.clone()));
    let deadline = started + Duration::from_secs(600);
    while get(addr, "/-/ready").await.0 != 200 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "first round did not finish within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_rss = rss_kib("VmRSS:");
    let (_, metrics) = get(addr, "/metrics").await;
    let round = sample(&metrics, "maildrift_check_round_duration_seconds_sum");
    let queries = sample(&metrics, "maildrift_dns_queries_total");
    let success = metrics
        .lines()
        .filter(|l| l.starts_with("maildrift_check_success{") && l.ends_with(" 1"))
        .count();
    let checks = metrics
        .lines()
        .filter(|l| l.starts_with("maildrift_check_success{"))
        .count();
    let drift = metrics
        .lines()
        .filter(|l| l.starts_with("maildrift_drift{") && l.ends_with(" 1"))
        .count();
    println!("domains           {domains}");
    println!("concurrency       {concurrency}");
    println!(
        "first round       {round:.3} s (ready after {:.3} s)",
        started.elapsed().as_secs_f64()
    );
    println!("domains/s         {:.0}", domains as f64 / round);
    println!(
        "DNS queries       {queries} ({:.0}/s; server saw {})",
        queries / round,
        dns.query_count()
    );
    println!("checks conclusive {success} of {checks}");
    println!("drift series at 1 {drift}");
    println!("/metrics size     {} KiB", metrics.len() / 1024);
    if state_dir.is_some() {
        println!(
            "state writes lost {}",
            sample(&metrics, "maildrift_state_write_failures_total")
        );
    }
    println!(
        "RSS (MiB)         DNS server + config: {}; daemon after round: +{}; peak: {}",
        (setup_rss - baseline_rss) / 1024,
        ready_rss.saturating_sub(setup_rss) / 1024,
        rss_kib("VmHWM:") / 1024
    );
    shutdown.cancel();
    daemon.await??;
    Ok(())
}
