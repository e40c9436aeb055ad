//! Monitor tests: a domain's checks run against a fake DNS whose records the test changes;
//! the results applied to state, metrics and observers.

use super::*;
use crate::checks::mx::Mx;
use crate::config::{Expectations, MxExpectation, ResolverSpec};
use crate::dns::fake::FakeDns;
use crate::dns::{DnsError, RecordType};
use std::time::Duration;

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
        skip: Vec::new(),
    }
}

/// The MX check only, over `dns`.
fn monitor(metrics: &Arc<Metrics>) -> Monitor {
    Monitor::new(metrics.clone(), Arc::new(Registry::empty().with(Mx)))
}

/// Metrics with every series shown (`metrics.detail`): the tests read zero values.
fn metrics() -> Arc<Metrics> {
    let checks = Registry::empty().with(Mx);
    let metrics = Metrics::new("test", "test", &checks);
    metrics.set_detail(true);
    Arc::new(metrics)
}

fn view(dns: &Arc<FakeDns>) -> DnsView {
    DnsView::new(dns.clone(), dns.clone())
}

/// Publishes `values` ("PREF HOST") as the MX set of `domain`, or (`success` false) makes
/// the MX lookup time out.
fn publish(dns: &FakeDns, domain: &str, success: bool, values: &[&str]) {
    if !success {
        let error = DnsError::Timeout {
            server: "127.0.0.1:53".to_owned(),
            name: domain.to_owned(),
            rtype: RecordType::Mx,
        };
        dns.fail(domain, RecordType::Mx, error);
        return;
    }
    let pairs: Vec<(u16, &str)> = values
        .iter()
        .map(|v| {
            let (preference, host) = v.split_once(' ').unwrap();
            (preference.parse().unwrap(), host)
        })
        .collect();
    dns.mx(domain, &pairs);
    for (_, host) in &pairs {
        dns.a(host, &["192.0.2.1"]);
    }
}

