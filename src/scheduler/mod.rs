//! The jittered per-domain schedule: every domain is checked once at start-up, then every
//! `interval` (minus up to 5 % jitter, so never later than its interval). Checks run as
//! separate tasks under a concurrency bound, so a slow or dead domain never delays others;
//! a domain whose previous check is still running skips that turn (counted, and logged at
//! most once a minute).

use futures::future::BoxFuture;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
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
    /// A domain skipped its turn: its previous check was still running.
    fn turn_skipped(&self) {}
}

/// How often at most the scheduler warns that domains skip their turns.
pub(crate) const SKIP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The warning for skipped turns, at most once per [`SKIP_LOG_INTERVAL`]: a daemon that is
/// behind would otherwise log every skipped turn of every domain (the soak saw hundreds of
/// lines a second). The next warning says how many turns of how many domains went unlogged.
#[derive(Default)]
struct SkipLog {
    /// When the next warning may be logged (`None`: at once).
    next: Option<Instant>,
    /// Turns skipped and not logged since the last warning.
    unlogged: u64,
    /// The domains of those turns.
    domains: HashSet<String>,
}

impl SkipLog {
    /// A turn of `domain` was skipped at `now`: `Some((turns, domains))` when to warn, with
    /// the turns skipped and not logged since the last warning and their domains.
    fn skipped(&mut self, domain: &str, now: Instant) -> Option<(u64, usize)> {
        if self.next.is_some_and(|next| now < next) {
            self.unlogged += 1;
            if !self.domains.contains(domain) {
                self.domains.insert(domain.to_owned());
            }
            return None;
        }
        let unlogged = (self.unlogged, self.domains.len());
        self.next = Some(now + SKIP_LOG_INTERVAL);
        self.unlogged = 0;
        self.domains.clear();
        Some(unlogged)
    }
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
    let mut skips = SkipLog::default();

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
                        observer.turn_skipped();
                        if let Some((turns, domains)) = skips.skipped(&domain, now) {
                            tracing::warn!(
                                domain = %domain,
                                unlogged_turns = turns,
                                unlogged_domains = domains,
                                "previous check still running; skipping this turn"
                            );
                        }
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
mod tests;
