//! The jittered per-domain schedule: every domain is checked once at start-up, then every
//! `interval` (minus up to 5 % jitter, so never later than its interval). Checks run as
//! separate tasks under a concurrency bound, so a slow or dead domain never delays others;
//! a domain whose previous check is still running skips that turn.

use futures::future::BoxFuture;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One domain in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanEntry {
    /// Domain name (the key).
    pub domain: String,
    /// Time between two checks.
    pub interval: Duration,
}

/// What the scheduler runs; the monitor in production, a recorder in tests.
pub(crate) trait DomainChecker: Send + Sync + 'static {
    /// Checks one domain (the implementation bounds its own duration).
    fn check(&self, domain: String) -> BoxFuture<'static, ()>;
}

/// Called when a pass over the domains due together has finished.
pub(crate) trait RoundObserver: Send + Sync + 'static {
    /// `first` is true for the start-up pass over every domain.
    fn round_finished(&self, duration: Duration, domains: usize, first: bool);
}

struct Slot {
    interval: Duration,
    next_due: Instant,
    in_flight: bool,
}

struct Round {
    started: Instant,
    domains: usize,
    remaining: usize,
    first: bool,
}

/// How long in-flight checks may run after shutdown was asked for.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs until `shutdown`; the plan is re-read whenever `plan` changes (config reload).
pub(crate) async fn run(
    mut plan: watch::Receiver<Arc<Vec<PlanEntry>>>,
    checker: Arc<dyn DomainChecker>,
    observer: Arc<dyn RoundObserver>,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut slots: HashMap<String, Slot> = HashMap::new();
    let mut queue: BinaryHeap<Reverse<(Instant, String)>> = BinaryHeap::new();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, (String, u64)> = HashMap::new();
    let mut rounds: HashMap<u64, Round> = HashMap::new();
    let mut next_round: u64 = 0;
    let mut first_round_done = false;

    let initial = plan.borrow_and_update().clone();
    sync_plan(&mut slots, &mut queue, &initial);
    if initial.is_empty() {
        first_round_done = true;
        observer.round_finished(Duration::ZERO, 0, true);
    }

    loop {
        let wake = queue.peek().map(|Reverse((due, _))| *due);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = plan.changed() => {
                if changed.is_err() {
                    break;
                }
                let entries = plan.borrow_and_update().clone();
                sync_plan(&mut slots, &mut queue, &entries);
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(error) => {
                        // A panicking check is a bug; the domain stays scheduled.
                        tracing::error!(%error, "domain check task failed");
                        error.id()
                    }
                };
                let Some((domain, round)) = running.remove(&id) else { continue };
                if let Some(slot) = slots.get_mut(&domain) {
                    slot.in_flight = false;
                }
                if let Some(entry) = rounds.get_mut(&round) {
                    entry.remaining -= 1;
                    if entry.remaining == 0 {
                        let entry = rounds.remove(&round).expect("round present");
                        if entry.first {
                            first_round_done = true;
                        }
                        observer.round_finished(entry.started.elapsed(), entry.domains, entry.first);
                    }
                }
            }
            _ = sleep_until(wake) => {
                let now = Instant::now();
                let mut due = Vec::new();
                while let Some(Reverse((at, _))) = queue.peek() {
                    if *at > now {
                        break;
                    }
                    let Reverse((at, domain)) = queue.pop().expect("peeked");
                    let Some(slot) = slots.get_mut(&domain) else { continue };
                    if slot.next_due != at {
                        continue; // superseded entry
                    }
                    slot.next_due = at + jittered(slot.interval);
                    queue.push(Reverse((slot.next_due, domain.clone())));
                    if slot.in_flight {
                        tracing::warn!(domain = %domain, "previous check still running; skipping this turn");
                        continue;
                    }
                    slot.in_flight = true;
                    due.push(domain);
                }
                if due.is_empty() {
                    continue;
                }
                let round = next_round;
                next_round += 1;
                rounds.insert(round, Round {
                    started: now,
                    domains: due.len(),
                    remaining: due.len(),
                    first: !first_round_done && round == 0,
                });
                for domain in due {
                    let name = domain.clone();
                    let checker = checker.clone();
                    let permits = permits.clone();
                    let task = tasks.spawn(async move {
                        let _permit = permits.acquire_owned().await;
                        checker.check(domain).await;
                    });
                    running.insert(task.id(), (name, round));
                }
            }
        }
    }

    if tasks.is_empty() {
        return;
    }
    tracing::info!(in_flight = tasks.len(), "waiting for in-flight checks");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("in-flight checks did not finish in time; aborting them");
        tasks.abort_all();
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The interval less up to 5 % (at most 30 s), so that domains that start together spread
/// out over time and a domain is never checked later than its interval.
fn jittered(interval: Duration) -> Duration {
    let max_jitter = (interval / 20).min(Duration::from_secs(30));
    if max_jitter.is_zero() {
        return interval;
    }
    let jitter = rand::rng().random_range(Duration::ZERO..max_jitter);
    interval - jitter
}

/// Adds new domains (due now), drops removed ones, updates changed intervals.
fn sync_plan(
    slots: &mut HashMap<String, Slot>,
    queue: &mut BinaryHeap<Reverse<(Instant, String)>>,
    entries: &[PlanEntry],
) {
    let now = Instant::now();
    let wanted: HashMap<&str, &PlanEntry> =
        entries.iter().map(|e| (e.domain.as_str(), e)).collect();
    slots.retain(|domain, _| wanted.contains_key(domain.as_str()));
    for entry in entries {
        match slots.get_mut(&entry.domain) {
            Some(slot) if slot.interval == entry.interval => {}
            Some(slot) => {
                // Keep the phase but never wait longer than the new interval.
                slot.interval = entry.interval;
                let latest = now + entry.interval;
                if slot.next_due > latest {
                    slot.next_due = latest;
                    queue.push(Reverse((latest, entry.domain.clone())));
                }
            }
            None => {
                slots.insert(
                    entry.domain.clone(),
                    Slot {
                        interval: entry.interval,
                        next_due: now,
                        in_flight: false,
                    },
                );
                queue.push(Reverse((now, entry.domain.clone())));
            }
        }
    }
    queue.retain(|Reverse((_, domain))| slots.contains_key(domain));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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
    struct Rounds(Mutex<Vec<(Duration, usize, bool)>>);

    impl RoundObserver for Rounds {
        fn round_finished(&self, duration: Duration, domains: usize, first: bool) {
            self.0.lock().unwrap().push((duration, domains, first));
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

    #[test]
    fn jitter_stays_within_five_percent_and_never_exceeds_the_interval() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(300));
            assert!(d <= Duration::from_secs(300) && d > Duration::from_secs(285));
        }
        assert_eq!(jittered(Duration::from_nanos(10)), Duration::from_nanos(10));
    }
}
