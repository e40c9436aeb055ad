//! Nameservers observation → findings (pure), and the drift annotation with the time left
//! until resolvers switch.

use super::observe::reference;
use super::{AuthoritySummary, AuthorityView, NameserversObservation, ServerView};
use crate::checks::{Evaluation, RecordObservation};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use serde_json::json;
use std::collections::BTreeMap;

/// Evaluates an observation. A domain not asked authoritatively gets an empty, successful
/// report; a zone whose servers all fail is inconclusive.
pub fn evaluate(observation: &NameserversObservation) -> Evaluation<()> {
    let inconclusive = |error: String| Evaluation::inconclusive(error);
    let view = match &observation.result {
        None => return Evaluation::conclusive(Vec::new(), Vec::new()),
        Some(Err(error)) => return inconclusive(error.to_string()),
        Some(Ok(view)) => view,
    };
    let Some(answers) = reference(&view.servers) else {
        let reasons: Vec<String> = view
            .servers
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s.nameserver.label(),
                    s.lame.as_deref().unwrap_or("")
                )
            })
            .collect();
        return inconclusive(format!(
            "no nameserver of {} answered authoritatively ({})",
            view.zone,
            reasons.join("; ")
        ));
    };
    let mut findings = Vec::new();
    for server in &view.servers {
        if let Some(reason) = &server.lame {
            findings.push(lame(view, server, reason));
        }
    }
    for (record, groups) in differing_records(view) {
        findings.push(answers_differ(view, &record, &groups));
    }
    if let Some(apart) = view.serials_apart_for.filter(|apart| *apart >= view.grace) {
        findings.push(serial_mismatch(view, apart.as_secs()));
    }
    let apex_ns = answers
        .get("ns")
        .map(|set| set.values.clone())
        .unwrap_or_default();
    if let Some(Ok(delegation)) = &view.delegation
        && delegation.ns != apex_ns
    {
        let missing_at_parent: Vec<&String> = apex_ns
            .iter()
            .filter(|ns| !delegation.ns.contains(ns))
            .collect();
        let missing_at_apex: Vec<&String> = delegation
            .ns
            .iter()
            .filter(|ns| !apex_ns.contains(ns))
            .collect();
        findings.push(
            Finding::new(
                FindingCode::NsDelegationMismatch,
                Severity::Warning,
                format!(
                    "{} delegates {} to [{}] but the zone lists [{}]",
                    delegation.parent,
                    view.zone,
                    delegation.ns.join(", "),
                    apex_ns.join(", ")
                ),
            )
            .with("zone", &view.zone)
            .with("parent", &delegation.parent)
            .with("parent_server", &delegation.server)
            .with("parent_ns", &delegation.ns)
            .with("apex_ns", &apex_ns)
            .with("missing_at_parent", missing_at_parent)
            .with("missing_at_apex", missing_at_apex),
        );
    }
    let ttl = answers.get("ns").map(|set| set.ttl);
    let mut addresses: Vec<String> = view
        .servers
        .iter()
        .map(|s| match &s.nameserver.host {
            Some(host) => format!("{host} {}", s.nameserver.addr.ip()),
            None => s.nameserver.addr.to_string(),
        })
        .collect();
    addresses.sort();
    Evaluation::conclusive(
        vec![
            RecordObservation::new("ns", apex_ns, ttl),
            RecordObservation::new("ns_address", addresses, None),
        ],
        findings,
    )
}

/// Servers grouped by identical answer: (answer values, server labels), largest group first.
type Groups = Vec<(Vec<String>, Vec<String>)>;

/// Every record (SOA excluded: serials have their own finding) on which the answering
/// servers disagree, with the servers grouped by answer.
pub(super) fn differing_records(view: &AuthorityView) -> Vec<(String, Groups)> {
    let answering: Vec<&ServerView> = view.servers.iter().filter(|s| s.lame.is_none()).collect();
    let mut records: Vec<&String> = answering.iter().flat_map(|s| s.answers.keys()).collect();
    records.sort();
    records.dedup();
    let mut out = Vec::new();
    for record in records.into_iter().filter(|r| r.as_str() != "soa") {
        let mut groups: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for server in &answering {
            let values = server
                .answers
                .get(record)
                .map(|set| set.values.clone())
                .unwrap_or_default();
            groups
                .entry(values)
                .or_default()
                .push(server.nameserver.label());
        }
        if groups.len() > 1 {
            let mut groups: Groups = groups.into_iter().collect();
            groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            out.push((record.clone(), groups));
        }
    }
    out
}

