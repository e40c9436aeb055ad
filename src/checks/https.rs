//! One HTTPS GET for the checks that fetch a document (the MTA-STS policy, a BIMI logo): to
//! an address found through maildrift's own resolvers, certificate verified against the
//! Mozilla roots plus an optional extra CA file, redirects not followed (the caller decides),
//! body size bounded. The trust store is also what the SMTP certificate checks verify with.

use crate::config::read_ca_file;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why a document could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No address, or no address accepted a connection.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The TLS handshake failed (certificate not valid for the host, untrusted, expired).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP exchange failed or the answer is not what was asked for.
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

/// The Mozilla roots plus the certificates of `ca_file`.
pub fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    Ok(roots)
}

fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    Ok(config)
}

/// One GET: `https://{host}:{port}{path}` asked at one of `addresses`.
#[derive(Clone, Copy, Debug)]
pub struct Get<'a> {
    /// The host (TLS server name and `Host` header).
    pub host: &'a str,
    /// Its addresses, tried in order until one accepts the connection.
    pub addresses: &'a [IpAddr],
    /// The HTTPS port.
    pub port: u16,
    /// Path and query.
    pub path: &'a str,
    /// Extra trusted CA certificates.
    pub ca_file: Option<&'a Path>,
    /// Longest body accepted.
    pub max_bytes: usize,
    /// Deadline of the whole exchange.
    pub timeout: Duration,
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// `Content-Type`, lower-cased ("" when absent).
    pub content_type: String,
    /// `Location`, when the server sent one.
    pub location: Option<String>,
    /// The body (at most `max_bytes`).
    pub body: Vec<u8>,
}

impl Get<'_> {
    /// The URL, for messages.
    pub fn url(&self) -> String {
        match self.port {
            443 => format!("https://{}{}", self.host, self.path),
            port => format!("https://{}:{port}{}", self.host, self.path),
        }
    }

    /// Sends the request; every failure, the timeout included, is a [`FetchError`].
    pub async fn send(self) -> Result<Response, FetchError> {
        match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: self.url(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    async fn exchange(self) -> Result<Response, FetchError> {
        let host = self.host;
        let tls_error = |reason: String| FetchError::Tls {
            host: host.to_owned(),
            reason,
        };
        let http_error = |reason: String| FetchError::Http {
            url: self.url(),
            reason,
        };
        let mut last_error = "the name has no A or AAAA record".to_owned();
        let mut stream = None;
        for ip in self.addresses {
            match tokio::net::TcpStream::connect(SocketAddr::new(*ip, self.port)).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = format!("{ip}:{}: {e}", self.port),
            }
        }
        let stream = stream.ok_or_else(|| FetchError::Connect {
            host: host.to_owned(),
            reason: last_error,
        })?;
        let config = client_config(self.ca_file).map_err(tls_error)?;
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
        let request = hyper::Request::get(self.path)
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
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let status = response.status().as_u16();
            let content_type = header(hyper::header::CONTENT_TYPE)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let location = header(hyper::header::LOCATION);
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| http_error(e.to_string()))?;
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                    if bytes.len() > self.max_bytes {
                        return Err(http_error(format!(
                            "response larger than {} bytes",
                            self.max_bytes
                        )));
                    }
                }
            }
            Ok(Response {
                status,
                content_type,
                location,
                body: bytes,
            })
        }
        .await;
        driver.abort();
        result
    }
}

/// The addresses of `host` (A and AAAA) through `dns`. A family that fails is ignored when
/// the other gives addresses; a name without any is an empty list.
pub async fn resolve(
    dns: &dyn crate::dns::DnsLookup,
    host: &str,
) -> Result<Vec<IpAddr>, crate::dns::DnsError> {
    use crate::dns::{RData, RecordType};
    let (v4, v6) = futures::join!(
        dns.lookup(host, RecordType::A),
        dns.lookup(host, RecordType::Aaaa)
    );
    let found: Vec<IpAddr> = [&v4, &v6]
        .into_iter()
        .flat_map(|answer| answer.iter().flat_map(|a| &a.records))
        .filter_map(|record| match record {
            RData::A(ip) => Some(IpAddr::V4(*ip)),
            RData::Aaaa(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        })
        .collect();
    if found.is_empty() {
        v4?;
        v6?;
    }
    Ok(found)
}
