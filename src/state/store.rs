//! Opening the database (directory, WAL, integrity, migrations) and the write primitives
//! shared by the writer thread and `maildrift baseline accept` when the daemon is down.

use super::notes::{self, NewNote};
use super::{EventKind, NewEvent, Retention, StateError, migrations, unix_seconds};
use crate::finding::CheckKind;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The database file inside the state directory.
pub(crate) const DB_FILE: &str = "maildrift.db";

/// The opened SQLite store: its path and a connection for reads (HTTP, start-up loading).
pub(crate) struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// One change to persist.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Append to the timeline (and open/close the incident it names).
    Event(NewEvent),
    /// The monitor's last known state of one check (opaque JSON owned by the monitor).
    CheckState {
        /// Domain name.
        domain: String,
        /// Which check.
        check: CheckKind,
        /// The serialized state.
        state_json: String,
        /// When it was reached.
        at: SystemTime,
    },
    /// A learned or accepted baseline.
    Baseline {
        /// Domain name.
        domain: String,
        /// Which check.
        check: CheckKind,
        /// Normalised records.
        values: Vec<String>,
        /// When it was learned or accepted.
        at: SystemTime,
        /// Accepted by someone (rather than learned).
        accepted: bool,
    },
    /// A value a check keeps across restarts (replaces the one under the same key).
    CheckCache {
        /// Which check.
        check: CheckKind,
        /// The check's key (e.g. a registrable domain).
        key: String,
        /// The check's JSON.
        value_json: String,
        /// When the check stored it.
        at: SystemTime,
    },
    /// A note on an incident (what the admin did about it).
    Note(NewNote),
}

/// One value a check keeps across restarts, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedRow {
    /// Which check.
    pub check: CheckKind,
    /// The check's key.
    pub key: String,
    /// The check's JSON.
    pub value_json: String,
    /// When it was stored.
    pub stored_at: SystemTime,
}

/// What the store remembers of one domain.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredDomain {
    /// Baselines per check.
    pub baselines: BTreeMap<CheckKind, Vec<String>>,
    /// Last known state per check, as the monitor serialized it.
    pub checks: BTreeMap<CheckKind, String>,
}

fn classify(path: &Path, err: rusqlite::Error) -> StateError {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StateError::Corrupt {
            path: path.to_path_buf(),
            detail: err.to_string(),
        },
        _ => StateError::Unavailable {
            path: path.to_path_buf(),
            detail: err.to_string(),
        },
    }
}

