//! `GET /`: a server-rendered status page (no scripts, no external assets).

use crate::app::AppState;
use crate::finding::CheckKind;
use crate::metrics::ACTIVE_CHECKS;
use axum::extract::State;
use axum::response::Html;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

pub(crate) async fn index(State(state): State<Arc<AppState>>) -> Html<String> {
    let mut page = String::from(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>maildrift</title><style>",
        "body{font-family:system-ui,sans-serif;margin:1rem;color:#222}",
        "table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left}",
        ".ok{color:#176f2c}.drift{color:#b00020;font-weight:bold}.unknown{color:#8a6d00}.pending{color:#666}",
        "</style></head><body><h1>maildrift</h1>"
    ));
    let ready = state.ready.load(Ordering::Acquire);
    let domains = state.monitor.domains();
    let _ = write!(
        page,
        "<p>{} domains watched; {}. <a href=\"/metrics\">metrics</a> · <a href=\"/api/v1/domains\">API</a></p>",
        domains.len(),
        if ready {
            "first round finished"
        } else {
            "first round running"
        }
    );
    page.push_str("<table><thead><tr><th>domain</th>");
    for check in ACTIVE_CHECKS {
        let _ = write!(page, "<th>{check}</th>");
    }
    page.push_str("<th>findings</th></tr></thead><tbody>");
    for domain in &domains {
        let status = domain.status();
        let name = escape(&domain.config.name);
        let _ = write!(
            page,
            "<tr><td><a href=\"/api/v1/domains/{name}\">{name}</a></td>"
        );
        for check in ACTIVE_CHECKS {
            let (class, text) = cell(status.checks.get(&check), check);
            let _ = write!(page, "<td class=\"{class}\">{text}</td>");
        }
        let findings: Vec<String> = status
            .checks
            .values()
            .flat_map(|c| c.findings.iter())
            .map(|f| format!("{} ({}): {}", f.code, f.severity, escape(&f.message)))
            .collect();
        let _ = write!(page, "<td>{}</td></tr>", findings.join("<br>"));
    }
    page.push_str("</tbody></table></body></html>");
    Html(page)
}

fn cell(
    status: Option<&crate::monitor::CheckStatus>,
    _check: CheckKind,
) -> (&'static str, &'static str) {
    match status {
        None => ("pending", "pending"),
        Some(s) if s.drift => ("drift", "DRIFT"),
        Some(s) if !s.success => ("unknown", "unknown (DNS)"),
        Some(s) if s.findings.is_empty() => ("ok", "ok"),
        Some(_) => ("unknown", "findings"),
    }
}
