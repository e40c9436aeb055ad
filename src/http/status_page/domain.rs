//! `GET /domains/{domain}`: one domain's checks over the last 7 days (an SVG timeline per
//! check): this instance's domain, or with `?scope=fleet` any domain of the fleet, its
//! state read from the shared store; its incidents with their notes, the form to add a note
//! (`POST /domains/{domain}/notes`, protected like every write), the records and findings
//! of each check, and the timeline of events and notes.

use super::svg::{OpenFinding, bands, timeline};
use super::{
    State, bad_request, code_html, escape, finding_text, note_summary, page_language, page_start,
    scope_switch,
};
use crate::config::DomainConfig;
use crate::finding::CheckKind;
use crate::http::api::Scope;
use crate::http::times::{age, utc};
use crate::http::{AppState, PageLanguage};
use crate::i18n::{Language, Phrase};
use crate::monitor::{DomainStatus, fleet};
use crate::state::{EventQuery, Incident, IncidentRecord, StoredEvent, StoredNote, unix_seconds};
use axum::Extension;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::{BTreeMap, HashMap};
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

pub(super) fn not_found(name: &str, language: Language) -> Response {
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

/// What the page shows of the domain, from this instance's monitor (`scope=shard`) or from
/// the shared store and the fleet's roster (`scope=fleet`).
struct Shown {
    status: DomainStatus,
    labels: Option<BTreeMap<String, String>>,
    skip: Vec<CheckKind>,
    /// The domain's config, when this instance watches it.
    config: Option<DomainConfig>,
}

/// The domain as the fleet scope shows it (`None`: neither configured nor stored; `Err`:
/// the store did not answer).
async fn from_fleet(state: &AppState, name: &str) -> Result<Option<Shown>, ()> {
    let roster = state.monitor.roster();
    let key = name.to_owned();
    let stored = match state.state.read(move |store| store.load_domain(&key)).await {
        Some(Ok(stored)) => stored,
        Some(Err(error)) => {
            tracing::warn!(domain = name, %error, "cannot read the domain from the state store");
            return Err(());
        }
        None => return Err(()),
    };
    let member = roster.get(name);
    if member.is_none() && stored.checks.is_empty() && stored.baselines.is_empty() {
        return Ok(None);
    }
    let mut status = fleet::stored_status(name, stored.checks);
    status.baseline = stored
        .baselines
        .into_iter()
        .map(|(check, values)| (check, values.into()))
        .collect();
    Ok(Some(Shown {
        status,
        labels: member.map(|m| m.labels.clone()),
        skip: member.map(|m| m.skip.clone()).unwrap_or_default(),
        config: state.monitor.domain(name).map(|d| d.config.clone()),
    }))
}

pub(crate) async fn domain_page(
    AxumState(state): AxumState<Arc<AppState>>,
    Extension(forced): Extension<PageLanguage>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let language = page_language(forced.0, &headers);
    let t = |p: Phrase| p.text(language);
    let name = crate::dns::names::lookup_name(&name);
    // `note` (after adding one) and other parameters are for the browser, not the page.
    let scope = query.map_err(|e| e.body_text()).and_then(|Query(pairs)| {
        let scope = pairs.iter().rev().find(|(k, _)| k == "scope");
        Scope::parse(scope.map(|(_, v)| v.trim()))
    });
    let scope = match scope {
        Ok(scope) => scope,
        Err(message) => {
            let back = format!("/domains/{name}");
            return bad_request(&message, &back, &name, language);
        }
    };
    let shown = match scope {
        Scope::Shard => state.monitor.domain(&name).map(|d| Shown {
            status: d.status(),
            labels: Some(d.config.labels.clone()),
            skip: d.config.skip.clone(),
            config: Some(d.config.clone()),
        }),
        Scope::Fleet => match from_fleet(&state, &name).await {
            Ok(shown) => shown,
            Err(()) => {
                let mut page = page_start("maildrift", language, "");
                let _ = write!(
                    page,
                    "<h1>{}</h1><p><strong>{}</strong></p><p><a href=\"/domains/{n}\">{}</a></p></body></html>",
                    escape(&name),
                    t(Phrase::FleetUnavailable),
                    t(Phrase::ScopeShard),
                    n = escape(&name)
                );
                return (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response();
            }
        },
    };
    let Some(shown) = shown else {
        return not_found(&name, language);
    };
    let q = scope.query();
    let now_time = SystemTime::now();
    let (now, start) = (unix_seconds(now_time), unix_seconds(now_time - WINDOW));
    let found = history(&state, &name, now_time - WINDOW).await;
    let stored = found.is_some();
    let history = found.unwrap_or_default();
    let status = &shown.status;
    let checks: Vec<_> = state.monitor.checks().kinds().collect();
    let worst = checks
        .iter()
        .map(|c| State::of(status.checks.get(c)))
        .max()
        .unwrap_or(State::Pending);
    let title = escape(&name);
    let display = crate::dns::names::display_name(&name);
    let mut page = page_start(&format!("maildrift: {display}"), language, "");
    let _ = write!(
        page,
        "<p><a href=\"/{q}\">← {}</a></p><h1>{} {}</h1>",
        t(Phrase::AllDomains),
        escape(&display),
        worst.badge(language)
    );
    super::table::labels(&mut page, shown.labels.as_ref(), language);
    page.push_str("<p class=\"muted\">");
    if let Some(config) = &shown.config {
        let _ = write!(
            page,
            "{} {:?}; {}: {}. ",
            t(Phrase::Every),
            config.interval,
            t(Phrase::Asked),
            escape(&crate::monitor::asked(config)),
        );
    }
    let _ = write!(
        page,
        "<a href=\"/api/v1/domains/{title}{q}\">JSON</a> · <a href=\"/api/v1/domains/{title}/timeline.md\">{} (Markdown)</a> · <a href=\"/api/v1/domains/{title}/timeline.csv\">CSV</a></p>",
        t(Phrase::IncidentExport),
    );
    // This instance's page of the domain exists only when it watches the domain.
    let watched = shown.config.is_some();
    scope_switch(&mut page, scope, language, |other| match other {
        Scope::Fleet => Some(format!("/domains/{name}?scope=fleet")),
        Scope::Shard => watched.then(|| format!("/domains/{name}")),
    });

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
        if shown.skip.contains(check) {
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
        super::notes::note_form(&mut page, &name, &history.incidents, language);
    }

    let _ = write!(page, "<h2>{}</h2>", t(Phrase::Checks));
    for check in &checks {
        check_section(&mut page, status, *check, &title, language);
    }
    let _ = write!(page, "<h2>{}</h2>", t(Phrase::Timeline));
    super::timeline_table(&mut page, &history.events, &history.notes, None, language);
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

fn check_section(
    page: &mut String,
    status: &DomainStatus,
    check: CheckKind,
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
