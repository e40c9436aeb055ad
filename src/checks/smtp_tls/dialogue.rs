//! The SMTP dialogue with one address of an MX host (RFC 5321, RFC 3207): banner, `EHLO`,
//! `STARTTLS`, the TLS handshake, `QUIT`, each step bounded by the timeout. The handshake
//! accepts any certificate (a sender without MTA-STS or DANE does too) and keeps the chain,
//! which [`super::certificate`] then judges; signatures of the handshake itself are verified.

use super::certificate::{CertificateView, Verification};
use super::{AddressProbe, ProbeOutcome, TlsSession};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line read (RFC 5321 §4.5.3.1.5 allows 512 octets; servers send more).
const MAX_LINE: usize = 4096;
/// Most lines of one reply (a long EHLO capability list is about 15).
const MAX_LINES: usize = 100;

/// How one address is asked.
#[derive(Clone, Debug)]
pub struct DialogueSettings {
    /// Deadline of each step.
    pub timeout: Duration,
    /// The name given in `EHLO`.
    pub helo_name: String,
    /// Extra trusted CA certificates for the chain judgement.
    pub ca_file: Option<PathBuf>,
}

/// Why the dialogue stopped.
enum Stop {
    /// Nothing learned about TLS: the address is unknown.
    Unreachable(&'static str, String),
    /// The server answered but offers no usable STARTTLS.
    NoStartTls(String),
}

/// One SMTP reply: its code and text lines.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

async fn step<T>(
    name: &'static str,
    timeout: Duration,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, Stop> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(reason)) => Err(Stop::Unreachable(name, reason)),
        Err(_) => Err(Stop::Unreachable(
            name,
            format!("no answer within {}", humantime(timeout)),
        )),
    }
}

fn humantime(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

async fn read_reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Reply, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut *reader).take(MAX_LINE as u64);
        let read = limited
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("connection closed".to_owned());
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code.filter(|c| (200..600).contains(c)) else {
            return Err(format!("not an SMTP reply: {:?}", shorten(&line)));
        };
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        if last {
            return Ok(Reply { code, lines });
        }
        if lines.len() >= MAX_LINES {
            return Err(format!("reply longer than {MAX_LINES} lines"));
        }
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
) -> Result<Reply, String> {
    let stream_mut = stream.get_mut();
    stream_mut
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream_mut.flush().await.map_err(|e| e.to_string())?;
    read_reply(stream).await
}

/// Asks `host` at `address`; never fails (what went wrong is the outcome).
pub async fn probe(host: String, address: SocketAddr, settings: DialogueSettings) -> AddressProbe {
    let outcome = match dialogue(&host, address, &settings).await {
        Ok(outcome) => outcome,
        Err(Stop::Unreachable(step, reason)) => ProbeOutcome::Unreachable { step, reason },
        Err(Stop::NoStartTls(reason)) => ProbeOutcome::NoStartTls { reason },
    };
    AddressProbe {
        host,
        address,
        outcome,
    }
}

