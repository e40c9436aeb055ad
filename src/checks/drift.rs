//! Drift, judged here and nowhere else: a run's observation against its [`Reference`] —
//! the keys of a declared expectation, or the records of the learned baseline. The finding
//! carries from → to.

use super::report::{RecordObservation, baseline_values};
use super::seam::{Declared, Reference};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use std::collections::BTreeSet;

/// The drift finding of one conclusive run of `check`, if any: under a declaration, the
/// declared keys against the observed ones (at the severity the check gives); otherwise the
/// run's records against the learned baseline. Nothing while the baseline is being learned.
pub(super) fn judge(
    check: CheckKind,
    reference: Reference<'_>,
    declared: Option<&Declared>,
    records: &[RecordObservation],
) -> Option<Finding> {
    match reference {
        Reference::Expected => {
            let declared = declared?;
            let mut finding = compare(check, &declared.expected, &declared.observed)?;
            finding.severity = declared.severity;
            for (key, value) in &declared.evidence {
                finding = finding.with(key, value);
            }
            Some(finding)
        }
        Reference::Learned(baseline) => compare(check, baseline, &baseline_values(records)),
        Reference::Learning => None,
    }
}

/// `Some(drift finding)` when `observed` differs from `expected` as sets (order-insensitive,
/// values already normalised); evidence `from`/`to` plus `added`/`removed`.
///
/// Duplicates collapse: `[a, a]` and `[a]` are the same set. The lists in the evidence and
/// the message are sorted so that the same change always reads the same way.
pub fn compare(check: CheckKind, expected: &[String], observed: &[String]) -> Option<Finding> {
    let from: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let to: BTreeSet<&str> = observed.iter().map(String::as_str).collect();
    if from == to {
        return None;
    }
    let added: Vec<&str> = to.difference(&from).copied().collect();
    let removed: Vec<&str> = from.difference(&to).copied().collect();
    let from: Vec<&str> = from.into_iter().collect();
    let to: Vec<&str> = to.into_iter().collect();
    let message = format!(
        "{} changed from [{}] to [{}]",
        check.as_str().to_ascii_uppercase(),
        from.join(", "),
        to.join(", ")
    );
    Some(
        Finding::new(FindingCode::Drift, Severity::Critical, message)
            .with("check", check)
            .with("from", &from)
            .with("to", &to)
            .with("added", &added)
            .with("removed", &removed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn equal_sets_in_any_order_are_not_drift() {
        let expected = strings(&["b.example", "a.example"]);
        let observed = strings(&["a.example", "b.example", "a.example"]);
        assert_eq!(compare(CheckKind::Mx, &expected, &observed), None);
        assert_eq!(compare(CheckKind::Mx, &[], &[]), None);
    }

    #[test]
    fn changed_set_reports_from_to_added_removed() {
        let expected = strings(&["b", "a"]);
        let observed = strings(&["c", "a"]);
        let finding = compare(CheckKind::Mx, &expected, &observed).expect("drift");
        assert_eq!(finding.code, FindingCode::Drift);
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(finding.message, "MX changed from [a, b] to [a, c]");
        assert_eq!(
            finding.evidence,
            json!({
                "check": "mx",
                "from": ["a", "b"],
                "to": ["a", "c"],
                "added": ["c"],
                "removed": ["b"],
            })
        );
    }

    #[test]
    fn everything_removed() {
        let finding = compare(
            CheckKind::Spf,
            &strings(&["include:x.example", "-all"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            finding.message,
            "SPF changed from [-all, include:x.example] to []"
        );
        assert_eq!(finding.evidence["added"], json!([]));
        assert_eq!(
            finding.evidence["removed"],
            json!(["-all", "include:x.example"])
        );
    }

    #[test]
    fn something_added_to_nothing() {
        let finding = compare(CheckKind::Mx, &[], &strings(&["mx.example"])).unwrap();
        assert_eq!(finding.evidence["from"], json!([]));
        assert_eq!(finding.evidence["added"], json!(["mx.example"]));
        assert_eq!(finding.evidence["removed"], json!([]));
    }
}
