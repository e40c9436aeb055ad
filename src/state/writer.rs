//! The writer thread: the only writer of the database in the daemon. Fed by a bounded queue
//! that never blocks the sender (a full queue or a failing disk drops the write, counts it in
//! `maildrift_state_write_failures_total` and logs), it commits in batches and logs the ids
//! of the events each COMMIT made durable ("state batch committed", debug level).

use super::postgres::{PgTarget, PgWriterConn};
use super::store::{self, Write};
use super::{Retention, StateError, Store};
use prometheus::{IntCounter, Registry};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// Tuning of the writer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriterOptions {
    /// Queue capacity (writes waiting for the thread).
    pub queue: usize,
    /// Event retention, enforced at start and then every `retention_every`.
    pub retention: Retention,
    /// How often retention runs.
    pub retention_every: Duration,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            queue: 32_768,
            retention: Retention::default(),
            retention_every: Duration::from_secs(3600),
        }
    }
}

pub(super) enum Message {
    Write(Write),
    Retention(Retention),
    /// Answered after everything queued before it was committed: true when all of it was.
    Flush(oneshot::Sender<bool>),
    Stop,
}

/// A cheap handle to queue writes; never blocks.
#[derive(Clone)]
pub(crate) struct StateWriter {
    sender: Option<SyncSender<Message>>,
    failures: IntCounter,
    /// Whether a persistent store was asked for (then a missing one counts as failures).
    configured: bool,
    full_logged: Arc<AtomicBool>,
}

impl StateWriter {
    /// Queues one write. Dropped (and counted) when the queue is full or the store is down.
    pub(crate) fn send(&self, write: Write) {
        self.send_message(Message::Write(write));
    }

    /// Changes the retention (config reload).
    pub(crate) fn set_retention(&self, retention: Retention) {
        self.send_message(Message::Retention(retention));
    }

    /// Whether a state directory was given (persistence wanted, working or not).
    pub(crate) fn is_configured(&self) -> bool {
        self.configured
    }

