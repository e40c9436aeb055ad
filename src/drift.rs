//! Drift: a pure comparison of an expected record set (declared or learned) with what was
//! observed. The finding carries from → to.

use crate::finding::{CheckKind, Finding};

/// `Some(drift finding)` when `observed` differs from `expected` as sets (order-insensitive,
/// values already normalised); evidence `from`/`to` plus `added`/`removed`.
pub fn compare(check: CheckKind, expected: &[String], observed: &[String]) -> Option<Finding> {
    let _ = (check, expected, observed);
    todo!()
}
