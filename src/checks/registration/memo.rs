//! One registrable domain is asked at most once per `defaults.rdap.interval`, however many
//! watched domains sit under it and however often they are checked; concurrent askers wait
//! for the one request. Answers (and a 429's `Retry-After`) are kept in the check cache, so
//! a restart does not ask again. Failures are retried after a backoff, never sooner than
//! `Retry-After`. Freshness runs on tokio's clock, so tests advance a paused clock.

use super::client::RdapError;
use super::record::RdapDomain;
use crate::checks::{Cached, CheckCache};
use crate::finding::CheckKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// First retry after a failure; it doubles with each failure, up to the interval.
const FIRST_RETRY: Duration = Duration::from_secs(300);

/// What asking gave, as the check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Asked {
    /// The record and the server that gave it, or why there is none.
    pub result: Result<RdapDomain, String>,
    /// The RDAP base URL asked.
    pub server: String,
    /// When the answer was received (wall time).
    pub at: SystemTime,
}

/// What is kept across restarts, as JSON in the check cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Kept {
    /// The registry's record.
    Record {
        /// The base URL asked.
        server: String,
        /// The record.
        domain: RdapDomain,
    },
    /// The server answered 429: not asked again before `retry_at` (unix seconds).
    RateLimited {
        /// The base URL asked.
        server: String,
        /// The error text.
        reason: String,
        /// Unix seconds.
        retry_at: u64,
    },
}

/// The state of one registrable domain.
#[derive(Debug, Default)]
struct Slot {
    /// Whether the check cache was read (once, on first use).
    loaded: bool,
    /// The last answer or failure.
    last: Option<Asked>,
    /// Not asked again before this.
    next: Option<Instant>,
    /// Failures in a row (the backoff doubles with each).
    failures: u32,
}

