//! `GET /`: the fleet overview for thousands of domains: this instance's (`scope=shard`,
//! the default, from its monitor) or the whole fleet's (`scope=fleet`, every shard's state
//! summed up by the shared store). A grid of counts per check and
//! state, the open incidents of the last 24 hours as a sparkline, and the domain table
//! filtered (`q`: name substring or `label=value`; `check`, `state`), sorted (`sort`:
//! `state`, `age`, `domain`; `dir`) and paginated (`page`, `per`) on the server, every
//! setting in the query string so a URL can be pasted into a ticket. A meta refresh
//! reloads the same URL, so the position is kept; no script is needed to read it.

use super::filter::{Filter, search_form};
use super::svg::{open_counts, sparkline};
use super::table::{Listed, Row, domain_table, pagination, sort_rows};
use super::{
    State, bad_request, code_html, escape, page_language, page_start, scope_switch, timeline_table,
};
use crate::finding::CheckKind;
use crate::http::api::Scope;
use crate::http::times::age;
use crate::http::{AppState, PageLanguage, TelemetryPath};
use crate::i18n::{Language, Phrase};
use crate::monitor::fleet;
use crate::state::{CheckSummary, EventQuery, OpenSummary, StoredEvent, unix_seconds};
use axum::Extension;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Seconds between the page's own reloads.
const REFRESH_SECONDS: u32 = 60;
/// Open incidents listed under the table (the oldest first).
const INCIDENTS_LISTED: usize = 10;

/// Where a state sits in [`State::ALL`] (the grid's columns).
fn slot(state: State) -> usize {
    State::ALL.iter().position(|s| *s == state).unwrap_or(0)
}

/// What the store gives the overview, read at once.
#[derive(Default)]
struct Stored {
    events: Vec<StoredEvent>,
    open: OpenSummary,
    changes: Vec<(f64, bool)>,
    /// Every domain's check states summed up (the fleet scope only).
    summaries: Vec<CheckSummary>,
}

