//! The shared store of a fleet in PostgreSQL (`state.url`): the same tables as SQLite
//! (baselines, check states, events, incidents and notes, alerting's incidents and
//! announcements, the check cache), versioned migrations, a small connection pool, and the
//! writes that two replicas of one shard may both make applied once (`writes.rs`).
//!
//! The client is the blocking `postgres` crate (tokio-postgres underneath): the state seam
//! is synchronous (one writer thread, reads on blocking threads). A call made on a thread
//! that runs async tasks (a reload loading a domain's baselines) is moved to a scoped thread,
//! because the blocking client must not wait inside the runtime.

mod reads;
mod schema;
pub(crate) mod writes;

use super::StateError;
use crate::config::SecretSource;
use postgres::{Client, NoTls};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reads.
const IDLE_CONNECTIONS: usize = 4;

/// Where the shared store is: the parsed URL with the password set, and how it is shown in
/// logs and errors (`postgres://user@host:port/database`, never the password).
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    shown: String,
    /// This instance, in the events it writes (`HOSTNAME` and a random part, new at each
    /// start): two replicas of a shard tell their events apart by it.
    replica: String,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Parses `url` (validated by the config: no password in it) and reads the password
    /// from `password` (a file, trailing newline dropped, or an environment variable).
    pub(crate) fn new(url: &str, password: Option<&SecretSource>) -> Result<PgTarget, StateError> {
        let unusable = |detail: String| StateError::Postgres {
            target: "state.url".into(),
            detail,
        };
        crate::config::check_postgres_url(url).map_err(unusable)?;
        let mut config: postgres::Config = url
            .trim()
            .parse()
            .map_err(|e| unusable(format!("not a PostgreSQL URL: {e}")))?;
        if let Some(source) = password {
            config.password(read_password(source).map_err(unusable)?);
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("maildrift");
        }
        let shown = show(&config);
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let replica = format!("{host}/{:08x}", rand::random::<u32>());
        Ok(PgTarget {
            config,
            shown,
            replica,
        })
    }

    /// This instance's name in the events it writes.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// `postgres://user@host:port/database`, for logs and errors.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// A new connection.
    pub(crate) fn connect(&self) -> Result<Client, StateError> {
        self.config.connect(NoTls).map_err(|e| self.error(&e))
    }

    /// `error` as a [`StateError`] naming the database (never the password).
    pub(crate) fn error(&self, error: &postgres::Error) -> StateError {
        StateError::Postgres {
            target: self.shown.clone(),
            detail: describe(error),
        }
    }
}

/// A driver error in one line: the server's message when it sent one, the cause otherwise.
pub(crate) fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn show(config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let host = match host {
                postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(index).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => format!("{host}:5432"),
            }
        })
        .collect();
    let database = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{}/{database}", hosts.join(","))
}

fn read_password(source: &SecretSource) -> Result<String, String> {
    match source {
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display())),
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(value),
            Ok(_) => Err(format!("the password variable {var} is empty")),
            Err(e) => Err(format!("the password variable {var}: {e}")),
        },
    }
}

/// Runs `f` where the blocking client may wait: at once on a plain thread (the writer, a
/// blocking task), on a scoped thread when called from a thread of the async runtime.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// How long after a failed connection attempt calls fail at once instead of trying again
/// (a start-up that loads 100,000 domains from an unreachable host must not wait 5 s each).
const REFUSE_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The shared store: the target and a pool of idle connections for reads and alerting.
pub(crate) struct PgStore {
    target: PgTarget,
    idle: Mutex<Vec<Client>>,
    /// The last failed connection attempt: until when calls fail at once, and its error.
    down: Mutex<Option<(std::time::Instant, String)>>,
}

impl PgStore {
    /// Connects and migrates the schema (under an advisory lock, so replicas starting
    /// together migrate once). A newer schema is refused.
    pub(crate) fn open(target: PgTarget) -> Result<PgStore, StateError> {
        off_runtime(|| {
            let mut client = target.connect()?;
            schema::migrate(&mut client, &target)?;
            Ok(PgStore {
                target: target.clone(),
                idle: Mutex::new(vec![client]),
                down: Mutex::new(None),
            })
        })
    }

