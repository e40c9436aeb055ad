//! Lifecycle tests of the whole alerting task under tokio's paused clock: check results go
//! in through the monitor hook, recording receivers capture what is sent and when.

use super::delivery::{Deliver, NoticeStatus, Payload, RetryPolicy};
use super::transport::DeliveryError;
use super::*;
use crate::checks::RecordObservation;
use crate::checks::compare_sets;
use crate::config::{AlertOverride, DomainConfig, ResolverSpec};
use crate::finding::{Finding, FindingCode};
use crate::monitor::CheckStatus;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::{Instant, sleep};

mod backlog;
mod rules_tests;

/// Wall time at the start of every test.
const T0: u64 = 1_700_000_000;

/// An Alertmanager batch: seconds since start, [(alertname, startsAt, endsAt)].
type Batch = (u64, Vec<(String, String, String)>);

/// A receiver that records each payload with the (paused) time it arrived.
struct Recorder {
    start: Instant,
    sent: Mutex<Vec<(Duration, Payload)>>,
    failing: AtomicBool,
}

impl Recorder {
    fn new(start: Instant) -> Arc<Recorder> {
        Arc::new(Recorder {
            start,
            sent: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
        })
    }

    fn sent(&self) -> Vec<(Duration, Payload)> {
        self.sent.lock().unwrap().clone()
    }

    /// Alertmanager batches as (seconds since start, [(alertname, startsAt, endsAt)]).
    fn batches(&self) -> Vec<Batch> {
        self.sent()
            .into_iter()
            .filter_map(|(at, payload)| match payload {
                Payload::Alerts(alerts) => Some((
                    at.as_secs(),
                    alerts
                        .into_iter()
                        .map(|a| (a.labels["alertname"].clone(), a.starts_at, a.ends_at))
                        .collect(),
                )),
                Payload::Notice(_) => None,
            })
            .collect()
    }

    fn notices(&self) -> Vec<(u64, NoticeStatus, String)> {
        self.sent()
            .into_iter()
            .filter_map(|(at, payload)| match payload {
                Payload::Notice(n) => Some((at.as_secs(), n.status, n.alert.key.domain)),
                Payload::Alerts(_) => None,
            })
            .collect()
    }
}

#[async_trait]
impl Deliver for Recorder {
    async fn deliver(&self, payload: &Payload) -> Result<(), DeliveryError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(DeliveryError::Retryable("receiver down".into()));
        }
        let at = Instant::now() - self.start;
        self.sent.lock().unwrap().push((at, payload.clone()));
        Ok(())
    }
}

/// A receiver that never answers.
struct BlackHole;

#[async_trait]
impl Deliver for BlackHole {
    async fn deliver(&self, _payload: &Payload) -> Result<(), DeliveryError> {
        std::future::pending().await
    }
}

