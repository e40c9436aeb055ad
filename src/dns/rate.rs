//! Query-rate limits (`--dns.max-qps`, `--dns.max-qps-per-server`): nobody's resolver or
//! nameserver gets more than its share, however many domains are due at once.
//!
//! A generic cell-rate algorithm: each query reserves the next free slot on a timeline
//! spaced `1 / rate` apart and waits for it. A short burst is allowed after a quiet spell
//! (a tenth of a second's worth of slots), so an idle daemon asks its first questions at
//! once; over any window of seconds the rate holds. Uses tokio's clock, so tests run it
//! paused.

use super::{DnsLookup, LookupResult, RecordType};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The limits of `--dns.max-qps` and `--dns.max-qps-per-server` (`None`: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DnsLimits {
    /// Queries per second of the whole daemon.
    pub max_qps: Option<u32>,
    /// Queries per second to any one server asked directly.
    pub max_qps_per_server: Option<u32>,
}

/// At most `rate` acquisitions per second, on average over any window past a second.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two slots.
    interval: Duration,
    /// How far behind now a reservation may start (the burst allowance).
    tolerance: Duration,
    /// The next free slot.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter of `rate` per second (at least 1).
    pub fn per_second(rate: u32) -> RateLimiter {
        let rate = rate.max(1);
        let interval = Duration::from_secs(1) / rate;
        RateLimiter {
            interval,
            tolerance: interval * (rate / 10).max(1),
            next: Mutex::new(None),
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }

    /// Waits for a slot. A cancelled wait leaves its slot unused (the rate only drops).
    pub async fn acquire(&self) {
        let slot = {
            let now = Instant::now();
            let mut next = self.next.lock().expect("rate limiter poisoned");
            let earliest = now.checked_sub(self.tolerance).unwrap_or(now);
            let slot = next.map_or(earliest, |n| n.max(earliest));
            *next = Some(slot + self.interval);
            slot
        };
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }
}

/// A [`DnsLookup`] whose questions first take a slot of a shared [`RateLimiter`] (the
/// resolver library's questions, which the direct client does not send).
pub struct RateLimited {
    /// Where questions go.
    inner: Arc<dyn DnsLookup>,
    /// Shared with the direct client: one budget for the whole daemon.
    rate: Arc<RateLimiter>,
}

impl RateLimited {
    /// `inner` behind `rate`.
    pub fn new(inner: Arc<dyn DnsLookup>, rate: Arc<RateLimiter>) -> RateLimited {
        RateLimited { inner, rate }
    }
}

impl DnsLookup for RateLimited {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        Box::pin(async move {
            self.rate.acquire().await;
            self.inner.lookup(name, rtype).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Many concurrent askers for `window`; how many got through.
    async fn drive(limiter: Arc<RateLimiter>, askers: usize, window: Duration) -> u64 {
        let done = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + window;
        let tasks: Vec<_> = (0..askers)
            .map(|_| {
                let (limiter, done) = (limiter.clone(), done.clone());
                tokio::spawn(async move {
                    loop {
                        limiter.acquire().await;
                        if Instant::now() > end {
                            return;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        done.load(Ordering::Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_holds_within_five_percent_under_load() {
        for rate in [5, 100, 2_000, 50_000] {
            let limiter = Arc::new(RateLimiter::per_second(rate));
            let window = Duration::from_secs(10);
            let got = drive(limiter, 64, window).await;
            let expected = f64::from(rate) * window.as_secs_f64();
            let error = (got as f64 - expected).abs() / expected;
            assert!(
                error <= 0.05,
                "{rate}/s: {got} in {window:?}, expected {expected} within 5%"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_limiter_allows_a_short_burst_then_spaces_queries() {
        const BURST: u32 = 10;
        let limiter = RateLimiter::per_second(100);
        let start = Instant::now();
        for _ in 0..BURST {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first queries go at once"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..BURST + 100 {
            limiter.acquire().await;
        }
        let waited = start.elapsed();
        assert!(
            (Duration::from_millis(990)..=Duration::from_millis(1010)).contains(&waited),
            "110 queries after a quiet spell at 100/s: {waited:?}"
        );
    }
}
