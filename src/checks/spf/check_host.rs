//! RFC 7208 `check_host()` (§4): the result a receiver computes for one SMTP connection
//! (client IP, MAIL FROM, HELO), with macros expanded, every mechanism and modifier
//! evaluated (§5, §6), the limits of §4.6.4 enforced, the explanation of a `fail` (§6.2),
//! and a trace of each term evaluated. `maildrift spf` prints it; `expect.spf.authorizes`
//! runs it for each listed connection.
//!
//! Decisions, each from the RFC unless marked:
//! - an IPv4-mapped IPv6 client (`::ffff:192.0.2.1`) is evaluated as the IPv4 address
//!   (§5: it "MUST still be considered an IPv4 address");
//! - the sender: an empty MAIL FROM checks `postmaster@<HELO>` (§2.4), a missing local part
//!   is `postmaster` (§4.3); a bare domain stands for `postmaster@<domain>` (ours);
//! - a malformed `<domain>` (an empty or 64+-octet label, a single label, a domain literal)
//!   gives `none` at once (§4.3);
//! - a target that cannot be a DNS name (an empty or 64+-octet label once macros are
//!   expanded) names nothing: it is not asked, `a`/`mx`/`exists`/`ptr` do not match,
//!   `include`/`redirect` find no record (`permerror`, §5.2, §6.1), `exp` falls back to no
//!   explanation (§6.2). Any other octets are a valid name (§4.8, §7.3) and are asked;
//! - counting, see [`super::evaluator`].

use super::evaluator::{Entry, Evaluator};
use crate::dns::{DnsError, DnsLookup, RData};
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

/// §4.6.4: processors "SHOULD impose a limit on the maximum amount of elapsed time to
/// evaluate check_host()", allowing at least 20 seconds; past it, the result is temperror.
pub const TIME_LIMIT: Duration = Duration::from_secs(20);

/// A `check_host()` result (§2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
}

/// One SMTP connection to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfConnection {
    /// The client IP.
    pub ip: IpAddr,
    /// MAIL FROM as given: `local@domain`, `@domain`, a bare domain (`postmaster@` it), or
    /// empty (the null reverse path: the HELO identity is checked).
    pub sender: String,
    /// The HELO/EHLO name (`%{h}`, and the identity when `sender` is empty).
    pub helo: String,
}

impl SpfConnection {
    /// A connection; without a HELO name, the sender's domain is used as one.
    pub fn new(ip: IpAddr, sender: impl Into<String>, helo: Option<&str>) -> SpfConnection {
        let mut connection = SpfConnection {
            ip,
            sender: sender.into(),
            helo: helo.unwrap_or_default().to_owned(),
        };
        if helo.is_none() {
            connection.helo = connection.identity().1;
        }
        connection
    }

    /// The `<sender>` and `<domain>` of `check_host()` (§2.4, §4.3).
    pub fn identity(&self) -> (String, String) {
        let sender = self.sender.trim();
        let (local, domain) = match sender.rsplit_once('@') {
            Some((local, domain)) => (local, domain),
            None if sender.is_empty() => ("", self.helo.trim()),
            None => ("", sender),
        };
        let local = if local.is_empty() {
            "postmaster"
        } else {
            local
        };
        (format!("{local}@{domain}"), domain.to_owned())
    }
}

/// One DNS question asked while evaluating a term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfQuery {
    /// The name asked (normalised).
    pub name: String,
    /// `A`, `AAAA`, `MX`, `TXT` or `PTR`.
    #[serde(rename = "type")]
    pub rtype: &'static str,
    /// `records`, `nodata`, `nxdomain`, `error` (timeout, SERVFAIL, ...), or `not_asked`
    /// (the name cannot be a DNS name).
    pub status: &'static str,
    /// The records as in zone files, or why there are none.
    pub answer: Vec<String>,
}

impl SpfQuery {
    /// The question and what came back, for the trace.
    pub(super) fn of(
        name: &str,
        rtype: crate::dns::RecordType,
        outcome: &Result<crate::dns::Answer, DnsError>,
    ) -> SpfQuery {
        use crate::dns::AnswerStatus;
        let (status, answer) = match outcome {
            Ok(answer) => match answer.status {
                AnswerStatus::Records => (
                    "records",
                    answer.records.iter().map(RData::to_string).collect(),
                ),
                AnswerStatus::NoData => ("nodata", Vec::new()),
                AnswerStatus::NxDomain => ("nxdomain", Vec::new()),
            },
            Err(DnsError::InvalidName { reason, .. }) => ("not_asked", vec![reason.clone()]),
            Err(error) => ("error", vec![error.to_string()]),
        };
        SpfQuery {
            name: name.to_owned(),
            rtype: rtype.as_str(),
            status,
            answer,
        }
    }
}

/// One term evaluated, in evaluation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfTraceStep {
    /// The domain whose record holds the term.
    pub domain: String,
    /// The term as written, e.g. `include:_spf.example.com` or `-all`.
    pub term: String,
    /// For a mechanism, whether it matched. For `redirect=`, whether the target had a
    /// record that was evaluated; for `exp=`, whether its explanation was used.
    pub matched: bool,
    /// The DNS questions the term asked itself (those of an included record are its own
    /// steps), with their answers.
    pub queries: Vec<SpfQuery>,
    /// Include/redirect nesting: 0 for the terms of `<domain>`'s own record.
    #[serde(skip)]
    pub depth: usize,
}

