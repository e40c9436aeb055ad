//! Versioned schema migrations: `PRAGMA user_version` is the number of migrations applied;
//! each runs once, in its own transaction. Never edit a released migration: append one.

use super::StateError;
use rusqlite::Connection;
use std::path::Path;

/// `PRAGMA application_id` of a maildrift database ("mdrf"), so a foreign SQLite file in
/// the state directory is refused instead of written into.
pub(crate) const APPLICATION_ID: i64 = 0x6d64_7266;

/// The migrations, in order. Index + 1 is the schema version each one produces.
const MIGRATIONS: &[&str] = &[
    // 1: first release.
    r#"
    CREATE TABLE baselines (
        domain      TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        values_json TEXT NOT NULL,          -- JSON array of normalised records
        updated_at  REAL NOT NULL,          -- unix seconds
        accepted    INTEGER NOT NULL,       -- 0 learned, 1 accepted by someone
        PRIMARY KEY (domain, check_name)
    );
    CREATE TABLE check_states (
        domain      TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        state_json  TEXT NOT NULL,          -- the monitor's last known state of the check
        updated_at  REAL NOT NULL,
        PRIMARY KEY (domain, check_name)
    );
    CREATE TABLE events (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        at                 REAL NOT NULL,
        domain             TEXT NOT NULL,
        check_name         TEXT NOT NULL,
        kind               TEXT NOT NULL,   -- opened, resolved, changed, baseline_learned, baseline_accepted
        code               TEXT,
        severity           TEXT,
        message            TEXT NOT NULL,
        from_json          TEXT,
        to_json            TEXT,
        server             TEXT,
        resolution_seconds REAL             -- resolved: how long the finding was open
    );
    CREATE INDEX events_domain ON events (domain, id);
    CREATE INDEX events_at ON events (at);
    CREATE TABLE incidents (
        domain      TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        code        TEXT NOT NULL,
        severity    TEXT,
        message     TEXT NOT NULL,
        opened_at   REAL NOT NULL,
        event_id    INTEGER NOT NULL,
        PRIMARY KEY (domain, check_name, code)
    );
    "#,
    // 2: alerting state (issue 6): open alert incidents and which webhook announced which,
    // so a restart re-sends the incidents to Alertmanager and re-announces nothing.
    r#"
    CREATE TABLE alert_incidents (
        id               TEXT PRIMARY KEY,  -- label fingerprint and start, `{fp}-{millis}`
        labels_json      TEXT NOT NULL,     -- JSON object of labels, as last sent
        annotations_json TEXT NOT NULL,     -- JSON object of annotations
        generator_url    TEXT NOT NULL,
        starts_at_ns     INTEGER NOT NULL   -- unix nanoseconds
    );
    CREATE TABLE alert_announcements (
        receiver     TEXT NOT NULL,         -- webhook name
        incident_id  TEXT NOT NULL,         -- alert_incidents.id
        announced_at REAL NOT NULL,         -- unix seconds
        PRIMARY KEY (receiver, incident_id)
    );
    CREATE INDEX alert_announcements_incident ON alert_announcements (incident_id);
    "#,
    // 3: what checks keep across restarts (issue 12): a key-value store per check, e.g. the
    // registration check's RDAP answer per registrable domain, asked once a day.
    r#"
    CREATE TABLE check_cache (
        check_name TEXT NOT NULL,
        key        TEXT NOT NULL,
        value_json TEXT NOT NULL,           -- the check's own JSON
        stored_at  REAL NOT NULL,           -- unix seconds
        PRIMARY KEY (check_name, key)
    );
    "#,
    // 4: incident records (issue 14). An incident is known by the id of its `opened` event;
    // `resolved` events name it, and notes (what the admin did, with which ticket) hang
    // off it, also after it resolved.
    r#"
    ALTER TABLE events ADD COLUMN incident_id INTEGER; -- opened: its own id; resolved: the opening event's id
    UPDATE events SET incident_id = id WHERE kind = 'opened';
    UPDATE events SET incident_id = (
        SELECT max(o.id) FROM events o
        WHERE o.kind = 'opened' AND o.domain = events.domain
          AND o.check_name = events.check_name AND o.code IS events.code AND o.id < events.id
    ) WHERE kind = 'resolved';
    CREATE INDEX events_incident ON events (incident_id);
    CREATE TABLE incident_notes (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id       INTEGER NOT NULL, -- events.id of the incident's `opened` event
        at                REAL NOT NULL,    -- when the note was written, unix seconds
        channel           TEXT NOT NULL,    -- phone, ticket, chat, email, other
        ticket            TEXT,             -- the provider's or registrar's ticket number
        who               TEXT,             -- who worked it
        text              TEXT NOT NULL,    -- the steps taken
        first_response_at REAL,             -- when the provider first answered, unix seconds
        registrar         INTEGER NOT NULL DEFAULT 0, -- the registrar was involved
        dns_provider      INTEGER NOT NULL DEFAULT 0  -- the DNS provider was involved
    );
    CREATE INDEX incident_notes_incident ON incident_notes (incident_id, id);
    -- The overview of a large fleet reads only the incidents that want attention.
    CREATE INDEX events_attention ON events (at)
        WHERE kind IN ('opened', 'resolved') AND severity IN ('critical', 'warning');
    CREATE INDEX incidents_attention ON incidents (opened_at, domain, check_name)
        WHERE severity IN ('critical', 'warning');
    "#,
];

