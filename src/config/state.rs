//! `state:`: how long the event timeline is kept, and where the store lives: SQLite in
//! `--state-dir` by default, or a shared PostgreSQL database (`url`, fleet mode).

use super::SecretSource;
use super::issues::Issues;
use super::raw::Text;
use serde::Deserialize;
use std::time::Duration;

/// Events older than this are deleted unless the config says otherwise.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// At most this many events are kept unless the config says otherwise.
pub(crate) const DEFAULT_MAX_EVENTS: u64 = 1_000_000;

/// How long events are kept; `None` fields mean unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are deleted.
    pub max_age: Option<Duration>,
    /// At most this many events are kept (the newest).
    pub max_events: Option<u64>,
}

/// `state:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ retention: { max_age: 90d, max_events: 1000000 } }` or `{ url: postgres://maildrift@db/maildrift, password_file: /run/secrets/pg }`"
)]
pub(crate) struct RawState {
    /// Bounds of the event timeline.
    pub(crate) retention: Option<RawRetention>,
    /// `postgres://user@host:port/database`: the shared store of a fleet.
    pub(crate) url: Option<Text>,
    /// A file holding the database password.
    pub(crate) password_file: Option<Text>,
    /// An environment variable holding the database password.
    pub(crate) password_env: Option<Text>,
}

/// `state.retention:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `max_age` (e.g. 90d) and/or `max_events` (e.g. 1000000)"
)]
pub(crate) struct RawRetention {
    /// Delete events older than this.
    pub(crate) max_age: Option<Text>,
    /// Keep at most this many events.
    pub(crate) max_events: Option<i64>,
}

/// Validated `state:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// Event retention; both bounds always set (defaults 90 days, 1,000,000 events).
    pub retention: Retention,
    /// The shared PostgreSQL store (`None`: SQLite in `--state-dir`). `--state.url`
    /// replaces the URL.
    pub url: Option<String>,
    /// Where the database password is read from (never written in the URL).
    pub password: Option<SecretSource>,
}

impl Default for StateConfig {
    fn default() -> StateConfig {
        StateConfig {
            retention: Retention {
                max_age: Some(DEFAULT_MAX_AGE),
                max_events: Some(DEFAULT_MAX_EVENTS),
            },
            url: None,
            password: None,
        }
    }
}

/// Checks a `postgres://` URL: the scheme, that the driver can read it, and that it holds
/// no password (passwords come from a file or the environment). The message never repeats
/// the URL, which could hold one.
pub fn check_postgres_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("expected a postgres:// or postgresql:// URL".into());
    }
    let parsed: postgres::Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if parsed.get_password().is_some() {
        return Err(
            "the URL holds a password: give it in `password_file` or `password_env` instead".into(),
        );
    }
    Ok(())
}

/// Checks `state:`, recording every problem.
pub(crate) fn validate(raw: RawState, issues: &mut Issues<'_>) -> StateConfig {
    let mut config = StateConfig::default();
    if let Some(url) = &raw.url {
        match check_postgres_url(url.as_str()) {
            Ok(()) => config.url = Some(url.as_str().trim().to_string()),
            Err(message) => issues.value("state.url", message),
        }
    }
    config.password = super::alerting::secret(
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
        "state",
        "password",
        issues,
    );
    let Some(retention) = raw.retention else {
        return config;
    };
    if let Some(text) = &retention.max_age
        && let Some(age) = issues.duration(text, "state.retention.max_age", true)
    {
        config.retention.max_age = Some(age);
    }
    match retention.max_events {
        Some(n) if n < 1 => issues.value(
            "state.retention.max_events",
            format!("{n} must be at least 1"),
        ),
        Some(n) => config.retention.max_events = Some(n as u64),
        None => {}
    }
    config
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn retention_defaults_values_and_errors() {
        let parse = |text: &str| Config::parse(text, Path::new("t.yml"));
        let config = parse("domains: []\n").unwrap();
        assert_eq!(config.state.retention.max_age, Some(super::DEFAULT_MAX_AGE));
        assert_eq!(config.state.retention.max_events, Some(1_000_000));

        let config =
            parse("state:\n  retention: { max_age: 7d, max_events: 500 }\ndomains: []\n").unwrap();
        assert_eq!(
            config.state.retention.max_age,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(config.state.retention.max_events, Some(500));

        let err = parse("state:\n  retention:\n    max_age: 0s\n    max_events: 0\ndomains: []\n")
            .unwrap_err()
            .to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with(
                "t.yml:3:14: state.retention.max_age: \"0s\" must be greater than zero"
            ),
            "{err}"
        );
        assert!(
            lines[1].starts_with("t.yml:4:17: state.retention.max_events: 0 must be at least 1"),
            "{err}"
        );
        let config = parse(
            "state:\n  url: postgres://maildrift@db:5432/maildrift\n  password_env: PGPW\ndomains: []\n",
        )
        .unwrap();
        assert_eq!(
            config.state.url.as_deref(),
            Some("postgres://maildrift@db:5432/maildrift")
        );
        assert_eq!(
            config.state.password,
            Some(crate::config::SecretSource::Env("PGPW".into()))
        );
        let err = parse("state:\n  url: postgres://u:hunter2@db/m\ndomains: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("state.url: the URL holds a password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse(
            "state:\n  url: mysql://db/m\n  password_file: /p\n  password_env: P\ndomains: []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("expected a postgres:// or postgresql:// URL"),
            "{err}"
        );
        assert!(
            err.contains("set either `password_file` or `password_env`, not both"),
            "{err}"
        );
        let err = parse("state:\n  retention:\n    rows: 3\ndomains: []\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.yml:3:5: state.retention.rows: unknown field `rows`"),
            "{err}"
        );
    }
}
