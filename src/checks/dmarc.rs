//! DMARC check (RFC 7489): one `v=DMARC1` record at `_dmarc.<domain>`, its tags parsed and
//! validated, the policy compared with `expect.dmarc.policy` and with the learned one, and
//! external report destinations authorised (§7.1).
//!
//! Decisions:
//! - TXT records at `_dmarc` that do not start with `v=DMARC1` are not DMARC records and are
//!   ignored (§6.6.3); a record starting with another spelling of the version (`v=dmarc1`)
//!   is kept and reported as a syntax error, since receivers discard it;
//! - unknown tags are ignored (§6.3); known tags with bad values, a duplicate tag or a
//!   missing `p=` are syntax errors (a record without a valid `p=` is discarded, §6.6.3);
//! - no fallback to the organizational domain's record: a watched domain is expected to
//!   publish its own;
//! - "organizational domain" (for §7.1) by the Public Suffix List compiled into the binary
//!   ([`organizational_domain`]), private rules included as RFC 7489 §3.2 asks.

use super::tags::{Tag, parse_tags, tag};
use super::{
    Check, Context, Declared, Evaluation, FamilyValues, GaugeFamily, Input, JsonShape,
    RecordObservation,
};
use crate::config::{DmarcExpectation, DomainConfig};
use crate::dns::{DnsError, DnsView, RData, RecordType, normalize_name};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::{BoxFuture, join_all};
use serde::Serialize;

/// A DMARC policy (`p=`/`sp=`), ordered from weakest to strictest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DmarcPolicy {
    /// Monitor only.
    None,
    /// Deliver failing mail to spam.
    Quarantine,
    /// Reject failing mail.
    Reject,
}

impl DmarcPolicy {
    /// Parses `none`, `quarantine`, `reject` (case-insensitive).
    pub fn parse(text: &str) -> Option<DmarcPolicy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Some(DmarcPolicy::None),
            "quarantine" => Some(DmarcPolicy::Quarantine),
            "reject" => Some(DmarcPolicy::Reject),
            _ => None,
        }
    }

    /// The tag value, lower case; also the `policy` label of `maildrift_dmarc_policy_info`.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

/// Identifier alignment mode (`adkim=`/`aspf=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alignment {
    /// `r` (the default).
    Relaxed,
    /// `s`.
    Strict,
}

/// A report destination of `rua=`/`ruf=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportUri {
    /// The URI as written, size limit (`!10m`) removed.
    pub uri: String,
    /// For `mailto:` URIs, the domain of the address (normalised).
    pub domain: Option<String>,
}

/// A parsed DMARC record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcRecord {
    /// `p=`.
    pub policy: DmarcPolicy,
    /// `sp=` (subdomains), when given; otherwise subdomains get `p=`.
    pub subdomain_policy: Option<DmarcPolicy>,
    /// `pct=` (0–100, default 100).
    pub pct: u8,
    /// `rua=` aggregate report destinations.
    pub rua: Vec<ReportUri>,
    /// `ruf=` failure report destinations.
    pub ruf: Vec<ReportUri>,
    /// `adkim=`.
    pub adkim: Alignment,
    /// `aspf=`.
    pub aspf: Alignment,
}

/// A DMARC syntax error, quoting the offending tag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{0}")]
pub struct DmarcSyntaxError(pub String);

/// True when `text` is meant as a DMARC record: first tag `v=DMARC1`, any case.
pub fn is_dmarc(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    match first.split_once('=') {
        Some((name, value)) => {
            name.trim().eq_ignore_ascii_case("v") && value.trim().eq_ignore_ascii_case("DMARC1")
        }
        None => false,
    }
}

