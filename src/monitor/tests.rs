//! Monitor tests: synthetic reports applied to state, metrics and observers.

use super::*;
use crate::checks::{Expectations, MxExpectation};
use crate::config::ResolverSpec;
use crate::dns::fake::FakeDns;

fn domain_config(name: &str, expect: Expectations) -> DomainConfig {
    DomainConfig {
        name: name.to_owned(),
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        resolvers: vec![ResolverSpec::System],
        authoritative: true,
        nameservers: Vec::new(),
        provider: None,
        expect,
        labels: BTreeMap::new(),
        analysis: Default::default(),
    }
}

fn view() -> DnsView {
    let fake = Arc::new(FakeDns::new());
    DnsView {
        zone: fake.clone(),
        recursive: fake,
    }
}

fn mx_report(domain: &str, success: bool, values: &[&str], findings: Vec<Finding>) -> DomainReport {
    DomainReport {
        domain: domain.to_owned(),
        checked_at: SystemTime::now(),
        checks: vec![CheckReport {
            check: CheckKind::Mx,
            success,
            records: if success {
                vec![RecordObservation {
                    record: "mx",
                    values: values.iter().map(|v| (*v).to_owned()).collect(),
                    ttl: Some(300),
                }]
            } else {
                Vec::new()
            },
            findings,
            error: (!success).then(|| "timeout asking 127.0.0.1:53".to_owned()),
        }],
        mx_records: success.then_some(values.len()),
        ..DomainReport::empty(domain, SystemTime::now())
    }
}

/// The first sample of `name` in the exposition whose labels include `labels`.
fn sample(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = String::from_utf8(metrics.encode()).unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .find_map(|(_, value)| value.parse().ok())
}

#[test]
fn learned_baseline_then_drift_then_recovery() {
    let metrics = Arc::new(Metrics::new("test", "test"));
    let monitor = Monitor::new(metrics.clone());
    monitor.replace(vec![(
        domain_config("a.example", Expectations::default()),
        view(),
    )]);
    let domain = monitor.domain("a.example").unwrap();
    let drift = |m: &Metrics| {
        sample(
            m,
            "maildrift_drift",
            &[("domain", "a.example"), ("check", "mx")],
        )
    };
    assert_eq!(
        drift(&metrics),
        Some(0.0),
        "series exported as 0 before the first check"
    );

    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 mx1.a.example"], vec![]),
    );
    assert_eq!(
        domain.status().baseline[&CheckKind::Mx],
        vec!["10 mx1.a.example"]
    );
    assert_eq!(drift(&metrics), Some(0.0));

    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 mx.old.example"], vec![]),
    );
    assert_eq!(drift(&metrics), Some(1.0));
    let status = domain.status();
    let finding = &status.checks[&CheckKind::Mx].findings[0];
    assert_eq!(finding.code, FindingCode::Drift);
    assert_eq!(finding.evidence["from"][0], "10 mx1.a.example");
    assert_eq!(finding.evidence["to"][0], "10 mx.old.example");
    assert_eq!(
        sample(
            &metrics,
            "maildrift_findings",
            &[
                ("domain", "a.example"),
                ("check", "mx"),
                ("severity", "critical")
            ]
        ),
        Some(1.0)
    );

    // DNS failure: unknown, so the drift stays as last known and success drops to 0.
    monitor.apply(&domain, mx_report("a.example", false, &[], vec![]));
    assert_eq!(drift(&metrics), Some(1.0));
    assert_eq!(
        sample(
            &metrics,
            "maildrift_check_success",
            &[("domain", "a.example"), ("check", "mx")]
        ),
        Some(0.0)
    );

    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 mx1.a.example"], vec![]),
    );
    assert_eq!(drift(&metrics), Some(0.0));
    assert_eq!(
        sample(
            &metrics,
            "maildrift_check_success",
            &[("domain", "a.example"), ("check", "mx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "maildrift_mx_records", &[("domain", "a.example")]),
        Some(1.0)
    );
    let fp = sample(
        &metrics,
        "maildrift_record_fingerprint",
        &[("domain", "a.example"), ("record", "mx")],
    );
    assert_eq!(
        fp,
        Some(fingerprint(&["10 mx1.a.example".to_owned()]) as f64)
    );
}

/// (domain, check, drift before, drift after)
type Transition = (String, CheckKind, Option<bool>, bool);

#[derive(Default)]
struct Transitions(Mutex<Vec<Transition>>);

impl MonitorObserver for Transitions {
    fn check_applied(&self, update: &CheckUpdate<'_>) {
        self.0.lock().unwrap().push((
            update.domain.name.clone(),
            update.check,
            update.previous.map(|p| p.drift),
            update.next.drift,
        ));
    }
}

#[test]
fn observers_see_every_result_with_its_previous_state() {
    let metrics = Arc::new(Metrics::new("test", "test"));
    let seen = Arc::new(Transitions::default());
    let monitor = Monitor::new(metrics).with_observer(seen.clone());
    monitor.replace(vec![(
        domain_config("a.example", Expectations::default()),
        view(),
    )]);
    let domain = monitor.domain("a.example").unwrap();
    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 mx1.a.example"], vec![]),
    );
    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 mx2.a.example"], vec![]),
    );
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("a.example".to_owned(), CheckKind::Mx, None, false),
            ("a.example".to_owned(), CheckKind::Mx, Some(false), true),
        ]
    );
}

