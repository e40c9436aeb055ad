//! The security pass: no HTTP route makes the daemon ask DNS or connect anywhere for a
//! name, URL or address taken from the request (no SSRF); query strings and bodies are
//! bounded; secrets (an Alertmanager password file, a webhook signing secret, a webhook URL
//! with a token) never appear in logs, the API, the metrics, the pages or error messages.

use crate::binary::{BIN, terminate};
use crate::faults::server::{FaultDns, a, mx, txt};
use crate::faults::{DOMAIN, Path, config, healthy_server};
use crate::harness::{Daemon, request, request_body, wait_until};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// A TCP listener that only counts connections.
async fn canary_listener() -> (SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            drop(stream);
        }
    });
    (addr, count, task)
}

#[tokio::test]
async fn no_route_asks_dns_or_connects_for_what_the_request_names() {
    let dns = healthy_server().await;
    // Names the requests mention, served by the daemon's own server (so a lookup would be
    // seen), and a second server and a TCP listener that nothing should ever reach.
    dns.add("canary.test", mx(10, "mx.canary.test"));
    let canary_dns = FaultDns::start(&["canary.test"]).await;
    canary_dns.add("canary.test", txt("v=spf1 -all"));
    let (canary_tcp, connections, task) = canary_listener().await;
    let daemon = Daemon::start(&config(&dns, Path::Direct, "")).await;
    daemon.wait_ready(Duration::from_secs(15)).await;

    let names = [
        "canary.test".to_owned(),
        canary_dns.addr().to_string(),
        canary_tcp.to_string(),
        format!("http://{canary_tcp}/x"),
    ];
    let encoded = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    let params = [
        "domain",
        "url",
        "target",
        "resolver",
        "nameserver",
        "server",
        "host",
        "q",
        "since",
        "check",
    ];
    for name in &names {
        let query: String = params
            .iter()
            .map(|p| format!("{p}={}", encoded(name)))
            .collect::<Vec<_>>()
            .join("&");
        let segment = encoded(name);
        for path in [
            format!("/?{query}"),
            format!("/metrics?{query}"),
            format!("/-/ready?{query}"),
            format!("/-/healthy?{query}"),
            format!("/api/v1/domains?{query}"),
            format!("/api/v1/domains/{segment}?{query}"),
            format!("/api/v1/events?{query}"),
            format!("/domains/{segment}?{query}"),
            format!("/api/v1/domains/{segment}/timeline.md?{query}"),
            format!("/api/v1/domains/{segment}/timeline.csv?{query}"),
            format!("/api/v1/incidents/1?{query}"),
        ] {
            let response = request(daemon.addr, "GET", &path).await;
            assert_ne!(response.status, 0, "{path}");
        }
        let body = format!(
            "{{\"domain\":\"{name}\",\"url\":\"{name}\",\"text\":\"{name}\",\"channel\":\"c\",\"ticket\":\"t\",\"who\":\"w\",\"dns_provider\":\"{name}\",\"registrar\":\"{name}\"}}"
        );
        let json = [("Content-Type", "application/json")];
        for path in [
            format!("/api/v1/domains/{segment}/accept?{query}"),
            "/api/v1/incidents/1/notes".to_owned(),
            format!("/domains/{segment}/notes"),
            format!("/-/reload?{query}"),
        ] {
            let response = request_body(daemon.addr, "POST", &path, &json, body.as_bytes()).await;
            assert_ne!(response.status, 0, "{path}");
        }
        // A reload body holding a whole config is not read: the file is.
        let yaml = format!(
            "defaults: {{ resolvers: [\"{}\"], nameservers: [\"{}\"] }}\ndomains: [{{ name: canary.test }}]\n",
            canary_dns.addr(),
            canary_dns.addr()
        );
        let response = request_body(daemon.addr, "POST", "/-/reload", &[], yaml.as_bytes()).await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    // One more round with everything the requests may have set in motion.
    let rounds = || async {
        daemon
            .metric("maildrift_domain_checks_total", &[("outcome", "success")])
            .await
            .unwrap_or(0.0)
    };
    let before = rounds().await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            rounds().await > before
        })
        .await
    );
    assert_eq!(daemon.metric("maildrift_domains", &[]).await, Some(1.0));
    assert_eq!(
        dns.queries("canary.test"),
        0,
        "a lookup for a requested name"
    );
    assert_eq!(dns.queries("mx.canary.test"), 0);
    assert_eq!(
        canary_dns.queries("canary.test"),
        0,
        "a query to a requested server"
    );
    assert_eq!(
        connections.load(Ordering::Relaxed),
        0,
        "a connection to a requested URL"
    );
    assert!(
        dns.queries(DOMAIN) > 0,
        "the configured domain is still checked"
    );
    task.abort();
    daemon.stop().await;
}

