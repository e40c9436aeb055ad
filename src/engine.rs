//! Runs every check of one domain against a [`DnsView`] and collects the reports. The same
//! code serves the daemon and one-shot commands.

use crate::checks::{self, CheckReport, PreviousState, spf::SpfLimits};
use crate::config::DomainConfig;
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
    /// `maildrift_spf_ipset_fingerprint`: hash of the networks SPF authorises, when the
    /// expansion was conclusive and complete.
    pub spf_ipset_fingerprint: Option<u64>,
    /// The `policy` label of `maildrift_dmarc_policy_info` (`missing` included), when the
    /// DMARC lookup was conclusive.
    pub dmarc_policy: Option<&'static str>,
    /// Key size per configured DKIM selector (0 when missing, revoked or unreadable), when
    /// the DKIM lookups were conclusive.
    pub dkim_key_bits: Option<Vec<(String, u32)>>,
    /// What this run observed that the next run compares with (fields `None` when
    /// inconclusive).
    pub state: PreviousState,
}

impl DomainReport {
    /// A report with no checks and no metrics (e.g. for a domain whose checks timed out).
    pub fn empty(domain: &str, checked_at: SystemTime) -> DomainReport {
        DomainReport {
            domain: domain.to_owned(),
            checked_at,
            checks: Vec::new(),
            mx_records: None,
            spf_dns_lookups: None,
            spf_void_lookups: None,
            spf_ipset_fingerprint: None,
            dmarc_policy: None,
            dkim_key_bits: None,
            state: PreviousState::default(),
        }
    }
}

/// Runs every check of the domain concurrently, with its expectations and settings.
/// `previous` is what earlier runs remembered (default: nothing).
pub async fn check_domain(
    config: &DomainConfig,
    view: &DnsView,
    spf_limits: &SpfLimits,
    previous: &PreviousState,
) -> DomainReport {
    let (domain, expect, analysis) = (config.name.as_str(), &config.expect, &config.analysis);
    let dnssec_servers = checks::dnssec::DnssecServers::for_domain(config);
    let (mx, mut spf, dmarc, dkim, mta_sts, tls_rpt, dnssec) = tokio::join!(
        checks::mx::observe(domain, view),
        checks::spf::observe(domain, view, spf_limits),
        checks::dmarc::observe(domain, view),
        checks::dkim::observe(domain, view, expect.dkim.as_ref()),
        checks::mta_sts::observe(domain, view, &analysis.mta_sts),
        checks::tls_rpt::observe(domain, view),
        checks::dnssec::observe(domain, &dnssec_servers),
    );
    let mx_report = checks::mx::evaluate(domain, &mx, expect.mx.as_ref());
    if let Some(spf_expect) = &expect.spf {
        checks::spf::authorize(&mut spf, view.recursive.as_ref(), &spf_expect.authorizes).await;
    }
    let mut spf_report = checks::spf::evaluate(domain, &spf, expect.spf.as_ref());
    spf_report.findings.extend(checks::spf::ipset_finding(
        domain,
        &spf,
        previous.spf_ipset.as_deref(),
    ));
    let dmarc_report =
        checks::dmarc::evaluate(domain, &dmarc, expect.dmarc.as_ref(), previous.dmarc_policy);
    let dkim_report = checks::dkim::evaluate(domain, &dkim);
    let mta_sts_report =
        checks::mta_sts::evaluate(domain, &mta_sts, &mx, previous.mta_sts_id.as_deref());
    let tls_rpt_report = checks::tls_rpt::evaluate(domain, &tls_rpt, mta_sts.deployed());
    let dnssec_report = checks::dnssec::evaluate(
        domain,
        &dnssec,
        analysis.dnssec.expiry_warning,
        SystemTime::now(),
    );
    let mut report = DomainReport::empty(domain, SystemTime::now());
    report.dkim_key_bits = dkim.key_bits();
    report.mx_records = mx.record_count();
    report.spf_dns_lookups = spf.dns_lookups();
    report.spf_void_lookups = spf.void_lookups();
    if spf.error.is_none() && spf.truncated.is_none() {
        let ipset = spf.authorized_networks();
        report.spf_ipset_fingerprint = Some(crate::metrics::fingerprint(&ipset));
        report.state.spf_ipset = Some(ipset);
    }
    report.dmarc_policy = dmarc.policy_label();
    report.state.dmarc_policy = dmarc.policy();
    report.state.mta_sts_id = mta_sts.id().map(str::to_owned);
    report.checks = vec![
        mx_report,
        spf_report,
        dkim_report,
        dmarc_report,
        mta_sts_report,
        tls_rpt_report,
        dnssec_report,
    ];
    report
}
