//! Configuration: raw YAML → validated [`Config`], every error at once, each with file,
//! line:column and field.

mod alert_names;
mod alerting;
mod analysis;
mod duration;
mod expect;
mod files;
mod issues;
mod language;
mod names;
mod position;
mod providers;
mod raw;
mod reputation;
#[cfg(test)]
mod scope_tests;
mod series;
mod spf;
mod state;
#[cfg(test)]
mod tests;
mod transport;
mod validate;

pub use alert_names::{AlertName, RUNBOOK_URL};
pub use alerting::{
    AlertOverride, AlertingConfig, BasicAuth, HttpClientConfig, SecretSource, TlsConfig,
    WebhookConfig, WebhookFormat, WebhookUrl,
};
pub use analysis::{AnalysisSettings, DnssecSettings, MtaStsSettings, read_ca_file};
pub use duration::parse_duration;
pub use expect::{DkimExpectation, DmarcExpectation, Expectations, MxExpectation, SpfExpectation};
pub use language::Language;
pub use reputation::{DnsblSettings, RdapSettings};
pub use series::MetricsConfig;
pub use spf::AuthorizedSender;
pub use state::{Retention, StateConfig, check_postgres_url};
pub use transport::{BimiSettings, SmtpSettings};

use issues::Issues;
use raw::{RawAlerting, RawDefaults, RawDomain, RawTop};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (for messages and reloads).
    pub source: PathBuf,
    /// Domains to watch, defaults already applied, names normalised and unique.
    pub domains: Vec<DomainConfig>,
    /// Daemon-wide settings.
    pub global: GlobalConfig,
    /// Where alerts go; `None` when the file has no `alerting:` section.
    pub alerting: Option<AlertingConfig>,
    /// The state store's settings (`state:`; defaults when absent).
    pub state: StateConfig,
    /// What `/metrics` shows (`metrics:`; defaults when absent).
    pub metrics: MetricsConfig,
}

/// Settings that are not per domain.
#[derive(Clone, Debug)]
pub struct GlobalConfig {
    /// At most this many domain checks run at once.
    pub concurrency: usize,
    /// How long a zone's servers may disagree on the SOA serial before `ns_serial_mismatch`.
    pub ns_serial_grace: Duration,
}

impl Default for GlobalConfig {
    fn default() -> GlobalConfig {
        GlobalConfig {
            concurrency: validate::default_concurrency(),
            ns_serial_grace: validate::default_ns_serial_grace(),
        }
    }
}

/// A recursive resolver to ask.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResolverSpec {
    /// The system configuration (/etc/resolv.conf).
    System,
    /// One server.
    Addr(SocketAddr),
}

/// One watched domain, with defaults applied.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// Normalised name (lower case, no trailing dot).
    pub name: String,
    /// How often it is checked.
    pub interval: Duration,
    /// Deadline for one check of this domain.
    pub timeout: Duration,
    /// Recursive resolvers.
    pub resolvers: Vec<ResolverSpec>,
    /// Also ask the authoritative servers directly.
    pub authoritative: bool,
    /// Authoritative servers to ask instead of discovering NS records (empty: discover).
    pub nameservers: Vec<SocketAddr>,
    /// Provider preset name, if any.
    pub provider: Option<String>,
    /// What the mail DNS should look like (preset merged, explicit keys win).
    pub expect: Expectations,
    /// Extra labels for alerts.
    pub labels: BTreeMap<String, String>,
    /// MTA-STS fetch and DNSSEC settings (from `defaults:`, shared by every domain).
    pub analysis: std::sync::Arc<AnalysisSettings>,
    /// Checks left out for this domain (`checks.skip`, the domain's or `defaults`'):
    /// they export nothing and never alert. Sorted.
    pub skip: Vec<crate::finding::CheckKind>,
}

impl DomainConfig {
    /// A domain with every default: no expectation, the default resolvers, asked
    /// authoritatively (what `maildrift check DOMAIN` watches without a config file).
    pub fn new(name: &str) -> DomainConfig {
        DomainConfig {
            name: crate::dns::normalize_name(name),
            interval: validate::default_interval(),
            timeout: validate::default_timeout(),
            resolvers: validate::default_resolvers(),
            authoritative: validate::default_authoritative(),
            nameservers: Vec::new(),
            provider: None,
            expect: Expectations::default(),
            labels: BTreeMap::new(),
            analysis: Default::default(),
            skip: Vec::new(),
        }
    }
}

