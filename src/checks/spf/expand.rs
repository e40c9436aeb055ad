//! Recursive SPF expansion: follows include/redirect through the recursive resolvers and
//! counts what an evaluator would count (RFC 7208 §4.6.4).
//!
//! Counting choices, all "worst case: a sender that matches nothing":
//! - every `include`, `a`, `mx`, `ptr`, `exists` and a `redirect` that is not shadowed by
//!   an `all` (§6.1) counts one lookup, in evaluation order, recursively, and each `%{p}`
//!   in their targets one more (its PTR query); `exp` does not;
//! - a void lookup is a counted term whose query returned NODATA/NXDOMAIN: the TXT of an
//!   include/redirect target, the MX of an `mx`, the A of an `exists`, and for `a` both A
//!   and AAAA (an address of either family is not void). The per-`mx` address queries
//!   are bounded by the 10-host limit, not counted as void;
//! - terms whose target needs the sender (`%{i}`, `%{s}`, ... or `ptr`) are counted but
//!   not followed, and listed in the node's `unexpanded`;
//! - a loop is counted once and not followed (an evaluator would recurse to permerror);
//! - a target that cannot be a DNS name (an empty or 64+-octet label) is counted, not
//!   asked and not void; as an include or redirect target it has no record.
//!
//! Within one record, all first-stage queries (and then all MX host addresses) are asked
//! concurrently; children are then expanded one after another in evaluation order so the
//! counts, and where a bound stops expansion, do not depend on answer timing.

use super::check_host::name_problem;
use super::macros::MacroLetter;
use super::network::{masked, static_network};
use super::record::{DualCidr, Mechanism, Qualifier, SpfRecord};
use super::{
    MX_HOST_LIMIT, SpfLimits, SpfNetwork, SpfNode, SpfObservation, SpfProblem, Via,
    normalize_record,
};
use crate::dns::{Answer, DnsError, DnsLookup, LookupResult, RData, RecordType};
use futures::future::{BoxFuture, join_all};
use std::net::IpAddr;

