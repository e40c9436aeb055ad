//! Sharing lookups between domains: concurrent identical questions are asked once, and
//! answers are reused for at most `max_age` (bounded by their TTL), so a provider's SPF
//! include or MX host addresses are asked once per round, never served stale across rounds.

use super::{Answer, DnsLookup, LookupResult, RecordType, normalize_name};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use hashlink::LinkedHashMap;
use hashlink::linked_hash_map::RawEntryMut;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Default bound on remembered answers (and lookups in flight). Sharing needs the answers
/// of the domains in flight (at most `defaults.concurrency` of them, ~15 questions each)
/// and the hot ones many domains ask (a provider's includes), which the least-recently-used
/// order keeps; a domain's own answers are dead weight once its run ends. 16,384 holds
/// both with room to spare and costs ~10 MB, where a bound that grows with the fleet kept
/// every answer of the round (~70 MB per 100,000 answers).
pub const DEFAULT_MAX_ENTRIES: usize = 16_384;

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

/// The questions, least recently used first. Every operation is O(1) amortised: a full map
/// drops its least recently used entry, and expired answers are dropped from the front as
/// they are met, so no insert ever walks the whole map (a walk per insert once the map was
/// full of live answers made a 100,000-domain round quadratic).
struct State {
    /// One entry per question, in order of last use.
    entries: LinkedHashMap<Key, Entry>,
    /// Entries removed to make room or because they expired (work done besides the
    /// question itself: at most one eviction per insert plus each expiry once).
    evicted: u64,
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

impl Entry {
    /// True for an answer whose reuse has ended.
    fn expired(&self, now: Instant) -> bool {
        matches!(self, Entry::Ready { expires, .. } if *expires <= now)
    }
}

impl SharedLookups {
    /// Wraps `inner`; answers live at most `max_age`.
    pub fn new(inner: Arc<dyn DnsLookup>, max_age: Duration) -> SharedLookups {
        SharedLookups::with_max_entries(inner, max_age, DEFAULT_MAX_ENTRIES)
    }

    /// Like [`SharedLookups::new`], remembering at most `max_entries` questions; when full,
    /// the least recently used question is forgotten to make room.
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
                entries: LinkedHashMap::new(),
                evicted: 0,
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

    /// Entries dropped so far to make room or because they expired.
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
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
            let in_flight = match state.entries.raw_entry_mut().from_key(&key) {
                RawEntryMut::Occupied(mut occupied) => {
                    occupied.to_back();
                    match occupied.get() {
                        Entry::Ready { answer, expires } if *expires > now => {
                            return Ok(answer.clone());
                        }
                        Entry::Pending { generation, future } => {
                            Some((*generation, future.clone()))
                        }
                        Entry::Ready { .. } => None,
                    }
                }
                RawEntryMut::Vacant(_) => None,
            };
            match in_flight {
                Some(in_flight) => in_flight,
                None => self.start(&mut state, key.clone(), now),
            }
        };
        let result = future.await;
        self.complete(key, generation, &result);
        result
    }

    /// Starts the lookup of `key` and remembers it as pending.
    fn start(&self, state: &mut State, key: Key, now: Instant) -> (u64, InFlight) {
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
        state.insert(key, entry, self.max_entries, now);
        (generation, future)
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
                state.entries.replace(key, entry);
            }
            _ => {
                state.entries.remove(&key);
            }
        }
    }
}

impl State {
    /// Inserts (or replaces) an entry as the most recently used. Expired answers at the
    /// front go first; then, when the map is full, the least recently used entry. A pending
    /// entry dropped this way only stops being shared: its callers still get the answer.
    fn insert(&mut self, key: Key, entry: Entry, max_entries: usize, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|(_, front)| front.expired(now))
        {
            self.entries.pop_front();
            self.evicted += 1;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= max_entries {
            self.entries.pop_front();
            self.evicted += 1;
        }
        self.entries.insert(key, entry);
    }
}

impl DnsLookup for SharedLookups {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(self.shared_lookup(name, rtype))
    }
}
