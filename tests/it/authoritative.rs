//! The authoritative view: two in-process servers for one zone on different loopback
//! addresses (a lagging one, a silent one), the parent's delegation, and a resolver that
//! still serves the old answer with a long TTL while the zone has changed.

use crate::harness::{Daemon, wait_until};
use maildrift::checks::nameservers::{self, NameserversObservation, SerialTracker};
use maildrift::checks::spf::SpfLimits;
use maildrift::checks::{self, Evaluation};
use maildrift::config::Expectations;
use maildrift::dns::authoritative::{AuthoritativeLookup, AuthoritativeServers};
use maildrift::dns::direct::{DirectClient, DirectOptions};
use maildrift::dns::fake::FakeDns;
use maildrift::dns::pool::ServerPool;
use maildrift::dns::server::{LocalDnsServer, ServerMode};
use maildrift::dns::{DnsView, QueryMetrics, RData, RecordType, server_label};
use maildrift::finding::FindingCode;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const PROVIDER_ZONE: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx-new   A   192.0.2.11
mx-old   A   192.0.2.12
"#;

/// The zone at `serial` with one MX host, every record with `ttl`.
fn acme_zone(serial: u32, mx: &str, ttl: u32) -> String {
    format!(
        r#"
$ORIGIN acme.example.
$TTL {ttl}
@        SOA ns1.acme.example. hostmaster.acme.example. {serial} 3600 600 86400 60
@        NS  ns1.acme.example.
@        NS  ns2.acme.example.
ns1      A   127.0.0.1
ns2      A   127.0.0.2
@        MX  10 {mx}
@        TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc   TXT "v=DMARC1; p=reject"
shop     MX  10 mx-new.provider.example.
"#
    )
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn server(last: u8, zones: &[&str]) -> LocalDnsServer {
    LocalDnsServer::start(loopback(last), zones).await.unwrap()
}

fn config(resolver: SocketAddr, nameservers: &[SocketAddr], timing: &str, domains: &str) -> String {
    let nameservers: Vec<String> = nameservers.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "defaults:\n{timing}  resolvers: [\"{resolver}\"]\n  nameservers: [{}]\ndomains:\n{domains}",
        nameservers.join(", ")
    )
}

/// The `check` entry of `domain` in the API.
async fn check_json(daemon: &Daemon, domain: &str, check: &str) -> Value {
    let body = daemon.get(&format!("/api/v1/domains/{domain}")).await.body;
    let json: Value = serde_json::from_str(&body).unwrap();
    json["checks"][check].clone()
}

