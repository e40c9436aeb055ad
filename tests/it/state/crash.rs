//! Crash safety: the real `maildrift` binary records events while the test flips its zones
//! continuously, and is killed with SIGKILL mid-write, twice. Afterwards the database passes
//! `PRAGMA integrity_check` and holds every event the writer reported as written.
//!
//! "Reported as written": the writer logs `state batch committed` with the event ids after
//! `COMMIT` returned (synchronous=FULL, WAL), and only then.

use super::BIN;
use crate::harness::{dns_server, request, wait_until};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const DOMAINS: usize = 8;

fn zone(i: usize, mx: &str) -> String {
    format!(
        "$ORIGIN flip{i}.example.\n$TTL 60\n\
         @ SOA ns1.flip{i}.example. h.flip{i}.example. 1 3600 600 86400 60\n\
         @ NS ns1.flip{i}.example.\nns1 A 192.0.2.53\n\
         @ MX 10 {mx}.flip{i}.example.\n{mx} A 192.0.2.25\n@ TXT \"v=spf1 {mx} -all\"\n"
    )
}

/// What the child said on stderr, line by line (JSON logs).
enum Line {
    Started(SocketAddr),
    Committed(Vec<i64>),
    Other,
}

fn spawn(config: &Path, state_dir: &Path) -> (Child, Receiver<Line>) {
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .args([
            "--log.level",
            "info,maildrift::state=debug,hickory_proto=warn,hickory_resolver=warn,hickory_net=warn",
        ])
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let fields = &json["fields"];
            let parsed = match fields["message"].as_str() {
                Some("maildrift started") => fields["address"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .map_or(Line::Other, Line::Started),
                Some("state batch committed") => Line::Committed(
                    fields["event_ids"]
                        .as_str()
                        .unwrap_or("")
                        .split(',')
                        .filter_map(|id| id.parse().ok())
                        .collect(),
                ),
                _ => Line::Other,
            };
            if tx.send(parsed).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_writing_loses_no_reported_event_and_keeps_the_database_sound() {
    let zones: Vec<String> = (0..DOMAINS).map(|i| zone(i, "mx-a")).collect();
    let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = dns_server(&refs).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("data");
    let config = dir.path().join("maildrift.yml");
    let mut yaml = format!(
        "defaults:\n  interval: 100ms\n  timeout: 100ms\n  resolvers: [\"{0}\"]\n  nameservers: [\"{0}\"]\ndomains:\n",
        dns.addr()
    );
    for i in 0..DOMAINS {
        yaml.push_str(&format!("  - name: flip{i}.example\n"));
    }
    std::fs::write(&config, yaml).unwrap();

    // Flip every zone continuously: each check then opens or resolves drift and records a
    // change, so the writer is always busy.
    let flipper = {
        let dns_zones: Vec<(String, String)> = (0..DOMAINS)
            .map(|i| (zone(i, "mx-a"), zone(i, "mx-b")))
            .collect();
        let server = std::sync::Arc::new(dns);
        let handle = server.clone();
        let task = tokio::spawn(async move {
            let mut flip = false;
            loop {
                flip = !flip;
                for (a, b) in &dns_zones {
                    handle.set_zone(if flip { b } else { a }).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(35)).await;
            }
        });
        (server, task)
    };

    let mut reported: BTreeSet<i64> = BTreeSet::new();
    for round in 0..3 {
        let (mut child, lines) = spawn(&config, &state_dir);
        let mut addr = None;
        let mut in_round = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        // Run until this round has committed plenty of events, then kill mid-stream.
        while in_round < 300 && Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(Line::Started(a)) => addr = Some(a),
                Ok(Line::Committed(ids)) => {
                    in_round += ids.len();
                    reported.extend(ids);
                }
                Ok(Line::Other) | Err(_) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("round {round}: the daemon exited: {status}");
            }
        }
        let addr = addr.unwrap_or_else(|| panic!("round {round}: no start-up line"));
        assert!(
            in_round >= 300,
            "round {round}: only {in_round} events committed in 30 s"
        );
        if round == 2 {
            // The last start must serve normally on the crashed-into database.
            let ready = wait_until(Duration::from_secs(10), || async {
                request(addr, "GET", "/-/ready").await.status == 200
            })
            .await;
            assert!(ready);
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines the child wrote before dying still count as reported.
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
            if let Line::Committed(ids) = line {
                reported.extend(ids);
            }
        }
    }
    flipper.1.abort();

    let conn = rusqlite::Connection::open(state_dir.join("maildrift.db")).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    let mut statement = conn.prepare("SELECT id FROM events").unwrap();
    let stored: BTreeSet<i64> = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost: Vec<&i64> = reported.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} reported events lost: {lost:?}",
        lost.len(),
        reported.len()
    );
    assert!(reported.len() >= 900, "{} events", reported.len());
    eprintln!(
        "crash test: {} events reported as written over 3 SIGKILLs, {} stored, none lost",
        reported.len(),
        stored.len()
    );
}
