//! SPF check: one `v=spf1` record, syntax, expected includes and `all`, and the recursive
//! expansion counted against the RFC 7208 §4.6.4 limits.
//!
//! Data flow: [`observe`] reads the apex TXT records through `view.zone` and expands the
//! record through `view.recursive` ([`expand`]) into an [`SpfObservation`] (tree, counts,
//! networks, problems); [`evaluate`] is a pure function from that to findings.

pub mod check_host;
mod evaluate;
mod evaluator;
mod expand;
pub mod macros;
mod network;
pub mod record;
mod validated;

#[cfg(test)]
mod tests;

pub use check_host::{
    SpfAuthorization, SpfConnection, SpfEvaluation, SpfQuery, SpfResult, SpfTraceStep, check_host,
    check_host_with_record,
};
pub use evaluate::{evaluate, ipset_finding};
pub use record::{Qualifier, SpfRecord, SpfSyntaxError};

use super::{Check, Context, Evaluation, GaugeFamily, Input, JsonShape};
use crate::config::{AuthorizedSender, DomainConfig};
use crate::dns::{DnsError, DnsLookup, DnsView};
use crate::finding::CheckKind;
use futures::future::BoxFuture;
use serde::Serialize;

/// `maildrift_spf_dns_lookups`.
pub static LOOKUPS: GaugeFamily = GaugeFamily {
    name: "maildrift_spf_dns_lookups",
    help: "DNS-querying SPF terms counted recursively (RFC 7208 section 4.6.4; limit 10).",
    labels: &[],
    initial: &[(&[], 0.0)],
    json: Some(JsonShape::Number("spf_dns_lookups")),
    export: super::Export::Always,
};

/// `maildrift_spf_void_lookups`.
pub static VOID_LOOKUPS: GaugeFamily = GaugeFamily {
    name: "maildrift_spf_void_lookups",
    help: "Void lookups during SPF expansion (limit 2).",
    labels: &[],
    initial: &[(&[], 0.0)],
    json: Some(JsonShape::Number("spf_void_lookups")),
    export: super::Export::Always,
};

/// `maildrift_spf_ipset_fingerprint`.
pub static IPSET_FINGERPRINT: GaugeFamily = GaugeFamily {
    name: "maildrift_spf_ipset_fingerprint",
    help: "52-bit hash of the networks SPF authorises through includes, a and mx; changes() shows provider edits.",
    labels: &[],
    initial: &[(&[], 0.0)],
    json: None,
    export: super::Export::Detail,
};

/// The SPF check. It remembers the networks the policy authorised, so that a provider's
/// change to them is an `info` finding (`spf_ipset_changed`), not drift.
#[derive(Debug, Default)]
pub struct Spf;

impl Check for Spf {
    const KIND: CheckKind = CheckKind::Spf;
    type Observation = SpfObservation;
    type Memory = Vec<String>;
    const FAMILIES: &'static [&'static GaugeFamily] =
        &[&LOOKUPS, &VOID_LOOKUPS, &IPSET_FINGERPRINT];

    fn declared(&self, config: &DomainConfig) -> bool {
        config.expect.spf.is_some()
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, SpfObservation> {
        Box::pin(async move {
            let mut observation = observe(ctx.domain(), ctx.dns, &SpfLimits::default()).await;
            if let Some(expect) = &ctx.config.expect.spf {
                authorize(
                    &mut observation,
                    ctx.dns.recursive.as_ref(),
                    &expect.authorizes,
                )
                .await;
            }
            observation
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &SpfObservation,
        input: Input<'_, Vec<String>>,
    ) -> Evaluation<Vec<String>> {
        let previous = input.memory.map(Vec::as_slice);
        evaluate(
            ctx.domain(),
            observation,
            ctx.config.expect.spf.as_ref(),
            previous,
        )
    }
}

/// Bounds on one SPF expansion. The RFC limit is 10 lookups; expansion goes on past it so
/// the report shows the true total, but stops at these bounds and says so.
#[derive(Clone, Debug)]
pub struct SpfLimits {
    /// Stop after this many DNS-querying terms (the evaluator gives up at 10).
    pub max_lookups: u32,
    /// Stop following includes/redirects nested deeper than this.
    pub max_depth: usize,
    /// Stop after parsing this many terms in total.
    pub max_terms: usize,
    /// Stop after reading this many bytes of TXT records.
    pub max_txt_bytes: usize,
}

impl Default for SpfLimits {
    fn default() -> Self {
        SpfLimits {
            max_lookups: 50,
            max_depth: 10,
            max_terms: 1000,
            max_txt_bytes: 64 * 1024,
        }
    }
}

/// The RFC 7208 §4.6.4 limit on DNS-querying terms.
pub const LOOKUP_LIMIT: u32 = 10;
/// The RFC 7208 §4.6.4 limit on void lookups.
pub const VOID_LOOKUP_LIMIT: u32 = 2;
/// The RFC 7208 §4.6.4 limit on address lookups per `mx` mechanism.
pub const MX_HOST_LIMIT: usize = 10;

/// How a node was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The domain's own record.
    Top,
    /// An `include:` mechanism, with its qualifier.
    Include(Qualifier),
    /// A `redirect=` modifier.
    Redirect,
}

/// One SPF record in the expansion tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpfNode {
    /// The domain whose record this is.
    pub domain: String,
    /// How the parent reached it.
    pub via: Via,
    /// The record text, whitespace-normalised.
    pub record: String,
    /// The `all` qualifier of this record, when it has one.
    pub all: Option<Qualifier>,
    /// DNS-querying terms of this record itself (children not included).
    pub lookups: u32,
    /// Void lookups caused by this record's own terms.
    pub void_lookups: u32,
    /// Targets of this record's `include:` and followed `redirect=` terms (expanded names),
    /// followed or not; for the expected-include check.
    pub includes: Vec<String>,
    /// Terms counted but not followed because they need the sender (`%{i}`, `ptr`, ...).
    pub unexpanded: Vec<String>,
    /// Included/redirected records that were followed, in evaluation order.
    pub children: Vec<SpfNode>,
}

