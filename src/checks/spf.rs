//! SPF check: one `v=spf1` record, syntax, expected includes and `all`, and the recursive
//! expansion counted against the RFC 7208 §4.6.4 limits.

use super::{CheckReport, SpfExpectation};
use crate::dns::DnsView;

/// Bounds on one SPF expansion.
#[derive(Clone, Debug)]
pub struct SpfLimits {}

impl Default for SpfLimits {
    fn default() -> Self {
        SpfLimits {}
    }
}

/// What was seen of a domain's SPF policy and its expansion.
#[derive(Clone, Debug)]
pub struct SpfObservation {}

impl SpfObservation {
    /// DNS-querying terms counted recursively (RFC 7208 §4.6.4), when conclusive.
    pub fn dns_lookups(&self) -> Option<u32> {
        todo!()
    }

    /// Void lookups during the expansion, when conclusive.
    pub fn void_lookups(&self) -> Option<u32> {
        todo!()
    }
}

/// Reads the domain's TXT records from `view.zone`, expands includes/redirects through
/// `view.recursive`.
pub async fn observe(domain: &str, view: &DnsView, limits: &SpfLimits) -> SpfObservation {
    let _ = (domain, view, limits);
    todo!()
}

/// Turns an observation into findings, including `drift` against `expect`.
pub fn evaluate(
    domain: &str,
    observation: &SpfObservation,
    expect: Option<&SpfExpectation>,
) -> CheckReport {
    let _ = (domain, observation, expect);
    todo!()
}
