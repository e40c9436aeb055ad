//! Runs every check of one domain against a [`DnsView`] and collects the reports. The same
//! code serves the daemon and one-shot commands.

use crate::checks::{self, CheckReport, PreviousState, spf::SpfLimits};
use crate::config::DomainConfig;
use crate::dns::DnsView;
use crate::finding::CheckKind;
use std::time::{Duration, SystemTime};

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
    /// Zone serials, consistency and resolver lag, when the nameservers check was conclusive.
    pub authority: Option<checks::nameservers::AuthoritySummary>,
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
            authority: None,
        }
    }
}

/// Each check gets this share of the domain's timeout, so that a check that runs long (a
/// silent server asked over TCP, a slow HTTPS policy host) is unknown on its own while the
/// others still report, before the monitor's deadline for the whole domain.
const CHECK_SHARE_OF_TIMEOUT: f64 = 0.9;

/// `Some(output)` when `future` finished within `limit`.
async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, future).await.ok()
}

/// Runs every check of the domain concurrently, with its expectations and settings.
/// `previous` is what earlier runs remembered (default: nothing). A check that does not
/// finish within its share of the domain's timeout is inconclusive; so are the checks
/// whose evaluation needs its observation.
pub async fn check_domain(
    config: &DomainConfig,
    view: &DnsView,
    spf_limits: &SpfLimits,
    previous: &PreviousState,
) -> DomainReport {
    let (domain, expect, analysis) = (config.name.as_str(), &config.expect, &config.analysis);
    let limit = config.timeout.mul_f64(CHECK_SHARE_OF_TIMEOUT);
    let dnssec_servers = checks::dnssec::DnssecServers::for_domain(config, view);
    let spf = async {
        let mut spf = checks::spf::observe(domain, view, spf_limits).await;
        if let Some(spf_expect) = &expect.spf {
            checks::spf::authorize(&mut spf, view.recursive.as_ref(), &spf_expect.authorizes).await;
        }
        spf
    };
    let (mx, spf, dmarc, dkim, mta_sts, tls_rpt, dnssec, nameservers) = tokio::join!(
        within(limit, checks::mx::observe(domain, view)),
        within(limit, spf),
        within(limit, checks::dmarc::observe(domain, view)),
        within(
            limit,
            checks::dkim::observe(domain, view, expect.dkim.as_ref())
        ),
        within(
            limit,
            checks::mta_sts::observe(domain, view, &analysis.mta_sts)
        ),
        within(limit, checks::tls_rpt::observe(domain, view)),
        within(limit, checks::dnssec::observe(domain, &dnssec_servers)),
        within(limit, checks::nameservers::observe(domain, view, expect)),
    );
    let unknown = |check: CheckKind| {
        CheckReport::inconclusive(
            check,
            format!("the {check} check of {domain} did not finish within {limit:?}"),
        )
    };
    let mut report = DomainReport::empty(domain, SystemTime::now());
    let mx_report = match &mx {
        Some(mx) => {
            report.mx_records = mx.record_count();
            checks::mx::evaluate(domain, mx, expect.mx.as_ref())
        }
        None => unknown(CheckKind::Mx),
    };
    let spf_report = match &spf {
        Some(spf) => {
            let mut spf_report = checks::spf::evaluate(domain, spf, expect.spf.as_ref());
            spf_report.findings.extend(checks::spf::ipset_finding(
                domain,
                spf,
                previous.spf_ipset.as_deref(),
            ));
            report.spf_dns_lookups = spf.dns_lookups();
            report.spf_void_lookups = spf.void_lookups();
            if spf.error.is_none() && spf.truncated.is_none() {
                let ipset = spf.authorized_networks();
                report.spf_ipset_fingerprint = Some(crate::metrics::fingerprint(&ipset));
                report.state.spf_ipset = Some(ipset);
            }
            spf_report
        }
        None => unknown(CheckKind::Spf),
    };
    let dmarc_report = match &dmarc {
        Some(dmarc) => {
            report.dmarc_policy = dmarc.policy_label();
            report.state.dmarc_policy = dmarc.policy();
            checks::dmarc::evaluate(domain, dmarc, expect.dmarc.as_ref(), previous.dmarc_policy)
        }
        None => unknown(CheckKind::Dmarc),
    };
    let dkim_report = match &dkim {
        Some(dkim) => {
            report.dkim_key_bits = dkim.key_bits();
            checks::dkim::evaluate(domain, dkim)
        }
        None => unknown(CheckKind::Dkim),
    };
    let mta_sts_report = match (&mta_sts, &mx) {
        (Some(mta_sts), Some(mx)) => {
            report.state.mta_sts_id = mta_sts.id().map(str::to_owned);
            checks::mta_sts::evaluate(domain, mta_sts, mx, previous.mta_sts_id.as_deref())
        }
        _ => unknown(CheckKind::MtaSts),
    };
    let tls_rpt_report = match (&tls_rpt, &mta_sts) {
        (Some(tls_rpt), Some(mta_sts)) => {
            checks::tls_rpt::evaluate(domain, tls_rpt, mta_sts.deployed())
        }
        _ => unknown(CheckKind::TlsRpt),
    };
    let nameservers_report = match &nameservers {
        Some(nameservers) => {
            report.authority = nameservers.summary();
            checks::nameservers::evaluate(nameservers)
        }
        None => unknown(CheckKind::Nameservers),
    };
    let dnssec_report = match &dnssec {
        Some(dnssec) => checks::dnssec::evaluate(
            domain,
            dnssec,
            analysis.dnssec.expiry_warning,
            SystemTime::now(),
        ),
        None => unknown(CheckKind::Dnssec),
    };
    report.checks = vec![
        mx_report,
        spf_report,
        dkim_report,
        dmarc_report,
        mta_sts_report,
        tls_rpt_report,
        nameservers_report,
        dnssec_report,
    ];
    if let Some(summary) = &report.authority {
        checks::nameservers::annotate_drift(&mut report.checks, summary);
    }
    report.checked_at = SystemTime::now();
    report
}
