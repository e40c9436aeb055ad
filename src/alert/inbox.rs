//! The alerting task's inbox: what the checks said and the task has not applied yet, kept
//! as at most one [`Coalesced`] entry per alert key. A task that falls behind (it awaits the
//! incident store for every alert it opens or closes) finds the newest state of each key
//! when it looks again, and the inbox holds O(alert keys), never a backlog that grows with
//! the time the task is behind (the soak's growth, `bench/SOAK.md`).

use super::AlertKey;
use super::engine::Runtime;
use super::rules::{AlertContent, Condition};
use prometheus::{IntCounter, IntGauge};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The conditions seen for one alert key since the task last looked, reduced to what
/// changes the [`Lifecycle`](super::lifecycle::Lifecycle) when replayed in order, each at
/// the instant it was seen: the active answers before the first inactive one (they extend
/// or fire what was pending), the first inactive answer (a pending alert starts over, a
/// firing one starts to clear), the last run of active answers between that and the last
/// run of inactive answers, the start of that last run (`keep_firing_for` counts from it),
/// the active answers after it, and a newest inconclusive answer. A run of active answers
/// is its first and last instant and its newest content.
///
/// So flapping inside `for` never fires and a condition held for `for` fires, however late
/// the task looks. What it drops, in a task that is behind: the runs of active answers
/// between the first and the last-but-one run of inactive ones (an alert that rose and
/// cleared again there is not announced), and a punctual tick between two answers (an
/// alert due to fire or resolve between two answers does so at the later answer, or when
/// the task looks).
#[derive(Clone, Debug, Default)]
pub(crate) struct Coalesced {
    /// Active answers before the first inactive one.
    head: Option<Run>,
    /// The first inactive answer.
    first_inactive: Option<Instant>,
    /// The last run of active answers between the first and the last run of inactive ones.
    middle: Option<Run>,
    /// Where the last run of inactive answers began, when it is not the first run.
    last_inactive: Option<Instant>,
    /// Active answers after the last inactive one.
    tail: Option<Run>,
    /// The newest answer was inconclusive (a pending alert does not fire on it).
    unknown: Option<Instant>,
}

/// Active answers in a row (inconclusive ones between them aside).
#[derive(Clone, Debug)]
struct Run {
    first: Instant,
    last: Instant,
    /// What the newest one says.
    content: AlertContent,
}

impl Run {
    fn extend(run: &mut Option<Run>, content: AlertContent, at: Instant) {
        match run {
            Some(run) => {
                run.last = at;
                run.content = content;
            }
            None => {
                *run = Some(Run {
                    first: at,
                    last: at,
                    content,
                })
            }
        }
    }

    /// Its first answer and, when later, its last, each with the newest content.
    fn replay(self) -> impl Iterator<Item = (Instant, Condition)> {
        let last = (self.last > self.first).then_some(self.last);
        std::iter::once(self.first)
            .chain(last)
            .map(move |at| (at, Condition::Active(self.content.clone())))
    }
}

impl Coalesced {
    /// Adds the condition seen at `at` (answers of one key arrive in the order seen).
    pub(crate) fn push(&mut self, condition: Condition, at: Instant) {
        match condition {
            Condition::Active(content) => {
                self.unknown = None;
                let run = if self.first_inactive.is_none() {
                    &mut self.head
                } else {
                    &mut self.tail
                };
                Run::extend(run, content, at);
            }
            Condition::Inactive => {
                self.unknown = None;
                if self.first_inactive.is_none() {
                    self.first_inactive = Some(at);
                } else if let Some(run) = self.tail.take() {
                    // A new run of inactive answers; without active ones since, the last
                    // run goes on (across inconclusive answers).
                    self.middle = Some(run);
                    self.last_inactive = Some(at);
                }
            }
            Condition::Unknown => self.unknown = Some(at),
        }
    }

