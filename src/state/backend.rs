//! [`Store`]: the one seam the writer, the monitor, the HTTP reads and the CLI use, over
//! either backend: SQLite in `--state-dir` (the embedded default, one instance) or
//! PostgreSQL at `state.url` (shared by the shards and replicas of a fleet).

use super::notes::{IncidentRecord, StoredNote};
use super::postgres::{PgStore, PgTarget};
use super::queries::{CheckSummary, EventQuery, Incident, OpenSummary, StoredEvent, StoredStates};
use super::store::{CachedRow, SqliteStore, StoredDomain, Write};
use super::{Retention, StateError};
use rusqlite::Connection;
use std::path::Path;
use std::time::SystemTime;

/// The opened state store.
pub struct Store {
    backend: Backend,
}

/// Which database holds the state.
enum Backend {
    /// SQLite, one file per instance.
    Sqlite(SqliteStore),
    /// PostgreSQL, shared by the fleet.
    Postgres(Box<PgStore>),
}

/// Calls the same method on whichever backend.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($store) => $call,
            Backend::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens (creating when absent) `DIR/maildrift.db` (see [`SqliteStore::open`]).
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        Ok(Store {
            backend: Backend::Sqlite(SqliteStore::open(dir)?),
        })
    }

    /// Connects to the shared store and migrates it.
    pub fn open_postgres(target: PgTarget) -> Result<Store, StateError> {
        Ok(Store {
            backend: Backend::Postgres(Box::new(PgStore::open(target)?)),
        })
    }

    /// The shared store while its database is unreachable: calls fail until it answers,
    /// then connect (and migrate) on their own.
    pub fn postgres_unconnected(target: PgTarget) -> Store {
        Store {
            backend: Backend::Postgres(Box::new(PgStore::unconnected(target))),
        }
    }

    /// Where the store is, for logs: the database file, or `postgres://user@host:port/db`.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(store) => store.path().display().to_string(),
            Backend::Postgres(store) => store.target().shown().to_string(),
        }
    }

    /// Whether the store is shared by a fleet (it holds other instances' domains).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The PostgreSQL store, when that is the backend.
    pub(crate) fn postgres(&self) -> Option<&PgStore> {
        match &self.backend {
            Backend::Postgres(store) => Some(store.as_ref()),
            Backend::Sqlite(_) => None,
        }
    }

    /// A new SQLite connection to the same database (the writer's, alerting's).
    pub fn connect(&self) -> Result<Connection, StateError> {
        match &self.backend {
            Backend::Sqlite(store) => store.connect(),
            Backend::Postgres(store) => Err(not_sqlite(store)),
        }
    }

    /// Runs `f` on the SQLite store's own connection (tests).
    #[cfg(test)]
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        match &self.backend {
            Backend::Sqlite(store) => store.with_conn(f),
            Backend::Postgres(store) => Err(not_sqlite(store)),
        }
    }

    /// Persists `writes` in one transaction; returns the ids of the events written.
    pub fn write(&self, writes: &[Write]) -> Result<Vec<i64>, StateError> {
        match &self.backend {
            Backend::Sqlite(store) => store.write(writes),
            Backend::Postgres(store) => {
                let writes = writes.to_vec();
                let replica = store.target().replica().to_owned();
                store.with_client(move |client| {
                    super::postgres::writes::apply(client, &writes, &replica)
                })
            }
        }
    }

    /// Everything stored about `domain`.
    pub fn load_domain(&self, domain: &str) -> Result<StoredDomain, StateError> {
        dispatch!(self, store => store.load_domain(domain))
    }

    /// Every stored check state, by domain and check: the whole fleet's in a shared store.
    pub fn all_check_states(&self) -> Result<StoredStates, StateError> {
        dispatch!(self, store => store.all_check_states())
    }

    /// Every stored check state summed up for the overview (the whole fleet's in a shared
    /// store), read without moving the records.
    pub fn check_summaries(&self) -> Result<Vec<CheckSummary>, StateError> {
        dispatch!(self, store => store.check_summaries())
    }

    /// Every value the checks keep across restarts.
    pub fn load_check_cache(&self) -> Result<Vec<CachedRow>, StateError> {
        dispatch!(self, store => store.load_check_cache())
    }

    /// Deletes events beyond `retention`; returns how many.
    pub fn enforce_retention(
        &self,
        retention: Retention,
        now: SystemTime,
    ) -> Result<usize, StateError> {
        match &self.backend {
            Backend::Sqlite(store) => store.enforce_retention(retention, now),
            Backend::Postgres(store) => store.with_client(move |client| {
                super::postgres::writes::enforce_retention(client, retention, now)
            }),
        }
    }

    /// Events matching `query`, newest first.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StateError> {
        dispatch!(self, store => store.events(query))
    }

    /// When the store first recorded anything about `domain`.
    pub fn first_event_at(&self, domain: &str) -> Result<Option<f64>, StateError> {
        dispatch!(self, store => store.first_event_at(domain))
    }

    /// Open incidents (of `domain`, or all), oldest first.
    pub fn incidents(&self, domain: Option<&str>) -> Result<Vec<Incident>, StateError> {
        dispatch!(self, store => store.incidents(domain))
    }

    /// The open incidents that want attention, summed up: of `domains` only (an instance's
    /// own, in a shared store; SQLite holds only its instance's and ignores it), or all.
    pub fn open_summary(
        &self,
        oldest: usize,
        domains: Option<&[String]>,
    ) -> Result<OpenSummary, StateError> {
        dispatch!(self, store => store.open_summary(oldest, domains))
    }

    /// The incident opened by event `id`, with its notes.
    pub fn incident(&self, id: i64) -> Result<Option<IncidentRecord>, StateError> {
        dispatch!(self, store => store.incident(id))
    }

    /// The incidents of `domain` opened at or after `since`, newest first, with notes.
    pub fn domain_incidents(
        &self,
        domain: &str,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<IncidentRecord>, StateError> {
        dispatch!(self, store => store.domain_incidents(domain, since, limit))
    }

    /// The notes written at or after `since` on incidents of `domain`, oldest first.
    pub fn domain_notes(
        &self,
        domain: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, StoredNote)>, StateError> {
        dispatch!(self, store => store.domain_notes(domain, since))
    }

    /// Warning/critical findings opened (`true`) and resolved (`false`) since `since`: of
    /// `domains` only (as [`Store::open_summary`]), or all.
    pub fn incident_changes(
        &self,
        since: SystemTime,
        limit: usize,
        domains: Option<&[String]>,
    ) -> Result<Vec<(f64, bool)>, StateError> {
        dispatch!(self, store => store.incident_changes(since, limit, domains))
    }
}

fn not_sqlite(store: &PgStore) -> StateError {
    StateError::Unavailable {
        path: store.target().shown().into(),
        detail: "a SQLite connection was asked of the PostgreSQL store".into(),
    }
}
