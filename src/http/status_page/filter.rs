//! The overview's query string: what it covers (`scope`: `shard` or `fleet`), search (`q`:
//! name substrings and `label=value` terms), filters (`check`, `state`), sort (`sort`,
//! `dir`) and page (`page`, `per`), validated and written back into links, and the search
//! form that sets them.

use super::{State, escape};
use crate::finding::CheckKind;
use crate::http::api::Scope;
use crate::i18n::{Language, Phrase};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Rows per page unless `per` says otherwise, and the most a page may hold.
const DEFAULT_PER_PAGE: usize = 100;
const MAX_PER_PAGE: usize = 500;
/// The longest search text accepted.
const MAX_SEARCH: usize = 200;

/// What the table is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sort {
    /// Worst state first (the default).
    State,
    /// Longest-open incident first.
    Age,
    /// By name.
    Domain,
}

impl Sort {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Sort::State => "state",
            Sort::Age => "age",
            Sort::Domain => "domain",
        }
    }

    /// Whether the natural direction is descending (worst, oldest first).
    pub(super) fn descending_by_default(self) -> bool {
        self != Sort::Domain
    }
}

/// One search term: a name substring, or a label that must be set to a value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Term {
    Name(String),
    Label(String, String),
}

/// The query string, validated.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Filter {
    pub(super) scope: Scope,
    pub(super) q: String,
    pub(super) terms: Vec<Term>,
    pub(super) check: Option<CheckKind>,
    pub(super) state: Option<State>,
    pub(super) sort: Sort,
    pub(super) descending: bool,
    pub(super) page: usize,
    pub(super) per: usize,
}