    /// The conditions to apply, in order, each with the instant it was seen.
    pub(crate) fn replay(self) -> impl Iterator<Item = (Instant, Condition)> {
        let inactive = |at: Option<Instant>| at.map(|at| (at, Condition::Inactive));
        self.head
            .into_iter()
            .flat_map(Run::replay)
            .chain(inactive(self.first_inactive))
            .chain(self.middle.into_iter().flat_map(Run::replay))
            .chain(inactive(self.last_inactive))
            .chain(self.tail.into_iter().flat_map(Run::replay))
            .chain(self.unknown.map(|at| (at, Condition::Unknown)))
    }
}

/// What the task finds when it looks: settings first, then the conditions.
#[derive(Default)]
pub(crate) struct Taken {
    /// New settings (a reload), the newest.
    pub(crate) runtime: Option<Box<Runtime>>,
    /// The watched domains (a reload), the newest.
    pub(crate) domains: Option<BTreeSet<String>>,
    /// Per alert key, in the order the keys first arrived.
    pub(crate) updates: Vec<(AlertKey, Coalesced)>,
}

impl Taken {
    /// Nothing to do.
    pub(crate) fn is_empty(&self) -> bool {
        self.runtime.is_none() && self.domains.is_none() && self.updates.is_empty()
    }
}

#[derive(Default)]
struct Pending {
    taken: Taken,
    /// Where each key is in `taken.updates`.
    index: HashMap<AlertKey, usize>,
    /// The handle is gone: the task stops once it has applied what is here.
    closed: bool,
}

/// The inbox shared by the monitor's hook (producers) and the alerting task (consumer).
pub(crate) struct Inbox {
    pending: Mutex<Pending>,
    wake: Notify,
    /// `maildrift_alert_updates_queued`: alert keys waiting for the task.
    queued: IntGauge,
    /// `maildrift_alert_updates_coalesced_total`: conditions replaced by a newer one of the
    /// same key before the task looked (how far behind it was).
    coalesced: IntCounter,
}

impl Inbox {
    pub(crate) fn new(queued: IntGauge, coalesced: IntCounter) -> Inbox {
        queued.set(0);
        Inbox {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            queued,
            coalesced,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the conditions of one check result, seen now. Never blocks on the task.
    pub(crate) fn update(&self, conditions: Vec<(AlertKey, Condition)>) {
        if conditions.is_empty() {
            return;
        }
        let mut pending = self.lock();
        // Under the lock: the instants of one key's answers are in the order they arrive.
        let at = Instant::now();
        let Pending { taken, index, .. } = &mut *pending;
        for (key, condition) in conditions {
            match index.entry(key) {
                Entry::Occupied(slot) => {
                    taken.updates[*slot.get()].1.push(condition, at);
                    self.coalesced.inc();
                }
                Entry::Vacant(slot) => {
                    let mut entry = Coalesced::default();
                    entry.push(condition, at);
                    taken.updates.push((slot.key().clone(), entry));
                    slot.insert(taken.updates.len() - 1);
                }
            }
        }
        self.queued.set(taken.updates.len() as i64);
        drop(pending);
        self.wake.notify_one();
    }

    /// New settings and watched domains (a reload). Conditions waiting for domains no
    /// longer watched are dropped: their alerts resolve with the domain.
    pub(crate) fn reconfigure(&self, runtime: Runtime, domains: BTreeSet<String>) {
        let mut pending = self.lock();
        let Pending { taken, index, .. } = &mut *pending;
        taken
            .updates
            .retain(|(key, _)| domains.contains(&key.domain));
        index.clear();
        index.extend(
            taken
                .updates
                .iter()
                .enumerate()
                .map(|(i, (key, _))| (key.clone(), i)),
        );
        taken.runtime = Some(Box::new(runtime));
        taken.domains = Some(domains);
        self.queued.set(taken.updates.len() as i64);
        drop(pending);
        self.wake.notify_one();
    }

    /// The handle is gone: the task stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Everything waiting, leaving the inbox empty; `None` once closed and empty.
    pub(crate) fn take(&self) -> Option<Taken> {
        let mut pending = self.lock();
        if pending.closed && pending.taken.is_empty() {
            return None;
        }
        pending.index.clear();
        self.queued.set(0);
        Some(std::mem::take(&mut pending.taken))
    }

    /// Waits until something was added (at once when it was since the last `take`).
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Alert keys waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().taken.updates.len()
    }
}