impl SpfNode {
    /// Lookups of this node and everything below it.
    pub fn total_lookups(&self) -> u32 {
        self.lookups
            + self
                .children
                .iter()
                .map(SpfNode::total_lookups)
                .sum::<u32>()
    }

    /// The `all` the evaluator ends with: this record's, else the redirect target's.
    pub fn effective_all(&self) -> Option<Qualifier> {
        self.all.or_else(|| {
            self.children
                .iter()
                .find(|c| c.via == Via::Redirect)
                .and_then(SpfNode::effective_all)
        })
    }

    /// This node and all nodes below it, depth first.
    pub fn walk(&self) -> Vec<&SpfNode> {
        let mut out = vec![self];
        for child in &self.children {
            out.extend(child.walk());
        }
        out
    }
}

/// An address range an SPF mechanism matches (ip4/ip6, or the addresses `a`/`mx` found).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SpfNetwork {
    /// The network, masked to its prefix: `192.0.2.0/24`, `2001:db8::/32`.
    pub network: String,
    /// The mechanism's own qualifier (`+` authorises).
    pub qualifier: char,
    /// The record it came from.
    pub domain: String,
    /// The mechanism as written, e.g. `ip4:192.0.2.7/24` or `mx`.
    pub term: String,
}

/// Something that makes the evaluator return permerror, found while expanding.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpfProblem {
    /// A record (top or included) does not parse.
    Syntax {
        /// Domains from the top record to the bad one.
        path: Vec<String>,
        /// The quoted term and reason.
        error: SpfSyntaxError,
    },
    /// An include/redirect target has no SPF record (void or no `v=spf1` TXT).
    NoRecord {
        /// Domains from the top record to the one holding the term.
        path: Vec<String>,
        /// The term, e.g. `include:gone.example`.
        term: String,
        /// True when the TXT lookup itself was void (NODATA/NXDOMAIN).
        void: bool,
    },
    /// An include/redirect target publishes more than one SPF record.
    MultipleRecords {
        /// Domains from the top record to the target.
        path: Vec<String>,
        /// The records found.
        records: Vec<String>,
    },
    /// An include/redirect leads back to a domain already on the path.
    Loop {
        /// The chain, ending with the repeated domain.
        chain: Vec<String>,
    },
    /// An `mx` mechanism whose domain has more than 10 MX hosts.
    TooManyMxHosts {
        /// Domains from the top record to the one holding the term.
        path: Vec<String>,
        /// The term as written.
        term: String,
        /// The number of MX hosts.
        hosts: usize,
    },
}

/// What was seen of a domain's SPF policy and its expansion.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpfObservation {
    /// The domain checked.
    pub domain: String,
    /// The first inconclusive lookup; when set, nothing else is meaningful.
    #[serde(serialize_with = "error_text")]
    pub error: Option<DnsError>,
    /// Every apex TXT record that is SPF (`v=spf1 ...`), whitespace-normalised.
    pub records: Vec<String>,
    /// TTL of the apex TXT answer, when it held SPF records.
    pub ttl: Option<u32>,
    /// The expansion tree, when there was exactly one SPF record.
    pub tree: Option<SpfNode>,
    /// DNS-querying terms counted over the whole expansion (§4.6.4).
    pub lookups: u32,
    /// Void lookups over the whole expansion (§4.6.4).
    pub void_lookups: u32,
    /// Every network reached, in evaluation order.
    pub networks: Vec<SpfNetwork>,
    /// Permerror causes met while expanding.
    pub problems: Vec<SpfProblem>,
    /// Why expansion stopped early (a [`SpfLimits`] bound), when it did; counts are then
    /// lower bounds.
    pub truncated: Option<String>,
    /// `check_host()` results for the connections of `expect.spf.authorizes`.
    pub authorizations: Vec<SpfAuthorization>,
}

