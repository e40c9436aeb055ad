//! Mail-DNS checks. Each check module observes (DNS → owned observation) and evaluates
//! (observation + expectation → findings) as separate steps, so evaluation is a pure
//! function tested without a network.

pub mod dkim;
pub mod dmarc;
pub mod dnssec;
pub mod mta_sts;
pub mod mx;
pub mod nameservers;
pub mod spf;
pub mod tags;
pub mod tls_rpt;

use crate::finding::{CheckKind, Finding};
use serde::Serialize;

/// What a domain's mail DNS should look like; built from `expect:` and provider presets.
/// `None` means "not declared".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// Expected MX hosts.
    pub mx: Option<MxExpectation>,
    /// Expected SPF shape.
    pub spf: Option<SpfExpectation>,
    /// Expected DMARC policy.
    pub dmarc: Option<DmarcExpectation>,
    /// DKIM selectors that must publish a key.
    pub dkim: Option<DkimExpectation>,
}

/// Expected DMARC policy (`p=`): "none", "quarantine" or "reject".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmarcExpectation {
    /// The policy that must be published.
    pub policy: String,
}

/// DKIM selectors to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DkimExpectation {
    /// Selector names (the label before `._domainkey`).
    pub selectors: Vec<String>,
}

/// Expected MX host set (normalised names, order irrelevant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MxExpectation {
    /// Every host that should be an MX, and no other.
    pub hosts: Vec<String>,
}

/// Expected SPF shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpfExpectation {
    /// Domains that must appear as `include:` (anywhere in the expansion tree).
    pub includes: Vec<String>,
    /// The required final `all` term, e.g. "-all" or "~all".
    pub all: Option<String>,
    /// Sending connections that must get `pass` (evaluated by the SPF authorization check).
    pub authorizes: Vec<crate::config::AuthorizedSender>,
}

/// One record set as observed, for fingerprints, TTL metrics and reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordObservation {
    /// The `record` metric label: "mx", "spf", ...
    pub record: &'static str,
    /// The normalised records, sorted.
    pub values: Vec<String>,
    /// TTL seen (smallest in the set); `None` when nothing was seen.
    pub ttl: Option<u32>,
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
        }
    }
}

/// What the checks remember from the last conclusive run of a domain, for findings about
/// change that no expectation states: a weakened DMARC policy, a changed SPF address set,
/// a new MTA-STS policy id. The engine returns the new state in each report; the daemon
/// keeps the last known value of each field (a failed run leaves it unchanged), one-shot
/// commands start from the default (nothing known).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PreviousState {
    /// The DMARC `p=` last published (`None`: unknown or no valid record).
    pub dmarc_policy: Option<dmarc::DmarcPolicy>,
    /// The networks SPF authorised (sorted), see `SpfObservation::authorized_networks`.
    pub spf_ipset: Option<Vec<String>>,
    /// The MTA-STS policy id (`id=` of the `_mta-sts` TXT record).
    pub mta_sts_id: Option<String>,
}

impl PreviousState {
    /// `self` updated with every field `next` knows.
    pub fn merged(&self, next: &PreviousState) -> PreviousState {
        PreviousState {
            dmarc_policy: next.dmarc_policy.or(self.dmarc_policy),
            spf_ipset: next.spf_ipset.clone().or_else(|| self.spf_ipset.clone()),
            mta_sts_id: next.mta_sts_id.clone().or_else(|| self.mta_sts_id.clone()),
        }
    }
}
