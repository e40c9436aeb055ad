//! `defaults.rdap:` and `defaults.dnsbl:`: how the `registration` check asks RDAP and which
//! DNS blocklists the `dnsbl` check asks. Validated here, copied into every domain's
//! [`super::AnalysisSettings`].

use super::analysis::read_ca_file;
use super::issues::Issues;
use super::names::{HOST, check_http_url, check_name};
use super::raw::Text;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `defaults.rdap:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ interval: 24h, expiry_warning: 30d, expiry_critical: 7d }`"
)]
pub(crate) struct RawRdap {
    /// How often one registrable domain is asked.
    pub(crate) interval: Option<Text>,
    /// Deadline of one RDAP request.
    pub(crate) timeout: Option<Text>,
    /// Where a fresh IANA bootstrap file (`dns.json`) is fetched from.
    pub(crate) bootstrap_url: Option<Text>,
    /// A bootstrap file to use instead of the one shipped with maildrift.
    pub(crate) bootstrap_file: Option<Text>,
    /// Extra trusted CA certificates (PEM).
    pub(crate) ca_file: Option<Text>,
    /// Expiry closer than this is a warning.
    pub(crate) expiry_warning: Option<Text>,
    /// Expiry closer than this is critical.
    pub(crate) expiry_critical: Option<Text>,
}

/// `defaults.dnsbl:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ zones: [bl.example.org], spf_networks: false }`"
)]
pub(crate) struct RawDnsbl {
    /// The blocklist zones asked.
    pub(crate) zones: Option<Vec<Text>>,
    /// Also ask for each single address of the flattened SPF set.
    pub(crate) spf_networks: Option<bool>,
    /// At most this many SPF addresses per domain.
    pub(crate) spf_max_addresses: Option<i64>,
}

/// `defaults.rdap:`: how the `registration` check asks registries (RFC 9082, 9083, 9224).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdapSettings {
    /// One registrable domain is asked at most once per interval (registries rate-limit;
    /// expiry dates move slowly).
    pub interval: Duration,
    /// Deadline of one request (connect, TLS, answer).
    pub timeout: Duration,
    /// Where a fresh bootstrap file is fetched from (at most once per interval); the copy
    /// shipped with maildrift (or `bootstrap_file`) is used until it answers.
    pub bootstrap_url: Option<String>,
    /// A bootstrap file read instead of the shipped copy. Checked at load time.
    pub bootstrap_file: Option<PathBuf>,
    /// Extra trusted CA certificates besides the built-in Mozilla roots (private RDAP
    /// servers, tests). Checked at load time.
    pub ca_file: Option<PathBuf>,
    /// Expiry within this window is `domain_expiring` (warning).
    pub expiry_warning: Duration,
    /// Expiry within this window is `domain_expiring` (critical).
    pub expiry_critical: Duration,
}

impl Default for RdapSettings {
    fn default() -> RdapSettings {
        RdapSettings {
            interval: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            bootstrap_url: None,
            bootstrap_file: None,
            ca_file: None,
            expiry_warning: Duration::from_secs(30 * 86_400),
            expiry_critical: Duration::from_secs(7 * 86_400),
        }
    }
}

/// `defaults.dnsbl:`: which blocklists the `dnsbl` check asks (none by default: most lists
/// need a key or forbid commercial use).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsblSettings {
    /// Blocklist zones, e.g. `bl.spamcop.net` or `KEY.zen.dq.spamhaus.net`.
    pub zones: Vec<String>,
    /// Also ask for every single address (`/32`, `/128`) the flattened SPF record authorizes.
    pub spf_networks: bool,
    /// At most this many SPF addresses per domain are asked.
    pub spf_max_addresses: usize,
}

/// Default bound on the SPF addresses asked per domain.
pub(crate) const DEFAULT_SPF_MAX_ADDRESSES: usize = 32;

/// Highest accepted `spf_max_addresses`.
const MAX_SPF_ADDRESSES: i64 = 1024;

/// Validates `defaults.rdap:` (absent keys keep their defaults).
pub(crate) fn rdap(raw: Option<RawRdap>, issues: &mut Issues<'_>) -> RdapSettings {
    let mut out = RdapSettings::default();
    let Some(raw) = raw else {
        return out;
    };
    let mut duration = |text: &Option<Text>, key: &str, slot: &mut Duration| {
        if let Some(text) = text
            && let Some(value) = issues.duration(text, &format!("defaults.rdap.{key}"), true)
        {
            *slot = value;
        }
    };
    duration(&raw.interval, "interval", &mut out.interval);
    duration(&raw.timeout, "timeout", &mut out.timeout);
    duration(
        &raw.expiry_warning,
        "expiry_warning",
        &mut out.expiry_warning,
    );
    duration(
        &raw.expiry_critical,
        "expiry_critical",
        &mut out.expiry_critical,
    );
    if out.expiry_critical > out.expiry_warning {
        issues.value(
            "defaults.rdap.expiry_critical",
            "expiry_critical is longer than expiry_warning: the warning would never be seen",
        );
    }
    if let Some(url) = raw.bootstrap_url {
        match check_http_url(url.as_str()) {
            Ok(url) => out.bootstrap_url = Some(url),
            Err(message) => issues.value("defaults.rdap.bootstrap_url", message),
        }
    }
    if let Some(file) = raw.bootstrap_file {
        let path = PathBuf::from(file.as_str());
        match check_bootstrap_file(&path) {
            Ok(()) => out.bootstrap_file = Some(path),
            Err(message) => issues.value("defaults.rdap.bootstrap_file", message),
        }
    }
    if let Some(file) = raw.ca_file {
        let path = PathBuf::from(file.as_str());
        match read_ca_file(&path) {
            Ok(_) => out.ca_file = Some(path),
            Err(message) => issues.value("defaults.rdap.ca_file", message),
        }
    }
    out
}

