//! The one seam every check implements: [`Check`] (observe with the domain's [`DnsView`],
//! evaluate against a [`Reference`]), the [`Context`] a check reads, and the observations of
//! the other checks of the same run.

use super::gauge::{FamilyValues, GaugeFamily, SharedFamily, SharedValues};
use super::report::{CheckReport, RecordObservation};
use crate::config::{DomainConfig, GlobalConfig};
use crate::dns::DnsView;
use crate::finding::{CheckKind, Finding, Severity};
use futures::future::BoxFuture;
use std::any::Any;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

/// What a check remembers between runs, type-erased (each check downcasts its own).
pub type Memory = Arc<dyn Any + Send + Sync>;

/// One mail-DNS check. A new check is one module implementing this trait, one line in the
/// registry ([`super::Registry::standard`]), its [`CheckKind`] and finding codes.
pub trait Check: Send + Sync + 'static {
    /// Which check (the `check` label).
    const KIND: CheckKind;

    /// What [`Check::observe`] gathers; other checks of the run may read it.
    type Observation: Send + Sync + 'static;

    /// What the next run compares with (a DMARC policy, an SPF address set); `()` when the
    /// check remembers nothing.
    type Memory: Send + Sync + 'static;

    /// Checks whose observations this one reads: it is inconclusive when one of them did
    /// not finish.
    const NEEDS: &'static [CheckKind] = &[];

    /// The per-domain gauge families this check exports (besides the per-check series
    /// every check has).
    const FAMILIES: &'static [&'static GaugeFamily] = &[];

    /// The families of series keyed by a shared object (a zone) this check exports.
    const SHARED_FAMILIES: &'static [&'static SharedFamily] = &[];

    /// Whether the config declares what this check must see; drift then compares with the
    /// declaration, else with the learned baseline.
    fn declared(&self, _config: &DomainConfig) -> bool {
        false
    }

    /// Asks DNS (or other services) for what the check needs. Never fails: a DNS failure
    /// is part of the observation, which then evaluates as inconclusive.
    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, Self::Observation>;

    /// Judges the observation. Pure: no I/O. Drift is not a finding here: the check says
    /// what to compare ([`Evaluation::declared`], or its records) and the seam compares.
    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &Self::Observation,
        input: Input<'_, Self::Memory>,
    ) -> Evaluation<Self::Memory>;

    /// Adds what this check saw to another check's drift finding (the nameservers check
    /// says which resolvers still serve the old records). Nothing by default.
    fn annotate_drift(
        &self,
        _observation: &Self::Observation,
        _check: CheckKind,
        _drift: &mut Finding,
    ) {
    }
}

/// What a check is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference<'a> {
    /// The config declares what the check must see ([`Check::declared`]).
    Expected,
    /// Nothing declared: the baseline learned from an earlier conclusive run.
    Learned(&'a [String]),
    /// Nothing declared, nothing learned yet: this run's records become the baseline.
    Learning,
}

impl Reference<'_> {
    /// The learned baseline, when there is one.
    pub fn learned(&self) -> Option<&[String]> {
        match self {
            Reference::Learned(values) => Some(values),
            _ => None,
        }
    }
}

/// What [`Check::evaluate`] gets besides the observation.
pub struct Input<'a, M> {
    /// What the run compares with.
    pub reference: Reference<'a>,
    /// What the last conclusive run remembered (`None` on the first run).
    pub memory: Option<&'a M>,
}

/// Under [`Reference::Expected`]: the keys the declaration names and the same keys as
/// observed; drift compares them as sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    /// What the config says, e.g. `["mx1.example.com"]` or `["p=reject"]`.
    pub expected: Vec<String>,
    /// What was seen of it.
    pub observed: Vec<String>,
    /// The drift finding's severity (a stricter DMARC policy than declared is a warning).
    pub severity: Severity,
    /// More evidence for the drift finding (e.g. the whole record).
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

impl Declared {
    /// Critical drift when `observed` differs from `expected`.
    pub fn new(expected: Vec<String>, observed: Vec<String>) -> Declared {
        Declared {
            expected,
            observed,
            severity: Severity::Critical,
            evidence: serde_json::Map::new(),
        }
    }

    /// With another piece of evidence.
    pub fn with(mut self, key: &str, value: impl serde::Serialize) -> Declared {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.evidence.insert(key.to_owned(), value);
        self
    }
}

