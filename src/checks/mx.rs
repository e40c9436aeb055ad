//! MX check: the MX set, null MX (RFC 7505), MX hosts that alias (CNAME) or do not resolve.

use super::{CheckReport, MxExpectation};
use crate::dns::DnsView;

/// What was seen of a domain's MX records and their hosts.
#[derive(Clone, Debug)]
pub struct MxObservation {}

impl MxObservation {
    /// Number of MX records, when the MX lookup was conclusive.
    pub fn record_count(&self) -> Option<usize> {
        todo!()
    }
}

/// Looks up the MX set in `view.zone` and each host's A/AAAA (and CNAME) in `view.recursive`.
pub async fn observe(domain: &str, view: &DnsView) -> MxObservation {
    let _ = (domain, view);
    todo!()
}

/// Turns an observation into findings, including `drift` against `expect`.
pub fn evaluate(
    domain: &str,
    observation: &MxObservation,
    expect: Option<&MxExpectation>,
) -> CheckReport {
    let _ = (domain, observation, expect);
    todo!()
}
