//! Work shared by the domains of one round (an MX host's SMTP dialogue, its TLSA records):
//! done once per key, awaited by every domain asking meanwhile, reused for less than the
//! asking domain's `max_age`, so a provider's MX host is asked once per round however many
//! domains use it, and never answered from an earlier round. Failures are shared like
//! successes: a silent host costs one timeout per round, not one per domain.
//!
//! Owned by the check that does the work (the check lives as long as the daemon); uses
//! tokio's clock, so tests run rounds on a paused clock.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Work in flight, awaited by every domain asking for the same key.
type InFlight<V> = Shared<BoxFuture<'static, Arc<V>>>;

/// One key's state.
enum Entry<V> {
    /// Being done since `started`.
    Pending {
        /// When the work started (work older than a round is started anew).
        started: Instant,
        /// The work.
        future: InFlight<V>,
    },
    /// Done at `at`.
    Ready {
        /// When the work finished.
        at: Instant,
        /// Its result.
        value: Arc<V>,
    },
}

impl<V> Entry<V> {
    /// When the entry's round began.
    fn since(&self) -> Instant {
        match self {
            Entry::Pending { started, .. } => *started,
            Entry::Ready { at, .. } => *at,
        }
    }
}

/// The keys of this round and their results.
struct State<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// When entries older than a round were last dropped (at most once per `max_age`, so
    /// the sweep costs O(1) per question amortised).
    swept: Option<Instant>,
}

/// A per-round memo: the result of some work per key.
pub struct RoundMemo<K, V> {
    state: Mutex<State<K, V>>,
    /// How many times the work was started (for tests and logs).
    started: AtomicU64,
}

impl<K, V> Default for RoundMemo<K, V> {
    fn default() -> Self {
        RoundMemo {
            state: Mutex::new(State {
                entries: HashMap::new(),
                swept: None,
            }),
            started: AtomicU64::new(0),
        }
    }
}

impl<K, V> std::fmt::Debug for RoundMemo<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoundMemo")
            .field("started", &self.started.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone, V: Send + Sync + 'static> RoundMemo<K, V> {
    /// How many times work was started so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Keys remembered or in flight.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is remembered or in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        self.state.lock().expect("round memo poisoned")
    }

    /// The result of `work` for `key`: the one done or being done for less than `max_age`
    /// (the asking domain's round), else `work` started now.
    pub async fn get<F, Fut>(&self, key: K, max_age: Duration, work: F) -> Arc<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let future = {
            let mut state = self.lock();
            let now = Instant::now();
            if state
                .swept
                .is_none_or(|at| now.duration_since(at) >= max_age)
            {
                state
                    .entries
                    .retain(|_, entry| now.duration_since(entry.since()) < max_age);
                state.swept = Some(now);
            }
            match state.entries.get(&key) {
                Some(Entry::Ready { at, value }) if now.duration_since(*at) < max_age => {
                    return value.clone();
                }
                Some(Entry::Pending { started, future })
                    if now.duration_since(*started) < max_age =>
                {
                    future.clone()
                }
                _ => {
                    let future = work().map(Arc::new).boxed().shared();
                    self.started.fetch_add(1, Ordering::Relaxed);
                    let entry = Entry::Pending {
                        started: now,
                        future: future.clone(),
                    };
                    state.entries.insert(key.clone(), entry);
                    future
                }
            }
        };
        let value = future.clone().await;
        let mut state = self.lock();
        if let Some(Entry::Pending {
            future: pending, ..
        }) = state.entries.get(&key)
            && pending.ptr_eq(&future)
        {
            let ready = Entry::Ready {
                at: Instant::now(),
                value: value.clone(),
            };
            state.entries.insert(key, ready);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const ROUND: Duration = Duration::from_secs(150);

    #[tokio::test(start_paused = true)]
    async fn concurrent_askers_share_one_run_and_reuse_it_within_the_round() {
        let memo: RoundMemo<&str, usize> = RoundMemo::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let ask = |key| {
            let runs = runs.clone();
            memo.get(key, ROUND, move || async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                runs.fetch_add(1, Ordering::SeqCst) + 1
            })
        };
        let (a, b, c) = tokio::join!(ask("mx1"), ask("mx1"), ask("mx2"));
        assert_eq!(runs.load(Ordering::SeqCst), 2, "mx1 asked once, mx2 once");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Later in the same round: the result, no new run.
        tokio::time::advance(ROUND - Duration::from_secs(1)).await;
        assert_eq!(ask("mx1").await, a);
        assert_eq!(memo.started(), 2);
        // The next round asks again.
        tokio::time::advance(Duration::from_secs(1)).await;
        let again = ask("mx1").await;
        assert_ne!(again, a);
        assert_eq!(memo.started(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_shared_and_old_rounds_are_swept() {
        let memo: RoundMemo<u32, Result<(), String>> = RoundMemo::default();
        let failing = || async { Err::<(), _>("connection refused".to_owned()) };
        for _ in 0..3 {
            assert!(memo.get(1, ROUND, failing).await.is_err());
        }
        assert_eq!(
            memo.started(),
            1,
            "a failure is not asked again within the round"
        );
        for key in 2..10 {
            memo.get(key, ROUND, failing).await;
        }
        assert_eq!(memo.len(), 9);
        tokio::time::advance(ROUND).await;
        memo.get(100, ROUND, failing).await;
        assert_eq!(memo.len(), 1, "entries of the previous round are dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn work_abandoned_by_every_asker_is_resumed_then_restarted_next_round() {
        let memo: RoundMemo<u32, u32> = RoundMemo::default();
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            7
        };
        // The only asker gives up (its domain's deadline).
        let gave_up = tokio::time::timeout(Duration::from_secs(1), memo.get(1, ROUND, slow)).await;
        assert!(gave_up.is_err());
        // Another domain in the same round joins the work in flight.
        assert_eq!(*memo.get(1, ROUND, slow).await, 7);
        assert_eq!(memo.started(), 1);
        // Work left pending for longer than a round is not joined.
        let _ = tokio::time::timeout(Duration::from_secs(1), memo.get(2, ROUND, slow)).await;
        tokio::time::advance(ROUND).await;
        assert_eq!(*memo.get(2, ROUND, slow).await, 7);
        assert_eq!(memo.started(), 3);
    }
}
