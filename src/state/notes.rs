//! Incident records: an incident is known by the id of its `opened` event; its `resolved`
//! event names it; notes say what the admin did about it (channel, ticket, who, the steps,
//! when the provider first answered, whether the registrar or DNS provider was involved).

use super::store::SqliteStore;
use super::{StateError, unix_seconds};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::time::SystemTime;

/// How the admin worked the incident with the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call.
    Phone,
    /// A support ticket.
    Ticket,
    /// A chat (DingTalk, WeCom, the provider's web chat).
    Chat,
    /// E-mail.
    Email,
    /// Anything else.
    Other,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] = [
        Channel::Phone,
        Channel::Ticket,
        Channel::Chat,
        Channel::Email,
        Channel::Other,
    ];

    /// The stored and JSON name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Ticket => "ticket",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Other => "other",
        }
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(text: &str) -> Result<Channel, String> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
                format!("channel {text:?} is not one of {}", names.join(", "))
            })
    }
}

/// A note to add to an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNote {
    /// The incident (its `opened` event's id).
    pub incident_id: i64,
    /// When the note was written.
    pub at: SystemTime,
    /// How the provider was reached.
    pub channel: Channel,
    /// The provider's or registrar's ticket number.
    pub ticket: Option<String>,
    /// Who worked it.
    pub who: Option<String>,
    /// The steps taken.
    pub text: String,
    /// When the provider first answered.
    pub first_response_at: Option<SystemTime>,
    /// The registrar was involved.
    pub registrar: bool,
    /// The DNS provider was involved.
    pub dns_provider: bool,
}

/// A stored note.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredNote {
    /// Increasing id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// When it was written, unix seconds.
    pub at: f64,
    /// `phone`, `ticket`, `chat`, `email`, `other`.
    pub channel: String,
    /// Ticket number.
    pub ticket: Option<String>,
    /// Who worked it.
    pub who: Option<String>,
    /// The steps taken.
    pub text: String,
    /// When the provider first answered, unix seconds.
    pub first_response_at: Option<f64>,
    /// Seconds from the incident's opening to the provider's first answer.
    pub first_response_seconds: Option<f64>,
    /// The registrar was involved.
    pub registrar: bool,
    /// The DNS provider was involved.
    pub dns_provider: bool,
}

/// An incident (open or resolved) with its notes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IncidentRecord {
    /// The id of its `opened` event.
    pub id: i64,
    /// Domain name.
    pub domain: String,
    /// Check name.
    pub check: String,
    /// Finding code.
    pub code: String,
    /// Severity.
    pub severity: Option<String>,
    /// `open` or `resolved`.
    pub state: &'static str,
    /// The finding's message when it opened.
    pub message: String,
    /// Unix seconds when it opened.
    pub opened_at: f64,
    /// Unix seconds when it resolved.
    pub resolved_at: Option<f64>,
    /// How long it was open.
    pub resolution_seconds: Option<f64>,
    /// What it was (records or evidence).
    pub from: Option<serde_json::Value>,
    /// What it became.
    pub to: Option<serde_json::Value>,
    /// The nameservers or resolvers asked.
    pub server: Option<String>,
    /// What was done about it, oldest first.
    pub notes: Vec<StoredNote>,
}

/// Inserts `note` (in the writer's transaction).
pub(crate) fn insert(tx: &rusqlite::Transaction<'_>, note: &NewNote) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO incident_notes (incident_id, at, channel, ticket, who, text,
                                     first_response_at, registrar, dns_provider)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        note.incident_id,
        unix_seconds(note.at),
        note.channel.as_str(),
        note.ticket,
        note.who,
        note.text,
        note.first_response_at.map(unix_seconds),
        note.registrar,
        note.dns_provider,
    ])?;
    Ok(())
}

const INCIDENT_COLUMNS: &str = "o.id, o.domain, o.check_name, coalesce(o.code, ''), o.severity, \
    o.message, o.at, o.from_json, o.to_json, o.server, \
    (SELECT r.at FROM events r WHERE r.incident_id = o.id AND r.kind = 'resolved' ORDER BY r.id LIMIT 1), \
    (SELECT r.resolution_seconds FROM events r WHERE r.incident_id = o.id AND r.kind = 'resolved' ORDER BY r.id LIMIT 1), \
    EXISTS (SELECT 1 FROM incidents i WHERE i.event_id = o.id)";

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRecord> {
    let open: bool = r.get(12)?;
    Ok(IncidentRecord {
        id: r.get(0)?,
        domain: r.get(1)?,
        check: r.get(2)?,
        code: r.get(3)?,
        severity: r.get(4)?,
        state: if open { "open" } else { "resolved" },
        message: r.get(5)?,
        opened_at: r.get(6)?,
        from: json(r.get(7)?),
        to: json(r.get(8)?),
        server: r.get(9)?,
        resolved_at: if open { None } else { r.get(10)? },
        resolution_seconds: if open { None } else { r.get(11)? },
        notes: Vec::new(),
    })
}

