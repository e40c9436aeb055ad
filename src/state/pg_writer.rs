//! The writer thread of the shared PostgreSQL store (see [`write_loop`]); the queue, the
//! flushes and the SQLite writer are in `writer.rs`.

use super::postgres::{PgFailure, PgWriterConn, writes as pg_writes};
use super::store::Write;
use super::writer::{Message, WriterOptions};
use prometheus::IntCounter;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// At most this many writes per transaction.
const BATCH: usize = 1024;
/// The first wait before retrying writes the shared store did not take.
const RETRY_FIRST: Duration = Duration::from_millis(200);
/// The longest wait between retries.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Attempts left for what is still pending when the daemon stops with the database down.
const ATTEMPTS_AT_STOP: u32 = 3;

/// The writer of the shared store. Unlike SQLite's (a failing disk: the batch is lost and
/// counted), a PostgreSQL that is unreachable or restarting is waited for: writes stay
/// pending, in order, and are retried with a backoff (200 ms doubling to 5 s), the queue
/// keeps taking new ones, and only what no longer fits (the queue's capacity again) is
/// dropped and counted. Writes the server refuses are dropped and counted at once.
pub(super) fn write_loop(
    mut conn: PgWriterConn,
    receiver: Receiver<Message>,
    options: WriterOptions,
    failures: IntCounter,
) {
    let mut retention = options.retention;
    let mut retention_due = Instant::now();
    let mut pending: Vec<Write> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<bool>> = Vec::new();
    let mut lost_since_flush = false;
    let mut failing = false;
    let mut backoff = RETRY_FIRST;
    let mut stop = false;
    let mut attempts_at_stop = ATTEMPTS_AT_STOP;
    loop {
        if !stop {
            let wait = if pending.is_empty() {
                options.retention_every
            } else {
                backoff
            };
            let mut next = match receiver.recv_timeout(wait) {
                Ok(message) => Some(message),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    stop = true;
                    None
                }
            };
            let mut taken = 0;
            while let Some(message) = next.take() {
                taken += 1;
                match message {
                    Message::Write(write) if pending.len() < options.queue.max(1) => {
                        pending.push(write);
                    }
                    Message::Write(_) => {
                        failures.inc();
                        lost_since_flush = true;
                    }
                    Message::Retention(r) => {
                        retention = r;
                        retention_due = Instant::now();
                    }
                    Message::Flush(ack) => flushes.push(ack),
                    Message::Stop => stop = true,
                }
                if taken < BATCH && !stop {
                    next = receiver.try_recv().ok();
                }
            }
        }
        while !pending.is_empty() {
            let size = pending.len().min(BATCH);
            let replica = conn.target().replica().to_owned();
            match conn.run(|client| pg_writes::apply(client, &pending[..size], &replica)) {
                Ok(ids) => {
                    pending.drain(..size);
                    backoff = RETRY_FIRST;
                    if failing {
                        tracing::info!(database = %conn.target(), "state database reachable again; queued writes committed");
                        failing = false;
                    }
                    if !ids.is_empty() {
                        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                        tracing::debug!(event_ids = %ids.join(","), writes = size, "state batch committed");
                    }
                }
                Err(PgFailure::Refused(error)) => {
                    pending.drain(..size);
                    failures.inc_by(size as u64);
                    lost_since_flush = true;
                    tracing::error!(%error, lost = size, "state database refused writes; they are lost");
                }
                Err(PgFailure::Connection(error)) => {
                    if !failing {
                        tracing::error!(%error, pending = pending.len(), "state database unreachable; writes wait in the queue and are retried (monitoring goes on)");
                        failing = true;
                    }
                    backoff = (backoff * 2).min(RETRY_MAX);
                    if stop {
                        attempts_at_stop = attempts_at_stop.saturating_sub(1);
                        if attempts_at_stop == 0 {
                            failures.inc_by(pending.len() as u64);
                            tracing::error!(
                                lost = pending.len(),
                                "stopping with the state database unreachable; pending writes are lost"
                            );
                            pending.clear();
                        } else {
                            std::thread::sleep(backoff);
                        }
                    }
                    break;
                }
            }
        }
        if pending.is_empty() {
            for ack in flushes.drain(..) {
                let _ = ack.send(!lost_since_flush);
            }
            lost_since_flush = false;
        } else {
            // Readers that gave up waiting are forgotten.
            flushes.retain(|ack| !ack.is_closed());
        }
        if !failing && Instant::now() >= retention_due {
            retention_due = Instant::now() + options.retention_every;
            match conn
                .run(|client| pg_writes::enforce_retention(client, retention, SystemTime::now()))
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "old events deleted (retention)"),
                Err(PgFailure::Connection(error) | PgFailure::Refused(error)) => {
                    tracing::warn!(%error, "event retention failed");
                }
            }
        }
        if stop && pending.is_empty() {
            return;
        }
    }
}
