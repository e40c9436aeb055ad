//! `GET /`: the fleet overview for thousands of domains. A grid of counts per check and
//! state, the open incidents of the last 24 hours as a sparkline, and the domain table
//! filtered (`q`: name substring or `label=value`; `check`, `state`), sorted (`sort`:
//! `state`, `age`, `domain`; `dir`) and paginated (`page`, `per`) on the server, every
//! setting in the query string so a URL can be pasted into a ticket. A meta refresh
//! reloads the same URL, so the position is kept; no script is needed to read it.

use super::filter::{Filter, Sort, search_form};
use super::svg::{open_counts, sparkline};
use super::{State, code_html, escape, page_language, page_start, timeline_table};
use crate::finding::CheckKind;
use crate::http::times::age;
use crate::http::{AppState, PageLanguage, TelemetryPath};
use crate::i18n::{Language, Phrase};
use crate::monitor::WatchedDomain;
use crate::state::{EventQuery, unix_seconds};
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

/// One domain in the table.
struct Row {
    domain: Arc<WatchedDomain>,
    states: Vec<State>,
    /// The state shown and sorted by: the filtered check's, else the worst.
    state: State,
    /// Since when its oldest open incident (of the filtered check) is open.
    since: Option<f64>,
    checked: Option<f64>,
}