fn describe(server: &ServerView) -> String {
    match &server.nameserver.host {
        Some(host) => format!("{host} ({})", server.nameserver.label()),
        None => server.nameserver.label(),
    }
}

fn lame(view: &AuthorityView, server: &ServerView, reason: &str) -> Finding {
    Finding::new(
        FindingCode::NsLame,
        Severity::Warning,
        format!(
            "nameserver {} is lame for {}: {reason}",
            describe(server),
            view.zone
        ),
    )
    .with("zone", &view.zone)
    .with("nameserver", server.nameserver.label())
    .with("host", &server.nameserver.host)
    .with("reason", reason)
}

fn answers_differ(view: &AuthorityView, record: &str, groups: &Groups) -> Finding {
    let says: Vec<String> = groups
        .iter()
        .map(|(values, servers)| {
            let verb = if servers.len() == 1 { "says" } else { "say" };
            format!("{} {verb} [{}]", servers.join(", "), values.join(", "))
        })
        .collect();
    let answers: Vec<serde_json::Value> = groups
        .iter()
        .map(|(values, servers)| json!({ "nameservers": servers, "records": values }))
        .collect();
    Finding::new(
        FindingCode::NsAnswersDiffer,
        Severity::Warning,
        format!(
            "the nameservers of {} disagree on {}: {}",
            view.zone,
            record.to_ascii_uppercase(),
            says.join("; ")
        ),
    )
    .with("zone", &view.zone)
    .with("record", record)
    .with("answers", answers)
}

fn serial_mismatch(view: &AuthorityView, apart_seconds: u64) -> Finding {
    let serials: BTreeMap<String, u32> = view
        .servers
        .iter()
        .filter_map(|s| Some((s.nameserver.label(), s.serial?)))
        .collect();
    let listed: Vec<String> = serials
        .iter()
        .map(|(ns, serial)| format!("{ns}={serial}"))
        .collect();
    Finding::new(
        FindingCode::NsSerialMismatch,
        Severity::Warning,
        format!(
            "the nameservers of {} have had different SOA serials for {apart_seconds} s ({})",
            view.zone,
            listed.join(", ")
        ),
    )
    .with("zone", &view.zone)
    .with("serials", serials)
    .with("apart_seconds", apart_seconds)
    .with("grace_seconds", view.grace.as_secs())
}

/// The record labels whose resolver lag a drift of `check` waits for.
fn records_of(check: CheckKind, record: &str) -> bool {
    match check {
        CheckKind::Mx => record == "mx",
        CheckKind::Spf => record == "spf",
        CheckKind::Dmarc => record == "dmarc",
        CheckKind::Dkim => record.starts_with("dkim:"),
        _ => false,
    }
}

/// Adds to a `drift` finding of `check` how long until the resolvers asked serve the new
/// records: `resolvers_switch_within_seconds` (the longest remaining TTL among the
/// resolvers still serving something else; 0 when all have switched) and the per-resolver
/// detail. Drift is found from the authoritative answer, so this is the time left before
/// users see the change. Repeated calls give the same result.
pub fn annotate_drift(check: CheckKind, drift: &mut Finding, summary: &AuthoritySummary) {
    let seen: Vec<_> = summary
        .propagation
        .iter()
        .filter(|p| records_of(check, &p.record))
        .collect();
    if seen.is_empty() {
        return;
    }
    let within = seen.iter().map(|p| p.pending_seconds).max().unwrap_or(0);
    let already = drift
        .evidence
        .get("resolvers_switch_within_seconds")
        .is_some();
    let detail: Vec<serde_json::Value> = seen
        .iter()
        .map(|p| {
            json!({
                "resolver": p.resolver,
                "record": p.record,
                "pending_seconds": p.pending_seconds,
            })
        })
        .collect();
    if !already && within > 0 {
        drift.message = format!(
            "{}; resolvers still serve the old records: users switch within {within} s",
            drift.message
        );
    }
    drift
        .evidence
        .insert("resolvers_switch_within_seconds", json!(within));
    drift.evidence.insert("resolvers", json!(detail));
}
