//! SPF evaluation: a pure function from an [`SpfObservation`] (and an expectation) to
//! findings.
//!
//! Decisions:
//! - an expected include is satisfied by an `include:` (or a followed `redirect=`) of that
//!   domain anywhere in the expansion tree, top-level or nested: what matters is that the
//!   provider's senders are authorised, not where the include is written;
//! - the `all` compared is the one the evaluator ends with (the record's own, else the
//!   redirect target's); no `all` at all behaves as `?all` (default result neutral, §4.7);
//! - drift compares only the keys the expectation names (`include:X` for each expected
//!   include, plus the `all` term when one is expected): extra includes are not drift;
//! - when the top record is missing, duplicated or unparsable, only that finding is given
//!   (plus `drift` when a record was expected but none is published): everything else
//!   would be noise about a policy that evaluates to none/permerror anyway.

use super::record::Qualifier;
use super::{
    IPSET_FINGERPRINT, LOOKUP_LIMIT, LOOKUPS, SpfNode, SpfObservation, SpfProblem, SpfResult,
    VOID_LOOKUP_LIMIT, VOID_LOOKUPS, Via,
};
use crate::checks::{Declared, Evaluation, FamilyValues, RecordObservation, fingerprint};
use crate::config::SpfExpectation;
use crate::finding::{Finding, FindingCode, Severity};

/// Turns an observation into records, findings and gauges, and (with `expect`) what drift
/// compares with it: the keys the expectation names. `previous` is the address set the
/// last conclusive run authorised (`spf_ipset_changed`); the evaluation remembers this
/// run's for the next.
pub fn evaluate(
    domain: &str,
    observation: &SpfObservation,
    expect: Option<&SpfExpectation>,
    previous: Option<&[String]>,
) -> Evaluation<Vec<String>> {
    if let Some(error) = &observation.error {
        return Evaluation::inconclusive(error);
    }
    let mut values = observation.records.clone();
    values.sort();
    let records = vec![RecordObservation::new("spf", values, observation.ttl)];
    let (mut findings, declared) = findings(domain, observation, expect);
    findings.extend(ipset_finding(domain, observation, previous));
    let mut evaluation = Evaluation::conclusive(records, findings)
        .with_declared(declared)
        .with_gauge(FamilyValues::one(&LOOKUPS, f64::from(observation.lookups)))
        .with_gauge(FamilyValues::one(
            &VOID_LOOKUPS,
            f64::from(observation.void_lookups),
        ));
    if observation.truncated.is_none() {
        let ipset = observation.authorized_networks();
        evaluation = evaluation
            .with_gauge(FamilyValues::one(
                &IPSET_FINGERPRINT,
                fingerprint(&ipset) as f64,
            ))
            .with_memory(Some(ipset));
    }
    evaluation
}

fn findings(
    domain: &str,
    observation: &SpfObservation,
    expect: Option<&SpfExpectation>,
) -> (Vec<Finding>, Option<Declared>) {
    let mut out = Vec::new();
    if observation.records.is_empty() {
        out.push(Finding::new(
            FindingCode::SpfMissing,
            Severity::Critical,
            format!("{domain} publishes no SPF (v=spf1) TXT record"),
        ));
        let declared = expect.map(|e| Declared::new(expected_values(e), Vec::new()));
        return (out, declared);
    }
    if observation.records.len() > 1 {
        out.push(
            Finding::new(
                FindingCode::SpfMultipleRecords,
                Severity::Critical,
                format!(
                    "{domain} publishes {} SPF records; evaluators return permerror (RFC 7208 §4.5)",
                    observation.records.len()
                ),
            )
            .with("domain", domain)
            .with("records", &observation.records),
        );
        return (out, None);
    }
    let Some(tree) = &observation.tree else {
        return (out, None);
    };
    if let Some(SpfProblem::Syntax { error, .. }) = observation
        .problems
        .iter()
        .find(|p| matches!(p, SpfProblem::Syntax { path, .. } if path.len() == 1))
    {
        out.push(
            Finding::new(
                FindingCode::SpfSyntaxError,
                Severity::Critical,
                format!("SPF record of {domain}: {error}"),
            )
            .with("domain", domain)
            .with("term", &error.term)
            .with("record", &tree.record),
        );
        return (out, None);
    }
    out.extend(observation.problems.iter().map(problem_finding));
    out.extend(authorization_findings(domain, observation));
    out.extend(limit_findings(observation, tree));
    out.extend(all_findings(domain, tree));
    let declared = expect.map(|expect| expectation_findings(tree, expect, &mut out));
    (out, declared)
}

