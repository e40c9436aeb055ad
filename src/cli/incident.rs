//! `maildrift incident note ID --channel C --ticket T --text TEXT`: adds a note to an
//! incident through the running daemon's API (`POST /api/v1/incidents/{id}/notes`; HTTP or
//! HTTPS, basic auth from the URL), or straight into the state database when nothing
//! listens.
#![allow(clippy::print_stdout)]

use super::DaemonArgs;
use super::daemon_api::{answer, connection_refused, redacted, send, store_when_down};
use crate::http::incidents::NoteFields;
use crate::http::times::parse_time;
use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;
use std::time::SystemTime;

/// `maildrift incident ...`.
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Add a note to an incident: what was done about it, with which ticket. Talks to the
    /// running daemon; when none answers, writes to the state directory directly.
    Note(NoteArgs),
}

/// `maildrift incident note`.
#[derive(Debug, Args)]
pub struct NoteArgs {
    /// The incident's id (`incidents[].id` in `GET /api/v1/domains/{domain}`, `#id` on the
    /// domain's page).
    pub id: i64,
    /// How the provider was reached: phone, ticket, chat, email or other.
    #[arg(long)]
    pub channel: String,
    /// The provider's or registrar's ticket number.
    #[arg(long)]
    pub ticket: Option<String>,
    /// The steps taken.
    #[arg(long)]
    pub text: String,
    /// Who worked it.
    #[arg(long)]
    pub who: Option<String>,
    /// When the provider first answered: unix seconds, or a date such as
    /// `2024-05-01 10:30 +08:00` (UTC without an offset).
    #[arg(long)]
    pub first_response_at: Option<String>,
    /// The registrar was involved.
    #[arg(long)]
    pub registrar: bool,
    /// The DNS provider was involved.
    #[arg(long)]
    pub dns_provider: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

fn print_added(note: &serde_json::Value, incident: &serde_json::Value, via: &str) {
    println!(
        "note {} added to incident {} ({} {} {}, {})",
        note["id"],
        incident["id"],
        incident["domain"].as_str().unwrap_or(""),
        incident["check"].as_str().unwrap_or(""),
        incident["code"].as_str().unwrap_or(""),
        incident["state"].as_str().unwrap_or("")
    );
    println!("({via})");
}

/// `maildrift incident note`: through the daemon's API, or the store when it is down.
pub(super) async fn note(args: &NoteArgs, state_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    // Checked here first, so a typo is reported the same with or without a daemon.
    let first_response_at = match args
        .first_response_at
        .as_deref()
        .map(parse_time)
        .transpose()
    {
        Ok(at) => at,
        Err(e) => {
            eprintln!("Error: --first-response-at: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let fields = match NoteFields::new(
        &args.channel,
        args.ticket.as_deref(),
        args.who.as_deref(),
        &args.text,
        first_response_at,
        (args.registrar, args.dns_provider),
    ) {
        Ok(fields) => fields,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let url = args.daemon.base_url().map_err(anyhow::Error::msg)?;
    let body = json!({
        "channel": args.channel,
        "ticket": args.ticket,
        "who": args.who,
        "text": args.text,
        "first_response_at": first_response_at.map(crate::state::unix_seconds),
        "registrar": args.registrar,
        "dns_provider": args.dns_provider,
    });
    let request = args
        .daemon
        .post(&url, &format!("/api/v1/incidents/{}/notes", args.id))?
        .json(&body);
    match send(request).await {
        Ok((status, body)) => {
            let body = answer(&body);
            if status != 201 {
                let error = body["error"].as_str().unwrap_or("unexpected answer");
                eprintln!("Error: {}: {status} {error}", redacted(&url));
                return Ok(ExitCode::from(1));
            }
            print_added(
                &body["note"],
                &body["incident"],
                &format!("by the daemon at {}", redacted(&url)),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if connection_refused(&e) => {
            let url = redacted(&url);
            let Some((store, file)) = store_when_down(&url, state_dir)? else {
                return Ok(ExitCode::from(1));
            };
            if store.incident(args.id)?.is_none() {
                eprintln!("Error: no incident {} in {}", args.id, file.display());
                return Ok(ExitCode::from(1));
            }
            let at = SystemTime::now();
            store.write(&[crate::state::Write::Note(fields.into_note(args.id, at))])?;
            let incident = store.incident(args.id)?.unwrap_or_else(|| unreachable!());
            let incident = serde_json::to_value(&incident)?;
            let note = incident["notes"]
                .as_array()
                .and_then(|notes| notes.last())
                .cloned()
                .unwrap_or_default();
            let via = format!("no daemon at {url}: written to {}", file.display());
            print_added(&note, &incident, &via);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot reach the daemon at {}: {e}",
            redacted(&url)
        )),
    }
}
