//! The binary: `validate` lists every error with line:column, `run` refuses a bad config,
//! and a running daemon stops cleanly on SIGTERM.

use crate::harness::{dns_server, request, wait_until};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_maildrift");

const BROKEN: &str = "\
defaults:
  interval: 0s
domains:
  - name: ok.example
  - name: bad..example
  - name: OK.example.
    resolvers: [\"not-an-ip\"]
";

#[test]
fn validate_lists_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yml");
    std::fs::write(&file, BROKEN).unwrap();
    let output = Command::new(BIN)
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let path = file.display().to_string();
    for expected in [
        format!("{path}:2:13: defaults.interval:"),
        format!("{path}:5:11: domains[1].name:"),
        format!("{path}:6:11: domains[2].name:"),
        format!("{path}:7:17: domains[2].resolvers[0]:"),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("\"bad..example\""),
        "bad value quoted:\n{stdout}"
    );
    assert!(
        stdout.contains("line 4"),
        "duplicate names the first line:\n{stdout}"
    );

    let good = dir.path().join("good.yml");
    std::fs::write(&good, "domains:\n  - name: ok.example\n").unwrap();
    let output = Command::new(BIN)
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn run_refuses_an_invalid_config_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yml");
    std::fs::write(&file, BROKEN).unwrap();
    let output = Command::new(BIN)
        .args(["run", "--web.listen-address", "127.0.0.1:0", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Error: invalid configuration"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:5:11: domains[1].name:", file.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn daemon_binary_serves_and_stops_on_sigterm() {
    let zone = "$ORIGIN acme.example.\n@ 300 SOA ns1.acme.example. h.acme.example. 1 3600 600 86400 60\n@ 300 NS ns1.acme.example.\nns1 300 A 192.0.2.1\n@ 300 MX 10 mx.acme.example.\nmx 300 A 192.0.2.2\n@ 300 TXT \"v=spf1 mx -all\"\n";
    let dns = dns_server(&[zone]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maildrift.yml");
    std::fs::write(
        &file,
        "defaults:\n  interval: 1s\n  timeout: 1s\ndomains:\n  - name: acme.example\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .arg("--config")
        .arg(&file)
        .arg("--state-dir")
        .arg(dir.path().join("data"))
        .arg("--resolver")
        .arg(dns.addr().to_string())
        .arg("--nameserver")
        .arg(dns.addr().to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The bound address comes from the start-up log line.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if json["fields"]["message"] == "maildrift started" {
            addr = json["fields"]["address"]
                .as_str()
                .map(|a| a.parse().unwrap());
            break;
        }
    }
    let addr = addr.expect("start-up line with the address");
    let ready = wait_until(Duration::from_secs(10), || async {
        request(addr, "GET", "/-/ready").await.status == 200
    })
    .await;
    assert!(ready, "binary daemon ready");
    let metrics = request(addr, "GET", "/metrics").await.body;
    assert!(
        metrics.contains("maildrift_check_success{check=\"mx\",domain=\"acme.example\"} 1"),
        "{metrics}"
    );

    assert_eq!(crate::binary::terminate(&mut child).await, Some(0));
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("maildrift stopped")),
        "{rest:?}"
    );
}

#[test]
fn validate_names_a_missing_secret_file_and_clamps_the_default_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maildrift.yml");
    let missing = dir.path().join("am-password");
    // `interval: 10s` with no timeout written: valid (the 30 s default is clamped).
    std::fs::write(
        &file,
        format!(
            "defaults:\n  interval: 10s\ndomains:\n  - name: ok.example\nalerting:\n  alertmanager:\n    url: http://127.0.0.1:9093\n    basic_auth:\n      username: maildrift\n      password_file: {}\n",
            missing.display()
        ),
    )
    .unwrap();
    let validate = |extra: &[&str]| {
        Command::new(BIN)
            .arg("validate")
            .args(extra)
            .arg(&file)
            .output()
            .unwrap()
    };
    let output = validate(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let expected = format!(
        "{}:10:22: alerting.alertmanager.basic_auth.password_file: cannot read {}: No such file or directory",
        file.display(),
        missing.display()
    );
    assert!(stdout.contains(&expected), "{expected:?} not in:\n{stdout}");
    assert!(!stdout.contains("interval"), "{stdout}");
    // `--syntax-only` does not look at the files.
    let output = validate(&["--syntax-only"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // Once the file exists, the config is valid.
    std::fs::write(&missing, "s3cret\n").unwrap();
    let output = validate(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("s3cret"));
}

#[test]
fn run_refuses_an_unknown_page_language() {
    let output = Command::new(BIN)
        .args(["run", "--config", "unused.yml", "--web.language", "fr"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"fr\" is not a language; expected en or zh-CN"),
        "{stderr}"
    );
}