struct Setup {
    alerting: Arc<Alerting>,
    am: Arc<Recorder>,
    hook: Arc<Recorder>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

fn config(for_secs: u64) -> AlertingConfig {
    let mut config = AlertingConfig::disabled();
    config.for_duration = Duration::from_secs(for_secs);
    config
}

fn start(config: &AlertingConfig, store: Arc<dyn AlertStore>) -> Setup {
    let now = Instant::now();
    let am = Recorder::new(now);
    let hook = Recorder::new(now);
    let runtime = Runtime {
        timings: Timings::new(config),
        resend_interval: config.resend_interval,
        external_url: "http://maildrift.test:9725".into(),
        alertmanagers: vec![Receiver {
            name: "am".into(),
            target: am.clone(),
        }],
        webhooks: vec![Receiver {
            name: "oncall".into(),
            target: hook.clone(),
        }],
        retry: RetryPolicy {
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            attempts: 3,
        },
        queue_capacity: 8,
    };
    let metrics = Arc::new(Metrics::new(
        "test",
        "test",
        &crate::checks::Registry::standard(),
    ));
    let shutdown = CancellationToken::new();
    let alerting = Alerting::start(
        runtime,
        Clock::new(now, UNIX_EPOCH + Duration::from_secs(T0)),
        store,
        metrics.clone(),
        BTreeSet::from(["a.example".to_string()]),
        shutdown.clone(),
    );
    Setup {
        alerting,
        am,
        hook,
        metrics,
        shutdown,
    }
}

fn domain() -> DomainConfig {
    DomainConfig {
        name: "a.example".into(),
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        resolvers: vec![ResolverSpec::System],
        authoritative: true,
        nameservers: Vec::new(),
        provider: None,
        expect: Default::default(),
        labels: BTreeMap::from([("team".to_string(), "mail".to_string())]),
        analysis: Default::default(),
        skip: Vec::new(),
    }
}

/// An MX result: `Some(true)` drifted, `Some(false)` as expected, `None` DNS failed.
fn mx(drifted: Option<bool>) -> CheckStatus {
    let to = if drifted == Some(true) {
        vec!["10 mxw.mxhichina.com".to_string()]
    } else {
        vec!["5 mx1.qiye.aliyun.com".to_string()]
    };
    let findings: Vec<Finding> =
        compare_sets(CheckKind::Mx, &["5 mx1.qiye.aliyun.com".to_string()], &to)
            .into_iter()
            .collect();
    CheckStatus {
        success: drifted.is_some(),
        drift: !findings.is_empty(),
        findings: findings.into(),
        records: vec![RecordObservation {
            record: "mx".into(),
            values: to,
            ttl: Some(600),
        }]
        .into(),
        error: drifted
            .is_none()
            .then(|| "timeout asking 127.0.0.1:53".into()),
        last_checked: None,
    }
}

fn apply(setup: &Setup, next: &CheckStatus) {
    let domain = domain();
    setup.alerting.check_applied(&CheckUpdate {
        domain: &domain,
        check: CheckKind::Mx,
        previous: None,
        next,
        at: SystemTime::now(),
    });
}

fn firing(setup: &Setup, name: &str) -> i64 {
    setup.metrics.alerts_firing.with_label_values(&[name]).get()
}

fn wall(secs: u64) -> String {
    alertmanager::rfc3339(UNIX_EPOCH + Duration::from_secs(T0 + secs))
}

#[tokio::test(start_paused = true)]
async fn flapping_inside_for_never_fires() {
    let setup = start(&config(120), Arc::new(MemoryAlertStore::default()));
    // Drift for 100 s, gone for 20 s, again and again for 20 minutes: never 120 s in a row.
    for _ in 0..10 {
        apply(&setup, &mx(Some(true)));
        sleep(Duration::from_secs(100)).await;
        apply(&setup, &mx(Some(false)));
        sleep(Duration::from_secs(20)).await;
    }
    assert!(setup.am.sent().is_empty(), "{:?}", setup.am.batches());
    assert!(setup.hook.sent().is_empty());
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    // Then it holds: fires exactly `for` after the onset.
    let onset = 1200;
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(119)).await;
    assert!(setup.am.sent().is_empty());
    sleep(Duration::from_secs(2)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1);
    let batches = setup.am.batches();
    assert_eq!(batches[0].0, onset + 120);
    assert_eq!(batches[0].1[0].1, wall(onset + 120), "startsAt = fire time");
    assert_eq!(
        setup.hook.notices(),
        [(onset + 120, NoticeStatus::Firing, "a.example".into())]
    );
    setup.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn firing_alerts_are_resent_every_interval_with_ends_at_four_intervals_ahead() {
    let setup = start(&config(0), Arc::new(MemoryAlertStore::default()));
    sleep(Duration::from_secs(30)).await;
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(200)).await;
    let batches = setup.am.batches();
    // Fired at 30 s (sent at once), then the resend ticks at 60, 120, 180 s.
    let times: Vec<u64> = batches.iter().map(|b| b.0).collect();
    assert_eq!(times, [30, 60, 120, 180]);
    for (at, alerts) in &batches {
        assert_eq!(alerts.len(), 1);
        let (name, starts_at, ends_at) = &alerts[0];
        assert_eq!(name, "MailDnsMxDrift");
        assert_eq!(starts_at, &wall(30));
        assert_eq!(
            ends_at,
            &wall(at + 240),
            "endsAt = now + 4 × resend_interval"
        );
    }
    // The webhook is told once, not on every resend.
    assert_eq!(setup.hook.notices().len(), 1);
    setup.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn resolution_is_sent_once_with_the_resolution_time() {
    let setup = start(&config(0), Arc::new(MemoryAlertStore::default()));
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(90)).await;
    apply(&setup, &mx(Some(false)));
    sleep(Duration::from_secs(600)).await;
    let batches = setup.am.batches();
    let times: Vec<u64> = batches.iter().map(|b| b.0).collect();
    // Fired at 0 (and the start-up resend at 0), resent at 60, resolved at 90, then nothing.
    assert_eq!(times.last(), Some(&90), "{batches:?}");
    let (_, resolved) = batches.last().unwrap();
    assert_eq!(resolved[0].2, wall(90), "endsAt = resolution time");
    assert_eq!(resolved[0].1, wall(0));
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    assert_eq!(
        setup.hook.notices(),
        [
            (0, NoticeStatus::Firing, "a.example".into()),
            (90, NoticeStatus::Resolved, "a.example".into())
        ]
    );
    setup.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn dns_failures_neither_fire_nor_resolve_drift() {
    let setup = start(&config(120), Arc::new(MemoryAlertStore::default()));
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(60)).await;
    // DNS fails across the `for` boundary: the drift alert does not fire on it.
    apply(&setup, &mx(None));
    sleep(Duration::from_secs(300)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    assert!(setup.am.sent().is_empty());
    // A conclusive answer confirms it: fires then.
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1);
    // DNS fails again while firing: still firing (unknown is not fixed) ...
    apply(&setup, &mx(None));
    sleep(Duration::from_secs(14 * 60)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1);
    assert_eq!(firing(&setup, "MailDnsCheckFailing"), 0);
    // ... and after its own 15 minutes, MailDnsCheckFailing fires.
    sleep(Duration::from_secs(61)).await;
    assert_eq!(firing(&setup, "MailDnsCheckFailing"), 1);
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1);
    apply(&setup, &mx(Some(false)));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(firing(&setup, "MailDnsCheckFailing"), 0);
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    setup.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn keep_firing_for_and_per_alert_for() {
    let mut config = config(600);
    config.alerts.insert(
        AlertName::MailDnsMxDrift,
        AlertOverride {
            for_duration: Some(Duration::from_secs(30)),
            keep_firing_for: Some(Duration::from_secs(300)),
        },
    );
    let setup = start(&config, Arc::new(MemoryAlertStore::default()));
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(31)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1, "per-alert for: 30 s");
    apply(&setup, &mx(Some(false)));
    sleep(Duration::from_secs(299)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1, "keeps firing 300 s");
    // Back inside keep_firing_for: the same alert goes on.
    apply(&setup, &mx(Some(true)));
    apply(&setup, &mx(Some(false)));
    sleep(Duration::from_secs(299)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 1);
    sleep(Duration::from_secs(2)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    let resolved = setup.am.batches().last().unwrap().1[0].clone();
    assert_eq!(resolved.1, wall(30));
    assert_eq!(resolved.2, wall(31 + 299 + 300));
    setup.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_is_down_blocks_nothing() {
    let mut setup = start(&config(0), Arc::new(MemoryAlertStore::default()));
    // Replace the webhook by one that never answers and add a failing Alertmanager.
    let failing = Recorder::new(Instant::now());
    failing.failing.store(true, Ordering::SeqCst);
    let am = Recorder::new(Instant::now());
    let mut runtime = runtime(None, "http://x").unwrap();
    runtime.alertmanagers = vec![
        Receiver {
            name: "down".into(),
            target: failing.clone(),
        },
        Receiver {
            name: "up".into(),
            target: am.clone(),
        },
    ];
    runtime.webhooks = vec![Receiver {
        name: "hole".into(),
        target: Arc::new(BlackHole),
    }];
    runtime.timings = Timings::new(&config(0));
    runtime.queue_capacity = 2;
    setup
        .alerting
        .reconfigure(runtime, BTreeSet::from(["a.example".to_string()]));
    setup.am = am;
    for _ in 0..20 {
        apply(&setup, &mx(Some(true)));
        sleep(Duration::from_secs(30)).await;
        apply(&setup, &mx(Some(false)));
        sleep(Duration::from_secs(30)).await;
    }
    // Every transition reached the healthy Alertmanager: 20 fired + 20 resolved (plus resends).
    let resolved = setup
        .am
        .batches()
        .iter()
        .filter(|(at, alerts)| alerts[0].2 == wall(*at))
        .count();
    assert_eq!(resolved, 20);
    let count = |receiver: &str, outcome: &str| {
        setup
            .metrics
            .notifications
            .with_label_values(&[receiver, outcome])
            .get()
    };
    assert!(
        count("down", "failure") >= 20,
        "{}",
        count("down", "failure")
    );
    assert_eq!(count("down", "success"), 0);
    // The black hole holds one notice forever, its queue holds 2, the rest are dropped.
    assert_eq!(count("hole", "dropped"), 40 - 3);
    setup.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_alertmanager_gets_open_incidents_and_webhooks_stay_quiet() {
    let store: Arc<dyn AlertStore> = Arc::new(MemoryAlertStore::default());
    let first = start(&config(0), store.clone());
    apply(&first, &mx(Some(true)));
    sleep(Duration::from_secs(10)).await;
    assert_eq!(first.hook.notices().len(), 1);
    first.shutdown.cancel();
    first.alerting.stopped().await;

    let second = start(&config(0), store.clone());
    sleep(Duration::from_secs(1)).await;
    let batches = second.am.batches();
    assert_eq!(batches[0].0, 0, "re-sent to Alertmanager at start-up");
    assert_eq!(batches[0].1[0].1, wall(0), "with its original startsAt");
    assert!(
        second.hook.notices().is_empty(),
        "webhook already announced it"
    );
    assert_eq!(firing(&second, "MailDnsMxDrift"), 1);
    // Still drifted: nothing new; fixed: the webhook hears the resolution.
    apply(&second, &mx(Some(true)));
    sleep(Duration::from_secs(5)).await;
    assert!(second.hook.notices().is_empty());
    apply(&second, &mx(Some(false)));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        second
            .hook
            .notices()
            .iter()
            .map(|n| n.1)
            .collect::<Vec<_>>(),
        [NoticeStatus::Resolved]
    );
    assert!(store.open_incidents().await.unwrap().is_empty());
    second.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn an_incident_never_announced_is_announced_after_a_restart() {
    let store: Arc<dyn AlertStore> = Arc::new(MemoryAlertStore::default());
    let first = start(&config(0), store.clone());
    first.hook.failing.store(true, Ordering::SeqCst);
    apply(&first, &mx(Some(true)));
    sleep(Duration::from_secs(60)).await;
    first.shutdown.cancel();
    first.alerting.stopped().await;
    let second = start(&config(0), store);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        second.hook.notices(),
        [(0, NoticeStatus::Firing, "a.example".into())]
    );
    second.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn alerts_of_a_domain_no_longer_watched_resolve() {
    let setup = start(&config(0), Arc::new(MemoryAlertStore::default()));
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(10)).await;
    let runtime = runtime(None, "http://x").unwrap();
    let mut runtime = runtime;
    runtime.alertmanagers = vec![Receiver {
        name: "am".into(),
        target: setup.am.clone(),
    }];
    setup.alerting.reconfigure(runtime, BTreeSet::new());
    sleep(Duration::from_secs(1)).await;
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    let (_, last) = setup.am.batches().last().cloned().unwrap();
    assert_eq!(last[0].2, wall(10));
    setup.shutdown.cancel();
}