async fn dialogue(
    host: &str,
    address: SocketAddr,
    settings: &DialogueSettings,
) -> Result<ProbeOutcome, Stop> {
    let timeout = settings.timeout;
    let tcp = step("connect", timeout, async {
        TcpStream::connect(address).await.map_err(|e| e.to_string())
    })
    .await?;
    let mut smtp = BufReader::new(tcp);
    let banner = step("banner", timeout, read_reply(&mut smtp)).await?;
    if banner.code != 220 {
        return Err(Stop::Unreachable(
            "banner",
            format!("the server does not accept mail: {}", banner.text()),
        ));
    }
    let ehlo = step(
        "EHLO",
        timeout,
        command(&mut smtp, &format!("EHLO {}", settings.helo_name)),
    )
    .await?;
    let offered = ehlo.code == 250
        && ehlo
            .lines
            .iter()
            .skip(1)
            .any(|l| l.trim().eq_ignore_ascii_case("STARTTLS"));
    if !offered {
        let why = if ehlo.code == 250 {
            "STARTTLS is not among the EHLO capabilities".to_owned()
        } else {
            format!("EHLO refused ({})", ehlo.text())
        };
        let _ = step("QUIT", timeout, command(&mut smtp, "QUIT")).await;
        return Err(Stop::NoStartTls(why));
    }
    let starttls = step("STARTTLS", timeout, command(&mut smtp, "STARTTLS")).await?;
    if starttls.code != 220 {
        let _ = step("QUIT", timeout, command(&mut smtp, "QUIT")).await;
        return Err(Stop::NoStartTls(format!(
            "STARTTLS offered but refused ({})",
            starttls.text()
        )));
    }
    // Anything the server sent after its 220 before the handshake would be read as TLS by
    // a sender; the buffer is dropped with the plain-text reader.
    let tcp = smtp.into_inner();
    let (verifier, config) = recording_config();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| Stop::Unreachable("STARTTLS", format!("{host:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let tls = match handshake {
        Err(_) => {
            return Err(Stop::Unreachable(
                "TLS handshake",
                format!("no answer within {}", humantime(timeout)),
            ));
        }
        Ok(Err(error)) => {
            return Ok(ProbeOutcome::HandshakeFailed {
                old_version: old_version(&error),
                reason: error.to_string(),
            });
        }
        Ok(Ok(tls)) => tls,
    };
    let (_, connection) = tls.get_ref();
    let version = connection
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .replace('_', ".");
    let cipher = connection
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("unknown")
        .to_owned();
    let chain: Vec<CertificateDer<'static>> = verifier.chain();
    let mut smtp = BufReader::new(tls);
    // A polite end; its reply does not matter.
    let _ = step("QUIT", timeout, command(&mut smtp, "QUIT")).await;
    let _ = tokio::time::timeout(timeout, smtp.get_mut().shutdown()).await;
    Ok(ProbeOutcome::Tls(Box::new(session(
        host, version, cipher, chain, settings,
    ))))
}

/// Judges the chain a handshake presented.
fn session(
    host: &str,
    version: String,
    cipher: String,
    chain: Vec<CertificateDer<'static>>,
    settings: &DialogueSettings,
) -> TlsSession {
    let certificate = match chain.first() {
        Some(leaf) => CertificateView::parse(leaf),
        None => Err("the server sent no certificate".to_owned()),
    };
    let verification = match &certificate {
        Ok(view) => {
            let now = super::unix_seconds(std::time::SystemTime::now());
            Verification::of(host, &chain, view, settings.ca_file.as_deref(), now)
        }
        Err(error) => Verification::failed(error),
    };
    TlsSession {
        version,
        cipher,
        chain,
        certificate,
        verification,
    }
}

/// Whether the handshake failed because the server speaks only TLS below 1.2.
fn old_version(error: &std::io::Error) -> bool {
    use rustls::{AlertDescription, Error, PeerIncompatible};
    let rustls_error = error.get_ref().and_then(|e| e.downcast_ref::<Error>());
    matches!(
        rustls_error,
        Some(
            Error::AlertReceived(AlertDescription::ProtocolVersion)
                | Error::PeerIncompatible(
                    PeerIncompatible::ServerDoesNotSupportTls12Or13
                        | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                )
        )
    )
}

/// A client config whose verifier accepts every certificate and keeps the chain.
fn recording_config() -> (Arc<Recorder>, rustls::ClientConfig) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        algorithms: provider.signature_verification_algorithms,
        chain: std::sync::Mutex::new(Vec::new()),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    (recorder, config)
}

/// Keeps the presented chain; verifies only the handshake signatures.
#[derive(Debug)]
struct Recorder {
    algorithms: WebPkiSupportedAlgorithms,
    chain: std::sync::Mutex<Vec<CertificateDer<'static>>>,
}

impl Recorder {
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.lock().expect("recorder poisoned").clone()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().expect("recorder poisoned") = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
