//! TLS servers on loopback for the tests: a test CA issuing certificates (rcgen), an HTTPS
//! server answering by path, and an SMTP server offering STARTTLS (or misbehaving as asked),
//! each counting its connections.

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A certificate authority for tests.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate chain (end entity first) and its key.
#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Vec<u8>,
    /// The chain and the key in PEM (for servers configured by file).
    pub chain_pem: String,
    pub key_pem: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        TestCa {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Writes the CA certificate to `dir/name` and returns the path.
    pub fn write(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A certificate for `names`, valid from a day ago for `days` days from now (negative:
    /// expired), chain = [leaf, CA].
    pub fn leaf(&self, names: &[&str], days: i64) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let now = unix_now() as i64;
        let before = if days < 0 {
            now + (days - 30) * 86_400
        } else {
            now - 86_400
        };
        params.not_before = epoch + Duration::from_secs(before as u64);
        params.not_after = epoch + Duration::from_secs((now + days * 86_400) as u64);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), self.der()],
            key: key.serialize_der(),
            chain_pem: format!("{}{}", cert.pem(), self.pem()),
            key_pem: key.serialize_pem(),
        }
    }
}

fn server_config(leaf: &Leaf) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::try_from(leaf.key.clone()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), key)
        .unwrap();
    Arc::new(config)
}

/// Tasks stopped when the server is dropped.
struct Tasks(Mutex<JoinSet<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.lock().unwrap().abort_all();
    }
}

/// What the HTTPS server answers for a path: status, Content-Type, extra headers, body.
pub type Route = (u16, &'static str, Vec<(&'static str, String)>, Vec<u8>);

/// An HTTPS server on 127.0.0.1:0 answering each GET with `routes(path)`.
pub struct HttpsServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    _tasks: Tasks,
}

pub async fn https_server(leaf: &Leaf, routes: fn(&str) -> Route) -> HttpsServer {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(leaf));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            connections.spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let Some(path) = head
                    .strip_prefix("GET ")
                    .and_then(|rest| rest.split_whitespace().next())
                else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let (status, content_type, headers, body) = routes(path);
                let extra: String = headers
                    .iter()
                    .map(|(name, value)| format!("{name}: {value}\r\n"))
                    .collect();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    HttpsServer {
        addr,
        requests,
        _tasks: Tasks(Mutex::new(tasks)),
    }
}

/// How the SMTP server behaves.
#[derive(Clone)]
pub enum Smtp {
    /// Banner, EHLO with STARTTLS, then TLS with this certificate.
    StartTls(Leaf),
    /// Banner, EHLO without STARTTLS.
    NoStartTls,
    /// Accepts the connection and never sends the banner.
    Silent,
    /// Offers STARTTLS, then answers the ClientHello with a protocol_version alert, as a
    /// server speaking only TLS 1.0 does.
    OldTls,
}

/// An SMTP server listening on the same port at each of its addresses.
pub struct SmtpServer {
    pub port: u16,
    /// Connections accepted, per address.
    connections: Arc<Mutex<BTreeMap<IpAddr, usize>>>,
    /// How the next sessions behave.
    behaviour: Arc<Mutex<Smtp>>,
    _tasks: Tasks,
}

impl SmtpServer {
    /// Changes how the next sessions behave (a renewed certificate, STARTTLS removed).
    pub fn set(&self, behaviour: Smtp) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Connections accepted so far at `ip`.
    pub fn connections(&self, ip: IpAddr) -> usize {
        self.connections
            .lock()
            .unwrap()
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }

    /// Connections accepted so far at all addresses.
    pub fn total(&self) -> usize {
        self.connections.lock().unwrap().values().sum()
    }
}

/// Listeners on one free port at every address of `ips` (retried until one port is free
/// at all of them).
async fn bind_all(ips: &[IpAddr]) -> (u16, Vec<TcpListener>) {
    for _ in 0..50 {
        let first = TcpListener::bind(SocketAddr::new(ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind(SocketAddr::new(*ip, port)).await {
                Ok(listener) => listeners.push(listener),
                Err(_) => break,
            }
        }
        if listeners.len() == ips.len() {
            return (port, listeners);
        }
    }
    panic!("no port free at every address of {ips:?}");
}

pub async fn smtp_server(ips: &[IpAddr], behaviour: Smtp) -> SmtpServer {
    let (port, listeners) = bind_all(ips).await;
    let connections = Arc::new(Mutex::new(BTreeMap::new()));
    let behaviour = Arc::new(Mutex::new(behaviour));
    let mut tasks = JoinSet::new();
    for listener in listeners {
        let ip = listener.local_addr().unwrap().ip();
        let behaviour = behaviour.clone();
        let counter = connections.clone();
        tasks.spawn(async move {
            let mut sessions = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                *counter.lock().unwrap().entry(ip).or_insert(0) += 1;
                let now = behaviour.lock().unwrap().clone();
                sessions.spawn(session(stream, now));
            }
        });
    }
    SmtpServer {
        port,
        connections,
        behaviour,
        _tasks: Tasks(Mutex::new(tasks)),
    }
}

async fn session(stream: TcpStream, behaviour: Smtp) {
    let mut smtp = BufReader::new(stream);
    if let Smtp::Silent = behaviour {
        // Holds the connection open, sending nothing, until the client gives up.
        let mut sink = Vec::new();
        let _ = smtp.read_to_end(&mut sink).await;
        return;
    }
    let _ = smtp
        .get_mut()
        .write_all(b"220 mx.test ESMTP test server\r\n")
        .await;
    let starttls = !matches!(behaviour, Smtp::NoStartTls);
    let mut line = String::new();
    loop {
        line.clear();
        if smtp.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            if starttls {
                b"250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            } else {
                b"250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
            }
        } else if command == "STARTTLS" && starttls {
            let _ = smtp
                .get_mut()
                .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                .await;
            let stream = smtp.into_inner();
            return tls_session(stream, behaviour).await;
        } else if command == "QUIT" {
            let _ = smtp.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        let _ = smtp.get_mut().write_all(reply).await;
    }
}

async fn tls_session(mut stream: TcpStream, behaviour: Smtp) {
    let leaf = match behaviour {
        Smtp::StartTls(leaf) => leaf,
        _ => {
            // Reads the ClientHello, answers with a fatal protocol_version alert (TLS 1.0).
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello).await;
            let _ = stream
                .write_all(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])
                .await;
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&leaf));
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let mut smtp = BufReader::new(tls);
    let mut line = String::new();
    loop {
        line.clear();
        if smtp.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line.trim().eq_ignore_ascii_case("QUIT") {
            let _ = smtp.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
            let _ = smtp.get_mut().shutdown().await;
            return;
        }
        let _ = smtp.get_mut().write_all(b"250 2.0.0 OK\r\n").await;
    }
}
