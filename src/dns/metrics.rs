//! Query metrics shared by every DNS transport: `maildrift_dns_queries_total{rcode}` and
//! `maildrift_dns_query_duration_seconds`.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use std::time::Duration;

/// Round-trip buckets from 0.5 ms (loopback, warm cache) to 5 s (the longest sane timeout).
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every `rcode` label value we emit; exported as 0 up front so the series exist.
pub const RCODE_LABELS: &[&str] = &[
    "noerror", "nxdomain", "servfail", "refused", "formerr", "notimp", "timeout", "error",
];

/// Handles to the DNS query series; cheap to clone.
#[derive(Clone)]
pub struct QueryMetrics {
    /// Queries sent, by lower-case response code ("noerror", "nxdomain", "servfail",
    /// "refused", "timeout", ...).
    pub queries: IntCounterVec,
    /// Round-trip time of each query.
    pub duration: Histogram,
}

impl QueryMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<QueryMetrics> {
        let metrics = QueryMetrics::unregistered();
        registry.register(Box::new(metrics.queries.clone()))?;
        registry.register(Box::new(metrics.duration.clone()))?;
        Ok(metrics)
    }

    /// Unregistered series, for tests and one-shot commands.
    pub fn unregistered() -> QueryMetrics {
        let queries = IntCounterVec::new(
            Opts::new(
                "maildrift_dns_queries_total",
                "DNS queries sent, by response code (timeout included)",
            ),
            &["rcode"],
        )
        .expect("static counter definition is valid");
        for rcode in RCODE_LABELS {
            queries.with_label_values(&[*rcode]);
        }
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "maildrift_dns_query_duration_seconds",
                "DNS round trip, retries included",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )
        .expect("static histogram definition is valid");
        QueryMetrics { queries, duration }
    }

    /// Records one finished query: its outcome label and how long it took.
    pub fn observe(&self, rcode: &str, elapsed: Duration) {
        self.queries.with_label_values(&[rcode]).inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// How many queries ended with `rcode` so far (for tests and status output).
    pub fn count(&self, rcode: &str) -> u64 {
        self.queries.with_label_values(&[rcode]).get()
    }
}

/// The metric label for a lookup result.
pub(crate) fn result_label(result: &super::LookupResult) -> &'static str {
    use super::{AnswerStatus, DnsError};
    match result {
        Ok(answer) if answer.status == AnswerStatus::NxDomain => "nxdomain",
        Ok(_) => "noerror",
        Err(DnsError::Timeout { .. }) => "timeout",
        Err(DnsError::Rcode { rcode, .. }) => match rcode.as_str() {
            "SERVFAIL" => "servfail",
            "REFUSED" => "refused",
            "FORMERR" => "formerr",
            "NOTIMP" => "notimp",
            "NXDOMAIN" => "nxdomain",
            "NOERROR" => "noerror",
            _ => "error",
        },
        Err(_) => "error",
    }
}

/// The upper-case mnemonic of a response code, as `DnsError::Rcode` carries it.
pub(crate) fn rcode_name(rcode: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode;
    let name = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        other => return format!("RCODE{}", u16::from(other)),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_exports_every_label() {
        let registry = Registry::new();
        let metrics = QueryMetrics::register(&registry).unwrap();
        metrics.observe("servfail", Duration::from_millis(3));
        let families = registry.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert!(names.contains(&"maildrift_dns_queries_total"), "{names:?}");
        assert!(names.contains(&"maildrift_dns_query_duration_seconds"));
        let queries = families
            .iter()
            .find(|f| f.name() == "maildrift_dns_queries_total")
            .unwrap();
        assert_eq!(queries.get_metric().len(), RCODE_LABELS.len());
        assert_eq!(metrics.count("servfail"), 1);
        assert_eq!(metrics.duration.get_sample_count(), 1);
        // Registering twice in one registry is refused, not silently duplicated.
        assert!(QueryMetrics::register(&registry).is_err());
    }

    #[test]
    fn labels() {
        use hickory_proto::op::ResponseCode;
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::Unknown(3000)), "RCODE3000");
    }
}
