//! Command-line interface (SPEC.md "Binary and commands"): arguments, logging set-up, and
//! the commands' terminal output. The only module that prints to stdout.
#![allow(clippy::print_stdout)]

mod accept;
mod daemon_api;
mod incident;
mod logging;
mod progress;
mod spf;
mod web;

pub use daemon_api::DaemonArgs;
pub use incident::{IncidentCommand, NoteArgs};
pub use logging::{LogFormat, init_tracing, log_filter};
pub use web::{parse_listen_address, parse_telemetry_path};

use crate::app::{self, RunOptions, Shard};
use crate::config::Config;
use crate::dns::parse_server_addr;
use crate::finding::CheckKind;
use crate::{demo, report};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Watches the mail DNS of many domains and alerts on drift.
#[derive(Debug, Parser)]
#[command(name = "maildrift", version, about)]
pub struct Cli {
    /// Flags shared by every command.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command (each has a `MAILDRIFT_*` environment equivalent).
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Log format (`text` is an alias of `logfmt`).
    #[arg(
        long = "log.format",
        env = "MAILDRIFT_LOG_FORMAT",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,
    /// Log level or tracing filter (e.g. `info`, `debug`, `maildrift=debug`).
    #[arg(
        long = "log.level",
        env = "MAILDRIFT_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,
    /// Recursive resolver to ask instead of the configured ones (repeatable; IP or IP:PORT).
    #[arg(long = "resolver", env = "MAILDRIFT_RESOLVER", value_parser = parse_server_addr, value_delimiter = ',', global = true)]
    pub resolvers: Vec<SocketAddr>,
    /// Authoritative server to ask instead of discovering NS records (repeatable; IP or IP:PORT).
    #[arg(long = "nameserver", env = "MAILDRIFT_NAMESERVER", value_parser = parse_server_addr, value_delimiter = ',', global = true)]
    pub nameservers: Vec<SocketAddr>,
    /// At most this many DNS queries per second in all (resolvers and nameservers alike);
    /// queries over the budget wait their turn. Default: no limit.
    #[arg(long = "dns.max-qps", env = "MAILDRIFT_DNS_MAX_QPS", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub dns_max_qps: Option<u32>,
    /// At most this many DNS queries per second to any one server asked directly (a
    /// domain's nameservers, the resolvers compared with them). Default: no limit.
    #[arg(long = "dns.max-qps-per-server", env = "MAILDRIFT_DNS_MAX_QPS_PER_SERVER", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub dns_max_qps_per_server: Option<u32>,
    /// Directory of the state database (baselines, incidents, event timeline).
    #[arg(
        long = "state-dir",
        env = "MAILDRIFT_STATE_DIR",
        default_value = "./data",
        global = true
    )]
    pub state_dir: PathBuf,
    /// The state store shared by a fleet's shards and replicas:
    /// `postgres://user@host:port/database` (the password from `state.password_file` or
    /// `state.password_env` in the config, never in the URL). Replaces `--state-dir`.
    #[arg(long = "state.url", env = "MAILDRIFT_STATE_URL", global = true)]
    pub state_url: Option<String>,
    /// A file holding the password of `--state.url` (replaces `state.password_file` and
    /// `state.password_env`; a Kubernetes Secret mounted as a file).
    #[arg(
        long = "state.password-file",
        env = "MAILDRIFT_STATE_PASSWORD_FILE",
        global = true
    )]
    pub state_password_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(RunArgs),
    /// Check a config file and the files it names; every error is listed with line:column.
    Validate {
        /// The config file.
        file: PathBuf,
        /// Check only the config file itself, not the secret, URL and certificate files it
        /// names (e.g. on a machine without them).
        #[arg(long)]
        syntax_only: bool,
    },
    /// One-shot analysis of the given domains (or every domain in --config).
    Check(CheckArgs),
    /// Embedded DNS server with sample zones, the daemon watching them, and a scripted drift.
    Demo(DemoArgs),
    /// RFC 7208 check_host() for one connection: result, explanation, lookups, trace.
    Spf(spf::SpfArgs),
    /// Learned baselines.
    Baseline {
        /// What to do with them.
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Incident records.
    Incident {
        /// What to do with them.
        #[command(subcommand)]
        command: IncidentCommand,
    },
}

/// `maildrift baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Accept the current records as the new learned baseline (clears drift). Talks to the
    /// running daemon; when none answers, writes to the state directory directly.
    Accept(AcceptArgs),
}

/// `maildrift baseline accept`.
#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The domain.
    pub domain: String,
    /// Only this check (default: every check compared with a learned baseline).
    #[arg(long, value_parser = clap::value_parser!(CheckKind))]
    pub check: Option<CheckKind>,
    /// Where the daemon is.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// `maildrift run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, env = "MAILDRIFT_CONFIG")]
    pub config: PathBuf,
    /// Address to serve metrics, health and the API on (`:PORT` means every interface);
    /// repeatable.
    #[arg(
        long = "web.listen-address",
        env = "MAILDRIFT_WEB_LISTEN_ADDRESS",
        default_value = ":9725",
        value_delimiter = ','
    )]
    pub listen_addresses: Vec<String>,
    /// Serve on the sockets systemd passes (socket activation) instead of
    /// --web.listen-address.
    #[arg(long = "web.systemd-socket", env = "MAILDRIFT_WEB_SYSTEMD_SOCKET")]
    pub systemd_socket: bool,
    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        env = "MAILDRIFT_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_parser = parse_telemetry_path
    )]
    pub telemetry_path: String,
    /// Watch only shard I of N (`I/N`, 0-based; `auto/N` takes I from the host name's
    /// trailing ordinal, as in a StatefulSet): domains are split by rendezvous hashing.
    #[arg(long, env = "MAILDRIFT_SHARD", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// TLS and basic auth for the HTTP server (Prometheus exporter-toolkit format); re-read
    /// when it or the certificates it names change.
    #[arg(long = "web.config.file", env = "MAILDRIFT_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Language of the status pages, `en` or `zh-CN` (default: each browser's
    /// Accept-Language).
    #[arg(long = "web.language", env = "MAILDRIFT_WEB_LANGUAGE")]
    pub language: Option<crate::config::Language>,
}

