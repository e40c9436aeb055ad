//! Round benchmark: the daemon's first pass over N generated domains against the in-process
//! authoritative server on loopback, through the real path (config → scheduler → monitor →
//! checks → DNS). Prints domains/s, queries/s and peak RSS.
//!
//! `cargo bench --bench round -- [DOMAINS] [CONCURRENCY] [--state]` (defaults 2000, 256;
//! `--state` keeps state in a temporary directory and reports lost writes).
#![allow(clippy::print_stdout)]

use maildrift::app::{self, RunOptions};
use maildrift::config::Config;
use maildrift::demo::fleet::Fleet;
use maildrift::dns::server::LocalDnsServer;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;
use common::{get, number_arg, rss_kib, wait_ready};

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let domains = number_arg(0, 2000);
    let concurrency = number_arg(1, 256);
    let fleet = Fleet {
        domains,
        varied: false,
    };
    let zones = fleet.zones();
    let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let baseline_rss = rss_kib("VmRSS:");
    let dns = LocalDnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &zone_refs).await?;
    let defaults = format!("  interval: 1h\n  timeout: 60s\n  concurrency: {concurrency}\n");
    let config = Config::parse(&fleet.config(&defaults), Path::new("bench.yml"))
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
        language: None,
    };
    let started = Instant::now();
    let daemon = tokio::spawn(app::run(config, options, listener, shutdown.clone()));
    wait_ready(addr, Duration::from_secs(600)).await?;
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
