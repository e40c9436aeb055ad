//! What the daemon knows about each watched domain: its view, its latest check results,
//! its learned baselines and what its checks remember. Runs a domain's checks (through the
//! check seam, which judges drift) and applies the [`DomainReport`] to that state, to the
//! metrics, to the observers (timeline, alerting) and to the log (one line per change).

use crate::checks::{
    self, CheckReport, DomainReport, Known, Memory, RecordObservation, Registry, fingerprint,
};
use crate::config::{DomainConfig, GlobalConfig};
use crate::dns::DnsView;
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use crate::kind_map::KindMap;
use crate::metrics::{DomainRow, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::Instrument;

mod baseline;
pub(crate) mod fleet;
mod persist;
mod timeline;

pub(crate) use baseline::{AcceptError, AcceptedBaseline, accept_stored};
pub(crate) use persist::{Persistence, StoredCheckCache};
pub(crate) use timeline::{Timeline, asked};

/// One watched domain and everything known about it.
pub(crate) struct WatchedDomain {
    /// Its configuration (defaults applied).
    pub config: DomainConfig,
    /// How its checks see DNS.
    pub view: DnsView,
    series: Arc<DomainRow>,
    status: Mutex<DomainStatus>,
}

/// The latest state of a domain, as served by the API.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct DomainStatus {
    /// When its checks last completed.
    #[serde(with = "unix_time")]
    pub last_checked: Option<SystemTime>,
    /// Per check.
    pub checks: KindMap<CheckStatus>,
    /// Learned baseline per check without a declared expectation: the first conclusive
    /// observation's normalised records.
    pub baseline: KindMap<Arc<[String]>>,
    /// What each check remembers from its last conclusive run (a DMARC policy, an SPF
    /// address set): the next run compares with it.
    #[serde(skip)]
    pub memory: Remembered,
}

/// Each check's memory, type-erased (only the check reads its own).
#[derive(Clone, Default)]
pub(crate) struct Remembered(KindMap<Memory>);

impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The latest state of one check; also its stored form (`check_states.state_json`), so
/// that a restart knows the open findings. The fleet overview reads `success`, `drift` and
/// `findings[].severity` of that JSON in SQL (`state::CheckSummary`): renaming them breaks
/// it, which `monitor::fleet`'s tests catch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// Whether the last run got conclusive answers.
    pub success: bool,
    /// Whether the last conclusive run found drift.
    pub drift: bool,
    /// Findings of the last conclusive run (kept while DNS fails: unknown is not "fixed").
    pub findings: Box<[Finding]>,
    /// Records of the last conclusive run.
    pub records: Box<[RecordObservation]>,
    /// Why the last run was inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<str>>,
    /// When the last run completed.
    #[serde(with = "unix_time")]
    pub last_checked: Option<SystemTime>,
}

impl CheckStatus {
    /// The state after accepting the current records as the baseline: drift closed.
    pub fn accepted(mut self) -> CheckStatus {
        let mut findings = Vec::from(self.findings);
        findings.retain(|f| f.code != FindingCode::Drift);
        self.findings = findings.into_boxed_slice();
        self.drift = false;
        self
    }
}

/// Times as unix seconds (fractional) in JSON, `null` when unknown.
mod unix_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub(super) fn serialize<S: Serializer>(
        time: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(since_epoch) => serializer.serialize_f64(since_epoch.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let seconds = Option::<f64>::deserialize(deserializer)?;
        Ok(seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| UNIX_EPOCH + Duration::from_secs_f64(s)))
    }
}

impl WatchedDomain {
    /// A domain with fresh series (exported as 0 until its first check).
    pub(crate) fn new(config: DomainConfig, view: DnsView, metrics: &Metrics) -> WatchedDomain {
        let series = metrics.domain_series(&config.name, &config.skip);
        WatchedDomain {
            config,
            view,
            series,
            status: Mutex::new(DomainStatus::default()),
        }
    }

    /// A copy of the latest state.
    pub(crate) fn status(&self) -> DomainStatus {
        self.status.lock().expect("lock poisoned").clone()
    }

    /// Reads the latest state in place (the status page summarises thousands of domains
    /// per request; a copy of each would cost more than the summary).
    pub(crate) fn inspect<T>(&self, read: impl FnOnce(&DomainStatus) -> T) -> T {
        read(&self.status.lock().expect("lock poisoned"))
    }
}

