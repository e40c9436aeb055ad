//! Semantic validation of `defaults:` and `domains:`: defaults applied, names normalised,
//! addresses parsed, presets merged; every problem recorded with its position.

use super::duration::format_duration;
use super::issues::Issues;
use super::names::{DOMAIN, HOST, SELECTOR, check_label_name, check_name};
use super::providers::{Presets, check_spf_include};
use super::raw::{RawChecks, RawDefaults, RawDomain, RawExpect, Text};
use super::{DkimExpectation, DmarcExpectation, Expectations, MxExpectation};
use super::{DomainConfig, ResolverSpec};
use crate::dns::parse_server_addr;
use crate::finding::CheckKind;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

/// Default check interval.
pub(crate) fn default_interval() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Default deadline for one domain check.
pub(crate) fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Default resolvers: the system configuration.
pub(crate) fn default_resolvers() -> Vec<ResolverSpec> {
    vec![ResolverSpec::System]
}

/// Ask the authoritative servers directly by default.
pub(crate) fn default_authoritative() -> bool {
    true
}

/// Default number of concurrent domain checks.
pub(crate) fn default_concurrency() -> usize {
    64
}

/// Default grace before serials apart are a finding (ten minutes): secondaries lag briefly
/// after a NOTIFY.
pub(crate) fn default_ns_serial_grace() -> Duration {
    Duration::from_secs(600)
}

/// Highest accepted `ns_serial_grace`: past a day, a lagging secondary goes unreported.
const MAX_NS_SERIAL_GRACE: Duration = Duration::from_secs(86_400);

/// Highest accepted `concurrency`.
const MAX_CONCURRENCY: i64 = 100_000;

/// `defaults:` validated. Durations are `None` when the written value was invalid (already
/// reported), so that no follow-up error is derived from it.
pub(crate) struct Defaults {
    /// Check interval, inherited by domains that do not set one.
    interval: Option<Duration>,
    /// Check deadline, inherited likewise; `None` when not written (the default applies,
    /// clamped to each domain's interval) or invalid (already reported).
    timeout: Option<Duration>,
    /// Whether `defaults.timeout` was written (an invalid value counts as written).
    timeout_written: bool,
    /// Recursive resolvers, inherited likewise.
    resolvers: Vec<ResolverSpec>,
    /// Ask authoritative servers directly, inherited likewise.
    authoritative: bool,
    /// Authoritative server override, inherited likewise.
    nameservers: Vec<SocketAddr>,
    /// Daemon-wide concurrency.
    pub(crate) concurrency: usize,
    /// Daemon-wide grace before serials apart are a finding.
    pub(crate) ns_serial_grace: Duration,
    /// MTA-STS, DNSSEC, RDAP and DNSBL settings, inherited by every domain (one shared
    /// copy: ~0.5 KiB a domain at 100,000 domains).
    analysis: std::sync::Arc<super::AnalysisSettings>,
    /// Checks left out, inherited by domains that do not set `checks`.
    skip: Vec<CheckKind>,
}