/// The fleet scope without its store: 503, with the way back to this instance's domains.
fn fleet_unavailable(language: Language) -> Response {
    let t = |p: Phrase| p.text(language);
    let mut page = page_start("maildrift", language, "");
    let _ = write!(
        page,
        "<h1>maildrift</h1><p><strong>{}</strong></p><p><a href=\"/\">{}</a></p></body></html>",
        t(Phrase::FleetUnavailable),
        t(Phrase::ScopeShard)
    );
    (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
}

pub(crate) async fn index(
    AxumState(state): AxumState<Arc<AppState>>,
    Extension(metrics): Extension<TelemetryPath>,
    Extension(forced): Extension<PageLanguage>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let started = Instant::now();
    let language = page_language(forced.0, &headers);
    let t = |p: Phrase| p.text(language);
    let checks: Vec<CheckKind> = state.monitor.checks().kinds().collect();
    let parsed = query
        .map_err(|e| e.body_text())
        .and_then(|Query(pairs)| Filter::parse(&pairs, &checks));
    let filter = match parsed {
        Ok(filter) => filter,
        Err(message) => {
            return bad_request(&message, "/", Phrase::AllDomains.text(language), language);
        }
    };
    let scope = filter.scope;
    let now_time = SystemTime::now();
    let now = unix_seconds(now_time);
    let day_ago = now_time - Duration::from_secs(86_400);
    let own = state.store_domains(scope);
    let read = state
        .state
        .read(move |store| {
            let events = store.events(&EventQuery {
                limit: 20,
                domains: own.clone(),
                ..EventQuery::default()
            })?;
            Ok(Stored {
                events,
                open: store.open_summary(INCIDENTS_LISTED, own.as_deref())?,
                changes: store.incident_changes(day_ago, 200_000, own.as_deref())?,
                summaries: match scope {
                    Scope::Fleet => store.check_summaries()?,
                    Scope::Shard => Vec::new(),
                },
            })
        })
        .await;
    let persistent = matches!(read, Some(Ok(_)));
    if scope == Scope::Fleet && !persistent {
        if let Some(Err(error)) = &read {
            tracing::warn!(%error, "cannot read the fleet from the state store");
        }
        return fleet_unavailable(language);
    }
    let Stored {
        events,
        open,
        changes,
        summaries,
    } = read.and_then(Result::ok).unwrap_or_default();
    // Since when each domain (and each of its checks) has an incident open.
    let mut oldest: HashMap<(&str, Option<&str>), f64> = HashMap::new();
    for (domain, check, since) in &open.since {
        oldest.insert((domain.as_str(), Some(check.as_str())), *since);
        let first = oldest.entry((domain.as_str(), None)).or_insert(*since);
        *first = first.min(*since);
    }

    let domains = state.monitor.domains();
    let roster = state.monitor.roster();
    let fleet_rows = match scope {
        Scope::Fleet => fleet::rows(&roster, summaries),
        Scope::Shard => Vec::new(),
    };
    let listed: Vec<Listed<'_>> = match scope {
        Scope::Shard => domains
            .iter()
            .filter(|d| filter.matches(&d.config.name, Some(&d.config.labels)))
            .map(|d| {
                let (states, checked) = d.inspect(|s| {
                    let states = checks.iter().map(|c| State::of(s.checks.get(c))).collect();
                    (states, s.last_checked.map(unix_seconds))
                });
                Listed {
                    name: &d.config.name,
                    labels: Some(&d.config.labels),
                    skip: &d.config.skip,
                    states,
                    checked,
                }
            })
            .collect(),
        Scope::Fleet => fleet_rows
            .iter()
            .filter(|r| filter.matches(&r.name, r.member.map(|m| &m.labels)))
            .map(|r| Listed {
                name: &r.name,
                labels: r.member.map(|m| &m.labels),
                skip: r.member.map_or(&[], |m| &m.skip),
                states: checks
                    .iter()
                    .map(|c| State::of_summary(r.checks.get(c)))
                    .collect(),
                checked: r.stored_at,
            })
            .collect(),
    };
    let total = match scope {
        Scope::Shard => domains.len(),
        Scope::Fleet => fleet_rows.len(),
    };
    let mut counts = vec![[0usize; State::ALL.len()]; checks.len() + 1];
    let mut rows = Vec::new();
    let column = filter
        .check
        .and_then(|c| checks.iter().position(|k| *k == c));
    for domain in listed {
        let worst = domain
            .states
            .iter()
            .copied()
            .max()
            .unwrap_or(State::Pending);
        for (i, s) in domain.states.iter().enumerate() {
            counts[i][slot(*s)] += 1;
        }
        counts[checks.len()][slot(worst)] += 1;
        let shown = column.map_or(worst, |i| domain.states[i]);
        if filter.state.is_some_and(|s| s != shown) {
            continue;
        }
        let since = oldest
            .get(&(domain.name, filter.check.map(|c| c.as_str())))
            .copied();
        rows.push(Row {
            domain,
            state: shown,
            since,
        });
    }
    let matched: usize = counts[checks.len()].iter().sum();
    sort_rows(&mut rows, filter.sort, filter.descending);
    let pages = rows.len().div_ceil(filter.per).max(1);
    let page_number = filter.page.min(pages);
    let shown = &rows[((page_number - 1) * filter.per).min(rows.len())
        ..(page_number * filter.per).min(rows.len())];

    let refresh = format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">");
    let mut page = page_start("maildrift", language, &refresh);
    let ready = state.ready.load(Ordering::Acquire);
    let _ = write!(
        page,
        "<h1>maildrift</h1><p>{total} {}; {}{}. <a href=\"{}\">{}</a> · <a href=\"/api/v1/domains{q}\">API</a> · <a href=\"/api/v1/events{q}\">{}</a></p>",
        t(match scope {
            Scope::Shard => Phrase::DomainsWatched,
            Scope::Fleet => Phrase::DomainsInFleet,
        }),
        t(if ready {
            Phrase::FirstRoundFinished
        } else {
            Phrase::FirstRoundRunning
        }),
        match (persistent, state.state.writer.is_configured()) {
            (true, _) => String::new(),
            (false, true) => format!("; <strong>{}</strong>", t(Phrase::StoreUnavailable)),
            (false, false) => format!("; {}", t(Phrase::NoStateDir)),
        },
        escape(&metrics.0),
        t(Phrase::Metrics),
        t(Phrase::Events),
        q = scope.query(),
    );
    // The other scope keeps the search, from its first page.
    scope_switch(&mut page, scope, language, |other| {
        Some(filter.url(|f| {
            f.scope = other;
            f.page = 1;
        }))
    });
    page.push_str("<div class=\"top\"><div>");
    counts_grid(&mut page, &filter, &checks, &counts, language);
    page.push_str("</div><div>");
    let _ = write!(page, "<h2>{}</h2>", t(Phrase::OpenIncidents24h));
    let counts_24h = open_counts(now - 86_400.0, now, open.count, &changes);
    page.push_str(&sparkline(&counts_24h, open.count, language));
    let _ = write!(
        page,
        "<p class=\"muted\">{} {} · {} {}</p></div></div>",
        t(Phrase::Now),
        open.count,
        t(Phrase::Peak),
        counts_24h.iter().max().unwrap_or(&0)
    );

    let _ = write!(page, "<h2>{}</h2>", t(Phrase::Domains));
    search_form(&mut page, &filter, &checks, language);
    let pager = pagination(&filter, page_number, pages, rows.len(), matched, language);
    page.push_str(&pager);
    domain_table(&mut page, &filter, &checks, shown, now, language);
    page.push_str(&pager);

    let _ = write!(page, "<h2>{}</h2>", t(Phrase::OldestOpenIncidents));
    if open.oldest.is_empty() {
        let _ = write!(page, "<p class=\"muted\">{}</p>", t(Phrase::None));
    } else {
        let _ = write!(
            page,
            "<div class=\"wrap\"><table id=\"incidents\" class=\"stack\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            t(Phrase::Domain),
            t(Phrase::Check),
            t(Phrase::Finding),
            t(Phrase::Age),
            t(Phrase::What)
        );
        for incident in &open.oldest {
            let name = escape(&incident.domain);
            let severity = incident.severity.as_deref().unwrap_or("info");
            let _ = write!(
                page,
                "<tr><td><a href=\"/domains/{name}{}#incident-{id}\">{name}</a></td><td>{}</td><td><span class=\"state s-{}\">{}</span> {}</td><td>{}</td><td class=\"msg\">{}</td></tr>",
                scope.query(),
                escape(&incident.check),
                escape(severity),
                escape(severity),
                code_html(&incident.code, language),
                age(now - incident.opened_at),
                super::finding_text(&incident.code, &incident.message, language),
                id = incident.id,
            );
        }
        page.push_str("</tbody></table></div>");
    }
    let _ = write!(page, "<h2>{}</h2>", t(Phrase::LastChanges));
    timeline_table(&mut page, &events, &[], Some(scope), language);
    page.push_str("</body></html>");

    let mut response = Html(page).into_response();
    let timing = format!("render;dur={:.1}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

fn counts_grid(
    page: &mut String,
    filter: &Filter,
    checks: &[CheckKind],
    counts: &[[usize; 6]],
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    let _ = write!(
        page,
        "<h2>{}</h2><div class=\"wrap\"><table id=\"counts\"><thead><tr><th class=\"check\">{}</th>",
        t(Phrase::StateByCheck),
        t(Phrase::Check)
    );
    for state in State::ALL {
        let _ = write!(page, "<th>{}</th>", state.badge(language));
    }
    page.push_str("</tr></thead><tbody>");
    let every = t(Phrase::AllChecks);
    for (i, row) in counts.iter().enumerate() {
        let check = checks.get(i).copied();
        let name = check.map_or(every, CheckKind::as_str);
        let _ = write!(
            page,
            "<tr data-check=\"{}\"><th class=\"check\">{name}</th>",
            check.map_or("", CheckKind::as_str)
        );
        for (state, count) in State::ALL.iter().zip(row) {
            if *count == 0 {
                page.push_str("<td class=\"zero\">0</td>");
                continue;
            }
            let link = filter.url(|f| {
                f.check = check;
                f.state = Some(*state);
                f.page = 1;
            });
            let _ = write!(
                page,
                "<td data-state=\"{}\"><a href=\"{}\">{count}</a></td>",
                state.as_str(),
                escape(&link)
            );
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table></div>");
}
