//! The registration check against local HTTPS RDAP servers (certificates from a test CA)
//! with canned RFC 9083 answers: expiring, expired, on hold, in redemption, 404, 429 with
//! `Retry-After`, malformed JSON, a slow answer; the bootstrap file's longest match; one
//! request per registrable domain per interval, also across a restart.

use crate::harness::{
    Canned, Daemon, HttpsServer, Responder, finding_codes, request, test_pki, wait_until,
};
use maildrift::checks::registration::format_date;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An RFC 9083 domain object.
fn domain_object(name: &str, expires: i64, statuses: &[&str], registrar: &str) -> String {
    serde_json::json!({
        "objectClassName": "domain",
        "rdapConformance": ["rdap_level_0"],
        "ldhName": name,
        "status": statuses,
        "events": [
            {"eventAction": "registration", "eventDate": format_date(expires - 400 * DAY)},
            {"eventAction": "expiration", "eventDate": format_date(expires)},
        ],
        "entities": [{
            "objectClassName": "entity", "roles": ["registrar"], "handle": "9999",
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", registrar]]],
        }],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": format!("ns1.{name}")}],
    })
    .to_string()
}

fn rdap(body: String) -> Canned {
    Canned::new(200, "application/rdap+json", &body)
}

/// A server answering `GET /rdap/domain/NAME` from `answers`, 404 for other names.
async fn rdap_server(cert: &[u8], key: &[u8], answers: HashMap<String, Canned>) -> HttpsServer {
    let respond: Responder =
        Arc::new(move |line: &str| {
            let path = line.strip_prefix("GET /rdap/domain/")?.split(' ').next()?;
            Some(answers.get(path).cloned().unwrap_or_else(|| {
                Canned::new(404, "application/rdap+json", "{\"errorCode\":404}")
            }))
        });
    HttpsServer::start(cert.to_vec(), key.to_vec(), respond).await
}

fn asked(server: &HttpsServer, name: &str) -> usize {
    server.requests(&format!("GET /rdap/domain/{name} HTTP/1.1"))
}

/// Every check but registration skipped: no DNS needed.
fn config(dir: &Path, ca_pem: &str, services: &[(&str, &HttpsServer)], domains: &[&str]) -> String {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let services: Vec<Value> = services
        .iter()
        .map(|(tld, server)| {
            serde_json::json!([
                [tld],
                [format!("https://127.0.0.1:{}/rdap/", server.addr.port())]
            ])
        })
        .collect();
    let bootstrap = dir.join("dns.json");
    std::fs::write(
        &bootstrap,
        serde_json::json!({"version": "1.0", "services": services}).to_string(),
    )
    .unwrap();
    let names: String = domains.iter().map(|d| format!("  - name: {d}\n")).collect();
    format!(
        "defaults:\n  interval: 2s\n  timeout: 2s\n  resolvers: [\"127.0.0.1:9\"]\n  authoritative: false\n  checks: {{ skip: [mx, spf, dkim, dmarc, mta_sts, tls_rpt, nameservers, dnssec, dnsbl] }}\n  rdap: {{ interval: 1h, timeout: 1s, ca_file: \"{}\", bootstrap_file: \"{}\" }}\ndomains:\n{names}",
        ca.display(),
        bootstrap.display()
    )
}

