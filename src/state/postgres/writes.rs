//! Writes to the shared store, one transaction per batch. Two replicas of one shard (an HA
//! pair) observe the same domains and queue the same changes, up to a check interval apart:
//! each event is applied under an advisory lock on its domain, and the pair records it once:
//! - `opened`: not when an incident of that (domain, check, code) is open, nor when the
//!   other replica recorded the same opening less than [`REPLICA_WINDOW`] away (it may have
//!   opened and resolved it already: this replica lags);
//! - `resolved`: only when the incident is open (it closes it);
//! - `changed`, `baseline_learned`: not when the newest event of that kind of the (domain,
//!   check) says the same (from, to), nor when the other replica recorded the same less
//!   than [`REPLICA_WINDOW`] away.
//!
//! An instance never suppresses its own events by the window: one instance alone records
//! exactly what it would record in SQLite.
//!
//! A learned baseline never replaces a stored one (the first learner of the fleet wins: a
//! shard that could not read the store at start must not overwrite what another learned);
//! an accepted one always does. Check states and the check cache are upserts, the same
//! from either replica; notes are written once by the replica that took the request.

use crate::state::notes::NewNote;
use crate::state::store::Write;
use crate::state::{EventKind, NewEvent, Retention, unix_seconds};
use postgres::{Client, Transaction};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// How far apart two replicas of a shard may record the same event: they check the same
/// domains on their own schedules, at most an interval (plus jitter) apart.
pub(crate) const REPLICA_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Applies `writes` in one transaction; returns the ids of the events inserted.
pub(crate) fn apply(
    client: &mut Client,
    writes: &[Write],
    replica: &str,
) -> Result<Vec<i64>, postgres::Error> {
    let mut tx = client.transaction()?;
    // Locks in one order (sorted domains), so two replicas' batches never deadlock.
    let domains: BTreeSet<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Event(event) => Some(event.domain.as_str()),
            _ => None,
        })
        .collect();
    for domain in domains {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('maildrift-domain:' || $1))",
            &[&domain],
        )?;
    }
    let mut ids = Vec::new();
    for write in writes {
        match write {
            Write::Event(event) => ids.extend(insert_event(&mut tx, event, replica)?),
            Write::CheckState {
                domain,
                check,
                state_json,
                at,
            } => {
                tx.execute(
                    "INSERT INTO check_states (domain, check_name, state_json, updated_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (domain, check_name) DO UPDATE
                     SET state_json = excluded.state_json, updated_at = excluded.updated_at",
                    &[domain, &check.as_str(), state_json, &unix_seconds(*at)],
                )?;
            }
            Write::Baseline {
                domain,
                check,
                values,
                at,
                accepted,
            } => {
                let json = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
                tx.execute(
                    "INSERT INTO baselines (domain, check_name, values_json, updated_at, accepted)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (domain, check_name) DO UPDATE
                     SET values_json = excluded.values_json, updated_at = excluded.updated_at,
                         accepted = excluded.accepted
                     WHERE excluded.accepted",
                    &[domain, &check.as_str(), &json, &unix_seconds(*at), accepted],
                )?;
            }
            Write::CheckCache {
                check,
                key,
                value_json,
                at,
            } => {
                tx.execute(
                    "INSERT INTO check_cache (check_name, key, value_json, stored_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (check_name, key) DO UPDATE
                     SET value_json = excluded.value_json, stored_at = excluded.stored_at",
                    &[&check.as_str(), key, value_json, &unix_seconds(*at)],
                )?;
            }
            Write::Note(note) => insert_note(&mut tx, note)?,
        }
    }
    tx.commit()?;
    Ok(ids)
}

fn insert_note(tx: &mut Transaction<'_>, note: &NewNote) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO incident_notes (incident_id, at, channel, ticket, who, text,
                                     first_response_at, registrar, dns_provider)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &note.incident_id,
            &unix_seconds(note.at),
            &note.channel.as_str(),
            &note.ticket,
            &note.who,
            &note.text,
            &note.first_response_at.map(unix_seconds),
            &note.registrar,
            &note.dns_provider,
        ],
    )?;
    Ok(())
}

