//! The daemon: builds the monitor from a config, runs the scheduler and the HTTP server
//! until the shutdown token fires, and applies reloads (SIGHUP, `POST /-/reload`).

use crate::alert::{self, Alerting, Clock, MemoryAlertStore, PgAlertStore, SqliteAlertStore};
use crate::checks::Registry;
use crate::config::{Config, DomainConfig, ResolverSpec};
use crate::http::{self, AppState, Reload};
use crate::metrics::Metrics;
use crate::monitor::{Monitor, Persistence, StoredCheckCache, Timeline};
use crate::scheduler::{self, DomainChecker, PlanEntry, RoundObserver};
use crate::state::{PgTarget, StateService, StateWriter};
use crate::views::ViewFactory;
use anyhow::Context;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

/// The crate version, for `maildrift_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which part of the domain list this instance watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index of this instance.
    pub index: u32,
    /// Number of instances.
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `I < N`, or `auto/N`: `I` is the ordinal at the end of the host name
    /// (`maildrift-2` in a StatefulSet), read from `HOSTNAME`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        Shard::parse_with_hostname(text, std::env::var("HOSTNAME").ok().as_deref())
    }

    /// [`Shard::parse`] with the host name given (tests).
    pub fn parse_with_hostname(text: &str, hostname: Option<&str>) -> Result<Shard, String> {
        let bad = || {
            format!("{text:?} is not a shard: expected I/N with 0 <= I < N (e.g. 0/3), or auto/N")
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let index: u32 = if index.trim() == "auto" {
            let hostname = hostname.unwrap_or("");
            hostname
                .rsplit_once('-')
                .and_then(|(_, ordinal)| ordinal.parse().ok())
                .ok_or_else(|| {
                    format!(
                        "--shard auto/{count}: the host name {hostname:?} does not end in -ORDINAL \
                         (a StatefulSet pod name such as maildrift-2); give I/{count} instead"
                    )
                })?
        } else {
            index.trim().parse().map_err(|_| bad())?
        };
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether `domain` belongs to this shard: the shard with the highest score for the
    /// domain owns it (rendezvous hashing). Stable across restarts and versions; growing N
    /// to N+1 moves only the domains the new shard wins, about 1/(N+1) of them.
    pub fn owns(&self, domain: &str) -> bool {
        Shard::owner(domain, self.count) == self.index
    }

    /// The shard of `count` that owns `domain`.
    pub fn owner(domain: &str, count: u32) -> u32 {
        (0..count)
            .max_by_key(|shard| (rendezvous_score(domain, *shard), *shard))
            .unwrap_or(0)
    }
}

/// A domain's score on one shard: FNV-1a over the name and the shard number, then a
/// SplitMix64 finish so that nearby inputs spread over the whole range. Fixed here (not a
/// library hasher) so the assignment never changes between versions.
fn rendezvous_score(domain: &str, shard: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in domain.bytes().chain([0]).chain(shard.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Command-line settings that apply on top of the config file (and survive reloads).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Replaces every domain's resolvers when not empty.
    pub resolvers: Vec<SocketAddr>,
    /// Replaces every domain's authoritative servers when not empty.
    pub nameservers: Vec<SocketAddr>,
    /// Watch only this shard of the domains.
    pub shard: Option<Shard>,
    /// Where baselines and the event timeline are persisted (`None`: in memory only).
    pub state_dir: Option<std::path::PathBuf>,

    /// `--web.config.file`: TLS and basic auth for the HTTP server (`None`: plain, open).
    pub web_config: Option<Arc<http::web_config::WebConfig>>,
    /// `--web.telemetry-path`: where the metrics are served (`None`: `/metrics`).
    pub telemetry_path: Option<String>,
    /// `--dns.max-qps`, `--dns.max-qps-per-server`.
    pub dns_limits: crate::dns::rate::DnsLimits,
    /// `--web.language`: the status pages' language (`None`: each browser's preference).
    pub language: Option<crate::config::Language>,
}

impl RunOptions {
    /// The domains of `config` this instance watches, overrides applied.
    pub fn domains(&self, config: &Config) -> Vec<DomainConfig> {
        config
            .domains
            .iter()
            .filter(|d| self.owns(d))
            .cloned()
            .map(|domain| self.applied(domain))
            .collect()
    }

    /// [`RunOptions::domains`] without copies: the daemon keeps one `DomainConfig` per
    /// domain (at 100,000 domains a second copy held by the loaded config costs ~100 MB).
    pub fn into_domains(&self, domains: Vec<DomainConfig>) -> Vec<DomainConfig> {
        domains
            .into_iter()
            .filter(|d| self.owns(d))
            .map(|domain| self.applied(domain))
            .collect()
    }

    /// Whether this instance (its shard) watches `domain`.
    fn owns(&self, domain: &DomainConfig) -> bool {
        self.shard.is_none_or(|shard| shard.owns(&domain.name))
    }

    /// The command line's overrides applied to `domain`.
    fn applied(&self, mut domain: DomainConfig) -> DomainConfig {
        if !self.resolvers.is_empty() {
            domain.resolvers = self
                .resolvers
                .iter()
                .copied()
                .map(ResolverSpec::Addr)
                .collect();
        }
        if !self.nameservers.is_empty() {
            domain.nameservers = self.nameservers.clone();
        }
        domain
    }
}

struct Reloader {
    source: std::path::PathBuf,
    options: RunOptions,
    views: ViewFactory,
    plan: watch::Sender<Arc<Vec<PlanEntry>>>,
    /// Native alerting, reconfigured on reload.
    alerting: Arc<Alerting>,
    /// Links in alerts point here unless `alerting.external_url` is set.
    default_external_url: String,
    /// Takes the reloaded retention.
    state: StateWriter,
    /// Serialises reloads.
    lock: Mutex<()>,
}

impl Reloader {
    /// Builds views for every domain of `config` (its domain list is taken: the monitor
    /// keeps the only copy), then swaps the watched set and the plan.
    fn apply(&self, config: &mut Config, monitor: &Monitor) -> Result<usize, String> {
        // Every shard's domains (for `?scope=fleet`), before this shard takes its own.
        let roster = crate::monitor::fleet::Roster::new(&config.domains);
        let domains = self
            .options
            .into_domains(std::mem::take(&mut config.domains));
        if let Some(shortest) = domains.iter().map(|d| d.interval).min() {
            self.views.set_round_interval(shortest);
        }
        let mut wanted = Vec::with_capacity(domains.len());
        for domain in domains {
            let view = self
                .views
                .view(&domain)
                .map_err(|e| format!("domain {}: {e}", domain.name))?;
            wanted.push((domain, view));
        }
        let plan: Vec<PlanEntry> = wanted
            .iter()
            .map(|(d, _)| PlanEntry {
                domain: d.name.clone(),
                interval: d.interval,
            })
            .collect();
        let count = plan.len();
        self.state.set_retention(config.state.retention);
        monitor.set_roster(roster);
        monitor.replace(wanted, config.global.clone());
        self.plan.send_replace(Arc::new(plan));
        Ok(count)
    }

    async fn reload(&self, metrics: &Metrics, monitor: &Monitor) -> Result<usize, String> {
        let _serial = self.lock.lock().await;
        crate::notify::reloading();
        // Files the config names (secrets, URL files, certificates) are checked here too,
        // so that a missing one is reported at its line and field, as `validate` does.
        let result = Config::load_checking_files(&self.source)
            .map_err(|e| e.to_string())
            .and_then(|mut config| {
                log_warnings(&config);
                // Secrets and certificates are read before anything changes: a broken
                // alerting setup fails the reload and keeps the old one.
                let alerting = alert::runtime(config.alerting.as_ref(), &self.default_external_url)
                    .map_err(|e| e.to_string())?;
                let names = domain_names(&self.options, &config);
                let domains = self.apply(&mut config, monitor)?;
                metrics.set_detail(config.metrics.detail);
                self.alerting.reconfigure(alerting, names);
                Ok(domains)
            });
        crate::notify::reloaded(result.is_ok());
        match &result {
            Ok(domains) => {
                metrics.reload_successful.set(1);
                metrics.reload_success_timestamp.set(unix_now());
                tracing::info!(file = %self.source.display(), domains, "configuration reloaded");
            }
            Err(error) => {
                metrics.reload_successful.set(0);
                tracing::error!(file = %self.source.display(), %error, "reload failed; keeping the previous configuration");
            }
        }
        result
    }
}

/// What `POST /-/reload` and SIGHUP run: the reloader with the monitor it reconfigures.
struct ReloadHandle {
    reloader: Reloader,
    metrics: Arc<Metrics>,
    monitor: Arc<Monitor>,
}

impl Reload for ReloadHandle {
    fn reload(&self) -> BoxFuture<'_, Result<usize, String>> {
        Box::pin(self.reloader.reload(&self.metrics, &self.monitor))
    }
}

/// Logs the config's own warnings (e.g. an empty domain list).
fn log_warnings(config: &Config) {
    for warning in config.warnings() {
        tracing::warn!(file = %config.source.display(), %warning, "configuration warning");
    }
}

fn domain_names(options: &RunOptions, config: &Config) -> std::collections::BTreeSet<String> {
    config
        .domains
        .iter()
        .filter(|d| options.owns(d))
        .map(|d| d.name.clone())
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

struct MonitorChecker(Arc<Monitor>);

impl DomainChecker for MonitorChecker {
    fn check(&self, domain: String) -> BoxFuture<'static, ()> {
        let monitor = self.0.clone();
        Box::pin(async move {
            monitor.check(&domain).await;
        })
    }
}

struct ReadyOnFirstRound {
    state: std::sync::Weak<AppState>,
}

impl RoundObserver for ReadyOnFirstRound {
    fn round_finished(&self, duration: Duration, domains: usize, first: bool) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        state.metrics.round_duration.observe(duration.as_secs_f64());
        if first {
            state.ready.store(true, Ordering::Release);
            crate::notify::ready();
            tracing::info!(
                domains,
                seconds = duration.as_secs_f64(),
                "first check round finished; ready"
            );
        } else {
            tracing::debug!(
                domains,
                seconds = duration.as_secs_f64(),
                "check round finished"
            );
        }
    }

    fn turn_skipped(&self) {
        if let Some(state) = self.state.upgrade() {
            state.metrics.domain_checks_skipped.inc();
        }
    }
}