/// Every problem found in one config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub issues: Vec<ConfigIssue>,
}

/// One problem, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line (0 when unknown, e.g. the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted path of the field, e.g. `domains[2].expect.mx`.
    pub field: String,
    /// What is wrong, quoting the bad value.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    /// One line per issue: `FILE:LINE:COL: FIELD: MESSAGE` (`FILE: MESSAGE` when the issue
    /// has no position or field).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.display();
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if issue.line == 0 {
                write!(f, "{file}: ")?;
            } else {
                write!(f, "{file}:{}:{}: ", issue.line, issue.column)?;
            }
            if !issue.field.is_empty() {
                write!(f, "{}: ", issue.field)?;
            }
            write!(f, "{}", issue.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error made of `issues`, sorted by position (stable for equal positions).
    fn new(file: &Path, mut issues: Vec<ConfigIssue>) -> ConfigError {
        issues.sort_by_key(|i| (i.line, i.column));
        ConfigError {
            file: file.to_path_buf(),
            issues,
        }
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&read(path)?, path)
    }

    /// Reads and validates a file, and checks the files it names (secrets, URL files,
    /// certificates and keys): each must be readable and hold what its field says.
    pub fn load_checking_files(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let config = Config::parse(&text, path)?;
        let mut issues = Issues::new(&text);
        files::check(&config, &mut issues);
        if issues.list.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::new(path, issues.list))
        }
    }

    /// Validates YAML text; `source` is used in messages.
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
        let mut issues = Issues::new(text);
        let config = parse_document(text, source, &mut issues);
        match config {
            Some(config) if issues.list.is_empty() => Ok(config),
            _ => Err(ConfigError::new(source, issues.list)),
        }
    }

    /// Things worth a warning that are not errors (e.g. no domains to watch).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.domains.is_empty() {
            warnings.push(format!(
                "{}: `domains:` is empty: nothing will be watched",
                self.source.display()
            ));
        }
        warnings
    }
}

/// Largest config file read (16 MiB: about 300,000 domains of one line each). A larger
/// file is refused before it is read or parsed.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// The file's text, or one issue saying why it cannot be read: unreadable, larger than
/// [`MAX_CONFIG_BYTES`], or not UTF-8 (at the line and column of the first bad byte).
fn read(path: &Path) -> Result<String, ConfigError> {
    let issue = |line: usize, column: usize, message: String| {
        ConfigError::new(
            path,
            vec![ConfigIssue {
                line,
                column,
                field: String::new(),
                message,
            }],
        )
    };
    let cannot_read =
        |err: std::io::Error| issue(0, 0, format!("cannot read the config file: {err}"));
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
        &mut bytes,
    )
    .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(issue(
            0,
            0,
            format!(
                "the config file is larger than {} MiB, the most a config may be",
                MAX_CONFIG_BYTES / 1024 / 1024
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|err| {
        let bytes = err.as_bytes();
        let at = err.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Characters, not bytes, before the bad byte on its line (the prefix is UTF-8).
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        issue(
            line,
            column,
            format!(
                "the config file is not UTF-8: byte 0x{:02X} cannot start a character \
                 (save the file as UTF-8)",
                bytes[at]
            ),
        )
    })
}

/// Parses and validates, recording every issue; `None` when nothing can be built.
fn parse_document(text: &str, source: &Path, issues: &mut Issues<'_>) -> Option<Config> {
    let document: yaml_serde::Value = match yaml_serde::from_str(text) {
        Ok(document) => document,
        Err(err) => {
            syntax_error(&err, text, issues);
            return None;
        }
    };
    let top = split_top(document, issues)?;

    let mut presets = match providers::builtin() {
        Ok(presets) => presets,
        Err(message) => {
            issues.push(0, 0, "providers", format!("built-in presets: {message}"));
            BTreeMap::new()
        }
    };
    if let Some(user) = top.providers {
        presets.extend(providers::parse(user, "providers", issues));
    }

    let raw_defaults = match top.defaults {
        None => RawDefaults::default(),
        Some(value) => issues.deserialize(value, "defaults").unwrap_or_default(),
    };
    let defaults = validate::defaults(raw_defaults, issues);

    let entries: Vec<Option<RawDomain>> = match top.domains.unwrap_or_default() {
        yaml_serde::Value::Null => Vec::new(),
        yaml_serde::Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| issues.deserialize(item, &format!("domains[{i}]")))
            .collect(),
        _ => {
            issues.value(
                "domains",
                "expected a list of domains (`- name: example.com`)",
            );
            Vec::new()
        }
    };
    let domains = validate::domains(entries, &defaults, &presets, issues);

    let alerting = top
        .alerting
        .filter(|value| !value.is_null())
        .and_then(|value| issues.deserialize::<RawAlerting>(value, "alerting"))
        .map(|raw| alerting::validate(raw, issues));

    let state = top
        .state
        .filter(|value| !value.is_null())
        .and_then(|value| issues.deserialize::<state::RawState>(value, "state"))
        .map(|raw| state::validate(raw, issues))
        .unwrap_or_default();

    let metrics = top
        .metrics
        .filter(|value| !value.is_null())
        .and_then(|value| issues.deserialize::<series::RawMetrics>(value, "metrics"))
        .map(MetricsConfig::from)
        .unwrap_or_default();

    Some(Config {
        source: source.to_path_buf(),
        domains,
        global: GlobalConfig {
            concurrency: defaults.concurrency,
            ns_serial_grace: defaults.ns_serial_grace,
        },
        alerting,
        state,
        metrics,
    })
}