    /// A store whose database is not reachable yet: every call connects (and migrates)
    /// anew until one succeeds.
    pub(crate) fn unconnected(target: PgTarget) -> PgStore {
        PgStore {
            target,
            idle: Mutex::new(Vec::new()),
            down: Mutex::new(None),
        }
    }

    /// Where it is.
    pub(crate) fn target(&self) -> &PgTarget {
        &self.target
    }

    /// Runs `f` on a pooled connection (off the async runtime). A connection that failed
    /// is dropped, not returned to the pool; the next call connects anew.
    pub(crate) fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StateError> {
        off_runtime(|| {
            let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut client = match pooled {
                Some(client) if !client.is_closed() => client,
                _ => self.connect()?,
            };
            let result = f(&mut client).map_err(|e| self.target.error(&e));
            if !client.is_closed() {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < IDLE_CONNECTIONS {
                    idle.push(client);
                }
            }
            result
        })
    }
}

impl PgStore {
    /// A new connection, migrated; fails at once for a while after a failed attempt.
    fn connect(&self) -> Result<Client, StateError> {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((until, detail)) = down.as_ref()
            && std::time::Instant::now() < *until
        {
            return Err(StateError::Postgres {
                target: self.target.shown.clone(),
                detail: detail.clone(),
            });
        }
        let attempt = self.target.connect().and_then(|mut client| {
            schema::migrate(&mut client, &self.target)?;
            Ok(client)
        });
        match attempt {
            Ok(client) => {
                *down = None;
                Ok(client)
            }
            Err(error) => {
                let detail = match &error {
                    StateError::Postgres { detail, .. } => detail.clone(),
                    other => other.to_string(),
                };
                *down = Some((std::time::Instant::now() + REFUSE_AFTER_FAILURE, detail));
                Err(error)
            }
        }
    }
}

impl Drop for PgStore {
    /// Closing a connection waits for the server: never on a thread of the async runtime.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() {
            off_runtime(move || drop(idle));
        }
    }
}

/// The writer thread's own connection, made (and the schema migrated) on first use and
/// again after it broke.
pub(crate) struct PgWriterConn {
    target: PgTarget,
    client: Option<Client>,
}

impl PgWriterConn {
    /// Not connected yet.
    pub(crate) fn new(target: PgTarget) -> PgWriterConn {
        PgWriterConn {
            target,
            client: None,
        }
    }

    /// Where it writes.
    pub(crate) fn target(&self) -> &PgTarget {
        &self.target
    }

    /// Runs `f` on the connection, connecting first when needed. Errors say whether the
    /// connection broke ([`PgFailure::Connection`]: retry) or the server refused the
    /// statement ([`PgFailure::Refused`]).
    pub(crate) fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, PgFailure> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let mut client = self.target.connect().map_err(PgFailure::Connection)?;
            schema::migrate(&mut client, &self.target).map_err(PgFailure::Connection)?;
            self.client = Some(client);
        }
        let client = self.client.as_mut().expect("connected above");
        match f(client) {
            Ok(value) => Ok(value),
            Err(error) => {
                let transient = client.is_closed() || is_transient(&error);
                let error = self.target.error(&error);
                if transient {
                    self.client = None;
                    Err(PgFailure::Connection(error))
                } else {
                    Err(PgFailure::Refused(error))
                }
            }
        }
    }
}

/// Why a write failed.
#[derive(Debug)]
pub(crate) enum PgFailure {
    /// The server is unreachable, restarting, or the transaction lost a race (serialization,
    /// deadlock): the same writes may be retried.
    Connection(StateError),
    /// The server refused the writes (they would fail again).
    Refused(StateError),
}

/// Errors worth retrying: no server message (I/O, closed), or a class the server sends
/// while shutting down or starting (57P*, 08*, 53*), or a lost race (40001, 40P01).
fn is_transient(error: &postgres::Error) -> bool {
    match error.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "40001"
                || code == "40P01"
        }
    }
}