/// One check's result applied to a domain: what it was, what it is now.
pub struct CheckUpdate<'a> {
    /// The domain's configuration (name, labels, expectations).
    pub domain: &'a DomainConfig,
    /// Which check.
    pub check: CheckKind,
    /// The state before this run (`None` on the first run).
    pub previous: Option<&'a CheckStatus>,
    /// The state after this run.
    pub next: &'a CheckStatus,
    /// When the run finished.
    pub at: SystemTime,
}

/// Told about every check result, in order, per domain: the event timeline, persistence and
/// alerting hook in here. Called with the domain's state locked: hand work off (e.g. to a
/// channel), never block or await.
pub(crate) trait MonitorObserver: Send + Sync {
    /// One check of one domain was applied.
    fn check_applied(&self, update: &CheckUpdate<'_>);
}

/// All watched domains of this instance.
pub(crate) struct Monitor {
    metrics: Arc<Metrics>,
    /// The checks every domain runs (kept for the daemon's life: some keep state).
    checks: Arc<Registry>,
    /// Daemon-wide settings of the current config.
    global: RwLock<GlobalConfig>,
    domains: RwLock<BTreeMap<String, Arc<WatchedDomain>>>,
    observers: Vec<Arc<dyn MonitorObserver>>,
    persistence: Option<Persistence>,
    /// Every shard's domains, for the views of the whole fleet.
    roster: RwLock<Arc<fleet::Roster>>,
}

impl Monitor {
    /// An empty monitor running `checks`.
    pub(crate) fn new(metrics: Arc<Metrics>, checks: Arc<Registry>) -> Monitor {
        Monitor {
            metrics,
            checks,
            global: RwLock::new(GlobalConfig::default()),
            domains: RwLock::new(BTreeMap::new()),
            observers: Vec::new(),
            persistence: None,
            roster: RwLock::default(),
        }
    }

    /// Persists learned baselines, and seeds newly watched domains with what the store
    /// remembers (baselines, last known check states: open incidents survive restarts).
    pub(crate) fn with_persistence(mut self, persistence: Persistence) -> Monitor {
        self.persistence = Some(persistence);
        self
    }

    /// Adds an observer of every check result.
    pub(crate) fn with_observer(mut self, observer: Arc<dyn MonitorObserver>) -> Monitor {
        self.observers.push(observer);
        self
    }

    /// The checks every domain runs, in report order.
    pub(crate) fn checks(&self) -> &Registry {
        &self.checks
    }

    /// The domain called `name`, if watched.
    pub(crate) fn domain(&self, name: &str) -> Option<Arc<WatchedDomain>> {
        self.domains
            .read()
            .expect("lock poisoned")
            .get(name)
            .cloned()
    }