/// Output format of `check` and `spf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// A table for people.
    Text,
    /// SPEC.md's JSON shape.
    Json,
}

/// `maildrift check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config file with domains and expectations.
    #[arg(long, env = "MAILDRIFT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
    /// Domains to check (default: every domain in --config).
    pub domains: Vec<String>,
}

/// `maildrift demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address for the demo daemon's HTTP server.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9725")]
    pub listen_address: String,
    /// Stop after this long (e.g. `90s`); default: run until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// When the scripted MX drift happens.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub drift_after: Duration,
    /// Check interval of the demo domains.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub interval: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

/// A token cancelled by SIGTERM or SIGINT.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).ok();
            let term = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
                _ = term => tracing::info!("SIGTERM received; shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        trigger.cancel();
    });
    token
}

/// Runs the parsed command; the exit code follows SPEC.md.
pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let options = |shard| RunOptions {
        resolvers: cli.common.resolvers.clone(),
        nameservers: cli.common.nameservers.clone(),
        shard,
        state_dir: Some(cli.common.state_dir.clone()),
        web_config: None,
        telemetry_path: None,
        dns_limits: crate::dns::rate::DnsLimits {
            max_qps: cli.common.dns_max_qps,
            max_qps_per_server: cli.common.dns_max_qps_per_server,
        },
        language: None,
    };
    match &cli.command {
        Command::Run(args) => {
            if let Some(url) = &cli.common.state_url {
                // The message never repeats the URL: it could hold a password.
                crate::config::check_postgres_url(url)
                    .map_err(|e| anyhow::anyhow!("--state.url: {e}"))?;
            }
            let mut config = Config::load_checking_files(&args.config)
                .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
            if let Some(url) = &cli.common.state_url {
                config.state.url = Some(url.trim().to_string());
            }
            if let Some(file) = &cli.common.state_password_file {
                config.state.password = Some(crate::config::SecretSource::File(file.clone()));
            }
            let web_config = match &args.web_config_file {
                Some(file) => Some(std::sync::Arc::new(
                    crate::http::web_config::WebConfig::load(file)
                        .map_err(|e| anyhow::anyhow!("invalid web config: {e}"))?,
                )),
                None => None,
            };
            let listener = web::listeners(args).await?;
            let options = RunOptions {
                web_config,
                telemetry_path: Some(args.telemetry_path.clone()),
                language: args.language,
                ..options(args.shard)
            };
            app::run(config, options, listener, shutdown_on_signals()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file, syntax_only } => match if *syntax_only {
            Config::load(file)
        } else {
            Config::load_checking_files(file)
        } {
            Ok(config) => {
                println!(
                    "{}: valid, {} domains",
                    file.display(),
                    config.domains.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                println!("{e}");
                println!("{}: {} errors", file.display(), e.issues.len());
                Ok(ExitCode::from(1))
            }
        },
        Command::Check(args) => {
            let config = match report::check_config(args.config.as_deref(), &args.domains) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let options = options(None);
            let progress = progress::Progress::on_stderr(options.domains(&config).len());
            // Each domain is written as soon as it and every domain before it are done,
            // then dropped: memory does not grow with the number of domains.
            let mut out = std::io::stdout().lock();
            let mut outcome = report::Outcome::default();
            let mut written = 0usize;
            let mut failed: Option<std::io::Error> = None;
            let colour = {
                use std::io::IsTerminal;
                std::io::stdout().is_terminal()
            };
            if args.format == CheckFormat::Json {
                write!(out, "{{\"domains\": [")?;
            }
            let streamed = report::run_streaming(&config, &options, |domain| {
                progress.inc();
                outcome.add(&domain);
                let result = match args.format {
                    CheckFormat::Json => {
                        let separator = if written == 0 { "\n" } else { ",\n" };
                        let json = serde_json::to_string_pretty(&report::domain_json(&domain))
                            .unwrap_or_default();
                        write!(out, "{separator}{json}")
                    }
                    CheckFormat::Text => {
                        write!(
                            out,
                            "{}",
                            report::to_text(std::slice::from_ref(&domain), colour)
                        )
                    }
                };
                written += 1;
                if let Err(error) = result {
                    failed.get_or_insert(error);
                }
            })
            .await;
            progress.finish();
            streamed?;
            if args.format == CheckFormat::Json {
                writeln!(out, "\n]}}")?;
            }
            out.flush()?;
            if let Some(error) = failed {
                return Err(error.into());
            }
            Ok(ExitCode::from(outcome.exit_code()))
        }
        Command::Demo(args) => {
            let listener = web::bind(&args.listen_address).await?;
            let settings = demo::DemoSettings {
                duration: args.duration,
                drift_after: args.drift_after,
                interval: args.interval,
            };
            demo::run(
                settings,
                listener,
                shutdown_on_signals(),
                &mut std::io::stdout(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Spf(args) => spf::spf(args, &options(None)).await,
        Command::Baseline {
            command: BaselineCommand::Accept(args),
        } => accept::accept(args, &cli.common.state_dir).await,
        Command::Incident {
            command: IncidentCommand::Note(args),
        } => incident::note(args, &cli.common.state_dir).await,
    }
}
