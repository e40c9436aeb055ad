//! `maildrift demo`: an in-process authoritative DNS server with sample company zones, the
//! daemon watching them with a short interval, and a scripted MX drift so that
//! `maildrift_drift{check="mx"}` turns 1. Needs no network and no config file.

#[cfg(any(test, feature = "testkit"))]
pub mod fleet;

use crate::app::{self, RunOptions};
use crate::config::Config;
use crate::dns::server::LocalDnsServer;
use anyhow::Context;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The embedded daemon configuration.
const CONFIG: &str = include_str!("../../config/demo.yml");

/// The sample zones.
const ZONES: [&str; 5] = [
    include_str!("zones/aliyun.zone"),
    include_str!("zones/mxhichina.zone"),
    include_str!("zones/jade-trading.zone"),
    include_str!("zones/bulk-sender.zone"),
    include_str!("zones/calm-harbor.zone"),
];

/// The zone after the scripted edit: MX points at the old provider again.
const DRIFTED_ZONE: &str = include_str!("zones/jade-trading.drifted.zone");

/// Timing of a demo run.
#[derive(Clone, Debug)]
pub struct DemoSettings {
    /// Stop after this long; `None` runs until the shutdown token fires.
    pub duration: Option<Duration>,
    /// When to edit the zone.
    pub drift_after: Duration,
    /// Check interval of the demo domains.
    pub interval: Duration,
}

/// Runs the demo until `shutdown` fires or `settings.duration` passes; narrates to `out`.
pub async fn run(
    settings: DemoSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let dns = LocalDnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), &ZONES)
        .await
        .context("starting the demo DNS server")?;
    let mut config = Config::parse(CONFIG, Path::new("config/demo.yml (embedded)"))
        .map_err(|e| anyhow::anyhow!("embedded demo config: {e}"))?;
    for domain in &mut config.domains {
        domain.interval = settings.interval;
        domain.timeout = domain.timeout.min(settings.interval);
    }
    // History (baselines, timeline) in a fresh directory of its own, removed at the end, so
    // the status page shows the drift's timeline and no run inherits another's baseline.
    let state_dir = std::env::temp_dir().join(format!("maildrift-demo-{}", std::process::id()));
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir)
            .with_context(|| format!("clearing {}", state_dir.display()))?;
    }
    let options = RunOptions {
        resolvers: vec![dns.addr()],
        nameservers: vec![dns.addr()],
        shard: None,
        state_dir: Some(state_dir.clone()),
        web_config: None,
        telemetry_path: None,
        dns_limits: Default::default(),
        language: None,
    };
    let web = listener
        .local_addr()
        .context("reading the listen address")?;
    writeln!(out, "maildrift demo")?;
    writeln!(
        out,
        "  DNS server (authoritative, in-process): {} (udp+tcp)",
        dns.addr()
    )?;
    for domain in &config.domains {
        writeln!(
            out,
            "  watching {} every {:?}",
            domain.name, domain.interval
        )?;
    }
    writeln!(out, "  status page:  http://{web}/")?;
    writeln!(out, "  metrics:      http://{web}/metrics")?;
    writeln!(out, "  API:          http://{web}/api/v1/domains")?;
    writeln!(
        out,
        "  in {:?}, jade-trading.example's MX will be moved back to the old provider (mxhichina.com);",
        settings.drift_after
    )?;
    writeln!(
        out,
        "  watch: curl -s http://{web}/metrics | grep 'maildrift_drift{{'"
    )?;
    out.flush()?;

    let daemon = tokio::spawn(app::run(config, options, listener, shutdown.clone()));
    let edit = tokio::time::sleep(settings.drift_after);
    tokio::pin!(edit);
    let stop = async {
        match settings.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    let mut edited = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = &mut stop => {
                shutdown.cancel();
                break;
            }
            _ = &mut edit, if !edited => {
                edited = true;
                dns.set_zone(DRIFTED_ZONE).map_err(|e| anyhow::anyhow!("editing the demo zone: {e}"))?;
                writeln!(out, "edited jade-trading.example: MX now mxn.mxhichina.com, mxw.mxhichina.com")?;
                writeln!(out, "  the next check (within {:?}) reports drift: http://{web}/api/v1/domains/jade-trading.example", settings.interval)?;
                out.flush()?;
            }
        }
    }
    let stopped = daemon.await.context("demo daemon task");
    if let Err(error) = std::fs::remove_dir_all(&state_dir) {
        tracing::warn!(dir = %state_dir.display(), %error, "cannot remove the demo state directory");
    }
    stopped??;
    writeln!(out, "demo stopped")?;
    Ok(())
}
