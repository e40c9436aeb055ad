//! `GET /` and `GET /domains/{domain}`: server-rendered status pages (no scripts, no
//! external assets), readable on a laptop and a phone. State is colour plus text.

use super::AppState;
use super::api::domain_history;
use crate::finding::Severity;
use crate::monitor::CheckStatus;
use crate::state::{EventQuery, StoredEvent, unix_seconds};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = concat!(
    "body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:72rem;padding:0 .75rem;color:#222;line-height:1.4}",
    "h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}",
    ".wrap{overflow-x:auto}table{border-collapse:collapse;width:100%}",
    "td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}",
    "th{background:#f4f4f4}code{font-size:.9em;word-break:break-all}",
    ".state{font-weight:600;white-space:nowrap;border-radius:.25rem;padding:.1rem .4rem}",
    ".ok{color:#0d5c22;background:#e3f5e8}.drift,.critical{color:#fff;background:#b00020}",
    ".findings,.warning{color:#5c4400;background:#fff1c2}.unknown{color:#5c4400;background:#f1e6c8}",
    ".pending,.info{color:#444;background:#eee}.muted{color:#666}",
    "@media (max-width:640px){body{margin:.5rem auto;font-size:15px}td,th{padding:.25rem .3rem}.wide{display:none}",
    ".stack thead{display:none}.stack tr{display:block;border-bottom:1px solid #ddd;padding:.3rem 0}",
    ".stack td{display:inline-block;border:0;padding:.1rem .3rem}.stack td.msg{display:block}}"
);