/// Where alerting keeps its open incidents and announcements: the state database when one
/// is open (they survive restarts), memory otherwise (they survive reloads only).
fn alert_store(
    state: &StateService,
    domains: &std::collections::BTreeSet<String>,
) -> Arc<dyn alert::AlertStore> {
    if let Some(store) = &state.store {
        if store.is_shared() {
            return Arc::new(PgAlertStore::new(store.clone(), domains));
        }
        match SqliteAlertStore::open(store) {
            Ok(alerts) => return Arc::new(alerts),
            Err(error) => {
                tracing::error!(%error, "alert state not persisted: webhooks may announce open incidents again after a restart");
            }
        }
    }
    Arc::new(MemoryAlertStore::default())
}

/// Runs the daemon until `shutdown` fires: serves HTTP on `listener` (one or several),
/// checks on schedule.
pub async fn run(
    mut config: Config,
    options: RunOptions,
    listener: impl Into<http::Listeners>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener: http::Listeners = listener.into();
    let mut checks = Registry::standard();
    let metrics = Arc::new(Metrics::new(
        VERSION,
        option_env!("MAILDRIFT_REVISION").unwrap_or("unknown"),
        &checks,
    ));
    let views = ViewFactory::new(metrics.dns.clone(), options.dns_limits)
        .await
        .context("opening DNS sockets")?;
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    // `state.url` (or `--state.url`, which replaces it) replaces `state_dir`. It is read
    // once: a reload that changes it takes effect at the next start.
    let state_url = config.state.url.clone();
    let persistent = state_url.is_some() || options.state_dir.is_some();
    let state = Arc::new(match &state_url {
        Some(url) => StateService::open_postgres(
            PgTarget::new(url, config.state.password.as_ref())?,
            config.state.retention,
            &metrics.registry,
        )?,
        None => StateService::open(
            options.state_dir.as_deref(),
            config.state.retention,
            &metrics.registry,
        )?,
    });
    if persistent {
        let kept = StoredCheckCache::load(state.store.as_deref(), state.writer.clone());
        checks = checks.with_cache(Arc::new(kept));
    }
    let checks = Arc::new(checks);
    let default_external_url = alert::default_external_url(address);
    let alert_runtime = alert::runtime(config.alerting.as_ref(), &default_external_url)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.source.display()))?;
    let names = domain_names(&options, &config);
    let alerting = Alerting::start(
        alert_runtime,
        Clock::now(),
        alert_store(&state, &names),
        metrics.clone(),
        names,
        shutdown.clone(),
    );
    let mut monitor = Monitor::new(metrics.clone(), checks).with_observer(alerting.clone());
    if persistent {
        monitor = monitor
            .with_persistence(Persistence {
                store: state.store.clone(),
                writer: state.writer.clone(),
            })
            .with_observer(Arc::new(Timeline::new(state.writer.clone())));
    }
    let monitor = Arc::new(monitor);
    log_warnings(&config);
    let (plan_tx, plan_rx) = watch::channel(Arc::new(Vec::new()));
    let web_config = options.web_config.clone();
    let telemetry_path = options.telemetry_path.clone();
    let language = options.language;
    let reloader = Reloader {
        source: config.source.clone(),
        options,
        views,
        plan: plan_tx,
        alerting: alerting.clone(),
        default_external_url,
        state: state.writer.clone(),
        lock: Mutex::new(()),
    };
    let domains = reloader
        .apply(&mut config, &monitor)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.source.display()))?;
    metrics.set_detail(config.metrics.detail);
    metrics.reload_successful.set(1);
    metrics.reload_success_timestamp.set(unix_now());
    let app_state = Arc::new(AppState {
        metrics: metrics.clone(),
        monitor: monitor.clone(),
        ready: AtomicBool::new(false),
        state: state.clone(),
        reloader: Arc::new(ReloadHandle {
            reloader,
            metrics,
            monitor: monitor.clone(),
        }),
    });
    let state = app_state;
    let addresses: Vec<String> = listener.addresses().iter().map(|a| a.to_string()).collect();
    tracing::info!(%address, addresses = %addresses.join(","), domains, config = %config.source.display(), "maildrift started");

    let scheduler = tokio::spawn(scheduler::run(
        plan_rx,
        Arc::new(MonitorChecker(monitor)),
        Arc::new(ReadyOnFirstRound {
            state: Arc::downgrade(&state),
        }),
        config.global.concurrency,
        shutdown.clone(),
    ));
    let hangups = tokio::spawn(reload_on_sighup(state.clone(), shutdown.clone()));

    crate::notify::spawn_watchdog(shutdown.clone());
    let telemetry_path = telemetry_path
        .as_deref()
        .unwrap_or(http::DEFAULT_TELEMETRY_PATH);
    let router = http::router(state.clone(), telemetry_path, language);
    let served = http::web_config::serve(listener, router, web_config, shutdown.clone()).await;
    crate::notify::stopping();
    shutdown.cancel();
    hangups.abort();
    let _ = scheduler.await;
    alerting.stopped().await;
    state.state.stop().await;
    served.context("HTTP server failed")?;
    tracing::info!("maildrift stopped");
    Ok(())
}

