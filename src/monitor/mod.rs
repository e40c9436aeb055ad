//! What the daemon knows about each watched domain: its view, its latest check results,
//! its learned baseline. Applies each [`DomainReport`] to that state, to the metrics, and to
//! the log (one line per state change).

use crate::checks::nameservers::annotate_drift;
use crate::checks::{CheckReport, PreviousState, RecordObservation, spf::SpfLimits};
use crate::config::DomainConfig;
use crate::dns::DnsView;
use crate::drift;
use crate::engine::{self, DomainReport};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use crate::metrics::{DomainRow, Metrics, fingerprint};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

mod baseline;
mod persist;
mod timeline;

pub use baseline::{AcceptError, AcceptedBaseline, accept_stored};
pub use persist::{PersistedCheck, PersistedRecords, Persistence};
pub use timeline::{Timeline, asked};

/// One watched domain and everything known about it.
pub struct WatchedDomain {
    /// Its configuration (defaults applied).
    pub config: DomainConfig,
    /// How its checks see DNS.
    pub view: DnsView,
    series: Arc<DomainRow>,
    status: Mutex<DomainStatus>,
}

/// The latest state of a domain, as served by the API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DomainStatus {
    /// When its checks last completed.
    #[serde(serialize_with = "serialize_time")]
    pub last_checked: Option<SystemTime>,
    /// Per check.
    pub checks: BTreeMap<CheckKind, CheckStatus>,
    /// Learned baseline per check without a declared expectation: the first conclusive
    /// observation's normalised records.
    pub baseline: BTreeMap<CheckKind, Vec<String>>,
    /// What the checks remember from earlier conclusive runs (last known value of each).
    #[serde(skip)]
    pub remembered: PreviousState,
}

/// The latest state of one check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckStatus {
    /// Whether the last run got conclusive answers.
    pub success: bool,
    /// Whether the last conclusive run found drift.
    pub drift: bool,
    /// Findings of the last conclusive run (kept while DNS fails: unknown is not "fixed").
    pub findings: Vec<Finding>,
    /// Records of the last conclusive run.
    pub records: Vec<RecordObservation>,
    /// Why the last run was inconclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last run completed.
    #[serde(serialize_with = "serialize_time")]
    pub last_checked: Option<SystemTime>,
}

