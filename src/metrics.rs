//! The daemon's Prometheus metrics: one [`Metrics`] owning a non-global registry, and
//! per-domain handles ([`DomainSeries`]) so that a check updates its series in place.

use crate::dns::QueryMetrics;
use crate::finding::{CheckKind, Severity};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The Content-Type of the text exposition format; Prometheus 3 refuses a scrape without it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The checks this build runs (and exports series for).
pub const ACTIVE_CHECKS: [CheckKind; 2] = [CheckKind::Mx, CheckKind::Spf];

/// Every metric series family of the daemon.
pub struct Metrics {
    /// The registry `/metrics` encodes; not the global default, so tests can run many daemons.
    pub registry: Registry,
    /// Domains watched by this instance.
    pub domains: IntGauge,
    check_success: GaugeVec,
    drift: GaugeVec,
    findings: GaugeVec,
    last_check: GaugeVec,
    fingerprint: GaugeVec,
    record_ttl: GaugeVec,
    mx_records: GaugeVec,
    spf_lookups: GaugeVec,
    spf_void_lookups: GaugeVec,
    /// Wall time of one scheduler pass (at start-up: all domains).
    pub round_duration: Histogram,
    /// Wall time of one domain's check (all its checks).
    pub domain_check_duration: Histogram,
    /// Domain checks by outcome: `success`, `failure` (some check inconclusive), `timeout`.
    pub domain_checks: IntCounterVec,
    /// 0/1: whether the last config reload succeeded.
    pub reload_successful: IntGauge,
    /// Unix time of the last successful reload.
    pub reload_success_timestamp: Gauge,
    /// DNS query counters shared with the DNS layer.
    pub dns: QueryMetrics,
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let vec = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric registered once");
    vec
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let histogram = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric definition");
    registry
        .register(Box::new(histogram.clone()))
        .expect("metric registered once");
    histogram
}

