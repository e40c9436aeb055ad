//! Evaluating SPF records for `check_host()`: the terms in order (§4.6, §5, §6.1), the
//! limits of §4.6.4, and the trace. Validated names (`ptr`, `%{p}`) and explanations are in
//! [`super::validated`].
//!
//! Counting (§4.6.4), as the RFC words it:
//! - `include`, `a`, `mx`, `ptr`, `exists` and `redirect` count one lookup each when they
//!   are evaluated; the 11th makes the result permerror before it asks anything. `all`,
//!   `ip4`, `ip6` and `exp` count nothing;
//! - each `%{p}` expanded in a term counts one lookup too (its PTR query: "When evaluating
//!   the 'ptr' mechanism or the %{p} macro, the number of 'PTR' resource records queried is
//!   included in the overall limit");
//! - a void lookup is a counted term whose own query (the TXT of an include or redirect
//!   target, the MX of `mx`, the A/AAAA of `a`, the A of `exists`, the PTR of `ptr`)
//!   answered NODATA or NXDOMAIN; the third makes the result permerror. The addresses of
//!   `mx` hosts and `ptr` names are bounded by the 10-per-term limit instead;
//! - `exp=` is looked up after the result is known and counts nothing (§4.6.4: "the exp
//!   modifier only causes a lookup at a later time"; the suite's exp-void);
//! - the counts stop where evaluation stops: at the deciding match or error.

use super::check_host::{SpfQuery, SpfResult, SpfTraceStep, name_problem};
use super::expand::spf_texts;
use super::macros::{MacroContext, MacroLetter, MacroString};
use super::record::{DualCidr, Mechanism, Qualifier, SpfRecord};
use super::{LOOKUP_LIMIT, MX_HOST_LIMIT, VOID_LOOKUP_LIMIT};
use crate::dns::{Answer, AnswerStatus, DnsError, DnsLookup, RData, RecordType};
use futures::future::BoxFuture;
use std::net::IpAddr;

/// How a record is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// `<domain>`'s own record: its lookup is not a term.
    Top,
    /// An `include:` target: no explanation of its own (§6.2).
    Include,
    /// A `redirect=` target: evaluated in place of the record that redirects.
    Redirect,
}

/// The result of evaluating a record.
pub(super) struct Verdict {
    /// The result.
    pub(super) result: SpfResult,
    /// The deciding term or error.
    pub(super) reason: String,
    /// The explanation of a `fail`, when the record has a usable `exp=`.
    pub(super) explanation: Option<String>,
}

impl Verdict {
    fn new(result: SpfResult, reason: String) -> Verdict {
        Verdict {
            result,
            reason,
            explanation: None,
        }
    }
}

/// The state of one `check_host()` run.
pub(super) struct Evaluator<'a> {
    /// Where every question goes.
    pub(super) dns: &'a dyn DnsLookup,
    /// The client IP (IPv4 for an IPv4-mapped address).
    pub(super) ip: IpAddr,
    /// `<sender>`.
    sender: &'a str,
    /// The HELO name.
    helo: &'a str,
    /// DNS-querying terms (and `%{p}` expansions) counted so far.
    pub(super) lookups: u32,
    /// Void lookups counted so far.
    pub(super) void: u32,
    /// The terms evaluated so far.
    pub(super) trace: Vec<SpfTraceStep>,
    /// The first DNS failure.
    pub(super) dns_error: Option<DnsError>,
    /// The step whose questions are being asked.
    current: Option<usize>,
    /// Include/redirect nesting of the record being evaluated.
    depth: usize,
}

