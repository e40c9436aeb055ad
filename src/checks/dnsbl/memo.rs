//! Each (address, zone) pair is asked once per round for all domains: a provider's MX host
//! shared by thousands of domains costs one question per blocklist. Concurrent askers wait
//! for the one question; an answer serves later askers only while it is younger than their
//! round's bound (half their interval, at most 150 s, as the shared DNS memo), so it is
//! never served to the next round. Failures are shared too: a silent zone is asked once per
//! round, not once per domain. Freshness runs on tokio's clock.

use super::lookup::Listing;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Longest reuse of an answer, whatever the interval.
pub(super) const MAX_AGE: Duration = Duration::from_secs(150);

/// An answer and when it came.
type Answered = (Listing, Instant);

/// The pairs asked in the current rounds.
#[derive(Debug, Default)]
pub(super) struct DnsblMemo {
    entries: Mutex<Entries>,
}

/// The pairs, and when answers too old for anyone were last dropped.
#[derive(Debug, Default)]
struct Entries {
    /// (address, zone) → the answer, or the question in flight.
    pairs: HashMap<(IpAddr, String), Arc<OnceCell<Answered>>>,
    /// Old answers are dropped at most once per [`MAX_AGE`] (a walk per question would
    /// make a large round quadratic).
    swept: Option<Instant>,
}

impl DnsblMemo {
    /// How long an answer may serve a domain checked every `interval`.
    pub(super) fn max_age(interval: Duration) -> Duration {
        (interval / 2).min(MAX_AGE)
    }

    /// The answer for (`address`, `zone`): one younger than `max_age`, the one being asked,
    /// or a new question (`ask`).
    pub(super) async fn listing<F, Fut>(
        &self,
        address: IpAddr,
        zone: &str,
        max_age: Duration,
        ask: F,
    ) -> Listing
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Listing>,
    {
        let key = (address, zone.to_owned());
        let cell = {
            let mut guard = self.entries.lock().expect("DNSBL memo poisoned");
            let now = Instant::now();
            if guard
                .swept
                .is_none_or(|at| now.duration_since(at) >= MAX_AGE)
            {
                // Drop answers too old for anyone, so the map holds about a round's pairs.
                guard.swept = Some(now);
                guard.pairs.retain(|_, cell| {
                    cell.get()
                        .is_none_or(|(_, at)| now.duration_since(*at) < MAX_AGE)
                });
            }
            let entries = &mut guard.pairs;
            let stale = entries
                .get(&key)
                .and_then(|cell| cell.get())
                .is_some_and(|(_, at)| now.duration_since(*at) >= max_age);
            if stale {
                entries.remove(&key);
            }
            entries.entry(key).or_default().clone()
        };
        let (listing, _) = cell
            .get_or_init(|| async { (ask().await, Instant::now()) })
            .await;
        listing.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn one_question_per_round_never_served_to_the_next() {
        let memo = DnsblMemo::default();
        let asked = AtomicUsize::new(0);
        let ip: IpAddr = "192.0.2.25".parse().unwrap();
        let max_age = DnsblMemo::max_age(Duration::from_secs(60));
        assert_eq!(max_age, Duration::from_secs(30));
        let question = || async {
            asked.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Listing::NotListed
        };
        // 100 domains at once, then more within the round: one question.
        let all = futures::future::join_all(
            (0..100).map(|_| memo.listing(ip, "bl.example", max_age, question)),
        )
        .await;
        assert!(all.iter().all(|l| *l == Listing::NotListed));
        tokio::time::advance(Duration::from_secs(20)).await;
        memo.listing(ip, "bl.example", max_age, question).await;
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // Another zone, another question.
        memo.listing(ip, "other.example", max_age, question).await;
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // The next round asks again.
        tokio::time::advance(Duration::from_secs(15)).await;
        memo.listing(ip, "bl.example", max_age, question).await;
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        // A domain with a shorter round does not take an answer older than its bound.
        tokio::time::advance(Duration::from_secs(5)).await;
        memo.listing(ip, "bl.example", Duration::from_secs(2), question)
            .await;
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        // Answers older than the longest bound are forgotten.
        tokio::time::advance(MAX_AGE).await;
        memo.listing(ip, "third.example", max_age, question).await;
        assert_eq!(memo.entries.lock().unwrap().pairs.len(), 1);
    }
}
