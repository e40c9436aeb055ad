//! The daemon's Prometheus metrics: one [`Metrics`] owning a non-global registry for
//! daemon-wide series and a compact table of per-domain series updated in place.

mod domains;
mod shared;

pub(crate) use domains::{DomainRow, DomainTable};
pub(crate) use shared::SharedTable;

use crate::checks::{self, GaugeFamily, SharedFamily};
use crate::dns::QueryMetrics;
use crate::finding::CheckKind;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use std::sync::Arc;

/// The Content-Type of the text exposition format; Prometheus 3 refuses a scrape without it.
pub(crate) const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of the daemon.
pub struct Metrics {
    /// Daemon-wide series (counters, histograms, build and config info). Not the global
    /// default registry, so tests can run many daemons in one process.
    pub registry: Registry,
    /// Per-domain series.
    pub domain_table: DomainTable,
    /// Series of objects shared by domains (a zone's serial per nameserver).
    pub shared_table: SharedTable,
    /// The checks that run (each gets the per-check series).
    checks: Vec<CheckKind>,
    /// `metrics.detail` of the config in force.
    detail: std::sync::atomic::AtomicBool,
    /// The per-domain gauge families the checks declare.
    families: Vec<(CheckKind, &'static GaugeFamily)>,
    /// The shared-object families the checks declare.
    shared_families: Vec<&'static SharedFamily>,
    /// Domains watched by this instance.
    pub domains: IntGauge,
    /// Wall time of one scheduler pass (at start-up: all domains).
    pub round_duration: Histogram,
    /// Wall time of one domain's check (all its checks).
    pub domain_check_duration: Histogram,
    /// Domain checks by outcome: `success`, `failure` (some check inconclusive), `timeout`.
    pub domain_checks: IntCounterVec,
    /// Turns a domain skipped because its previous check was still running.
    pub domain_checks_skipped: IntCounter,
    /// 0/1: whether the last config reload succeeded.
    pub reload_successful: IntGauge,
    /// Unix time of the last successful reload.
    pub reload_success_timestamp: Gauge,
    /// DNS query counters shared with the DNS layer.
    pub dns: QueryMetrics,
    /// Native alerts firing, by `alertname`.
    pub alerts_firing: IntGaugeVec,
    /// Delivery attempts to Alertmanagers and webhooks, by `receiver` and `outcome`
    /// (`success`, `failure`, `dropped`: queue full).
    pub notifications: IntCounterVec,
    /// Alert keys whose newest conditions wait for the alerting task (at most one entry
    /// per key, however far behind the task is).
    pub alert_updates_queued: IntGauge,
    /// Alert conditions that a newer one of the same key replaced before the alerting task
    /// applied them: grows while the task is behind.
    pub alert_updates_coalesced: IntCounter,
    /// Tasks alive on the daemon's tokio runtime, read at scrape time: the soak
    /// (`bench/soak.sh`) watches it for leaked tasks.
    pub tokio_alive_tasks: IntGauge,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric registered once");
    collector
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let histogram = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric definition");
    register(registry, histogram)
}

impl Metrics {
    /// Creates and registers every series of the daemon and of the checks of `checks`;
    /// `revision` is the VCS revision, if known.
    pub fn new(version: &str, revision: &str, checks: &checks::Registry) -> Metrics {
        let registry = Registry::new();
        let build_info = GaugeVec::new(
            Opts::new("maildrift_build_info", "Build information; always 1."),
            &["version", "revision"],
        )
        .expect("valid metric definition");
        register(&registry, build_info)
            .with_label_values(&[version, revision])
            .set(1.0);
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...:
        // the standard process metrics every exporter has.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registered once");
        let domains = IntGauge::new(
            "maildrift_domains",
            "Domains watched by this instance (this shard).",
        )
        .expect("valid metric definition");
        let domain_checks = IntCounterVec::new(
            Opts::new(
                "maildrift_domain_checks_total",
                "Domain checks completed, by outcome (success, failure, timeout).",
            ),
            &["outcome"],
        )
        .expect("valid metric definition");
        let domain_checks = register(&registry, domain_checks);
        for outcome in ["success", "failure", "timeout"] {
            domain_checks.with_label_values(&[outcome]);
        }
        let domain_checks_skipped = IntCounter::new(
            "maildrift_domain_checks_skipped_total",
            "Turns a domain skipped because its previous check was still running.",
        )
        .expect("valid metric definition");
        let reload_successful = IntGauge::new(
            "maildrift_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        .expect("valid metric definition");
        let reload_success_timestamp = Gauge::new(
            "maildrift_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration reload.",
        )
        .expect("valid metric definition");
        let dns = QueryMetrics::register(&registry).expect("DNS metrics registered once");
        let alerts_firing = IntGaugeVec::new(
            Opts::new("maildrift_alerts_firing", "Native alerts currently firing."),
            &["alertname"],
        )
        .expect("valid metric definition");
        let notifications = IntCounterVec::new(
            Opts::new(
                "maildrift_notifications_total",
                "Delivery attempts to Alertmanagers and webhooks, by outcome (success, failure, dropped).",
            ),
            &["receiver", "outcome"],
        )
        .expect("valid metric definition");
        let alert_updates_queued = IntGauge::new(
            "maildrift_alert_updates_queued",
            "Alert keys whose newest conditions wait for the alerting task (at most one per key).",
        )
        .expect("valid metric definition");
        let alert_updates_coalesced = IntCounter::new(
            "maildrift_alert_updates_coalesced_total",
            "Alert conditions replaced by a newer one of the same key before the alerting task applied them.",
        )
        .expect("valid metric definition");
        let tokio_alive_tasks = IntGauge::new(
            "maildrift_tokio_alive_tasks",
            "Tasks alive on the tokio runtime at scrape time (spawned and not yet finished).",
        )
        .expect("valid metric definition");
        let seconds = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ];
        Metrics {
            domain_table: DomainTable::default(),
            shared_table: SharedTable::default(),
            checks: checks.kinds().collect(),
            detail: std::sync::atomic::AtomicBool::new(false),
            families: checks.families().collect(),
            shared_families: checks.shared_families().collect(),
            domains: register(&registry, domains),
            round_duration: histogram(
                &registry,
                "maildrift_check_round_duration_seconds",
                "Wall time of one scheduler pass over the domains due together (at start-up: all).",
                seconds.clone(),
            ),
            domain_check_duration: histogram(
                &registry,
                "maildrift_domain_check_duration_seconds",
                "Wall time of all checks of one domain.",
                seconds,
            ),
            domain_checks,
            domain_checks_skipped: register(&registry, domain_checks_skipped),
            reload_successful: register(&registry, reload_successful),
            reload_success_timestamp: register(&registry, reload_success_timestamp),
            dns,
            alerts_firing: register(&registry, alerts_firing),
            notifications: register(&registry, notifications),
            alert_updates_queued: register(&registry, alert_updates_queued),
            alert_updates_coalesced: register(&registry, alert_updates_coalesced),
            tokio_alive_tasks: register(&registry, tokio_alive_tasks),
            registry,
        }
    }