/// The registration check of `domain` in the API, once it has run twice or more.
async fn registration(daemon: &Daemon, domain: &str) -> Value {
    let path = format!("/api/v1/domains/{domain}");
    let fetch = || async {
        let body = daemon.get(&path).await.body;
        serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)
    };
    let ran = wait_until(Duration::from_secs(10), || async {
        fetch().await["checks"]["registration"]["last_checked"].is_number()
    })
    .await;
    let last = fetch().await;
    assert!(ran, "{domain}: {last}");
    last["checks"]["registration"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn canned_rdap_answers_through_the_daemon() {
    let (ca_pem, cert, key) = test_pki(&["127.0.0.1"]);
    let t = now();
    let mut answers = HashMap::new();
    answers.insert(
        "expiring.regtest".into(),
        rdap(domain_object(
            "expiring.regtest",
            t + 20 * DAY,
            &["client transfer prohibited"],
            "Good Registrar",
        )),
    );
    answers.insert(
        "soon.regtest".into(),
        rdap(domain_object(
            "soon.regtest",
            t + 3 * DAY,
            &[],
            "Good Registrar",
        )),
    );
    answers.insert(
        "gone.regtest".into(),
        rdap(domain_object(
            "gone.regtest",
            t - 2 * DAY,
            &[],
            "Good Registrar",
        )),
    );
    answers.insert(
        "held.regtest".into(),
        rdap(domain_object(
            "held.regtest",
            t + 200 * DAY,
            &["client hold"],
            "Good Registrar",
        )),
    );
    answers.insert(
        "redeem.regtest".into(),
        rdap(domain_object(
            "redeem.regtest",
            t - 40 * DAY,
            &["redemption period"],
            "Good Registrar",
        )),
    );
    answers.insert(
        "healthy.regtest".into(),
        rdap(domain_object(
            "healthy.regtest",
            t + 300 * DAY,
            &[],
            "Good Registrar",
        )),
    );
    let mut limited = Canned::new(429, "application/rdap+json", "{\"errorCode\":429}");
    limited.headers.push(("Retry-After".into(), "3600".into()));
    answers.insert("limited.regtest".into(), limited);
    answers.insert(
        "broken.regtest".into(),
        Canned::new(
            200,
            "application/rdap+json",
            "{\"ldhName\": \"broken.regtest\", \"events\": [",
        ),
    );
    let mut slow = rdap(domain_object(
        "slow.regtest",
        t + 300 * DAY,
        &[],
        "Good Registrar",
    ));
    slow.delay = Duration::from_secs(5);
    answers.insert("slow.regtest".into(), slow);
    let server = rdap_server(&cert, &key, answers).await;
    // A second server answers for the longer entry `co.uk`; `uk` stays with the first.
    let mut co_uk = HashMap::new();
    co_uk.insert(
        "shop.co.uk".into(),
        rdap(domain_object(
            "shop.co.uk",
            t + 100 * DAY,
            &[],
            "UK Registrar",
        )),
    );
    let co_uk = rdap_server(&cert, &key, co_uk).await;

    let dir = tempfile::tempdir().unwrap();
    let domains = [
        "expiring.regtest",
        "soon.regtest",
        "gone.regtest",
        "held.regtest",
        "redeem.regtest",
        "healthy.regtest",
        "mail.healthy.regtest",
        "limited.regtest",
        "broken.regtest",
        "slow.regtest",
        "missing.regtest",
        "shop.co.uk",
        "shop.uk",
        "nowhere.zz",
        "shop.example",
    ];
    let yaml = config(
        dir.path(),
        &ca_pem,
        &[("regtest", &server), ("uk", &server), ("co.uk", &co_uk)],
        &domains,
    );
    let started = now();
    let daemon = Daemon::start(&yaml).await;
    daemon.wait_ready(Duration::from_secs(15)).await;

    for (domain, want) in [
        ("expiring.regtest", &["domain_expiring:warning"][..]),
        ("soon.regtest", &["domain_expiring:critical"]),
        ("gone.regtest", &["domain_expired:critical"]),
        ("held.regtest", &["domain_on_hold:critical"]),
        ("redeem.regtest", &["domain_expired:critical"]),
        ("healthy.regtest", &[]),
        ("mail.healthy.regtest", &[]),
        ("shop.co.uk", &[]),
    ] {
        let check = registration(&daemon, domain).await;
        assert_eq!(check["success"], true, "{domain}: {check}");
        assert_eq!(finding_codes(&check), want, "{domain}: {check}");
    }
    let soon = registration(&daemon, "soon.regtest").await;
    let message = soon["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("expires on ")
            && (message.contains("in 2 days") || message.contains("in 3 days")),
        "{message}"
    );
    let expiry = daemon
        .metric(
            "maildrift_domain_expiry_timestamp_seconds",
            &[("domain", "soon.regtest")],
        )
        .await;
    assert_eq!(expiry, Some((t + 3 * DAY) as f64));
    let healthy = [("domain", "healthy.regtest"), ("check", "registration")];
    assert_eq!(
        daemon.metric("maildrift_check_success", &healthy).await,
        Some(1.0)
    );

    // Unknown, with the reason; never a finding.
    for (domain, reason) in [
        ("missing.regtest", "not found (HTTP 404)"),
        (
            "limited.regtest",
            "rate limited (HTTP 429), retry after 3600 s",
        ),
        ("broken.regtest", "malformed RDAP answer (not JSON"),
        ("slow.regtest", "no complete answer within 1 s"),
        ("nowhere.zz", "no RDAP server for .zz in the bootstrap file"),
        ("shop.uk", "not found (HTTP 404)"),
    ] {
        let check = registration(&daemon, domain).await;
        assert_eq!(check["success"], false, "{domain}: {check}");
        let error = check["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{domain}: {error}");
        assert_eq!(check["findings"], serde_json::json!([]), "{domain}");
        let labels = [("domain", domain), ("check", "registration")];
        assert_eq!(
            daemon.metric("maildrift_check_success", &labels).await,
            Some(0.0)
        );
    }
    // A special-use name has no registry: nothing to ask, nothing wrong.
    let reserved = registration(&daemon, "shop.example").await;
    assert_eq!(reserved["success"], true, "{reserved}");

    // Several rounds later: one request per registrable domain (healthy.regtest serves
    // two watched domains), none again after the 429, the 404 retried only after a backoff.
    let rounds = wait_until(Duration::from_secs(10), || async {
        let api = daemon.get("/api/v1/domains/healthy.regtest").await.body;
        let v: Value = serde_json::from_str(&api).unwrap_or(Value::Null);
        let checked = v["checks"]["registration"]["last_checked"]
            .as_f64()
            .unwrap_or(0.0);
        checked > (started + 5) as f64
    })
    .await;
    assert!(rounds, "the daemon keeps checking");
    for name in [
        "healthy.regtest",
        "expiring.regtest",
        "limited.regtest",
        "missing.regtest",
        "broken.regtest",
    ] {
        assert_eq!(asked(&server, name), 1, "{name}");
    }
    assert_eq!(
        asked(&co_uk, "shop.co.uk"),
        1,
        "the longest bootstrap entry wins"
    );
    assert_eq!(asked(&server, "shop.co.uk"), 0);
    assert_eq!(asked(&server, "shop.uk"), 1);
    assert_eq!(
        asked(&server, "mail.healthy.regtest"),
        0,
        "the registrable name is asked"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_is_kept_across_a_restart() {
    let (ca_pem, cert, key) = test_pki(&["127.0.0.1"]);
    let t = now();
    let mut answers = HashMap::new();
    answers.insert(
        "kept.regtest".into(),
        rdap(domain_object(
            "kept.regtest",
            t + 10 * DAY,
            &[],
            "Good Registrar",
        )),
    );
    let server = rdap_server(&cert, &key, answers).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("data");
    let yaml = config(
        dir.path(),
        &ca_pem,
        &[("regtest", &server)],
        &["kept.regtest"],
    );
    for run in 0..2 {
        let daemon = crate::state::start(dir.path(), &yaml, &state)
            .await
            .unwrap();
        daemon.wait_ready().await;
        let found = wait_until(Duration::from_secs(10), || async {
            let body = request(daemon.addr, "GET", "/api/v1/domains/kept.regtest")
                .await
                .body;
            body.contains("domain_expiring")
        })
        .await;
        assert!(found, "run {run}: the expiring finding");
        daemon.stop().await;
        assert_eq!(
            asked(&server, "kept.regtest"),
            1,
            "run {run}: asked once in all"
        );
    }
}
