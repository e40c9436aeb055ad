//! Hostile TXT values (ANSI escapes, line breaks, NUL, quotes, `<script>`, a Slack mention,
//! very long strings, invalid UTF-8) through the real binary: the metrics exposition stays
//! parseable and never carries them as label values, the JSON API stays valid JSON, the
//! status pages show them escaped, the webhook bodies (generic and Slack) stay valid and
//! inert, and every log line (logfmt and JSON) stays one line without control characters.

use crate::binary::{BIN, terminate};
use crate::faults::server::{FaultDns, a, mx, txt, txt_bytes};
use crate::harness::{request, wait_until};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DOMAIN: &str = "hostile.test";
const SAFE_SPF: &str = "v=spf1 ip4:192.0.2.1 -all";

/// The strings of the hostile SPF record (joined without separator when read).
fn hostile_strings() -> Vec<Vec<u8>> {
    let mut strings = vec![
        b"v=spf1 ip4:192.0.2.1 \x1b[31mRED\x1b[0m\x1b]0;pwned\x07 <script>alert(1)</script>"
            .to_vec(),
        b" \"dq\" 'sq' \\bs \x00nul \r\nInjected: level=error msg=forged\n<!channel> \xff\xfe"
            .to_vec(),
    ];
    strings.extend((0..4).map(|_| vec![b'x'; 255]));
    strings.push(b" -all".to_vec());
    strings
}

/// Requests received: (path, raw body).
type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A local HTTP server recording each request's path and raw body.
struct RawReceiver {
    addr: SocketAddr,
    bodies: Bodies,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawReceiver {
    async fn start() -> RawReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let store = bodies.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Head, then Content-Length bytes of body (bounded: 1 MiB).
                    loop {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 || raw.len() > 1 << 20 {
                            return;
                        }
                        raw.extend_from_slice(&buf[..n]);
                        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if raw.len() < end + 4 + length {
                            continue;
                        }
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let body = raw[end + 4..end + 4 + length].to_vec();
                        store.lock().unwrap().push((path, body));
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                            .await;
                        return;
                    }
                });
            }
        });
        RawReceiver { addr, bodies, task }
    }

    fn bodies(&self, path: &str) -> Vec<Vec<u8>> {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// No control character but line breaks (and tabs), no raw ESC, BEL, NUL or CR.
fn assert_no_controls(what: &str, text: &str) {
    let chars: Vec<char> = text.chars().collect();
    if let Some(at) = chars
        .iter()
        .position(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        let context: String = chars[at.saturating_sub(80)..(at + 20).min(chars.len())]
            .iter()
            .collect();
        panic!(
            "{what}: raw control character {:?} in …{context:?}…",
            chars[at]
        );
    }
}

/// Every line of an exposition is a comment or `name{labels} value`; no TXT value leaked.
fn assert_exposition(text: &str) {
    assert_no_controls("/metrics", text);
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad sample line {line:?}"
        );
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        for leak in [
            "RED", "pwned", "script", "Injected", "channel", "xxxx", "sq'",
        ] {
            assert!(!line.contains(leak), "TXT value in a series: {line:?}");
        }
    }
}

fn config(dns: SocketAddr, receiver: SocketAddr) -> String {
    format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  checks: {{ skip: [dkim, dmarc, mta_sts, tls_rpt, nameservers, dnssec, smtp_tls, dane, bimi, registration, dnsbl] }}
alerting:
  for: 0s
  webhooks:
    - {{ name: machines, format: generic, url: "http://{receiver}/generic" }}
    - {{ name: people, format: slack, url: "http://{receiver}/slack" }}
domains:
  - name: {DOMAIN}
"#
    )
}

/// The `addresses` of the start-up line, in either log format.
fn started_at(line: &str) -> Option<SocketAddr> {
    if line.contains("maildrift started") {
        let json: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(addresses) = json["fields"]["addresses"].as_str() {
            return addresses.split(',').next()?.parse().ok();
        }
        let value = line.split("addresses=").nth(1)?;
        let value = value.trim_start_matches('"');
        return value.split([',', '"', ' ']).next()?.parse().ok();
    }
    None
}

#[tokio::test]
async fn hostile_txt_values_break_no_output() {
    for format in ["logfmt", "json"] {
        hostile_run(format).await;
    }
}

