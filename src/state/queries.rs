//! Reads for the API and the status page: the timeline (newest first, paginated by id), the
//! open incidents, and every domain's stored check states (the fleet views).

use super::store::SqliteStore;
use super::{EventKind, StateError, unix_seconds};
use crate::finding::CheckKind;
use rusqlite::types::Value;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

/// A filter over the timeline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Only this domain.
    pub domain: Option<String>,
    /// Only this check.
    pub check: Option<CheckKind>,
    /// Only these domains (an instance's own, when the store is shared by a fleet); the
    /// SQLite store holds only its instance's domains and ignores it.
    pub domains: Option<Vec<String>>,
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

/// The open incidents that want attention: `info` findings (no TLS-RPT record) do not.
const ATTENTION: &str = "severity IN ('critical', 'warning')";

/// Since when each open incident that wants attention is open (through the partial index
/// `incidents_attention`).
pub(super) const OPEN_SINCE: &str = "SELECT domain, check_name, opened_at FROM incidents \
     WHERE severity IN ('critical', 'warning')";

/// One check's stored state in the few values the fleet overview shows (its state per
/// check), read in SQL from the monitor's JSON (`check_states.state_json`, the monitor's
/// `CheckStatus`: `success`, `drift`, `findings[].severity`) so that a page over a large
/// fleet moves a few bytes per check, not every record.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSummary {
    /// Domain name.
    pub domain: String,
    /// Check name.
    pub check: String,
    /// Whether its last run got conclusive answers.
    pub success: bool,
    /// Whether its last conclusive run found drift.
    pub drift: bool,
    /// Whether a finding of `critical` severity is open.
    pub critical: bool,
    /// Whether a finding of `warning` severity is open.
    pub warning: bool,
    /// Unix seconds when the state was stored (the run that last changed it).
    pub stored_at: f64,
}

/// Every stored check state: domain → check → the monitor's JSON.
pub(crate) type StoredStates = BTreeMap<String, BTreeMap<CheckKind, String>>;

/// The summaries of every stored check state (SQLite). `json_valid` keeps a damaged row
/// from failing the whole page.
const CHECK_SUMMARIES: &str = "SELECT domain, check_name, \
     coalesce(json_extract(state_json, '$.success'), 0), \
     coalesce(json_extract(state_json, '$.drift'), 0), \
     EXISTS (SELECT 1 FROM json_each(state_json, '$.findings') \
             WHERE json_extract(value, '$.severity') = 'critical'), \
     EXISTS (SELECT 1 FROM json_each(state_json, '$.findings') \
             WHERE json_extract(value, '$.severity') = 'warning'), \
     updated_at \
     FROM check_states WHERE json_valid(state_json)";

/// Open incidents that want attention, summed up (see [`SqliteStore::open_summary`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenSummary {
    /// How many are open.
    pub count: usize,
    /// The oldest ones, oldest first.
    pub oldest: Vec<Incident>,
    /// Per domain and check: since when (unix seconds) its oldest one is open.
    pub since: Vec<(String, String, f64)>,
}

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
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
}

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl SqliteStore {
    /// Events matching `query`, newest first.
    pub(crate) fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StateError> {
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
    pub(crate) fn first_event_at(&self, domain: &str) -> Result<Option<f64>, StateError> {
        self.with_conn(|conn| {
            conn.prepare_cached("SELECT min(at) FROM events WHERE domain = ?1")?
                .query_row([domain], |r| r.get(0))
        })
    }

    /// Open incidents (of `domain`, or all), oldest first.
    pub(crate) fn incidents(&self, domain: Option<&str>) -> Result<Vec<Incident>, StateError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT domain, check_name, code, severity, message, opened_at, event_id
                 FROM incidents WHERE ?1 IS NULL OR domain = ?1 ORDER BY opened_at, domain",
            )?;
            let rows = statement.query_map([domain], incident_row)?;
            rows.collect()
        })
    }

    /// Every stored check state, by domain and check (states of checks this build does
    /// not know are left out).
    pub(crate) fn all_check_states(&self) -> Result<StoredStates, StateError> {
        self.with_conn(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT domain, check_name, state_json FROM check_states")?;
            let rows = statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut states = StoredStates::new();
            for row in rows {
                let (domain, check, json) = row?;
                if let Ok(check) = check.parse::<CheckKind>() {
                    states.entry(domain).or_default().insert(check, json);
                }
            }
            Ok(states)
        })
    }

    /// Every stored check state, summed up for the overview (see [`CheckSummary`]).
    pub(crate) fn check_summaries(&self) -> Result<Vec<CheckSummary>, StateError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(CHECK_SUMMARIES)?;
            let rows = statement.query_map([], |r| {
                Ok(CheckSummary {
                    domain: r.get(0)?,
                    check: r.get(1)?,
                    success: r.get(2)?,
                    drift: r.get(3)?,
                    critical: r.get(4)?,
                    warning: r.get(5)?,
                    stored_at: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The open incidents that want attention (`warning`, `critical`) in a few numbers, for
    /// the overview of a large fleet: how many, the `oldest` oldest, and since when each
    /// domain's check has one. `_domains` (an instance's own in a shared store) is ignored:
    /// this store holds only its instance's domains.
    pub(crate) fn open_summary(
        &self,
        oldest: usize,
        _domains: Option<&[String]>,
    ) -> Result<OpenSummary, StateError> {
        self.with_conn(|conn| {
            let count: i64 = conn
                .prepare_cached(&format!("SELECT count(*) FROM incidents WHERE {ATTENTION}"))?
                .query_row([], |r| r.get(0))?;
            let limit = i64::try_from(oldest).unwrap_or(i64::MAX);
            let oldest = conn
                .prepare_cached(&format!(
                    "SELECT domain, check_name, code, severity, message, opened_at, event_id
                     FROM incidents WHERE {ATTENTION} ORDER BY opened_at, domain LIMIT ?1"
                ))?
                .query_map([limit], incident_row)?
                .collect::<Result<_, _>>()?;
            // Read through the partial index `incidents_attention`, summed up here.
            let mut first: HashMap<(String, String), f64> = HashMap::new();
            let mut statement = conn.prepare_cached(OPEN_SINCE)?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            for row in rows {
                let (domain, check, at): (String, String, f64) = row?;
                let since = first.entry((domain, check)).or_insert(at);
                *since = since.min(at);
            }
            let since = first
                .into_iter()
                .map(|((domain, check), at)| (domain, check, at))
                .collect();
            Ok(OpenSummary {
                count: usize::try_from(count).unwrap_or(0),
                oldest,
                since,
            })
        })
    }
}
