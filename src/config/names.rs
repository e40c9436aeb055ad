//! Checks for the names a config holds: domain and host names, DKIM selectors, alert label
//! names, URLs. Each error quotes the bad text.

use crate::dns::names::to_ascii;
use crate::dns::normalize_name;
use std::net::IpAddr;

/// What a kind of name may look like.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameRules {
    /// What the name is, for messages ("domain name", "host name", ...).
    pub(crate) what: &'static str,
    /// `_` allowed in labels (`_spf.google.com`, DKIM selectors).
    pub(crate) underscore: bool,
    /// Fewest labels (`example.com` has 2).
    pub(crate) min_labels: usize,
}

/// A watched domain: LDH labels, at least two.
pub(crate) const DOMAIN: NameRules = NameRules {
    what: "domain name",
    underscore: false,
    min_labels: 2,
};
/// An MX host.
pub(crate) const HOST: NameRules = NameRules {
    what: "host name",
    underscore: false,
    min_labels: 2,
};
/// An SPF `include:` target (often `_spf.something`).
pub(crate) const SPF_DOMAIN: NameRules = NameRules {
    what: "SPF include domain",
    underscore: true,
    min_labels: 2,
};
/// A DKIM selector (the part before `._domainkey`).
pub(crate) const SELECTOR: NameRules = NameRules {
    what: "DKIM selector",
    underscore: true,
    min_labels: 1,
};

/// Validates and normalises a name (lower case, no trailing dot). An internationalized name
/// (`bücher.example`, `例子.中国`) becomes its A-label form (UTS #46) before the checks.
pub(crate) fn check_name(text: &str, rules: NameRules) -> Result<String, String> {
    let what = rules.what;
    let name = if text.is_ascii() {
        normalize_name(text)
    } else {
        to_ascii(text)?
    };
    if name.is_empty() {
        return Err(format!("empty {what}"));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(format!("{text:?} is an IP address, not a {what}"));
    }
    if name.contains('*') {
        return Err(format!("{text:?}: wildcards are not allowed in a {what}"));
    }
    if name.len() > 253 {
        return Err(format!(
            "{text:?} is {} characters long; a {what} has at most 253",
            name.len()
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        check_label(text, label, rules)?;
    }
    if labels.len() < rules.min_labels {
        return Err(format!(
            "{text:?} is not a valid {what}: expected at least {} labels, e.g. \"example.com\"",
            rules.min_labels
        ));
    }
    Ok(name)
}

fn check_label(text: &str, label: &str, rules: NameRules) -> Result<(), String> {
    let what = rules.what;
    if label.is_empty() {
        return Err(format!(
            "{text:?} is not a valid {what}: empty label (leading dot or two dots in a row)"
        ));
    }
    if label.len() > 63 {
        return Err(format!(
            "{text:?} is not a valid {what}: label {label:?} is longer than 63 characters"
        ));
    }
    if let Some(bad) = label
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || (rules.underscore && c == '_')))
    {
        return Err(format!(
            "{text:?} is not a valid {what}: {bad:?} is not allowed (letters, digits and '-' only{})",
            if rules.underscore { ", and '_'" } else { "" }
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!(
            "{text:?} is not a valid {what}: label {label:?} starts or ends with '-'"
        ));
    }
    Ok(())
}

/// Labels that maildrift sets itself on every alert.
pub(crate) const RESERVED_LABELS: [&str; 4] = ["alertname", "domain", "check", "severity"];

/// Checks an alert label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved, no `__` prefix.
pub(crate) fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !valid_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    if RESERVED_LABELS.contains(&name) {
        return Err(format!(
            "label name {name:?} is reserved (maildrift sets {})",
            RESERVED_LABELS.join(", ")
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "label name {name:?} is reserved: names starting with \"__\" are for internal use"
        ));
    }
    Ok(())
}

/// Checks an `http://` or `https://` URL with a host; returns it trimmed.
pub(crate) fn check_http_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{text:?} is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{text:?} contains white space"));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_or_rejected_with_the_text_quoted() {
        assert_eq!(check_name("Example.COM.", DOMAIN), Ok("example.com".into()));
        assert_eq!(
            check_name("_spf.google.com", SPF_DOMAIN),
            Ok("_spf.google.com".into())
        );
        assert_eq!(check_name("default", SELECTOR), Ok("default".into()));
        for (text, rules, needle) in [
            ("example", DOMAIN, "at least 2 labels"),
            ("exa..mple.com", DOMAIN, "empty label"),
            ("*.example.com", DOMAIN, "wildcards"),
            ("ex_ample.com", DOMAIN, "'_' is not allowed"),
            ("-bad.com", HOST, "starts or ends with '-'"),
            ("192.0.2.1", HOST, "is an IP address"),
            ("https://example.com", DOMAIN, "':' is not allowed"),
        ] {
            let err = check_name(text, rules).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
        // Internationalized names become A-labels; the A-label form is checked as usual.
        assert_eq!(
            check_name("Bücher.example", DOMAIN),
            Ok("xn--bcher-kva.example".into())
        );
        assert_eq!(
            check_name("例子.中国", DOMAIN),
            Ok("xn--fsqu00a.xn--fiqs8s".into())
        );
        assert_eq!(
            check_name("邮件.例子.中国", HOST),
            Ok("xn--5nq051n.xn--fsqu00a.xn--fiqs8s".into())
        );
        let err = check_name("bü cher.example", DOMAIN).expect_err("space");
        assert!(err.contains("\"bü cher.example\""), "{err}");
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(check_name(&long_label, DOMAIN).is_err());
        let long_name = format!("{}com", "abcdefghi.".repeat(26));
        assert!(
            check_name(&long_name, DOMAIN)
                .expect_err("long")
                .contains("at most 253")
        );
    }

    #[test]
    fn label_names() {
        assert!(check_label_name("team").is_ok());
        assert!(check_label_name("_x9").is_ok());
        assert!(check_label_name("9x").is_err());
        assert!(check_label_name("a-b").is_err());
        assert!(check_label_name("").is_err());
        assert!(
            check_label_name("severity")
                .expect_err("reserved")
                .contains("reserved")
        );
        assert!(check_label_name("__meta").is_err());
    }

    #[test]
    fn urls() {
        assert!(check_http_url("http://alertmanager:9093").is_ok());
        assert!(check_http_url("https://x.example/api?a=1").is_ok());
        assert!(check_http_url("ftp://x").is_err());
        assert!(check_http_url("http:///path").is_err());
        assert!(check_http_url("alertmanager:9093").is_err());
    }
}
