//! Talking to the running daemon's API from a command (`baseline accept`, `incident note`):
//! where it listens (`--url`, or `--web.listen-address`), HTTPS with an extra CA
//! (`--ca-file`), basic auth from the URL, and telling "nothing listens" (the daemon is
//! down) apart from every other failure.

use super::web::parse_listen_address;
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the daemon is and how to reach it.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The daemon's URL, `http://` or `https://`, with `user:password@` when it asks for
    /// basic auth (default: from --web.listen-address).
    #[arg(long, env = "MAILDRIFT_URL")]
    pub url: Option<String>,
    /// Extra CA certificate (PEM) to trust for an `https://` URL (private PKI).
    #[arg(long, env = "MAILDRIFT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The daemon's listen address, to find it when --url is not given.
    #[arg(
        long = "web.listen-address",
        env = "MAILDRIFT_WEB_LISTEN_ADDRESS",
        default_value = ":9725"
    )]
    pub listen_address: String,
}

/// The URL without its password, for messages.
pub(super) fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("xxx"));
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

impl DaemonArgs {
    /// The daemon's base URL (no trailing slash).
    pub(super) fn base_url(&self) -> Result<String, String> {
        if let Some(url) = &self.url {
            return Ok(url.trim_end_matches('/').to_owned());
        }
        let mut address = parse_listen_address(&self.listen_address)?;
        if address.ip().is_unspecified() {
            address.set_ip(match address {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(format!("http://{address}"))
    }

    /// A POST to `path` under `base` (credentials moved from the URL to basic auth),
    /// with the extra CA trusted.
    pub(super) fn post(&self, base: &str, path: &str) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut target = reqwest::Url::parse(&format!("{base}{path}"))
            .with_context(|| format!("{base:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(target.scheme(), "http" | "https"),
            "{base:?}: expected an http:// or https:// URL"
        );
        let user = target.username().to_owned();
        let password = target.password().map(str::to_owned);
        let _ = target.set_username("");
        let _ = target.set_password(None);
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca_file) = &self.ca_file {
            let pem = std::fs::read(ca_file)
                .with_context(|| format!("reading --ca-file {}", ca_file.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!("--ca-file {} is not a PEM certificate", ca_file.display())
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().context("building the HTTP client")?;
        let mut request = client.post(target);
        if !user.is_empty() {
            request = request.basic_auth(user, password);
        }
        Ok(request)
    }
}

/// Sends `request`: (status, body), or the error of a request that got no answer.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(u16, String), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// The JSON of an answer; a body that is not JSON becomes `{"error": body}`.
pub(super) fn answer(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| serde_json::json!({ "error": body.trim() }))
}

/// Whether `error` (or any error under it) is a refused TCP connection: nothing listens, so
/// the daemon is down. Any other failure (TLS, auth, timeout) must not fall back to writing
/// the store a running daemon owns.
pub(super) fn connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
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

/// The state database to write into when no daemon answers at `url` (already redacted):
/// `None`, said on stderr, when there is none.
pub(super) fn store_when_down(
    url: &str,
    state_dir: &std::path::Path,
) -> anyhow::Result<Option<(crate::state::Store, PathBuf)>> {
    let file = state_dir.join(crate::state::DB_FILE);
    if !file.exists() {
        eprintln!(
            "Error: no daemon answers at {url} and there is no state database at {}",
            file.display()
        );
        return Ok(None);
    }
    Ok(Some((crate::state::Store::open(state_dir)?, file)))
}
