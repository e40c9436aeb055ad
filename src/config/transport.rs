//! `defaults.smtp:` and `defaults.bimi:`: how the MX hosts are asked over SMTP (the
//! `smtp_tls` and `dane` checks) and how BIMI logos are fetched. Validated here, copied into
//! every domain's [`super::AnalysisSettings`].

use super::analysis::read_ca_file;
use super::issues::Issues;
use super::names::{HOST, SELECTOR, check_name};
use super::raw::Text;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `defaults.smtp:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ enabled: true, port: 25, timeout: 10s, cert_warning: 21d }`"
)]
pub(crate) struct RawSmtp {
    /// Whether the MX hosts are asked at all.
    pub(crate) enabled: Option<bool>,
    /// SMTP port of the MX hosts.
    pub(crate) port: Option<Text>,
    /// Deadline of each step of the dialogue.
    pub(crate) timeout: Option<Text>,
    /// Extra trusted CA certificates (PEM file).
    pub(crate) ca_file: Option<Text>,
    /// Window before a certificate's expiry in which it is reported.
    pub(crate) cert_warning: Option<Text>,
    /// MX hosts asked per domain, in preference order.
    pub(crate) max_hosts: Option<Text>,
    /// The name sent with `EHLO`.
    pub(crate) helo_name: Option<Text>,
}

/// `defaults.bimi:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ selectors: [brand], timeout: 10s }`"
)]
pub(crate) struct RawBimi {
    /// Selectors besides `default`.
    pub(crate) selectors: Option<Vec<Text>>,
    /// Extra trusted CA certificates (PEM file) for the logo's HTTPS server.
    pub(crate) ca_file: Option<Text>,
    /// Deadline of one logo fetch.
    pub(crate) timeout: Option<Text>,
}

/// `defaults.smtp:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSettings {
    /// False: the MX hosts are not asked (port 25 is blocked in many clouds); `smtp_tls`
    /// then reports nothing and `dane` checks the TLSA records without a certificate.
    pub enabled: bool,
    /// SMTP port of the MX hosts: 25; other values for tests and relays.
    pub port: u16,
    /// Deadline of each step (connect, banner, EHLO, STARTTLS, handshake, QUIT).
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM) besides the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// A certificate expiring within this window is `mx_tls_cert_expiring` (a warning;
    /// critical inside 7 days).
    pub cert_warning: Duration,
    /// At most this many MX hosts per domain are asked, in preference order.
    pub max_hosts: usize,
    /// The name maildrift gives in `EHLO`.
    pub helo_name: String,
}

/// `defaults.bimi:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BimiSettings {
    /// Selectors asked besides `default` (`<selector>._bimi.<domain>`).
    pub selectors: Vec<String>,
    /// Extra trusted CA certificates (PEM) for the logo's HTTPS server.
    pub ca_file: Option<PathBuf>,
    /// Deadline of one logo fetch (connect, TLS, response, redirects).
    pub timeout: Duration,
}

impl Default for SmtpSettings {
    fn default() -> SmtpSettings {
        SmtpSettings {
            enabled: true,
            port: 25,
            timeout: Duration::from_secs(10),
            ca_file: None,
            cert_warning: Duration::from_secs(21 * 86_400),
            max_hosts: 5,
            helo_name: "maildrift.invalid".to_owned(),
        }
    }
}

