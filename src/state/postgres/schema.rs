//! Versioned migrations of the shared store: `maildrift_schema.version` is the number of
//! migrations applied. They run in one transaction under an advisory lock, so replicas that
//! start together migrate once. Never edit a released migration: append one.

use super::PgTarget;
use crate::state::StateError;
use postgres::Client;

/// The advisory lock key of migrations ("mdrf", as SQLite's `application_id`).
const MIGRATION_LOCK: i64 = 0x6d64_7266;

/// The migrations, in order. Index + 1 is the schema version each one produces.
const MIGRATIONS: &[&str] = &[
    // 1: the SQLite schema as of its version 4, with PostgreSQL's types, plus the claims
    // that let one replica of an HA pair announce each webhook notice.
    r#"
    CREATE TABLE baselines (
        domain      TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        values_json TEXT NOT NULL,
        updated_at  DOUBLE PRECISION NOT NULL,
        accepted    BOOLEAN NOT NULL,
        PRIMARY KEY (domain, check_name)
    );
    CREATE TABLE check_states (
        domain      TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        state_json  TEXT NOT NULL,
        updated_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (domain, check_name)
    );
    CREATE TABLE events (
        id                 BIGSERIAL PRIMARY KEY,
        at                 DOUBLE PRECISION NOT NULL,
        domain             TEXT NOT NULL,
        check_name         TEXT NOT NULL,
        kind               TEXT NOT NULL,
        code               TEXT,
        severity           TEXT,
        message            TEXT NOT NULL,
        from_json          TEXT,
        to_json            TEXT,
        server             TEXT,
        resolution_seconds DOUBLE PRECISION,
        incident_id        BIGINT,
        replica            TEXT NOT NULL     -- which instance wrote it (see writes.rs)
    );
    -- Also the lookup of the newest event of a kind (the replicas' duplicates).
    CREATE INDEX events_domain ON events (domain, check_name, kind, id);
    CREATE INDEX events_domain_id ON events (domain, id);
    CREATE INDEX events_at ON events (at);
    CREATE INDEX events_incident ON events (incident_id);
    CREATE INDEX events_attention ON events (at)
        WHERE kind IN ('opened', 'resolved') AND severity IN ('critical', 'warning');
    CREATE TABLE incidents (
        domain      TEXT NOT NULL,
        check_name  TEXT NOT NULL,
        code        TEXT NOT NULL,
        severity    TEXT,
        message     TEXT NOT NULL,
        opened_at   DOUBLE PRECISION NOT NULL,
        event_id    BIGINT NOT NULL,
        PRIMARY KEY (domain, check_name, code)
    );
    CREATE INDEX incidents_attention ON incidents (opened_at, domain, check_name)
        WHERE severity IN ('critical', 'warning');
    CREATE TABLE incident_notes (
        id                BIGSERIAL PRIMARY KEY,
        incident_id       BIGINT NOT NULL,
        at                DOUBLE PRECISION NOT NULL,
        channel           TEXT NOT NULL,
        ticket            TEXT,
        who               TEXT,
        text              TEXT NOT NULL,
        first_response_at DOUBLE PRECISION,
        registrar         BOOLEAN NOT NULL DEFAULT false,
        dns_provider      BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX incident_notes_incident ON incident_notes (incident_id, id);
    CREATE TABLE check_cache (
        check_name TEXT NOT NULL,
        key        TEXT NOT NULL,
        value_json TEXT NOT NULL,
        stored_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (check_name, key)
    );
    CREATE TABLE alert_incidents (
        id               TEXT PRIMARY KEY,   -- `{fingerprint}-{millis}`, per replica
        fingerprint      TEXT NOT NULL,      -- the labels' fingerprint, shared by replicas
        domain           TEXT NOT NULL,
        labels_json      TEXT NOT NULL,
        annotations_json TEXT NOT NULL,
        generator_url    TEXT NOT NULL,
        starts_at_ns     BIGINT NOT NULL
    );
    CREATE INDEX alert_incidents_domain ON alert_incidents (domain);
    CREATE TABLE alert_announcements (
        receiver     TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        incident_id  TEXT NOT NULL,          -- the incident of the replica that announced
        announced_at DOUBLE PRECISION,       -- NULL: claimed, delivery under way
        claimed_at   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (receiver, fingerprint)
    );
    "#,
];

/// The schema version this build produces.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date; refuses a newer one.
pub(super) fn migrate(client: &mut Client, target: &PgTarget) -> Result<i64, StateError> {
    let failed = |e: postgres::Error| target.error(&e);
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS maildrift_schema (version BIGINT NOT NULL)")
        .map_err(failed)?;
    let version: Option<i64> = tx
        .query_one("SELECT max(version) FROM maildrift_schema", &[])
        .map_err(failed)?
        .get(0);
    let version = version.unwrap_or(0);
    if version > latest() {
        return Err(StateError::NewerSchema {
            path: target.shown().into(),
            found: version,
            known: latest(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index as i64 + 1;
        tx.batch_execute(sql).map_err(failed)?;
        tx.execute("DELETE FROM maildrift_schema", &[])
            .map_err(failed)?;
        tx.execute(
            "INSERT INTO maildrift_schema (version) VALUES ($1)",
            &[&next],
        )
        .map_err(failed)?;
        tracing::info!(database = %target, version = next, "state schema migrated");
    }
    tx.commit().map_err(failed)?;
    Ok(latest())
}
