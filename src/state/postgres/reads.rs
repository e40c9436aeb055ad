//! Reads of the shared store: the same answers as the SQLite store's (`queries.rs`,
//! `notes.rs`, `store.rs`), for the whole fleet.

use super::PgStore;
use crate::finding::CheckKind;
use crate::state::notes::{IncidentRecord, StoredNote};
use crate::state::queries::{
    CheckSummary, EventQuery, Incident, OpenSummary, StoredEvent, StoredStates,
};
use crate::state::store::{CachedRow, StoredDomain};
use crate::state::{StateError, unix_seconds};
use postgres::Row;
use postgres::types::ToSql;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn incident_row(r: &Row) -> Incident {
    Incident {
        domain: r.get(0),
        check: r.get(1),
        code: r.get(2),
        severity: r.get(3),
        id: r.get(6),
        message: r.get(4),
        opened_at: r.get(5),
        event_id: r.get(6),
    }
}

const INCIDENT_COLUMNS: &str = "o.id, o.domain, o.check_name, coalesce(o.code, ''), o.severity, \
    o.message, o.at, o.from_json, o.to_json, o.server, \
    (SELECT r.at FROM events r WHERE r.incident_id = o.id AND r.kind = 'resolved' ORDER BY r.id LIMIT 1), \
    (SELECT r.resolution_seconds FROM events r WHERE r.incident_id = o.id AND r.kind = 'resolved' ORDER BY r.id LIMIT 1), \
    EXISTS (SELECT 1 FROM incidents i WHERE i.event_id = o.id)";

fn record_row(r: &Row) -> IncidentRecord {
    let open: bool = r.get(12);
    IncidentRecord {
        id: r.get(0),
        domain: r.get(1),
        check: r.get(2),
        code: r.get(3),
        severity: r.get(4),
        state: if open { "open" } else { "resolved" },
        message: r.get(5),
        opened_at: r.get(6),
        from: json(r.get(7)),
        to: json(r.get(8)),
        server: r.get(9),
        resolved_at: if open { None } else { r.get(10) },
        resolution_seconds: if open { None } else { r.get(11) },
        notes: Vec::new(),
    }
}

const NOTE_COLUMNS: &str = "n.id, n.incident_id, n.at, n.channel, n.ticket, n.who, n.text, \
    n.first_response_at, n.registrar, n.dns_provider, o.at";

fn note_row(r: &Row) -> StoredNote {
    let first_response_at: Option<f64> = r.get(7);
    let opened_at: f64 = r.get(10);
    StoredNote {
        id: r.get(0),
        incident_id: r.get(1),
        at: r.get(2),
        channel: r.get(3),
        ticket: r.get(4),
        who: r.get(5),
        text: r.get(6),
        first_response_at,
        first_response_seconds: first_response_at.map(|t| t - opened_at),
        registrar: r.get(8),
        dns_provider: r.get(9),
    }
}

