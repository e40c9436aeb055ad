//! What one run of one check produced ([`CheckReport`]), and the record sets it saw.

use super::gauge::{FamilyValues, SharedValues};
use crate::finding::{CheckKind, Finding};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One record set as observed, for fingerprints, TTL metrics, baselines and reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordObservation {
    /// The `record` metric label: "mx", "spf", ... (borrowed: every domain's state holds
    /// these, so they cost no allocation).
    pub record: Cow<'static, str>,
    /// The normalised records, sorted.
    pub values: Vec<String>,
    /// TTL seen (smallest in the set); `None` when nothing was seen.
    pub ttl: Option<u32>,
}

impl RecordObservation {
    /// A record set.
    pub fn new(record: &'static str, values: Vec<String>, ttl: Option<u32>) -> RecordObservation {
        RecordObservation {
            record: Cow::Borrowed(record),
            values,
            ttl,
        }
    }
}

/// The result of running one check on one domain.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Which check.
    pub check: CheckKind,
    /// True when every lookup the check needed got a conclusive answer.
    pub success: bool,
    /// The record sets observed (empty when `success` is false).
    pub records: Vec<RecordObservation>,
    /// Findings, including `drift`.
    pub findings: Vec<Finding>,
    /// Why the check was inconclusive, when `success` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Gauge families this run knows (others keep their last value).
    #[serde(skip)]
    pub gauges: Vec<FamilyValues>,
    /// Series of shared objects this run knows.
    #[serde(skip)]
    pub shared: Vec<SharedValues>,
    /// When nothing is declared for the check and no baseline is learned yet: the values
    /// its learned baseline will hold (the records of a conclusive run). `None` when
    /// declared, inconclusive, already learned (the run was judged against it), or in a
    /// one-shot run, which keeps no baselines.
    #[serde(skip)]
    pub baseline: Option<Vec<String>>,
}

impl CheckReport {
    /// The report of a check whose DNS lookups did not all get conclusive answers.
    pub fn inconclusive(check: CheckKind, error: impl std::fmt::Display) -> CheckReport {
        CheckReport {
            check,
            success: false,
            records: Vec::new(),
            findings: Vec::new(),
            error: Some(error.to_string()),
            gauges: Vec::new(),
            shared: Vec::new(),
            baseline: None,
        }
    }
}

/// The values a learned baseline compares: every record set of the check, prefixed by its
/// name when a check observes several.
pub fn baseline_values(records: &[RecordObservation]) -> Vec<String> {
    if let [single] = records {
        return single.values.clone();
    }
    records
        .iter()
        .flat_map(|r| r.values.iter().map(move |v| format!("{}: {v}", r.record)))
        .collect()
}

/// A stable 52-bit fingerprint of a normalised record set (FNV-1a over the sorted values),
/// exact in a float64 sample.
pub fn fingerprint(values: &[String]) -> u64 {
    let mut sorted: Vec<&str> = values.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for value in sorted {
        for byte in value.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash & ((1 << 52) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_order_insensitive_and_fits_a_float() {
        let a = fingerprint(&["10 mx1.example.com".into(), "20 mx2.example.com".into()]);
        let b = fingerprint(&["20 mx2.example.com".into(), "10 mx1.example.com".into()]);
        let c = fingerprint(&["10 mx1.example.com".into()]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a < (1 << 52));
        assert_eq!((a as f64) as u64, a);
    }
}
