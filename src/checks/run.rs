//! Runs one domain's checks, for the daemon and the one-shot commands alike: every check of
//! the registry observes concurrently (each within its share of the domain's timeout),
//! then each is evaluated in registry order against its [`Reference`], and drift is judged
//! for all of them in one place ([`super::drift::judge`]).

use super::Registry;
use super::drift;
use super::report::{CheckReport, baseline_values, fingerprint};
use super::seam::{Context, Memory, Observations, Reference};
use crate::config::{DomainConfig, GlobalConfig};
use crate::dns::DnsView;
use crate::finding::{CheckKind, FindingCode};
use crate::kind_map::KindMap;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Each check gets this share of the domain's timeout, so that a check that runs long (a
/// silent server asked over TCP, a slow HTTPS policy host) is unknown on its own while the
/// others still report, before the monitor's deadline for the whole domain.
const CHECK_SHARE_OF_TIMEOUT: f64 = 0.9;

/// What earlier runs left for this one: learned baselines and each check's memory.
#[derive(Clone, Copy, Default)]
pub struct Known<'a> {
    /// Learned baseline per check (checks without a declared expectation); `None` in
    /// one-shot runs, which learn nothing.
    pub baselines: Option<&'a KindMap<Arc<[String]>>>,
    /// What each check remembered from its last conclusive run.
    pub memory: Option<&'a KindMap<Memory>>,
}

/// Everything one pass over a domain's checks produced.
#[derive(Clone, Debug)]
pub struct DomainReport {
    /// The domain.
    pub domain: String,
    /// When the checks finished.
    pub checked_at: SystemTime,
    /// One report per check run, in registry order.
    pub checks: Vec<CheckReport>,
    /// What checks remember for the next run (only those whose run gave a new value).
    pub memory: Vec<(CheckKind, Memory)>,
    /// Per check whose drift was judged against a learned baseline: that baseline's
    /// fingerprint (a baseline accepted meanwhile makes the judgement stale).
    pub judged_against: BTreeMap<CheckKind, u64>,
}

impl DomainReport {
    /// A report with no checks (e.g. for a domain whose checks timed out).
    pub fn empty(domain: &str, checked_at: SystemTime) -> DomainReport {
        DomainReport {
            domain: domain.to_owned(),
            checked_at,
            checks: Vec::new(),
            memory: Vec::new(),
            judged_against: BTreeMap::new(),
        }
    }

    /// Every check `config` runs inconclusive with `error` (the domain ran past its
    /// deadline).
    pub fn timed_out(registry: &Registry, config: &DomainConfig, error: &str) -> DomainReport {
        let mut report = DomainReport::empty(&config.name, SystemTime::now());
        report.checks = registry
            .kinds_for(config)
            .map(|check| CheckReport::inconclusive(check, error))
            .collect();
        report
    }
}

/// `Some(output)` when `future` finished within `limit`.
async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, future).await.ok()
}

/// Runs every check of `registry` on one domain. A check that does not finish within its
/// share of the timeout is inconclusive, and so is every check that needs its observation.
pub async fn run_domain(
    registry: &Registry,
    config: &DomainConfig,
    dns: &DnsView,
    global: &GlobalConfig,
    known: Known<'_>,
) -> DomainReport {
    Run::observe(registry, config, dns, global, known)
        .await
        .evaluate()
}

/// One run of a domain's checks between its two steps: every observation finished (or
/// timed out), nothing evaluated yet.
pub(crate) struct Run<'a> {
    registry: &'a Registry,
    config: &'a DomainConfig,
    dns: &'a DnsView,
    global: &'a GlobalConfig,
    /// Baselines and memory from earlier runs.
    known: Known<'a>,
    observations: Observations,
    /// Each check's share of the domain's timeout.
    limit: Duration,
}