async fn hostile_run(format: &str) {
    let receiver = RawReceiver::start().await;
    let dns = FaultDns::start(&[DOMAIN]).await;
    dns.add(DOMAIN, mx(10, "mx.hostile.test"));
    dns.add("mx.hostile.test", a([192, 0, 2, 25]));
    dns.add(DOMAIN, txt(SAFE_SPF));
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("maildrift.yml");
    std::fs::write(&config_path, config(dns.addr(), receiver.addr)).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--log.format",
            format,
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config_path)
        .arg("--state-dir")
        .arg(dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    // Raw lines (split at b'\n' only), so that a control character in a line is seen.
    let reader = std::thread::spawn(move || {
        let mut stderr = std::io::BufReader::new(stderr);
        let mut line = Vec::new();
        while std::io::BufRead::read_until(&mut stderr, b'\n', &mut line).unwrap_or(0) > 0 {
            let text = String::from_utf8(std::mem::take(&mut line)).expect("log lines are UTF-8");
            sink.lock()
                .unwrap()
                .push(text.trim_end_matches('\n').to_owned());
        }
    });
    let found = wait_until(Duration::from_secs(20), || {
        let started = lines.lock().unwrap().iter().find_map(|l| started_at(l));
        async move { started.is_some() }
    })
    .await;
    assert!(
        found,
        "{format}: no start-up line: {:?}",
        lines.lock().unwrap()
    );
    let addr = lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| started_at(l))
        .unwrap();
    let ready = wait_until(Duration::from_secs(20), || async {
        request(addr, "GET", "/-/ready").await.status == 200
    })
    .await;
    assert!(ready, "{format}: not ready");
    let strings = hostile_strings();
    let parts: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
    dns.set(
        DOMAIN,
        hickory_proto::rr::RecordType::TXT,
        vec![
            txt_bytes(&parts),
            txt_bytes(&[b"\x1b[2J<b>not spf</b>\x00"]),
        ],
    );
    let drift = wait_until(Duration::from_secs(15), || async {
        let text = request(addr, "GET", "/metrics").await.body;
        crate::harness::metric(
            &text,
            "maildrift_drift",
            &[("domain", DOMAIN), ("check", "spf")],
        ) == Some(1.0)
    })
    .await;
    assert!(drift, "{format}: the hostile record was not seen as drift");
    let delivered = wait_until(Duration::from_secs(15), || async {
        !receiver.bodies("/slack").is_empty() && !receiver.bodies("/generic").is_empty()
    })
    .await;
    assert!(delivered, "{format}: no webhook within 15 s");

    // Metrics.
    let metrics = request(addr, "GET", "/metrics").await;
    assert_exposition(&metrics.body);

    // JSON API: valid, control characters escaped on the wire, the value kept as data.
    for path in [
        format!("/api/v1/domains/{DOMAIN}"),
        "/api/v1/domains".to_owned(),
        format!("/api/v1/events?domain={DOMAIN}"),
        // The same state as stored (`scope=fleet` reads the store).
        format!("/api/v1/domains/{DOMAIN}?scope=fleet"),
        "/api/v1/domains?scope=fleet".to_owned(),
    ] {
        let response = request(addr, "GET", &path).await;
        assert_eq!(response.status, 200, "{path}");
        assert_no_controls(&path, &response.body);
        serde_json::from_str::<serde_json::Value>(&response.body)
            .unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"));
    }
    let detail = request(addr, "GET", &format!("/api/v1/domains/{DOMAIN}")).await;
    let json: serde_json::Value = serde_json::from_str(&detail.body).unwrap();
    let records = json["checks"]["spf"].to_string();
    assert!(
        records.contains("\\u001b[31mRED") && records.contains('\u{fffd}'),
        "{format}: the record is kept as data, ESC escaped, invalid UTF-8 replaced: {records}"
    );

    // Status pages: escaped; the record shown, its controls visible as \u{..}.
    for path in [
        "/".to_owned(),
        format!("/domains/{DOMAIN}"),
        "/?scope=fleet".to_owned(),
        format!("/domains/{DOMAIN}?scope=fleet"),
    ] {
        let page = request(addr, "GET", &path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_no_controls(&path, &page.body);
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: unescaped script"
        );
        assert!(!page.body.contains("<b>not spf"), "{path}: unescaped tag");
    }
    for path in [
        format!("/domains/{DOMAIN}"),
        format!("/domains/{DOMAIN}?scope=fleet"),
    ] {
        let page = request(addr, "GET", &path).await.body;
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                && page.contains("\\u{1b}[31mRED"),
            "{format}: {path} shows the record escaped"
        );
    }

    // Webhooks: raw bodies valid JSON without raw controls; Slack text inert.
    for (path, body) in receiver
        .bodies("/generic")
        .into_iter()
        .map(|b| ("/generic", b))
        .chain(receiver.bodies("/slack").into_iter().map(|b| ("/slack", b)))
    {
        let text = String::from_utf8(body).expect("webhook body is UTF-8");
        assert_no_controls(path, &text);
        let json: serde_json::Value = serde_json::from_str(&text).expect("webhook JSON");
        if path == "/slack" {
            let message = json["text"].as_str().unwrap();
            assert_no_controls("slack text", &message.replace('\n', " "));
            assert!(message.contains("SPF"), "{message}");
            assert!(!message.contains("<script>"), "{message}");
            assert!(!message.contains("<!channel>"), "{message}");
            assert!(
                !message.lines().any(|l| l.starts_with("Injected")),
                "{message}"
            );
        }
    }

    // Logs: every line one event, no control characters, no forged line.
    terminate(&mut child).await;
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    let drift_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("drift detected") && l.contains(DOMAIN))
        .collect();
    assert!(!drift_lines.is_empty(), "{format}: no drift log line");
    assert!(
        drift_lines.iter().any(|l| l.contains("RED")),
        "{format}: the drift line quotes the record: {drift_lines:?}"
    );
    for line in lines.iter().filter(|l| !l.is_empty()) {
        assert_no_controls(&format!("{format} log line"), line);
        assert!(!line.starts_with("Injected"), "forged log line: {line}");
        if format == "json" {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("not one JSON event per line ({e}): {line}"));
        }
    }
}