/// A bootstrap file must be readable JSON with a `services` list (RFC 9224 §4); the check
/// reads its entries.
fn check_bootstrap_file(path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read bootstrap file {}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("bootstrap file {} is not JSON: {e}", path.display()))?;
    if !json.get("services").is_some_and(|s| s.is_array()) {
        return Err(format!(
            "bootstrap file {} has no \"services\" list (RFC 9224 section 4)",
            path.display()
        ));
    }
    Ok(())
}

/// Validates `defaults.dnsbl:`.
pub(crate) fn dnsbl(raw: Option<RawDnsbl>, issues: &mut Issues<'_>) -> DnsblSettings {
    let mut out = DnsblSettings {
        spf_max_addresses: DEFAULT_SPF_MAX_ADDRESSES,
        ..DnsblSettings::default()
    };
    let Some(raw) = raw else {
        return out;
    };
    for (i, zone) in raw.zones.unwrap_or_default().iter().enumerate() {
        match check_name(zone.as_str(), HOST) {
            Ok(zone) if out.zones.contains(&zone) => issues.value(
                &format!("defaults.dnsbl.zones[{i}]"),
                format!("zone {zone:?} is listed twice"),
            ),
            Ok(zone) => out.zones.push(zone),
            Err(message) => issues.value(&format!("defaults.dnsbl.zones[{i}]"), message),
        }
    }
    out.spf_networks = raw.spf_networks.unwrap_or(false);
    match raw.spf_max_addresses {
        None => {}
        Some(n) if (1..=MAX_SPF_ADDRESSES).contains(&n) => {
            out.spf_max_addresses = usize::try_from(n).unwrap_or(DEFAULT_SPF_MAX_ADDRESSES);
        }
        Some(n) => issues.value(
            "defaults.dnsbl.spf_max_addresses",
            format!("spf_max_addresses {n} is out of range: expected 1 to {MAX_SPF_ADDRESSES}"),
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    /// One domain with these `defaults:` lines.
    fn parse(defaults: &str) -> Result<Config, String> {
        let text = format!("defaults:\n{defaults}domains:\n  - name: example.com\n");
        super::super::scope_tests::parse(&text)
    }

    #[test]
    fn defaults_when_absent() {
        let config = parse("  interval: 5m\n").unwrap();
        let analysis = &config.domains[0].analysis;
        assert_eq!(analysis.rdap.interval, Duration::from_secs(86_400));
        assert_eq!(analysis.rdap.expiry_warning.as_secs(), 30 * 86_400);
        assert_eq!(analysis.rdap.expiry_critical.as_secs(), 7 * 86_400);
        assert_eq!(analysis.rdap.bootstrap_url, None);
        assert!(analysis.dnsbl.zones.is_empty(), "no blocklist by default");
        assert!(!analysis.dnsbl.spf_networks);
    }

    #[test]
    fn settings_are_read_and_errors_located() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = dir.path().join("dns.json");
        std::fs::write(&bootstrap, r#"{"version":"1.0","services":[]}"#).unwrap();
        let config = parse(&format!(
            "  rdap: {{ interval: 12h, timeout: 3s, bootstrap_file: \"{}\", bootstrap_url: \"https://rdap.example/dns.json\", expiry_warning: 60d, expiry_critical: 14d }}\n  dnsbl: {{ zones: [Bl.Example.ORG., dnsbl.example.net], spf_networks: true, spf_max_addresses: 8 }}\n",
            bootstrap.display()
        ))
        .unwrap();
        let analysis = &config.domains[0].analysis;
        assert_eq!(analysis.rdap.interval.as_secs(), 12 * 3600);
        assert_eq!(
            analysis.rdap.bootstrap_file.as_deref(),
            Some(bootstrap.as_path())
        );
        assert_eq!(analysis.rdap.expiry_critical.as_secs(), 14 * 86_400);
        assert_eq!(
            analysis.dnsbl.zones,
            ["bl.example.org", "dnsbl.example.net"]
        );
        assert_eq!(analysis.dnsbl.spf_max_addresses, 8);

        let bad_json = dir.path().join("bad.json");
        std::fs::write(&bad_json, "{\"services\": 1}").unwrap();
        let err = parse(&format!(
            "  rdap:\n    bootstrap_file: \"{}\"\n    expiry_critical: 40d\n    bootstrap_url: ftp://x\n  dnsbl:\n    zones: [\"bad zone\", bl.example.org, bl.example.org]\n    spf_max_addresses: 0\n",
            bad_json.display()
        ))
        .unwrap_err();
        for needle in [
            "t.yml:3:21: defaults.rdap.bootstrap_file: bootstrap file",
            "has no \"services\" list",
            "defaults.rdap.expiry_critical: expiry_critical is longer than expiry_warning",
            "t.yml:5:20: defaults.rdap.bootstrap_url: \"ftp://x\" is not an http",
            "defaults.dnsbl.zones[0]: \"bad zone\"",
            "defaults.dnsbl.zones[2]: zone \"bl.example.org\" is listed twice",
            "defaults.dnsbl.spf_max_addresses: spf_max_addresses 0 is out of range",
        ] {
            assert!(err.contains(needle), "{needle}\n{err}");
        }
        let err = parse("  rdap: { intervall: 1h }\n").unwrap_err();
        assert!(err.contains("unknown field `intervall`"), "{err}");
    }
}