fn error_text<S: serde::Serializer>(error: &Option<DnsError>, s: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(error) => s.serialize_some(&error.to_string()),
        None => s.serialize_none(),
    }
}

impl SpfObservation {
    /// DNS-querying terms counted recursively (RFC 7208 §4.6.4), when conclusive.
    pub fn dns_lookups(&self) -> Option<u32> {
        self.error.is_none().then_some(self.lookups)
    }

    /// Void lookups during the expansion, when conclusive.
    pub fn void_lookups(&self) -> Option<u32> {
        self.error.is_none().then_some(self.void_lookups)
    }

    /// The networks authorised by `+` mechanisms, sorted and deduplicated (the set that
    /// `spf_ipset_changed` compares).
    pub fn authorized_networks(&self) -> Vec<String> {
        let mut nets: Vec<String> = self
            .networks
            .iter()
            .filter(|n| n.qualifier == '+')
            .map(|n| n.network.clone())
            .collect();
        nets.sort();
        nets.dedup();
        nets
    }
}

/// Runs `check_host()` for each connection of `expect.spf.authorizes` (concurrently), the
/// watched domain's own record being the one the observation read; everything else is
/// asked through `dns`. A bare IP is `postmaster@<domain>`, with the sender's domain as
/// HELO. Nothing is done when the observation is inconclusive or has no single record
/// (the check reports that already). A DNS failure during an evaluation makes the
/// observation inconclusive: an unknown result is not a finding.
pub async fn authorize(
    observation: &mut SpfObservation,
    dns: &dyn DnsLookup,
    senders: &[AuthorizedSender],
) {
    if observation.error.is_some() || senders.is_empty() {
        return;
    }
    let Some(tree) = &observation.tree else {
        return;
    };
    let known = Some((observation.domain.as_str(), tree.record.as_str()));
    let connections: Vec<SpfConnection> = senders
        .iter()
        .map(|s| {
            let default_sender = || format!("postmaster@{}", observation.domain);
            let sender = s.sender.clone().unwrap_or_else(default_sender);
            SpfConnection::new(s.ip, sender, s.helo.as_deref())
        })
        .collect();
    let results = futures::future::join_all(
        connections
            .iter()
            .map(|connection| check_host_with_record(dns, connection, known)),
    )
    .await;
    if let Some(error) = results.iter().find_map(|r| r.dns_error.clone()) {
        observation.error = Some(error);
        return;
    }
    observation.authorizations = results.into_iter().map(SpfAuthorization::from).collect();
}

/// The expansion's lookups: names at or below the watched domain from its own zone view
/// (its authoritative servers, the answers the MX and other checks share), everything else
/// (a provider's includes) through the resolvers.
struct OwnZone<'a> {
    /// The watched domain, normalised.
    domain: &'a str,
    /// The domain's own records.
    zone: &'a dyn DnsLookup,
    /// Everything else.
    recursive: &'a dyn DnsLookup,
}

impl DnsLookup for OwnZone<'_> {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        rtype: crate::dns::RecordType,
    ) -> futures::future::BoxFuture<'a, crate::dns::LookupResult> {
        let name_lower = name.to_ascii_lowercase();
        if crate::dns::at_or_below(&name_lower, self.domain) {
            self.zone.lookup(name, rtype)
        } else {
            self.recursive.lookup(name, rtype)
        }
    }
}

/// Collapses runs of whitespace to one space and trims.
pub fn normalize_record(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the domain's TXT records from `view.zone`, expands includes/redirects through
/// `view.recursive`.
pub async fn observe(domain: &str, view: &DnsView, limits: &SpfLimits) -> SpfObservation {
    let domain = crate::dns::normalize_name(domain);
    let mut observation = SpfObservation {
        domain: domain.clone(),
        ..SpfObservation::default()
    };
    let answer = match view.zone.lookup(&domain, crate::dns::RecordType::Txt).await {
        Ok(answer) => answer,
        Err(error) => {
            observation.error = Some(error);
            return observation;
        }
    };
    let texts = expand::spf_texts(&answer);
    observation.records = texts.iter().map(|t| normalize_record(t)).collect();
    if !texts.is_empty() {
        observation.ttl = Some(answer.ttl);
    }
    if let [text] = texts.as_slice() {
        let own_zone = OwnZone {
            domain: &domain,
            zone: view.zone.as_ref(),
            recursive: view.recursive.as_ref(),
        };
        expand::expand(&mut observation, &own_zone, limits, text).await;
    }
    observation
}
