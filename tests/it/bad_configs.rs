//! The bad-config corpus (`tests/fixtures/bad-configs/`, one file per class, plus a 50 MB
//! file made at test time): each gives exactly its expected message (file:line:column, the
//! field, what is allowed), and a reload with each keeps the running config.

use crate::faults::healthy_server;
use crate::harness::{Daemon, request};
use maildrift::config::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Each corpus file and the message it must give, after `FILE`.
const CORPUS: &[(&str, &str)] = &[
    (
        "syntax-error.yaml",
        ":6:1: YAML syntax error: did not find expected ',' or ']' at line 6 column 1, while parsing a flow sequence at line 5 column 19",
    ),
    (
        "tab-indentation.yaml",
        ":2:1: YAML syntax error: a tab character: YAML indents with spaces only",
    ),
    (
        "unknown-key.yaml",
        ":5:5: domains[0].expects: unknown field `expects`, expected one of `name`, `interval`, `timeout`, `resolvers`, `authoritative`, `nameservers`, `provider`, `expect`, `labels`, `checks`",
    ),
    (
        "wrong-type.yaml",
        ":6:11: domains[0].expect.mx: invalid type: string \"mx1.example.net\", expected a sequence",
    ),
    (
        "duplicate-domain.yaml",
        ":4:11: domains[2].name: duplicate domain \"example.com\": listed at line 2 (domains[0].name) and line 4",
    ),
    (
        "invalid-domain.yaml",
        ":2:11: domains[0].name: \"exa mple..com\" is not a valid domain name: ' ' is not allowed (letters, digits and '-' only)",
    ),
    (
        "zero-interval.yaml",
        ":2:13: defaults.interval: \"0s\" must be greater than zero",
    ),
    (
        "negative-interval.yaml",
        ":2:13: defaults.interval: invalid duration \"-5m\": expected a number with a unit (ms, s, m, h, d), e.g. \"30s\" or \"5m\"",
    ),
    (
        "huge-interval.yaml",
        ":2:13: defaults.interval: duration \"100000000000000000000h\" is too large",
    ),
    (
        "timeout-longer-than-interval.yaml",
        ":3:12: defaults.timeout: timeout 1m is longer than interval 30s: a check must end before the next one starts",
    ),
    (
        "bad-resolver.yaml",
        ":2:15: defaults.resolvers[0]: \"8.8.8.8:99999\" is not an address: expected IP or IP:PORT (IPv6 with a port as [IP]:PORT), or \"system\"",
    ),
    (
        "unknown-provider.yaml",
        ":3:15: domains[0].provider: unknown provider \"gmial\"; known providers: aliyun, aliyun-legacy, google, microsoft365, netease, parked, tencent, zoho (or define it under `providers:`)",
    ),
    (
        "webhook-url-scheme.yaml",
        ":5:43: alerting.webhooks[0].url: \"ftp://hooks.example.com/T000\" is not an http:// or https:// URL",
    ),
    (
        "secret-file-missing.yaml",
        ":6:55: alerting.alertmanager.basic_auth.password_file: cannot read /nonexistent/maildrift-am-password: No such file or directory (os error 2)",
    ),
    (
        "alias-bomb.yaml",
        ":2:8: YAML syntax error: aliases expand to too many values (repetition limit exceeded): write the values out instead of nesting aliases",
    ),
    (
        "not-utf8.yaml",
        ":2:14: the config file is not UTF-8: byte 0xE9 cannot start a character (save the file as UTF-8)",
    ),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-configs")
}

/// A 50 MB config (valid YAML: a long list of domains), written at test time.
fn huge_config(dir: &Path) -> PathBuf {
    let path = dir.join("fifty-megabytes.yaml");
    let mut text = String::with_capacity(50 * 1024 * 1024 + 64);
    text.push_str("domains:\n");
    let mut i = 0u64;
    while text.len() < 50 * 1024 * 1024 {
        text.push_str(&format!("  - name: d{i}.example.com\n"));
        i += 1;
    }
    std::fs::write(&path, text).unwrap();
    path
}

const HUGE_MESSAGE: &str = ": the config file is larger than 16 MiB, the most a config may be";

#[test]
fn every_bad_config_gives_its_exact_message() {
    let dir = corpus_dir();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed, "every corpus file has its expected message");
    for (file, expected) in CORPUS {
        let path = dir.join(file);
        let started = std::time::Instant::now();
        let error = Config::load_checking_files(&path)
            .expect_err(file)
            .to_string();
        assert_eq!(error, format!("{}{expected}", path.display()), "{file}");
        // Bad input is refused quickly, the alias bomb and the huge file included.
        assert!(started.elapsed() < Duration::from_secs(5), "{file}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let huge = huge_config(tmp.path());
    let error = Config::load_checking_files(&huge)
        .expect_err("50 MB")
        .to_string();
    assert_eq!(error, format!("{}{HUGE_MESSAGE}", huge.display()));
}

/// `maildrift validate` prints the same message and exits 1.
#[test]
fn validate_prints_the_message_with_line_and_column() {
    for (file, expected) in CORPUS {
        let path = corpus_dir().join(file);
        let output = std::process::Command::new(crate::binary::BIN)
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{file}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            all.contains(&format!("{}{expected}", path.display())),
            "{file}: {all}"
        );
    }
}

/// A reload with each bad file fails with its message (500) and keeps the running config:
/// same domains, checks still conclusive; the good file reloads again.
#[tokio::test]
async fn reload_with_each_bad_config_keeps_the_running_one() {
    let dns = healthy_server().await;
    let good = super::faults::config(&dns, super::faults::Path::Direct, "");
    let daemon = Daemon::start(&good).await;
    daemon.wait_ready(Duration::from_secs(15)).await;
    let good = std::fs::read(&daemon.config_path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let huge = huge_config(tmp.path());
    let mut cases: Vec<(Vec<u8>, String)> = CORPUS
        .iter()
        .map(|(file, expected)| {
            (
                std::fs::read(corpus_dir().join(file)).unwrap(),
                (*expected).to_owned(),
            )
        })
        .collect();
    cases.push((std::fs::read(&huge).unwrap(), HUGE_MESSAGE.to_owned()));
    let labels = [("domain", super::faults::DOMAIN), ("check", "mx")];
    for (bytes, expected) in cases {
        std::fs::write(&daemon.config_path, &bytes).unwrap();
        let response = request(daemon.addr, "POST", "/-/reload").await;
        assert_eq!(response.status, 500, "{expected}: {}", response.body);
        let message = format!("{}{expected}", daemon.config_path.display());
        assert!(
            response.body.contains(&message),
            "expected {message:?} in {:?}",
            response.body
        );
        assert_eq!(
            daemon
                .metric("maildrift_config_last_reload_successful", &[])
                .await,
            Some(0.0)
        );
        assert_eq!(daemon.metric("maildrift_domains", &[]).await, Some(1.0));
        assert_eq!(
            daemon.metric("maildrift_check_success", &labels).await,
            Some(1.0)
        );
    }
    // Still checking with the old config: a new round completes after all the failures.
    let before = daemon
        .metric("maildrift_domain_checks_total", &[("outcome", "success")])
        .await
        .unwrap();
    let advanced = crate::harness::wait_until(Duration::from_secs(10), || async {
        daemon
            .metric("maildrift_domain_checks_total", &[("outcome", "success")])
            .await
            .unwrap()
            > before
    })
    .await;
    assert!(advanced, "the old config stopped being checked");
    std::fs::write(&daemon.config_path, good).unwrap();
    assert_eq!(request(daemon.addr, "POST", "/-/reload").await.status, 200);
    daemon.stop().await;
}
