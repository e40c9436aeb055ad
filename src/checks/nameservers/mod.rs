//! Nameservers check: the authoritative view as a set of servers, and how far the
//! resolvers lag behind it.
//!
//! - Delegation: the NS set at the parent (its referral) vs the NS set at the zone apex.
//! - Per server: SOA serial, apex NS, MX, SPF, DMARC and DKIM selectors asked of every
//!   authoritative address with recursion off. Timeouts, SERVFAIL/REFUSED and answers
//!   without the AA bit make a server lame; the others' answers are compared.
//! - Serials apart longer than the grace (secondaries lag briefly after a NOTIFY).
//! - Resolver view: each configured resolver's answer compared with the authoritative one,
//!   with the TTL it still has to run: how long until its users see the change.
//!
//! Observation (network) and evaluation (pure) are separate, as for the other checks.

#[cfg(test)]
mod cadence_tests;
mod evaluate;
mod observe;
mod serials;
#[cfg(test)]
mod tests;

pub use evaluate::{annotate_drift, evaluate};
pub use observe::observe;
pub use serials::SerialTracker;

use super::{
    Check, Context, Evaluation, FamilyValues, GaugeFamily, Input, SharedFamily, SharedValues,
};
use crate::dns::{Delegation, DnsError, Nameserver};
use crate::finding::{CheckKind, Finding};
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// `maildrift_nameservers_consistent`: absent until the check was conclusive, and for
/// domains not asked authoritatively.
pub static CONSISTENT: GaugeFamily = GaugeFamily {
    name: "maildrift_nameservers_consistent",
    help: "1 when every authoritative server answered, all with the same records.",
    labels: &[],
    initial: &[],
    json: None,
    export: super::Export::Always,
};

/// `maildrift_propagation_pending_seconds{record,resolver}`.
pub static PROPAGATION_PENDING: GaugeFamily = GaugeFamily {
    name: "maildrift_propagation_pending_seconds",
    help: "Seconds until the resolver's cached answer, which differs from the authoritative one, expires; 0 when it serves the authoritative answer.",
    labels: &["record", "resolver"],
    initial: &[],
    json: None,
    export: super::Export::Detail,
};

/// `maildrift_nameserver_soa_serial{nameserver,zone}`: once per zone, however many
/// watched domains sit in it.
pub static SOA_SERIAL: SharedFamily = SharedFamily {
    name: "maildrift_nameserver_soa_serial",
    help: "SOA serial of the zone at each authoritative server.",
    labels: &["nameserver", "zone"],
};

/// The nameservers check. It keeps, across rounds, since when each zone's serials differ.
#[derive(Debug, Default)]
pub struct Nameservers {
    /// Since when each zone's servers disagree on the serial (shared by its domains).
    serials: SerialTracker,
}

impl Check for Nameservers {
    const KIND: CheckKind = CheckKind::Nameservers;
    type Observation = NameserversObservation;
    type Memory = ResolverMemory;
    const FAMILIES: &'static [&'static GaugeFamily] = &[&CONSISTENT, &PROPAGATION_PENDING];
    const SHARED_FAMILIES: &'static [&'static SharedFamily] = &[&SOA_SERIAL];

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, NameserversObservation> {
        Box::pin(observe(
            ctx.domain(),
            ctx.dns,
            &ctx.config.expect,
            &self.serials,
            ctx.global.ns_serial_grace,
            ctx.remembered::<Nameservers>(),
        ))
    }

    fn evaluate(
        &self,
        _ctx: &Context<'_>,
        observation: &NameserversObservation,
        _input: Input<'_, ResolverMemory>,
    ) -> Evaluation<ResolverMemory> {
        let evaluation = evaluate(observation);
        let mut evaluation = Evaluation {
            success: evaluation.success,
            error: evaluation.error,
            records: evaluation.records,
            findings: evaluation.findings,
            declared: None,
            gauges: Vec::new(),
            shared: Vec::new(),
            memory: None,
        };
        let view = observation.result.as_ref().and_then(|r| r.as_ref().ok());
        if let Some(view) = view
            && let Some(asked_at) = view.resolvers_asked_at
        {
            evaluation.memory = Some(ResolverMemory {
                answers: view.answers_fingerprint,
                asked_at,
                lagging: view
                    .resolvers
                    .iter()
                    .any(|r| r.answer.is_ok() && !r.current),
            });
        }
        if let Some(summary) = observation.summary() {
            evaluation.gauges = vec![FamilyValues::one(
                &CONSISTENT,
                f64::from(u8::from(summary.consistent)),
            )];
            if view.is_some_and(|v| v.resolvers_asked_at.is_some()) {
                evaluation.gauges.push(FamilyValues {
                    family: &PROPAGATION_PENDING,
                    samples: summary
                        .propagation
                        .iter()
                        .map(|p| {
                            let labels = vec![p.record.clone().into(), p.resolver.clone().into()];
                            (labels, f64::from(p.pending_seconds))
                        })
                        .collect(),
                });
            }
            evaluation.shared = vec![SharedValues {
                family: &SOA_SERIAL,
                object: summary.zone.clone(),
                samples: summary
                    .serials
                    .iter()
                    .map(|(server, serial)| {
                        let labels = vec![server.clone().into(), summary.zone.clone().into()];
                        (labels, f64::from(*serial))
                    })
                    .collect(),
            }];
        }
        evaluation
    }

    fn annotate_drift(
        &self,
        observation: &NameserversObservation,
        check: CheckKind,
        drift: &mut Finding,
    ) {
        if let Some(summary) = observation.summary() {
            annotate_drift(check, drift, &summary);
        }
    }
}

