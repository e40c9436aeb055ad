//! RFC 7208 `check_host()` (§4): the result a receiver computes for one client IP, with
//! macros expanded, the 10-lookup and 2-void-lookup limits (§4.6.4) enforced, and every
//! mechanism evaluated (§5). `expect.spf.authorizes` runs it for each sending IP.
//!
//! The sender is `postmaster@<domain>` and the HELO name the domain: a monitor has no real
//! transaction, and those are the values a bounce or a probe of the domain would use.
//! `%{p}` expands to "unknown" (RFC 7208 §7.3 allows it).

use super::expand::spf_texts;
use super::macros::{MacroContext, MacroString};
use super::record::{DualCidr, Mechanism, Qualifier, SpfRecord};
use super::{LOOKUP_LIMIT, MX_HOST_LIMIT, VOID_LOOKUP_LIMIT};
use crate::dns::{Answer, DnsError, DnsLookup, RData, RecordType};
use futures::future::BoxFuture;
use serde::Serialize;
use std::net::IpAddr;

/// A `check_host()` result (§2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpfResult {
    /// No SPF record.
    None,
    /// Explicitly no assertion (`?`, or nothing matched).
    Neutral,
    /// Authorised.
    Pass,
    /// Explicitly not authorised.
    Fail,
    /// Probably not authorised.
    SoftFail,
    /// A transient DNS error.
    TempError,
    /// The published records cannot be interpreted.
    PermError,
}

impl SpfResult {
    /// Lower-case name, as in `Received-SPF`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }

    fn of(qualifier: Qualifier) -> SpfResult {
        match qualifier {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// The outcome of one `check_host()` run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfAuthorization {
    /// The client IP evaluated.
    pub ip: IpAddr,
    /// The result.
    pub result: SpfResult,
    /// Why: the term that matched and its record's domain, or the error.
    pub reason: String,
    /// DNS-querying terms evaluated.
    pub lookups: u32,
    /// The DNS failure behind a `temperror`, if any.
    #[serde(skip)]
    pub dns_error: Option<DnsError>,
}

/// Evaluates `check_host(ip, domain, postmaster@domain)`. `record` is the domain's SPF
/// record when already read (so the evaluation sees the same record as the rest of the
/// check); otherwise it is looked up through `dns`.
pub async fn check_host(
    dns: &dyn DnsLookup,
    ip: IpAddr,
    domain: &str,
    record: Option<&str>,
) -> SpfAuthorization {
    let sender = format!("postmaster@{domain}");
    let mut evaluator = Evaluator {
        dns,
        ip,
        sender: &sender,
        helo: domain,
        lookups: 0,
        void: 0,
        dns_error: None,
    };
    let (result, reason) = evaluator
        .host(domain.to_owned(), record.map(str::to_owned))
        .await;
    SpfAuthorization {
        ip,
        result,
        reason,
        lookups: evaluator.lookups,
        dns_error: evaluator.dns_error,
    }
}

struct Evaluator<'a> {
    dns: &'a dyn DnsLookup,
    ip: IpAddr,
    sender: &'a str,
    helo: &'a str,
    lookups: u32,
    void: u32,
    dns_error: Option<DnsError>,
}

/// A mechanism's verdict: matched, did not, or the evaluation stops with a result.
enum Match {
    Yes,
    No,
    Stop(SpfResult, String),
}

impl<'a> Evaluator<'a> {
    fn host(&mut self, domain: String, text: Option<String>) -> BoxFuture<'_, (SpfResult, String)> {
        Box::pin(async move {
            let text = match text {
                Some(text) => text,
                None => match self.dns.lookup(&domain, RecordType::Txt).await {
                    Err(error) => return self.temperror(error),
                    Ok(answer) => match spf_texts(&answer).as_slice() {
                        [] => return (SpfResult::None, format!("{domain} has no SPF record")),
                        [one] => one.clone(),
                        _ => {
                            let why = format!("{domain} has more than one SPF record");
                            return (SpfResult::PermError, why);
                        }
                    },
                },
            };
            let record = match SpfRecord::parse(&text) {
                Ok(record) => record,
                Err(error) => return (SpfResult::PermError, format!("{domain}: {error}")),
            };
            for directive in record.directives() {
                let term = directive.to_string();
                if directive.mechanism.queries_dns()
                    && let Some(stop) = self.count(&domain)
                {
                    return stop;
                }
                match self.matches(&directive.mechanism, &domain).await {
                    Match::Yes => {
                        let result = SpfResult::of(directive.qualifier);
                        return (result, format!("matched {term} in {domain}"));
                    }
                    Match::No => {}
                    Match::Stop(result, why) => return (result, why),
                }
            }
            if let Some(target) = record.redirect() {
                if let Some(stop) = self.count(&domain) {
                    return stop;
                }
                let target = self.target(Some(target), &domain);
                return match self.host(target.clone(), None).await {
                    (SpfResult::None, why) => (
                        SpfResult::PermError,
                        format!("redirect={target} of {domain}: {why}"),
                    ),
                    other => other,
                };
            }
            (
                SpfResult::Neutral,
                format!("nothing matched in {domain} (default neutral)"),
            )
        })
    }

    /// Counts one DNS-querying term; `Some(permerror)` past the limit.
    fn count(&mut self, domain: &str) -> Option<(SpfResult, String)> {
        self.lookups += 1;
        (self.lookups > LOOKUP_LIMIT).then(|| {
            (
                SpfResult::PermError,
                format!("more than {LOOKUP_LIMIT} DNS lookups (reached in {domain})"),
            )
        })
    }