impl DmarcRecord {
    /// Parses a record (RFC 7489 §6.3, §6.4).
    pub fn parse(text: &str) -> Result<DmarcRecord, DmarcSyntaxError> {
        let err = |m: String| DmarcSyntaxError(m);
        let tags = parse_tags(text).map_err(|e| err(e.to_string()))?;
        match tags.first() {
            Some(Tag { name, value }) if name == "v" && value == "DMARC1" => {}
            Some(Tag { name, value }) => {
                return Err(err(format!(
                    "the record must start with \"v=DMARC1\", not \"{name}={value}\""
                )));
            }
            None => return Err(err("empty record".to_owned())),
        }
        let policy_tag = |name: &str| -> Result<Option<DmarcPolicy>, DmarcSyntaxError> {
            match tag(&tags, name) {
                None => Ok(None),
                Some(value) => DmarcPolicy::parse(value).map(Some).ok_or_else(|| {
                    err(format!(
                        "{name}={value:?}: expected none, quarantine or reject"
                    ))
                }),
            }
        };
        let Some(policy) = policy_tag("p")? else {
            return Err(err("missing the required p= tag".to_owned()));
        };
        let subdomain_policy = policy_tag("sp")?;
        let pct = match tag(&tags, "pct") {
            None => 100,
            Some(value) => match value.parse::<u8>() {
                Ok(pct) if pct <= 100 => pct,
                _ => return Err(err(format!("pct={value:?}: expected 0 to 100"))),
            },
        };
        let alignment = |name: &str| match tag(&tags, name) {
            None => Ok(Alignment::Relaxed),
            Some(v) if v.eq_ignore_ascii_case("r") => Ok(Alignment::Relaxed),
            Some(v) if v.eq_ignore_ascii_case("s") => Ok(Alignment::Strict),
            Some(v) => Err(err(format!("{name}={v:?}: expected r or s"))),
        };
        Ok(DmarcRecord {
            policy,
            subdomain_policy,
            pct,
            rua: report_uris(&tags, "rua")?,
            ruf: report_uris(&tags, "ruf")?,
            adkim: alignment("adkim")?,
            aspf: alignment("aspf")?,
        })
    }
}

/// `rua=`/`ruf=`: comma-separated URIs, each with an optional `!size` suffix (§6.2).
fn report_uris(tags: &[Tag], name: &str) -> Result<Vec<ReportUri>, DmarcSyntaxError> {
    let Some(value) = tag(tags, name) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim) {
        let uri = item.split_once('!').map_or(item, |(uri, _)| uri).trim();
        let bad = |why: &str| DmarcSyntaxError(format!("{name}: {item:?} {why}"));
        let Some((scheme, rest)) = uri.split_once(':') else {
            return Err(bad("is not a URI (expected mailto:address)"));
        };
        let domain = if scheme.eq_ignore_ascii_case("mailto") {
            let address = rest.split('?').next().unwrap_or_default();
            match address.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() && domain.contains('.') => {
                    Some(normalize_name(domain))
                }
                _ => return Err(bad("is not a mailto: address")),
            }
        } else {
            None
        };
        out.push(ReportUri {
            uri: uri.to_owned(),
            domain,
        });
    }
    Ok(out)
}

/// The organizational domain of a name (RFC 7489 §3.2), by the Public Suffix List.
pub use crate::dns::names::organizational_domain;

/// Whether one external destination publishes the §7.1 authorization record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportAuthorization {
    /// The destination domain.
    pub destination: String,
    /// The name asked: `<domain>._report._dmarc.<destination>`.
    pub name: String,
    /// True when a `v=DMARC1` TXT record is published there.
    pub authorized: bool,
}

/// The conclusive part of a DMARC observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcSet {
    /// Every TXT record at `_dmarc` meant as DMARC, whitespace-normalised.
    pub records: Vec<String>,
    /// TTL of the answer, when it held DMARC records.
    pub ttl: Option<u32>,
    /// The parsed record, when there was exactly one.
    pub parsed: Option<Result<DmarcRecord, DmarcSyntaxError>>,
    /// One entry per external report destination domain.
    pub authorizations: Vec<ReportAuthorization>,
}

/// What was seen of a domain's DMARC record.
#[derive(Clone, Debug)]
pub struct DmarcObservation {
    /// The domain checked, normalised.
    pub domain: String,
    /// The record set, or the first lookup that was inconclusive.
    pub result: Result<DmarcSet, DnsError>,
}

impl DmarcObservation {
    /// The published `p=`, when there is exactly one valid record.
    pub fn policy(&self) -> Option<DmarcPolicy> {
        match &self.result {
            Ok(DmarcSet {
                parsed: Some(Ok(record)),
                ..
            }) => Some(record.policy),
            _ => None,
        }
    }

    /// The `policy` label of `maildrift_dmarc_policy_info` (`missing` when there is no
    /// single valid record); `None` when inconclusive.
    pub fn policy_label(&self) -> Option<&'static str> {
        self.result
            .is_ok()
            .then(|| self.policy().map_or("missing", DmarcPolicy::as_str))
    }
}

/// The `p=` of the first valid DMARC record among `values` (e.g. a learned baseline).
pub fn policy_of(values: &[String]) -> Option<DmarcPolicy> {
    values
        .iter()
        .find_map(|v| DmarcRecord::parse(v).ok())
        .map(|r| r.policy)
}