/// Splits the top-level mapping into its sections, reporting unknown keys and a missing
/// `domains:` without stopping.
fn split_top(document: yaml_serde::Value, issues: &mut Issues<'_>) -> Option<RawTop> {
    let expected = RawTop::KEYS.map(|k| format!("`{k}`")).join(", ");
    let yaml_serde::Value::Mapping(mapping) = document else {
        issues.value("", format!("expected a mapping with the keys {expected}"));
        return None;
    };
    let mut top = RawTop::default();
    for (key, value) in mapping {
        let Some(key) = key.as_str() else {
            issues.value(
                "",
                format!("top-level keys must be strings; expected {expected}"),
            );
            continue;
        };
        let slot = match key {
            "defaults" => &mut top.defaults,
            "domains" => &mut top.domains,
            "alerting" => &mut top.alerting,
            "providers" => &mut top.providers,
            "state" => &mut top.state,
            "metrics" => &mut top.metrics,
            other => {
                issues.key(
                    other,
                    format!("unknown field `{other}`, expected one of {expected}"),
                );
                continue;
            }
        };
        *slot = Some(value);
    }
    if top.domains.is_none() {
        issues.value(
            "",
            "missing field `domains` (write `domains: []` to watch nothing)",
        );
    }
    Some(top)
}

/// Records a YAML syntax error (or a duplicate key) at the position yaml_serde gives.
fn syntax_error(err: &yaml_serde::Error, text: &str, issues: &mut Issues<'_>) {
    let mut message = err.to_string();
    let (mut line, mut column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut field = String::new();
    if message.contains("duplicate entry") {
        // yaml_serde points at the mapping; point at the repeated key instead.
        let index = issues.index();
        if let Some((path, pos)) = index.duplicate_keys().first() {
            let key = path.rsplit('.').next().unwrap_or(path);
            let first = index.key(path);
            (line, column, field) = (pos.line, pos.column, path.clone());
            message = format!("duplicate key {key:?} (first set at line {})", first.line);
        }
    } else if message.contains("repetition limit exceeded") {
        // yaml_serde gives no position: point at the first alias.
        (line, column) = first_alias(text).unwrap_or((0, 0));
        message = "aliases expand to too many values (repetition limit exceeded): \
                   write the values out instead of nesting aliases"
            .to_owned();
    } else if message.contains("found character that cannot start any token")
        && text
            .lines()
            .nth(line.saturating_sub(1))
            .and_then(|l| l.chars().nth(column.saturating_sub(1)))
            == Some('\t')
    {
        message = "a tab character: YAML indents with spaces only".to_owned();
    } else if line > 0 && message.matches(" at line ").count() == 1 {
        // A lone " at line L column C" suffix repeats the issue's own position.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
    }
    issues.push(
        line,
        column,
        &field,
        format!("YAML syntax error: {message}"),
    );
}

/// Line and column (from 1) of the first alias (`*name`) in `text`, if any.
fn first_alias(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let chars: Vec<char> = line.chars().collect();
        (0..chars.len())
            .find(|&j| {
                chars[j] == '*'
                    && (j == 0 || matches!(chars[j - 1], ' ' | '[' | ',' | '{'))
                    && chars
                        .get(j + 1)
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            })
            .map(|j| (i + 1, j + 1))
    })
}