impl<'a> Run<'a> {
    /// Every check of `registry` that the domain runs (or whose observation one of them
    /// reads) observes, concurrently, each within its share of the domain's timeout;
    /// checks may wait for each other's observations.
    pub(crate) async fn observe(
        registry: &'a Registry,
        config: &'a DomainConfig,
        dns: &'a DnsView,
        global: &'a GlobalConfig,
        known: Known<'a>,
    ) -> Run<'a> {
        let observing = registry.observing(config);
        let run = Run {
            registry,
            config,
            dns,
            global,
            known,
            observations: Observations::new(observing.iter().map(|c| c.kind())),
            limit: config.timeout.mul_f64(CHECK_SHARE_OF_TIMEOUT),
        };
        let ctx = run.context();
        let observing = observing.into_iter().map(|check| {
            let ctx = &ctx;
            async move {
                let observed = within(run.limit, check.observe(ctx)).await;
                ctx.observations.finish(check.kind(), observed);
            }
        });
        futures::future::join_all(observing).await;
        run
    }

    /// The context checks read, as of now.
    fn context(&self) -> Context<'_> {
        Context {
            config: self.config,
            dns: self.dns,
            global: self.global,
            observations: &self.observations,
            memory: self.known.memory,
            now: SystemTime::now(),
            cache: self.registry.cache.as_deref(),
        }
    }

    /// The observation of check `C`, when it finished (for tests that look inside).
    #[cfg(test)]
    pub(crate) fn observation<C: super::Check>(&self) -> Option<std::sync::Arc<C::Observation>> {
        self.context().observation::<C>()
    }

    /// Evaluates every check in registry order against its reference and judges drift.
    pub(crate) fn evaluate(&self) -> DomainReport {
        let known = self.known;
        let ctx = self.context();
        let (registry, observations) = (self.registry, &self.observations);
        let domain = self.config.name.as_str();
        let limit = self.limit;
        let mut report = DomainReport::empty(domain, SystemTime::now());
        for check in registry
            .checks()
            .filter(|c| !self.config.skip.contains(&c.kind()))
        {
            let kind = check.kind();
            let unfinished = std::iter::once(kind)
                .chain(check.needs().iter().copied())
                .find(|k| observations.get(*k).is_none());
            if let Some(unfinished) = unfinished {
                let needed = if unfinished == kind {
                    String::new()
                } else {
                    format!(", which the {kind} check needs,")
                };
                report.checks.push(CheckReport::inconclusive(
                    kind,
                    format!(
                        "the {unfinished} check of {domain}{needed} did not finish within {limit:?}"
                    ),
                ));
                continue;
            }
            let observed = observations.get(kind).expect("checked above");
            let declared = check.declared(self.config);
            let reference = match known.baselines.and_then(|b| b.get(&kind)) {
                _ if declared => Reference::Expected,
                Some(baseline) => Reference::Learned(baseline),
                None => Reference::Learning,
            };
            let memory = known.memory.and_then(|m| m.get(&kind));
            let (mut check_report, subject, memory) =
                check.evaluate(&ctx, &observed, reference, memory);
            if check_report.success {
                check_report.findings.extend(drift::judge(
                    kind,
                    reference,
                    subject.as_ref(),
                    &check_report.records,
                ));
                // One-shot runs (no baselines kept) never learn one.
                if matches!(reference, Reference::Learning) && known.baselines.is_some() {
                    check_report.baseline = Some(baseline_values(&check_report.records));
                }
                if let Some(baseline) = reference.learned() {
                    report.judged_against.insert(kind, fingerprint(baseline));
                }
            }
            report.memory.extend(memory.map(|m| (kind, m)));
            report.checks.push(check_report);
        }
        annotate_drift(registry, observations, &mut report.checks);
        report.checked_at = SystemTime::now();
        report
    }
}

/// Lets every check add what it saw to the drift findings of the run.
fn annotate_drift(registry: &Registry, observations: &Observations, reports: &mut [CheckReport]) {
    for report in reports.iter_mut() {
        for drift in report
            .findings
            .iter_mut()
            .filter(|f| f.code == FindingCode::Drift)
        {
            for check in registry.checks() {
                if let Some(observed) = observations.get(check.kind()) {
                    check.annotate_drift(&observed, report.check, drift);
                }
            }
        }
    }
}