    /// Every watched domain, by name.
    pub(crate) fn domains(&self) -> Vec<Arc<WatchedDomain>> {
        self.domains
            .read()
            .expect("lock poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// The configured domains of the whole fleet (every shard's).
    pub(crate) fn roster(&self) -> Arc<fleet::Roster> {
        self.roster.read().expect("lock poisoned").clone()
    }

    /// Replaces the roster (built from the whole config, before sharding).
    pub(crate) fn set_roster(&self, roster: fleet::Roster) {
        *self.roster.write().expect("lock poisoned") = Arc::new(roster);
    }

    /// Replaces the watched set and the daemon-wide settings. Domains whose config is
    /// unchanged keep their state; removed domains lose their series.
    pub(crate) fn replace(&self, wanted: Vec<(DomainConfig, DnsView)>, global: GlobalConfig) {
        *self.global.write().expect("lock poisoned") = global;
        let mut domains = self.domains.write().expect("lock poisoned");
        let mut next = BTreeMap::new();
        for (config, view) in wanted {
            let domain = match domains.remove(&config.name) {
                Some(old) if same_config(&old.config, &config) => old,
                Some(old) if old.config.skip == config.skip => {
                    // Same name, so the same series; the state survives only when what is
                    // observed and what it is compared with stay the same.
                    let status = if same_observation(&old.config, &config) {
                        old.status()
                    } else {
                        DomainStatus::default()
                    };
                    Arc::new(WatchedDomain {
                        config,
                        view,
                        series: old.series.clone(),
                        status: Mutex::new(status),
                    })
                }
                // Other checks skipped: other series; what is known starts over from the
                // store.
                Some(_) => {
                    self.metrics.remove_domain(&config.name);
                    Arc::new(self.watch(config, view))
                }
                None => Arc::new(self.watch(config, view)),
            };
            next.insert(domain.config.name.clone(), domain);
        }
        for (name, removed) in std::mem::take(&mut *domains) {
            tracing::info!(domain = %name, "domain no longer watched; series removed");
            self.metrics.remove_domain(&removed.config.name);
        }
        self.metrics.domains.set(next.len() as i64);
        *domains = next;
    }

    /// A newly watched domain: fresh series, seeded with what the store remembers of the
    /// checks it runs.
    fn watch(&self, config: DomainConfig, view: DnsView) -> WatchedDomain {
        let domain = WatchedDomain::new(config, view, &self.metrics);
        if let Some(persistence) = &self.persistence {
            let mut known = persistence.load(&domain.config.name);
            known
                .checks
                .retain(|check, _| !domain.config.skip.contains(check));
            for (check, status) in &known.checks {
                export_check(&domain.series, *check, status);
            }
            *domain.status.lock().expect("lock poisoned") = known;
        }
        domain
    }

    /// Runs every check of `name` within its timeout and applies the result. Returns false
    /// when the domain is not (or no longer) watched.
    pub(crate) async fn check(&self, name: &str) -> bool {
        let Some(domain) = self.domain(name) else {
            return false;
        };
        let started = tokio::time::Instant::now();
        let (baselines, memory) = {
            let status = domain.status.lock().expect("lock poisoned");
            (status.baseline.clone(), status.memory.0.clone())
        };
        let global = self.global.read().expect("lock poisoned").clone();
        let known = Known {
            baselines: Some(&baselines),
            memory: Some(&memory),
        };
        let run = checks::run_domain(&self.checks, &domain.config, &domain.view, &global, known)
            .instrument(tracing::debug_span!("check", domain = %name));
        let timeout = domain.config.timeout;
        let report = match tokio::time::timeout(timeout, run).await {
            Ok(report) => {
                let outcome = if report.checks.iter().all(|c| c.success) {
                    "success"
                } else {
                    "failure"
                };
                self.metrics
                    .domain_checks
                    .with_label_values(&[outcome])
                    .inc();
                report
            }
            Err(_) => {
                self.metrics
                    .domain_checks
                    .with_label_values(&["timeout"])
                    .inc();
                let error = format!("checks of {name} did not finish within {timeout:?}");
                DomainReport::timed_out(&self.checks, &domain.config, &error)
            }
        };
        self.metrics
            .domain_check_duration
            .observe(started.elapsed().as_secs_f64());
        self.apply(&domain, report);
        true
    }

    /// Applies one report: learned baselines, state, metrics, observers, state-change logs.
    fn apply(&self, domain: &WatchedDomain, report: DomainReport) {
        let mut status = domain.status.lock().expect("lock poisoned");
        let series = &domain.series;
        status.last_checked = Some(report.checked_at);
        for mut check in report.checks {
            let kind = check.check;
            // A baseline accepted while this run was under way makes its drift stale: the
            // accept closed it, the next run judges against the new baseline.
            if let Some(judged) = report.judged_against.get(&kind)
                && status.baseline.get(&kind).map(|b| fingerprint(b)) != Some(*judged)
            {
                check.findings.retain(|f| f.code != FindingCode::Drift);
            }
            if let Some(values) = check.baseline.take()
                && !status.baseline.contains_key(&kind)
            {
                self.learn(&domain.config, kind, &values, report.checked_at);
                status.baseline.insert(kind, values.into());
            }
            if check.success {
                for record in &check.records {
                    series.set_record(
                        record.record.clone(),
                        fingerprint(&record.values),
                        record.ttl,
                    );
                }
                series.set_gauges(&check.gauges);
                let families = self.checks.shared_families_of(kind);
                self.metrics
                    .shared_table
                    .set(&report.domain, families, &check.shared);
            }
            // The report's findings and records move into the state (no copy per run).
            let next = next_status(status.checks.get(&kind), check, report.checked_at);
            let previous = status.checks.insert(kind, next);
            let next = &status.checks[&kind];
            log_transition(&report.domain, kind, previous.as_ref(), next);
            let update = CheckUpdate {
                domain: &domain.config,
                check: kind,
                previous: previous.as_ref(),
                next,
                at: report.checked_at,
            };
            for observer in &self.observers {
                observer.check_applied(&update);
            }
            export_check(series, kind, next);
        }
        for (kind, memory) in report.memory {
            status.memory.0.insert(kind, memory);
        }
    }

    /// Records a newly learned baseline (log, store, timeline).
    fn learn(&self, config: &DomainConfig, check: CheckKind, values: &[String], at: SystemTime) {
        tracing::info!(domain = %config.name, check = %check, records = ?values, "baseline learned");
        if let Some(persistence) = &self.persistence {
            persistence.baseline(
                &config.name,
                check,
                values,
                at,
                crate::state::EventKind::BaselineLearned,
                Some(timeline::asked(config)),
            );
        }
    }
}

/// Sets a check's per-domain series from its state.
fn export_check(series: &DomainRow, kind: CheckKind, next: &CheckStatus) {
    if let Some(handles) = series.check(kind) {
        handles.success.set(f64::from(u8::from(next.success)));
        handles.drift.set(f64::from(u8::from(next.drift)));
        let timestamp = next
            .last_checked
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        handles.last_check.set(timestamp);
        for (gauge, severity) in handles.findings.iter().zip(Severity::ALL) {
            let open = next.findings.iter().filter(|f| f.severity == severity);
            gauge.set(open.count() as f64);
        }
    }
}

/// Whether a reload changes nothing about a domain.
fn same_config(old: &DomainConfig, new: &DomainConfig) -> bool {
    same_observation(old, new)
        && old.timeout == new.timeout
        && old.interval == new.interval
        && old.labels == new.labels
        && old.analysis == new.analysis
        && old.skip == new.skip
}

/// Whether a reload keeps what is observed and what it is compared with (then the learned
/// baseline and open findings carry over).
fn same_observation(old: &DomainConfig, new: &DomainConfig) -> bool {
    old.expect == new.expect
        && old.resolvers == new.resolvers
        && old.nameservers == new.nameservers
        && old.authoritative == new.authoritative
        && old.provider == new.provider
}

/// The state after a run: a conclusive run replaces findings; an inconclusive one keeps
/// the last known findings and drift (a DNS failure is "unknown", never drift or recovery).
fn next_status(previous: Option<&CheckStatus>, check: CheckReport, at: SystemTime) -> CheckStatus {
    if check.success {
        CheckStatus {
            success: true,
            drift: check.findings.iter().any(|f| f.code == FindingCode::Drift),
            findings: check.findings.into_boxed_slice(),
            records: check.records.into_boxed_slice(),
            error: None,
            last_checked: Some(at),
        }
    } else {
        CheckStatus {
            success: false,
            drift: previous.is_some_and(|p| p.drift),
            findings: previous.map(|p| p.findings.clone()).unwrap_or_default(),
            records: previous.map(|p| p.records.clone()).unwrap_or_default(),
            error: check.error.map(String::into_boxed_str),
            last_checked: Some(at),
        }
    }
}

fn codes(status: Option<&CheckStatus>) -> Vec<FindingCode> {
    let mut codes: Vec<FindingCode> = status
        .map(|s| s.findings.iter().map(|f| f.code).collect())
        .unwrap_or_default();
    codes.sort();
    codes.dedup();
    codes
}

/// One log line per state change, not per check.
fn log_transition(
    domain: &str,
    check: CheckKind,
    previous: Option<&CheckStatus>,
    next: &CheckStatus,
) {
    let was_success = previous.is_none_or(|p| p.success);
    if was_success && !next.success {
        tracing::warn!(domain, check = %check, error = next.error.as_deref().unwrap_or(""), "check inconclusive: DNS did not answer");
    } else if !was_success && next.success {
        tracing::info!(domain, check = %check, "check conclusive again");
    }
    if !next.success {
        return;
    }
    let was_drift = previous.is_some_and(|p| p.drift);
    if next.drift && !was_drift {
        let evidence = next
            .findings
            .iter()
            .find(|f| f.code == FindingCode::Drift)
            .map(|f| f.evidence.to_string())
            .unwrap_or_default();
        tracing::warn!(domain, check = %check, %evidence, "drift detected");
    } else if was_drift && !next.drift {
        tracing::info!(domain, check = %check, "drift cleared");
    }
    let (before, after) = (codes(previous), codes(Some(next)));
    if before != after {
        let opened: Vec<&str> = after
            .iter()
            .filter(|c| !before.contains(c))
            .map(|c| c.as_str())
            .collect();
        let resolved: Vec<&str> = before
            .iter()
            .filter(|c| !after.contains(c))
            .map(|c| c.as_str())
            .collect();
        tracing::info!(domain, check = %check, ?opened, ?resolved, "findings changed");
    }
}

#[cfg(test)]
mod tests;
