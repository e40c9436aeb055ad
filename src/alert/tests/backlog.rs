//! An alerting task that falls behind the checks: its inbox holds one entry per alert key
//! however long it is stalled, it applies the newest state when it looks again, and `for`
//! is judged on the instants the answers were seen, not on when the task got to them.

use super::*;
use crate::alert::inbox::Coalesced;
use crate::alert::lifecycle::{Lifecycle, Transition};
use tokio::sync::Semaphore;

/// An incident store whose `incident_opened` waits until the test opens the gate: the
/// alerting task stalls on it as it does on a slow database.
struct GatedStore {
    inner: MemoryAlertStore,
    gate: Semaphore,
    opened: std::sync::atomic::AtomicUsize,
}

impl GatedStore {
    /// Closed: every `incident_opened` waits.
    fn closed() -> GatedStore {
        GatedStore {
            inner: MemoryAlertStore::default(),
            gate: Semaphore::new(0),
            opened: Default::default(),
        }
    }
}

#[async_trait]
impl AlertStore for GatedStore {
    async fn open_incidents(&self) -> Result<Vec<AlertRecord>, StoreError> {
        self.inner.open_incidents().await
    }

    async fn incident_opened(&self, incident: &AlertRecord) -> Result<(), StoreError> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let _pass = self.gate.acquire().await;
        self.inner.incident_opened(incident).await
    }

    async fn incident_resolved(&self, id: &str, ended_at: SystemTime) -> Result<(), StoreError> {
        self.inner.incident_resolved(id, ended_at).await
    }

    async fn announced(&self, receiver: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.announced(receiver, id).await
    }

    async fn record_announced(&self, receiver: &str, id: &str) -> Result<(), StoreError> {
        self.inner.record_announced(receiver, id).await
    }
}

/// The alert keys one MX result speaks for.
fn mx_keys() -> usize {
    let domain = domain();
    let next = mx(Some(true));
    let update = CheckUpdate {
        domain: &domain,
        check: CheckKind::Mx,
        previous: None,
        next: &next,
        at: SystemTime::now(),
    };
    rules::evaluate(&update, "http://maildrift.test").len()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_engine_keeps_one_entry_per_alert_key_and_applies_the_newest_state() {
    let store = Arc::new(GatedStore::closed());
    let setup = start(&config(0), store.clone());
    apply(&setup, &mx(Some(true)));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        store.opened.load(Ordering::SeqCst),
        1,
        "stalled on the store"
    );
    // Two hours of results every 5 s, flapping, that the stalled task cannot apply.
    for _ in 0..720 {
        apply(&setup, &mx(Some(false)));
        sleep(Duration::from_secs(5)).await;
        apply(&setup, &mx(Some(true)));
        sleep(Duration::from_secs(5)).await;
    }
    apply(&setup, &mx(Some(false)));
    let keys = mx_keys();
    assert!(keys >= 2, "{keys}");
    assert_eq!(setup.alerting.inbox.len(), keys, "one entry per alert key");
    assert_eq!(setup.metrics.alert_updates_queued.get(), keys as i64);
    assert_eq!(
        setup.metrics.alert_updates_coalesced.get(),
        1440 * keys as u64,
        "every newer result replaced the one before"
    );
    assert!(setup.hook.notices().is_empty());
    // Released, it finishes the firing it was recording and applies what was seen, at the
    // instants seen (`for` and `keep_firing_for` are 0 s): cleared at 1 s, the last drift
    // (7,196 s), cleared again at 7,201 s. Two episodes, not 720; it ends resolved.
    store.gate.add_permits(Semaphore::MAX_PERMITS);
    sleep(Duration::from_secs(1)).await;
    let at = 1 + 7200;
    assert_eq!(
        setup.hook.notices(),
        [
            (at, NoticeStatus::Firing, "a.example".into()),
            (at, NoticeStatus::Resolved, "a.example".into()),
            (at, NoticeStatus::Firing, "a.example".into()),
            (at, NoticeStatus::Resolved, "a.example".into()),
        ]
    );
    let ends: Vec<String> = setup
        .am
        .batches()
        .into_iter()
        .map(|(_, alerts)| alerts[0].2.clone())
        .filter(|ends_at| *ends_at <= wall(at))
        .collect();
    assert_eq!(
        ends,
        [wall(1), wall(at)],
        "resolved when the fixes were seen"
    );
    assert_eq!(firing(&setup, "MailDnsMxDrift"), 0);
    assert_eq!(setup.metrics.alert_updates_queued.get(), 0);
    assert!(store.open_incidents().await.unwrap().is_empty());
    setup.shutdown.cancel();
}

