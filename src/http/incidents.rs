//! Incident records: `GET /api/v1/incidents/{id}` (an incident with its notes),
//! `POST /api/v1/incidents/{id}/notes` (what the admin did: channel, ticket, who, the steps,
//! the provider's first response, whether the registrar or DNS provider was involved), and
//! the post-mortem exports `GET /api/v1/domains/{domain}/timeline.md` and `.csv`.
//!
//! Notes are written like everything else: through the state writer's queue, then read
//! back once it is flushed.

use super::AppState;
use super::api::{bad_request, parse_since, unavailable};
use super::export;
use super::times::parse_time;
use crate::state::{Channel, IncidentRecord, NewNote, StateError, StoredNote, Write};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The largest note body accepted (bytes).
pub(crate) const MAX_NOTE_BODY: usize = 16 * 1024;
/// The longest note text, ticket number and name (characters).
const MAX_TEXT: usize = 4000;
const MAX_FIELD: usize = 100;
/// Incidents in one export at most.
const MAX_EXPORTED: usize = 1000;

/// A note, validated.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NoteFields {
    channel: Channel,
    ticket: Option<String>,
    who: Option<String>,
    text: String,
    first_response_at: Option<SystemTime>,
    registrar: bool,
    dns_provider: bool,
}

/// One line of text (a ticket number, a name): trimmed, bounded, no control characters.
fn short_field(name: &str, value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_FIELD {
        return Err(format!("{name}: at most {MAX_FIELD} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name}: one line without control characters"));
    }
    Ok(Some(value.to_owned()))
}

impl NoteFields {
    /// Validates the fields of a note as written (JSON or the page's form).
    pub(crate) fn new(
        channel: &str,
        ticket: Option<&str>,
        who: Option<&str>,
        text: &str,
        first_response_at: Option<SystemTime>,
        (registrar, dns_provider): (bool, bool),
    ) -> Result<NoteFields, String> {
        let channel = channel.parse::<Channel>()?;
        let text = text.trim();
        if text.is_empty() {
            return Err("text: say what was done (the steps taken)".into());
        }
        if text.chars().count() > MAX_TEXT {
            return Err(format!("text: at most {MAX_TEXT} characters"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("text: no control characters".into());
        }
        if let Some(at) = first_response_at
            && at > SystemTime::now() + Duration::from_secs(300)
        {
            return Err("first_response_at: is in the future".into());
        }
        Ok(NoteFields {
            channel,
            ticket: short_field("ticket", ticket)?,
            who: short_field("who", who)?,
            text: text.replace("\r\n", "\n"),
            first_response_at,
            registrar,
            dns_provider,
        })
    }
}

impl NoteFields {
    /// The note to write on incident `id`, written at `at`.
    pub(crate) fn into_note(self, incident_id: i64, at: SystemTime) -> NewNote {
        NewNote {
            incident_id,
            at,
            channel: self.channel,
            ticket: self.ticket,
            who: self.who,
            text: self.text,
            first_response_at: self.first_response_at,
            registrar: self.registrar,
            dns_provider: self.dns_provider,
        }
    }
}

/// `first_response_at` as sent: unix seconds, or a date such as `2024-05-01 10:30 +08:00`.
pub(crate) fn first_response(value: &serde_json::Value) -> Result<Option<SystemTime>, String> {
    let text = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) if s.trim().is_empty() => return Ok(None),
        serde_json::Value::String(s) => s.clone(),
        other => return Err(format!("first_response_at: {other} is not a time")),
    };
    parse_time(&text)
        .map(Some)
        .map_err(|e| format!("first_response_at: {e}"))
}

/// Why a note was not added.
#[derive(Debug)]
pub(crate) enum NoteError {
    /// No incident with this id (of this domain).
    NotFound(i64),
    /// No state store, or the write was lost.
    Unavailable,
    /// A query failed.
    Failed(String),
}

impl From<StateError> for NoteError {
    fn from(error: StateError) -> NoteError {
        NoteError::Failed(error.to_string())
    }
}

/// The incident `id`, if there is one (of `domain`, when given).
async fn find(state: &AppState, id: i64) -> Result<IncidentRecord, NoteError> {
    match state.state.read(move |store| store.incident(id)).await {
        None => Err(NoteError::Unavailable),
        Some(Err(error)) => Err(error.into()),
        Some(Ok(None)) => Err(NoteError::NotFound(id)),
        Some(Ok(Some(incident))) => Ok(incident),
    }
}

/// Adds a note to incident `id` (which must be `domain`'s, when given); returns the
/// incident with its notes and the new note.
pub(crate) async fn add_note(
    state: &AppState,
    id: i64,
    domain: Option<&str>,
    fields: NoteFields,
) -> Result<(IncidentRecord, StoredNote), NoteError> {
    let incident = find(state, id).await?;
    if domain.is_some_and(|d| d != incident.domain) {
        return Err(NoteError::NotFound(id));
    }
    let at = SystemTime::now();
    let text = fields.text.clone();
    state
        .state
        .writer
        .send(Write::Note(fields.into_note(id, at)));
    // A lost write elsewhere also makes the flush report false: the read decides.
    state.state.flush().await;
    let incident = find(state, id).await?;
    let written = crate::state::unix_seconds(at);
    let note = incident
        .notes
        .iter()
        .rev()
        .find(|n| n.at == written && n.text == text)
        .cloned()
        .ok_or(NoteError::Unavailable)?;
    Ok((incident, note))
}