/// Validates `defaults:`.
pub(crate) fn defaults(raw: RawDefaults, issues: &mut Issues<'_>) -> Defaults {
    let mut analysis = super::analysis::validate(raw.mta_sts, raw.dnssec, issues);
    analysis.rdap = super::reputation::rdap(raw.rdap, issues);
    analysis.dnsbl = super::reputation::dnsbl(raw.dnsbl, issues);
    let skip = raw
        .checks
        .map(|checks| skip(checks, "defaults.checks", issues))
        .unwrap_or_default();
    analysis.smtp = super::transport::smtp(raw.smtp, issues);
    analysis.bimi = super::transport::bimi(raw.bimi, issues);
    let interval = match &raw.interval {
        None => Some(default_interval()),
        Some(text) => issues.duration(text, "defaults.interval", true),
    };
    // Like Prometheus' scrape_timeout: the default is clamped to the interval; only a
    // timeout that was written and is longer than the interval is an error.
    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|text| issues.duration(text, "defaults.timeout", true));
    if let (Some(interval), Some(timeout)) = (interval, timeout)
        && timeout > interval
    {
        issues.value("defaults.timeout", timeout_message(timeout, interval));
    }
    let concurrency = match raw.concurrency {
        None => default_concurrency(),
        Some(n) if (1..=MAX_CONCURRENCY).contains(&n) => {
            usize::try_from(n).unwrap_or_else(|_| default_concurrency())
        }
        Some(n) => {
            issues.value(
                "defaults.concurrency",
                format!("concurrency {n} is out of range: expected 1 to {MAX_CONCURRENCY}"),
            );
            default_concurrency()
        }
    };
    let ns_serial_grace = match &raw.ns_serial_grace {
        None => default_ns_serial_grace(),
        Some(text) => match issues.duration(text, "defaults.ns_serial_grace", false) {
            Some(grace) if grace > MAX_NS_SERIAL_GRACE => {
                issues.value(
                    "defaults.ns_serial_grace",
                    format!(
                        "ns_serial_grace {:?} is longer than {}: a lagging nameserver would go unreported",
                        text.as_str(),
                        format_duration(MAX_NS_SERIAL_GRACE)
                    ),
                );
                default_ns_serial_grace()
            }
            Some(grace) => grace,
            None => default_ns_serial_grace(),
        },
    };
    Defaults {
        interval,
        timeout,
        timeout_written: raw.timeout.is_some(),
        ns_serial_grace,
        resolvers: raw
            .resolvers
            .map(|r| resolvers(&r, "defaults.resolvers", issues))
            .unwrap_or_else(default_resolvers),
        authoritative: raw.authoritative.unwrap_or_else(default_authoritative),
        nameservers: raw
            .nameservers
            .map(|n| nameservers(&n, "defaults.nameservers", issues))
            .unwrap_or_default(),
        concurrency,
        analysis: std::sync::Arc::new(analysis),
        skip,
    }
}

/// `checks.skip`: check names, each known; sorted and deduplicated.
fn skip(raw: RawChecks, field: &str, issues: &mut Issues<'_>) -> Vec<CheckKind> {
    let mut out = Vec::new();
    for (i, name) in raw.skip.unwrap_or_default().iter().enumerate() {
        match name.as_str().trim().parse::<CheckKind>() {
            Ok(check) => out.push(check),
            Err(message) => issues.value(&format!("{field}.skip[{i}]"), message),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn timeout_message(timeout: Duration, interval: Duration) -> String {
    format!(
        "timeout {} is longer than interval {}: a check must end before the next one starts",
        format_duration(timeout),
        format_duration(interval)
    )
}

fn resolvers(list: &[Text], field: &str, issues: &mut Issues<'_>) -> Vec<ResolverSpec> {
    if list.is_empty() {
        issues.value(
            field,
            "empty resolver list: write [system] for the system resolver",
        );
    }
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        if text.as_str().trim() == "system" {
            out.push(ResolverSpec::System);
            continue;
        }
        match parse_server_addr(text.as_str()) {
            Ok(addr) => out.push(ResolverSpec::Addr(addr)),
            Err(message) => issues.value(
                &format!("{field}[{i}]"),
                format!("{message}, or \"system\""),
            ),
        }
    }
    out
}

fn nameservers(list: &[Text], field: &str, issues: &mut Issues<'_>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        match parse_server_addr(text.as_str()) {
            Ok(addr) => out.push(addr),
            Err(message) => issues.value(&format!("{field}[{i}]"), message),
        }
    }
    out
}

