//! Runs every check of one domain against a [`DnsView`] and collects the reports. The same
//! code serves the daemon and one-shot commands.

use crate::checks::{self, CheckReport, Expectations, spf::SpfLimits};
use crate::dns::DnsView;
use std::time::SystemTime;

/// Everything one pass over a domain's checks produced.
#[derive(Clone, Debug)]
pub struct DomainReport {
    /// The domain.
    pub domain: String,
    /// When the checks finished.
    pub checked_at: SystemTime,
    /// One report per check run.
    pub checks: Vec<CheckReport>,
    /// Number of MX records, when the MX lookup was conclusive.
    pub mx_records: Option<usize>,
    /// SPF DNS-querying terms, when the expansion was conclusive.
    pub spf_dns_lookups: Option<u32>,
    /// SPF void lookups, when the expansion was conclusive.
    pub spf_void_lookups: Option<u32>,
    /// Zone serials, consistency and resolver lag, when the nameservers check was conclusive.
    pub authority: Option<checks::nameservers::AuthoritySummary>,
}

/// Runs the MX, SPF and nameservers checks of `domain` concurrently.
pub async fn check_domain(
    domain: &str,
    view: &DnsView,
    expect: &Expectations,
    spf_limits: &SpfLimits,
) -> DomainReport {
    let (mx, spf, nameservers) = tokio::join!(
        checks::mx::observe(domain, view),
        checks::spf::observe(domain, view, spf_limits),
        checks::nameservers::observe(domain, view, expect)
    );
    let mx_report = checks::mx::evaluate(domain, &mx, expect.mx.as_ref());
    let spf_report = checks::spf::evaluate(domain, &spf, expect.spf.as_ref());
    let nameservers_report = checks::nameservers::evaluate(&nameservers);
    let authority = nameservers.summary();
    let mut checks = vec![mx_report, spf_report, nameservers_report];
    if let Some(summary) = &authority {
        checks::nameservers::annotate_drift(&mut checks, summary);
    }
    DomainReport {
        domain: domain.to_owned(),
        checked_at: SystemTime::now(),
        mx_records: mx.record_count(),
        spf_dns_lookups: spf.dns_lookups(),
        spf_void_lookups: spf.void_lookups(),
        checks,
        authority,
    }
}
