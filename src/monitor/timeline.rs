//! The event timeline as a [`MonitorObserver`]: every finding opened or resolved and every
//! record change becomes an event, and each check's last known state is persisted (only
//! when it changes) so that a restart knows the open incidents and re-announces nothing.

use super::{CheckStatus, CheckUpdate, MonitorObserver};
use crate::checks::baseline_values;
use crate::config::{DomainConfig, ResolverSpec};
use crate::finding::Finding;
use crate::state::{EventKind, NewEvent, StateWriter, Write};
use serde_json::json;
use std::collections::BTreeMap;

/// Turns check updates into timeline events and persisted check states.
pub(crate) struct Timeline {
    writer: StateWriter,
}

impl Timeline {
    /// A timeline writing through `writer`.
    pub(crate) fn new(writer: StateWriter) -> Timeline {
        Timeline { writer }
    }
}

impl MonitorObserver for Timeline {
    fn check_applied(&self, update: &CheckUpdate<'_>) {
        for event in events(update) {
            self.writer.send(Write::Event(event));
        }
        if update
            .previous
            .is_none_or(|p| state_changed(p, update.next))
        {
            match serde_json::to_string(update.next) {
                Ok(state_json) => self.writer.send(Write::CheckState {
                    domain: update.domain.name.clone(),
                    check: update.check,
                    state_json,
                    at: update.at,
                }),
                Err(error) => tracing::error!(%error, "check state not serializable"),
            }
        }
    }
}

/// Whether anything a restart needs differs (not the time or the DNS error text).
fn state_changed(previous: &CheckStatus, next: &CheckStatus) -> bool {
    previous.success != next.success
        || previous.drift != next.drift
        || previous.findings != next.findings
        || previous.records != next.records
}

/// The nameservers or resolvers a domain's records are asked from (for events and pages).
pub(crate) fn asked(config: &DomainConfig) -> String {
    if config.authoritative {
        if config.nameservers.is_empty() {
            "authoritative (NS discovered)".to_owned()
        } else {
            let servers: Vec<String> = config.nameservers.iter().map(|s| s.to_string()).collect();
            format!("authoritative {}", servers.join(", "))
        }
    } else {
        let resolvers: Vec<String> = config
            .resolvers
            .iter()
            .map(|r| match r {
                ResolverSpec::System => "system".to_owned(),
                ResolverSpec::Addr(addr) => addr.to_string(),
            })
            .collect();
        format!("resolvers {}", resolvers.join(", "))
    }
}

/// One finding per code (the first), the identity of an incident.
fn by_code(findings: &[Finding]) -> BTreeMap<&str, &Finding> {
    let mut map = BTreeMap::new();
    for finding in findings {
        map.entry(finding.code.as_str()).or_insert(finding);
    }
    map
}

/// The events of one update: nothing for an inconclusive run (unknown is neither drift nor
/// recovery), findings opened/resolved by code, record sets changed from → to.
pub(crate) fn events(update: &CheckUpdate<'_>) -> Vec<NewEvent> {
    let next = update.next;
    if !next.success {
        return Vec::new();
    }
    let server = Some(asked(update.domain));
    let event = |kind, finding: Option<&Finding>, message: String, from, to| NewEvent {
        at: update.at,
        domain: update.domain.name.clone(),
        check: update.check,
        kind,
        code: finding.map(|f| f.code.as_str().to_owned()),
        severity: finding.map(|f| f.severity),
        message,
        from,
        to,
        server: server.clone(),
    };
    let mut out = Vec::new();
    let before = by_code(update.previous.map_or(&[][..], |p| &p.findings));
    let after = by_code(&next.findings);
    for (code, finding) in &after {
        if !before.contains_key(code) {
            let from = finding.evidence.get("from").cloned();
            let to = finding.evidence.get("to").cloned();
            out.push(event(
                EventKind::Opened,
                Some(finding),
                finding.message.clone(),
                from,
                to,
            ));
        }
    }
    for (code, finding) in &before {
        if !after.contains_key(code) {
            let from = finding.evidence.get("to").cloned();
            let to = Some(json!(baseline_values(&next.records)));
            out.push(event(
                EventKind::Resolved,
                Some(finding),
                format!("resolved: {}", finding.message),
                from,
                to,
            ));
        }
    }
    if let Some(previous) = update.previous
        && (previous.success || !previous.records.is_empty())
    {
        for record in &next.records {
            let old = previous.records.iter().find(|r| r.record == record.record);
            let old_values = old.map(|r| r.values.clone()).unwrap_or_default();
            let mut sorted_old = old_values.clone();
            let mut sorted_new = record.values.clone();
            sorted_old.sort();
            sorted_new.sort();
            if sorted_old != sorted_new {
                out.push(event(
                    EventKind::Changed,
                    None,
                    format!(
                        "{} records changed from [{}] to [{}]",
                        record.record.to_ascii_uppercase(),
                        sorted_old.join(", "),
                        sorted_new.join(", ")
                    ),
                    Some(json!(sorted_old)),
                    Some(json!(sorted_new)),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::RecordObservation;
    use crate::finding::{CheckKind, FindingCode, Severity};
    use std::time::SystemTime;

    fn status(success: bool, mx: &[&str], findings: Vec<Finding>) -> CheckStatus {
        CheckStatus {
            success,
            drift: findings.iter().any(|f| f.code == FindingCode::Drift),
            findings: findings.into(),
            records: vec![RecordObservation {
                record: "mx".into(),
                values: mx.iter().map(|v| (*v).to_owned()).collect(),
                ttl: Some(60),
            }]
            .into(),
            error: None,
            last_checked: Some(SystemTime::now()),
        }
    }

    fn kinds(
        config: &DomainConfig,
        previous: Option<&CheckStatus>,
        next: &CheckStatus,
    ) -> Vec<(EventKind, Option<String>)> {
        let update = CheckUpdate {
            domain: config,
            check: CheckKind::Mx,
            previous,
            next,
            at: SystemTime::now(),
        };
        events(&update)
            .into_iter()
            .map(|e| (e.kind, e.code))
            .collect()
    }

    #[test]
    fn opened_resolved_changed_and_nothing_when_unknown() {
        let config = crate::config::Config::parse(
            "domains:\n  - name: a.example\n    nameservers: [\"127.0.0.1:5300\"]\n",
            std::path::Path::new("t.yml"),
        )
        .unwrap()
        .domains
        .remove(0);
        let drift = Finding::new(FindingCode::Drift, Severity::Critical, "MX changed")
            .with("from", ["10 a"])
            .with("to", ["10 b"]);
        let clean = status(true, &["10 a"], vec![]);
        let drifted = status(true, &["10 b"], vec![drift]);
        // First run: findings open, no "changed" (nothing to compare with).
        assert_eq!(kinds(&config, None, &clean), vec![]);
        assert_eq!(
            kinds(&config, Some(&clean), &drifted),
            vec![
                (EventKind::Opened, Some("drift".into())),
                (EventKind::Changed, None)
            ]
        );
        // Unknown (DNS failed): neither drift nor recovery.
        let unknown = CheckStatus {
            success: false,
            ..drifted.clone()
        };
        assert_eq!(kinds(&config, Some(&drifted), &unknown), vec![]);
        // Same state again: nothing re-announced.
        assert_eq!(kinds(&config, Some(&drifted), &drifted), vec![]);
        assert_eq!(
            kinds(&config, Some(&unknown), &clean),
            vec![
                (EventKind::Resolved, Some("drift".into())),
                (EventKind::Changed, None)
            ]
        );
        assert_eq!(asked(&config), "authoritative 127.0.0.1:5300");
    }
}