fn codes(check: &Value) -> Vec<String> {
    check["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| f["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn finding<'a>(check: &'a Value, code: &str) -> &'a Value {
    check["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == code))
        .unwrap_or_else(|| panic!("no {code} in {check}"))
}

#[tokio::test]
async fn lagging_server_differs_at_once_and_its_serial_after_the_grace() {
    let current = acme_zone(2, "mx-new.provider.example.", 300);
    let lagging = acme_zone(1, "mx-old.provider.example.", 300);
    let a = server(1, &[&current, PROVIDER_ZONE]).await;
    let b = server(2, &[&lagging]).await;
    let timing = "  interval: 500ms\n  timeout: 500ms\n  ns_serial_grace: 3s\n";
    let domains = "  - name: acme.example\n  - name: shop.acme.example\n";
    let daemon = Daemon::start(&config(a.addr(), &[a.addr(), b.addr()], timing, domains)).await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    let started = tokio::time::Instant::now();

    // The first round: the answers differ now; the serials only just parted.
    let check = check_json(&daemon, "acme.example", "nameservers").await;
    assert_eq!(check["success"], true, "{check}");
    assert!(
        codes(&check).contains(&"ns_answers_differ".to_owned()),
        "{check}"
    );
    assert!(
        !codes(&check).contains(&"ns_serial_mismatch".to_owned()),
        "{check}"
    );
    let differ = finding(&check, "ns_answers_differ");
    assert_eq!(differ["evidence"]["record"], "mx");
    let (la, lb) = (server_label(a.addr()), server_label(b.addr()));
    assert_eq!(
        differ["evidence"]["answers"],
        serde_json::json!([
            {"nameservers": [la], "records": ["10 mx-new.provider.example"]},
            {"nameservers": [lb], "records": ["10 mx-old.provider.example"]},
        ])
    );
    assert!(
        differ["message"].as_str().unwrap().contains(&lb),
        "{differ}"
    );

    let domain = [("domain", "acme.example")];
    assert_eq!(
        daemon
            .metric("maildrift_nameservers_consistent", &domain)
            .await,
        Some(0.0)
    );
    let metrics = daemon.get("/metrics").await.body;
    let serial_a =
        format!("maildrift_nameserver_soa_serial{{nameserver=\"{la}\",zone=\"acme.example\"}} 2\n");
    let serial_b =
        format!("maildrift_nameserver_soa_serial{{nameserver=\"{lb}\",zone=\"acme.example\"}} 1\n");
    // Two domains in the zone, one series per server.
    assert_eq!(metrics.matches(&serial_a).count(), 1, "{metrics}");
    assert_eq!(metrics.matches(&serial_b).count(), 1, "{metrics}");

    // Past the grace: the serial mismatch, with both serials.
    let mismatch = wait_until(Duration::from_secs(10), || async {
        codes(&check_json(&daemon, "acme.example", "nameservers").await)
            .contains(&"ns_serial_mismatch".to_owned())
    })
    .await;
    assert!(mismatch, "no ns_serial_mismatch within 10 s");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "reported before the grace"
    );
    let check = check_json(&daemon, "acme.example", "nameservers").await;
    let evidence = &finding(&check, "ns_serial_mismatch")["evidence"];
    assert_eq!(evidence["serials"][&la], 2);
    assert_eq!(evidence["serials"][&lb], 1);
    assert!(
        evidence["apart_seconds"].as_u64().unwrap() >= 3,
        "{evidence}"
    );
    assert_eq!(evidence["grace_seconds"], 3);

    // The secondary catches up: consistent again, both findings resolved.
    b.set_zone(&current).unwrap();
    daemon
        .wait_metric(
            "maildrift_nameservers_consistent",
            &domain,
            1.0,
            Duration::from_secs(10),
        )
        .await;
    let check = check_json(&daemon, "acme.example", "nameservers").await;
    assert!(codes(&check).is_empty(), "{check}");
    let metrics = daemon.get("/metrics").await.body;
    assert!(
        metrics.contains(&serial_b.replace("} 1\n", "} 2\n")),
        "{metrics}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_silent_server_is_lame_and_nothing_drifts() {
    let zone = acme_zone(5, "mx-new.provider.example.", 300);
    let good = server(1, &[&zone, PROVIDER_ZONE]).await;
    let silent = server(2, &[&zone]).await;
    silent.set_mode(ServerMode::Silent);
    // The silent server is first: every check must get past it. Its queries time out after
    // 2 × 2 s, so the domain timeout leaves room for that.
    let timing = "  interval: 8s\n  timeout: 8s\n";
    let domains = "  - name: acme.example\n";
    let daemon = Daemon::start(&config(
        good.addr(),
        &[silent.addr(), good.addr()],
        timing,
        domains,
    ))
    .await;
    daemon.wait_ready(Duration::from_secs(15)).await;

    let check = check_json(&daemon, "acme.example", "nameservers").await;
    assert_eq!(check["success"], true, "{check}");
    assert_eq!(codes(&check), ["ns_lame"], "{check}");
    let lame = &finding(&check, "ns_lame")["evidence"];
    assert_eq!(lame["nameserver"], server_label(silent.addr()));
    assert!(
        lame["reason"].as_str().unwrap().starts_with("timeout"),
        "{lame}"
    );
    // The apex NS set comes from the answering server.
    assert_eq!(
        check["records"][0]["values"],
        serde_json::json!(["ns1.acme.example", "ns2.acme.example"])
    );
    for check in ["mx", "spf", "nameservers"] {
        let labels = [("domain", "acme.example"), ("check", check)];
        assert_eq!(
            daemon.metric("maildrift_check_success", &labels).await,
            Some(1.0),
            "{check}"
        );
        assert_eq!(
            daemon.metric("maildrift_drift", &labels).await,
            Some(0.0),
            "{check}"
        );
    }
    let domain = [("domain", "acme.example")];
    assert_eq!(
        daemon
            .metric("maildrift_nameservers_consistent", &domain)
            .await,
        Some(0.0)
    );
    let metrics = daemon.get("/metrics").await.body;
    assert!(
        !metrics.contains(&format!("nameserver=\"{}\"", server_label(silent.addr()))),
        "a silent server has no serial: {metrics}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_resolver_caching_the_old_answer_shows_how_long_users_wait() {
    const DAY: u32 = 86_400;
    let old = acme_zone(1, "mx-old.provider.example.", 300);
    let authoritative = server(1, &[&old]).await;
    // The resolver: the old zone with a day-long TTL, reported on the wire.
    let resolver = server(
        3,
        &[
            &acme_zone(1, "mx-old.provider.example.", DAY),
            PROVIDER_ZONE,
        ],
    )
    .await;
    let timing = "  interval: 1s\n  timeout: 1s\n";
    let domains = "  - name: acme.example\n";
    let daemon = Daemon::start(&config(
        resolver.addr(),
        &[authoritative.addr()],
        timing,
        domains,
    ))
    .await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    let pending = [
        ("domain", "acme.example"),
        ("record", "mx"),
        ("resolver", &server_label(resolver.addr())),
    ];
    assert_eq!(
        daemon
            .metric("maildrift_propagation_pending_seconds", &pending)
            .await,
        Some(0.0)
    );

    authoritative
        .set_zone(&acme_zone(2, "mx-new.provider.example.", 300))
        .unwrap();
    let edited = tokio::time::Instant::now();
    let mx = [("domain", "acme.example"), ("check", "mx")];
    daemon
        .wait_metric("maildrift_drift", &mx, 1.0, Duration::from_secs(5))
        .await;
    let took = edited.elapsed();
    // Within one interval of the edit, while the resolver still serves the old MX.
    assert!(took < Duration::from_millis(2500), "drift after {took:?}");
    let check = check_json(&daemon, "acme.example", "mx").await;
    let drift = finding(&check, "drift");
    assert_eq!(
        drift["evidence"]["to"],
        serde_json::json!(["10 mx-new.provider.example"])
    );
    assert_eq!(drift["evidence"]["resolvers_switch_within_seconds"], DAY);
    assert_eq!(drift["evidence"]["resolvers"][0]["pending_seconds"], DAY);
    let message = drift["message"].as_str().unwrap();
    assert!(message.contains("users switch within 86400 s"), "{message}");
    assert_eq!(
        daemon
            .metric("maildrift_propagation_pending_seconds", &pending)
            .await,
        Some(f64::from(DAY))
    );
    // SPF did not change: that resolver is current for it.
    let spf = [
        ("domain", "acme.example"),
        ("record", "spf"),
        ("resolver", pending[2].1),
    ];
    assert_eq!(
        daemon
            .metric("maildrift_propagation_pending_seconds", &spf)
            .await,
        Some(0.0)
    );
    daemon.stop().await;
}

/// A direct client with a short timeout.
async fn client() -> Arc<DirectClient> {
    let options = DirectOptions {
        timeout: Duration::from_millis(300),
        ..DirectOptions::default()
    };
    DirectClient::new(options, QueryMetrics::unregistered())
        .await
        .unwrap()
}

/// The default grace of `defaults.ns_serial_grace`: ten minutes.
const GRACE: Duration = Duration::from_secs(600);

async fn observe_report(
    view: &DnsView,
    serials: &SerialTracker,
) -> (NameserversObservation, Evaluation<()>) {
    let expect = Expectations::default();
    let observation =
        nameservers::observe("acme.example", view, &expect, serials, GRACE, None).await;
    let report = nameservers::evaluate(&observation);
    (observation, report)
}

/// A view asking `lookup`'s servers authoritatively (nothing through resolvers).
fn authoritative_view(lookup: AuthoritativeLookup, recursive: Arc<FakeDns>) -> DnsView {
    let lookup = Arc::new(lookup);
    DnsView::new(lookup.clone(), recursive).with_authority(lookup)
}

fn report_codes(report: &Evaluation<()>) -> Vec<FindingCode> {
    report.findings.iter().map(|f| f.code).collect()
}

/// The default ten-minute grace, on tokio's clock: paused, advanced, resumed around real
/// queries to real servers.
#[tokio::test]
async fn serial_mismatch_waits_for_the_default_grace_on_a_paused_clock() {
    let current = acme_zone(2, "mx-new.provider.example.", 300);
    let a = server(1, &[&current]).await;
    let b = server(2, &[&acme_zone(1, "mx-new.provider.example.", 300)]).await;
    let tracker = SerialTracker::default();
    let lookup = AuthoritativeLookup::new(
        client().await,
        AuthoritativeServers::Fixed(vec![a.addr(), b.addr()]),
        Arc::new(FakeDns::new()),
    );
    let view = authoritative_view(lookup, Arc::new(FakeDns::new()));
    let (_, report) = observe_report(&view, &tracker).await;
    // Same records, different serials: nothing yet.
    assert!(report.success, "{report:?}");
    assert_eq!(report_codes(&report), []);

    let jump = |by: Duration| async move {
        tokio::time::pause();
        tokio::time::advance(by).await;
        tokio::time::resume();
    };
    jump(Duration::from_secs(599)).await;
    let (observation, report) = observe_report(&view, &tracker).await;
    assert_eq!(report_codes(&report), [], "{observation:?}");
    jump(Duration::from_secs(2)).await;
    let (_, report) = observe_report(&view, &tracker).await;
    assert_eq!(report_codes(&report), [FindingCode::NsSerialMismatch]);
    let apart = report.findings[0].evidence["apart_seconds"]
        .as_u64()
        .unwrap();
    assert!((601..610).contains(&apart), "{apart}");

    // Agreement resets the clock: a new difference waits the whole grace again.
    b.set_zone(&current).unwrap();
    assert_eq!(report_codes(&observe_report(&view, &tracker).await.1), []);
    b.set_zone(&acme_zone(1, "mx-new.provider.example.", 300))
        .unwrap();
    jump(Duration::from_secs(300)).await;
    assert_eq!(report_codes(&observe_report(&view, &tracker).await.1), []);
}

/// Starts servers on one port at several loopback addresses (a client asks discovered
/// nameservers on that port). Retries when the port is taken at one of them.
async fn same_port(zones: &[(u8, Vec<&str>)]) -> Vec<LocalDnsServer> {
    for _ in 0..5 {
        let first = server(zones[0].0, &zones[0].1).await;
        let port = first.addr().port();
        let mut servers = vec![first];
        for (last, zone_texts) in &zones[1..] {
            match LocalDnsServer::start_on(SocketAddr::new(loopback(*last), port), zone_texts).await
            {
                Ok(server) => servers.push(server),
                Err(_) => break,
            }
        }
        if servers.len() == zones.len() {
            return servers;
        }
    }
    panic!("no port free at every address");
}

#[tokio::test]
async fn the_parent_delegating_fewer_servers_than_the_apex_lists_is_reported() {
    // The parent zone `example.` delegates acme.example to ns1 only; the apex lists ns1, ns2.
    let parent_zone = r#"
$ORIGIN example.
$TTL 300
@        SOA ns.example. hostmaster.example. 1 3600 600 86400 60
@        NS  ns.example.
ns       A   127.0.0.3
acme     NS  ns1.acme.example.
ns1.acme A   127.0.0.1
"#;
    let zone = acme_zone(3, "mx-new.provider.example.", 300);
    let servers = same_port(&[(1, vec![&zone]), (2, vec![&zone]), (3, vec![parent_zone])]).await;
    let port = servers[0].addr().port();
    let recursive = Arc::new(FakeDns::new());
    let ns = |hosts: &[&str]| hosts.iter().map(|h| RData::Ns((*h).to_owned())).collect();
    recursive.set(
        "acme.example",
        RecordType::Ns,
        ns(&["ns1.acme.example", "ns2.acme.example"]),
    );
    recursive.a("ns1.acme.example", &["127.0.0.1"]);
    recursive.a("ns2.acme.example", &["127.0.0.2"]);
    recursive.set("example", RecordType::Ns, ns(&["ns.example"]));
    recursive.a("ns.example", &["127.0.0.3"]);
    let lookup = AuthoritativeLookup::new(
        client().await,
        AuthoritativeServers::Discover,
        recursive.clone(),
    )
    .with_port(port);
    let view = authoritative_view(lookup, recursive);
    let tracker = SerialTracker::default();
    let (observation, report) = observe_report(&view, &tracker).await;
    assert!(report.success, "{report:?}");
    assert_eq!(
        report_codes(&report),
        [FindingCode::NsDelegationMismatch],
        "{observation:?}"
    );
    let evidence = &report.findings[0].evidence;
    assert_eq!(evidence["parent"], "example");
    assert_eq!(
        evidence["parent_ns"],
        serde_json::json!(["ns1.acme.example"])
    );
    assert_eq!(
        evidence["missing_at_parent"],
        serde_json::json!(["ns2.acme.example"])
    );
    // Each nameserver by name and address.
    let addresses = &report.records[1];
    assert_eq!(addresses.record, "ns_address");
    assert_eq!(
        addresses.values,
        ["ns1.acme.example 127.0.0.1", "ns2.acme.example 127.0.0.2"]
    );
}

/// Bounded load: two domains of one zone, every check that reads the zone view (MX, SPF,
/// DMARC, nameservers) of both at once, through one shared per-server memo: the server is
/// asked each distinct question once, and not again within the round. (DNSSEC asks over TCP
/// with the DO bit and MTA-STS over HTTPS: they do not go through this memo.)
#[tokio::test]
async fn a_server_is_asked_each_question_once_per_round_across_domains() {
    let zone = acme_zone(4, "mx-new.provider.example.", 300);
    let a = server(1, &[&zone]).await;
    let pool = Arc::new(ServerPool::new(client().await, Duration::from_secs(60)));
    let tracker = SerialTracker::default();
    let view = || {
        let lookup = AuthoritativeLookup::new(
            client_of(&pool),
            AuthoritativeServers::Fixed(vec![a.addr()]),
            Arc::new(FakeDns::new()),
        )
        .with_pool(pool.clone());
        authoritative_view(lookup, Arc::new(FakeDns::new()))
    };
    let (apex, shop) = (view(), view());
    let limits = SpfLimits::default();
    let expect = Expectations::default();
    let round = || async {
        tokio::join!(
            observe_zone_view("acme.example", &apex, &limits, &expect, &tracker),
            observe_zone_view("shop.acme.example", &shop, &limits, &expect, &tracker),
        )
    };
    let (first, second) = round().await;
    assert_eq!(first, "acme.example");
    assert_eq!(second, "acme.example");
    // SOA and NS of the zone (shared), SOA of shop (finding its zone), and per domain MX,
    // TXT and _dmarc TXT: MX and TXT are also what the MX and SPF checks ask.
    assert_eq!(a.query_count(), 9);
    round().await;
    assert_eq!(a.query_count(), 9, "answers are reused within the round");
}

/// Every check that reads the zone view; returns the zone the nameservers check found.
async fn observe_zone_view(
    domain: &str,
    view: &DnsView,
    limits: &SpfLimits,
    expect: &Expectations,
    serials: &SerialTracker,
) -> String {
    let (mx, spf, dmarc, nameservers) = tokio::join!(
        checks::mx::observe(domain, view),
        checks::spf::observe(domain, view, limits),
        checks::dmarc::observe(domain, view),
        nameservers::observe(domain, view, expect, serials, GRACE, None),
    );
    assert!(mx.record_count().is_some(), "{domain}: MX conclusive");
    assert!(spf.dns_lookups().is_some(), "{domain}: SPF conclusive");
    assert!(dmarc.policy_label().is_some(), "{domain}: DMARC conclusive");
    nameservers.summary().expect("nameservers conclusive").zone
}

fn client_of(pool: &ServerPool) -> Arc<DirectClient> {
    pool.client().clone()
}

/// The measurement for the notes: a zone edit right after a check (the worst phase), in
/// real time. Run with `MAILDRIFT_MEASURE_INTERVAL=5m cargo test --test it -- --ignored
/// --nocapture measure_edit_to_drift` (default interval 30s).
#[tokio::test]
#[ignore = "takes one interval of real time; a measurement, not a check"]
async fn measure_edit_to_drift() {
    // MAILDRIFT_MEASURE_INTERVAL picks the interval (default 30s; the default config's
    // 5m takes five minutes of real time).
    let interval = std::env::var("MAILDRIFT_MEASURE_INTERVAL").unwrap_or_else(|_| "30s".into());
    let seconds = maildrift::config::parse_duration(&interval).unwrap();
    let authoritative = server(1, &[&acme_zone(1, "mx-old.provider.example.", 300)]).await;
    let resolver = server(3, &[PROVIDER_ZONE]).await;
    let timing = format!("  interval: {interval}\n  timeout: 10s\n");
    let domains = "  - name: acme.example\n";
    let daemon = Daemon::start(&config(
        resolver.addr(),
        &[authoritative.addr()],
        &timing,
        domains,
    ))
    .await;
    daemon.wait_ready(Duration::from_secs(10)).await;
    authoritative
        .set_zone(&acme_zone(2, "mx-new.provider.example.", 300))
        .unwrap();
    let mx = [("domain", "acme.example"), ("check", "mx")];
    let took = daemon
        .wait_metric("maildrift_drift", &mx, 1.0, seconds.mul_f64(1.5))
        .await;
    eprintln!("zone edit -> maildrift_drift=1 at a {interval} interval: {took:?}");
    assert!(took <= seconds + Duration::from_secs(1), "{took:?}");
    daemon.stop().await;
}