/// The first sample of `name` in the exposition whose labels include `labels`.
fn sample(metrics: &Arc<Metrics>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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
fn a_check_state_is_held_in_72_bytes() {
    // A domain holds one per check (13): exactly sized slices and a boxed error text, not
    // vectors and a string, save 24 bytes each.
    assert_eq!(std::mem::size_of::<CheckStatus>(), 72);
    let status = CheckStatus {
        success: true,
        drift: true,
        findings: vec![Finding::new(FindingCode::Drift, Severity::Critical, "x")].into(),
        records: Box::default(),
        error: None,
        last_checked: None,
    };
    let json = serde_json::to_string(&status).unwrap();
    assert_eq!(
        json,
        r#"{"success":true,"drift":true,"findings":[{"code":"drift","severity":"critical","message":"x","evidence":{}}],"records":[],"last_checked":null}"#
    );
    let back: CheckStatus = serde_json::from_str(&json).unwrap();
    assert_eq!(back, status);
    assert!(!back.accepted().drift);
}

#[tokio::test]
async fn learned_baseline_then_drift_then_recovery() {
    let metrics = metrics();
    let dns = Arc::new(FakeDns::new());
    let monitor = monitor(&metrics);
    monitor.replace(
        vec![(
            domain_config("a.example", Expectations::default()),
            view(&dns),
        )],
        GlobalConfig::default(),
    );
    let domain = monitor.domain("a.example").unwrap();
    let drift = |m: &Arc<Metrics>| {
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

    publish(&dns, "a.example", true, &["10 mx1.a.example"]);
    monitor.check("a.example").await;
    assert_eq!(
        domain.status().baseline[&CheckKind::Mx].as_ref(),
        ["10 mx1.a.example"]
    );
    assert_eq!(drift(&metrics), Some(0.0));

    publish(&dns, "a.example", true, &["10 mx.old.example"]);
    monitor.check("a.example").await;
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
    publish(&dns, "a.example", false, &[]);
    monitor.check("a.example").await;
    assert_eq!(drift(&metrics), Some(1.0));
    assert_eq!(
        sample(
            &metrics,
            "maildrift_check_success",
            &[("domain", "a.example"), ("check", "mx")]
        ),
        Some(0.0)
    );

    publish(&dns, "a.example", true, &["10 mx1.a.example"]);
    monitor.check("a.example").await;
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

#[tokio::test]
async fn observers_see_every_result_with_its_previous_state() {
    let metrics = metrics();
    let dns = Arc::new(FakeDns::new());
    let seen = Arc::new(Transitions::default());
    let monitor = monitor(&metrics).with_observer(seen.clone());
    monitor.replace(
        vec![(
            domain_config("a.example", Expectations::default()),
            view(&dns),
        )],
        GlobalConfig::default(),
    );
    publish(&dns, "a.example", true, &["10 mx1.a.example"]);
    monitor.check("a.example").await;
    publish(&dns, "a.example", true, &["10 mx2.a.example"]);
    monitor.check("a.example").await;
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("a.example".to_owned(), CheckKind::Mx, None, false),
            ("a.example".to_owned(), CheckKind::Mx, Some(false), true),
        ]
    );
}

#[tokio::test]
async fn dns_failure_from_the_start_is_not_drift() {
    let metrics = metrics();
    let dns = Arc::new(FakeDns::new());
    let monitor = monitor(&metrics);
    monitor.replace(
        vec![(
            domain_config("a.example", Expectations::default()),
            view(&dns),
        )],
        GlobalConfig::default(),
    );
    let domain = monitor.domain("a.example").unwrap();
    publish(&dns, "a.example", false, &[]);
    monitor.check("a.example").await;
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

#[tokio::test]
async fn declared_expectation_is_not_overridden_by_a_baseline() {
    let metrics = metrics();
    let dns = Arc::new(FakeDns::new());
    let monitor = monitor(&metrics);
    let expect = Expectations {
        mx: Some(MxExpectation {
            hosts: vec!["mx1.a.example".into()],
        }),
        ..Expectations::default()
    };
    monitor.replace(
        vec![(domain_config("a.example", expect), view(&dns))],
        GlobalConfig::default(),
    );
    let domain = monitor.domain("a.example").unwrap();
    publish(&dns, "a.example", true, &["10 mx1.a.example"]);
    monitor.check("a.example").await;
    publish(&dns, "a.example", true, &["10 other.example"]);
    monitor.check("a.example").await;
    assert!(domain.status().baseline.is_empty());
    // Drift compares with the declaration (hosts), never with a learned baseline (the
    // records of the first run).
    let status = domain.status();
    let drift = status.checks[&CheckKind::Mx]
        .findings
        .iter()
        .find(|f| f.code == FindingCode::Drift)
        .expect("drift against the declared hosts");
    assert_eq!(drift.evidence["from"], serde_json::json!(["mx1.a.example"]));
    assert_eq!(drift.evidence["to"], serde_json::json!(["other.example"]));
}

#[tokio::test]
async fn removed_domains_lose_their_series_and_kept_ones_their_state_survives() {
    let metrics = metrics();
    let dns = Arc::new(FakeDns::new());
    let monitor = monitor(&metrics);
    monitor.replace(
        vec![
            (
                domain_config("a.example", Expectations::default()),
                view(&dns),
            ),
            (
                domain_config("b.example", Expectations::default()),
                view(&dns),
            ),
        ],
        GlobalConfig::default(),
    );
    publish(&dns, "a.example", true, &["10 mx1.a.example"]);
    monitor.check("a.example").await;
    assert_eq!(metrics.domains.get(), 2);

    let mut longer = domain_config("a.example", Expectations::default());
    longer.interval = Duration::from_secs(600);
    monitor.replace(vec![(longer, view(&dns))], GlobalConfig::default());
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
        a.status().baseline[&CheckKind::Mx].as_ref(),
        ["10 mx1.a.example"],
        "baseline kept"
    );
    assert_eq!(
        sample(&metrics, "maildrift_mx_records", &[("domain", "a.example")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_run_computes_baseline_values_only_while_the_daemon_is_learning_them() {
    let dns = Arc::new(FakeDns::new());
    publish(&dns, "a.example", true, &["10 mx1.a.example"]);
    let registry = Registry::empty().with(Mx);
    let config = domain_config("a.example", Expectations::default());
    let global = GlobalConfig::default();
    let baseline_of = |report: DomainReport| report.checks[0].baseline.clone();
    let view = view(&dns);
    let run = |known| checks::run_domain(&registry, &config, &view, &global, known);

    // The daemon, nothing learned yet: the values to learn.
    let none = KindMap::default();
    let learning = Known {
        baselines: Some(&none),
        memory: None,
    };
    let learned = baseline_of(run(learning).await);
    assert_eq!(learned, Some(vec!["10 mx1.a.example".to_owned()]));

    // The daemon, learned: judged against it, nothing to learn.
    let mut kept = KindMap::default();
    kept.insert(CheckKind::Mx, Arc::from(learned.unwrap()));
    let judged = Known {
        baselines: Some(&kept),
        memory: None,
    };
    assert_eq!(baseline_of(run(judged).await), None);

    // A one-shot run keeps no baselines.
    assert_eq!(baseline_of(run(Known::default()).await), None);
}