fn problem_finding(problem: &SpfProblem) -> Finding {
    let at = |path: &[String]| path.join(" → ");
    match problem {
        SpfProblem::Syntax { path, error } => Finding::new(
            FindingCode::SpfSyntaxError,
            Severity::Critical,
            format!("SPF record of {} (via {}): {error}", path.last().map_or("", |d| d), at(path)),
        )
        .with("path", path)
        .with("term", &error.term),
        SpfProblem::NoRecord { path, term, void } => Finding::new(
            FindingCode::SpfIncludeNoRecord,
            Severity::Critical,
            format!("{term} in {} points to a domain without an SPF record: permerror", at(path)),
        )
        .with("path", path)
        .with("term", term)
        .with("void", void),
        SpfProblem::MultipleRecords { path, records } => Finding::new(
            FindingCode::SpfMultipleRecords,
            Severity::Critical,
            format!("{} publishes {} SPF records: permerror", at(path), records.len()),
        )
        .with("path", path)
        .with("records", records),
        SpfProblem::Loop { chain } => Finding::new(
            FindingCode::SpfIncludeLoop,
            Severity::Critical,
            format!("SPF include loop: {}", at(chain)),
        )
        .with("chain", chain),
        SpfProblem::TooManyMxHosts { path, term, hosts } => Finding::new(
            FindingCode::SpfLookupLimitExceeded,
            Severity::Critical,
            format!(
                "{term} in {} has {hosts} MX hosts; at most {} may be looked up (RFC 7208 §4.6.4): permerror",
                at(path),
                super::MX_HOST_LIMIT
            ),
        )
        .with("path", path)
        .with("term", term)
        .with("mx_hosts", hosts),
    }
}

fn limit_findings(observation: &SpfObservation, tree: &SpfNode) -> Vec<Finding> {
    let mut out = Vec::new();
    let lookups = observation.lookups;
    let breakdown: Vec<serde_json::Value> = tree
        .children
        .iter()
        .map(|c| serde_json::json!({"domain": c.domain, "lookups": c.total_lookups()}))
        .collect();
    let unexpanded: Vec<&String> = tree
        .walk()
        .into_iter()
        .flat_map(|n| &n.unexpanded)
        .collect();
    let (code, severity, what) = if lookups > LOOKUP_LIMIT {
        (
            FindingCode::SpfLookupLimitExceeded,
            Severity::Critical,
            "exceeds",
        )
    } else {
        (
            FindingCode::SpfLookupLimitNear,
            Severity::Warning,
            "is close to",
        )
    };
    if lookups + 1 >= LOOKUP_LIMIT {
        let at_least = if observation.truncated.is_some() {
            "at least "
        } else {
            ""
        };
        out.push(
            Finding::new(
                code,
                severity,
                format!("SPF needs {at_least}{lookups} DNS lookups, which {what} the limit of {LOOKUP_LIMIT} (RFC 7208 §4.6.4)"),
            )
            .with("lookups", lookups)
            .with("limit", LOOKUP_LIMIT)
            .with("top_level_lookups", tree.lookups)
            .with("includes", &breakdown)
            .with("unexpanded", &unexpanded)
            .with("truncated", &observation.truncated),
        );
    }
    if observation.void_lookups > VOID_LOOKUP_LIMIT {
        out.push(
            Finding::new(
                FindingCode::SpfVoidLookupLimitExceeded,
                Severity::Critical,
                format!(
                    "SPF expansion has {} void lookups (NODATA/NXDOMAIN), more than the limit of {VOID_LOOKUP_LIMIT} (RFC 7208 §4.6.4)",
                    observation.void_lookups
                ),
            )
            .with("void_lookups", observation.void_lookups)
            .with("limit", VOID_LOOKUP_LIMIT),
        );
    }
    out
}

fn all_findings(domain: &str, tree: &SpfNode) -> Vec<Finding> {
    let mut out = Vec::new();
    let effective = tree.effective_all();
    let (severity, message) = match effective {
        Some(Qualifier::Pass) => (
            Severity::Critical,
            format!("SPF of {domain} ends in +all: anyone may send as {domain}"),
        ),
        Some(Qualifier::Neutral) => (
            Severity::Warning,
            format!("SPF of {domain} ends in ?all: unlisted senders get neutral"),
        ),
        None => (
            Severity::Warning,
            format!("SPF of {domain} has no all term: unlisted senders get neutral, as with ?all"),
        ),
        Some(_) => (Severity::Info, String::new()),
    };
    if !message.is_empty() {
        out.push(
            Finding::new(FindingCode::SpfPermissiveAll, severity, message)
                .with("domain", domain)
                .with("all", all_term(effective)),
        );
    }
    // An included record with +all makes a pass-qualified include match every sender.
    for node in tree.walk().into_iter().skip(1) {
        if node.all == Some(Qualifier::Pass) && node.via == Via::Include(Qualifier::Pass) {
            out.push(
                Finding::new(
                    FindingCode::SpfPermissiveAll,
                    Severity::Critical,
                    format!(
                        "included SPF record of {} ends in +all: the include matches any sender",
                        node.domain
                    ),
                )
                .with("domain", &node.domain)
                .with("record", &node.record),
            );
        }
    }
    out
}

