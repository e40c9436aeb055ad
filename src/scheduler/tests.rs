//! The scheduler under tokio's paused clock: timing, hanging domains, plan changes, and
//! the skipped-turn warning.

use super::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records when each domain was checked; `slow` domains take `slow_for`.
struct Recorder {
    checks: Mutex<Vec<(String, Instant)>>,
    slow: Vec<String>,
    slow_for: Duration,
}

impl DomainChecker for Recorder {
    fn check(&self, domain: String) -> BoxFuture<'static, ()> {
        self.checks
            .lock()
            .unwrap()
            .push((domain.clone(), Instant::now()));
        let delay = if self.slow.contains(&domain) {
            self.slow_for
        } else {
            Duration::from_millis(20)
        };
        Box::pin(tokio::time::sleep(delay))
    }
}

#[derive(Default)]
struct Rounds(Mutex<Vec<(Duration, usize, bool)>>, AtomicU64);

impl RoundObserver for Rounds {
    fn round_finished(&self, duration: Duration, domains: usize, first: bool) {
        self.0.lock().unwrap().push((duration, domains, first));
    }

    fn turn_skipped(&self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

fn entry(domain: &str, secs: u64) -> PlanEntry {
    PlanEntry {
        domain: domain.to_owned(),
        interval: Duration::from_secs(secs),
    }
}

fn times_of(recorder: &Recorder, domain: &str) -> Vec<Instant> {
    let checks = recorder.checks.lock().unwrap();
    checks
        .iter()
        .filter(|(d, _)| d == domain)
        .map(|(_, at)| *at)
        .collect()
}

struct Harness {
    recorder: Arc<Recorder>,
    rounds: Arc<Rounds>,
    plan: watch::Sender<Arc<Vec<PlanEntry>>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    start: Instant,
}

fn start(entries: Vec<PlanEntry>, slow: &[&str], concurrency: usize) -> Harness {
    let recorder = Arc::new(Recorder {
        checks: Mutex::new(Vec::new()),
        slow: slow.iter().map(|s| (*s).to_owned()).collect(),
        slow_for: Duration::from_secs(3600),
    });
    let rounds = Arc::new(Rounds::default());
    let (plan, plan_rx) = watch::channel(Arc::new(entries));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        plan_rx,
        recorder.clone(),
        rounds.clone(),
        concurrency,
        shutdown.clone(),
    ));
    Harness {
        recorder,
        rounds,
        plan,
        shutdown,
        task,
        start: Instant::now(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_domain_is_checked_at_start_then_within_each_interval() {
    let h = start(
        vec![entry("a.example", 60), entry("b.example", 300)],
        &[],
        4,
    );
    tokio::time::sleep(Duration::from_secs(3000)).await;
    for (domain, interval) in [("a.example", 60.0), ("b.example", 300.0)] {
        let times = times_of(&h.recorder, domain);
        assert_eq!(times[0], h.start, "{domain} checked at start");
        for pair in times.windows(2) {
            let gap = (pair[1] - pair[0]).as_secs_f64();
            assert!(
                gap <= interval && gap >= interval * 0.95,
                "{domain}: gap {gap}s outside [{}, {interval}]",
                interval * 0.95
            );
        }
        let expected = (3000.0 / interval) as usize;
        assert!(
            times.len() >= expected && times.len() <= expected * 105 / 100 + 1,
            "{domain}: {} checks in 3000 s",
            times.len()
        );
    }
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hanging_domain_never_delays_the_others() {
    // Concurrency 2 with one domain that hangs for an hour: the other two still run on
    // schedule (the hanging one holds one permit), and the hanging one skips its turns.
    let h = start(
        vec![
            entry("hang.example", 10),
            entry("a.example", 10),
            entry("b.example", 10),
        ],
        &["hang.example"],
        2,
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(times_of(&h.recorder, "hang.example").len(), 1);
    for domain in ["a.example", "b.example"] {
        let times = times_of(&h.recorder, domain);
        assert!(times.len() >= 60, "{domain}: only {} checks", times.len());
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] <= Duration::from_secs(10) + Duration::from_millis(50));
        }
    }
    // The first round includes the hanging domain, so it has not finished.
    assert!(
        h.rounds
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|(_, _, first)| !first)
    );
    h.shutdown.cancel();
    // Shutdown drains for DRAIN_TIMEOUT, then aborts the hanging check.
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn first_round_reports_when_all_domains_finished() {
    let h = start(vec![entry("a.example", 60), entry("b.example", 60)], &[], 8);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rounds = h.rounds.0.lock().unwrap().clone();
    assert_eq!(rounds.len(), 1);
    let (duration, domains, first) = rounds[0];
    assert!(first);
    assert_eq!(domains, 2);
    assert_eq!(duration, Duration::from_millis(20));
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn plan_changes_add_and_remove_domains() {
    let h = start(vec![entry("a.example", 60), entry("b.example", 60)], &[], 8);
    tokio::time::sleep(Duration::from_secs(30)).await;
    h.plan
        .send(Arc::new(vec![
            entry("a.example", 60),
            entry("c.example", 60),
        ]))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let c = times_of(&h.recorder, "c.example");
    assert_eq!(
        c,
        vec![h.start + Duration::from_secs(30)],
        "new domain checked at once"
    );
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(
        times_of(&h.recorder, "b.example").len(),
        1,
        "removed domain not checked again"
    );
    assert!(times_of(&h.recorder, "a.example").len() >= 6);
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn skipped_turns_are_counted_for_every_domain_that_hangs() {
    // 20 domains whose checks hang, every 5 s: each skips every turn after its first.
    let domains: Vec<String> = (0..20).map(|i| format!("d{i}.example")).collect();
    let slow: Vec<&str> = domains.iter().map(String::as_str).collect();
    let h = start(domains.iter().map(|d| entry(d, 5)).collect(), &slow, 20);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let skipped = h.rounds.1.load(Ordering::Relaxed);
    // 11 or 12 turns each in 60 s (the jitter makes turns up to 5 % shorter).
    assert!(
        (20 * 11..=20 * 12).contains(&skipped),
        "{skipped} turns skipped"
    );
    assert_eq!(
        h.recorder.checks.lock().unwrap().len(),
        20,
        "only the first turns ran"
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_skipped_turns_warns_once_a_minute_with_what_went_unlogged() {
    // 2,000 domains skipping every turn of a 5 s interval for ten minutes: 240,000 turns
    // (the soak's 400 lines a second), ten warnings.
    let mut log = SkipLog::default();
    let start = Instant::now();
    let mut warnings = Vec::new();
    for tick in 0..120u32 {
        tokio::time::sleep_until(start + Duration::from_secs(5) * tick).await;
        for domain in 0..2000 {
            if let Some(unlogged) = log.skipped(&format!("d{domain}.example"), Instant::now()) {
                warnings.push((Instant::now() - start, unlogged));
            }
        }
    }
    let expected: Vec<(Duration, (u64, usize))> = (0..10u64)
        .map(|minute| {
            let unlogged = if minute == 0 {
                (0, 0)
            } else {
                (12 * 2000 - 1, 2000)
            };
            (Duration::from_secs(60 * minute), unlogged)
        })
        .collect();
    assert_eq!(warnings, expected);
}

#[test]
fn jitter_stays_within_five_percent_and_never_exceeds_the_interval() {
    for _ in 0..1000 {
        let d = jittered(Duration::from_secs(300));
        assert!(d <= Duration::from_secs(300) && d > Duration::from_secs(285));
    }
    assert_eq!(jittered(Duration::from_nanos(10)), Duration::from_nanos(10));
}