/// The `v=spf1` records among a TXT answer's records.
pub(super) fn spf_texts(answer: &Answer) -> Vec<String> {
    answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Txt(text) if SpfRecord::is_spf(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Expands the domain's single SPF record `text`, filling the counts, tree, networks and
/// problems of `observation`.
pub(super) async fn expand(
    observation: &mut SpfObservation,
    dns: &dyn DnsLookup,
    limits: &SpfLimits,
    text: &str,
) {
    let mut expander = Expander {
        dns,
        limits,
        lookups: 0,
        void: 0,
        terms: 0,
        bytes: text.len(),
        networks: Vec::new(),
        problems: Vec::new(),
        truncated: None,
        error: None,
    };
    let domain = observation.domain.clone();
    let tree = expander
        .node(domain.clone(), Via::Top, text.to_owned(), vec![domain])
        .await;
    observation.tree = Some(tree);
    observation.lookups = expander.lookups;
    observation.void_lookups = expander.void;
    observation.networks = expander.networks;
    observation.problems = expander.problems;
    observation.truncated = expander.truncated;
    observation.error = expander.error;
}

/// One planned term of a record, in evaluation order.
enum Step {
    /// `ip4`/`ip6`: no query.
    Network(SpfNetwork),
    /// `include`/`redirect`: TXT of `target`, then recurse.
    Follow {
        term: String,
        target: String,
        via: Via,
    },
    /// `a`: A and AAAA of `target`.
    Addresses {
        term: String,
        target: String,
        qualifier: Qualifier,
        cidr: DualCidr,
    },
    /// `mx`: MX of `target`, then A and AAAA of each host.
    Mx {
        term: String,
        target: String,
        qualifier: Qualifier,
        cidr: DualCidr,
    },
    /// `exists`: A of `target`.
    Exists { target: String },
    /// Counted, not followed (loop, sender-dependent, ptr).
    Skip,
}

struct Expander<'a> {
    dns: &'a dyn DnsLookup,
    limits: &'a SpfLimits,
    lookups: u32,
    void: u32,
    terms: usize,
    bytes: usize,
    networks: Vec<SpfNetwork>,
    problems: Vec<SpfProblem>,
    truncated: Option<String>,
    error: Option<DnsError>,
}

impl Expander<'_> {
    fn stopped(&self) -> bool {
        self.truncated.is_some() || self.error.is_some()
    }

    /// Asks every question concurrently; results in the same order.
    async fn ask(&self, questions: &[(String, RecordType)]) -> Vec<LookupResult> {
        let dns = self.dns;
        join_all(
            questions
                .iter()
                .map(|(name, rtype)| dns.lookup(name, *rtype)),
        )
        .await
    }

    fn node<'s>(
        &'s mut self,
        domain: String,
        via: Via,
        text: String,
        path: Vec<String>,
    ) -> BoxFuture<'s, SpfNode> {
        Box::pin(async move {
            let mut node = SpfNode {
                domain: domain.clone(),
                via,
                record: normalize_record(&text),
                all: None,
                lookups: 0,
                void_lookups: 0,
                includes: Vec::new(),
                unexpanded: Vec::new(),
                children: Vec::new(),
            };
            let record = match SpfRecord::parse(&text) {
                Ok(record) => record,
                Err(error) => {
                    self.problems.push(SpfProblem::Syntax { path, error });
                    return node;
                }
            };
            node.all = record.all();
            self.terms += record.terms.len();
            if self.terms > self.limits.max_terms {
                self.truncated = Some(format!(
                    "expansion stopped after {} SPF terms",
                    self.limits.max_terms
                ));
                return node;
            }
            let steps = self.plan(&record, &mut node, &path);
            self.run(steps, &mut node, &path).await;
            node
        })
    }

    /// Counts the record's terms in evaluation order and decides what to ask.
    fn plan(&mut self, record: &SpfRecord, node: &mut SpfNode, path: &[String]) -> Vec<Step> {
        let domain = node.domain.clone();
        let mut steps = Vec::new();
        let redirect = record
            .redirect()
            .filter(|_| record.all().is_none())
            .map(|target| (format!("redirect={target}"), target));
        let terms = record
            .directives()
            .map(|d| (d.to_string(), Some(d)))
            .chain(redirect.iter().map(|(term, _)| (term.clone(), None)));
        for (term, directive) in terms {
            let mechanism = directive.map(|d| &d.mechanism);
            let qualifier = directive.map_or(Qualifier::Pass, |d| d.qualifier);
            if let Some(network) = static_network(mechanism, qualifier, &domain, &term) {
                steps.push(Step::Network(network));
                continue;
            }
            if mechanism.is_some_and(|m| !m.queries_dns()) {
                continue;
            }
            if self.lookups >= self.limits.max_lookups {
                self.truncated = Some(format!(
                    "expansion stopped at {} DNS lookups",
                    self.limits.max_lookups
                ));
                break;
            }
            self.lookups += 1;
            node.lookups += 1;
            let spec = match mechanism {
                None => redirect.as_ref().map(|(_, target)| *target),
                Some(Mechanism::Include(s) | Mechanism::Exists(s)) => Some(s),
                Some(Mechanism::A(s, _) | Mechanism::Mx(s, _)) => s.as_ref(),
                _ => None,
            };
            // §4.6.4: the PTR query of a `%{p}` counts against the limit too.
            if spec.is_some_and(|s| s.uses(MacroLetter::ValidatedName)) {
                self.lookups += 1;
                node.lookups += 1;
            }
            let target = match (mechanism, spec) {
                (Some(Mechanism::Ptr(_)), _) => None,
                (_, Some(spec)) => spec.expand(&domain),
                (_, None) => Some(domain.clone()),
            };
            let Some(target) = target else {
                node.unexpanded.push(term);
                steps.push(Step::Skip);
                continue;
            };
            // A target that cannot be a DNS name names nothing: not asked, not void; an
            // include or redirect of it finds no record (as check_host() decides).
            if name_problem(&target).is_some() {
                if matches!(mechanism, None | Some(Mechanism::Include(_))) {
                    node.includes.push(target);
                    let path = path.to_vec();
                    let void = false;
                    self.problems
                        .push(SpfProblem::NoRecord { path, term, void });
                }
                steps.push(Step::Skip);
                continue;
            }
            let step = match mechanism {
                None | Some(Mechanism::Include(_)) => {
                    let via = match directive {
                        Some(d) => Via::Include(d.qualifier),
                        None => Via::Redirect,
                    };
                    node.includes.push(target.clone());
                    if path.contains(&target) {
                        let mut chain = path.to_vec();
                        chain.push(target);
                        self.problems.push(SpfProblem::Loop { chain });
                        Step::Skip
                    } else {
                        Step::Follow { term, target, via }
                    }
                }
                Some(Mechanism::A(_, cidr)) => Step::Addresses {
                    term,
                    target,
                    qualifier,
                    cidr: *cidr,
                },
                Some(Mechanism::Mx(_, cidr)) => Step::Mx {
                    term,
                    target,
                    qualifier,
                    cidr: *cidr,
                },
                _ => Step::Exists { target },
            };
            steps.push(step);
        }
        steps
    }

    /// Asks the planned questions, records networks and voids, then follows children.
    async fn run(&mut self, steps: Vec<Step>, node: &mut SpfNode, path: &[String]) {
        let questions: Vec<Vec<(String, RecordType)>> = steps.iter().map(questions).collect();
        let flat: Vec<_> = questions.iter().flatten().cloned().collect();
        let mut results = self.ask(&flat).await.into_iter();
        let mut answers: Vec<Vec<Answer>> = Vec::new();
        for qs in &questions {
            match settle(results.by_ref().take(qs.len()).collect()) {
                Ok(step_answers) => answers.push(step_answers),
                Err(error) => {
                    self.error.get_or_insert(error);
                }
            }
        }
        if self.error.is_some() {
            return;
        }
        // Second stage: the addresses of the MX hosts of every `mx` term.
        let mut mx_hosts: Vec<Vec<String>> = Vec::new();
        for (step, step_answers) in steps.iter().zip(&answers) {
            let mut hosts = Vec::new();
            if let Step::Mx { term, .. } = step {
                hosts = mx_exchanges(&step_answers[0]);
                if hosts.len() > MX_HOST_LIMIT {
                    self.problems.push(SpfProblem::TooManyMxHosts {
                        path: path.to_vec(),
                        term: term.clone(),
                        hosts: hosts.len(),
                    });
                    hosts.clear();
                }
            }
            mx_hosts.push(hosts);
        }
        // A host whose addresses came with an authoritative MX answer (its additional
        // section, hosts in the zone) is not asked again.
        let mut known: Vec<Option<Vec<IpAddr>>> = Vec::new();
        for ((step, step_answers), hosts) in steps.iter().zip(&answers).zip(&mx_hosts) {
            for host in hosts {
                let target = match step {
                    Step::Mx { target, .. } => target.as_str(),
                    _ => "",
                };
                known.push(step_answers[0].in_zone_addresses(target, host));
            }
        }
        let host_questions: Vec<(String, RecordType)> = mx_hosts
            .iter()
            .flatten()
            .zip(&known)
            .filter(|(_, known)| known.is_none())
            .flat_map(|(h, _)| [(h.clone(), RecordType::A), (h.clone(), RecordType::Aaaa)])
            .collect();
        let mut asked = Vec::new();
        let mut results = self.ask(&host_questions).await.into_iter();
        while results.len() > 0 {
            match settle(results.by_ref().take(2).collect()) {
                Ok(pair) => asked.extend(pair),
                Err(error) => {
                    self.error.get_or_insert(error);
                    return;
                }
            }
        }
        let mut asked = asked.into_iter();
        let mut host_answers = Vec::new();
        for known in known {
            match known {
                Some(addresses) => host_answers.extend(address_answers(&addresses)),
                None => host_answers.extend(asked.by_ref().take(2)),
            }
        }
        let mut host_answers = host_answers.into_iter();
        for ((step, step_answers), hosts) in steps.into_iter().zip(answers).zip(mx_hosts) {
            if self.stopped() {
                return;
            }
            match step {
                Step::Network(network) => self.networks.push(network),
                Step::Skip => {}
                Step::Exists { .. } => self.void_if(node, step_answers.iter().all(Answer::is_void)),
                Step::Addresses {
                    term,
                    qualifier,
                    cidr,
                    ..
                } => {
                    self.void_if(node, step_answers.iter().all(Answer::is_void));
                    self.add_addresses(&step_answers, qualifier, cidr, &node.domain, &term);
                }
                Step::Mx {
                    term,
                    qualifier,
                    cidr,
                    ..
                } => {
                    self.void_if(node, step_answers[0].is_void());
                    let addresses: Vec<Answer> =
                        host_answers.by_ref().take(hosts.len() * 2).collect();
                    self.add_addresses(&addresses, qualifier, cidr, &node.domain, &term);
                }
                Step::Follow { term, target, via } => {
                    let child = self
                        .follow(&step_answers[0], term, target, via, path, node)
                        .await;
                    node.children.extend(child);
                }
            }
        }
    }

    fn void_if(&mut self, node: &mut SpfNode, void: bool) {
        if void {
            self.void += 1;
            node.void_lookups += 1;
        }
    }

    async fn follow(
        &mut self,
        answer: &Answer,
        term: String,
        target: String,
        via: Via,
        path: &[String],
        node: &mut SpfNode,
    ) -> Option<SpfNode> {
        let void = answer.is_void();
        self.void_if(node, void);
        let texts = spf_texts(answer);
        self.bytes += answer
            .records
            .iter()
            .map(|r| match r {
                RData::Txt(text) => text.len(),
                _ => 0,
            })
            .sum::<usize>();
        let mut child_path = path.to_vec();
        child_path.push(target.clone());
        match texts.as_slice() {
            [] => {
                let path = path.to_vec();
                self.problems
                    .push(SpfProblem::NoRecord { path, term, void });
                None
            }
            [_, _, ..] => {
                let records = texts.iter().map(|t| normalize_record(t)).collect();
                let path = child_path;
                self.problems
                    .push(SpfProblem::MultipleRecords { path, records });
                None
            }
            [text] => {
                if self.bytes > self.limits.max_txt_bytes {
                    self.truncated = Some(format!(
                        "expansion stopped after reading {} bytes of TXT records",
                        self.limits.max_txt_bytes
                    ));
                    return None;
                }
                if path.len() > self.limits.max_depth {
                    self.truncated = Some(format!(
                        "expansion stopped at include depth {}",
                        self.limits.max_depth
                    ));
                    return None;
                }
                Some(self.node(target, via, text.clone(), child_path).await)
            }
        }
    }

    fn add_addresses(
        &mut self,
        answers: &[Answer],
        qualifier: Qualifier,
        cidr: DualCidr,
        domain: &str,
        term: &str,
    ) {
        for record in answers.iter().flat_map(|a| &a.records) {
            let network = match record {
                RData::A(ip) => masked(IpAddr::V4(*ip), cidr.ip4.unwrap_or(32)),
                RData::Aaaa(ip) => masked(IpAddr::V6(*ip), cidr.ip6.unwrap_or(128)),
                _ => continue,
            };
            self.networks.push(SpfNetwork {
                network,
                qualifier: qualifier.as_char(),
                domain: domain.to_owned(),
                term: term.to_owned(),
            });
        }
    }
}

