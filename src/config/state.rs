//! `state:`: how long the event timeline is kept (the store itself lives in `--state-dir`).

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
    expecting = "a mapping such as `{ retention: { max_age: 90d, max_events: 1000000 } }`"
)]
pub(crate) struct RawState {
    /// Bounds of the event timeline.
    pub(crate) retention: Option<RawRetention>,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// Event retention; both bounds always set (defaults 90 days, 1,000,000 events).
    pub retention: Retention,
}

impl Default for StateConfig {
    fn default() -> StateConfig {
        StateConfig {
            retention: Retention {
                max_age: Some(DEFAULT_MAX_AGE),
                max_events: Some(DEFAULT_MAX_EVENTS),
            },
        }
    }
}

/// Checks `state:`, recording every problem.
pub(crate) fn validate(raw: RawState, issues: &mut Issues<'_>) -> StateConfig {
    let mut config = StateConfig::default();
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
        let err = parse("state:\n  retention:\n    rows: 3\ndomains: []\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.yml:3:5: state.retention.rows: unknown field `rows`"),
            "{err}"
        );
    }
}