#[tokio::test]
async fn query_strings_and_bodies_are_bounded() {
    let dns = healthy_server().await;
    let daemon = Daemon::start(&config(&dns, Path::Direct, "")).await;
    daemon.wait_ready(Duration::from_secs(15)).await;
    let long = "q=".to_owned() + &"a".repeat(4096);
    for path in ["/", "/api/v1/events", "/metrics", "/api/v1/domains"] {
        let response = request(daemon.addr, "GET", &format!("{path}?{long}")).await;
        assert_eq!(response.status, 414, "{path}: {}", response.body);
    }
    let body = vec![b'a'; 1024 * 1024];
    for (path, content_type) in [
        ("/api/v1/incidents/1/notes", "application/json"),
        (
            "/domains/fault.test/notes",
            "application/x-www-form-urlencoded",
        ),
    ] {
        let headers = [("Content-Type", content_type)];
        let response = request_body(daemon.addr, "POST", path, &headers, &body).await;
        assert_eq!(response.status, 413, "{path}: {}", response.body);
    }
    assert_eq!(daemon.get("/-/healthy").await.status, 200);
    daemon.stop().await;
}

const AM_PASSWORD: &str = "am-pass-S3CRET-7f3a";
const SIGNING_SECRET: &str = "SEC-signing-91b2c4";
const URL_TOKEN: &str = "hook-token-TOK-55c1";

