//! Reads for the API and the status page: the timeline (newest first, paginated by id) and
//! the open incidents.

use super::store::Store;
use super::{EventKind, StateError, unix_seconds};
use crate::finding::CheckKind;
use rusqlite::types::Value;
use serde::Serialize;
use std::time::SystemTime;

/// A filter over the timeline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Only this domain.
    pub domain: Option<String>,
    /// Only this check.
    pub check: Option<CheckKind>,
    /// Only events at or after this time.
    pub since: Option<SystemTime>,
    /// Only events with a smaller id (the page cursor).
    pub before: Option<i64>,
    /// At most this many (newest first).
    pub limit: usize,
}

/// One stored event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Increasing id (the page cursor).
    pub id: i64,
    /// Unix seconds.
    pub at: f64,
    /// Domain name.
    pub domain: String,
    /// Check name.
    pub check: String,
    /// `opened`, `resolved`, `changed`, `baseline_learned`, `baseline_accepted`.
    pub kind: String,
    /// Finding code, for `opened`/`resolved`.
    pub code: Option<String>,
    /// Finding severity.
    pub severity: Option<String>,
    /// Human summary.
    pub message: String,
    /// What it was.
    pub from: Option<serde_json::Value>,
    /// What it became.
    pub to: Option<serde_json::Value>,
    /// The nameservers or resolvers asked.
    pub server: Option<String>,
    /// For `resolved`: seconds the finding was open.
    pub resolution_seconds: Option<f64>,
    /// For `opened` and `resolved`: the incident (its `opened` event's id), for notes.
    pub incident_id: Option<i64>,
}

impl StoredEvent {
    /// The kind as a typed value (`None` for a kind written by a newer version).
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }
}

/// A finding that is open (opened, not resolved), with when it opened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// Domain name.
    pub domain: String,
    /// Check name.
    pub check: String,
    /// Finding code.
    pub code: String,
    /// Severity.
    pub severity: Option<String>,
    /// The incident's id (its `opened` event's), for notes.
    pub id: i64,
    /// Message when it opened.
    pub message: String,
    /// Unix seconds when it opened.
    pub opened_at: f64,
    /// The `opened` event.
    pub event_id: i64,
}

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Store {
    /// Events matching `query`, newest first.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StateError> {
        let mut sql = String::from(
            "SELECT id, at, domain, check_name, kind, code, severity, message, from_json, \
             to_json, server, resolution_seconds, incident_id FROM events WHERE 1 = 1",
        );
        let mut args: Vec<Value> = Vec::new();
        if let Some(domain) = &query.domain {
            sql.push_str(" AND domain = ?");
            args.push(Value::Text(domain.clone()));
        }
        if let Some(check) = query.check {
            sql.push_str(" AND check_name = ?");
            args.push(Value::Text(check.as_str().to_owned()));
        }
        if let Some(since) = query.since {
            sql.push_str(" AND at >= ?");
            args.push(Value::Real(unix_seconds(since)));
        }
        if let Some(before) = query.before {
            sql.push_str(" AND id < ?");
            args.push(Value::Integer(before));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Value::Integer(
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        ));
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(args), |r| {
                Ok(StoredEvent {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    domain: r.get(2)?,
                    check: r.get(3)?,
                    kind: r.get(4)?,
                    code: r.get(5)?,
                    severity: r.get(6)?,
                    message: r.get(7)?,
                    from: json(r.get(8)?),
                    to: json(r.get(9)?),
                    server: r.get(10)?,
                    resolution_seconds: r.get(11)?,
                    incident_id: r.get(12)?,
                })
            })?;
            rows.collect()
        })
    }

    /// When the store first recorded anything about `domain` (its oldest event kept).
    pub fn first_event_at(&self, domain: &str) -> Result<Option<f64>, StateError> {
        self.with_conn(|conn| {
            conn.prepare_cached("SELECT min(at) FROM events WHERE domain = ?1")?
                .query_row([domain], |r| r.get(0))
        })
    }

    /// Open incidents (of `domain`, or all), oldest first.
    pub fn incidents(&self, domain: Option<&str>) -> Result<Vec<Incident>, StateError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT domain, check_name, code, severity, message, opened_at, event_id
                 FROM incidents WHERE ?1 IS NULL OR domain = ?1 ORDER BY opened_at, domain",
            )?;
            let rows = statement.query_map([domain], |r| {
                Ok(Incident {
                    domain: r.get(0)?,
                    check: r.get(1)?,
                    code: r.get(2)?,
                    severity: r.get(3)?,
                    id: r.get(6)?,
                    message: r.get(4)?,
                    opened_at: r.get(5)?,
                    event_id: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }
}
