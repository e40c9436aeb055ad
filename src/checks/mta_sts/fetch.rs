//! Fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3): to an
//! address found through maildrift's own resolvers, certificate verified against the
//! Mozilla roots plus an optional extra CA file, no redirects, size and time bounded.

use crate::config::{MtaStsSettings, read_ca_file};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Largest policy accepted (RFC 8461 §3.3 suggests senders cap it at 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// Why the policy could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No address, or no address accepted a connection.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The policy host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The TLS handshake failed (certificate not valid for the host, untrusted, expired).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The policy host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP exchange failed or the answer is not a policy.
    #[error("{url}: {reason}")]
    Http {
        /// The URL asked.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The whole fetch took longer than the configured timeout.
    #[error("{url}: no complete answer within {seconds} s")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The timeout.
        seconds: u64,
    },
}

fn client_config(settings: &MtaStsSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &settings.ca_file {
        for cert in read_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Fetches the policy body of `host` from one of `addresses`.
pub async fn fetch_policy(
    host: &str,
    addresses: &[IpAddr],
    settings: &MtaStsSettings,
) -> Result<String, FetchError> {
    let url = format!("https://{host}/.well-known/mta-sts.txt");
    let fetch = fetch_inner(host, &url, addresses, settings);
    match tokio::time::timeout(settings.timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url,
            seconds: settings.timeout.as_secs(),
        }),
    }
}

async fn fetch_inner(
    host: &str,
    url: &str,
    addresses: &[IpAddr],
    settings: &MtaStsSettings,
) -> Result<String, FetchError> {
    let connect_error = |reason: String| FetchError::Connect {
        host: host.to_owned(),
        reason,
    };
    let tls_error = |reason: String| FetchError::Tls {
        host: host.to_owned(),
        reason,
    };
    let http_error = |reason: String| FetchError::Http {
        url: url.to_owned(),
        reason,
    };
    let mut last_error = "the name has no A or AAAA record".to_owned();
    let mut stream = None;
    for ip in addresses {
        match tokio::net::TcpStream::connect(SocketAddr::new(*ip, settings.port)).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("{ip}:{}: {e}", settings.port),
        }
    }
    let stream = stream.ok_or_else(|| connect_error(last_error))?;
    let config = client_config(settings).map_err(tls_error)?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| tls_error(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| tls_error(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| http_error(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get("/.well-known/mta-sts.txt")
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("maildrift/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| http_error(e.to_string()))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_error(e.to_string()))?;
        let status = response.status();
        if !status.is_success() || status.as_u16() != 200 {
            // Redirects are not followed (RFC 8461 §3.3).
            return Err(http_error(format!("HTTP status {status}, expected 200")));
        }
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("text/plain") {
            return Err(http_error(format!(
                "Content-Type {content_type:?}, expected text/plain"
            )));
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| http_error(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                bytes.extend_from_slice(data);
                if bytes.len() > MAX_POLICY_BYTES {
                    return Err(http_error(format!(
                        "policy larger than {MAX_POLICY_BYTES} bytes"
                    )));
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| http_error("policy is not UTF-8".to_owned()))
    }
    .await;
    driver.abort();
    result
}