/// The outcome of evaluating one observation.
#[derive(Debug)]
pub struct Evaluation<M> {
    /// True when every lookup the check needed got a conclusive answer.
    pub success: bool,
    /// Why the observation was inconclusive (DNS did not answer), when `success` is false.
    pub error: Option<String>,
    /// The record sets seen (for fingerprints, TTLs, baselines and reports).
    pub records: Vec<RecordObservation>,
    /// Findings, never `drift` (the seam adds it).
    pub findings: Vec<Finding>,
    /// What a declared expectation is compared with; `None`: nothing to compare this run
    /// (no declaration, or a record too broken to compare).
    pub declared: Option<Declared>,
    /// Gauge families this run knows; families left out keep their last value.
    pub gauges: Vec<FamilyValues>,
    /// Series of shared objects (a zone's serials) this run knows.
    pub shared: Vec<SharedValues>,
    /// What the next run compares with; `None` keeps the last remembered value.
    pub memory: Option<M>,
}

impl<M> Evaluation<M> {
    /// A conclusive evaluation with these records and findings.
    pub fn conclusive(records: Vec<RecordObservation>, findings: Vec<Finding>) -> Evaluation<M> {
        Evaluation {
            success: true,
            error: None,
            records,
            findings,
            declared: None,
            gauges: Vec::new(),
            shared: Vec::new(),
            memory: None,
        }
    }

    /// An inconclusive evaluation: DNS (or the service asked) did not answer.
    pub fn inconclusive(error: impl std::fmt::Display) -> Evaluation<M> {
        Evaluation {
            success: false,
            error: Some(error.to_string()),
            ..Evaluation::conclusive(Vec::new(), Vec::new())
        }
    }

    /// With the subject of a declared expectation.
    pub fn with_declared(mut self, declared: Option<Declared>) -> Evaluation<M> {
        self.declared = declared;
        self
    }

    /// With one more gauge family.
    pub fn with_gauge(mut self, values: FamilyValues) -> Evaluation<M> {
        self.gauges.push(values);
        self
    }

    /// With what the next run compares with.
    pub fn with_memory(mut self, memory: Option<M>) -> Evaluation<M> {
        self.memory = memory;
        self
    }
}

/// What a check may read: the domain's configuration, how it sees DNS, the daemon-wide
/// settings, and the observations of the other checks of this run.
pub struct Context<'a> {
    /// The domain, defaults applied: its name, expectations and analysis settings.
    pub config: &'a DomainConfig,
    /// How the domain's DNS is seen.
    pub dns: &'a DnsView,
    /// Daemon-wide settings.
    pub global: &'a GlobalConfig,
    /// The observations of this run, by check.
    pub(super) observations: &'a Observations,
    /// What each check remembered from its last conclusive run.
    pub(super) memory: Option<&'a crate::kind_map::KindMap<Memory>>,
    /// When evaluation happens (validity windows, expiry).
    pub(super) now: SystemTime,
    /// What checks keep across restarts, when the daemon has a state store.
    pub(super) cache: Option<&'a dyn super::CheckCache>,
}

impl Context<'_> {
    /// The domain's name (normalised).
    pub fn domain(&self) -> &str {
        &self.config.name
    }

    /// The time evaluation judges validity against (signature and certificate windows).
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// What check `C` remembered from its last conclusive run (`None` on the first run).
    /// Observing may depend on it: a policy cached by its id, when the resolvers were last
    /// compared.
    pub fn remembered<C: Check>(&self) -> Option<&C::Memory> {
        self.memory?.get(&C::KIND)?.downcast_ref()
    }

    /// The store of values kept across restarts (`None` without a state store): for
    /// answers a check asks rarely and must not ask again after a restart.
    pub fn cache(&self) -> Option<&dyn super::CheckCache> {
        self.cache
    }

    /// Waits for the observation of check `C` in this run (`None` when it did not finish
    /// or is not run). For checks whose observation builds on another's (the MX hosts).
    pub async fn observed<C: Check>(&self) -> Option<Arc<C::Observation>> {
        self.observations.wait(C::KIND).await?.downcast().ok()
    }

    /// The finished observation of check `C` (during evaluation every observation is
    /// finished; `None` when it timed out or is not run).
    pub fn observation<C: Check>(&self) -> Option<Arc<C::Observation>> {
        self.observations.get(C::KIND)?.downcast().ok()
    }
}

/// A finished observation, type-erased.
pub(super) type Observed = Arc<dyn Any + Send + Sync>;

/// One check's observation slot: pending until the check's observe finishes or times out.
#[derive(Clone)]
enum Slot {
    /// Still observing.
    Pending,
    /// Finished (`None`: timed out).
    Done(Option<Observed>),
}

