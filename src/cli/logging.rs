//! Logging on stderr: `--log.format logfmt|json` (`text` is an alias of `logfmt`, as in the
//! Prometheus exporter toolkit) and `--log.level`.

use super::{Cli, Command};
use clap::ValueEnum;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs (logfmt), one event per line.
    #[value(alias = "text")]
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The DNS libraries, capped at `warn` under a bare level: hickory logs every query at `info`.
const DNS_LIBRARIES: [&str; 4] = [
    "hickory_server",
    "hickory_proto",
    "hickory_resolver",
    "hickory_net",
];

/// The tracing filter for `--log.level`: a bare level applies to maildrift and caps the DNS
/// libraries at `warn` — at `error` for the server when `quiet_server` (the demo's embedded
/// server warns about every query it does not serve). Anything else is a full tracing
/// filter, used as given, so `--log.level info,hickory_server=warn` shows those again.
pub fn log_filter(level: &str, quiet_server: bool) -> String {
    let bare = ["trace", "debug", "info", "warn", "error", "off"];
    if !bare.contains(&level.trim().to_ascii_lowercase().as_str()) {
        return level.to_owned();
    }
    let mut filter = level.trim().to_owned();
    for library in DNS_LIBRARIES {
        let cap = if quiet_server && library == "hickory_server" {
            "error"
        } else {
            "warn"
        };
        filter.push_str(&format!(",{library}={cap}"));
    }
    filter
}

/// Sets up tracing on stderr.
pub fn init_tracing(cli: &Cli) {
    let common = &cli.common;
    let quiet_server = matches!(cli.command, Command::Demo(_));
    let filter =
        tracing_subscriber::EnvFilter::try_new(log_filter(&common.log_level, quiet_server))
            .unwrap_or_else(|e| {
                eprintln!(
                    "invalid --log.level {:?} ({e}); using info",
                    common.log_level
                );
                tracing_subscriber::EnvFilter::new(log_filter("info", quiet_server))
            });
    match common.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .init(),
        LogFormat::Logfmt => tracing_logfmt::builder()
            .with_span_path(false)
            .subscriber_builder()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_levels_quiet_the_dns_libraries() {
        let daemon = log_filter("info", false);
        assert!(daemon.starts_with("info,"), "{daemon}");
        assert!(daemon.contains("hickory_server=warn"), "{daemon}");
        assert!(daemon.contains("hickory_resolver=warn"), "{daemon}");
        let demo = log_filter("info", true);
        assert!(demo.contains("hickory_server=error"), "{demo}");
        assert!(demo.contains("hickory_proto=warn"), "{demo}");
        assert_eq!(log_filter("maildrift=debug", true), "maildrift=debug");
    }
}
