//! Native alerting end to end: the daemon against a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started on a loopback port) and local webhook receivers that
//! record exact payloads and check signatures.

mod restart;
mod webhooks;

use crate::harness::{Daemon, dns_server, request, wait_until};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use maildrift::alert::delivery::{NoticeStatus, Payload};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use webhooks::notice;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A real Alertmanager on a loopback port, stopped (by PID) on drop.
struct Alertmanager {
    addr: SocketAddr,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// `None` (with the reason printed) only when the binary is absent outside CI.
    async fn start() -> Option<Alertmanager> {
        if !Path::new(ALERTMANAGER).exists() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{ALERTMANAGER} is missing in CI: .ci/run installs prometheus-alertmanager"
            );
            eprintln!(
                "SKIPPED: {ALERTMANAGER} not installed (apt-get install prometheus-alertmanager)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        // A free port: bind, read, release (Alertmanager cannot report a port 0 binding).
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let child = tokio::process::Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start alertmanager");
        let ready = wait_until(Duration::from_secs(15), || async {
            tokio::net::TcpStream::connect(addr).await.is_ok()
                && request(addr, "GET", "/-/ready").await.status == 200
        })
        .await;
        assert!(ready, "alertmanager not ready on {addr}");
        Some(Alertmanager {
            addr,
            _child: child,
            _dir: dir,
        })
    }

    async fn alerts(&self) -> Vec<Value> {
        let response = request(self.addr, "GET", "/api/v2/alerts").await;
        serde_json::from_str(&response.body).unwrap_or_default()
    }
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    uri: Uri,
    authorization: Option<String>,
    pub body: Value,
}

/// A local HTTP receiver recording every POST; answers `answer` with 200.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(answer: &'static str) -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                store.lock().unwrap().push(Received {
                    uri,
                    authorization,
                    body,
                });
                (StatusCode::OK, answer)
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn acme_zone(mx: &str) -> String {
    format!(
        r#"
$ORIGIN acme.example.
$TTL 120
@        SOA ns1.acme.example. hostmaster.acme.example. 1 3600 600 86400 60
@        NS  ns1.acme.example.
ns1      A   192.0.2.53
mx1      A   192.0.2.11
@        MX  10 {mx}
@        TXT "v=spf1 ip4:192.0.2.0/24 -all"
"#
    )
}

fn find_alert<'a>(alerts: &'a [Value], name: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| a["labels"]["alertname"] == name)
}

