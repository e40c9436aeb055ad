//! The status pages, rendered on the server (no scripts, no external assets or fonts),
//! readable on a laptop and a phone, in English or Chinese: `GET /` the fleet overview
//! ([`overview`]), `GET /domains/{domain}` a domain's checks, timeline and incidents, and
//! the note form ([`domain`]); the SVG pictures are in [`svg`]. State is colour plus text.

mod domain;
mod filter;
mod notes;
mod overview;
mod svg;
mod table;

pub(crate) use domain::domain_page;
pub(crate) use notes::add_note_form;
pub(crate) use overview::index;

use super::times::{age, utc};
use crate::finding::{FindingCode, Severity};
use crate::http::api::Scope;
use crate::i18n::{self, Language, Phrase};
use crate::monitor::CheckStatus;
use crate::state::{CheckSummary, StoredEvent, StoredNote};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write;

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
            // Control characters from DNS data (ANSI escapes, NUL) are shown, not passed
            // to the browser: `\u{1b}`. Tabs and line breaks stay.
            c if c.is_control() && !matches!(c, '\t' | '\n') => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = concat!(
    "body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:76rem;padding:0 .75rem;color:#222;line-height:1.4}",
    "h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}a{color:#0645ad}",
    ".wrap{overflow-x:auto}table{border-collapse:collapse;width:100%}",
    "td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}",
    "th{background:#f4f4f4}code{font-size:.9em;word-break:break-all}",
    ".state{font-weight:600;white-space:nowrap;border-radius:.25rem;padding:.1rem .4rem}",
    ".s-ok{color:#0d5c22;background:#e3f5e8}.s-drift,.s-critical{color:#fff;background:#b00020}",
    ".s-warning{color:#5c4400;background:#fff1c2}.s-unknown{color:#5c4400;background:#f1e6c8}",
    ".s-pending,.s-info{color:#444;background:#eee}.muted{color:#666}.label{font-size:.8em;color:#555;background:#eef;border-radius:.2rem;padding:0 .25rem;margin-left:.3rem}",
    "#domains td.c{text-align:center;font-size:.8em;font-weight:600;padding:.3rem .2rem}#domains th.c{font-size:.75em;text-align:center}",
    ".top{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}.top>div{flex:1 1 24rem}",
    "#counts td,#counts th{text-align:right;padding:.15rem .45rem;font-variant-numeric:tabular-nums}#counts td.zero{color:#aaa}#counts th.check{text-align:left}",
    "form.search{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.5rem 0}form.search input[type=search]{flex:1 1 14rem;padding:.3rem}",
    ".pages{margin:.5rem 0}.pages a,.pages span{margin-right:.6rem}",
    "svg{display:block;width:100%;height:auto}.band.s-ok{fill:#4caf6a}.band.s-warning{fill:#f0c419}.band.s-critical,.band.s-drift{fill:#c62828}",
    ".band.s-none{fill:#ddd}.drift-mark{fill:#5a0010}.note{fill:#1f4fd6;stroke:#fff;stroke-width:1.5}.axis{fill:#666;font-size:11px}",
    ".spark{fill:none;stroke:#c62828;stroke-width:1.5}.spark-area{fill:#f6d5d5}",
    "form.note{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.5rem;background:#f8f8f8;padding:.75rem;border-radius:.3rem}",
    "form.note label{display:flex;flex-direction:column;font-size:.9em}form.note .wide{grid-column:1/-1}form.note textarea{min-height:4rem}",
    "form.note .flags label{flex-direction:row;align-items:center;gap:.3rem}",
    "@media (max-width:640px){body{margin:.5rem auto;font-size:15px}td,th{padding:.25rem .3rem}.wide-col{display:none}",
    ".stack thead{display:none}.stack tr{display:block;border-bottom:1px solid #ddd;padding:.3rem 0}",
    ".stack td{display:inline-block;border:0;padding:.1rem .3rem}.stack td.msg{display:block}}"
);

/// The page head and the opening of the body; `head` adds elements to the head (a meta
/// refresh).
fn page_start(title: &str, language: Language, head: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}\
         <title>{}</title><style>{STYLE}</style></head><body>",
        language.tag(),
        escape(title)
    )
}