/// Incidents that want attention opened or resolved since `?1`, newest first, at most `?2`
/// (through the partial index `events_attention`).
pub(super) const INCIDENT_CHANGES: &str = "SELECT at, kind = 'opened' FROM events \
     WHERE at >= ?1 AND kind IN ('opened', 'resolved') AND severity IN ('critical', 'warning') \
     ORDER BY at DESC, id DESC LIMIT ?2";

/// The note columns of `incident_notes n` joined with its opening event `o`.
const NOTE_COLUMNS: &str = "n.id, n.incident_id, n.at, n.channel, n.ticket, n.who, n.text, \
    n.first_response_at, n.registrar, n.dns_provider, o.at";

fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredNote> {
    let first_response_at: Option<f64> = r.get(7)?;
    let opened_at: f64 = r.get(10)?;
    Ok(StoredNote {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        at: r.get(2)?,
        channel: r.get(3)?,
        ticket: r.get(4)?,
        who: r.get(5)?,
        text: r.get(6)?,
        first_response_at,
        first_response_seconds: first_response_at.map(|t| t - opened_at),
        registrar: r.get(8)?,
        dns_provider: r.get(9)?,
    })
}

fn notes_of(conn: &rusqlite::Connection, incident: &mut IncidentRecord) -> rusqlite::Result<()> {
    let sql = format!(
        "SELECT {NOTE_COLUMNS} FROM incident_notes n JOIN events o ON o.id = n.incident_id
         WHERE n.incident_id = ?1 ORDER BY n.id"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    incident.notes = statement
        .query_map([incident.id], note_row)?
        .collect::<Result<_, _>>()?;
    Ok(())
}

impl SqliteStore {
    /// The incident opened by event `id`, with its notes (`None`: no such incident, or its
    /// opening event is past retention).
    pub(crate) fn incident(&self, id: i64) -> Result<Option<IncidentRecord>, StateError> {
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM events o WHERE o.id = ?1 AND o.kind = 'opened'"
            );
            let found = conn
                .prepare_cached(&sql)?
                .query_row([id], incident_row)
                .optional()?;
            let Some(mut incident) = found else {
                return Ok(None);
            };
            notes_of(conn, &mut incident)?;
            Ok(Some(incident))
        })
    }

    /// The incidents of `domain` that opened at or after `since` (all kept, when `None`),
    /// newest first, at most `limit`, with their notes.
    pub(crate) fn domain_incidents(
        &self,
        domain: &str,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Result<Vec<IncidentRecord>, StateError> {
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM events o
                 WHERE o.domain = ?1 AND o.kind = 'opened' AND o.at >= ?2
                 ORDER BY o.id DESC LIMIT ?3"
            );
            let since = since.map_or(f64::NEG_INFINITY, unix_seconds);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut incidents: Vec<IncidentRecord> = conn
                .prepare_cached(&sql)?
                .query_map(params![domain, since, limit], incident_row)?
                .collect::<Result<_, _>>()?;
            for incident in &mut incidents {
                notes_of(conn, incident)?;
            }
            Ok(incidents)
        })
    }

    /// The notes written at or after `since` on incidents of `domain`, with each
    /// incident's check, oldest first.
    pub(crate) fn domain_notes(
        &self,
        domain: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, StoredNote)>, StateError> {
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {NOTE_COLUMNS}, o.check_name
                 FROM incident_notes n JOIN events o ON o.id = n.incident_id
                 WHERE o.domain = ?1 AND n.at >= ?2 ORDER BY n.id"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(params![domain, unix_seconds(since)], |r| {
                Ok((r.get::<_, String>(11)?, note_row(r)?))
            })?;
            rows.collect()
        })
    }

    /// Findings of `warning` or `critical` severity opened (`true`) and resolved (`false`)
    /// at or after `since`, newest first, at most `limit`: with such incidents open now, the
    /// count of open incidents at any moment since. `_domains` is ignored, as by
    /// [`SqliteStore::open_summary`].
    pub(crate) fn incident_changes(
        &self,
        since: SystemTime,
        limit: usize,
        _domains: Option<&[String]>,
    ) -> Result<Vec<(f64, bool)>, StateError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(INCIDENT_CHANGES)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = statement.query_map(params![unix_seconds(since), limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        })
    }
}