impl SqliteStore {
    /// Opens (creating when absent) `DIR/maildrift.db`: WAL, full sync, integrity check of
    /// an existing file, migrations. A damaged file is an error and is never modified.
    pub(crate) fn open(dir: &Path) -> Result<SqliteStore, StateError> {
        std::fs::create_dir_all(dir).map_err(|e| StateError::Unavailable {
            path: dir.to_path_buf(),
            detail: format!("cannot create the state directory: {e}"),
        })?;
        let path = dir.join(DB_FILE);
        let existed = path.exists();
        let mut conn = connect(&path)?;
        if existed {
            let verdict: Vec<String> = conn
                .prepare("PRAGMA quick_check")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(|e| classify(&path, e))?;
            if verdict != ["ok"] {
                return Err(StateError::Corrupt {
                    path,
                    detail: format!("quick_check: {}", verdict.join("; ")),
                });
            }
        }
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::Unavailable {
                path,
                detail: format!("cannot switch to WAL (journal mode stays {mode:?})"),
            });
        }
        migrations::migrate(&mut conn, &path).map_err(|e| match e {
            StateError::Sqlite(e) => classify(&path, e),
            other => other,
        })?;
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection to the same database (the writer thread's).
    pub(crate) fn connect(&self) -> Result<Connection, StateError> {
        connect(&self.path)
    }

    /// Runs `f` on the store's own connection (short reads; direct writes from the CLI).
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut conn)?)
    }

    /// Persists `writes` in one transaction; returns the ids of the events written.
    pub(crate) fn write(&self, writes: &[Write]) -> Result<Vec<i64>, StateError> {
        self.with_conn(|conn| apply(conn, writes))
    }

    /// Everything stored about `domain`.
    pub(crate) fn load_domain(&self, domain: &str) -> Result<StoredDomain, StateError> {
        self.with_conn(|conn| {
            let mut stored = StoredDomain::default();
            let mut baselines = conn.prepare_cached(
                "SELECT check_name, values_json FROM baselines WHERE domain = ?1",
            )?;
            let rows = baselines.query_map([domain], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (check, json) = row?;
                match (check.parse::<CheckKind>().ok(), serde_json::from_str(&json)) {
                    (Some(check), Ok(values)) => {
                        stored.baselines.insert(check, values);
                    }
                    _ => tracing::warn!(domain, check, "unreadable stored baseline ignored"),
                }
            }
            let mut states = conn.prepare_cached(
                "SELECT check_name, state_json FROM check_states WHERE domain = ?1",
            )?;
            let rows = states.query_map([domain], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (check, json) = row?;
                if let Ok(check) = check.parse::<CheckKind>() {
                    stored.checks.insert(check, json);
                }
            }
            Ok(stored)
        })
    }

    /// Every value the checks keep across restarts (values of checks this build does not
    /// know are left out).
    pub(crate) fn load_check_cache(&self) -> Result<Vec<CachedRow>, StateError> {
        self.with_conn(|conn| {
            let mut statement =
                conn.prepare("SELECT check_name, key, value_json, stored_at FROM check_cache")?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, f64>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (check, key, value_json, stored_at) = row?;
                if let Ok(check) = check.parse::<CheckKind>() {
                    let stored_at =
                        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(stored_at.max(0.0));
                    out.push(CachedRow {
                        check,
                        key,
                        value_json,
                        stored_at,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Deletes events beyond `retention`; returns how many.
    pub(crate) fn enforce_retention(
        &self,
        retention: Retention,
        now: SystemTime,
    ) -> Result<usize, StateError> {
        self.with_conn(|conn| enforce_retention(conn, retention, now))
    }
}

fn connect(path: &Path) -> Result<Connection, StateError> {
    let conn = Connection::open(path).map_err(|e| classify(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| classify(path, e))?;
    // FULL: a COMMIT that returned is on disk, also across a power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// Applies `writes` in one transaction; returns the ids of the events inserted.
pub(crate) fn apply(conn: &mut Connection, writes: &[Write]) -> rusqlite::Result<Vec<i64>> {
    let tx = conn.transaction()?;
    let mut ids = Vec::new();
    for write in writes {
        match write {
            Write::Event(event) => ids.push(insert_event(&tx, event)?),
            Write::CheckState {
                domain,
                check,
                state_json,
                at,
            } => {
                tx.prepare_cached(
                    "INSERT INTO check_states (domain, check_name, state_json, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (domain, check_name) DO UPDATE
                     SET state_json = excluded.state_json, updated_at = excluded.updated_at",
                )?
                .execute(params![
                    domain,
                    check.as_str(),
                    state_json,
                    unix_seconds(*at)
                ])?;
            }
            Write::Baseline {
                domain,
                check,
                values,
                at,
                accepted,
            } => {
                let json = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
                tx.prepare_cached(
                    "INSERT INTO baselines (domain, check_name, values_json, updated_at, accepted)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (domain, check_name) DO UPDATE
                     SET values_json = excluded.values_json, updated_at = excluded.updated_at,
                         accepted = excluded.accepted",
                )?
                .execute(params![
                    domain,
                    check.as_str(),
                    json,
                    unix_seconds(*at),
                    accepted
                ])?;
            }
            Write::CheckCache {
                check,
                key,
                value_json,
                at,
            } => {
                tx.prepare_cached(
                    "INSERT INTO check_cache (check_name, key, value_json, stored_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (check_name, key) DO UPDATE
                     SET value_json = excluded.value_json, stored_at = excluded.stored_at",
                )?
                .execute(params![
                    check.as_str(),
                    key,
                    value_json,
                    unix_seconds(*at)
                ])?;
            }
            Write::Note(note) => notes::insert(&tx, note)?,
        }
    }
    tx.commit()?;
    Ok(ids)
}

fn insert_event(tx: &rusqlite::Transaction<'_>, event: &NewEvent) -> rusqlite::Result<i64> {
    let at = unix_seconds(event.at);
    let code = event.code.as_deref().unwrap_or("");
    let mut resolution = None;
    let mut incident = None;
    if event.kind == EventKind::Resolved {
        let opened = tx
            .prepare_cached(
                "SELECT opened_at, event_id FROM incidents WHERE domain = ?1 AND check_name = ?2 AND code = ?3",
            )?
            .query_row(params![event.domain, event.check.as_str(), code], |r| {
                Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        resolution = opened.map(|(opened, _)| (at - opened).max(0.0));
        incident = opened.map(|(_, id)| id);
        tx.prepare_cached(
            "DELETE FROM incidents WHERE domain = ?1 AND check_name = ?2 AND code = ?3",
        )?
        .execute(params![event.domain, event.check.as_str(), code])?;
    }
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    tx.prepare_cached(
        "INSERT INTO events (at, domain, check_name, kind, code, severity, message, from_json,
                             to_json, server, resolution_seconds, incident_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        at,
        event.domain,
        event.check.as_str(),
        event.kind.as_str(),
        event.code,
        event.severity.map(|s| s.as_str()),
        event.message,
        json(&event.from),
        json(&event.to),
        event.server,
        resolution,
        incident,
    ])?;
    let id = tx.last_insert_rowid();
    if event.kind == EventKind::Opened {
        tx.prepare_cached("UPDATE events SET incident_id = id WHERE id = ?1")?
            .execute([id])?;
        tx.prepare_cached(
            "INSERT INTO incidents (domain, check_name, code, severity, message, opened_at, event_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (domain, check_name, code) DO NOTHING",
        )?
        .execute(params![
            event.domain,
            event.check.as_str(),
            code,
            event.severity.map(|s| s.as_str()),
            event.message,
            at,
            id
        ])?;
    }
    Ok(id)
}

/// Deletes events older than `max_age` and beyond the newest `max_events`.
pub(crate) fn enforce_retention(
    conn: &mut Connection,
    retention: Retention,
    now: SystemTime,
) -> rusqlite::Result<usize> {
    let mut deleted = 0;
    if let Some(max_age) = retention.max_age {
        let cutoff = unix_seconds(now) - max_age.as_secs_f64();
        deleted += conn.execute("DELETE FROM events WHERE at < ?1", [cutoff])?;
    }
    if let Some(max_events) = retention.max_events {
        let offset = i64::try_from(max_events).unwrap_or(i64::MAX);
        deleted += conn.execute(
            "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            [offset],
        )?;
    }
    if deleted > 0 {
        // Notes go with their incident: once its opening event is gone and it is not open.
        conn.execute(
            "DELETE FROM incident_notes WHERE incident_id NOT IN (SELECT id FROM events)
             AND incident_id NOT IN (SELECT event_id FROM incidents)",
            [],
        )?;
    }
    Ok(deleted)
}