#[tokio::test]
async fn mx_drift_reaches_a_real_alertmanager_and_resolves() {
    let Some(am) = Alertmanager::start().await else {
        return;
    };
    let hook = Receiver::start("ok").await;
    let good = acme_zone("mx1.acme.example.");
    let dns = dns_server(&[&good]).await;
    let addr = dns.addr();
    // resend_interval 30 s: firing alerts carry endsAt = now + 2 min, so an alert that
    // disappears within seconds was resolved by maildrift, not expired.
    let daemon = Daemon::start(&format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{addr}"]
  nameservers: ["{addr}"]
domains:
  - name: acme.example
    expect: {{ mx: [mx1.acme.example] }}
    labels: {{ team: mail }}
alerting:
  for: 2s
  resend_interval: 30s
  external_url: http://maildrift.test:9725/
  alertmanager: {{ url: "http://{am}" }}
  webhooks:
    - {{ name: generic, format: generic, url: "http://{hook}/hook" }}
"#,
        am = am.addr,
        hook = hook.addr,
    ))
    .await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    assert!(find_alert(&am.alerts().await, "MailDnsMxDrift").is_none());

    dns.set_zone(&acme_zone("mx.old-provider.example."))
        .unwrap();
    let fired = wait_until(Duration::from_secs(20), || async {
        find_alert(&am.alerts().await, "MailDnsMxDrift").is_some()
    })
    .await;
    assert!(
        fired,
        "MailDnsMxDrift not in Alertmanager: {:?}",
        am.alerts().await
    );
    let alerts = am.alerts().await;
    let alert = find_alert(&alerts, "MailDnsMxDrift").unwrap();
    assert_eq!(
        alert["labels"],
        json!({
            "alertname": "MailDnsMxDrift",
            "domain": "acme.example",
            "check": "mx",
            "severity": "critical",
            "team": "mail",
        })
    );
    assert_eq!(
        alert["annotations"]["summary"],
        "MX of acme.example changed"
    );
    assert_eq!(
        alert["annotations"]["description"],
        format!(
            "MX changed from [mx1.acme.example] to [mx.old-provider.example]. \
             Seen at the authoritative nameservers {addr}. \
             Resolvers that cached the previous answer see it within 2 min (its TTL)."
        )
    );
    assert_eq!(
        alert["annotations"]["runbook_url"],
        format!("{}#maildnsmxdrift", maildrift::alert::rules::RUNBOOK_URL)
    );
    assert_eq!(
        alert["generatorURL"],
        "http://maildrift.test:9725/domains/acme.example"
    );
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(
        daemon
            .metric(
                "maildrift_alerts_firing",
                &[("alertname", "MailDnsMxDrift")]
            )
            .await,
        Some(1.0)
    );

    dns.set_zone(&good).unwrap();
    let resolved = wait_until(Duration::from_secs(15), || async {
        find_alert(&am.alerts().await, "MailDnsMxDrift").is_none()
    })
    .await;
    assert!(resolved, "still active: {:?}", am.alerts().await);
    daemon
        .wait_metric(
            "maildrift_alerts_firing",
            &[("alertname", "MailDnsMxDrift")],
            0.0,
            Duration::from_secs(5),
        )
        .await;
    let am_label = format!("alertmanager/{}", am.addr);
    let sent = daemon
        .metric(
            "maildrift_notifications_total",
            &[("receiver", &am_label), ("outcome", "success")],
        )
        .await
        .unwrap_or(0.0);
    assert!(sent >= 2.0, "{sent} successful deliveries to {am_label}");

    // The generic webhook got the Alertmanager webhook shape: firing, then resolved.
    let got = wait_until(Duration::from_secs(5), || async {
        hook.received().len() >= 2
    })
    .await;
    assert!(got, "{:?}", hook.received());
    let received = hook.received();
    assert_eq!(received[0].uri.path(), "/hook");
    let statuses: Vec<&Value> = received.iter().map(|r| &r.body["status"]).collect();
    assert_eq!(statuses, [&json!("firing"), &json!("resolved")]);
    let firing = &received[0].body;
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "generic");
    assert_eq!(firing["externalURL"], "http://maildrift.test:9725");
    assert_eq!(firing["alerts"][0]["labels"], alert["labels"]);
    assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_ne!(
        received[1].body["alerts"][0]["endsAt"],
        "0001-01-01T00:00:00Z"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn reload_with_a_missing_secret_keeps_the_old_alerting() {
    let dns = dns_server(&[&acme_zone("mx1.acme.example.")]).await;
    let addr = dns.addr();
    let base = format!(
        "defaults: {{ interval: 1s, timeout: 1s, resolvers: [\"{addr}\"], nameservers: [\"{addr}\"] }}\n\
         domains: [{{ name: acme.example }}]\n"
    );
    let daemon = Daemon::start(&base).await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    let broken = format!(
        "{base}alerting:\n  alertmanager:\n    url: http://127.0.0.1:1\n    bearer_token_file: /nonexistent/maildrift-token\n"
    );
    std::fs::write(&daemon.config_path, broken).unwrap();
    let response = request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(response.status, 500, "{}", response.body);
    assert!(
        response.body.contains("/nonexistent/maildrift-token"),
        "{}",
        response.body
    );
    assert_eq!(
        daemon
            .metric("maildrift_config_last_reload_successful", &[])
            .await,
        Some(0.0)
    );
    let invalid = format!("{base}alerting:\n  for: soon\n");
    std::fs::write(&daemon.config_path, invalid).unwrap();
    let response = request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(response.status, 500);
    assert!(response.body.contains("alerting.for"), "{}", response.body);
    std::fs::write(&daemon.config_path, &base).unwrap();
    assert_eq!(request(daemon.addr, "POST", "/-/reload").await.status, 200);
    daemon.stop().await;
}

#[tokio::test]
async fn alertmanager_client_authenticates_with_secrets_from_files_and_env() {
    let receiver = Receiver::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let yaml = format!(
        "domains: []\nalerting:\n  alertmanager:\n    url: http://{}/prefix/\n    basic_auth: {{ username: md, password_file: {} }}\n",
        receiver.addr,
        password.display()
    );
    let config = maildrift::config::Config::parse(&yaml, Path::new("t.yml")).unwrap();
    let runtime = maildrift::alert::runtime(config.alerting.as_ref(), "http://m:9725").unwrap();
    assert_eq!(
        runtime.alertmanagers[0].name,
        format!("alertmanager/{}", receiver.addr)
    );
    let alert = notice(NoticeStatus::Firing).alert;
    let ends_at = alert.starts_at + Duration::from_secs(240);
    let batch = vec![maildrift::alert::alertmanager::PostableAlert::new(
        &alert, ends_at,
    )];
    runtime.alertmanagers[0]
        .target
        .deliver(&Payload::Alerts(batch))
        .await
        .unwrap();
    let got = receiver.received();
    assert_eq!(got[0].uri.path(), "/prefix/api/v2/alerts");
    // "md:s3cret" in base64, as `printf md:s3cret | base64` prints it.
    assert_eq!(got[0].authorization.as_deref(), Some("Basic bWQ6czNjcmV0"));
    assert_eq!(
        got[0].body,
        json!([{
            "labels": alert.content.labels,
            "annotations": alert.content.annotations,
            "startsAt": "2023-11-14T22:13:20.000Z",
            "endsAt": "2023-11-14T22:17:20.000Z",
            "generatorURL": "http://maildrift.test:9725/domains/acme.example",
        }])
    );

    // A bearer token from the environment.
    let var = "MAILDRIFT_TEST_AM_TOKEN";
    // SAFETY: only this test reads or writes this variable.
    unsafe { std::env::set_var(var, "tok-123") };
    let yaml = format!(
        "domains: []\nalerting:\n  alertmanager: {{ url: \"http://{}\", bearer_token_env: {var} }}\n",
        receiver.addr
    );
    let config = maildrift::config::Config::parse(&yaml, Path::new("t.yml")).unwrap();
    let runtime = maildrift::alert::runtime(config.alerting.as_ref(), "http://m:9725").unwrap();
    runtime.alertmanagers[0]
        .target
        .deliver(&Payload::Alerts(Vec::new()))
        .await
        .unwrap();
    assert_eq!(
        receiver.received()[1].authorization.as_deref(),
        Some("Bearer tok-123")
    );
}
