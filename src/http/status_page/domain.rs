//! `GET /domains/{domain}`: one domain's checks over the last 7 days (an SVG timeline per
//! check), its incidents with their notes, the form to add a note
//! (`POST /domains/{domain}/notes`, protected like every write), the records and findings
//! of each check, and the timeline of events and notes.

use super::svg::{OpenFinding, bands, timeline};
use super::{State, code_html, escape, finding_text, note_summary, page_language, page_start};
use crate::http::incidents::{NoteError, NoteFields, add_note, first_response};
use crate::http::times::{age, utc};
use crate::http::{AppState, PageLanguage};
use crate::i18n::{Language, Phrase};
use crate::state::{
    Channel, EventQuery, Incident, IncidentRecord, StoredEvent, StoredNote, unix_seconds,
};
use axum::Extension;
use axum::extract::{Form, Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How far back the pictures go.
const WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// Events in the table, incidents listed.
const TABLE_EVENTS: usize = 100;
const LISTED_INCIDENTS: usize = 20;

/// What the store knows about the domain, read at once.
#[derive(Default)]
struct History {
    events: Vec<StoredEvent>,
    window: Vec<StoredEvent>,
    open: Vec<Incident>,
    incidents: Vec<IncidentRecord>,
    notes: Vec<(String, StoredNote)>,
    first_at: Option<f64>,
}

async fn history(state: &AppState, name: &str, since: SystemTime) -> Option<History> {
    let domain = name.to_owned();
    let read = state
        .state
        .read(move |store| {
            let events = store.events(&EventQuery {
                domain: Some(domain.clone()),
                limit: TABLE_EVENTS,
                ..EventQuery::default()
            })?;
            let window = store.events(&EventQuery {
                domain: Some(domain.clone()),
                since: Some(since),
                limit: 20_000,
                ..EventQuery::default()
            })?;
            // Notes as far back as the table's events (at least the window).
            let notes_since = events
                .last()
                .map(|e| std::time::UNIX_EPOCH + Duration::from_secs_f64(e.at.max(0.0)))
                .map_or(since, |oldest| oldest.min(since));
            Ok(History {
                open: store.incidents(Some(&domain))?,
                incidents: store.domain_incidents(&domain, None, LISTED_INCIDENTS)?,
                notes: store.domain_notes(&domain, notes_since)?,
                first_at: store.first_event_at(&domain)?,
                events,
                window,
            })
        })
        .await;
    match read {
        Some(Ok(history)) => Some(history),
        Some(Err(error)) => {
            tracing::warn!(domain = name, %error, "cannot read the domain's history");
            None
        }
        None => None,
    }
}

fn not_found(name: &str, language: Language) -> Response {
    let mut page = page_start("maildrift", language, "");
    let _ = write!(
        page,
        "<h1>{} {}</h1><p><a href=\"/\">{}</a></p></body></html>",
        escape(name),
        Phrase::NotWatched.text(language),
        Phrase::AllDomains.text(language)
    );
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

pub(crate) async fn domain_page(
    AxumState(state): AxumState<Arc<AppState>>,
    Extension(forced): Extension<PageLanguage>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let language = page_language(forced.0, &headers);
    let t = |p: Phrase| p.text(language);
    let name = crate::dns::names::lookup_name(&name);
    let Some(domain) = state.monitor.domain(&name) else {
        return not_found(&name, language);
    };
    let now_time = SystemTime::now();
    let (now, start) = (unix_seconds(now_time), unix_seconds(now_time - WINDOW));
    let found = history(&state, &name, now_time - WINDOW).await;
    let stored = found.is_some();
    let history = found.unwrap_or_default();
    let status = domain.status();
    let checks: Vec<_> = state.monitor.checks().kinds().collect();
    let worst = checks
        .iter()
        .map(|c| State::of(status.checks.get(c)))
        .max()
        .unwrap_or(State::Pending);
    let title = escape(&name);
    let shown = crate::dns::names::display_name(&name);
    let mut page = page_start(&format!("maildrift: {shown}"), language, "");
    let _ = write!(
        page,
        "<p><a href=\"/\">← {}</a></p><h1>{} {}</h1>",
        t(Phrase::AllDomains),
        escape(&shown),
        worst.badge(language)
    );
    for (key, value) in &domain.config.labels {
        let _ = write!(
            page,
            "<span class=\"label\">{}={}</span>",
            escape(key),
            escape(value)
        );
    }
    let _ = write!(
        page,
        "<p class=\"muted\">{} {:?}; {}: {}. <a href=\"/api/v1/domains/{title}\">JSON</a> · <a href=\"/api/v1/domains/{title}/timeline.md\">{} (Markdown)</a> · <a href=\"/api/v1/domains/{title}/timeline.csv\">CSV</a></p>",
        t(Phrase::Every),
        domain.config.interval,
        t(Phrase::Asked),
        escape(&crate::monitor::asked(&domain.config)),
        t(Phrase::IncidentExport),
    );

    let _ = write!(page, "<h2>{}</h2>", t(Phrase::LastSevenDays));
    if !stored {
        let _ = write!(page, "<p class=\"muted\">{}</p>", t(Phrase::NoHistory));
    }
    let opened: HashMap<i64, &StoredEvent> = history
        .window
        .iter()
        .filter(|e| e.kind == "opened")
        .map(|e| (e.id, e))
        .collect();
    for check in &checks {
        let open_now: Vec<OpenFinding> = history
            .open
            .iter()
            .filter(|i| i.check == check.as_str())
            .map(|i| OpenFinding {
                code: i.code.clone(),
                severity: i.severity.clone(),
                message: i.message.clone(),
                incident: Some(i.id),
            })
            .collect();
        let events: Vec<&StoredEvent> = history
            .window
            .iter()
            .filter(|e| e.check == check.as_str())
            .collect();
        let notes: Vec<&StoredNote> = history
            .notes
            .iter()
            .filter(|(c, n)| c == check.as_str() && n.at >= start)
            .map(|(_, n)| n)
            .collect();
        if domain.config.skip.contains(check) {
            let _ = write!(
                page,
                "<section class=\"check-timeline\" data-check=\"{check}\"><h3>{check} <span class=\"state s-pending\">{}</span></h3></section>",
                t(Phrase::StateSkipped)
            );
            continue;
        }
        let bands = bands(start, now, open_now, &events, history.first_at);
        let _ = write!(
            page,
            "<section class=\"check-timeline\" data-check=\"{check}\"><h3>{check} {}</h3>{}</section>",
            State::of(status.checks.get(check)).badge(language),
            timeline(
                check.as_str(),
                &bands,
                &notes,
                &opened,
                (start, now),
                language
            )
        );
    }
    let _ = write!(page, "<p class=\"muted\">{}</p>", t(Phrase::TimelineLegend));

    let _ = write!(page, "<h2 id=\"incidents\">{}</h2>", t(Phrase::Incidents));
    incidents_section(&mut page, &history.incidents, now, language);
    if stored && !history.incidents.is_empty() {
        note_form(&mut page, &name, &history.incidents, language);
    }

    let _ = write!(page, "<h2>{}</h2>", t(Phrase::Checks));
    for check in &checks {
        check_section(&mut page, &status, *check, &title, language);
    }
    let _ = write!(page, "<h2>{}</h2>", t(Phrase::Timeline));
    super::timeline_table(&mut page, &history.events, &history.notes, false, language);
    page.push_str("</body></html>");
    Html(page).into_response()
}

fn incidents_section(
    page: &mut String,
    incidents: &[IncidentRecord],
    now: f64,
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    if incidents.is_empty() {
        let _ = write!(page, "<p class=\"muted\">{}</p>", t(Phrase::None));
        return;
    }
    for incident in incidents {
        let severity = incident.severity.as_deref().unwrap_or("info");
        let state = if incident.state == "open" {
            format!("{} {}", t(Phrase::OpenFor), age(now - incident.opened_at))
        } else {
            format!(
                "{} {}",
                t(Phrase::ResolvedAfter),
                age(incident.resolution_seconds.unwrap_or(0.0))
            )
        };
        let _ = write!(
            page,
            "<div class=\"incident\" id=\"incident-{id}\" data-incident=\"{id}\" data-state=\"{}\"><p><strong>#{id}</strong> {} <span class=\"state s-{}\">{}</span> {} · {} {} UTC · {state}</p><p class=\"msg\">{}</p>",
            incident.state,
            escape(&incident.check),
            escape(severity),
            escape(severity),
            code_html(&incident.code, language),
            t(Phrase::Opened),
            utc(incident.opened_at),
            finding_text(&incident.code, &incident.message, language),
            id = incident.id,
        );
        if !incident.notes.is_empty() {
            page.push_str("<ul class=\"notes\">");
            for note in &incident.notes {
                let _ = write!(
                    page,
                    "<li data-note=\"{}\">{} UTC · {}{}</li>",
                    note.id,
                    utc(note.at),
                    note_summary(note, language),
                    note.who
                        .as_deref()
                        .map(|w| format!(" — {}", escape(w)))
                        .unwrap_or_default()
                );
            }
            page.push_str("</ul>");
        }
        page.push_str("</div>");
    }
}

fn note_form(page: &mut String, name: &str, incidents: &[IncidentRecord], language: Language) {
    let t = |p: Phrase| p.text(language);
    let _ = write!(
        page,
        "<h3>{}</h3><form class=\"note\" id=\"note-form\" method=\"post\" action=\"/domains/{}/notes\"><label>{}<select name=\"incident\" required>",
        t(Phrase::AddNote),
        escape(name),
        t(Phrase::Incident)
    );
    for incident in incidents {
        let _ = write!(
            page,
            "<option value=\"{}\">#{} {} {} ({}, {} UTC)</option>",
            incident.id,
            incident.id,
            escape(&incident.check),
            escape(&incident.code),
            incident.state,
            utc(incident.opened_at)
        );
    }
    let _ = write!(
        page,
        "</select></label><label>{}<select name=\"channel\">",
        t(Phrase::Channel)
    );
    for channel in Channel::ALL {
        let _ = write!(page, "<option>{}</option>", channel.as_str());
    }
    let _ = write!(
        page,
        "</select></label><label>{}<input name=\"ticket\" maxlength=\"100\"></label>\
         <label>{}<input name=\"who\" maxlength=\"100\"></label>\
         <label>{}<input name=\"first_response_at\" maxlength=\"40\" placeholder=\"2024-05-01 10:30 +08:00\"></label>\
         <label class=\"wide\">{}<textarea name=\"text\" required maxlength=\"4000\"></textarea></label>\
         <span class=\"flags\"><label><input type=\"checkbox\" name=\"registrar\" value=\"yes\"> {}</label> \
         <label><input type=\"checkbox\" name=\"dns_provider\" value=\"yes\"> {}</label></span>\
         <span><button type=\"submit\">{}</button></span></form>",
        t(Phrase::Ticket),
        t(Phrase::Who),
        t(Phrase::FirstResponse),
        t(Phrase::StepsTaken),
        t(Phrase::RegistrarInvolved),
        t(Phrase::DnsProviderInvolved),
        t(Phrase::AddNote),
    );
}

fn check_section(
    page: &mut String,
    status: &crate::monitor::DomainStatus,
    check: crate::finding::CheckKind,
    title: &str,
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    let s = status.checks.get(&check);
    let _ = write!(
        page,
        "<h3>{check} {}</h3><div class=\"wrap\"><table>",
        State::of(s).badge(language)
    );
    if let Some(s) = s {
        for r in &s.records {
            let values: Vec<String> = r.values.iter().map(|v| escape(v)).collect();
            let ttl = r
                .ttl
                .map(|t| format!(" <span class=\"muted\">TTL {t}</span>"))
                .unwrap_or_default();
            let _ = write!(
                page,
                "<tr><th>{} ({})</th><td><code>{}</code>{ttl}</td></tr>",
                t(Phrase::Records),
                escape(&r.record),
                values.join("<br>")
            );
        }
        if let Some(error) = &s.error {
            let _ = write!(
                page,
                "<tr><th>{}</th><td>{}</td></tr>",
                t(Phrase::LastError),
                escape(error)
            );
        }
        for f in &s.findings {
            let _ = write!(
                page,
                "<tr><th><span class=\"state s-{sev}\">{sev}</span></th><td>{}: {}</td></tr>",
                code_html(f.code.as_str(), language),
                finding_text(f.code.as_str(), &f.message, language),
                sev = f.severity
            );
        }
    }
    match status.baseline.get(&check) {
        Some(baseline) => {
            let values: Vec<String> = baseline.iter().map(|v| escape(v)).collect();
            let _ = write!(
                page,
                "<tr><th>{}</th><td><code>{}</code><br><span class=\"muted\">{}: <code>maildrift baseline accept {title} --check {check}</code></span></td></tr>",
                t(Phrase::LearnedBaseline),
                values.join("<br>"),
                t(Phrase::AcceptHint)
            );
        }
        None if s.is_some() => {
            let _ = write!(
                page,
                "<tr><th>{}</th><td>{}</td></tr>",
                t(Phrase::ComparedWith),
                t(Phrase::DeclaredExpectation)
            );
        }
        None => {}
    }
    page.push_str("</table></div>");
}

/// The note form as posted (every field a string; empty means absent).
#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    incident: String,
    channel: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    who: String,
    #[serde(default)]
    first_response_at: String,
    text: String,
    #[serde(default)]
    registrar: Option<String>,
    #[serde(default)]
    dns_provider: Option<String>,
}

/// `POST /domains/{domain}/notes`: adds the note, then back to the incident on the page.
pub(crate) async fn add_note_form(
    AxumState(state): AxumState<Arc<AppState>>,
    Extension(forced): Extension<PageLanguage>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<NoteForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let language = page_language(forced.0, &headers);
    let name = crate::dns::names::lookup_name(&name);
    if state.monitor.domain(&name).is_none() {
        return not_found(&name, language);
    }
    let refused = |status: StatusCode, message: String| {
        let mut page = page_start("maildrift", language, "");
        let _ = write!(
            page,
            "<h1>{}</h1><p>{}</p><p><a href=\"/domains/{n}\">← {n}</a></p></body></html>",
            Phrase::NoteNotAdded.text(language),
            escape(&message),
            n = escape(&name)
        );
        (status, Html(page)).into_response()
    };
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return refused(rejection.status(), rejection.body_text()),
    };
    let fields = form
        .incident
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{:?} is not an incident id", form.incident))
        .and_then(|id| {
            let at = first_response(&serde_json::Value::String(form.first_response_at.clone()))?;
            let fields = NoteFields::new(
                &form.channel,
                Some(&form.ticket),
                Some(&form.who),
                &form.text,
                at,
                (form.registrar.is_some(), form.dns_provider.is_some()),
            )?;
            Ok((id, fields))
        });
    let (id, fields) = match fields {
        Ok(parsed) => parsed,
        Err(message) => return refused(StatusCode::BAD_REQUEST, message),
    };
    match add_note(&state, id, Some(&name), fields).await {
        Ok((_, note)) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!("/domains/{name}?note={}#incident-{id}", note.id),
            )],
        )
            .into_response(),
        Err(NoteError::NotFound(id)) => {
            refused(StatusCode::NOT_FOUND, format!("no incident {id} of {name}"))
        }
        Err(NoteError::Unavailable) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            Phrase::StoreUnavailable.text(language).to_owned(),
        ),
        Err(NoteError::Failed(message)) => refused(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}
