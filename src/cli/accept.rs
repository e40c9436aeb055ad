//! `maildrift baseline accept`: through the running daemon's API (HTTP or HTTPS, basic auth
//! from the URL), or straight into the state database when nothing listens.
#![allow(clippy::print_stdout)]

use super::AcceptArgs;
use super::web::parse_listen_address;
use anyhow::Context;
use std::net::SocketAddr;
use std::process::ExitCode;

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("xxx"));
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

fn daemon_url(args: &AcceptArgs) -> Result<String, String> {
    if let Some(url) = &args.url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let mut address = parse_listen_address(&args.listen_address)?;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{address}"))
}

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

/// Whether `error` (or any error under it) is a refused TCP connection: nothing listens, so
/// the daemon is down. Any other failure (TLS, auth, timeout) must not fall back to writing
/// the store a running daemon owns.
fn connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// POSTs to the daemon's accept endpoint: (status, body).
async fn post_accept(
    url: &str,
    args: &AcceptArgs,
    domain: &str,
) -> anyhow::Result<Result<(u16, String), reqwest::Error>> {
    let mut target = reqwest::Url::parse(&format!("{url}/api/v1/domains/{domain}/accept"))
        .with_context(|| format!("{url:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(target.scheme(), "http" | "https"),
        "{url:?}: expected an http:// or https:// URL"
    );
    if let Some(check) = args.check {
        target
            .query_pairs_mut()
            .append_pair("check", check.as_str());
    }
    let user = target.username().to_owned();
    let password = target.password().map(str::to_owned);
    let _ = target.set_username("");
    let _ = target.set_password(None);
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca_file) = &args.ca_file {
        let pem = std::fs::read(ca_file)
            .with_context(|| format!("reading --ca-file {}", ca_file.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("--ca-file {} is not a PEM certificate", ca_file.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    let client = builder.build().context("building the HTTP client")?;
    let mut request = client.post(target);
    if !user.is_empty() {
        request = request.basic_auth(user, password);
    }
    Ok(match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            Ok((status, response.text().await.unwrap_or_default()))
        }
        Err(error) => Err(error),
    })
}

/// `maildrift baseline accept`: through the daemon's API, or the store when it is down.
pub(super) async fn accept(
    args: &AcceptArgs,
    state_dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let domain = crate::dns::names::lookup_name(&args.domain);
    let url = daemon_url(args).map_err(anyhow::Error::msg)?;
    match post_accept(&url, args, &domain).await? {
        Ok((status, body)) => {
            let body: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| serde_json::json!({ "error": body.trim() }));
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
            let file = state_dir.join(crate::state::DB_FILE);
            if !file.exists() {
                eprintln!(
                    "Error: no daemon answers at {url} and there is no state database at {}",
                    file.display()
                );
                return Ok(ExitCode::from(1));
            }
            let store = crate::state::Store::open(state_dir)?;
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