    /// Counts a void answer; `Some(permerror)` past the limit.
    fn void_if(&mut self, answer: &Answer) -> Option<Match> {
        if !answer.is_void() {
            return None;
        }
        self.void += 1;
        (self.void > VOID_LOOKUP_LIMIT).then(|| {
            Match::Stop(
                SpfResult::PermError,
                format!("more than {VOID_LOOKUP_LIMIT} void DNS lookups"),
            )
        })
    }

    fn temperror(&mut self, error: DnsError) -> (SpfResult, String) {
        let why = error.to_string();
        self.dns_error.get_or_insert(error);
        (SpfResult::TempError, why)
    }

    fn target(&self, spec: Option<&MacroString>, domain: &str) -> String {
        match spec {
            None => domain.to_owned(),
            Some(spec) => spec.expand_for(&MacroContext {
                sender: self.sender,
                ip: self.ip,
                helo: self.helo,
                domain,
            }),
        }
    }

    fn address_type(&self) -> RecordType {
        match self.ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::Aaaa,
        }
    }

    async fn lookup(&mut self, name: &str, rtype: RecordType) -> Result<Answer, Match> {
        self.dns.lookup(name, rtype).await.map_err(|error| {
            let (result, why) = self.temperror(error);
            Match::Stop(result, why)
        })
    }

    async fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Match {
        match mechanism {
            Mechanism::All => Match::Yes,
            Mechanism::Ip4(addr, len) => {
                in_network(self.ip, IpAddr::V4(*addr), len.unwrap_or(32)).into()
            }
            Mechanism::Ip6(addr, len) => {
                in_network(self.ip, IpAddr::V6(*addr), len.unwrap_or(128)).into()
            }
            Mechanism::A(spec, cidr) => {
                let target = self.target(spec.as_ref(), domain);
                let answer = match self.lookup(&target, self.address_type()).await {
                    Ok(answer) => answer,
                    Err(stop) => return stop,
                };
                if let Some(stop) = self.void_if(&answer) {
                    return stop;
                }
                self.any_address(&answer, *cidr).into()
            }
            Mechanism::Mx(spec, cidr) => {
                let target = self.target(spec.as_ref(), domain);
                let answer = match self.lookup(&target, RecordType::Mx).await {
                    Ok(answer) => answer,
                    Err(stop) => return stop,
                };
                if let Some(stop) = self.void_if(&answer) {
                    return stop;
                }
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
                    let why = format!("mx:{target} has {} hosts, more than 10", hosts.len());
                    return Match::Stop(SpfResult::PermError, why);
                }
                for host in hosts {
                    let answer = match self.lookup(&host, self.address_type()).await {
                        Ok(answer) => answer,
                        Err(stop) => return stop,
                    };
                    if self.any_address(&answer, *cidr) {
                        return Match::Yes;
                    }
                }
                Match::No
            }
            Mechanism::Exists(spec) => {
                let target = self.target(Some(spec), domain);
                let answer = match self.lookup(&target, RecordType::A).await {
                    Ok(answer) => answer,
                    Err(stop) => return stop,
                };
                if let Some(stop) = self.void_if(&answer) {
                    return stop;
                }
                (!answer.records.is_empty()).into()
            }
            Mechanism::Include(spec) => {
                let target = self.target(Some(spec), domain);
                match self.host(target.clone(), None).await {
                    (SpfResult::Pass, _) => Match::Yes,
                    (SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral, _) => Match::No,
                    (SpfResult::TempError, why) => Match::Stop(SpfResult::TempError, why),
                    (SpfResult::PermError | SpfResult::None, why) => Match::Stop(
                        SpfResult::PermError,
                        format!("include:{target} in {domain}: {why}"),
                    ),
                }
            }
            Mechanism::Ptr(spec) => {
                let target = self.target(spec.as_ref(), domain);
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

    /// §5.5: the validated names of the client IP, one of which is `target` or below it.
    /// DNS errors here make the mechanism not match, as the RFC says.
    async fn ptr_matches(&mut self, target: &str) -> Match {
        let Ok(answer) = self
            .dns
            .lookup(&reverse_name(self.ip), RecordType::Ptr)
            .await
        else {
            return Match::No;
        };
        let names: Vec<String> = answer
            .records
            .iter()
            .filter_map(|r| match r {
                RData::Ptr(name) => Some(name.clone()),
                _ => None,
            })
            .take(10)
            .collect();
        for name in names {
            let in_target = name == target || name.ends_with(&format!(".{target}"));
            if !in_target {
                continue;
            }
            if let Ok(answer) = self.dns.lookup(&name, self.address_type()).await
                && answer.records.iter().any(|r| match r {
                    RData::A(a) => IpAddr::V4(*a) == self.ip,
                    RData::Aaaa(a) => IpAddr::V6(*a) == self.ip,
                    _ => false,
                })
            {
                return Match::Yes;
            }
        }
        Match::No
    }
}

impl From<bool> for Match {
    fn from(matched: bool) -> Match {
        if matched { Match::Yes } else { Match::No }
    }
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

/// `in-addr.arpa`/`ip6.arpa` name of an address.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(ip) => {
            let mut nibbles = super::macros::nibbles(ip);
            nibbles.reverse();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}