/// The outcome of one `check_host()` run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfEvaluation {
    /// The result.
    pub result: SpfResult,
    /// The `exp=` explanation of a `fail`, macros expanded; `None` when there is none (no
    /// `exp=`, or its target unusable: the caller's default explanation applies).
    pub explanation: Option<String>,
    /// DNS-querying terms counted against the limit of 10 (§4.6.4).
    pub lookups: u32,
    /// Void lookups counted against the limit of 2 (§4.6.4).
    pub void_lookups: u32,
    /// Every term evaluated, in order.
    pub trace: Vec<SpfTraceStep>,
    /// The client IP as evaluated (IPv4 for an IPv4-mapped address).
    pub ip: IpAddr,
    /// `<sender>` as evaluated.
    pub sender: String,
    /// The HELO name.
    pub helo: String,
    /// `<domain>`: the domain whose policy was evaluated.
    pub domain: String,
    /// Why: the term that decided and its record's domain, or the error.
    pub reason: String,
    /// The DNS failure behind a `temperror`, if any.
    #[serde(skip)]
    pub dns_error: Option<DnsError>,
}

/// `check_host()` for `connection`, every record looked up through `dns`.
pub async fn check_host(dns: &dyn DnsLookup, connection: &SpfConnection) -> SpfEvaluation {
    check_host_with_record(dns, connection, None).await
}

/// As [`check_host`], with a record already read: `known` is (domain, record text), used
/// when the connection's `<domain>` is that domain, so that the daemon's check evaluates
/// the very record it observed.
pub async fn check_host_with_record(
    dns: &dyn DnsLookup,
    connection: &SpfConnection,
    known: Option<(&str, &str)>,
) -> SpfEvaluation {
    let ip = match connection.ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(connection.ip, IpAddr::V4),
        v4 => v4,
    };
    let (sender, domain) = connection.identity();
    let helo = connection.helo.trim().to_owned();
    let domain = crate::dns::normalize_name(&domain);
    let mut evaluation = SpfEvaluation {
        result: SpfResult::None,
        explanation: None,
        lookups: 0,
        void_lookups: 0,
        trace: Vec::new(),
        ip,
        sender,
        helo,
        domain,
        reason: String::new(),
        dns_error: None,
    };
    if let Some(why) = malformed_domain(&evaluation.domain) {
        evaluation.reason = format!(
            "{:?} is not a domain SPF applies to: {why} (RFC 7208 §4.3)",
            evaluation.domain
        );
        return evaluation;
    }
    let record = known
        .filter(|(domain, _)| crate::dns::normalize_name(domain) == evaluation.domain)
        .map(|(_, record)| record.to_owned());
    let mut evaluator = Evaluator::new(dns, ip, &evaluation.sender, &evaluation.helo);
    let run = evaluator.host(evaluation.domain.clone(), record, Entry::Top);
    let verdict = tokio::time::timeout(TIME_LIMIT, run).await;
    match verdict {
        Ok(verdict) => {
            evaluation.result = verdict.result;
            evaluation.reason = verdict.reason;
            evaluation.explanation = verdict.explanation;
        }
        Err(_elapsed) => {
            let why = format!("check_host() took longer than {TIME_LIMIT:?}");
            evaluation.result = SpfResult::TempError;
            evaluator.dns_error.get_or_insert(DnsError::Transport {
                server: "resolvers".to_owned(),
                name: evaluation.domain.clone(),
                reason: why.clone(),
            });
            evaluation.reason = why;
        }
    }
    evaluation.lookups = evaluator.lookups;
    evaluation.void_lookups = evaluator.void;
    evaluation.trace = evaluator.trace;
    evaluation.dns_error = evaluator.dns_error;
    evaluation
}

/// Why `name` cannot be a DNS name, if it cannot: an empty label, a label of more than 63
/// octets, more than 253 octets (RFC 1035 §2.3.4). Any octets are allowed in a label.
pub(super) fn name_problem(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Some("empty name".to_owned());
    }
    if name.len() > 253 {
        return Some(format!("{} octets, more than 253", name.len()));
    }
    if name.split('.').any(str::is_empty) {
        return Some("empty label".to_owned());
    }
    name.split('.')
        .find(|label| label.len() > 63)
        .map(|label| format!("label of {} octets, more than 63", label.len()))
}

/// Why `<domain>` makes `check_host()` return `none` at once (§4.3), if it does.
fn malformed_domain(domain: &str) -> Option<String> {
    if domain.starts_with('[') {
        return Some("a domain literal".to_owned());
    }
    if let Some(problem) = name_problem(domain) {
        return Some(problem);
    }
    (!domain.contains('.')).then(|| "not a multi-label domain name".to_owned())
}

/// A `check_host()` outcome as the SPF check keeps it (for `expect.spf.authorizes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfAuthorization {
    /// The client IP evaluated.
    pub ip: IpAddr,
    /// `<sender>` evaluated.
    pub sender: String,
    /// The HELO name.
    pub helo: String,
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

impl From<SpfEvaluation> for SpfAuthorization {
    fn from(evaluation: SpfEvaluation) -> SpfAuthorization {
        SpfAuthorization {
            ip: evaluation.ip,
            sender: evaluation.sender,
            helo: evaluation.helo,
            result: evaluation.result,
            reason: evaluation.reason,
            lookups: evaluation.lookups,
            dns_error: evaluation.dns_error,
        }
    }
}