#[cfg(unix)]
async fn reload_on_sighup(state: Arc<AppState>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload through POST /-/reload");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                tracing::info!("SIGHUP received; reloading");
                let _ = state.reload().await;
            }
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_state: Arc<AppState>, shutdown: CancellationToken) {
    shutdown.cancelled().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_domains() {
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").unwrap_err().contains("\"x\""));
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for n in 0..300 {
            let domain = format!("d{n}.example");
            let owners = shards.iter().filter(|s| s.owns(&domain)).count();
            assert_eq!(owners, 1, "{domain}");
        }
        let first = (0..300)
            .filter(|n| shards[0].owns(&format!("d{n}.example")))
            .count();
        assert!((70..130).contains(&first), "unbalanced: {first}/300");
    }

    #[test]
    fn every_domain_has_one_owner_and_growing_moves_only_what_the_new_shard_wins() {
        let domains: Vec<String> = (0..4_000).map(|n| format!("d{n}.example.com")).collect();
        for count in 1..=16u32 {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            for domain in domains.iter().step_by(10) {
                let owners = shards.iter().filter(|s| s.owns(domain)).count();
                assert_eq!(owners, 1, "{domain} with {count} shards");
            }
            let mut per_shard = vec![0usize; count as usize];
            for domain in &domains {
                per_shard[Shard::owner(domain, count) as usize] += 1;
            }
            let even = domains.len() / count as usize;
            for (index, owned) in per_shard.iter().enumerate() {
                assert!(
                    owned.abs_diff(even) * 100 < even * 15,
                    "shard {index}/{count} owns {owned}, {even} expected within 15%"
                );
            }
            // Growing to count + 1: a domain moves only to the new shard, and about
            // 1/(count + 1) of them do.
            let moved: Vec<&String> = domains
                .iter()
                .filter(|d| Shard::owner(d, count) != Shard::owner(d, count + 1))
                .collect();
            assert!(moved.iter().all(|d| Shard::owner(d, count + 1) == count));
            let expected = domains.len() as f64 / f64::from(count + 1);
            let ratio = moved.len() as f64 / expected;
            assert!(
                (0.85..1.15).contains(&ratio),
                "{count} -> {}: {} moved, {expected:.0} expected",
                count + 1,
                moved.len()
            );
        }
    }

    #[test]
    fn auto_takes_the_ordinal_from_the_host_name() {
        let shard = Shard::parse_with_hostname("auto/4", Some("maildrift-3")).unwrap();
        assert_eq!(shard, Shard { index: 3, count: 4 });
        let shard = Shard::parse_with_hostname("auto/12", Some("mail-drift-shard-11")).unwrap();
        assert_eq!(shard.index, 11);
        let error = Shard::parse_with_hostname("auto/3", Some("worker")).unwrap_err();
        assert!(
            error.contains("\"worker\"") && error.contains("-ORDINAL"),
            "{error}"
        );
        assert!(Shard::parse_with_hostname("auto/3", Some("maildrift-3")).is_err());
        assert!(Shard::parse_with_hostname("auto/3", None).is_err());
    }
}