fn page_start(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// `YYYY-MM-DD HH:MM:SS` UTC of unix seconds.
pub(crate) fn utc(seconds: f64) -> String {
    let secs = seconds.max(0.0) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A short age: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub(crate) fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn cell(status: Option<&CheckStatus>) -> (&'static str, &'static str) {
    match status {
        None => ("pending", "pending"),
        Some(s) if s.drift => ("drift", "DRIFT"),
        Some(s) if !s.success => ("unknown", "unknown (DNS)"),
        Some(s) if s.findings.iter().all(|f| f.severity == Severity::Info) => ("ok", "ok"),
        Some(s) if s.findings.iter().any(|f| f.severity == Severity::Critical) => {
            ("drift", "critical")
        }
        Some(_) => ("findings", "warning"),
    }
}

fn events_table(page: &mut String, events: &[StoredEvent], with_domain: bool) {
    if events.is_empty() {
        page.push_str("<p class=\"muted\">No events recorded.</p>");
        return;
    }
    page.push_str("<div class=\"wrap\"><table class=\"stack\"><thead><tr><th>time (UTC)</th>");
    if with_domain {
        page.push_str("<th>domain</th>");
    }
    page.push_str("<th>check</th><th>event</th><th>what</th><th class=\"wide\">asked</th></tr></thead><tbody>");
    for e in events {
        let class = e.severity.as_deref().unwrap_or("info");
        let _ = write!(page, "<tr><td>{}</td>", utc(e.at));
        if with_domain {
            let d = escape(&e.domain);
            let _ = write!(page, "<td><a href=\"/domains/{d}\">{d}</a></td>");
        }
        let label = match &e.code {
            Some(code) => format!("{} {}", e.kind, code),
            None => e.kind.replace('_', " "),
        };
        let resolved = e
            .resolution_seconds
            .map(|s| format!(" <span class=\"muted\">(open {})</span>", age(s)))
            .unwrap_or_default();
        let _ = write!(
            page,
            "<td>{}</td><td><span class=\"state {class}\">{}</span></td><td class=\"msg\">{}{resolved}</td><td class=\"wide muted\">{}</td></tr>",
            escape(&e.check),
            escape(&label),
            escape(&e.message),
            escape(e.server.as_deref().unwrap_or(""))
        );
    }
    page.push_str("</tbody></table></div>");
}

pub(crate) async fn index(
    State(state): State<Arc<AppState>>,
    Extension(metrics): Extension<super::TelemetryPath>,
) -> Html<String> {
    let now = unix_seconds(SystemTime::now());
    let recent = state
        .state
        .read(|store| {
            let events = store.events(&EventQuery {
                limit: 20,
                ..EventQuery::default()
            })?;
            Ok((events, store.incidents(None)?))
        })
        .await;
    let persistent = matches!(recent, Some(Ok(_)));
    let (events, incidents) = recent.and_then(Result::ok).unwrap_or_default();
    let opened: HashMap<(&str, &str, &str), f64> = incidents
        .iter()
        .map(|i| {
            (
                (i.domain.as_str(), i.check.as_str(), i.code.as_str()),
                i.opened_at,
            )
        })
        .collect();

    let mut page = page_start("maildrift");
    page.push_str("<h1>maildrift</h1>");
    let ready = state.ready.load(Ordering::Acquire);
    let domains = state.monitor.domains();
    let _ = write!(
        page,
        "<p>{} domains watched; {}{}. <a href=\"{}\">metrics</a> · <a href=\"/api/v1/domains\">API</a> · <a href=\"/api/v1/events\">events</a></p>",
        domains.len(),
        if ready {
            "first round finished"
        } else {
            "first round running"
        },
        match (persistent, state.state.writer.is_configured()) {
            (true, _) => "",
            (false, true) => "; <strong>state store unavailable: no history</strong>",
            (false, false) => "; no state directory: history is not kept",
        },
        escape(&metrics.0),
    );

    let mut open_rows = String::new();
    page.push_str(
        "<h2>Domains</h2><div class=\"wrap\"><table id=\"domains\"><thead><tr><th>domain</th>",
    );
    let checks: Vec<_> = state.monitor.checks().kinds().collect();
    for check in &checks {
        let _ = write!(page, "<th>{check}</th>");
    }
    page.push_str("<th class=\"wide\">last checked</th></tr></thead><tbody>");
    for domain in &domains {
        let status = domain.status();
        let name = escape(&domain.config.name);
        let shown = escape(&crate::dns::names::display_name(&domain.config.name));
        let _ = write!(
            page,
            "<tr class=\"domain-row\" data-domain=\"{name}\"><td><a href=\"/domains/{name}\">{shown}</a></td>"
        );
        for check in &checks {
            let (class, text) = if domain.config.skip.contains(check) {
                ("pending", "skipped")
            } else {
                cell(status.checks.get(check))
            };
            let _ = write!(page, "<td><span class=\"state {class}\">{text}</span></td>");
        }
        let checked = status
            .last_checked
            .map(|t| format!("{} ago", age(now - unix_seconds(t))))
            .unwrap_or_else(|| "never".into());
        let _ = write!(page, "<td class=\"wide muted\">{checked}</td></tr>");
        for (check, s) in &status.checks {
            for f in &s.findings {
                let since = opened
                    .get(&(domain.config.name.as_str(), check.as_str(), f.code.as_str()))
                    .map(|at| age(now - at))
                    .unwrap_or_else(|| "?".into());
                let _ = write!(
                    open_rows,
                    "<tr><td><a href=\"/domains/{name}\">{name}</a></td><td>{check}</td><td><span class=\"state {sev}\">{sev} {code}</span></td><td>{since}</td><td class=\"msg\">{msg}</td></tr>",
                    sev = f.severity,
                    code = f.code,
                    msg = escape(&f.message)
                );
            }
        }
    }
    page.push_str("</tbody></table></div><h2>Open incidents</h2>");
    if open_rows.is_empty() {
        page.push_str("<p class=\"muted\">None.</p>");
    } else {
        let _ = write!(
            page,
            "<div class=\"wrap\"><table id=\"incidents\" class=\"stack\"><thead><tr><th>domain</th><th>check</th><th>finding</th><th>age</th><th>message</th></tr></thead><tbody>{open_rows}</tbody></table></div>"
        );
    }
    page.push_str("<h2>Last changes</h2>");
    events_table(&mut page, &events, true);
    page.push_str("</body></html>");
    Html(page)
}

pub(crate) async fn domain_page(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let name = crate::dns::names::lookup_name(&name);
    let Some(domain) = state.monitor.domain(&name) else {
        let mut page = page_start("maildrift: not found");
        let _ = write!(
            page,
            "<h1>{} is not watched</h1><p><a href=\"/\">all domains</a></p></body></html>",
            escape(&name)
        );
        return (StatusCode::NOT_FOUND, Html(page)).into_response();
    };
    let (events, _) = domain_history(&state, &name, 100).await;
    let status = domain.status();
    let title = escape(&name);
    let shown = crate::dns::names::display_name(&name);
    let mut page = page_start(&format!("maildrift: {shown}"));
    let _ = write!(
        page,
        "<p><a href=\"/\">← all domains</a></p><h1>{}</h1><p class=\"muted\">every {:?}; asked: {}. <a href=\"/api/v1/domains/{title}\">JSON</a></p>",
        escape(&shown),
        domain.config.interval,
        escape(&crate::monitor::asked(&domain.config)),
    );
    for check in state.monitor.checks().kinds() {
        if domain.config.skip.contains(&check) {
            let _ = write!(
                page,
                "<h2>{check} <span class=\"state pending\">skipped</span></h2>"
            );
            continue;
        }
        let s = status.checks.get(&check);
        let (class, text) = cell(s);
        let _ = write!(
            page,
            "<h2>{check} <span class=\"state {class}\">{text}</span></h2><div class=\"wrap\"><table>"
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
                    "<tr><th>records ({})</th><td><code>{}</code>{ttl}</td></tr>",
                    r.record,
                    values.join("<br>")
                );
            }
            if let Some(error) = &s.error {
                let _ = write!(
                    page,
                    "<tr><th>last error</th><td>{}</td></tr>",
                    escape(error)
                );
            }
            for f in &s.findings {
                let _ = write!(
                    page,
                    "<tr><th><span class=\"state {sev}\">{sev}</span></th><td><code>{}</code>: {}</td></tr>",
                    f.code,
                    escape(&f.message),
                    sev = f.severity
                );
            }
        }
        match status.baseline.get(&check) {
            Some(baseline) => {
                let values: Vec<String> = baseline.iter().map(|v| escape(v)).collect();
                let _ = write!(
                    page,
                    "<tr><th>learned baseline</th><td><code>{}</code><br><span class=\"muted\">accept the current records: <code>maildrift baseline accept {title} --check {check}</code></span></td></tr>",
                    values.join("<br>")
                );
            }
            None if s.is_some() => {
                page.push_str(
                    "<tr><th>compared with</th><td>the expectation in the config</td></tr>",
                );
            }
            None => {}
        }
        page.push_str("</table></div>");
    }
    page.push_str("<h2>Timeline</h2>");
    events_table(&mut page, &events, false);
    page.push_str("</body></html>");
    Html(page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ages() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000.0), "2023-11-14 22:13:20");
        assert_eq!(age(59.0), "59s");
        assert_eq!(age(3_725.0), "1h 2m");
        assert_eq!(age(2.0 * 86_400.0 + 7_200.0), "2d 2h");
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