#[tokio::test]
async fn secrets_never_reach_logs_api_metrics_pages_or_errors() {
    let dns = FaultDns::start(&["secret.test"]).await;
    dns.add("secret.test", mx(10, "mx1.secret.test"));
    dns.add("mx1.secret.test", a([192, 0, 2, 1]));
    dns.add("mx2.secret.test", a([192, 0, 2, 2]));
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("am-password");
    std::fs::write(&password_file, format!("{AM_PASSWORD}\n")).unwrap();
    let secret_file = dir.path().join("dingtalk-secret");
    std::fs::write(&secret_file, SIGNING_SECRET).unwrap();
    let url_file = dir.path().join("dingtalk-url");
    // Nothing listens on port 1: every delivery fails and is logged.
    std::fs::write(
        &url_file,
        format!("http://127.0.0.1:1/robot/send?access_token={URL_TOKEN}"),
    )
    .unwrap();
    let addr = dns.addr();
    let yaml = format!(
        r#"defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{addr}"]
  nameservers: ["{addr}"]
  checks: {{ skip: [spf, dkim, dmarc, mta_sts, tls_rpt, nameservers, dnssec, smtp_tls, dane, bimi, registration, dnsbl] }}
alerting:
  for: 0s
  alertmanager:
    url: http://127.0.0.1:1
    basic_auth: {{ username: maildrift, password_file: {password} }}
  webhooks:
    - {{ name: ops, format: dingtalk, url_file: {url}, secret_file: {secret} }}
domains:
  - name: secret.test
"#,
        password = password_file.display(),
        url = url_file.display(),
        secret = secret_file.display()
    );
    let config_path = dir.path().join("maildrift.yml");
    std::fs::write(&config_path, &yaml).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--log.format", "json", "--log.level", "debug"])
        .args(["--web.listen-address", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .arg("--state-dir")
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut daemon = None;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let started = json["fields"]["addresses"].as_str().map(str::to_owned);
        log.push(line);
        if let Some(addresses) = started {
            daemon = addresses.split(',').next().and_then(|a| a.parse().ok());
            break;
        }
    }
    let daemon: SocketAddr = daemon.expect("start-up line");
    assert!(
        wait_until(Duration::from_secs(20), || async {
            request(daemon, "GET", "/-/ready").await.status == 200
        })
        .await
    );
    // Drift fires both receivers, whose deliveries fail and are retried (and logged).
    dns.set(
        "secret.test",
        hickory_proto::rr::RecordType::MX,
        vec![mx(10, "mx2.secret.test")],
    );
    let failed = wait_until(Duration::from_secs(20), || async {
        let text = request(daemon, "GET", "/metrics").await.body;
        let failures = |receiver: &str| {
            crate::harness::metric(
                &text,
                "maildrift_notifications_total",
                &[("receiver", receiver), ("outcome", "failure")],
            )
            .unwrap_or(0.0)
        };
        failures("ops") > 0.0 && failures("alertmanager/127.0.0.1:1") > 0.0
    })
    .await;
    assert!(failed, "both deliveries were attempted and failed");

    let mut outputs = Vec::new();
    for path in [
        "/metrics",
        "/api/v1/domains",
        "/api/v1/domains/secret.test",
        "/api/v1/events",
        "/",
        "/domains/secret.test",
    ] {
        let response = request(daemon, "GET", path).await;
        outputs.push((path.to_owned(), response.body));
    }
    // A reload that fails on a secret names the file, never a secret's content.
    std::fs::write(
        &config_path,
        yaml.replace(&secret_file.display().to_string(), "/nonexistent/secret"),
    )
    .unwrap();
    let response = request(daemon, "POST", "/-/reload").await;
    assert_eq!(response.status, 500);
    outputs.push(("failed reload".to_owned(), response.body));
    let validate = Command::new(BIN)
        .arg("validate")
        .arg(&config_path)
        .output()
        .unwrap();
    outputs.push((
        "validate".to_owned(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&validate.stdout),
            String::from_utf8_lossy(&validate.stderr)
        ),
    ));
    terminate(&mut child).await;
    reader.join().unwrap();
    log.extend(lines.try_iter());
    assert!(
        log.iter().any(|l| l.contains("notification failed")),
        "the failures were logged"
    );
    outputs.push(("logs".to_owned(), log.join("\n")));
    // The password also as it travels: base64 of "maildrift:PASSWORD".
    let basic = data_encoding::BASE64.encode(format!("maildrift:{AM_PASSWORD}").as_bytes());
    for (what, text) in &outputs {
        for secret in [AM_PASSWORD, SIGNING_SECRET, URL_TOKEN, basic.as_str()] {
            assert!(!text.contains(secret), "{what} shows a secret: {secret}");
        }
    }
}

/// Every way of deploying runs as an unprivileged user on a read-only root filesystem.
#[test]
fn deployments_run_unprivileged_on_a_read_only_root() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let unit = read("deploy/systemd/maildrift.service");
    // DynamicUser: a fresh unprivileged user; ProtectSystem=strict: / is read-only, only
    // the StateDirectory is writable.
    for setting in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == setting),
            "unit lacks {setting}"
        );
    }
    for manifest in [
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/statefulset-sharded.yaml",
        "deploy/helm/maildrift/values.yaml",
    ] {
        let text = read(manifest);
        for setting in [
            "runAsNonRoot: true",
            "readOnlyRootFilesystem: true",
            "allowPrivilegeEscalation: false",
        ] {
            assert!(text.contains(setting), "{manifest} lacks {setting}");
        }
    }
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.lines().any(|l| l.trim() == "USER 10001"),
        "the image runs as a numbered unprivileged user"
    );
}