    /// Creates a domain's series (exported as 0 until its first check) and returns them:
    /// those of every check but the ones in `skip` (a skipped check exports nothing).
    pub fn domain_series(&self, domain: &str, skip: &[CheckKind]) -> Arc<DomainRow> {
        let checks: Vec<CheckKind> = self
            .checks
            .iter()
            .copied()
            .filter(|c| !skip.contains(c))
            .collect();
        self.domain_table.insert(domain, &checks)
    }

    /// Removes every series of a domain that left the configuration.
    pub fn remove_domain(&self, domain: &str) {
        self.domain_table.remove(domain);
        self.shared_table.remove_domain(domain);
    }

    /// `metrics.detail`: also the zero-valued and per-record series (SPEC.md's budget of
    /// 25 series per domain holds without it).
    pub fn set_detail(&self, detail: bool) {
        self.detail
            .store(detail, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition of every series, whole (tests, one-shot use).
    pub fn encode(self: &Arc<Self>) -> Vec<u8> {
        self.exposition().collect::<String>().into_bytes()
    }

    /// The text exposition of every series as it is now, in chunks of about
    /// [`Exposition::CHUNK`] bytes: the daemon-wide registry, the per-domain table, the
    /// shared objects. `/metrics` streams them, so a scrape holds one chunk, not the whole
    /// text (~125 MB at 100,000 domains).
    pub fn exposition(self: &Arc<Self>) -> Exposition {
        // Outside a runtime (never in the daemon) the gauge keeps its last value.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let alive = handle.metrics().num_alive_tasks();
            self.tokio_alive_tasks
                .set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
        // Encoding into a String cannot fail for well-formed metric families.
        let head = TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default();
        let detail = self.detail.load(std::sync::atomic::Ordering::Relaxed);
        Exposition {
            head: Some(head),
            table: Some(self.domain_table.scrape(self.families.clone(), detail)),
            metrics: Some(self.clone()),
        }
    }
}

/// A scrape under way: yields the exposition text chunk by chunk (lines never split).
pub struct Exposition {
    /// The daemon-wide registry's text, first.
    head: Option<String>,
    /// The per-domain table, until it is written.
    table: Option<domains::TableScrape>,
    /// For the shared objects, last (then `None`: done).
    metrics: Option<Arc<Metrics>>,
}

impl Exposition {
    /// Bytes per chunk (the last line of a chunk may pass it).
    pub const CHUNK: usize = 256 * 1024;
}

impl Iterator for Exposition {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if let Some(table) = &mut self.table {
            let mut out = String::with_capacity(Self::CHUNK + 4096);
            if table.fill(&mut out, Self::CHUNK) {
                self.table = None;
            }
            if !out.is_empty() {
                return Some(out);
            }
        }
        let metrics = self.metrics.take()?;
        let mut out = String::new();
        metrics
            .shared_table
            .render(&mut out, &metrics.shared_families);
        Some(out)
    }
}