/// The page of a bad query string, with a link back to `back` (shown as `back_text`).
fn bad_request(message: &str, back: &str, back_text: &str, language: Language) -> Response {
    let mut page = page_start("maildrift", language, "");
    let _ = write!(
        page,
        "<h1>{}</h1><p>{}</p><p><a href=\"{}\">{}</a></p></body></html>",
        Phrase::BadRequest.text(language),
        escape(message),
        escape(back),
        escape(back_text)
    );
    (StatusCode::BAD_REQUEST, Html(page)).into_response()
}

/// Which domains the page shows (`current`), and a link to the other scope where `link`
/// gives one (`None`: shown without a link, e.g. another shard's domain in the shard scope).
fn scope_switch(
    page: &mut String,
    current: Scope,
    language: Language,
    link: impl Fn(Scope) -> Option<String>,
) {
    let t = |p: Phrase| p.text(language);
    let name = match current {
        Scope::Shard => "shard",
        Scope::Fleet => "fleet",
    };
    let _ = write!(
        page,
        "<p class=\"scope\" data-scope=\"{name}\">{}: ",
        t(Phrase::Scope)
    );
    for (scope, phrase) in [
        (Scope::Shard, Phrase::ScopeShard),
        (Scope::Fleet, Phrase::ScopeFleet),
    ] {
        if scope == Scope::Fleet {
            page.push_str(" · ");
        }
        match link(scope) {
            _ if scope == current => {
                let _ = write!(page, "<strong>{}</strong>", t(phrase));
            }
            Some(url) => {
                let _ = write!(page, "<a href=\"{}\">{}</a>", escape(&url), t(phrase));
            }
            None => {
                let _ = write!(page, "<span class=\"muted\">{}</span>", t(phrase));
            }
        }
    }
    page.push_str("</p>");
}

/// The language of a page: `--web.language` when given, else the browser's preference.
fn page_language(forced: Option<Language>, headers: &HeaderMap) -> Language {
    forced.unwrap_or_else(|| {
        i18n::negotiate(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    })
}

/// What a check (or a domain) is now, most severe last (the order sorting uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum State {
    /// Conclusive, nothing above `info`.
    Ok,
    /// Not checked yet.
    Pending,
    /// DNS gave no conclusive answer (the last findings are kept).
    Unknown,
    /// Findings of `warning` severity.
    Warning,
    /// Findings of `critical` severity.
    Critical,
    /// Differs from the expectation or learned baseline.
    Drift,
}

impl State {
    /// In the order the overview's grid shows them.
    pub(crate) const ALL: [State; 6] = [
        State::Drift,
        State::Critical,
        State::Warning,
        State::Unknown,
        State::Ok,
        State::Pending,
    ];

    /// The name in URLs and CSS classes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Unknown => "unknown",
            State::Warning => "warning",
            State::Critical => "critical",
            State::Drift => "drift",
        }
    }

    fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The state of one check.
    pub(crate) fn of(status: Option<&CheckStatus>) -> State {
        status.map_or(State::Pending, |s| {
            let has = |severity| s.findings.iter().any(|f| f.severity == severity);
            State::judge(
                s.success,
                s.drift,
                has(Severity::Critical),
                has(Severity::Warning),
            )
        })
    }

    /// The state of one check as the store sums it up (the fleet overview).
    pub(crate) fn of_summary(summary: Option<&CheckSummary>) -> State {
        summary.map_or(State::Pending, |s| {
            State::judge(s.success, s.drift, s.critical, s.warning)
        })
    }

    /// Drift first, then unknown (the last findings are kept), then the worst finding.
    fn judge(success: bool, drift: bool, critical: bool, warning: bool) -> State {
        match () {
            () if drift => State::Drift,
            () if !success => State::Unknown,
            () if critical => State::Critical,
            () if warning => State::Warning,
            () => State::Ok,
        }
    }

    /// The word shown for it.
    fn label(self, language: Language) -> &'static str {
        match self {
            State::Ok => Phrase::StateOk,
            State::Pending => Phrase::StatePending,
            State::Unknown => Phrase::StateUnknown,
            State::Warning => Phrase::StateWarning,
            State::Critical => Phrase::StateCritical,
            State::Drift => Phrase::StateDrift,
        }
        .text(language)
    }

    /// The word in a narrow table cell.
    fn short(self, language: Language) -> &'static str {
        match (self, language) {
            (State::Drift, Language::En) => "DRIFT",
            (State::Critical, Language::En) => "crit",
            (State::Warning, Language::En) => "warn",
            (State::Unknown, Language::En) => "?",
            (State::Pending, Language::En) => "…",
            (state, _) => state.label(language),
        }
    }

    /// `<span class="state s-…">label</span>`.
    fn badge(self, language: Language) -> String {
        format!(
            "<span class=\"state s-{}\">{}</span>",
            self.as_str(),
            self.label(language)
        )
    }
}