/// The schema version this build produces.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date; refuses a newer schema or a foreign database.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<i64, StateError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let application: i64 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    if version > latest() {
        return Err(StateError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            known: latest(),
        });
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |row| row.get(0),
    )?;
    if application != APPLICATION_ID && (application != 0 || tables > 0) {
        return Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "not a maildrift database (application_id {application:#x}, {tables} tables)"
            ),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", next)?;
        tx.commit()?;
        tracing::info!(path = %path.display(), version = next, "state schema migrated");
    }
    Ok(latest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_or_foreign_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn, &path).unwrap(), latest());
        // Idempotent.
        assert_eq!(migrate(&mut conn, &path).unwrap(), latest());
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(matches!(err, StateError::NewerSchema { found, .. } if found == latest() + 1));

        let foreign = dir.path().join("foreign.db");
        let mut conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        let err = migrate(&mut conn, &foreign).unwrap_err();
        assert!(
            err.to_string().contains("not a maildrift database"),
            "{err}"
        );
    }

    /// A database as the previous release (schema 1) left it.
    fn version_1(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO baselines VALUES ('a.example', 'mx', '[\"10 mx.a.example\"]', 1.0, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO incidents VALUES ('a.example', 'mx', 'drift', 'critical', 'm', 2.0, 7)",
            [],
        )
        .unwrap();
        conn
    }

    #[test]
    fn schema_2_links_resolved_events_to_their_incident_and_gains_notes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::DB_FILE);
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        let insert = "INSERT INTO events (at, domain, check_name, kind, code, message) VALUES (?1, ?2, 'mx', ?3, ?4, 'm')";
        for (at, domain, kind, code) in [
            (1.0, "a.example", "opened", Some("drift")),
            (2.0, "b.example", "opened", Some("drift")),
            (3.0, "a.example", "resolved", Some("drift")),
            (4.0, "a.example", "changed", None),
            (5.0, "a.example", "opened", Some("drift")),
            (6.0, "a.example", "resolved", Some("drift")),
        ] {
            conn.execute(insert, rusqlite::params![at, domain, kind, code])
                .unwrap();
        }
        drop(conn);
        let store = super::super::Store::open(dir.path()).unwrap();
        store
            .with_conn(|conn| {
                let links: Vec<(i64, Option<i64>)> = conn
                    .prepare("SELECT id, incident_id FROM events ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                assert_eq!(
                    links,
                    [
                        (1, Some(1)),
                        (2, Some(2)),
                        (3, Some(1)),
                        (4, None),
                        (5, Some(5)),
                        (6, Some(5))
                    ]
                );
                conn.execute(
                    "INSERT INTO incident_notes (incident_id, at, channel, text) VALUES (5, 7.0, 'phone', 'called')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn schema_1_gains_the_alerting_tables_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::DB_FILE);
        drop(version_1(&path));
        // Through the real open path (integrity check, WAL, migrations).
        let store = super::super::Store::open(dir.path()).unwrap();
        store
            .with_conn(|conn| {
                let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                assert_eq!(version, latest());
                let baseline: String = conn.query_row(
                    "SELECT values_json FROM baselines WHERE domain = 'a.example'",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(baseline, "[\"10 mx.a.example\"]");
                let incidents: i64 =
                    conn.query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))?;
                assert_eq!(incidents, 1);
                conn.execute(
                    "INSERT INTO alert_incidents VALUES ('f-1', '{}', '{}', '', 1)",
                    [],
                )?;
                conn.execute(
                    "INSERT INTO alert_announcements VALUES ('hook', 'f-1', 1.0)",
                    [],
                )?;
                let announced: i64 =
                    conn.query_row("SELECT count(*) FROM alert_announcements", [], |r| r.get(0))?;
                assert_eq!(announced, 1);
                Ok(())
            })
            .unwrap();
    }
}