/// The observations of one run, filled as the checks finish; checks may wait for others.
pub(super) struct Observations {
    /// One slot per check run, in registry order.
    slots: Vec<(CheckKind, watch::Sender<Slot>)>,
}

impl Observations {
    /// Empty slots for `kinds`.
    pub(super) fn new(kinds: impl IntoIterator<Item = CheckKind>) -> Observations {
        Observations {
            slots: kinds
                .into_iter()
                .map(|kind| (kind, watch::Sender::new(Slot::Pending)))
                .collect(),
        }
    }

    fn slot(&self, kind: CheckKind) -> Option<&watch::Sender<Slot>> {
        self.slots.iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
    }

    /// Fills `kind`'s slot (`None`: it timed out).
    pub(super) fn finish(&self, kind: CheckKind, observed: Option<Observed>) {
        if let Some(slot) = self.slot(kind) {
            slot.send_replace(Slot::Done(observed));
        }
    }

    /// The finished observation of `kind`, if any.
    pub(super) fn get(&self, kind: CheckKind) -> Option<Observed> {
        match &*self.slot(kind)?.borrow() {
            Slot::Done(observed) => observed.clone(),
            Slot::Pending => None,
        }
    }

    /// Waits until `kind` finished.
    async fn wait(&self, kind: CheckKind) -> Option<Observed> {
        let mut receiver = self.slot(kind)?.subscribe();
        let done = receiver
            .wait_for(|slot| matches!(slot, Slot::Done(_)))
            .await
            .ok()?;
        match &*done {
            Slot::Done(observed) => observed.clone(),
            Slot::Pending => None,
        }
    }
}

/// [`Check`] with its types erased, so that the registry can hold every check.
pub(super) trait DynCheck: Send + Sync {
    /// [`Check::KIND`].
    fn kind(&self) -> CheckKind;
    /// [`Check::NEEDS`].
    fn needs(&self) -> &'static [CheckKind];
    /// [`Check::FAMILIES`].
    fn families(&self) -> &'static [&'static GaugeFamily];
    /// [`Check::SHARED_FAMILIES`].
    fn shared_families(&self) -> &'static [&'static SharedFamily];
    /// [`Check::declared`].
    fn declared(&self, config: &DomainConfig) -> bool;
    /// [`Check::observe`], boxed.
    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, Observed>;
    /// [`Check::evaluate`] on an observation of this check, memory downcast.
    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &Observed,
        reference: Reference<'_>,
        memory: Option<&Memory>,
    ) -> (CheckReport, Option<Declared>, Option<Memory>);
    /// [`Check::annotate_drift`].
    fn annotate_drift(&self, observation: &Observed, check: CheckKind, drift: &mut Finding);
}

impl<C: Check> DynCheck for C {
    fn kind(&self) -> CheckKind {
        C::KIND
    }

    fn needs(&self) -> &'static [CheckKind] {
        C::NEEDS
    }

    fn families(&self) -> &'static [&'static GaugeFamily] {
        C::FAMILIES
    }

    fn shared_families(&self) -> &'static [&'static SharedFamily] {
        C::SHARED_FAMILIES
    }

    fn declared(&self, config: &DomainConfig) -> bool {
        Check::declared(self, config)
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, Observed> {
        Box::pin(async move {
            let observation = Check::observe(self, ctx).await;
            Arc::new(observation) as Observed
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &Observed,
        reference: Reference<'_>,
        memory: Option<&Memory>,
    ) -> (CheckReport, Option<Declared>, Option<Memory>) {
        let Some(observation) = observation.downcast_ref::<C::Observation>() else {
            let report =
                CheckReport::inconclusive(C::KIND, "internal error: wrong observation type");
            return (report, None, None);
        };
        let memory = memory.and_then(|m| m.downcast_ref::<C::Memory>());
        let evaluation = Check::evaluate(self, ctx, observation, Input { reference, memory });
        let report = match evaluation.error {
            None if evaluation.success => CheckReport {
                check: C::KIND,
                success: true,
                records: evaluation.records,
                findings: evaluation.findings,
                error: None,
                gauges: evaluation.gauges,
                shared: evaluation.shared,
                baseline: None,
            },
            error => CheckReport::inconclusive(
                C::KIND,
                error.unwrap_or_else(|| "inconclusive".to_owned()),
            ),
        };
        let memory = evaluation.memory.map(|m| Arc::new(m) as Memory);
        (report, evaluation.declared, memory)
    }

    fn annotate_drift(&self, observation: &Observed, check: CheckKind, drift: &mut Finding) {
        if let Some(observation) = observation.downcast_ref::<C::Observation>() {
            Check::annotate_drift(self, observation, check, drift);
        }
    }
}