fn serialize_time<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        Some(since_epoch) => serializer.serialize_f64(since_epoch.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

impl WatchedDomain {
    /// A domain with fresh series (exported as 0 until its first check).
    pub fn new(config: DomainConfig, view: DnsView, metrics: &Metrics) -> WatchedDomain {
        let series = metrics.domain_series(&config.name);
        WatchedDomain {
            config,
            view,
            series,
            status: Mutex::new(DomainStatus::default()),
        }
    }

    /// A copy of the latest state.
    pub fn status(&self) -> DomainStatus {
        self.status.lock().expect("lock poisoned").clone()
    }

    /// What the next run compares with: the last known values, except the DMARC policy,
    /// which comes from the learned baseline when there is one (so a weakened policy stays
    /// reported until the baseline is accepted anew).
    pub fn previous_state(&self) -> PreviousState {
        let status = self.status.lock().expect("lock poisoned");
        let mut previous = status.remembered.clone();
        if let Some(baseline) = status.baseline.get(&CheckKind::Dmarc) {
            previous.dmarc_policy = crate::checks::dmarc::policy_of(baseline);
        }
        previous
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
pub trait MonitorObserver: Send + Sync {
    /// One check of one domain was applied.
    fn check_applied(&self, update: &CheckUpdate<'_>);
}

/// All watched domains of this instance.
pub struct Monitor {
    metrics: Arc<Metrics>,
    domains: RwLock<BTreeMap<String, Arc<WatchedDomain>>>,
    spf_limits: SpfLimits,
    observers: Vec<Arc<dyn MonitorObserver>>,
    persistence: Option<Persistence>,
}

impl Monitor {
    /// An empty monitor.
    pub fn new(metrics: Arc<Metrics>) -> Monitor {
        Monitor {
            metrics,
            domains: RwLock::new(BTreeMap::new()),
            spf_limits: SpfLimits::default(),
            observers: Vec::new(),
            persistence: None,
        }
    }

    /// Persists learned baselines, and seeds newly watched domains with what the store
    /// remembers (baselines, last known check states: open incidents survive restarts).
    pub fn with_persistence(mut self, persistence: Persistence) -> Monitor {
        self.persistence = Some(persistence);
        self
    }

    /// Adds an observer of every check result.
    pub fn with_observer(mut self, observer: Arc<dyn MonitorObserver>) -> Monitor {
        self.observers.push(observer);
        self
    }

    /// The domain called `name`, if watched.
    pub fn domain(&self, name: &str) -> Option<Arc<WatchedDomain>> {
        self.domains
            .read()
            .expect("lock poisoned")
            .get(name)
            .cloned()
    }

    /// Every watched domain, by name.
    pub fn domains(&self) -> Vec<Arc<WatchedDomain>> {
        self.domains
            .read()
            .expect("lock poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Replaces the watched set. Domains whose config is unchanged keep their state; removed
    /// domains lose their series.
    pub fn replace(&self, wanted: Vec<(DomainConfig, DnsView)>) {
        let mut domains = self.domains.write().expect("lock poisoned");
        let mut next = BTreeMap::new();
        for (config, view) in wanted {
            let domain = match domains.remove(&config.name) {
                Some(old) if same_config(&old.config, &config) => old,
                Some(old) => {
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
                None => {
                    let domain = WatchedDomain::new(config, view, &self.metrics);
                    if let Some(persistence) = &self.persistence {
                        let known = persistence.load(&domain.config.name);
                        for (check, status) in &known.checks {
                            export_check(&domain.series, *check, status);
                        }
                        *domain.status.lock().expect("lock poisoned") = known;
                    }
                    Arc::new(domain)
                }
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

    /// Runs every check of `name` within its timeout and applies the result. Returns false
    /// when the domain is not (or no longer) watched.
    pub async fn check(&self, name: &str) -> bool {
        let Some(domain) = self.domain(name) else {
            return false;
        };
        let started = tokio::time::Instant::now();
        let previous = domain.previous_state();
        let run = engine::check_domain(&domain.config, &domain.view, &self.spf_limits, &previous)
            .instrument(tracing::debug_span!("check", domain = %name));
        let report = match tokio::time::timeout(domain.config.timeout, run).await {
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
                timed_out(&domain.config, domain.config.timeout)
            }
        };
        self.metrics
            .domain_check_duration
            .observe(started.elapsed().as_secs_f64());
        self.apply(&domain, report);
        true
    }

    /// Applies one report: learned-baseline drift, state, metrics, state-change logs.
    pub fn apply(&self, domain: &WatchedDomain, report: DomainReport) {
        let mut status = domain.status.lock().expect("lock poisoned");
        let series = &domain.series;
        status.last_checked = Some(report.checked_at);
        for mut check in report.checks {
            let kind = check.check;
            if check.success && !has_expectation(&domain.config, kind) {
                let observed = baseline_values(&check.records);
                match status.baseline.get(&kind) {
                    None => {
                        tracing::info!(domain = %report.domain, check = %kind, records = ?observed, "baseline learned");
                        if let Some(persistence) = &self.persistence {
                            persistence.baseline(
                                &report.domain,
                                kind,
                                &observed,
                                report.checked_at,
                                crate::state::EventKind::BaselineLearned,
                                Some(timeline::asked(&domain.config)),
                            );
                        }
                        status.baseline.insert(kind, observed);
                    }
                    Some(baseline) => {
                        if let Some(finding) = drift::compare(kind, baseline, &observed) {
                            check.findings.push(finding);
                            if let Some(summary) = &report.authority {
                                annotate_drift(std::slice::from_mut(&mut check), summary);
                            }
                        }
                    }
                }
            }
            let previous = status.checks.get(&kind).cloned();
            let next = next_status(previous.as_ref(), &check, report.checked_at);
            log_transition(&report.domain, kind, previous.as_ref(), &next);
            let update = CheckUpdate {
                domain: &domain.config,
                check: kind,
                previous: previous.as_ref(),
                next: &next,
                at: report.checked_at,
            };
            for observer in &self.observers {
                observer.check_applied(&update);
            }
            export_check(series, kind, &next);
            if check.success {
                for record in &check.records {
                    series.set_record(record.record, fingerprint(&record.values), record.ttl);
                }
            }
            status.checks.insert(kind, next);
        }
        if let Some(count) = report.mx_records {
            series.mx_records.set(count as f64);
        }
        if let Some(count) = report.spf_dns_lookups {
            series.spf_lookups.set(f64::from(count));
        }
        if let Some(count) = report.spf_void_lookups {
            series.spf_void_lookups.set(f64::from(count));
        }
        if let Some(summary) = &report.authority {
            series.set_authority(summary);
            self.metrics
                .zone_table
                .set(&summary.zone, &report.domain, &summary.serials);
        }
        if let Some(hash) = report.spf_ipset_fingerprint {
            series.spf_ipset_fingerprint.set(hash as f64);
        }
        if let Some(policy) = report.dmarc_policy {
            series.set_dmarc_policy(policy);
        }
        if let Some(keys) = &report.dkim_key_bits {
            series.set_dkim_keys(keys);
        }
        status.remembered = status.remembered.merged(&report.state);
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

fn has_expectation(config: &DomainConfig, check: CheckKind) -> bool {
    match check {
        CheckKind::Mx => config.expect.mx.is_some(),
        CheckKind::Spf => config.expect.spf.is_some(),
        CheckKind::Dmarc => config.expect.dmarc.is_some(),
        CheckKind::Dkim => config.expect.dkim.is_some(),
        _ => false,
    }
}

/// The values a learned baseline compares: every record set of the check, prefixed by its
/// name when a check observes several.
fn baseline_values(records: &[RecordObservation]) -> Vec<String> {
    if let [single] = records {
        return single.values.clone();
    }
    records
        .iter()
        .flat_map(|r| r.values.iter().map(move |v| format!("{}: {v}", r.record)))
        .collect()
}

/// The state after a run: a conclusive run replaces findings; an inconclusive one keeps
/// the last known findings and drift (a DNS failure is "unknown", never drift or recovery).
fn next_status(previous: Option<&CheckStatus>, check: &CheckReport, at: SystemTime) -> CheckStatus {
    if check.success {
        CheckStatus {
            success: true,
            drift: check.findings.iter().any(|f| f.code == FindingCode::Drift),
            findings: check.findings.clone(),
            records: check.records.clone(),
            error: None,
            last_checked: Some(at),
        }
    } else {
        CheckStatus {
            success: false,
            drift: previous.is_some_and(|p| p.drift),
            findings: previous.map(|p| p.findings.clone()).unwrap_or_default(),
            records: previous.map(|p| p.records.clone()).unwrap_or_default(),
            error: check.error.clone(),
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

/// The report of a domain whose checks ran past their deadline: every check inconclusive.
fn timed_out(config: &DomainConfig, timeout: Duration) -> DomainReport {
    let error = format!(
        "checks of {} did not finish within {timeout:?}",
        config.name
    );
    let mut report = DomainReport::empty(&config.name, SystemTime::now());
    report.checks = crate::metrics::ACTIVE_CHECKS
        .iter()
        .map(|&check| CheckReport::inconclusive(check, &error))
        .collect();
    report
}

#[cfg(test)]
mod tests;