    fn send_message(&self, message: Message) {
        let Some(sender) = &self.sender else {
            if self.configured && matches!(message, Message::Write(_)) {
                self.failures.inc();
            }
            return;
        };
        match sender.try_send(message) {
            Ok(()) => {
                self.full_logged.store(false, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                self.failures.inc();
                if !self.full_logged.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "state write queue full: the disk is too slow; dropping writes (monitoring goes on)"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => self.failures.inc(),
        }
    }
}

/// The daemon's state: the store (for reads) and its writer.
pub(crate) struct StateService {
    /// The store, when one is open.
    pub store: Option<Arc<Store>>,
    /// Where writes go.
    pub writer: StateWriter,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn failure_counter(registry: &Registry) -> IntCounter {
    let counter = IntCounter::new(
        "maildrift_state_write_failures_total",
        "Writes to the state store that were lost (queue full, store unavailable, disk error).",
    )
    .expect("valid metric definition");
    if let Err(e) = registry.register(Box::new(counter.clone())) {
        tracing::debug!(error = %e, "state failure counter already registered");
    }
    counter
}

/// How long a read waits for the writes queued before it (a slow disk under a burst of
/// writes must not stall the API for longer).
const READ_YOUR_WRITES: Duration = Duration::from_secs(2);

impl StateService {
    /// No persistence. `configured`: a store was asked for but could not be opened, so every
    /// write counts as a failure.
    pub(crate) fn disabled(configured: bool, registry: &Registry) -> StateService {
        StateService {
            store: None,
            writer: StateWriter {
                sender: None,
                failures: failure_counter(registry),
                configured,
                full_logged: Arc::new(AtomicBool::new(false)),
            },
            thread: Mutex::new(None),
        }
    }

    /// The daemon's state in `dir` (`None`: no persistence at all). A corrupt or newer
    /// database is an error (the daemon must not start); an unusable directory is logged
    /// and the daemon runs without persistence, counting every lost write.
    pub(crate) fn open(
        dir: Option<&std::path::Path>,
        retention: Retention,
        registry: &Registry,
    ) -> Result<StateService, StateError> {
        let Some(dir) = dir else {
            return Ok(StateService::disabled(false, registry));
        };
        let options = WriterOptions {
            retention,
            ..WriterOptions::default()
        };
        let opened = Store::open(dir)
            .and_then(|store| StateService::start(Arc::new(store), options, registry));
        match opened {
            Ok(service) => {
                if let Some(store) = &service.store {
                    tracing::info!(path = %store.describe(), "state store opened");
                }
                Ok(service)
            }
            Err(error) if error.is_fatal() => Err(error),
            Err(error) => {
                tracing::error!(%error, "state store unavailable: monitoring without persistence (baselines are learned anew, events are not recorded)");
                let service = StateService::disabled(true, registry);
                service.writer.failures.inc();
                Ok(service)
            }
        }
    }

    /// The daemon's state in the shared PostgreSQL store at `target`. A newer schema is an
    /// error (the daemon must not start); an unreachable database is logged with its
    /// address (never the password) and retried by the writer, while monitoring goes on:
    /// writes wait in the queue meanwhile.
    pub(crate) fn open_postgres(
        target: PgTarget,
        retention: Retention,
        registry: &Registry,
    ) -> Result<StateService, StateError> {
        let options = WriterOptions {
            retention,
            ..WriterOptions::default()
        };
        let store = match Store::open_postgres(target.clone()) {
            Ok(store) => {
                tracing::info!(database = %target, "state store opened (shared by the fleet)");
                store
            }
            Err(error) if error.is_fatal() => return Err(error),
            Err(error) => {
                tracing::error!(database = %target, %error, "state database unreachable at start-up: monitoring starts without the stored baselines; writes are queued and the connection is retried");
                Store::postgres_unconnected(target.clone())
            }
        };
        StateService::start_postgres(Arc::new(store), target, options, registry)
    }

    /// Starts the writer thread of the shared store (it connects on its own).
    pub(crate) fn start_postgres(
        store: Arc<Store>,
        target: PgTarget,
        options: WriterOptions,
        registry: &Registry,
    ) -> Result<StateService, StateError> {
        let conn = PgWriterConn::new(target.clone());
        StateService::spawn(store, target.shown(), options, registry, move |rx, o, f| {
            super::pg_writer::write_loop(conn, rx, o, f);
        })
    }

    /// Starts the writer thread on its own connection to `store`.
    pub(crate) fn start(
        store: Arc<Store>,
        options: WriterOptions,
        registry: &Registry,
    ) -> Result<StateService, StateError> {
        let conn = store.connect()?;
        StateService::start_on(store, conn, options, registry)
    }

    /// Starts the writer thread on `conn` (a connection to `store`).
    pub(crate) fn start_on(
        store: Arc<Store>,
        conn: rusqlite::Connection,
        options: WriterOptions,
        registry: &Registry,
    ) -> Result<StateService, StateError> {
        let path = std::path::PathBuf::from(store.describe());
        let described = store.describe();
        StateService::spawn(store, &described, options, registry, move |rx, o, f| {
            write_loop(conn, rx, o, f, &path);
        })
    }

    /// Starts the writer thread running `write_loop` on the queue, for either backend;
    /// `described` names the store in an error.
    fn spawn(
        store: Arc<Store>,
        described: &str,
        options: WriterOptions,
        registry: &Registry,
        write_loop: impl FnOnce(Receiver<Message>, WriterOptions, IntCounter) + Send + 'static,
    ) -> Result<StateService, StateError> {
        let failures = failure_counter(registry);
        let (sender, receiver) = sync_channel(options.queue.max(1));
        let thread_failures = failures.clone();
        let thread = std::thread::Builder::new()
            .name("maildrift-state".into())
            .spawn(move || write_loop(receiver, options, thread_failures))
            .map_err(|e| StateError::Unavailable {
                path: described.into(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(StateService {
            store: Some(store),
            writer: StateWriter {
                sender: Some(sender),
                failures,
                configured: true,
                full_logged: Arc::new(AtomicBool::new(false)),
            },
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits until every write queued so far is committed; true when all were.
    pub(crate) async fn flush(&self) -> bool {
        self.flush_within(Duration::from_secs(10)).await
    }

    /// [`StateService::flush`], waiting at most `limit`.
    async fn flush_within(&self, limit: Duration) -> bool {
        let Some(sender) = &self.writer.sender else {
            return false;
        };
        let (ack, done) = oneshot::channel();
        if sender.try_send(Message::Flush(ack)).is_err() {
            return false;
        }
        tokio::time::timeout(limit, done)
            .await
            .is_ok_and(|r| r.unwrap_or(false))
    }

    /// Runs a read on a blocking thread; `None` without a store. Reads see the writes
    /// queued before them (what `/metrics` already shows is in the timeline too): the
    /// queue is flushed first, waiting at most [`READ_YOUR_WRITES`].
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, StateError> + Send + 'static,
    ) -> Option<Result<T, StateError>> {
        let store = self.store.clone()?;
        self.flush_within(READ_YOUR_WRITES).await;
        match tokio::task::spawn_blocking(move || read(&store)).await {
            Ok(result) => Some(result),
            Err(e) => Some(Err(StateError::Unavailable {
                path: Default::default(),
                detail: format!("read task failed: {e}"),
            })),
        }
    }

    /// Commits what is queued and stops the writer (bounded by 10 s).
    pub(crate) async fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (Some(thread), Some(sender)) = (thread, self.writer.sender.clone()) else {
            return;
        };
        let stopped = tokio::task::spawn_blocking(move || {
            let _ = sender.send(Message::Stop);
            let _ = thread.join();
        });
        if tokio::time::timeout(Duration::from_secs(10), stopped)
            .await
            .is_err()
        {
            tracing::warn!("state writer did not stop within 10 s");
        }
    }
}

fn write_loop(
    mut conn: rusqlite::Connection,
    receiver: Receiver<Message>,
    options: WriterOptions,
    failures: IntCounter,
    path: &std::path::Path,
) {
    let mut retention = options.retention;
    let mut retention_due = Instant::now();
    let mut failing = false;
    // A write failed since the last flush was answered.
    let mut lost_since_flush = false;
    loop {
        let first = match receiver.recv_timeout(options.retention_every) {
            Ok(message) => Some(message),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut stop = false;
        let mut next = first;
        while let Some(message) = next.take() {
            match message {
                Message::Write(write) => batch.push(write),
                Message::Retention(r) => {
                    retention = r;
                    retention_due = Instant::now();
                }
                Message::Flush(ack) => flushes.push(ack),
                Message::Stop => stop = true,
            }
            if batch.len() < 1024 && !stop {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            match store::apply(&mut conn, &batch) {
                Ok(ids) => {
                    if failing {
                        tracing::info!(path = %path.display(), "state store writable again");
                        failing = false;
                    }
                    // The id list is built only when it is logged (a first round writes
                    // a million events).
                    if !ids.is_empty() && tracing::enabled!(tracing::Level::DEBUG) {
                        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                        tracing::debug!(event_ids = %ids.join(","), writes = batch.len(), "state batch committed");
                    }
                }
                Err(error) => {
                    lost_since_flush = true;
                    failures.inc_by(batch.len() as u64);
                    if !failing {
                        tracing::error!(path = %path.display(), %error, lost = batch.len(), "state store write failed; monitoring goes on without persistence until it recovers");
                        failing = true;
                    }
                }
            }
        }
        if Instant::now() >= retention_due {
            retention_due = Instant::now() + options.retention_every;
            match store::enforce_retention(&mut conn, retention, SystemTime::now()) {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "old events deleted (retention)"),
                Err(error) => tracing::warn!(%error, "event retention failed"),
            }
        }
        if !flushes.is_empty() {
            for ack in flushes {
                let _ = ack.send(!lost_since_flush);
            }
            lost_since_flush = false;
        }
        if stop {
            return;
        }
    }
}