/// The finding code stored as `text`, if this build knows it.
fn finding_code(text: &str) -> Option<FindingCode> {
    FindingCode::ALL
        .iter()
        .copied()
        .find(|c| c.as_str() == text)
}

/// A finding's code with its meaning in the page's language as the hover title.
fn code_html(code: &str, language: Language) -> String {
    let meaning = finding_code(code).map_or("", |c| i18n::finding_message(c, language));
    format!(
        "<code title=\"{}\">{}</code>",
        escape(meaning),
        escape(code)
    )
}

/// A finding's message for the page: the check's own (English, quoting the input), and in
/// Chinese the code's meaning first.
fn finding_text(code: &str, message: &str, language: Language) -> String {
    match (language, finding_code(code)) {
        (Language::ZhCn, Some(code)) => format!(
            "{}<br><span class=\"muted\">{}</span>",
            escape(i18n::finding_message(code, language)),
            escape(message)
        ),
        _ => escape(message),
    }
}

/// One line of the timeline table: an event, or a note on an incident.
enum Line<'a> {
    Event(&'a StoredEvent),
    Note(&'a str, &'a StoredNote),
}

impl Line<'_> {
    fn at(&self) -> f64 {
        match self {
            Line::Event(e) => e.at,
            Line::Note(_, n) => n.at,
        }
    }
}

/// The events (newest first) and notes as one table; `domains` adds a domain column whose
/// links keep that scope.
fn timeline_table(
    page: &mut String,
    events: &[StoredEvent],
    notes: &[(String, StoredNote)],
    domains: Option<Scope>,
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    if events.is_empty() && notes.is_empty() {
        let _ = write!(page, "<p class=\"muted\">{}</p>", t(Phrase::NoEvents));
        return;
    }
    let mut lines: Vec<Line<'_>> = events.iter().map(Line::Event).collect();
    lines.extend(notes.iter().map(|(check, note)| Line::Note(check, note)));
    lines.sort_by(|a, b| b.at().total_cmp(&a.at()));
    let _ = write!(
        page,
        "<div class=\"wrap\"><table class=\"stack timeline\"><thead><tr><th>{}</th>",
        t(Phrase::TimeUtc)
    );
    if domains.is_some() {
        let _ = write!(page, "<th>{}</th>", t(Phrase::Domain));
    }
    let _ = write!(
        page,
        "<th>{}</th><th>{}</th><th>{}</th><th class=\"wide-col\">{}</th></tr></thead><tbody>",
        t(Phrase::Check),
        t(Phrase::Event),
        t(Phrase::What),
        t(Phrase::Asked)
    );
    for line in lines {
        match line {
            Line::Event(e) => event_row(page, e, domains, language),
            Line::Note(check, note) => {
                let _ = write!(
                    page,
                    "<tr class=\"note-row\" id=\"note-{}\"><td>{}</td><td>{}</td><td><span class=\"state s-info\">{} #{}</span></td><td class=\"msg\">{}</td><td class=\"wide-col muted\">{}</td></tr>",
                    note.id,
                    utc(note.at),
                    escape(check),
                    t(Phrase::Note),
                    note.incident_id,
                    note_summary(note, language),
                    escape(note.who.as_deref().unwrap_or(""))
                );
            }
        }
    }
    page.push_str("</tbody></table></div>");
}