/// Reads `_dmarc.<domain>` from `view.zone`, and the authorization records of external
/// report destinations from `view.recursive`.
pub async fn observe(domain: &str, view: &DnsView) -> DmarcObservation {
    let domain = normalize_name(domain);
    let result = observe_set(&domain, view).await;
    DmarcObservation { domain, result }
}

async fn observe_set(domain: &str, view: &DnsView) -> Result<DmarcSet, DnsError> {
    let answer = view
        .zone
        .lookup(&format!("_dmarc.{domain}"), RecordType::Txt)
        .await?;
    let records: Vec<String> = answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Txt(text) if is_dmarc(text) => Some(text.trim().to_owned()),
            _ => None,
        })
        .collect();
    let ttl = (!records.is_empty()).then_some(answer.ttl);
    let parsed = match records.as_slice() {
        [single] => Some(DmarcRecord::parse(single)),
        _ => None,
    };
    let mut destinations: Vec<String> = Vec::new();
    if let Some(Ok(record)) = &parsed {
        let own = organizational_domain(domain);
        for uri in record.rua.iter().chain(&record.ruf) {
            if let Some(dest) = &uri.domain
                && organizational_domain(dest) != own
                && !destinations.contains(dest)
            {
                destinations.push(dest.clone());
            }
        }
    }
    let dns = view.recursive.as_ref();
    let answers = join_all(destinations.iter().map(|dest| async move {
        let name = format!("{domain}._report._dmarc.{dest}");
        let answer = dns.lookup(&name, RecordType::Txt).await?;
        let authorized = answer
            .records
            .iter()
            .any(|r| matches!(r, RData::Txt(text) if is_dmarc(text)));
        Ok::<_, DnsError>(ReportAuthorization {
            destination: dest.clone(),
            name,
            authorized,
        })
    }))
    .await;
    let authorizations = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(DmarcSet {
        records,
        ttl,
        parsed,
        authorizations,
    })
}

/// `maildrift_dmarc_policy_info{policy}`: every policy exported, 1 for the published one.
pub static POLICY_INFO: GaugeFamily = GaugeFamily {
    name: "maildrift_dmarc_policy_info",
    help: "1 for the published DMARC policy (missing: no single valid record).",
    labels: &["policy"],
    initial: &[
        (&["none"], 0.0),
        (&["quarantine"], 0.0),
        (&["reject"], 0.0),
        (&["missing"], 0.0),
    ],
    json: Some(JsonShape::Label("dmarc_policy")),
    export: super::Export::NonZero,
};

/// The DMARC check. It remembers the last published policy, so that a weaker one is
/// `dmarc_policy_weakened` even without an expectation.
#[derive(Debug, Default)]
pub struct Dmarc;

impl Check for Dmarc {
    const KIND: CheckKind = CheckKind::Dmarc;
    type Observation = DmarcObservation;
    type Memory = DmarcPolicy;
    const FAMILIES: &'static [&'static GaugeFamily] = &[&POLICY_INFO];

    fn declared(&self, config: &DomainConfig) -> bool {
        config.expect.dmarc.is_some()
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, DmarcObservation> {
        Box::pin(observe(ctx.domain(), ctx.dns))
    }

    /// The policy a weaker one is compared with: the learned baseline's (so a weakened
    /// policy stays reported until the baseline is accepted anew), else the last seen.
    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &DmarcObservation,
        input: Input<'_, DmarcPolicy>,
    ) -> Evaluation<DmarcPolicy> {
        let previous = match input.reference.learned() {
            Some(baseline) => policy_of(baseline),
            None => input.memory.copied(),
        };
        evaluate(
            ctx.domain(),
            observation,
            ctx.config.expect.dmarc.as_ref(),
            previous,
        )
    }
}

