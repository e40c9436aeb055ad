//! Helpers: start the daemon on 127.0.0.1:0, plain HTTP/1.1 requests, metric lookup, and
//! bounded waiting (poll with a deadline, never a bare sleep).

use maildrift::app::{self, RunOptions};
use maildrift::config::Config;
use maildrift::dns::server::LocalDnsServer;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running daemon and the files it reads.
pub struct Daemon {
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// `yaml` with `metrics: { detail: true }` unless it has a `metrics:` section: the
/// daemon tests read series the default leaves out while they are 0 (drift, findings,
/// last-run times, record fingerprints). `tests/it/series.rs` tests the default.
pub fn with_detail(yaml: &str) -> String {
    if yaml.lines().any(|l| l.starts_with("metrics:")) {
        yaml.to_owned()
    } else {
        format!("metrics:\n  detail: true\n{yaml}")
    }
}

impl Daemon {
    /// Writes `yaml` (see [`with_detail`]) to a temporary file and runs the daemon with it.
    pub async fn start(yaml: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("maildrift.yml");
        std::fs::write(&config_path, with_detail(yaml)).unwrap();
        let config =
            Config::load(&config_path).unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app::run(
            config,
            RunOptions::default(),
            listener,
            shutdown.clone(),
        ));
        Daemon {
            addr,
            config_path,
            shutdown,
            task,
            _dir: dir,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path).await
    }

    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric(&self.get("/metrics").await.body, name, labels)
    }

    /// Waits (bounded) until `/-/ready` answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let ready = wait_until(within, || async {
            self.get("/-/ready").await.status == 200
        })
        .await;
        assert!(ready, "daemon not ready within {within:?}");
    }

    /// Waits (bounded) until the metric has `value`; returns how long it took.
    pub async fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        within: Duration,
    ) -> Duration {
        let started = tokio::time::Instant::now();
        let reached = wait_until(within, || async {
            self.metric(name, labels).await == Some(value)
        })
        .await;
        let seen = self.metric(name, labels).await;
        assert!(
            reached,
            "{name}{labels:?} is {seen:?}, expected {value} within {within:?}"
        );
        started.elapsed()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("daemon stops within 15 s");
        result.unwrap().unwrap();
    }
}

/// Starts an authoritative server on 127.0.0.1 with the zones.
pub async fn dns_server(zones: &[&str]) -> LocalDnsServer {
    LocalDnsServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), zones)
        .await
        .unwrap()
}

/// Polls `condition` every 25 ms until it holds or `within` passes.
pub async fn wait_until<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// A minimal HTTP/1.1 client (Connection: close), enough for the daemon's endpoints.
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    request_with(addr, method, path, &[]).await
}

/// [`request`] with extra request headers.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    request_body(addr, method, path, headers, b"").await
}

/// [`request`] with extra request headers and a body.
pub async fn request_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413, 401) before reading all of a large body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers: headers.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The value of the first sample of `name` whose labels include `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric_name == name).then_some((label_text, value))
        })
        .find(|(label_text, _)| {
            labels.iter().all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            })
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// Whether the program a test needs is installed. When it is not: outside CI the test
/// prints `SKIPPED …` and returns; with `CI` set it fails (`.ci/run` installs it).
pub fn tool_installed(program: &str, install: &str, test: &str) -> bool {
    if std::path::Path::new(program).exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        !ci,
        "{program} is missing in CI: .ci/run must install it ({install})"
    );
    eprintln!("SKIPPED {test}: {program} not installed ({install})");
    false
}

/// A test CA and a certificate for `names` (host names or IP addresses) signed by it:
/// (CA PEM, leaf DER, leaf key DER).
pub fn test_pki(names: &[&str]) -> (String, Vec<u8>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "maildrift test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let leaf = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.der().to_vec(), leaf_key.serialize_der())
}

/// A canned HTTP answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Held back this long before answering (a slow server).
    pub delay: Duration,
}

impl Canned {
    pub fn new(status: u16, content_type: &str, body: &str) -> Canned {
        Canned {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
}

/// Answers a request, given its request line (`GET /path HTTP/1.1`); `None` closes the
/// connection without an answer.
pub type Responder = Arc<dyn Fn(&str) -> Option<Canned> + Send + Sync>;

/// An HTTPS server on 127.0.0.1:0 with a certificate from a test CA; counts requests per
/// request line; aborted on drop.
pub struct HttpsServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    task: JoinHandle<()>,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpsServer {
    pub async fn start(cert: Vec<u8>, key: Vec<u8>, respond: Responder) -> HttpsServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls_pki_types::PrivateKeyDer::try_from(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.into()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, counter, respond) =
                    (acceptor.clone(), counter.clone(), respond.clone());
                tokio::spawn(async move {
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
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    *counter.lock().unwrap().entry(line.clone()).or_default() += 1;
                    let Some(canned) = respond(&line) else { return };
                    tokio::time::sleep(canned.delay).await;
                    let mut response = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        canned.status,
                        canned.body.len()
                    );
                    for (name, value) in &canned.headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    response.push_str(&canned.body);
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        HttpsServer {
            addr,
            requests,
            task,
        }
    }

    /// Requests received with this request line (`GET /path HTTP/1.1`).
    pub fn requests(&self, line: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(line)
            .copied()
            .unwrap_or(0)
    }
}

/// The findings of a check in JSON (API or `maildrift check`) as `code:severity`, sorted.
pub fn finding_codes(check: &serde_json::Value) -> Vec<String> {
    let mut codes: Vec<String> = check["findings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let (code, severity) = (f["code"].as_str(), f["severity"].as_str());
            format!("{}:{}", code.unwrap_or("?"), severity.unwrap_or("?"))
        })
        .collect();
    codes.sort();
    codes
}

/// Stops a process this test started: SIGTERM by PID, a bounded wait (polled), then SIGKILL.
pub fn terminate(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