impl Metrics {
    /// Creates and registers every series; `revision` is the VCS revision, if known.
    pub fn new(version: &str, revision: &str) -> Metrics {
        let registry = Registry::new();
        let build_info = gauge_vec(
            &registry,
            "maildrift_build_info",
            "Build information; always 1.",
            &["version", "revision"],
        );
        build_info.with_label_values(&[version, revision]).set(1.0);
        let domains = IntGauge::new(
            "maildrift_domains",
            "Domains watched by this instance (this shard).",
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(domains.clone()))
            .expect("metric registered once");
        let dc = &["domain", "check"];
        let dr = &["domain", "record"];
        let domain_checks = IntCounterVec::new(
            Opts::new(
                "maildrift_domain_checks_total",
                "Domain checks completed, by outcome (success, failure, timeout).",
            ),
            &["outcome"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(domain_checks.clone()))
            .expect("metric registered once");
        for outcome in ["success", "failure", "timeout"] {
            domain_checks.with_label_values(&[outcome]);
        }
        let reload_successful = IntGauge::new(
            "maildrift_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        .expect("valid metric definition");
        let reload_success_timestamp = Gauge::new(
            "maildrift_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration reload.",
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(reload_successful.clone()))
            .expect("metric registered once");
        registry
            .register(Box::new(reload_success_timestamp.clone()))
            .expect("metric registered once");
        let dns = QueryMetrics::register(&registry).expect("DNS metrics registered once");
        let seconds = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ];
        Metrics {
            domains,
            check_success: gauge_vec(
                &registry,
                "maildrift_check_success",
                "1 when the last run of the check got conclusive DNS answers.",
                dc,
            ),
            drift: gauge_vec(
                &registry,
                "maildrift_drift",
                "1 while the observed state differs from the expectation or learned baseline.",
                dc,
            ),
            findings: gauge_vec(
                &registry,
                "maildrift_findings",
                "Open findings of the check, by severity.",
                &["domain", "check", "severity"],
            ),
            last_check: gauge_vec(
                &registry,
                "maildrift_last_check_timestamp_seconds",
                "Unix time of the last completed run of the check.",
                dc,
            ),
            fingerprint: gauge_vec(
                &registry,
                "maildrift_record_fingerprint",
                "52-bit hash of the normalised record set; changes() shows edits.",
                dr,
            ),
            record_ttl: gauge_vec(
                &registry,
                "maildrift_record_ttl_seconds",
                "TTL of the record set as seen at the authoritative servers.",
                dr,
            ),
            mx_records: gauge_vec(
                &registry,
                "maildrift_mx_records",
                "Number of MX records.",
                &["domain"],
            ),
            spf_lookups: gauge_vec(
                &registry,
                "maildrift_spf_dns_lookups",
                "DNS-querying SPF terms counted recursively (RFC 7208 section 4.6.4; limit 10).",
                &["domain"],
            ),
            spf_void_lookups: gauge_vec(
                &registry,
                "maildrift_spf_void_lookups",
                "Void lookups during SPF expansion (limit 2).",
                &["domain"],
            ),
            round_duration: histogram(
                &registry,
                "maildrift_check_round_duration_seconds",
                "Wall time of one scheduler pass over the domains due together (at start-up: all).",
                seconds.clone(),
            ),
            domain_check_duration: histogram(
                &registry,
                "maildrift_domain_check_duration_seconds",
                "Wall time of all checks of one domain.",
                seconds,
            ),
            domain_checks,
            reload_successful,
            reload_success_timestamp,
            dns,
            registry,
        }
    }

    /// Creates the per-domain series (exported as 0 until the first check) and returns
    /// handles to them.
    pub fn domain_series(&self, domain: &str) -> DomainSeries {
        let checks = ACTIVE_CHECKS
            .iter()
            .map(|&check| {
                let labels = [domain, check.as_str()];
                CheckSeries {
                    check,
                    success: self.check_success.with_label_values(&labels),
                    drift: self.drift.with_label_values(&labels),
                    last_check: self.last_check.with_label_values(&labels),
                    findings: Severity::ALL.map(|severity| {
                        self.findings.with_label_values(&[
                            domain,
                            check.as_str(),
                            severity.as_str(),
                        ])
                    }),
                }
            })
            .collect();
        DomainSeries {
            domain: domain.to_owned(),
            checks,
            mx_records: self.mx_records.with_label_values(&[domain]),
            spf_lookups: self.spf_lookups.with_label_values(&[domain]),
            spf_void_lookups: self.spf_void_lookups.with_label_values(&[domain]),
            records: Vec::new(),
        }
    }

    /// Record-level series (fingerprint, TTL) for `record` of `domain`, created on first use.
    pub fn record_series(&self, series: &mut DomainSeries, record: &'static str) -> RecordSeries {
        if let Some(found) = series.records.iter().find(|r| r.record == record) {
            return found.clone();
        }
        let labels = [series.domain.as_str(), record];
        let created = RecordSeries {
            record,
            fingerprint: self.fingerprint.with_label_values(&labels),
            ttl: self.record_ttl.with_label_values(&labels),
        };
        series.records.push(created.clone());
        created
    }

    /// Removes every series of a domain that left the configuration.
    pub fn remove_domain(&self, series: &DomainSeries) {
        let domain = series.domain.as_str();
        for check in &series.checks {
            let labels = [domain, check.check.as_str()];
            let _ = self.check_success.remove_label_values(&labels);
            let _ = self.drift.remove_label_values(&labels);
            let _ = self.last_check.remove_label_values(&labels);
            for severity in Severity::ALL {
                let _ = self.findings.remove_label_values(&[
                    domain,
                    check.check.as_str(),
                    severity.as_str(),
                ]);
            }
        }
        for record in &series.records {
            let _ = self
                .fingerprint
                .remove_label_values(&[domain, record.record]);
            let _ = self
                .record_ttl
                .remove_label_values(&[domain, record.record]);
        }
        let _ = self.mx_records.remove_label_values(&[domain]);
        let _ = self.spf_lookups.remove_label_values(&[domain]);
        let _ = self.spf_void_lookups.remove_label_values(&[domain]);
    }

    /// The text exposition of every series.
    pub fn encode(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(64 * 1024);
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        buffer
    }
}

/// Handles to one domain's series, held with the domain so updates skip label lookups.
pub struct DomainSeries {
    domain: String,
    /// One entry per active check.
    pub checks: Vec<CheckSeries>,
    /// `maildrift_mx_records`.
    pub mx_records: prometheus::Gauge,
    /// `maildrift_spf_dns_lookups`.
    pub spf_lookups: prometheus::Gauge,
    /// `maildrift_spf_void_lookups`.
    pub spf_void_lookups: prometheus::Gauge,
    records: Vec<RecordSeries>,
}

impl DomainSeries {
    /// Another set of handles to the same series.
    pub fn clone_handles(&self) -> DomainSeries {
        DomainSeries {
            domain: self.domain.clone(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckSeries {
                    check: c.check,
                    success: c.success.clone(),
                    drift: c.drift.clone(),
                    last_check: c.last_check.clone(),
                    findings: c.findings.clone(),
                })
                .collect(),
            mx_records: self.mx_records.clone(),
            spf_lookups: self.spf_lookups.clone(),
            spf_void_lookups: self.spf_void_lookups.clone(),
            records: self.records.clone(),
        }
    }

    /// The series of one check, if it is active.
    pub fn check(&self, check: CheckKind) -> Option<&CheckSeries> {
        self.checks.iter().find(|c| c.check == check)
    }
}

/// Handles to one (domain, check) pair.
pub struct CheckSeries {
    /// Which check.
    pub check: CheckKind,
    /// `maildrift_check_success`.
    pub success: prometheus::Gauge,
    /// `maildrift_drift`.
    pub drift: prometheus::Gauge,
    /// `maildrift_last_check_timestamp_seconds`.
    pub last_check: prometheus::Gauge,
    /// `maildrift_findings`, indexed like [`Severity::ALL`].
    pub findings: [prometheus::Gauge; 3],
}

/// Handles to one (domain, record) pair.
#[derive(Clone)]
pub struct RecordSeries {
    record: &'static str,
    /// `maildrift_record_fingerprint`.
    pub fingerprint: prometheus::Gauge,
    /// `maildrift_record_ttl_seconds`.
    pub ttl: prometheus::Gauge,
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