/// Turns an observation into findings, and (with `expect`) the policy drift compares with
/// the expected one. `previous` is the policy learned earlier (the baseline, or the last
/// conclusive run): publishing a weaker one is `dmarc_policy_weakened`.
pub fn evaluate(
    domain: &str,
    observation: &DmarcObservation,
    expect: Option<&DmarcExpectation>,
    previous: Option<DmarcPolicy>,
) -> Evaluation<DmarcPolicy> {
    let set = match &observation.result {
        Ok(set) => set,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let mut values = set.records.clone();
    values.sort();
    let records = vec![RecordObservation::new("dmarc", values, set.ttl)];
    let mut findings = Vec::new();
    let name = format!("_dmarc.{domain}");
    let expected = expect.and_then(|e| DmarcPolicy::parse(&e.policy));
    let observed = match (&set.records[..], &set.parsed) {
        ([], _) => {
            let severity = match expected {
                Some(p) if p > DmarcPolicy::None => Severity::Critical,
                _ => Severity::Warning,
            };
            findings.push(
                Finding::new(
                    FindingCode::DmarcMissing,
                    severity,
                    format!("{domain} publishes no DMARC record at {name}"),
                )
                .with("name", &name),
            );
            None
        }
        (_, Some(Err(error))) => {
            findings.push(
                Finding::new(
                    FindingCode::DmarcSyntaxError,
                    Severity::Critical,
                    format!("DMARC record of {domain} is invalid, receivers ignore it: {error}"),
                )
                .with("record", &set.records[0]),
            );
            None
        }
        (_, Some(Ok(record))) => {
            findings.extend(record_findings(domain, record, expected, previous, set));
            Some(record.policy)
        }
        (_, None) => {
            findings.push(
                Finding::new(
                    FindingCode::DmarcMultipleRecords,
                    Severity::Critical,
                    format!(
                        "{domain} publishes {} DMARC records at {name}; receivers apply none (RFC 7489 §6.6.3)",
                        set.records.len()
                    ),
                )
                .with("records", &set.records),
            );
            None
        }
    };
    let declared = expected.map(|expected| {
        let from = vec![format!("p={}", expected.as_str())];
        let to: Vec<String> = observed
            .map(|p| format!("p={}", p.as_str()))
            .into_iter()
            .collect();
        let mut declared = Declared::new(from, to);
        // A stricter policy than expected is a change worth seeing, not a page.
        if observed.is_some_and(|p| p > expected) {
            declared.severity = Severity::Warning;
        }
        declared
    });
    let label = observation.policy_label().unwrap_or("missing");
    Evaluation::conclusive(records, findings)
        .with_declared(declared)
        .with_gauge(FamilyValues::info(&POLICY_INFO, label))
        .with_memory(observed)
}

fn record_findings(
    domain: &str,
    record: &DmarcRecord,
    expected: Option<DmarcPolicy>,
    previous: Option<DmarcPolicy>,
    set: &DmarcSet,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let policy = record.policy;
    if policy == DmarcPolicy::None {
        let severity = if expected == Some(DmarcPolicy::None) {
            Severity::Info
        } else {
            Severity::Warning
        };
        out.push(
            Finding::new(
                FindingCode::DmarcPolicyNone,
                severity,
                format!("DMARC policy of {domain} is p=none: spoofed mail is only reported, not rejected"),
            )
            .with("record", &set.records[0]),
        );
    }
    let weaker_than = |reference: Option<DmarcPolicy>| reference.filter(|r| policy < *r);
    if let Some(reference) = weaker_than(expected).or(weaker_than(previous)) {
        let against = if weaker_than(expected).is_some() {
            "expected"
        } else {
            "previously published"
        };
        out.push(
            Finding::new(
                FindingCode::DmarcPolicyWeakened,
                Severity::Warning,
                format!(
                    "DMARC policy of {domain} weakened from p={} ({against}) to p={}",
                    reference.as_str(),
                    policy.as_str()
                ),
            )
            .with("from", reference.as_str())
            .with("to", policy.as_str())
            .with("reference", against),
        );
    }
    if record.pct < 100 && policy > DmarcPolicy::None {
        out.push(
            Finding::new(
                FindingCode::DmarcPctPartial,
                Severity::Warning,
                format!(
                    "DMARC policy p={} of {domain} applies to only {}% of failing mail (pct={})",
                    policy.as_str(),
                    record.pct,
                    record.pct
                ),
            )
            .with("pct", record.pct),
        );
    }
    for auth in set.authorizations.iter().filter(|a| !a.authorized) {
        out.push(
            Finding::new(
                FindingCode::DmarcExternalReportUnauthorized,
                Severity::Warning,
                format!(
                    "DMARC reports of {domain} go to {}, which does not authorise them: no v=DMARC1 record at {} (RFC 7489 §7.1), so receivers drop the reports",
                    auth.destination, auth.name
                ),
            )
            .with("destination", &auth.destination)
            .with("name", &auth.name),
        );
    }
    out
}

#[cfg(test)]
#[path = "dmarc_tests.rs"]
mod tests;