/// A note as JSON: `{channel, ticket, who, text, first_response_at, registrar, dns_provider}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteBody {
    channel: String,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    who: Option<String>,
    text: String,
    #[serde(default)]
    first_response_at: serde_json::Value,
    #[serde(default)]
    registrar: bool,
    #[serde(default)]
    dns_provider: bool,
}

fn incident_id(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{text:?} is not an incident id"))
}

fn error_response(error: NoteError) -> Response {
    match error {
        NoteError::NotFound(id) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no incident {id} (unknown, or past retention)") })),
        )
            .into_response(),
        NoteError::Unavailable => unavailable(),
        NoteError::Failed(message) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": message })),
        )
            .into_response(),
    }
}

pub(crate) async fn get_incident(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let id = match incident_id(&id) {
        Ok(id) => id,
        Err(message) => return bad_request(message),
    };
    match find(&state, id).await {
        Ok(incident) => Json(incident).into_response(),
        Err(error) => error_response(error),
    }
}

pub(crate) async fn post_note(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Json<NoteBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let id = match incident_id(&id) {
        Ok(id) => id,
        Err(message) => return bad_request(message),
    };
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return (
                rejection.status(),
                Json(json!({ "error": rejection.body_text() })),
            )
                .into_response();
        }
    };
    let fields = first_response(&body.first_response_at).and_then(|at| {
        NoteFields::new(
            &body.channel,
            body.ticket.as_deref(),
            body.who.as_deref(),
            &body.text,
            at,
            (body.registrar, body.dns_provider),
        )
    });
    let fields = match fields {
        Ok(fields) => fields,
        Err(message) => return bad_request(message),
    };
    match add_note(&state, id, None, fields).await {
        Ok((incident, note)) => (
            StatusCode::CREATED,
            Json(json!({ "note": note, "incident": incident })),
        )
            .into_response(),
        Err(error) => error_response(error),
    }
}

/// Query parameters of the exports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportParams {
    since: Option<String>,
}

/// The domain's incidents (newest first) for an export, or the error response.
async fn exported(
    state: &AppState,
    name: &str,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Vec<IncidentRecord>, Response> {
    let Query(params) = params.map_err(|e| bad_request(e.body_text()))?;
    let since = params
        .since
        .as_deref()
        .map(|s| parse_since(s, SystemTime::now()))
        .transpose()
        .map_err(bad_request)?;
    let domain = name.to_owned();
    let incidents = match state
        .state
        .read(move |store| store.domain_incidents(&domain, since, MAX_EXPORTED))
        .await
    {
        None => return Err(unavailable()),
        Some(Err(error)) => return Err(error_response(error.into())),
        Some(Ok(incidents)) => incidents,
    };
    if incidents.is_empty() && state.monitor.domain(name).is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            Json(
                json!({ "error": format!("domain {name:?} is not watched and has no incidents") }),
            ),
        )
            .into_response());
    }
    Ok(incidents)
}

/// The formats of the post-mortem export.
#[derive(Clone, Copy, Debug)]
enum Export {
    Markdown,
    Csv,
}

async fn export_response(
    state: &AppState,
    name: &str,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
    format: Export,
) -> Response {
    let name = crate::dns::names::lookup_name(name);
    let incidents = match exported(state, &name, params).await {
        Ok(incidents) => incidents,
        Err(response) => return response,
    };
    match format {
        Export::Markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            export::markdown(&name, &incidents, SystemTime::now()),
        )
            .into_response(),
        Export::Csv => {
            let file = name.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
                "_",
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file}-incidents.csv\""),
                    ),
                ],
                export::csv(&incidents),
            )
                .into_response()
        }
    }
}

/// `GET /api/v1/domains/{domain}/timeline.md`.
pub(crate) async fn timeline_markdown(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    export_response(&state, &name, params, Export::Markdown).await
}

/// `GET /api/v1/domains/{domain}/timeline.csv`.
pub(crate) async fn timeline_csv(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    export_response(&state, &name, params, Export::Csv).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_validated() {
        let ok = NoteFields::new(
            "Ticket",
            Some(" T-1 "),
            Some(""),
            " called\r\nthe registrar ",
            None,
            (true, false),
        )
        .unwrap();
        assert_eq!(ok.channel, Channel::Ticket);
        assert_eq!(ok.ticket.as_deref(), Some("T-1"));
        assert_eq!(ok.who, None);
        assert_eq!(ok.text, "called\nthe registrar");
        let new = |channel: &str, ticket: Option<&str>, text: &str| {
            NoteFields::new(channel, ticket, None, text, None, (false, false)).unwrap_err()
        };
        assert!(new("fax", None, "x").contains("\"fax\""));
        assert!(new("phone", None, "  ").contains("steps taken"));
        assert!(new("phone", Some("a\nb"), "x").contains("one line"));
        assert!(new("phone", Some(&"9".repeat(101)), "x").contains("100"));
        assert!(new("phone", None, &"x".repeat(4001)).contains("4000"));
        assert!(new("phone", None, "bell\u{7}").contains("control"));
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert!(
            NoteFields::new("phone", None, None, "x", Some(later), (false, false))
                .unwrap_err()
                .contains("future")
        );
        assert_eq!(first_response(&json!(null)), Ok(None));
        assert_eq!(first_response(&json!("")), Ok(None));
        assert_eq!(
            first_response(&json!(1_700_000_000)),
            Ok(Some(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
            ))
        );
        assert_eq!(
            first_response(&json!("2023-11-15 06:13:20 +08:00")),
            Ok(Some(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
            ))
        );
        assert!(first_response(&json!(true)).unwrap_err().contains("true"));
        assert!(
            first_response(&json!("soon"))
                .unwrap_err()
                .contains("\"soon\"")
        );
    }
}