/// The answers to one term's questions. A failed address family does not make the term
/// inconclusive when the other family has records (some servers fail AAAA queries); the
/// failure stands only when nothing was found. A name that cannot be asked has no records.
fn settle(results: Vec<LookupResult>) -> Result<Vec<Answer>, DnsError> {
    let found = results
        .iter()
        .any(|r| r.as_ref().is_ok_and(|a| !a.is_void()));
    results
        .into_iter()
        .map(|r| match r {
            Err(_) if found => Ok(Answer::empty(crate::dns::AnswerStatus::NoData)),
            // A name that cannot be asked (an MX host read back oddly) has nothing.
            Err(DnsError::InvalidName { .. }) => {
                Ok(Answer::empty(crate::dns::AnswerStatus::NoData))
            }
            other => other,
        })
        .collect()
}

/// The questions a step asks first.
fn questions(step: &Step) -> Vec<(String, RecordType)> {
    match step {
        Step::Follow { target, .. } => vec![(target.clone(), RecordType::Txt)],
        Step::Addresses { target, .. } => vec![
            (target.clone(), RecordType::A),
            (target.clone(), RecordType::Aaaa),
        ],
        Step::Mx { target, .. } => vec![(target.clone(), RecordType::Mx)],
        Step::Exists { target } => vec![(target.clone(), RecordType::A)],
        Step::Network(_) | Step::Skip => Vec::new(),
    }
}

/// The A and the AAAA answer a host's known addresses stand for.
fn address_answers(addresses: &[IpAddr]) -> [Answer; 2] {
    let records = |v6: bool| {
        addresses
            .iter()
            .filter(|ip| ip.is_ipv6() == v6)
            .map(|ip| match ip {
                IpAddr::V4(v4) => RData::A(*v4),
                IpAddr::V6(v6) => RData::Aaaa(*v6),
            })
            .collect()
    };
    [
        Answer::records(records(false), 0),
        Answer::records(records(true), 0),
    ]
}

fn mx_exchanges(answer: &Answer) -> Vec<String> {
    answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Mx { exchange, .. } if !exchange.is_empty() => Some(exchange.clone()),
            _ => None,
        })
        .collect()
}