/// Validates `domains:` entries (each already deserialized, or `None` when its type error
/// was reported), checking names for duplicates across entries.
pub(crate) fn domains(
    entries: Vec<Option<RawDomain>>,
    defaults: &Defaults,
    presets: &Presets,
    issues: &mut Issues<'_>,
) -> Vec<DomainConfig> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let Some(raw) = entry else { continue };
        let field = format!("domains[{i}]");
        let name_field = format!("{field}.name");
        // Duplicates are found even when the entry has other errors (reported separately).
        let mut duplicate = false;
        if let Ok(name) = check_name(raw.name.as_str(), DOMAIN) {
            if let Some(first) = seen.get(&name) {
                let first_pos = issues.index().value(first);
                let this_pos = issues.index().value(&name_field);
                issues.value(
                    &name_field,
                    format!(
                        "duplicate domain {name:?}: listed at line {} ({first}) and line {}",
                        first_pos.line, this_pos.line
                    ),
                );
                duplicate = true;
            } else {
                seen.insert(name, name_field);
            }
        }
        if let Some(domain) = domain(raw, &field, defaults, presets, issues)
            && !duplicate
        {
            out.push(domain);
        }
    }
    out
}

/// Validates one domain entry; `None` when its name is invalid or anything else is.
fn domain(
    raw: RawDomain,
    field: &str,
    defaults: &Defaults,
    presets: &Presets,
    issues: &mut Issues<'_>,
) -> Option<DomainConfig> {
    let before = issues.list.len();
    let name = check_name(raw.name.as_str(), DOMAIN)
        .map_err(|message| issues.value(&format!("{field}.name"), message))
        .ok();

    let interval = match &raw.interval {
        None => defaults.interval,
        Some(text) => issues.duration(text, &format!("{field}.interval"), true),
    };
    let timeout = match &raw.timeout {
        None if defaults.timeout_written => defaults.timeout,
        // Not written anywhere: the default, clamped to this domain's interval.
        None => Some(interval.map_or_else(default_timeout, |i| default_timeout().min(i))),
        Some(text) => issues.duration(text, &format!("{field}.timeout"), true),
    };
    let overridden = raw.interval.is_some() || raw.timeout.is_some();
    if let (true, Some(interval), Some(timeout)) = (overridden, interval, timeout)
        && timeout > interval
    {
        let (key, other) = if raw.timeout.is_some() {
            ("timeout", "interval")
        } else {
            ("interval", "timeout")
        };
        let inherited = if raw.interval.is_none() || raw.timeout.is_none() {
            format!(" (the {other} comes from defaults)")
        } else {
            String::new()
        };
        issues.value(
            &format!("{field}.{key}"),
            format!("{}{inherited}", timeout_message(timeout, interval)),
        );
    }
    let resolvers = match &raw.resolvers {
        None => defaults.resolvers.clone(),
        Some(list) => resolvers(list, &format!("{field}.resolvers"), issues),
    };
    let nameservers = match &raw.nameservers {
        None => defaults.nameservers.clone(),
        Some(list) => nameservers(list, &format!("{field}.nameservers"), issues),
    };

    let provider = raw.provider.as_ref().map(|p| p.as_str().trim().to_string());
    let preset = provider.as_ref().and_then(|p| {
        let found = presets.get(p);
        if found.is_none() {
            let known: Vec<&str> = presets.keys().map(String::as_str).collect();
            issues.value(
                &format!("{field}.provider"),
                format!(
                    "unknown provider {p:?}; known providers: {} (or define it under `providers:`)",
                    known.join(", ")
                ),
            );
        }
        found
    });
    let raw_expect = raw.expect.unwrap_or_default();
    let explicit_mx = raw_expect.mx.is_some();
    let explicit_includes = raw_expect
        .spf
        .as_ref()
        .is_some_and(|spf| spf.includes.is_some());
    let mut expect = expectations(raw_expect, &format!("{field}.expect"), issues);
    let labels = labels(
        raw.labels.unwrap_or_default(),
        &format!("{field}.labels"),
        issues,
    );

    let skip = match raw.checks {
        None => defaults.skip.clone(),
        Some(checks) => skip(checks, &format!("{field}.checks"), issues),
    };
    let name = name?;
    if let Some(preset) = preset {
        preset.apply(&name, &mut expect, explicit_mx, explicit_includes);
    }
    if issues.list.len() > before {
        return None;
    }
    Some(DomainConfig {
        name,
        interval: interval.unwrap_or_else(default_interval),
        timeout: timeout.unwrap_or_else(default_timeout),
        resolvers,
        authoritative: raw.authoritative.unwrap_or(defaults.authoritative),
        nameservers,
        provider,
        expect,
        labels,
        analysis: defaults.analysis.clone(),
        skip,
    })
}