impl Default for BimiSettings {
    fn default() -> BimiSettings {
        BimiSettings {
            selectors: Vec::new(),
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Highest accepted `max_hosts`: more MX hosts than this is a misconfiguration.
const MAX_HOSTS: usize = 50;

fn port(text: &Text, field: &str, issues: &mut Issues<'_>) -> Option<u16> {
    match text.as_str().trim().parse::<u16>() {
        Ok(port) if port > 0 => Some(port),
        _ => {
            issues.value(
                field,
                format!("invalid port {:?}: expected 1 to 65535", text.as_str()),
            );
            None
        }
    }
}

fn ca_file(text: &Text, field: &str, issues: &mut Issues<'_>) -> Option<PathBuf> {
    let path = PathBuf::from(text.as_str());
    match read_ca_file(&path) {
        Ok(_) => Some(path),
        Err(message) => {
            issues.value(field, message);
            None
        }
    }
}

/// Validates `defaults.smtp:` (absent: the defaults).
pub(crate) fn smtp(raw: Option<RawSmtp>, issues: &mut Issues<'_>) -> SmtpSettings {
    let mut out = SmtpSettings::default();
    let Some(raw) = raw else { return out };
    out.enabled = raw.enabled.unwrap_or(true);
    if let Some(text) = raw.port {
        out.port = port(&text, "defaults.smtp.port", issues).unwrap_or(out.port);
    }
    if let Some(text) = raw.timeout
        && let Some(timeout) = issues.duration(&text, "defaults.smtp.timeout", true)
    {
        out.timeout = timeout;
    }
    if let Some(text) = raw.ca_file {
        out.ca_file = ca_file(&text, "defaults.smtp.ca_file", issues);
    }
    if let Some(text) = raw.cert_warning
        && let Some(window) = issues.duration(&text, "defaults.smtp.cert_warning", true)
    {
        out.cert_warning = window;
    }
    if let Some(text) = raw.max_hosts {
        match text.as_str().trim().parse::<usize>() {
            Ok(n) if (1..=MAX_HOSTS).contains(&n) => out.max_hosts = n,
            _ => issues.value(
                "defaults.smtp.max_hosts",
                format!(
                    "invalid max_hosts {:?}: expected 1 to {MAX_HOSTS}",
                    text.as_str()
                ),
            ),
        }
    }
    if let Some(text) = raw.helo_name {
        match check_name(text.as_str(), HOST) {
            Ok(name) => out.helo_name = name,
            Err(message) => issues.value("defaults.smtp.helo_name", message),
        }
    }
    out
}

/// Validates `defaults.bimi:` (absent: the defaults).
pub(crate) fn bimi(raw: Option<RawBimi>, issues: &mut Issues<'_>) -> BimiSettings {
    let mut out = BimiSettings::default();
    let Some(raw) = raw else { return out };
    for (i, text) in raw.selectors.unwrap_or_default().iter().enumerate() {
        match check_name(text.as_str(), SELECTOR) {
            Ok(name) if name == "default" || out.selectors.contains(&name) => {}
            Ok(name) => out.selectors.push(name),
            Err(message) => issues.value(&format!("defaults.bimi.selectors[{i}]"), message),
        }
    }
    if let Some(text) = raw.ca_file {
        out.ca_file = ca_file(&text, "defaults.bimi.ca_file", issues);
    }
    if let Some(text) = raw.timeout
        && let Some(timeout) = issues.duration(&text, "defaults.bimi.timeout", true)
    {
        out.timeout = timeout;
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::analysis::tests::parse;

    #[test]
    fn defaults_when_absent() {
        let config = parse("  interval: 5m\n").unwrap();
        let analysis = &config.domains[0].analysis;
        assert!(analysis.smtp.enabled);
        assert_eq!(analysis.smtp.port, 25);
        assert_eq!(analysis.smtp.timeout.as_secs(), 10);
        assert_eq!(analysis.smtp.cert_warning.as_secs(), 21 * 86_400);
        assert_eq!(analysis.smtp.max_hosts, 5);
        assert_eq!(analysis.bimi.selectors, Vec::<String>::new());
        assert_eq!(analysis.bimi.timeout.as_secs(), 10);
    }

    #[test]
    fn settings_are_read_and_validated_with_positions() {
        let config = parse(
            "  smtp: { enabled: false, port: 2525, timeout: 2s, cert_warning: 30d, max_hosts: 2, helo_name: Probe.Example }\n  bimi: { selectors: [Brand, default, brand], timeout: 3s }\n",
        )
        .unwrap();
        let analysis = &config.domains[0].analysis;
        assert!(!analysis.smtp.enabled);
        assert_eq!(analysis.smtp.port, 2525);
        assert_eq!(analysis.smtp.timeout.as_secs(), 2);
        assert_eq!(analysis.smtp.cert_warning.as_secs(), 30 * 86_400);
        assert_eq!(analysis.smtp.max_hosts, 2);
        assert_eq!(analysis.smtp.helo_name, "probe.example");
        assert_eq!(analysis.bimi.selectors, ["brand"]);
        assert_eq!(analysis.bimi.timeout.as_secs(), 3);

        let err = parse(
            "  smtp: { port: 0, timeout: 0s, max_hosts: 100, ca_file: /nonexistent/ca.pem, helo_name: \"a b\" }\n  bimi: { selectors: [\"bad selector\"], timeout: soon }\n",
        )
        .unwrap_err();
        for wanted in [
            "t.yml:2:17: defaults.smtp.port: invalid port \"0\"",
            "defaults.smtp.timeout: \"0s\" must be greater than zero",
            "defaults.smtp.max_hosts: invalid max_hosts \"100\": expected 1 to 50",
            "defaults.smtp.ca_file: cannot read CA file /nonexistent/ca.pem",
            "defaults.smtp.helo_name:",
            "defaults.bimi.selectors[0]:",
            "defaults.bimi.timeout:",
        ] {
            assert!(err.contains(wanted), "{wanted}\n{err}");
        }
        let err = parse("  smtp: { starttls: yes }\n").unwrap_err();
        assert!(err.contains("unknown field `starttls`"), "{err}");
    }
}
