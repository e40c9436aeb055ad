//! `--web.config.file`: HTTPS with a test CA, basic auth with bcrypt on every endpoint but
//! liveness/readiness, client certificates, changes applied without a restart, and a bad file
//! refused at start-up naming the file and field.

use crate::harness::wait_until;
use maildrift::WebConfig;
use maildrift::app::{self, RunOptions};
use maildrift::config::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A CA, a server certificate for `localhost` signed by it, and a client certificate.
struct Pki {
    ca_pem: String,
    client_pem: String,
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["scraper".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
    }
}

struct Server {
    addr: SocketAddr,
    web_file: PathBuf,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: tempfile::TempDir,
}

async fn start(web_yaml: &str, dir: tempfile::TempDir) -> Server {
    let config_path = dir.path().join("maildrift.yml");
    std::fs::write(&config_path, "domains: []\n").unwrap();
    let web_file = dir.path().join("web.yml");
    std::fs::write(&web_file, web_yaml).unwrap();
    let config = Config::load(&config_path).unwrap();
    let web = WebConfig::load(&web_file).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let options = RunOptions {
        web_config: Some(Arc::new(web)),
        ..RunOptions::default()
    };
    let task = tokio::spawn(app::run(config, options, listener, shutdown.clone()));
    Server {
        addr,
        web_file,
        shutdown,
        task,
        dir,
    }
}

impl Server {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn client(addr: SocketAddr, ca_pem: &str, identity: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// Status code (0 when the request failed) and body of a GET with optional basic auth.
async fn get(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> (u16, String, Option<String>) {
    let mut request = client.get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (status, response.text().await.unwrap_or_default(), challenge)
        }
        Err(_) => (0, String::new(), None),
    }
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

#[tokio::test]
async fn https_with_basic_auth_and_live_changes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let server = start(
        &format!(
            "{tls}basic_auth_users:\n  alice: '{}'\n",
            hash("wonderland")
        ),
        dir,
    )
    .await;
    let port = server.addr.port();
    let https = client(server.addr, &pki.ca_pem, None);
    let metrics = format!("https://localhost:{port}/metrics");

    // Liveness and readiness stay open; everything else wants credentials.
    let (status, body, _) = get(&https, &format!("https://localhost:{port}/-/healthy"), None).await;
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    let (status, ..) = get(&https, &format!("https://localhost:{port}/healthz"), None).await;
    assert_eq!(status, 200);
    let (status, ..) = get(&https, &format!("https://localhost:{port}/readyz"), None).await;
    assert_ne!(status, 401, "readiness must not need credentials");
    let (status, _, challenge) = get(&https, &metrics, None).await;
    assert_eq!(status, 401);
    assert!(challenge.is_some_and(|c| c.starts_with("Basic ")));
    let (status, ..) = get(&https, &metrics, Some(("alice", "wrong"))).await;
    assert_eq!(status, 401);
    let (status, ..) = get(&https, &metrics, Some(("mallory", "wonderland"))).await;
    assert_eq!(status, 401);
    let (status, ..) = get(
        &https,
        &format!("https://localhost:{port}/api/v1/domains"),
        None,
    )
    .await;
    assert_eq!(status, 401, "the API is protected too");
    let (status, body, _) = get(&https, &metrics, Some(("alice", "wonderland"))).await;
    assert_eq!(status, 200);
    assert!(body.contains("maildrift_build_info"), "{body}");

    // `maildrift baseline accept` reaches the protected daemon over HTTPS with credentials
    // from the URL and the CA from --ca-file. A refusal (401) is reported, never taken for
    // "the daemon is down": the state database is not touched.
    let ca_file = server.dir.path().join("ca.pem");
    let state_dir = server.dir.path().join("cli-state");
    let accept = |password: &'static str| {
        let url = format!("https://alice:{password}@localhost:{port}");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_maildrift"));
        command
            .arg("--state-dir")
            .arg(&state_dir)
            .args([
                "baseline",
                "accept",
                "nowhere.example",
                "--url",
                &url,
                "--ca-file",
            ])
            .arg(&ca_file);
        async move {
            let output = command.output().await.unwrap();
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (code, stderr) = accept("wrong").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(": 401"), "{stderr}");
    assert!(!stderr.contains("wrong"), "password printed: {stderr}");
    let (code, stderr) = accept("wonderland").await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(": 404"),
        "authenticated, then: not watched: {stderr}"
    );
    assert!(
        !state_dir.join("maildrift.db").exists(),
        "the CLI wrote the store"
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (status, ..) = get(&plain, &format!("http://127.0.0.1:{port}/-/healthy"), None).await;
    assert_eq!(status, 0, "plain HTTP must fail on the HTTPS port");

    // A broken file keeps the old settings.
    std::fs::write(
        &server.web_file,
        format!("{tls}basic_auth_users:\n  alice: nope\n"),
    )
    .unwrap();
    // A new user replaces alice without a restart.
    std::fs::write(
        &server.web_file,
        format!("{tls}basic_auth_users:\n  bob: '{}'\n", hash("builder")),
    )
    .unwrap();
    let switched = wait_until(Duration::from_secs(10), || async {
        get(&https, &metrics, Some(("bob", "builder"))).await.0 == 200
    })
    .await;
    assert!(switched, "the changed web config was not applied");
    let (status, ..) = get(&https, &metrics, Some(("alice", "wonderland"))).await;
    assert_eq!(status, 401, "removed user still accepted");

    // Dropping TLS and users: plain HTTP, open.
    std::fs::write(&server.web_file, "").unwrap();
    let open = wait_until(Duration::from_secs(10), || async {
        get(&plain, &format!("http://127.0.0.1:{port}/metrics"), None)
            .await
            .0
            == 200
    })
    .await;
    assert!(open, "an empty web config should serve plain, open HTTP");
    assert!(server.dir.path().exists());
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = start(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n",
        dir,
    )
    .await;
    let url = format!("https://localhost:{}/metrics", server.addr.port());
    let anonymous = client(server.addr, &pki.ca_pem, None);
    assert_eq!(
        get(&anonymous, &url, None).await.0,
        0,
        "no client cert accepted"
    );
    let with_cert = client(server.addr, &pki.ca_pem, Some(&pki.client_pem));
    let (status, body, _) = get(&with_cert, &url, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("maildrift_build_info"));
    server.stop().await;
}

#[test]
fn run_refuses_a_bad_web_config_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("maildrift.yml");
    std::fs::write(&config, "domains: []\n").unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  alice: plaintext\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_maildrift"))
        .args(["run", "--web.listen-address", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path())
        .env("MAILDRIFT_WEB_CONFIG_FILE", &web)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let expected = format!("{}: basic_auth_users.alice:", web.display());
    assert!(stderr.contains(&expected), "{stderr}");
}