#[test]
fn dns_failure_from_the_start_is_not_drift() {
    let metrics = Arc::new(Metrics::new("test", "test"));
    let monitor = Monitor::new(metrics.clone());
    monitor.replace(vec![(
        domain_config("a.example", Expectations::default()),
        view(),
    )]);
    let domain = monitor.domain("a.example").unwrap();
    monitor.apply(&domain, mx_report("a.example", false, &[], vec![]));
    assert_eq!(
        sample(&metrics, "maildrift_drift", &[("domain", "a.example")]),
        Some(0.0)
    );
    assert!(
        domain.status().baseline.is_empty(),
        "nothing learned from a failure"
    );
    assert!(
        domain.status().checks[&CheckKind::Mx]
            .error
            .as_deref()
            .unwrap()
            .contains("timeout")
    );
}

#[test]
fn declared_expectation_is_not_overridden_by_a_baseline() {
    let metrics = Arc::new(Metrics::new("test", "test"));
    let monitor = Monitor::new(metrics.clone());
    let expect = Expectations {
        mx: Some(MxExpectation {
            hosts: vec!["mx1.a.example".into()],
        }),
        ..Expectations::default()
    };
    monitor.replace(vec![(domain_config("a.example", expect), view())]);
    let domain = monitor.domain("a.example").unwrap();
    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 mx1.a.example"], vec![]),
    );
    monitor.apply(
        &domain,
        mx_report("a.example", true, &["10 other.example"], vec![]),
    );
    assert!(domain.status().baseline.is_empty());
    // Without the check's own drift finding, nothing is drift: expectation drift is the
    // check's job (tested with the MX check), the baseline stays out of it.
    assert_eq!(
        sample(&metrics, "maildrift_drift", &[("domain", "a.example")]),
        Some(0.0)
    );
}

#[test]
fn removed_domains_lose_their_series_and_kept_ones_their_state_survives() {
    let metrics = Arc::new(Metrics::new("test", "test"));
    let monitor = Monitor::new(metrics.clone());
    monitor.replace(vec![
        (domain_config("a.example", Expectations::default()), view()),
        (domain_config("b.example", Expectations::default()), view()),
    ]);
    let a = monitor.domain("a.example").unwrap();
    monitor.apply(
        &a,
        mx_report("a.example", true, &["10 mx1.a.example"], vec![]),
    );
    assert_eq!(metrics.domains.get(), 2);

    let mut longer = domain_config("a.example", Expectations::default());
    longer.interval = Duration::from_secs(600);
    monitor.replace(vec![(longer, view())]);
    assert_eq!(metrics.domains.get(), 1);
    assert_eq!(
        sample(&metrics, "maildrift_drift", &[("domain", "b.example")]),
        None
    );
    let text = String::from_utf8(metrics.encode()).unwrap();
    assert!(!text.contains("b.example"), "stale series left:\n{text}");
    let a = monitor.domain("a.example").unwrap();
    assert_eq!(a.config.interval, Duration::from_secs(600));
    assert_eq!(
        a.status().baseline[&CheckKind::Mx],
        vec!["10 mx1.a.example"],
        "baseline kept"
    );
    assert_eq!(
        sample(&metrics, "maildrift_mx_records", &[("domain", "a.example")]),
        Some(1.0)
    );
}
