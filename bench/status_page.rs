//! Status page benchmark: the daemon watching N generated domains (a varied fleet: labels,
//! drift, missing and weak DMARC, so incidents open) with a state directory, through the
//! real path; once the first round finished, each page is requested repeatedly over
//! loopback. Prints, per page, the body size and the time to the last byte (median, p95,
//! max) and the server's own render time (`Server-Timing`). The target: the overview of
//! 10,000 domains in well under a second; the run fails when its p95 is not.
//!
//! `cargo bench --bench status_page -- [DOMAINS] [REQUESTS]` (defaults 10000, 30).
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

/// The overview must render within this (p95, to the last byte).
const TARGET: Duration = Duration::from_millis(1000);

/// The `render;dur=` of a `Server-Timing` header, in milliseconds.
fn server_timing(raw: &str) -> Option<f64> {
    let head = raw.split("\r\n\r\n").next()?;
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("server-timing:"))?
        .split("dur=")
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let domains = number_arg(0, 10_000);
    let requests = number_arg(1, 30).max(1);
    let fleet = Fleet {
        domains,
        varied: true,
    };
    let zones = fleet.zones();
    let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = LocalDnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &zone_refs).await?;
    let config = Config::parse(
        &fleet.config("  interval: 1h\n  timeout: 60s\n  concurrency: 256\n"),
        Path::new("bench.yml"),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let state_dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let options = RunOptions {
        resolvers: vec![dns.addr()],
        nameservers: vec![dns.addr()],
        state_dir: Some(state_dir.path().to_owned()),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let daemon = tokio::spawn(app::run(config, options, listener, shutdown.clone()));
    wait_ready(addr, Duration::from_secs(900)).await?;
    println!(
        "domains           {domains} (first round {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!("requests per page {requests}, one at a time, over loopback");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "page", "bytes", "median ms", "p95 ms", "max ms", "server ms"
    );
    let drifted = (0..domains).find(|i| fleet.drifts(*i)).unwrap_or(0);
    let domain = Fleet::name(drifted);
    let pages = [
        "/".to_owned(),
        "/?q=team%3Dmail".to_owned(),
        "/?state=drift".to_owned(),
        "/?check=dmarc&state=warning".to_owned(),
        "/?sort=age&page=50".to_owned(),
        "/?q=d99".to_owned(),
        format!("/domains/{domain}"),
        format!("/api/v1/domains/{domain}/timeline.csv"),
    ];
    let mut overview_p95 = Duration::ZERO;
    for page in &pages {
        let mut times = Vec::with_capacity(requests);
        let mut server = Vec::with_capacity(requests);
        let mut size = 0;
        for _ in 0..requests {
            let sent = Instant::now();
            let (status, raw) = get(addr, page).await;
            times.push(sent.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "{page}: status {status}");
            size = raw.split_once("\r\n\r\n").map_or(0, |(_, body)| body.len());
            server.extend(server_timing(&raw));
        }
        times.sort_by(f64::total_cmp);
        server.sort_by(f64::total_cmp);
        let p95 = percentile(&times, 0.95);
        if page == "/" {
            overview_p95 = Duration::from_secs_f64(p95 / 1000.0);
        }
        let server = if server.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.1}", percentile(&server, 0.5))
        };
        println!(
            "{page:<44} {size:>9} {:>9.1} {p95:>9.1} {:>9.1} {server:>12}",
            percentile(&times, 0.5),
            times.last().copied().unwrap_or(0.0)
        );
    }
    println!("peak RSS          {} MiB", rss_kib("VmHWM:") / 1024);
    shutdown.cancel();
    daemon.await??;
    anyhow::ensure!(
        overview_p95 < TARGET,
        "the overview of {domains} domains took {overview_p95:?} (p95), over the target of {TARGET:?}"
    );
    println!("overview p95 {overview_p95:?} < target {TARGET:?}: ok");
    Ok(())
}
