//! Sharing lookups between domains: concurrent identical questions are asked once, and
//! answers are reused for at most `max_age` (bounded by their TTL), so a provider's SPF
//! include or MX host addresses are asked once per round, never served stale across rounds.

use super::{Answer, DnsLookup, LookupResult, RecordType, normalize_name};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Default bound on remembered answers (and lookups in flight).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Map size below which expired entries are not swept.
const MIN_SWEEP_SIZE: usize = 1024;

/// A lookup in flight, awaited by every caller asking the same question.
type InFlight = Shared<BoxFuture<'static, LookupResult>>;

/// The question: normalised name and type.
type Key = (String, RecordType);

/// A coalescing, short-lived memo in front of another lookup.
pub struct SharedLookups {
    /// Where questions go.
    inner: Arc<dyn DnsLookup>,
    /// Longest reuse of an answer.
    max_age: Duration,
    /// Bound on the map size.
    max_entries: usize,
    /// Questions in flight and answers being reused.
    state: Mutex<State>,
    /// Tells apart successive lookups of the same question.
    generation: AtomicU64,
}

/// The map and its sweeping schedule.
struct State {
    /// One entry per question.
    entries: HashMap<Key, Entry>,
    /// Sweep expired entries when the map reaches this size.
    sweep_at: usize,
}

/// A question's state.
enum Entry {
    /// Being asked; `generation` identifies this lookup.
    Pending {
        /// Identifies the lookup that will complete this entry.
        generation: u64,
        /// The lookup, shared by every caller.
        future: InFlight,
    },
    /// Answered; reused until `expires`.
    Ready {
        /// The answer.
        answer: Answer,
        /// End of reuse.
        expires: Instant,
    },
}

impl SharedLookups {
    /// Wraps `inner`; answers live at most `max_age`.
    pub fn new(inner: Arc<dyn DnsLookup>, max_age: Duration) -> SharedLookups {
        SharedLookups::with_max_entries(inner, max_age, DEFAULT_MAX_ENTRIES)
    }

    /// Like [`SharedLookups::new`], remembering at most `max_entries` questions; when full,
    /// answers are still coalesced but not kept.
    pub fn with_max_entries(
        inner: Arc<dyn DnsLookup>,
        max_age: Duration,
        max_entries: usize,
    ) -> SharedLookups {
        SharedLookups {
            inner,
            max_age,
            max_entries: max_entries.max(1),
            state: Mutex::new(State {
                entries: HashMap::new(),
                sweep_at: MIN_SWEEP_SIZE.min(max_entries.max(1)),
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// Questions currently remembered or in flight.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is remembered or in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every remembered answer (lookups in flight complete normally).
    pub fn clear(&self) {
        self.lock()
            .entries
            .retain(|_, entry| matches!(entry, Entry::Pending { .. }));
    }

    /// The state, locked.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("shared lookups poisoned")
    }

    /// A reused answer, the lookup in flight, or a new lookup.
    async fn shared_lookup(&self, name: &str, rtype: RecordType) -> LookupResult {
        let key = (normalize_name(name), rtype);
        let (generation, future) = {
            let mut state = self.lock();
            let now = Instant::now();
            match state.entries.get(&key) {
                Some(Entry::Ready { answer, expires }) if *expires > now => {
                    return Ok(answer.clone());
                }
                Some(Entry::Pending { generation, future }) => (*generation, future.clone()),
                _ => {
                    let generation = self.generation.fetch_add(1, Ordering::Relaxed);
                    let inner = self.inner.clone();
                    let (owned_name, owned_type) = key.clone();
                    let future = async move { inner.lookup(&owned_name, owned_type).await }
                        .boxed()
                        .shared();
                    let entry = Entry::Pending {
                        generation,
                        future: future.clone(),
                    };
                    state.insert(key.clone(), entry, self.max_entries, now);
                    (generation, future)
                }
            }
        };
        let result = future.await;
        self.complete(key, generation, &result);
        result
    }

    /// Turns the pending entry into a reusable answer, or removes it (errors and TTL 0).
    /// Every waiter calls this; only the first one finds the entry still pending.
    fn complete(&self, key: Key, generation: u64, result: &LookupResult) {
        let mut state = self.lock();
        let still_pending = matches!(
            state.entries.get(&key),
            Some(Entry::Pending { generation: g, .. }) if *g == generation
        );
        if !still_pending {
            return;
        }
        let reuse = match result {
            Ok(answer) => self.max_age.min(Duration::from_secs(u64::from(answer.ttl))),
            Err(_) => Duration::ZERO,
        };
        match result {
            Ok(answer) if !reuse.is_zero() => {
                let entry = Entry::Ready {
                    answer: answer.clone(),
                    expires: Instant::now() + reuse,
                };
                state.entries.insert(key, entry);
            }
            _ => {
                state.entries.remove(&key);
            }
        }
    }
}

impl State {
    /// Inserts a pending entry, sweeping expired answers when the map has grown. When the
    /// map is full of live entries the question is still asked, just not shared.
    fn insert(&mut self, key: Key, entry: Entry, max_entries: usize, now: Instant) {
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, entry| match entry {
                Entry::Pending { .. } => true,
                Entry::Ready { expires, .. } => *expires > now,
            });
            self.sweep_at =
                (self.entries.len() * 2).clamp(MIN_SWEEP_SIZE.min(max_entries), max_entries);
        }
        if self.entries.len() < max_entries || self.entries.contains_key(&key) {
            self.entries.insert(key, entry);
        }
    }
}

impl DnsLookup for SharedLookups {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.shared_lookup(name, rtype))
    }
}
