//! Delivery to one receiver: a bounded queue and a worker task that retries with exponential
//! backoff and jitter. A receiver that is down fills its own queue only: the alerting task
//! never waits for it (a full queue drops the new message, counted as `dropped`), so checks
//! and other receivers carry on.

use super::alertmanager::PostableAlert;
use super::ledger::AlertStore;
use super::lifecycle::FiringAlert;
use super::transport::DeliveryError;
use async_trait::async_trait;
use prometheus::IntCounterVec;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Whether a notice announces or clears an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeStatus {
    /// The alert started firing.
    Firing,
    /// The alert was resolved.
    Resolved,
}

impl NoticeStatus {
    /// `firing` / `resolved`, as in Alertmanager's webhook payload.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Firing => "firing",
            NoticeStatus::Resolved => "resolved",
        }
    }
}

/// One alert announced to a webhook (sent once, not re-sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Firing or resolved.
    pub status: NoticeStatus,
    /// The alert.
    pub alert: FiringAlert,
    /// When it was resolved (resolved notices only).
    pub ends_at: Option<SystemTime>,
    /// The incident id (see [`super::ledger::AlertRecord`]).
    pub incident: String,
}

/// What a receiver is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A batch for Alertmanager.
    Alerts(Vec<PostableAlert>),
    /// One notice for a webhook.
    Notice(Notice),
}

/// A receiver: sends one payload, once.
#[async_trait]
pub trait Deliver: Send + Sync {
    /// One attempt.
    async fn deliver(&self, payload: &Payload) -> Result<(), DeliveryError>;
}

/// Backoff between attempts: `initial` doubling up to `max_delay`, each delay drawn
/// uniformly from its upper half (jitter), at most `attempts` tries per payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure (before jitter).
    pub initial: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// Tries per payload, the first included.
    pub attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            attempts: 6,
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let full = self.initial.saturating_mul(factor).min(self.max_delay);
        let low = full / 2;
        let jitter = rand::rng().random_range(0..=full.saturating_sub(low).as_millis() as u64);
        low + Duration::from_millis(jitter)
    }
}

/// Default queue length per receiver.
pub const QUEUE_CAPACITY: usize = 256;

/// The sending side of a receiver's queue.
#[derive(Clone)]
pub struct ReceiverHandle {
    name: String,
    queue: mpsc::Sender<Payload>,
    counter: IntCounterVec,
}

impl ReceiverHandle {
    /// The receiver's name (`receiver` label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues `payload` without waiting; a full queue drops it (logged, counted).
    pub fn enqueue(&self, payload: Payload) {
        if let Err(error) = self.queue.try_send(payload) {
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "receiver stopped",
            };
            self.counter
                .with_label_values(&[&self.name, "dropped"])
                .inc();
            tracing::warn!(receiver = %self.name, reason, "notification dropped");
        }
    }
}

/// Starts the worker of one receiver. It stops when every handle is dropped (after its
/// queue drains) or when `shutdown` fires.
pub fn spawn(
    name: String,
    target: Arc<dyn Deliver>,
    policy: RetryPolicy,
    capacity: usize,
    counter: IntCounterVec,
    store: Arc<dyn AlertStore>,
    shutdown: CancellationToken,
) -> ReceiverHandle {
    let (queue, mut rx) = mpsc::channel::<Payload>(capacity.max(1));
    for outcome in ["success", "failure", "dropped"] {
        counter.with_label_values(&[&name, outcome]);
    }
    let handle = ReceiverHandle {
        name: name.clone(),
        queue,
        counter: counter.clone(),
    };
    tokio::spawn(async move {
        loop {
            let payload = tokio::select! {
                _ = shutdown.cancelled() => return,
                payload = rx.recv() => match payload {
                    Some(payload) => payload,
                    None => return,
                },
            };
            if let Payload::Notice(notice) = &payload {
                let firing = notice.status == NoticeStatus::Firing;
                match store.claim(&name, &notice.incident, firing).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(receiver = %name, incident = %notice.incident, "announced by another replica");
                        counter.with_label_values(&[&name, "other_replica"]).inc();
                        continue;
                    }
                    // At least once: a store that cannot answer does not silence a receiver.
                    Err(error) => {
                        tracing::warn!(receiver = %name, %error, "cannot claim the announcement; sending it")
                    }
                }
            }
            let delivered = deliver_with_retries(
                &name,
                target.as_ref(),
                &payload,
                policy,
                &counter,
                &shutdown,
            )
            .await;
            if let (true, Payload::Notice(notice)) = (delivered, &payload)
                && notice.status == NoticeStatus::Firing
                && let Err(error) = store.record_announced(&name, &notice.incident).await
            {
                tracing::warn!(receiver = %name, %error, "cannot record the announcement");
            }
        }
    });
    handle
}

async fn deliver_with_retries(
    name: &str,
    target: &dyn Deliver,
    payload: &Payload,
    policy: RetryPolicy,
    counter: &IntCounterVec,
    shutdown: &CancellationToken,
) -> bool {
    for attempt in 1..=policy.attempts.max(1) {
        match target.deliver(payload).await {
            Ok(()) => {
                counter.with_label_values(&[name, "success"]).inc();
                tracing::debug!(receiver = %name, attempt, "notification delivered");
                return true;
            }
            Err(error) => {
                counter.with_label_values(&[name, "failure"]).inc();
                let last =
                    attempt >= policy.attempts || matches!(error, DeliveryError::Permanent(_));
                if last {
                    tracing::warn!(receiver = %name, attempt, %error, "notification failed; giving up");
                    return false;
                }
                let delay = policy.delay(attempt);
                tracing::info!(receiver = %name, attempt, %error, retry_in = ?delay, "notification failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            attempts: 10,
        };
        for _ in 0..50 {
            let d1 = policy.delay(1);
            assert!(
                d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1),
                "{d1:?}"
            );
            let d3 = policy.delay(3);
            assert!(
                d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4),
                "{d3:?}"
            );
            let d9 = policy.delay(9);
            assert!(
                d9 >= Duration::from_secs(4) && d9 <= Duration::from_secs(8),
                "{d9:?}"
            );
            assert!(policy.delay(40) <= Duration::from_secs(8));
        }
        let spread: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| policy.delay(3)).collect();
        assert!(spread.len() > 5, "no jitter: {spread:?}");
    }
}