/// One question asked of every server: its `record` label, name and how its answer is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The `record` label: "soa", "ns", "mx", "spf", "dmarc", "dkim:SELECTOR".
    pub record: String,
    /// The name asked.
    pub name: String,
}

/// One record set as one server (or resolver) gave it, normalised and sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordSet {
    /// The normalised records, sorted ("10 mx1.example.com", TXT text, ...).
    pub values: Vec<String>,
    /// The TTL the server reported (the negative TTL for an empty set).
    pub ttl: u32,
}

/// What one authoritative address answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerView {
    /// The server.
    pub nameserver: Nameserver,
    /// Why it is lame (timeout, SERVFAIL, REFUSED, no AA bit), or `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lame: Option<String>,
    /// Its SOA serial, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// Its answers by record label (empty when lame).
    pub answers: BTreeMap<String, RecordSet>,
}

/// What one recursive resolver serves for one record, compared with the authoritative answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolverView {
    /// The resolver, as a label (IP, or IP:PORT when not 53).
    pub resolver: String,
    /// The record label.
    pub record: String,
    /// What it serves, or why it did not answer.
    pub answer: Result<RecordSet, String>,
    /// Whether it serves the authoritative answer (false also when it did not answer).
    pub current: bool,
}

impl ResolverView {
    /// Seconds until this resolver's differing answer expires from its cache: its reported
    /// TTL when it serves something else than the authoritative servers, else 0.
    pub fn pending_seconds(&self) -> Option<u32> {
        match &self.answer {
            Ok(set) if !self.current => Some(set.ttl),
            Ok(_) => Some(0),
            Err(_) => None,
        }
    }
}

/// The conclusive part of a nameservers observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthorityView {
    /// The zone holding the domain.
    pub zone: String,
    /// Every authoritative address and its answers, in the order the servers are tried.
    pub servers: Vec<ServerView>,
    /// The parent's delegation: `None` when not checked (configured servers, or no parent
    /// servers found); `Some(Err)` when the parent's servers did not answer.
    pub delegation: Option<Result<Delegation, String>>,
    /// How long the answering servers' serials have been apart (`None`: they agree).
    pub serials_apart_for: Option<Duration>,
    /// How long serials may stay apart before it is a finding.
    pub grace: Duration,
    /// Each resolver's answer per record (empty when they were not asked this round).
    pub resolvers: Vec<ResolverView>,
    /// When the resolvers were asked this round (`None`: not asked, see
    /// [`ResolverMemory`]; the last comparison stands).
    #[serde(skip)]
    pub resolvers_asked_at: Option<Instant>,
    /// Fingerprint of the authoritative mail answers (what the resolvers are compared with).
    pub answers_fingerprint: u64,
}

/// How long the resolvers' answers may go uncompared while nothing changes.
pub const RESOLVER_INTERVAL: Duration = Duration::from_secs(3600);

/// What the nameservers check remembers of its last comparison of the resolvers with the
/// authoritative answers. The resolvers are asked again only when it can tell something:
/// the authoritative answers changed, a resolver still served an older answer, or
/// [`RESOLVER_INTERVAL`] passed. In between, a round costs no resolver query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolverMemory {
    /// Fingerprint of the authoritative answers they were compared with.
    pub answers: u64,
    /// When they were asked.
    pub asked_at: Instant,
    /// Whether one of them served something else (propagation still pending).
    pub lagging: bool,
}

impl ResolverMemory {
    /// Whether the resolvers must be asked for `answers` now.
    pub fn due(memory: Option<&ResolverMemory>, answers: u64, now: Instant) -> bool {
        memory.is_none_or(|m| {
            m.answers != answers || m.lagging || now.duration_since(m.asked_at) >= RESOLVER_INTERVAL
        })
    }
}

/// What was seen of a domain's zone servers.
#[derive(Clone, Debug)]
pub struct NameserversObservation {
    /// The domain checked, normalised.
    pub domain: String,
    /// `None` when the domain is not asked authoritatively (`authoritative: false`);
    /// an error when its zone or servers could not be found.
    pub result: Option<Result<AuthorityView, DnsError>>,
}

/// One resolver's lag for one record, for `maildrift_propagation_pending_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Propagation {
    /// The record label.
    pub record: String,
    /// The resolver label.
    pub resolver: String,
    /// Seconds until its differing answer expires; 0 when it serves the current one.
    pub pending_seconds: u32,
}

/// What the daemon exports from a conclusive nameservers check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthoritySummary {
    /// The zone.
    pub zone: String,
    /// SOA serial per answering server label.
    pub serials: Vec<(String, u32)>,
    /// Whether every server answered authoritatively, all with the same answers (SOA
    /// serials aside: they have their own metric).
    pub consistent: bool,
    /// Every resolver that answered, per record.
    pub propagation: Vec<Propagation>,
}

impl NameserversObservation {
    /// The exported summary, when the observation is conclusive.
    pub fn summary(&self) -> Option<AuthoritySummary> {
        let view = self.result.as_ref()?.as_ref().ok()?;
        if view.servers.iter().all(|s| s.lame.is_some()) {
            return None;
        }
        let serials = view
            .servers
            .iter()
            .filter_map(|s| Some((s.nameserver.label(), s.serial?)))
            .collect();
        let propagation = view
            .resolvers
            .iter()
            .filter_map(|r| {
                Some(Propagation {
                    record: r.record.clone(),
                    resolver: r.resolver.clone(),
                    pending_seconds: r.pending_seconds()?,
                })
            })
            .collect();
        Some(AuthoritySummary {
            zone: view.zone.clone(),
            serials,
            consistent: view.servers.iter().all(|s| s.lame.is_none())
                && evaluate::differing_records(view).is_empty(),
            propagation,
        })
    }
}
