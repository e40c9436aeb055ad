//! The PromQL expressions of the dashboards and the rules, with Grafana's variables
//! substituted the way a dashboard would run them.

use serde::Deserialize;
use std::path::Path;

/// How an expression is run: as Grafana runs it (an instant or a range query, or the
/// series query behind `label_values`), as Prometheus evaluates a rule (instant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Instant,
    Range,
    LabelValues,
}

/// One PromQL expression and where it comes from.
#[derive(Debug)]
pub(super) struct Expression {
    pub(super) source: String,
    pub(super) expr: String,
    pub(super) kind: Kind,
    /// Dashboard variables: name → value to substitute.
    variables: Vec<(String, String)>,
}

/// Every expression of a dashboard: panel targets (rows' panels too), annotations, and
/// `label_values` variable queries.
pub(super) fn dashboard_expressions(file: &Path, domain: &str) -> Vec<Expression> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    // A multi-value variable takes its "All" value; a single one the domain under test.
    let variables: Vec<(String, String)> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let value = match v["allValue"].as_str() {
                Some(all) => all.to_owned(),
                None if v["name"] == "domain" => domain.to_owned(),
                None => return None,
            };
            Some((v["name"].as_str()?.to_owned(), value))
        })
        .collect();
    let mut out = Vec::new();
    let mut push = |source: String, expr: &str, kind: Kind| {
        out.push(Expression {
            source,
            expr: expr.to_owned(),
            kind,
            variables: variables.clone(),
        });
    };
    let mut panels: Vec<&serde_json::Value> =
        dashboard["panels"].as_array().unwrap().iter().collect();
    let mut i = 0;
    while i < panels.len() {
        if let Some(nested) = panels[i]["panels"].as_array() {
            panels.extend(nested);
        }
        i += 1;
    }
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let kind = if target["instant"] == true {
                    Kind::Instant
                } else {
                    Kind::Range
                };
                push(format!("{name}: panel {}", panel["title"]), expr, kind);
            }
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = annotation["expr"].as_str() {
            push(
                format!("{name}: annotation {}", annotation["name"]),
                expr,
                Kind::Range,
            );
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str());
        if variable["type"] == "query"
            && let Some(query) = query
        {
            push(
                format!("{name}: variable {}", variable["name"]),
                query,
                Kind::LabelValues,
            );
        }
    }
    out
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    record: Option<String>,
    expr: String,
}

/// Every rule's expression.
pub(super) fn rule_expressions(file: &Path) -> Vec<Expression> {
    let rules: RuleFile = yaml_serde::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    rules
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|rule| Expression {
            source: format!(
                "rules.yml: {}",
                rule.alert.or(rule.record).unwrap_or_default()
            ),
            expr: rule.expr.trim().to_owned(),
            kind: Kind::Instant,
            variables: Vec::new(),
        })
        .collect()
}

/// Replaces Grafana's variables: the dashboard's own, and the built-in intervals (for a
/// one-second scrape interval).
pub(super) fn substitute(expression: &Expression) -> String {
    let mut text = expression.expr.clone();
    let builtin = [
        ("__rate_interval", "20s"),
        ("__interval", "5s"),
        ("__range", "10m"),
    ];
    let variables = expression
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(builtin);
    // Longest names first, so `$__rate_interval` is not read as `$__rate` + `_interval`.
    let mut variables: Vec<(&str, &str)> = variables.collect();
    variables.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in variables {
        text = text
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("[[{name}]]"), value)
            .replace(&format!("${name}"), value);
    }
    text
}

/// `label_values(SELECTOR, LABEL)` → (SELECTOR, LABEL).
pub(super) fn label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_owned(), label.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_are_substituted_longest_first() {
        let expression = Expression {
            source: String::new(),
            expr: "rate(x{d=~\"$domain\", i=\"${instance}\"}[$__rate_interval]) [[domain]]".into(),
            kind: Kind::Range,
            variables: vec![
                ("domain".into(), "a.example".into()),
                ("instance".into(), ".*".into()),
            ],
        };
        assert_eq!(
            substitute(&expression),
            "rate(x{d=~\"a.example\", i=\".*\"}[20s]) a.example"
        );
        assert_eq!(
            label_values("label_values(up{job=\"m\"}, instance)"),
            Some(("up{job=\"m\"}".into(), "instance".into()))
        );
    }
}
