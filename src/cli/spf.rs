//! `maildrift spf IP SENDER [--helo NAME] [--format text|json]`: RFC 7208 `check_host()` for
//! one connection, as a receiver computes it, with the trace of every term evaluated.
//!
//! DNS is asked the way the daemon asks it for `expect.spf.authorizes`: the sender
//! domain's own record at its authoritative servers (discovered, or `--nameserver`), every
//! other name through the resolvers (the system's, or `--resolver`).

use super::CheckFormat;
use crate::app::RunOptions;
use crate::checks::spf::{SpfConnection, SpfEvaluation, SpfQuery, SpfResult, check_host};
use crate::config::Config;
use crate::dns::{DnsLookup, DnsView, LookupResult, QueryMetrics, RecordType};
use crate::views::ViewFactory;
use clap::Args;
use futures::future::BoxFuture;
use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

/// `maildrift spf`.
#[derive(Debug, Args)]
pub struct SpfArgs {
    /// The sending client's IP address.
    pub ip: IpAddr,
    /// MAIL FROM: `user@example.com`, a bare domain (`postmaster@` it), or "" (the null
    /// sender of bounces: the HELO name's policy is checked).
    pub sender: String,
    /// The HELO/EHLO name the client gives (default: the sender's domain).
    #[arg(long)]
    pub helo: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
}

/// The sender domain's TXT from its authoritative view, everything else from the resolvers.
struct PolicyLookup {
    /// `<domain>`.
    domain: String,
    /// The domain's view, as the daemon builds it.
    view: DnsView,
}

impl DnsLookup for PolicyLookup {
    fn lookup<'a>(&'a self, name: &'a str, rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        if rtype == RecordType::Txt && name == self.domain {
            self.view.zone.lookup(name, rtype)
        } else {
            self.view.recursive.lookup(name, rtype)
        }
    }
}

/// Runs the command; exit 0 for `pass`, 1 for any other result, 2 for usage errors.
pub(super) async fn spf(args: &SpfArgs, options: &RunOptions) -> anyhow::Result<ExitCode> {
    if args.sender.trim().is_empty() && args.helo.is_none() {
        eprintln!(
            "Error: an empty SENDER (the null sender) needs --helo NAME: its policy is checked"
        );
        return Ok(ExitCode::from(2));
    }
    let connection = SpfConnection::new(args.ip, args.sender.as_str(), args.helo.as_deref());
    let (_, domain) = connection.identity();
    // The settings every domain gets by default, with --resolver and --nameserver applied.
    let defaults = Config::parse(
        "domains: [{ name: spf.invalid }]\n",
        Path::new("<defaults>"),
    )
    .map_err(|e| anyhow::anyhow!("built-in defaults: {e}"))?;
    let settings = options.domains(&defaults).remove(0);
    let views = ViewFactory::new(QueryMetrics::unregistered(), options.dns_limits).await?;
    let dns = PolicyLookup {
        domain: crate::dns::normalize_name(&domain),
        view: views.view(&settings)?,
    };
    let evaluation = check_host(&dns, &connection).await;
    match args.format {
        CheckFormat::Json => println!("{}", serde_json::to_string(&evaluation)?),
        CheckFormat::Text => print!("{}", to_text(&evaluation)),
    }
    Ok(ExitCode::from(if evaluation.result == SpfResult::Pass {
        0
    } else {
        1
    }))
}

/// The report for people: the verdict, then each term evaluated with what it asked.
fn to_text(evaluation: &SpfEvaluation) -> String {
    let e = evaluation;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} sending as {} (HELO {}): {}",
        e.ip,
        e.sender,
        e.helo,
        e.result.as_str()
    );
    let _ = writeln!(out, "  reason:      {}", e.reason);
    let explanation = match (&e.explanation, e.result) {
        (Some(text), _) => text.clone(),
        (None, SpfResult::Fail) => format!("(none published by {})", e.domain),
        (None, _) => "(only a fail is explained)".to_owned(),
    };
    let _ = writeln!(out, "  explanation: {explanation}");
    let _ = writeln!(
        out,
        "  DNS lookups: {} of {}, void lookups: {} of {}",
        e.lookups,
        crate::checks::spf::LOOKUP_LIMIT,
        e.void_lookups,
        crate::checks::spf::VOID_LOOKUP_LIMIT
    );
    if e.trace.is_empty() {
        return out;
    }
    let _ = writeln!(out, "trace (each term evaluated, in order):");
    for step in &e.trace {
        let indent = "  ".repeat(step.depth + 1);
        let verdict = match (step.term.split_once('='), step.matched) {
            (Some(("redirect", _)), true) => "followed",
            (Some(("redirect", _)), false) => "not followed",
            (Some(("exp", _)), true) => "used",
            (Some(("exp", _)), false) => "not used",
            (_, true) => "match",
            (_, false) => "no match",
        };
        let _ = writeln!(out, "{indent}{}: {} → {verdict}", step.domain, step.term);
        for query in &step.queries {
            let _ = writeln!(out, "{indent}    {}", query_line(query));
        }
    }
    out
}

/// `TXT example.com → "v=spf1 …"`, `A gone.example → NXDOMAIN`, ...
fn query_line(query: &SpfQuery) -> String {
    let answer = match query.status {
        "records" => query.answer.join(", "),
        "nodata" => "no records (NODATA)".to_owned(),
        "nxdomain" => "no such name (NXDOMAIN)".to_owned(),
        "not_asked" => format!("not asked, not a DNS name: {}", query.answer.join("; ")),
        _ => format!("error: {}", query.answer.join("; ")),
    };
    format!("{} {} → {answer}", query.rtype, query.name)
}