impl<'a> Evaluator<'a> {
    pub(super) fn new(
        dns: &'a dyn DnsLookup,
        ip: IpAddr,
        sender: &'a str,
        helo: &'a str,
    ) -> Evaluator<'a> {
        Evaluator {
            dns,
            ip,
            sender,
            helo,
            lookups: 0,
            void: 0,
            trace: Vec::new(),
            dns_error: None,
            current: None,
            depth: 0,
        }
    }

    /// Evaluates `domain`'s record: `text` when already read, else looked up.
    pub(super) fn host(
        &mut self,
        domain: String,
        text: Option<String>,
        entry: Entry,
    ) -> BoxFuture<'_, Verdict> {
        Box::pin(async move {
            let text = match text {
                Some(text) => text,
                None => match self.fetch(&domain, entry).await {
                    Ok(text) => text,
                    Err(verdict) => return verdict,
                },
            };
            let record = match SpfRecord::parse(&text) {
                Ok(record) => record,
                Err(error) => {
                    return Verdict::new(SpfResult::PermError, format!("{domain}: {error}"));
                }
            };
            for directive in record.directives() {
                let term = directive.to_string();
                let step = self.begin(&domain, &term);
                let matched = match self.counted(&directive.mechanism, &domain, &term) {
                    Ok(()) => self.matches(&directive.mechanism, &domain).await,
                    Err(verdict) => Err(verdict),
                };
                self.finish(step, matched.as_ref().is_ok_and(|m| *m));
                match matched {
                    Ok(false) => {}
                    Err(verdict) => return verdict,
                    Ok(true) => {
                        let result = match directive.qualifier {
                            Qualifier::Pass => SpfResult::Pass,
                            Qualifier::Fail => SpfResult::Fail,
                            Qualifier::SoftFail => SpfResult::SoftFail,
                            Qualifier::Neutral => SpfResult::Neutral,
                        };
                        let explanation = match (result, entry) {
                            (SpfResult::Fail, Entry::Top | Entry::Redirect) => {
                                self.explain(&record, &domain).await
                            }
                            _ => None,
                        };
                        return Verdict {
                            result,
                            reason: format!("matched {term} in {domain}"),
                            explanation,
                        };
                    }
                }
            }
            match record.redirect() {
                Some(target) => self.redirect(target, &domain).await,
                None => Verdict::new(
                    SpfResult::Neutral,
                    format!("nothing matched in {domain} (default neutral)"),
                ),
            }
        })
    }

    /// The one SPF record of `domain` (§4.4, §4.5).
    async fn fetch(&mut self, domain: &str, entry: Entry) -> Result<String, Verdict> {
        let Some(answer) = self.ask(domain, RecordType::Txt).await? else {
            let why = format!("{domain:?} cannot be a DNS name: it has no SPF record");
            return Err(Verdict::new(SpfResult::None, why));
        };
        if entry != Entry::Top {
            self.void_if(&answer)?;
        }
        match spf_texts(&answer).as_slice() {
            [one] => Ok(one.clone()),
            [] if answer.status == AnswerStatus::NxDomain => Err(Verdict::new(
                SpfResult::None,
                format!("{domain} does not exist (NXDOMAIN)"),
            )),
            [] => Err(Verdict::new(
                SpfResult::None,
                format!("{domain} has no SPF record"),
            )),
            _ => Err(Verdict::new(
                SpfResult::PermError,
                format!("{domain} has more than one SPF record"),
            )),
        }
    }

    /// `redirect=` (§6.1): the target's result replaces this record's; none is permerror.
    async fn redirect(&mut self, spec: &MacroString, domain: &str) -> Verdict {
        let term = format!("redirect={spec}");
        let step = self.begin(domain, &term);
        let target = match self.count(domain, &term) {
            Ok(()) => self.target(Some(spec), domain, true).await,
            Err(verdict) => Err(verdict),
        };
        let target = match target {
            Ok(target) => target,
            Err(verdict) => {
                self.finish(step, false);
                return verdict;
            }
        };
        self.depth += 1;
        let verdict = self.host(target.clone(), None, Entry::Redirect).await;
        self.depth -= 1;
        let found = verdict.result != SpfResult::None;
        self.finish(step, found);
        if found {
            return verdict;
        }
        let why = format!("{term} in {domain}: {} (RFC 7208 §6.1)", verdict.reason);
        Verdict::new(SpfResult::PermError, why)
    }

    /// Counts a DNS-querying mechanism (§4.6.4).
    fn counted(&mut self, mechanism: &Mechanism, domain: &str, term: &str) -> Result<(), Verdict> {
        if mechanism.queries_dns() {
            self.count(domain, term)?;
        }
        Ok(())
    }

    /// Counts one lookup; permerror past the limit.
    fn count(&mut self, domain: &str, term: &str) -> Result<(), Verdict> {
        self.lookups += 1;
        if self.lookups <= LOOKUP_LIMIT {
            return Ok(());
        }
        Err(Verdict::new(
            SpfResult::PermError,
            format!(
                "more than {LOOKUP_LIMIT} DNS lookups: {term} in {domain} would be number {} (RFC 7208 §4.6.4)",
                self.lookups
            ),
        ))
    }

    /// Counts a void answer to a term's own query; permerror past the limit.
    fn void_if(&mut self, answer: &Answer) -> Result<(), Verdict> {
        if !answer.is_void() {
            return Ok(());
        }
        self.void += 1;
        if self.void <= VOID_LOOKUP_LIMIT {
            return Ok(());
        }
        Err(Verdict::new(
            SpfResult::PermError,
            format!("more than {VOID_LOOKUP_LIMIT} void DNS lookups (RFC 7208 §4.6.4)"),
        ))
    }

    /// Starts a trace step; the questions asked until [`Evaluator::finish`] belong to it.
    pub(super) fn begin(&mut self, domain: &str, term: &str) -> usize {
        self.trace.push(SpfTraceStep {
            domain: domain.to_owned(),
            term: term.to_owned(),
            matched: false,
            queries: Vec::new(),
            depth: self.depth,
        });
        let step = self.trace.len() - 1;
        self.current = Some(step);
        step
    }

    /// Ends a trace step.
    pub(super) fn finish(&mut self, step: usize, matched: bool) {
        self.trace[step].matched = matched;
        self.current = None;
    }

    /// Asks one question (not at all when `name` cannot be a DNS name), recorded in the
    /// current step.
    pub(super) async fn try_ask(
        &mut self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Answer, DnsError> {
        let outcome = match name_problem(name) {
            Some(reason) => Err(DnsError::InvalidName {
                name: name.to_owned(),
                reason,
            }),
            None => self.dns.lookup(name, rtype).await,
        };
        if let Some(step) = self.current {
            self.trace[step]
                .queries
                .push(SpfQuery::of(name, rtype, &outcome));
        }
        outcome
    }

    /// Asks a term's question: `None` when the name cannot be a DNS name (it names
    /// nothing), temperror on a DNS failure (§5: "the topmost check_host() returns
    /// temperror").
    async fn ask(&mut self, name: &str, rtype: RecordType) -> Result<Option<Answer>, Verdict> {
        match self.try_ask(name, rtype).await {
            Ok(answer) => Ok(Some(answer)),
            Err(DnsError::InvalidName { .. }) => Ok(None),
            Err(error) => {
                let verdict = Verdict::new(SpfResult::TempError, error.to_string());
                self.dns_error.get_or_insert(error);
                Err(verdict)
            }
        }
    }

    /// The macro values of this connection while `domain`'s record is evaluated.
    pub(super) fn context<'c>(&'c self, domain: &'c str, validated: &'c str) -> MacroContext<'c> {
        MacroContext {
            sender: self.sender,
            ip: self.ip,
            helo: self.helo,
            domain,
            validated,
        }
    }

    /// A term's target: `domain` without a domain-spec, else the spec expanded (§4.8).
    /// `%{p}` is looked up only when used, and counted when `counted`.
    pub(super) async fn target(
        &mut self,
        spec: Option<&MacroString>,
        domain: &str,
        counted: bool,
    ) -> Result<String, Verdict> {
        let Some(spec) = spec else {
            return Ok(domain.to_owned());
        };
        let mut validated = String::from("unknown");
        if spec.uses(MacroLetter::ValidatedName) {
            if counted {
                self.count(domain, "%{p}")?;
            }
            validated = self.validated_name(domain).await;
        }
        Ok(spec.expand_for(&self.context(domain, &validated)))
    }

    /// The address type of the client's family.
    pub(super) fn address_type(&self) -> RecordType {
        match self.ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::Aaaa,
        }
    }

    async fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Verdict> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(addr, len) => {
                Ok(in_network(self.ip, IpAddr::V4(*addr), len.unwrap_or(32)))
            }
            Mechanism::Ip6(addr, len) => {
                Ok(in_network(self.ip, IpAddr::V6(*addr), len.unwrap_or(128)))
            }
            Mechanism::A(spec, cidr) => {
                let target = self.target(spec.as_ref(), domain, true).await?;
                let Some(answer) = self.ask(&target, self.address_type()).await? else {
                    return Ok(false);
                };
                self.void_if(&answer)?;
                Ok(self.any_address(&answer, *cidr))
            }
            Mechanism::Mx(spec, cidr) => {
                let target = self.target(spec.as_ref(), domain, true).await?;
                let Some(answer) = self.ask(&target, RecordType::Mx).await? else {
                    return Ok(false);
                };
                self.void_if(&answer)?;
                // A null MX (RFC 7505) names no host.
                let hosts: Vec<String> = answer
                    .records
                    .iter()
                    .filter_map(|r| match r {
                        RData::Mx { exchange, .. } if !exchange.is_empty() => {
                            Some(exchange.clone())
                        }
                        _ => None,
                    })
                    .collect();
                if hosts.len() > MX_HOST_LIMIT {
                    let why = format!(
                        "mx:{target} in {domain} has {} MX hosts, more than {MX_HOST_LIMIT} (RFC 7208 §4.6.4)",
                        hosts.len()
                    );
                    return Err(Verdict::new(SpfResult::PermError, why));
                }
                for host in hosts {
                    if let Some(answer) = self.ask(&host, self.address_type()).await?
                        && self.any_address(&answer, *cidr)
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Exists(spec) => {
                let target = self.target(Some(spec), domain, true).await?;
                // Always an A query, whatever the client's family (§5.7).
                let Some(answer) = self.ask(&target, RecordType::A).await? else {
                    return Ok(false);
                };
                self.void_if(&answer)?;
                Ok(!answer.records.is_empty())
            }
            Mechanism::Include(spec) => {
                let target = self.target(Some(spec), domain, true).await?;
                self.depth += 1;
                let verdict = self.host(target.clone(), None, Entry::Include).await;
                self.depth -= 1;
                match verdict.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError => Err(verdict),
                    SpfResult::PermError | SpfResult::None => Err(Verdict::new(
                        SpfResult::PermError,
                        format!(
                            "include:{target} in {domain}: {} (RFC 7208 §5.2)",
                            verdict.reason
                        ),
                    )),
                }
            }
            Mechanism::Ptr(spec) => {
                let target = self.target(spec.as_ref(), domain, true).await?;
                self.ptr_matches(&target).await
            }
        }
    }

    fn any_address(&self, answer: &Answer, cidr: DualCidr) -> bool {
        answer.records.iter().any(|r| match r {
            RData::A(a) => in_network(self.ip, IpAddr::V4(*a), cidr.ip4.unwrap_or(32)),
            RData::Aaaa(a) => in_network(self.ip, IpAddr::V6(*a), cidr.ip6.unwrap_or(128)),
            _ => false,
        })
    }

    /// `ptr` (§5.5): some validated name of the client is `target` or below it. A DNS error
    /// on the PTR query makes it not match; a void answer counts.
    async fn ptr_matches(&mut self, target: &str) -> Result<bool, Verdict> {
        let Some(answer) = self.reverse().await else {
            return Ok(false);
        };
        self.void_if(&answer)?;
        for name in ptr_names(&answer) {
            if crate::dns::at_or_below(&name, target) && self.validates(&name).await {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The first 10 names of a PTR answer (§4.6.4: the others "MUST be ignored").
pub(super) fn ptr_names(answer: &Answer) -> Vec<String> {
    answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Ptr(name) => Some(name.clone()),
            _ => None,
        })
        .take(10)
        .collect()
}

/// Whether `ip` is in `network/len` (different families never match).
fn in_network(ip: IpAddr, network: IpAddr, len: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}