impl Filter {
    pub(super) fn parse(
        pairs: &[(String, String)],
        checks: &[CheckKind],
    ) -> Result<Filter, String> {
        let mut filter = Filter {
            scope: Scope::Shard,
            q: String::new(),
            terms: Vec::new(),
            check: None,
            state: None,
            sort: Sort::State,
            descending: true,
            page: 1,
            per: DEFAULT_PER_PAGE,
        };
        let mut dir = None;
        for (key, value) in pairs {
            let value = value.trim();
            match key.as_str() {
                "scope" => filter.scope = Scope::parse(Some(value))?,
                "q" => {
                    if value.chars().count() > MAX_SEARCH {
                        return Err(format!("q: at most {MAX_SEARCH} characters"));
                    }
                    filter.q = value.to_owned();
                }
                "check" if value.is_empty() => {}
                "check" => {
                    let check = value.parse::<CheckKind>()?;
                    if !checks.contains(&check) {
                        return Err(format!("check {value:?} is not run by this daemon"));
                    }
                    filter.check = Some(check);
                }
                "state" if value.is_empty() => {}
                "state" => {
                    filter.state = Some(State::parse(value).ok_or_else(|| {
                        let names: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
                        format!("state {value:?} is not one of {}", names.join(", "))
                    })?);
                }
                "sort" => {
                    filter.sort = [Sort::State, Sort::Age, Sort::Domain]
                        .into_iter()
                        .find(|s| s.as_str() == value)
                        .ok_or_else(|| format!("sort {value:?} is not state, age or domain"))?;
                }
                "dir" => {
                    dir = Some(match value {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(format!("dir {value:?} is not asc or desc")),
                    });
                }
                "page" => {
                    filter.page = value
                        .parse::<usize>()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| format!("page {value:?} is not a page number"))?;
                }
                "per" => {
                    filter.per = value
                        .parse::<usize>()
                        .ok()
                        .filter(|p| (1..=MAX_PER_PAGE).contains(p))
                        .ok_or_else(|| {
                            format!("per {value:?} must be between 1 and {MAX_PER_PAGE}")
                        })?;
                }
                // Unknown parameters (a tracking tag in a pasted link) are ignored.
                _ => {}
            }
        }
        filter.descending = dir.unwrap_or(filter.sort.descending_by_default());
        filter.terms = filter
            .q
            .split_whitespace()
            .map(|term| match term.split_once('=') {
                Some((key, value)) => Term::Label(key.to_owned(), value.to_lowercase()),
                None => Term::Name(term.to_lowercase()),
            })
            .collect();
        Ok(filter)
    }

    /// Whether a domain (its name and labels) matches every search term.
    pub(super) fn matches(&self, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Name(part) => name.contains(part.as_str()),
            Term::Label(key, value) => labels
                .and_then(|labels| labels.get(key))
                .is_some_and(|v| v.to_lowercase() == *value),
        })
    }

    /// This filter's URL with `change` applied (defaults left out).
    pub(super) fn url(&self, change: impl FnOnce(&mut Filter)) -> String {
        let mut next = self.clone();
        change(&mut next);
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if next.scope == Scope::Fleet {
            pairs.push(("scope", "fleet".to_owned()));
        }
        if !next.q.is_empty() {
            pairs.push(("q", next.q.clone()));
        }
        if let Some(check) = next.check {
            pairs.push(("check", check.as_str().to_owned()));
        }
        if let Some(state) = next.state {
            pairs.push(("state", state.as_str().to_owned()));
        }
        if next.sort != Sort::State {
            pairs.push(("sort", next.sort.as_str().to_owned()));
        }
        if next.descending != next.sort.descending_by_default() {
            pairs.push((
                "dir",
                if next.descending { "desc" } else { "asc" }.to_owned(),
            ));
        }
        if next.page != 1 {
            pairs.push(("page", next.page.to_string()));
        }
        if next.per != DEFAULT_PER_PAGE {
            pairs.push(("per", next.per.to_string()));
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect();
        if query.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{}", query.join("&"))
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of a value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// The search box and the check and state filters (a GET form: no script needed).
pub(super) fn search_form(
    page: &mut String,
    filter: &Filter,
    checks: &[CheckKind],
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    let _ = write!(
        page,
        "<form class=\"search\" method=\"get\" action=\"/\" role=\"search\"><input type=\"search\" name=\"q\" value=\"{}\" maxlength=\"{MAX_SEARCH}\" placeholder=\"{}\" aria-label=\"{}\"><select name=\"check\" aria-label=\"{}\"><option value=\"\">{}</option>",
        escape(&filter.q),
        t(Phrase::SearchPlaceholder),
        t(Phrase::Search),
        t(Phrase::Check),
        t(Phrase::AllChecks)
    );
    for check in checks {
        let selected = if filter.check == Some(*check) {
            " selected"
        } else {
            ""
        };
        let _ = write!(page, "<option value=\"{check}\"{selected}>{check}</option>");
    }
    let _ = write!(
        page,
        "</select><select name=\"state\" aria-label=\"{}\"><option value=\"\">{}</option>",
        t(Phrase::State),
        t(Phrase::AnyState)
    );
    for state in State::ALL {
        let selected = if filter.state == Some(state) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            page,
            "<option value=\"{}\"{selected}>{}</option>",
            state.as_str(),
            state.label(language)
        );
    }
    page.push_str("</select>");
    if filter.sort != Sort::State {
        let _ = write!(
            page,
            "<input type=\"hidden\" name=\"sort\" value=\"{}\">",
            filter.sort.as_str()
        );
    }
    if filter.descending != filter.sort.descending_by_default() {
        let dir = if filter.descending { "desc" } else { "asc" };
        let _ = write!(page, "<input type=\"hidden\" name=\"dir\" value=\"{dir}\">");
    }
    if filter.per != DEFAULT_PER_PAGE {
        let _ = write!(
            page,
            "<input type=\"hidden\" name=\"per\" value=\"{}\">",
            filter.per
        );
    }
    if filter.scope == Scope::Fleet {
        page.push_str("<input type=\"hidden\" name=\"scope\" value=\"fleet\">");
    }
    let _ = write!(
        page,
        "<button type=\"submit\">{}</button> <a href=\"/{}\">{}</a></form><p class=\"muted\">{}</p>",
        t(Phrase::Search),
        filter.scope.query(),
        t(Phrase::Reset),
        t(Phrase::SearchHelp)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.replace('+', " ").replace("%3D", "="))
            })
            .collect()
    }

    #[test]
    fn filters_parse_and_round_trip_through_urls() {
        let checks = [CheckKind::Mx, CheckKind::Spf];
        let filter = Filter::parse(
            &pairs("q=shop team=mail&check=mx&state=drift&sort=age&dir=asc&page=3&per=50&utm=x"),
            &checks,
        )
        .unwrap();
        assert_eq!(
            filter.terms,
            [
                Term::Name("shop".into()),
                Term::Label("team".into(), "mail".into())
            ]
        );
        assert_eq!(filter.check, Some(CheckKind::Mx));
        assert_eq!(filter.state, Some(State::Drift));
        assert_eq!((filter.sort, filter.descending), (Sort::Age, false));
        assert_eq!((filter.page, filter.per), (3, 50));
        let url = filter.url(|_| {});
        assert_eq!(
            url,
            "/?q=shop+team%3Dmail&check=mx&state=drift&sort=age&dir=asc&page=3&per=50"
        );
        let back = Filter::parse(&pairs(url.trim_start_matches("/?")), &checks).unwrap();
        assert_eq!(back.q, "shop team=mail");
        assert_eq!(back.scope, Scope::Shard);
        // The fleet scope is kept in every link; the default is left out.
        let fleet = Filter::parse(&pairs("scope=fleet&check=mx"), &checks).unwrap();
        assert_eq!(fleet.scope, Scope::Fleet);
        assert_eq!(fleet.url(|f| f.page = 2), "/?scope=fleet&check=mx&page=2");
        assert_eq!(fleet.url(|f| f.scope = Scope::Shard), "/?check=mx");
        let mut form = String::new();
        search_form(&mut form, &fleet, &checks, Language::En);
        assert!(form.contains("<input type=\"hidden\" name=\"scope\" value=\"fleet\">"));
        assert!(form.contains("<a href=\"/?scope=fleet\">"));
        let labels = BTreeMap::from([("team".to_owned(), "Mail".to_owned())]);
        assert!(back.matches("shop.example", Some(&labels)));
        assert!(
            !back.matches("shop.example", None),
            "a domain without labels"
        );
        assert!(!back.matches("web.example", Some(&labels)));
        assert_eq!(Filter::parse(&[], &checks).unwrap().url(|_| {}), "/");
        for (bad, needle) in [
            ("check=dane", "\"dane\""),
            ("check=dnssec", "not run by this daemon"),
            ("state=fine", "\"fine\""),
            ("sort=name", "\"name\""),
            ("page=0", "page"),
            ("per=100000", "between 1 and 500"),
            ("dir=up", "\"up\""),
            ("scope=world", "neither shard nor fleet"),
        ] {
            let error = Filter::parse(&pairs(bad), &checks).unwrap_err();
            assert!(error.contains(needle), "{bad}: {error}");
        }
        let long = format!("q={}", "x".repeat(MAX_SEARCH + 1));
        assert!(Filter::parse(&pairs(&long), &checks).is_err());
        assert_eq!(form_encode("a b&c=é"), "a+b%26c%3D%C3%A9");
    }
}