fn expectations(raw: RawExpect, field: &str, issues: &mut Issues<'_>) -> Expectations {
    let mut expect = Expectations::default();
    if let Some(hosts) = raw.mx {
        let mut checked = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            if host.as_str().trim() == "." {
                // The null MX (RFC 7505): the domain accepts no mail.
                checked.push(".".to_owned());
                continue;
            }
            match check_name(host.as_str(), HOST) {
                Ok(host) => checked.push(host),
                Err(message) => issues.value(&format!("{field}.mx[{i}]"), message),
            }
        }
        expect.mx = Some(MxExpectation { hosts: checked });
    }
    if let Some(spf) = raw.spf {
        let mut out = super::SpfExpectation::default();
        for (i, include) in spf.includes.unwrap_or_default().iter().enumerate() {
            match check_spf_include(include.as_str()) {
                Ok(name) => out.includes.push(name),
                Err(message) => issues.value(&format!("{field}.spf.includes[{i}]"), message),
            }
        }
        if let Some(all) = spf.all {
            match spf_all(all.as_str()) {
                Ok(all) => out.all = Some(all),
                Err(message) => issues.value(&format!("{field}.spf.all"), message),
            }
        }
        if let Some(record) = spf.record {
            match spf_record(record.as_str()) {
                Ok(record) => out.record = Some(record),
                Err(message) => issues.value(&format!("{field}.spf.record"), message),
            }
        }
        out.authorizes = super::spf::authorized_senders(
            spf.authorizes.unwrap_or_default(),
            &format!("{field}.spf.authorizes"),
            issues,
        );
        expect.spf = Some(out);
    }
    if let Some(dmarc) = raw.dmarc {
        let policy = dmarc.policy.as_str().trim().to_ascii_lowercase();
        if ["none", "quarantine", "reject"].contains(&policy.as_str()) {
            expect.dmarc = Some(DmarcExpectation { policy });
        } else {
            issues.value(
                &format!("{field}.dmarc.policy"),
                format!(
                    "unknown DMARC policy {:?}; expected none, quarantine or reject",
                    dmarc.policy.as_str()
                ),
            );
        }
    }
    if let Some(dkim) = raw.dkim {
        let mut selectors = Vec::new();
        for (i, selector) in dkim.selectors.iter().enumerate() {
            match check_name(selector.as_str(), SELECTOR) {
                Ok(s) => selectors.push(s),
                Err(message) => issues.value(&format!("{field}.dkim.selectors[{i}]"), message),
            }
        }
        expect.dkim = Some(DkimExpectation { selectors });
    }
    expect
}

/// Checks an exact SPF record: `v=spf1` first; returned with its white space collapsed.
pub(crate) fn spf_record(text: &str) -> Result<String, String> {
    let record = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let version = record.split(' ').next().unwrap_or_default();
    if !version.eq_ignore_ascii_case("v=spf1") {
        return Err(format!(
            "{text:?} is not an SPF record: it must start with \"v=spf1\""
        ));
    }
    Ok(record)
}

/// Checks an SPF `all` qualifier term.
fn spf_all(text: &str) -> Result<String, String> {
    match text.trim() {
        all @ ("-all" | "~all" | "?all" | "+all") => Ok(all.to_string()),
        "all" => Err(
            "\"all\" alone means \"+all\" (anyone may send): write \"+all\" if you mean it, \
             or \"-all\"/\"~all\""
                .to_string(),
        ),
        _ => Err(format!(
            "invalid SPF all term {text:?}; expected one of -all, ~all, ?all, +all"
        )),
    }
}

fn labels(
    raw: BTreeMap<String, Text>,
    field: &str,
    issues: &mut Issues<'_>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        match check_label_name(&name) {
            Ok(()) => {
                out.insert(name, value.0);
            }
            Err(message) => issues.key(&format!("{field}.{name}"), message),
        }
    }
    out
}