/// Inserts `event` unless the other replica already recorded it (see the module comment);
/// returns its id when inserted.
fn insert_event(
    tx: &mut Transaction<'_>,
    event: &NewEvent,
    replica: &str,
) -> Result<Option<i64>, postgres::Error> {
    let at = unix_seconds(event.at);
    let code = event.code.as_deref().unwrap_or("");
    let check = event.check.as_str();
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    let (from, to) = (json(&event.from), json(&event.to));
    let mut resolution = None;
    let mut incident = None;
    let window = REPLICA_WINDOW.as_secs_f64();
    // The same event from the other replica, less than the window away.
    let seen_by_other = |tx: &mut Transaction<'_>| -> Result<bool, postgres::Error> {
        Ok(tx
            .query_opt(
                "SELECT 1 FROM events
                 WHERE domain = $1 AND check_name = $2 AND kind = $3 AND replica <> $4
                   AND code IS NOT DISTINCT FROM $5
                   AND from_json IS NOT DISTINCT FROM $6 AND to_json IS NOT DISTINCT FROM $7
                   AND at BETWEEN $8 AND $9
                 LIMIT 1",
                &[
                    &event.domain,
                    &check,
                    &event.kind.as_str(),
                    &replica,
                    &event.code,
                    &from,
                    &to,
                    &(at - window),
                    &(at + window),
                ],
            )?
            .is_some())
    };
    match event.kind {
        EventKind::Opened => {
            let open = tx.query_opt(
                "SELECT 1 FROM incidents WHERE domain = $1 AND check_name = $2 AND code = $3",
                &[&event.domain, &check, &code],
            )?;
            if open.is_some() || seen_by_other(tx)? {
                return Ok(None);
            }
        }
        EventKind::Resolved => {
            let Some(row) = tx.query_opt(
                "DELETE FROM incidents WHERE domain = $1 AND check_name = $2 AND code = $3
                 RETURNING opened_at, event_id",
                &[&event.domain, &check, &code],
            )?
            else {
                return Ok(None);
            };
            let opened: f64 = row.get(0);
            resolution = Some((at - opened).max(0.0));
            incident = Some(row.get::<_, i64>(1));
        }
        EventKind::Changed | EventKind::BaselineLearned => {
            let same = tx.query_opt(
                "SELECT from_json IS NOT DISTINCT FROM $4 AND to_json IS NOT DISTINCT FROM $5
                 FROM events WHERE domain = $1 AND check_name = $2 AND kind = $3
                 ORDER BY id DESC LIMIT 1",
                &[&event.domain, &check, &event.kind.as_str(), &from, &to],
            )?;
            if same.is_some_and(|row| row.get::<_, bool>(0)) || seen_by_other(tx)? {
                return Ok(None);
            }
        }
        EventKind::BaselineAccepted => {}
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO events (at, domain, check_name, kind, code, severity, message, from_json,
                                 to_json, server, resolution_seconds, incident_id, replica)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING id",
            &[
                &at,
                &event.domain,
                &check,
                &event.kind.as_str(),
                &event.code,
                &event.severity.map(|s| s.as_str()),
                &event.message,
                &from,
                &to,
                &event.server,
                &resolution,
                &incident,
                &replica,
            ],
        )?
        .get(0);
    if event.kind == EventKind::Opened {
        tx.execute("UPDATE events SET incident_id = id WHERE id = $1", &[&id])?;
        tx.execute(
            "INSERT INTO incidents (domain, check_name, code, severity, message, opened_at, event_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (domain, check_name, code) DO NOTHING",
            &[
                &event.domain,
                &check,
                &code,
                &event.severity.map(|s| s.as_str()),
                &event.message,
                &at,
                &id,
            ],
        )?;
    }
    Ok(Some(id))
}

/// Deletes events older than `max_age` and beyond the newest `max_events`, and the notes
/// of incidents gone with them.
pub(crate) fn enforce_retention(
    client: &mut Client,
    retention: Retention,
    now: SystemTime,
) -> Result<usize, postgres::Error> {
    let mut deleted = 0;
    if let Some(max_age) = retention.max_age {
        let cutoff = unix_seconds(now) - max_age.as_secs_f64();
        deleted += client.execute("DELETE FROM events WHERE at < $1", &[&cutoff])?;
    }
    if let Some(max_events) = retention.max_events {
        let offset = i64::try_from(max_events).unwrap_or(i64::MAX);
        deleted += client.execute(
            "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1)",
            &[&offset],
        )?;
    }
    if deleted > 0 {
        client.execute(
            "DELETE FROM incident_notes WHERE incident_id NOT IN (SELECT id FROM events)
             AND incident_id NOT IN (SELECT event_id FROM incidents)",
            &[],
        )?;
    }
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}