fn event_row(page: &mut String, e: &StoredEvent, domains: Option<Scope>, language: Language) {
    let class = e.severity.as_deref().unwrap_or("info");
    let _ = write!(page, "<tr><td>{}</td>", utc(e.at));
    if let Some(scope) = domains {
        let d = escape(&e.domain);
        let _ = write!(
            page,
            "<td><a href=\"/domains/{d}{}\">{d}</a></td>",
            scope.query()
        );
    }
    let label = match &e.code {
        Some(code) => format!("{} {}", e.kind, code),
        None => e.kind.replace('_', " "),
    };
    let resolved = e
        .resolution_seconds
        .map(|s| {
            format!(
                " <span class=\"muted\">({} {})</span>",
                Phrase::OpenFor.text(language),
                age(s)
            )
        })
        .unwrap_or_default();
    let message = match &e.code {
        Some(code) => finding_text(code, &e.message, language),
        None => escape(&e.message),
    };
    let _ = write!(
        page,
        "<td>{}</td><td><span class=\"state s-{}\">{}</span></td><td class=\"msg\">{message}{resolved}</td><td class=\"wide-col muted\">{}</td></tr>",
        escape(&e.check),
        escape(class),
        escape(&label),
        escape(e.server.as_deref().unwrap_or(""))
    );
}

/// A note in one line: channel, ticket, who, first response, who else was involved, text.
fn note_summary(note: &StoredNote, language: Language) -> String {
    let t = |p: Phrase| p.text(language);
    let mut parts = vec![escape(&note.channel)];
    if let Some(ticket) = &note.ticket {
        parts.push(format!("{} {}", t(Phrase::Ticket), escape(ticket)));
    }
    match (note.first_response_at, note.first_response_seconds) {
        (Some(_), Some(seconds)) if seconds >= 0.0 => {
            parts.push(format!(
                "{} {}",
                t(Phrase::FirstResponseAfter),
                age(seconds)
            ));
        }
        (Some(at), _) => parts.push(format!("{} {} UTC", t(Phrase::FirstResponseAt), utc(at))),
        _ => {}
    }
    if note.registrar {
        parts.push(t(Phrase::RegistrarInvolved).to_owned());
    }
    if note.dns_provider {
        parts.push(t(Phrase::DnsProviderInvolved).to_owned());
    }
    format!("{}: {}", parts.join(" · "), escape(&note.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_states() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        assert_eq!(State::of(None), State::Pending);
        assert_eq!(State::of_summary(None), State::Pending);
        // Drift wins over unknown, unknown over findings, critical over warning.
        for (parts, expected) in [
            ((true, true, false, false), State::Drift),
            ((false, true, true, false), State::Drift),
            ((false, false, true, true), State::Unknown),
            ((true, false, true, true), State::Critical),
            ((true, false, false, true), State::Warning),
            ((true, false, false, false), State::Ok),
        ] {
            let (success, drift, critical, warning) = parts;
            let summary = CheckSummary {
                domain: "a.example".into(),
                check: "mx".into(),
                success,
                drift,
                critical,
                warning,
                stored_at: 0.0,
            };
            assert_eq!(State::of_summary(Some(&summary)), expected, "{parts:?}");
            let finding =
                |severity| crate::finding::Finding::new(FindingCode::MxMissing, severity, "x");
            let mut findings = vec![finding(Severity::Info)];
            if critical {
                findings.push(finding(Severity::Critical));
            }
            if warning {
                findings.push(finding(Severity::Warning));
            }
            let status = CheckStatus {
                success,
                drift,
                findings: findings.into(),
                records: Box::default(),
                error: None,
                last_checked: None,
            };
            assert_eq!(State::of(Some(&status)), expected, "{parts:?}");
        }
        let mut worst = State::ALL.to_vec();
        worst.sort();
        assert_eq!(worst.last(), Some(&State::Drift));
        assert_eq!(worst.first(), Some(&State::Ok));
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert!(code_html("drift", Language::ZhCn).contains("title=\"记录与配置的预期"));
        assert_eq!(
            code_html("<x>", Language::En),
            "<code title=\"\">&lt;x&gt;</code>"
        );
    }
}