/// Findings about the expected includes and `all`, into `out`; returns what drift compares.
fn expectation_findings(
    tree: &SpfNode,
    expect: &SpfExpectation,
    out: &mut Vec<Finding>,
) -> Declared {
    let present: Vec<String> = tree
        .walk()
        .into_iter()
        .flat_map(|n| n.includes.iter().cloned())
        .collect();
    let mut observed = Vec::new();
    for include in &expect.includes {
        let include = crate::dns::normalize_name(include);
        if present.contains(&include) {
            observed.push(format!("include:{include}"));
        } else {
            out.push(
                Finding::new(
                    FindingCode::SpfExpectedIncludeMissing,
                    Severity::Critical,
                    format!("SPF of {} does not include {include}", tree.domain),
                )
                .with("include", &include)
                .with("record", &tree.record),
            );
        }
    }
    let effective = tree.effective_all();
    if let Some(expected) = expect.all.as_deref().and_then(Qualifier::parse_all_term) {
        observed.push(all_term(effective));
        let got = effective.unwrap_or(Qualifier::Neutral);
        if got != expected {
            let severity = if got.strictness() < expected.strictness() {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(
                Finding::new(
                    FindingCode::SpfAllMismatch,
                    severity,
                    format!(
                        "SPF of {} ends in {}, expected {}",
                        tree.domain,
                        all_term(effective),
                        all_term(Some(expected))
                    ),
                )
                .with("expected", all_term(Some(expected)))
                .with("observed", all_term(effective)),
            );
        }
    }
    if expect.record.is_some() {
        observed.push(record_value(&tree.record));
    }
    Declared::new(expected_values(expect), observed).with("record", &tree.record)
}

/// What drift compares for `expect.spf.record`: the record, white space collapsed, in
/// lower case (SPF terms are case-insensitive, RFC 7208 §4.6.1).
fn record_value(record: &str) -> String {
    format!(
        "record:{}",
        super::normalize_record(record).to_ascii_lowercase()
    )
}

fn authorization_findings(domain: &str, observation: &SpfObservation) -> Vec<Finding> {
    let default_sender = format!("postmaster@{domain}");
    observation
        .authorizations
        .iter()
        .filter(|a| a.result != SpfResult::Pass)
        .map(|a| {
            let connection = if a.sender == default_sender && a.helo == domain {
                String::new()
            } else {
                format!(" (MAIL FROM {}, HELO {})", a.sender, a.helo)
            };
            Finding::new(
                FindingCode::SpfNotAuthorized,
                Severity::Critical,
                format!(
                    "SPF of {domain} gives {} for sending IP {}{connection}, not pass: {}",
                    a.result.as_str(),
                    a.ip,
                    a.reason
                ),
            )
            .with("ip", a.ip)
            .with("sender", &a.sender)
            .with("helo", &a.helo)
            .with("result", a.result)
            .with("reason", &a.reason)
            .with("lookups", a.lookups)
        })
        .collect()
}

/// `spf_ipset_changed` (info) when the authorised networks differ from those of the
/// previous conclusive run; `None` on the first run, when nothing changed, or when the
/// observation is inconclusive or was cut short.
pub fn ipset_finding(
    domain: &str,
    observation: &SpfObservation,
    previous: Option<&[String]>,
) -> Option<Finding> {
    let previous = previous?;
    if observation.error.is_some() || observation.truncated.is_some() {
        return None;
    }
    let current = observation.authorized_networks();
    if current == previous {
        return None;
    }
    let added: Vec<&String> = current.iter().filter(|n| !previous.contains(n)).collect();
    let removed: Vec<&String> = previous.iter().filter(|n| !current.contains(n)).collect();
    let fingerprint = |set: &[String]| format!("{:013x}", fingerprint(set));
    Some(
        Finding::new(
            FindingCode::SpfIpsetChanged,
            Severity::Info,
            format!(
                "the addresses SPF of {domain} authorises changed: {} added, {} removed",
                added.len(),
                removed.len()
            ),
        )
        .with("added", &added)
        .with("removed", &removed)
        .with("from_fingerprint", fingerprint(previous))
        .with("to_fingerprint", fingerprint(&current)),
    )
}

/// The drift keys an expectation names: `include:X` per include, and the `all` term.
fn expected_values(expect: &SpfExpectation) -> Vec<String> {
    let mut values: Vec<String> = expect
        .includes
        .iter()
        .map(|i| format!("include:{}", crate::dns::normalize_name(i)))
        .collect();
    if let Some(all) = expect.all.as_deref().and_then(Qualifier::parse_all_term) {
        values.push(all_term(Some(all)));
    }
    values.extend(expect.record.as_deref().map(record_value));
    values
}

/// `-all`, `~all`, `?all`, `+all` (the qualifier always written), or `(no all)`.
fn all_term(all: Option<Qualifier>) -> String {
    match all {
        Some(q) => format!("{}all", q.as_char()),
        None => "(no all)".to_owned(),
    }
}
