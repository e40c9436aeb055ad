//! The state store: learned baselines, last known check states, open incidents and the
//! event timeline, persisted so that they survive restarts and crashes: in SQLite (WAL) in
//! `--state-dir` by default, or in a PostgreSQL database shared by a fleet's shards and
//! replicas (`state.url`). Writes go through one writer thread fed by a bounded queue
//! ([`StateWriter`]), so a slow or failing database never holds up a check.

mod backend;
mod migrations;
mod notes;
#[cfg(any(test, feature = "testkit"))]
pub mod pg_server;
mod pg_writer;
pub(crate) mod postgres;
mod queries;
mod store;
mod writer;

pub(crate) use backend::Store;
pub(crate) use notes::{Channel, IncidentRecord, NewNote, StoredNote};
pub(crate) use postgres::PgTarget;
pub(crate) use queries::{
    CheckSummary, EventQuery, Incident, OpenSummary, StoredEvent, StoredStates,
};
pub(crate) use store::{DB_FILE, Write};
pub(crate) use writer::{StateService, StateWriter};

pub(crate) use crate::config::Retention;
use crate::finding::{CheckKind, Severity};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database exists but is damaged: the daemon refuses to start rather than start
    /// empty or overwrite it.
    #[error(
        "state database {path} is corrupt ({detail}); it was left untouched: restore a backup, \
         or move it away to start with an empty state"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The database was written by a newer maildrift.
    #[error(
        "state database {path} has schema version {found}, newer than this maildrift knows \
         ({known}); upgrade maildrift or restore a backup"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this build migrates to.
        known: i64,
    },
    /// The directory or file cannot be created, opened or written (read-only, full,
    /// permissions): monitoring goes on without persistence.
    #[error("state store {path} unavailable: {detail}")]
    Unavailable {
        /// The directory or file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A query failed.
    #[error("state database query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shared PostgreSQL store is unreachable or refused a statement. `target` is
    /// `postgres://user@host:port/database`: never the password.
    #[error("state database {target}: {detail}")]
    Postgres {
        /// Which database.
        target: String,
        /// What the driver or the server said.
        detail: String,
    },
}

impl StateError {
    /// Whether the daemon must refuse to start (the data would be lost or damaged further).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StateError::Corrupt { .. } | StateError::NewerSchema { .. }
        )
    }
}

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A finding appeared.
    Opened,
    /// A finding went away.
    Resolved,
    /// A record set changed (from → to).
    Changed,
    /// A learned baseline was recorded (first conclusive observation).
    BaselineLearned,
    /// Someone accepted the current records as the new baseline.
    BaselineAccepted,
}

impl EventKind {
    /// The stored and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Resolved => "resolved",
            EventKind::Changed => "changed",
            EventKind::BaselineLearned => "baseline_learned",
            EventKind::BaselineAccepted => "baseline_accepted",
        }
    }

    fn parse(text: &str) -> Option<EventKind> {
        [
            EventKind::Opened,
            EventKind::Resolved,
            EventKind::Changed,
            EventKind::BaselineLearned,
            EventKind::BaselineAccepted,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// An event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// When it happened (the check run's end).
    pub at: SystemTime,
    /// Domain name.
    pub domain: String,
    /// Which check.
    pub check: CheckKind,
    /// What happened.
    pub kind: EventKind,
    /// Finding code (`opened`/`resolved`), e.g. `drift`.
    pub code: Option<String>,
    /// Finding severity (`opened`/`resolved`).
    pub severity: Option<Severity>,
    /// Human summary.
    pub message: String,
    /// What it was (records or evidence), if known.
    pub from: Option<serde_json::Value>,
    /// What it is now.
    pub to: Option<serde_json::Value>,
    /// The nameservers or resolvers that were asked.
    pub server: Option<String>,
}

/// Unix seconds of `time` (0 before the epoch).
pub(crate) fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

#[cfg(test)]
mod pg_tests;
#[cfg(test)]
mod tests;
