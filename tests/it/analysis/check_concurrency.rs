//! `maildrift check` runs at most `defaults.concurrency` domains at once, as the daemon does.

use maildrift::app::RunOptions;
use maildrift::config::Config;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The domain a question is about: the watched name it ends with.
fn owner<'a>(question: &str, domains: &[&'a str]) -> Option<&'a str> {
    let question = question.trim_end_matches('.').to_ascii_lowercase();
    domains
        .iter()
        .find(|d| question == **d || question.ends_with(&format!(".{d}")))
        .copied()
}

/// The question name of a DNS query (no compression in queries).
fn question_name(packet: &[u8]) -> Option<String> {
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = usize::from(*packet.get(at)?);
        if len == 0 {
            return Some(labels.join("."));
        }
        let label = packet.get(at + 1..at + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + len;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_runs_at_most_concurrency_domains_at_once() {
    // A server that never answers: each domain's checks run until its timeout (1 s), so
    // with concurrency 1 the first question of the next domain can only come after the
    // previous domain's timeout (timers never fire early). Unbounded, all three domains
    // ask within milliseconds of each other.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, _)) = silent.recv_from(&mut buf).await {
                if let Some(name) = question_name(&buf[..len]) {
                    seen.lock().unwrap().push((Instant::now(), name));
                }
            }
        })
    };
    let domains = ["a.test", "b.test", "c.test"];
    let yaml = format!(
        "defaults:\n  concurrency: 1\n  timeout: 1s\n  resolvers: [\"{addr}\"]\n  nameservers: [\"{addr}\"]\ndomains:\n{}",
        domains
            .iter()
            .map(|d| format!("  - name: {d}\n"))
            .collect::<String>()
    );
    let config = Config::parse(&yaml, Path::new("concurrency.yml")).unwrap();
    let reports = maildrift::run_once(&config, &RunOptions::default())
        .await
        .unwrap();
    recorder.abort();
    let order: Vec<&str> = reports.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(order, domains, "reports keep the config's order");

    let seen = seen.lock().unwrap().clone();
    let mut first: Vec<(&str, Instant)> = Vec::new();
    for (at, question) in &seen {
        if let Some(domain) = owner(question, &domains)
            && !first.iter().any(|(d, _)| *d == domain)
        {
            first.push((domain, *at));
        }
    }
    let started: Vec<&str> = first.iter().map(|(d, _)| *d).collect();
    assert_eq!(started, domains, "every domain asked, in order: {seen:?}");
    for pair in first.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= Duration::from_millis(800),
            "{} started {gap:?} after {}: two domains ran at once",
            pair[1].0,
            pair[0].0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_max_qps_spaces_every_query_of_a_check_run() {
    // Ten small zones, every question of every check through one server; with
    // --dns.max-qps 40 the run cannot take less than (queries - burst) / 40 seconds.
    let zones: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "$ORIGIN q{i}.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\n\
                 ns1 A 127.0.0.1\n@ MX 10 mx\nmx A 192.0.2.1\n@ TXT \"v=spf1 -all\"\n"
            )
        })
        .collect();
    let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = crate::harness::dns_server(&refs).await;
    let domains: Vec<String> = (0..10).map(|i| format!("q{i}.test")).collect();
    let addr = dns.addr().to_string();
    let mut args = vec![
        "check",
        "--format",
        "json",
        "--resolver",
        &addr,
        "--nameserver",
        &addr,
        "--dns.max-qps",
        "40",
    ];
    args.extend(domains.iter().map(String::as_str));
    let started = Instant::now();
    let (code, stdout, stderr) = super::run_check(&args).await;
    let took = started.elapsed();
    assert!(code.is_some(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["domains"].as_array().unwrap().len(), 10);
    let queries = dns.query_count();
    assert!(queries > 40, "too few queries to measure: {queries}");
    // A tenth of a second's worth goes at once (4 at 40/s); then one every 25 ms, so the
    // last of n queries leaves (n - 4 - 1) intervals after the first.
    let burst = 4;
    let least = Duration::from_secs_f64((queries - burst - 1) as f64 / 40.0);
    assert!(
        took >= least,
        "{queries} queries in {took:?}: faster than 40/s (at least {least:?})"
    );
}