fn mx_key() -> AlertKey {
    AlertKey {
        name: AlertName::MailDnsMxDrift,
        domain: "a.example".into(),
        check: CheckKind::Mx,
        severity: Severity::Critical,
    }
}

fn drift() -> Condition {
    Condition::Active(AlertContent {
        labels: BTreeMap::from([("alertname".into(), "MailDnsMxDrift".into())]),
        annotations: BTreeMap::new(),
        generator_url: String::new(),
        facts: None,
    })
}

/// Replays `inbox` into `lifecycle` as the task does, then ticks at `now`.
fn look(
    lifecycle: &mut Lifecycle,
    inbox: Coalesced,
    now: Instant,
    clock: &Clock,
    timings: &Timings,
) -> Vec<Transition> {
    let mut transitions: Vec<Transition> = inbox
        .replay()
        .filter_map(|(seen, c)| lifecycle.observe(mx_key(), c, seen, clock, timings))
        .collect();
    transitions.extend(lifecycle.tick(now, clock, timings));
    transitions
}

/// `for: 120s`, a clock that starts now at [`T0`], and the instant `secs` after now.
fn scene() -> (Timings, Clock, impl Fn(u64) -> Instant) {
    let t0 = Instant::now();
    let clock = Clock::new(t0, UNIX_EPOCH + Duration::from_secs(T0));
    let at = move |secs: u64| t0 + Duration::from_secs(secs);
    (Timings::new(&config(120)), clock, at)
}

#[tokio::test(start_paused = true)]
async fn flapping_seen_late_never_fires_and_for_counts_from_the_first_answer_after_it() {
    let (timings, clock, at) = scene();
    let mut lifecycle = Lifecycle::default();
    assert!(
        lifecycle
            .observe(mx_key(), drift(), at(0), &clock, &timings)
            .is_none()
    );
    // The task is busy for almost ten minutes while the answers flap: drifted for 100 s,
    // fixed for 20 s. Never 120 s in a row, though 590 s passed since the first drift.
    let mut inbox = Coalesced::default();
    for cycle in 0..4 {
        inbox.push(Condition::Inactive, at(cycle * 120 + 100));
        inbox.push(Condition::Unknown, at(cycle * 120 + 110));
        inbox.push(drift(), at(cycle * 120 + 120));
        inbox.push(drift(), at(cycle * 120 + 180));
    }
    assert_eq!(look(&mut lifecycle, inbox, at(590), &clock, &timings), []);
    // Drifted since 480 s as far as anyone saw: fires at 600 s.
    assert_eq!(lifecycle.next_deadline(&timings), Some(at(600)));
    let fired = lifecycle.tick(at(600), &clock, &timings);
    assert!(
        matches!(&fired[..], [Transition::Fired(a)] if a.starts_at == clock.wall(at(600))),
        "{fired:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_look_does_not_fire_on_an_inconclusive_newest_answer() {
    let (timings, clock, at) = scene();
    let mut lifecycle = Lifecycle::default();
    let mut inbox = Coalesced::default();
    inbox.push(drift(), at(0));
    inbox.push(drift(), at(60));
    inbox.push(Condition::Unknown, at(100));
    assert_eq!(look(&mut lifecycle, inbox, at(300), &clock, &timings), []);
    // A conclusive drift confirms it: it has held since 0 s, so it fires at once.
    let mut inbox = Coalesced::default();
    inbox.push(drift(), at(310));
    let fired = look(&mut lifecycle, inbox, at(310), &clock, &timings);
    assert!(matches!(&fired[..], [Transition::Fired(_)]), "{fired:?}");
}