/// Every registrable domain asked by this daemon.
#[derive(Debug, Default)]
pub(super) struct RdapMemo {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl RdapMemo {
    /// The last answer for `name` while it is fresh (younger than `interval`, or a failure
    /// whose retry is not due); otherwise `fetch` asks `server`, once for all concurrent
    /// callers.
    pub(super) async fn ask<F, Fut>(
        &self,
        name: &str,
        server: &str,
        interval: Duration,
        cache: Option<&dyn CheckCache>,
        fetch: F,
    ) -> Asked
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<RdapDomain, RdapError>>,
    {
        let slot = {
            let mut slots = self.slots.lock().expect("RDAP memo poisoned");
            slots.entry(name.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if !slot.loaded {
            slot.loaded = true;
            if let Some(kept) = cache.and_then(|c| c.get(CheckKind::Registration, name)) {
                restore(&mut slot, &kept, interval);
            }
        }
        if let (Some(next), Some(last)) = (slot.next, &slot.last)
            && Instant::now() < next
            && last.server == server
        {
            return last.clone();
        }
        let result = fetch().await;
        let (now, at) = (Instant::now(), SystemTime::now());
        let backoff = |failures: u32| {
            let doubled = FIRST_RETRY.saturating_mul(1 << failures.min(16));
            doubled.min(interval)
        };
        let kept = match result {
            Ok(domain) => {
                slot.failures = 0;
                slot.next = Some(now + interval);
                slot.last = Some(Asked {
                    result: Ok(domain.clone()),
                    server: server.to_owned(),
                    at,
                });
                Some(Kept::Record {
                    server: server.to_owned(),
                    domain,
                })
            }
            Err(error) => {
                let mut wait = backoff(slot.failures);
                slot.failures = slot.failures.saturating_add(1);
                let mut kept = None;
                if let RdapError::RateLimited { retry_after, .. } = &error {
                    wait = wait.max(retry_after.unwrap_or(Duration::ZERO));
                    kept = Some(Kept::RateLimited {
                        server: server.to_owned(),
                        reason: error.to_string(),
                        retry_at: unix(at + wait),
                    });
                }
                slot.next = Some(now + wait);
                slot.last = Some(Asked {
                    result: Err(format!(
                        "{error}; asked again in {} s at the earliest",
                        wait.as_secs()
                    )),
                    server: server.to_owned(),
                    at,
                });
                kept
            }
        };
        if let (Some(cache), Some(kept)) = (cache, kept)
            && let Ok(json) = serde_json::to_string(&kept)
        {
            cache.put(
                CheckKind::Registration,
                name,
                Cached {
                    json,
                    stored_at: at,
                },
            );
        }
        slot.last.clone().expect("set above")
    }
}

/// Seeds a slot with what an earlier run of the daemon kept, when it is still fresh.
fn restore(slot: &mut Slot, kept: &Cached, interval: Duration) {
    let Ok(value) = serde_json::from_str::<Kept>(&kept.json) else {
        return;
    };
    let wall = SystemTime::now();
    let age = wall
        .duration_since(kept.stored_at)
        .unwrap_or(Duration::ZERO);
    match value {
        Kept::Record { server, domain } if age < interval => {
            slot.next = Some(Instant::now() + (interval - age));
            slot.last = Some(Asked {
                result: Ok(domain),
                server,
                at: kept.stored_at,
            });
        }
        Kept::RateLimited {
            server,
            reason,
            retry_at,
        } if retry_at > unix(wall) => {
            let wait = Duration::from_secs(retry_at - unix(wall));
            slot.next = Some(Instant::now() + wait);
            slot.failures = 1;
            slot.last = Some(Asked {
                result: Err(format!(
                    "{reason}; asked again in {} s at the earliest",
                    wait.as_secs()
                )),
                server,
                at: kept.stored_at,
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::MemoryCache;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const DAY: Duration = Duration::from_secs(86_400);

    fn record(name: &str) -> RdapDomain {
        RdapDomain {
            name: name.to_owned(),
            expires: Some(2_000_000_000),
            statuses: Vec::new(),
            registrar: Some("R".to_owned()),
            nameservers: Vec::new(),
        }
    }

    /// Asks `name`, counting requests; `answer` is what the server gives.
    async fn ask(
        memo: &RdapMemo,
        cache: &MemoryCache,
        asked: &AtomicUsize,
        answer: Result<RdapDomain, RdapError>,
    ) -> Asked {
        memo.ask(
            "shop.example",
            "https://r.example/",
            DAY,
            Some(cache),
            || async {
                asked.fetch_add(1, Ordering::SeqCst);
                answer
            },
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn asked_once_per_interval_and_kept_across_restarts() {
        let cache = MemoryCache::default();
        let asked = AtomicUsize::new(0);
        let memo = RdapMemo::default();
        let first = ask(&memo, &cache, &asked, Ok(record("shop.example"))).await;
        assert_eq!(first.result, Ok(record("shop.example")));
        tokio::time::advance(DAY - Duration::from_secs(1)).await;
        let again = ask(
            &memo,
            &cache,
            &asked,
            Err(RdapError::Malformed("unused".into())),
        )
        .await;
        assert_eq!(again, first, "served from memory within the interval");
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(cache.len(), 1, "the answer is kept");

        // A new daemon (empty memory) with the same cache does not ask.
        let restarted = RdapMemo::default();
        let kept = ask(
            &restarted,
            &cache,
            &asked,
            Err(RdapError::Malformed("unused".into())),
        )
        .await;
        assert_eq!(kept.result, first.result);
        assert_eq!(asked.load(Ordering::SeqCst), 1);

        // Past the interval it asks again.
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut renewed = record("shop.example");
        renewed.expires = Some(2_100_000_000);
        let fresh = ask(&memo, &cache, &asked, Ok(renewed.clone())).await;
        assert_eq!(fresh.result, Ok(renewed));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_honour_retry_after_and_failures_back_off() {
        let cache = MemoryCache::default();
        let asked = AtomicUsize::new(0);
        let memo = RdapMemo::default();
        let limited = RdapError::RateLimited {
            url: "https://r.example/domain/shop.example".into(),
            retry_after: Some(Duration::from_secs(3600)),
        };
        let first = ask(&memo, &cache, &asked, Err(limited)).await;
        let error = first.result.unwrap_err();
        assert!(
            error.contains("HTTP 429") && error.contains("in 3600 s"),
            "{error}"
        );
        // Not before Retry-After, also after a restart.
        tokio::time::advance(Duration::from_secs(3599)).await;
        ask(&memo, &cache, &asked, Ok(record("x"))).await;
        let restarted = RdapMemo::default();
        let kept = ask(&restarted, &cache, &asked, Ok(record("x"))).await;
        assert!(kept.result.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            ask(&memo, &cache, &asked, Ok(record("x")))
                .await
                .result
                .is_ok()
        );
        assert_eq!(asked.load(Ordering::SeqCst), 2);

        // Other failures back off: 5 min, then 10 min.
        let memo = RdapMemo::default();
        let cache = MemoryCache::default();
        let down = || {
            Err(RdapError::Status {
                url: "u".into(),
                status: 503,
            })
        };
        ask(&memo, &cache, &asked, down()).await;
        tokio::time::advance(Duration::from_secs(299)).await;
        ask(&memo, &cache, &asked, down()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        tokio::time::advance(Duration::from_secs(2)).await;
        ask(&memo, &cache, &asked, down()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        tokio::time::advance(Duration::from_secs(599)).await;
        ask(&memo, &cache, &asked, down()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        assert!(cache.is_empty(), "failures other than 429 are not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_askers_share_one_request() {
        let cache = MemoryCache::default();
        let asked = AtomicUsize::new(0);
        let memo = RdapMemo::default();
        let all = futures::future::join_all((0..50).map(|_| async {
            memo.ask(
                "shop.example",
                "https://r.example/",
                DAY,
                Some(&cache),
                || async {
                    asked.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(record("shop.example"))
                },
            )
            .await
        }))
        .await;
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert!(all.iter().all(|a| a.result.is_ok()));
    }
}