fn notes_of(
    client: &mut postgres::Client,
    incident: &mut IncidentRecord,
) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT {NOTE_COLUMNS} FROM incident_notes n JOIN events o ON o.id = n.incident_id
         WHERE n.incident_id = $1 ORDER BY n.id"
    );
    incident.notes = client
        .query(&sql, &[&incident.id])?
        .iter()
        .map(note_row)
        .collect();
    Ok(())
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Everything stored about `domain`.
    pub(crate) fn load_domain(&self, domain: &str) -> Result<StoredDomain, StateError> {
        let (baselines, states) = self.with_client(|client| {
            let baselines = client.query(
                "SELECT check_name, values_json FROM baselines WHERE domain = $1",
                &[&domain],
            )?;
            let states = client.query(
                "SELECT check_name, state_json FROM check_states WHERE domain = $1",
                &[&domain],
            )?;
            Ok((baselines, states))
        })?;
        let mut stored = StoredDomain::default();
        for row in baselines {
            let (check, json): (String, String) = (row.get(0), row.get(1));
            match (check.parse::<CheckKind>().ok(), serde_json::from_str(&json)) {
                (Some(check), Ok(values)) => {
                    stored.baselines.insert(check, values);
                }
                _ => tracing::warn!(domain, check, "unreadable stored baseline ignored"),
            }
        }
        for row in states {
            let (check, json): (String, String) = (row.get(0), row.get(1));
            if let Ok(check) = check.parse::<CheckKind>() {
                stored.checks.insert(check, json);
            }
        }
        Ok(stored)
    }

    /// Every stored check state of the fleet, by domain and check.
    pub(crate) fn all_check_states(&self) -> Result<StoredStates, StateError> {
        let rows = self.with_client(|client| {
            client.query(
                "SELECT domain, check_name, state_json FROM check_states",
                &[],
            )
        })?;
        let mut states = StoredStates::new();
        for row in rows {
            let (domain, check, json): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            if let Ok(check) = check.parse::<CheckKind>() {
                states.entry(domain).or_default().insert(check, json);
            }
        }
        Ok(states)
    }

    /// Every stored check state of the fleet, summed up by the server (see
    /// [`CheckSummary`]): only those few values cross the network. Unlike SQLite's
    /// `json_valid`, PostgreSQL 15 cannot skip a row that is not JSON (`IS JSON` is 16's):
    /// every row is the monitor's serialized `CheckStatus`, so none is.
    pub(crate) fn check_summaries(&self) -> Result<Vec<CheckSummary>, StateError> {
        let rows = self.with_client(|client| {
            client.query(
                "SELECT domain, check_name, coalesce((j->>'success')::boolean, false),
                        coalesce((j->>'drift')::boolean, false),
                        coalesce(j->'findings' @> '[{\"severity\": \"critical\"}]', false),
                        coalesce(j->'findings' @> '[{\"severity\": \"warning\"}]', false),
                        updated_at
                 FROM (SELECT domain, check_name, state_json::jsonb AS j, updated_at
                       FROM check_states) s",
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| CheckSummary {
                domain: r.get(0),
                check: r.get(1),
                success: r.get(2),
                drift: r.get(3),
                critical: r.get(4),
                warning: r.get(5),
                stored_at: r.get(6),
            })
            .collect())
    }

    /// Every value the checks keep across restarts.
    pub(crate) fn load_check_cache(&self) -> Result<Vec<CachedRow>, StateError> {
        let rows = self.with_client(|client| {
            client.query(
                "SELECT check_name, key, value_json, stored_at FROM check_cache",
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let check = r.get::<_, String>(0).parse::<CheckKind>().ok()?;
                let stored_at: f64 = r.get(3);
                Some(CachedRow {
                    check,
                    key: r.get(1),
                    value_json: r.get(2),
                    stored_at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(stored_at.max(0.0)),
                })
            })
            .collect())
    }

    /// Events matching `query`, newest first.
    pub(crate) fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StateError> {
        let mut sql = String::from(
            "SELECT id, at, domain, check_name, kind, code, severity, message, from_json, \
             to_json, server, resolution_seconds, incident_id FROM events WHERE true",
        );
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(domain) = &query.domain {
            args.push(Box::new(domain.clone()));
            sql.push_str(&format!(" AND domain = ${}", args.len()));
        }
        if let Some(check) = query.check {
            args.push(Box::new(check.as_str().to_owned()));
            sql.push_str(&format!(" AND check_name = ${}", args.len()));
        }
        if let Some(domains) = &query.domains {
            args.push(Box::new(domains.clone()));
            sql.push_str(&format!(" AND domain = ANY(${})", args.len()));
        }
        if let Some(since) = query.since {
            args.push(Box::new(unix_seconds(since)));
            sql.push_str(&format!(" AND at >= ${}", args.len()));
        }
        if let Some(before) = query.before {
            args.push(Box::new(before));
            sql.push_str(&format!(" AND id < ${}", args.len()));
        }
        args.push(Box::new(limit(query.limit)));
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
        let rows = self.with_client(|client| {
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client.query(&sql, &params)
        })?;
        Ok(rows
            .iter()
            .map(|r| StoredEvent {
                id: r.get(0),
                at: r.get(1),
                domain: r.get(2),
                check: r.get(3),
                kind: r.get(4),
                code: r.get(5),
                severity: r.get(6),
                message: r.get(7),
                from: json(r.get(8)),
                to: json(r.get(9)),
                server: r.get(10),
                resolution_seconds: r.get(11),
                incident_id: r.get(12),
            })
            .collect())
    }

    /// When the store first recorded anything about `domain`.
    pub(crate) fn first_event_at(&self, domain: &str) -> Result<Option<f64>, StateError> {
        self.with_client(|client| {
            Ok(client
                .query_one("SELECT min(at) FROM events WHERE domain = $1", &[&domain])?
                .get(0))
        })
    }

    /// Open incidents (of `domain`, or all), oldest first.
    pub(crate) fn incidents(&self, domain: Option<&str>) -> Result<Vec<Incident>, StateError> {
        let rows = self.with_client(|client| {
            client.query(
                "SELECT domain, check_name, code, severity, message, opened_at, event_id
                 FROM incidents WHERE $1::TEXT IS NULL OR domain = $1 ORDER BY opened_at, domain",
                &[&domain],
            )
        })?;
        Ok(rows.iter().map(incident_row).collect())
    }

    /// The open incidents that want attention, summed up: of `domains` only (an instance's
    /// own), or of the whole fleet.
    pub(crate) fn open_summary(
        &self,
        oldest: usize,
        domains: Option<&[String]>,
    ) -> Result<OpenSummary, StateError> {
        let attention = "severity IN ('critical', 'warning') \
            AND ($1::TEXT[] IS NULL OR domain = ANY($1))";
        let (count, oldest, since) = self.with_client(|client| {
            let count: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM incidents WHERE {attention}"),
                    &[&domains],
                )?
                .get(0);
            let oldest = client.query(
                &format!(
                    "SELECT domain, check_name, code, severity, message, opened_at, event_id
                     FROM incidents WHERE {attention} ORDER BY opened_at, domain LIMIT $2"
                ),
                &[&domains, &limit(oldest)],
            )?;
            let since = client.query(
                &format!(
                    "SELECT domain, check_name, min(opened_at) FROM incidents WHERE {attention}
                     GROUP BY domain, check_name"
                ),
                &[&domains],
            )?;
            Ok((count, oldest, since))
        })?;
        let mut first: HashMap<(String, String), f64> = HashMap::new();
        for row in since {
            first.insert((row.get(0), row.get(1)), row.get(2));
        }
        Ok(OpenSummary {
            count: usize::try_from(count).unwrap_or(0),
            oldest: oldest.iter().map(incident_row).collect(),
            since: first
                .into_iter()
                .map(|((domain, check), at)| (domain, check, at))
                .collect(),
        })
    }

    /// The incident opened by event `id`, with its notes.
    pub(crate) fn incident(&self, id: i64) -> Result<Option<IncidentRecord>, StateError> {
        self.with_client(|client| {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM events o WHERE o.id = $1 AND o.kind = 'opened'"
            );
            let Some(row) = client.query_opt(&sql, &[&id])? else {
                return Ok(None);
            };
            let mut incident = record_row(&row);
            notes_of(client, &mut incident)?;
            Ok(Some(incident))
        })
    }

    /// The incidents of `domain` that opened at or after `since`, newest first.
    pub(crate) fn domain_incidents(
        &self,
        domain: &str,
        since: Option<SystemTime>,
        max: usize,
    ) -> Result<Vec<IncidentRecord>, StateError> {
        self.with_client(|client| {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM events o
                 WHERE o.domain = $1 AND o.kind = 'opened' AND o.at >= $2
                 ORDER BY o.id DESC LIMIT $3"
            );
            let since = since.map_or(f64::NEG_INFINITY, unix_seconds);
            let rows = client.query(&sql, &[&domain, &since, &limit(max)])?;
            let mut incidents: Vec<IncidentRecord> = rows.iter().map(record_row).collect();
            for incident in &mut incidents {
                notes_of(client, incident)?;
            }
            Ok(incidents)
        })
    }

    /// The notes written at or after `since` on incidents of `domain`, oldest first.
    pub(crate) fn domain_notes(
        &self,
        domain: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, StoredNote)>, StateError> {
        let rows = self.with_client(|client| {
            let sql = format!(
                "SELECT {NOTE_COLUMNS}, o.check_name
                 FROM incident_notes n JOIN events o ON o.id = n.incident_id
                 WHERE o.domain = $1 AND n.at >= $2 ORDER BY n.id"
            );
            client.query(&sql, &[&domain, &unix_seconds(since)])
        })?;
        Ok(rows.iter().map(|r| (r.get(11), note_row(r))).collect())
    }

    /// Findings of `warning`/`critical` severity opened (`true`) and resolved (`false`) at
    /// or after `since`, newest first, at most `max`: of `domains` only, or of the fleet.
    pub(crate) fn incident_changes(
        &self,
        since: SystemTime,
        max: usize,
        domains: Option<&[String]>,
    ) -> Result<Vec<(f64, bool)>, StateError> {
        let rows = self.with_client(|client| {
            client.query(
                "SELECT at, kind = 'opened' FROM events
                 WHERE at >= $1 AND kind IN ('opened', 'resolved')
                   AND severity IN ('critical', 'warning')
                   AND ($3::TEXT[] IS NULL OR domain = ANY($3))
                 ORDER BY at DESC, id DESC LIMIT $2",
                &[&unix_seconds(since), &limit(max), &domains],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
