//! `maildrift baseline accept`: through the running daemon's API (HTTP or HTTPS, basic auth
//! from the URL), or straight into the state database when nothing listens.
#![allow(clippy::print_stdout)]

use super::AcceptArgs;
use super::daemon_api::{answer, connection_refused, redacted, send, store_when_down};
use std::process::ExitCode;

fn print_accepted(domain: &str, accepted: &[crate::monitor::AcceptedBaseline], via: &str) {
    for a in accepted {
        let was = a
            .previous
            .as_ref()
            .map_or("none".to_owned(), |p| format!("[{}]", p.join(", ")));
        let cleared = if a.cleared_drift {
            "; drift cleared"
        } else {
            ""
        };
        println!(
            "{domain} {}: baseline accepted: [{}] (was {was}){cleared}",
            a.check,
            a.baseline.join(", ")
        );
    }
    println!("({via})");
}

/// POSTs to the daemon's accept endpoint: (status, body).
async fn post_accept(
    url: &str,
    args: &AcceptArgs,
    domain: &str,
) -> anyhow::Result<Result<(u16, String), reqwest::Error>> {
    let mut path = format!("/api/v1/domains/{domain}/accept");
    if let Some(check) = args.check {
        path.push_str(&format!("?check={}", check.as_str()));
    }
    Ok(send(args.daemon.post(url, &path)?).await)
}

/// `maildrift baseline accept`: through the daemon's API, or the store when it is down.
pub(super) async fn accept(
    args: &AcceptArgs,
    state_dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let domain = crate::dns::names::lookup_name(&args.domain);
    let url = args.daemon.base_url().map_err(anyhow::Error::msg)?;
    match post_accept(&url, args, &domain).await? {
        Ok((status, body)) => {
            let body = answer(&body);
            if status != 200 {
                let error = body["error"].as_str().unwrap_or("unexpected answer");
                eprintln!("Error: {}: {status} {error}", redacted(&url));
                return Ok(ExitCode::from(1));
            }
            let accepted: Vec<crate::monitor::AcceptedBaseline> =
                serde_json::from_value(body["accepted"].clone()).unwrap_or_default();
            print_accepted(
                &domain,
                &accepted,
                &format!("by the daemon at {}", redacted(&url)),
            );
            if body["persisted"] == serde_json::json!(false) {
                eprintln!("warning: the daemon could not persist it (state store unavailable)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if connection_refused(&e) => {
            let url = redacted(&url);
            let Some((store, file)) = store_when_down(&url, state_dir)? else {
                return Ok(ExitCode::from(1));
            };
            match crate::monitor::accept_stored(
                &store,
                &domain,
                args.check,
                std::time::SystemTime::now(),
            ) {
                Ok(accepted) => {
                    let via = format!(
                        "no daemon at {url}: written to {}; the next start uses it",
                        file.display()
                    );
                    print_accepted(&domain, &accepted, &via);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot reach the daemon at {}: {e}",
            redacted(&url)
        )),
    }
}