/// Where a state sits in [`State::ALL`] (the grid's columns).
fn slot(state: State) -> usize {
    State::ALL.iter().position(|s| *s == state).unwrap_or(0)
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
            let mut page = page_start("maildrift", language, "");
            let _ = write!(
                page,
                "<h1>{}</h1><p>{}</p><p><a href=\"/\">{}</a></p></body></html>",
                t(Phrase::BadRequest),
                escape(&message),
                t(Phrase::AllDomains)
            );
            return (StatusCode::BAD_REQUEST, Html(page)).into_response();
        }
    };
    let now_time = SystemTime::now();
    let now = unix_seconds(now_time);
    let day_ago = now_time - Duration::from_secs(86_400);
    let recent = state
        .state
        .read(move |store| {
            let events = store.events(&EventQuery {
                limit: 20,
                ..EventQuery::default()
            })?;
            let changes = store.incident_changes(day_ago, 200_000)?;
            Ok((events, store.open_summary(INCIDENTS_LISTED)?, changes))
        })
        .await;
    let persistent = matches!(recent, Some(Ok(_)));
    let (events, open, changes) = recent.and_then(Result::ok).unwrap_or_default();
    // Since when each domain (and each of its checks) has an incident open.
    let mut oldest: HashMap<(&str, Option<&str>), f64> = HashMap::new();
    for (domain, check, since) in &open.since {
        oldest.insert((domain.as_str(), Some(check.as_str())), *since);
        let first = oldest.entry((domain.as_str(), None)).or_insert(*since);
        *first = first.min(*since);
    }

    let domains = state.monitor.domains();
    let mut counts = vec![[0usize; State::ALL.len()]; checks.len() + 1];
    let mut rows = Vec::new();
    let column = filter
        .check
        .and_then(|c| checks.iter().position(|k| *k == c));
    for domain in domains.iter().filter(|d| filter.matches(d)) {
        let (states, checked) = domain.inspect(|s| {
            let states: Vec<State> = checks.iter().map(|c| State::of(s.checks.get(c))).collect();
            (states, s.last_checked)
        });
        let worst = states.iter().copied().max().unwrap_or(State::Pending);
        for (i, s) in states.iter().enumerate() {
            counts[i][slot(*s)] += 1;
        }
        counts[checks.len()][slot(worst)] += 1;
        let shown = column.map_or(worst, |i| states[i]);
        if filter.state.is_some_and(|s| s != shown) {
            continue;
        }
        let since = oldest
            .get(&(
                domain.config.name.as_str(),
                filter.check.map(|c| c.as_str()),
            ))
            .copied();
        rows.push(Row {
            domain: domain.clone(),
            states,
            state: shown,
            since,
            checked: checked.map(unix_seconds),
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
        "<h1>maildrift</h1><p>{} {}; {}{}. <a href=\"{}\">{}</a> · <a href=\"/api/v1/domains\">API</a> · <a href=\"/api/v1/events\">{}</a></p>",
        domains.len(),
        t(Phrase::DomainsWatched),
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
    );
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
                "<tr><td><a href=\"/domains/{name}#incident-{id}\">{name}</a></td><td>{}</td><td><span class=\"state s-{}\">{}</span> {}</td><td>{}</td><td class=\"msg\">{}</td></tr>",
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
    timeline_table(&mut page, &events, &[], true, language);
    page.push_str("</body></html>");

    let mut response = Html(page).into_response();
    let timing = format!("render;dur={:.1}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

fn sort_rows(rows: &mut [Row], sort: Sort, descending: bool) {
    use std::cmp::Ordering as O;
    let by_age = |a: &Row, b: &Row| match (a.since, b.since) {
        // Oldest (smallest opening time) is the greatest age.
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => O::Greater,
        (None, Some(_)) => O::Less,
        (None, None) => O::Equal,
    };
    rows.sort_by(|a, b| {
        let primary = match sort {
            Sort::State => a.state.cmp(&b.state).then_with(|| by_age(a, b)),
            Sort::Age => by_age(a, b).then_with(|| a.state.cmp(&b.state)),
            Sort::Domain => O::Equal,
        };
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        let by_name = a.domain.config.name.cmp(&b.domain.config.name);
        let by_name = if sort == Sort::Domain && descending {
            by_name.reverse()
        } else {
            by_name
        };
        primary.then(by_name)
    });
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

fn pagination(
    filter: &Filter,
    page: usize,
    pages: usize,
    rows: usize,
    matched: usize,
    language: Language,
) -> String {
    let t = |p: Phrase| p.text(language);
    let first = if rows == 0 {
        0
    } else {
        (page - 1) * filter.per + 1
    };
    let last = (page * filter.per).min(rows);
    let mut out = format!(
        "<p class=\"pages\" data-page=\"{page}\" data-pages=\"{pages}\" data-rows=\"{rows}\"><span>{first}–{last} / {rows}"
    );
    if rows != matched {
        let _ = write!(out, " ({matched} {})", t(Phrase::Matched));
    }
    out.push_str("</span>");
    let link = |out: &mut String, to: usize, rel: &str, text: &str| {
        let url = filter.url(|f| f.page = to);
        let _ = write!(out, "<a rel=\"{rel}\" href=\"{}\">{text}</a>", escape(&url));
    };
    if page > 1 {
        link(&mut out, 1, "first", t(Phrase::FirstPage));
        link(&mut out, page - 1, "prev", t(Phrase::PreviousPage));
    }
    let _ = write!(out, "<span>{} {page} / {pages}</span>", t(Phrase::Page));
    if page < pages {
        link(&mut out, page + 1, "next", t(Phrase::NextPage));
        link(&mut out, pages, "last", t(Phrase::LastPage));
    }
    out.push_str("</p>");
    out
}

fn domain_table(
    page: &mut String,
    filter: &Filter,
    checks: &[CheckKind],
    rows: &[Row],
    now: f64,
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    let header = |sort: Sort, text: &str| {
        let (descending, mark) = if filter.sort == sort {
            (
                !filter.descending,
                if filter.descending { " ▼" } else { " ▲" },
            )
        } else {
            (sort.descending_by_default(), "")
        };
        let url = filter.url(|f| {
            f.sort = sort;
            f.descending = descending;
            f.page = 1;
        });
        format!("<a href=\"{}\">{text}</a>{mark}", escape(&url))
    };
    let state_title = match filter.check {
        Some(check) => format!("{} ({check})", t(Phrase::State)),
        None => t(Phrase::State).to_owned(),
    };
    let _ = write!(
        page,
        "<div class=\"wrap\"><table id=\"domains\"><thead><tr><th>{}</th><th>{}</th>",
        header(Sort::Domain, t(Phrase::Domain)),
        header(Sort::State, &state_title)
    );
    for check in checks {
        let _ = write!(page, "<th class=\"c wide-col\">{check}</th>");
    }
    let _ = write!(
        page,
        "<th>{}</th><th class=\"wide-col\">{}</th></tr></thead><tbody>",
        header(Sort::Age, t(Phrase::Age)),
        t(Phrase::LastChecked)
    );
    for row in rows {
        let name = escape(&row.domain.config.name);
        let shown = escape(&crate::dns::names::display_name(&row.domain.config.name));
        let _ = write!(
            page,
            "<tr class=\"domain-row\" data-domain=\"{name}\" data-state=\"{}\"><td><a href=\"/domains/{name}\">{shown}</a>",
            row.state.as_str()
        );
        for (key, value) in &row.domain.config.labels {
            let _ = write!(
                page,
                "<span class=\"label\">{}={}</span>",
                escape(key),
                escape(value)
            );
        }
        let _ = write!(page, "</td><td>{}</td>", row.state.badge(language));
        for (check, state) in checks.iter().zip(&row.states) {
            if row.domain.config.skip.contains(check) {
                let _ = write!(
                    page,
                    "<td class=\"c s-pending wide-col\" title=\"{check}\">{}</td>",
                    t(Phrase::StateSkipped)
                );
                continue;
            }
            let _ = write!(
                page,
                "<td class=\"c s-{} wide-col\" title=\"{check}: {}\">{}</td>",
                state.as_str(),
                state.label(language),
                state.short(language)
            );
        }
        let since = row.since.map(|at| age(now - at)).unwrap_or_default();
        let checked = row
            .checked
            .map(|at| format!("{} {}", age(now - at), t(Phrase::Ago)))
            .unwrap_or_else(|| t(Phrase::Never).to_owned());
        let _ = write!(
            page,
            "<td>{since}</td><td class=\"wide-col muted\">{checked}</td></tr>"
        );
    }
    if rows.is_empty() {
        let _ = write!(
            page,
            "<tr><td colspan=\"{}\" class=\"muted\">{}</td></tr>",
            checks.len() + 4,
            t(Phrase::NoDomainMatches)
        );
    }
    page.push_str("</tbody></table></div>");
}
