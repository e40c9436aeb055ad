//! The overview's domain table: one row per domain (this instance's or the fleet's), sorted
//! and cut into pages on the server, with links that keep every setting of the URL.

use super::filter::{Filter, Sort};
use super::{State, escape};
use crate::finding::CheckKind;
use crate::http::api::Scope;
use crate::http::times::age;
use crate::i18n::{Language, Phrase};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One domain as listed: this instance's (its monitor) or the fleet's (the shared store).
pub(super) struct Listed<'a> {
    pub(super) name: &'a str,
    /// `None`: the domain is in the shared store but not in this instance's config.
    pub(super) labels: Option<&'a BTreeMap<String, String>>,
    pub(super) skip: &'a [CheckKind],
    /// Per check of the registry.
    pub(super) states: Vec<State>,
    /// Unix seconds: the last check (this instance), the newest stored state (the fleet).
    pub(super) checked: Option<f64>,
}

/// One domain in the table.
pub(super) struct Row<'a> {
    pub(super) domain: Listed<'a>,
    /// The state shown and sorted by: the filtered check's, else the worst.
    pub(super) state: State,
    /// Since when its oldest open incident (of the filtered check) is open.
    pub(super) since: Option<f64>,
}

pub(super) fn sort_rows(rows: &mut [Row<'_>], sort: Sort, descending: bool) {
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
        let by_name = a.domain.name.cmp(b.domain.name);
        let by_name = if sort == Sort::Domain && descending {
            by_name.reverse()
        } else {
            by_name
        };
        primary.then(by_name)
    });
}

pub(super) fn pagination(
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

pub(super) fn domain_table(
    page: &mut String,
    filter: &Filter,
    checks: &[CheckKind],
    rows: &[Row<'_>],
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
        t(match filter.scope {
            Scope::Shard => Phrase::LastChecked,
            Scope::Fleet => Phrase::StateStored,
        })
    );
    for row in rows {
        let name = escape(row.domain.name);
        let shown = escape(&crate::dns::names::display_name(row.domain.name));
        let _ = write!(
            page,
            "<tr class=\"domain-row\" data-domain=\"{name}\" data-state=\"{}\"><td><a href=\"/domains/{name}{}\">{shown}</a>",
            row.state.as_str(),
            filter.scope.query()
        );
        labels(page, row.domain.labels, language);
        let _ = write!(page, "</td><td>{}</td>", row.state.badge(language));
        for (check, state) in checks.iter().zip(&row.domain.states) {
            if row.domain.skip.contains(check) {
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
            .domain
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

/// A domain's labels, escaped; `None` (a domain of the fleet this instance does not
/// configure) says so.
pub(super) fn labels(
    page: &mut String,
    labels: Option<&BTreeMap<String, String>>,
    language: Language,
) {
    match labels {
        Some(labels) => {
            for (key, value) in labels {
                let _ = write!(
                    page,
                    "<span class=\"label\">{}={}</span>",
                    escape(key),
                    escape(value)
                );
            }
        }
        None => {
            let _ = write!(
                page,
                "<span class=\"label muted\">{}</span>",
                Phrase::NotConfiguredHere.text(language)
            );
        }
    }
}
