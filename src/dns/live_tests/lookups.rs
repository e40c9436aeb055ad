//! RecursiveResolver, AuthoritativeLookup and SharedLookups against the local server.

use super::{LOCALHOST, direct_client, example_server, example_zone};
use crate::dns::authoritative::{AuthoritativeLookup, AuthoritativeServers};
use crate::dns::fake::FakeDns;
use crate::dns::hickory::{RecursiveResolver, ResolverOptions};
use crate::dns::server::{LocalDnsServer, ServerMode};
use crate::dns::shared::SharedLookups;
use crate::dns::{
    Answer, AnswerStatus, DnsError, DnsLookup, LookupResult, QueryMetrics, RData, RecordType,
};
use futures::future::{BoxFuture, join_all};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// A resolver asking only `server`, with short timeouts.
fn resolver(server: &LocalDnsServer, metrics: &QueryMetrics) -> RecursiveResolver {
    let options = ResolverOptions {
        timeout: Duration::from_millis(300),
        attempts: 1,
    };
    RecursiveResolver::with_servers(&[server.addr()], &options, metrics.clone())
}

#[tokio::test]
async fn recursive_resolver_reads_the_local_server() {
    let server = example_server().await;
    let metrics = QueryMetrics::unregistered();
    let resolver = resolver(&server, &metrics);

    let txt = resolver
        .lookup("example.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(
        txt.records,
        vec![RData::Txt("v=spf1 include:_spf.provider.test -all".into())]
    );
    assert_eq!(txt.ttl, 300, "TTLs are not clamped");
    assert!(!txt.authoritative);

    let chained = resolver
        .lookup("www.example.test", RecordType::A)
        .await
        .unwrap();
    assert_eq!(
        chained.records,
        vec![RData::A(Ipv4Addr::new(192, 0, 2, 20))]
    );
    assert_eq!(
        chained.cname_chain,
        vec!["alias.example.test", "target.example.test"]
    );

    let big = resolver
        .lookup("big.example.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(big.records.len(), 8, "truncated answer retried over TCP");

    let nodata = resolver
        .lookup("mx1.example.test", RecordType::Mx)
        .await
        .unwrap();
    assert_eq!((nodata.status, nodata.ttl), (AnswerStatus::NoData, 120));
    let nxdomain = resolver
        .lookup("nope.example.test", RecordType::Mx)
        .await
        .unwrap();
    assert_eq!(
        (nxdomain.status, nxdomain.ttl),
        (AnswerStatus::NxDomain, 120)
    );

    assert_eq!(metrics.count("noerror"), 4);
    assert_eq!(metrics.count("nxdomain"), 1);
}

#[tokio::test]
async fn recursive_resolver_keeps_no_cache_and_reports_failures() {
    let server = example_server().await;
    let metrics = QueryMetrics::unregistered();
    let resolver = resolver(&server, &metrics);
    let first = resolver
        .lookup("example.test", RecordType::Mx)
        .await
        .unwrap();
    assert!(first.records.contains(&RData::Mx {
        preference: 10,
        exchange: "mx1.example.test".into()
    }));
    server
        .set_zone(&example_zone().replace("10 mx1.example.test.", "10 new.example.test."))
        .unwrap();
    let second = resolver
        .lookup("example.test", RecordType::Mx)
        .await
        .unwrap();
    assert!(
        second.records.contains(&RData::Mx {
            preference: 10,
            exchange: "new.example.test".into()
        }),
        "{second:?}"
    );
    let nx_before = server.query_count();
    resolver
        .lookup("gone.example.test", RecordType::Txt)
        .await
        .unwrap();
    resolver
        .lookup("gone.example.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(
        server.query_count() - nx_before,
        2,
        "negative answers are not cached either"
    );

    server.set_mode(ServerMode::ServFail);
    let error = resolver
        .lookup("example.test", RecordType::Mx)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DnsError::Rcode { rcode, .. } if rcode == "SERVFAIL"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&server.addr().to_string()),
        "{error}"
    );
    assert_eq!(metrics.count("servfail"), 1);

    server.set_mode(ServerMode::Silent);
    let error = resolver
        .lookup("example.test", RecordType::Mx)
        .await
        .unwrap_err();
    assert!(matches!(error, DnsError::Timeout { .. }), "{error:?}");
    assert_eq!(metrics.count("timeout"), 1);
}

#[tokio::test]
async fn fixed_servers_are_tried_in_order_until_an_authoritative_answer() {
    let silent = example_server().await;
    silent.set_mode(ServerMode::Silent);
    let good = example_server().await;
    let (client, _) = direct_client(200).await;
    let servers = AuthoritativeServers::Fixed(vec![silent.addr(), good.addr()]);
    let lookup = AuthoritativeLookup::new(client, servers, Arc::new(FakeDns::new()));
    let answer = lookup.lookup("example.test", RecordType::Mx).await.unwrap();
    assert_eq!(answer.server, Some(good.addr()));
    assert!(answer.authoritative);
    assert_eq!(
        silent.query_count(),
        2,
        "both UDP attempts went to the silent server first"
    );
    assert_eq!(good.query_count(), 1);

    // The server that failed is asked last for a while.
    lookup
        .lookup("example.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(
        silent.query_count(),
        2,
        "the silent server was not asked first"
    );
    assert_eq!(good.query_count(), 2);

    good.set_mode(ServerMode::ServFail);
    let error = lookup
        .lookup("example.test", RecordType::Mx)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DnsError::Timeout { server, .. } if *server == silent.addr().to_string()),
        "last error (the silent server, asked last): {error:?}"
    );
    assert_eq!(good.query_count(), 3);
}

/// A parent zone delegating `child.parent.test` (with glue) to another server.
const PARENT_ZONE: &str = "$ORIGIN parent.test.
$TTL 300
@            IN SOA ns.parent.test. h.parent.test. 7 3600 600 86400 60
@            IN NS  ns.parent.test.
ns           IN A   127.0.0.1
child        IN NS  ns.child.parent.test.
ns.child     IN A   127.0.0.1
";

#[tokio::test]
async fn a_referral_is_not_an_authoritative_answer() {
    let parent = LocalDnsServer::start(LOCALHOST, &[PARENT_ZONE])
        .await
        .unwrap();
    let (client, _) = direct_client(500).await;
    let servers = AuthoritativeServers::Fixed(vec![parent.addr()]);
    let lookup = AuthoritativeLookup::new(client, servers, Arc::new(FakeDns::new()));
    let error = lookup
        .lookup("child.parent.test", RecordType::Txt)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        DnsError::NotAuthoritative {
            server: parent.addr().to_string(),
            name: "child.parent.test".into()
        }
    );
}

#[tokio::test]
async fn discovery_walks_up_to_the_zone_and_caches_the_servers() {
    let server = example_server().await;
    let fake = Arc::new(FakeDns::new());
    fake.set(
        "example.test",
        RecordType::Ns,
        vec![RData::Ns("ns1.example.test".into())],
    );
    fake.a("ns1.example.test", &["127.0.0.1"]);
    let (client, _) = direct_client(500).await;
    let lookup = AuthoritativeLookup::new(client, AuthoritativeServers::Discover, fake.clone())
        .with_port(server.addr().port());

    let answer = lookup
        .lookup("www.example.test", RecordType::Cname)
        .await
        .unwrap();
    assert_eq!(
        answer.records,
        vec![RData::Cname("alias.example.test".into())]
    );
    assert!(answer.authoritative);
    let asked = fake.asked();
    assert_eq!(
        asked,
        vec![
            ("www.example.test".to_owned(), RecordType::Ns),
            ("example.test".to_owned(), RecordType::Ns),
            ("ns1.example.test".to_owned(), RecordType::A),
            ("ns1.example.test".to_owned(), RecordType::Aaaa),
        ]
    );
    // The apex and the name walked through reuse the discovered servers.
    lookup.lookup("example.test", RecordType::Mx).await.unwrap();
    lookup
        .lookup("www.example.test", RecordType::A)
        .await
        .unwrap();
    assert_eq!(fake.asked().len(), asked.len());

    // An unknown domain walks up to, but never asks, the TLD.
    let error = lookup
        .lookup("a.b.unknown", RecordType::Txt)
        .await
        .unwrap_err();
    assert!(matches!(error, DnsError::NoServers { .. }), "{error:?}");
    assert!(
        !fake
            .asked()
            .contains(&("unknown".to_owned(), RecordType::Ns))
    );
    assert!(
        fake.asked()
            .contains(&("b.unknown".to_owned(), RecordType::Ns))
    );
}

#[tokio::test]
async fn concurrent_identical_lookups_reach_the_server_once() {
    let server = example_server().await;
    let (client, _) = direct_client(2000).await;
    let authoritative = AuthoritativeLookup::new(
        client,
        AuthoritativeServers::Fixed(vec![server.addr()]),
        Arc::new(FakeDns::new()),
    );
    let shared = SharedLookups::new(Arc::new(authoritative), Duration::from_secs(60));
    let lookups = (0..50).map(|_| shared.lookup("Example.test.", RecordType::Mx));
    for result in join_all(lookups).await {
        assert_eq!(result.unwrap().records.len(), 2);
    }
    assert_eq!(server.query_count(), 1);
    // Reused afterwards too (TTL 300 > max_age 60 s, not yet expired).
    shared.lookup("example.test", RecordType::Mx).await.unwrap();
    assert_eq!(server.query_count(), 1);
    shared
        .lookup("example.test", RecordType::Txt)
        .await
        .unwrap();
    assert_eq!(server.query_count(), 2);
}

/// An inner lookup that counts calls and waits at a gate, so that callers overlap.
struct Counting {
    /// Calls so far.
    calls: AtomicUsize,
    /// Each call waits for a permit here.
    gate: Semaphore,
    /// What every call returns.
    result: LookupResult,
}

impl Counting {
    /// Calls pass at once.
    fn new(result: LookupResult) -> Arc<Counting> {
        Counting::gated(result, Semaphore::MAX_PERMITS)
    }

    /// Calls wait until `open` is called.
    fn gated(result: LookupResult, permits: usize) -> Arc<Counting> {
        let gate = Semaphore::new(permits);
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            gate,
            result,
        })
    }

    fn open(&self) {
        self.gate.add_permits(1000);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl DnsLookup for Counting {
    fn lookup<'a>(&'a self, _name: &'a str, _rtype: RecordType) -> BoxFuture<'a, LookupResult> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let _permit = self.gate.acquire().await.expect("gate never closed");
            self.result.clone()
        })
    }
}

/// Runs `count` identical lookups together, opening the gate only once all have started.
async fn together(
    shared: &SharedLookups,
    inner: &Counting,
    name: &str,
    count: usize,
) -> Vec<LookupResult> {
    let lookups = join_all((0..count).map(|_| shared.lookup(name, RecordType::A)));
    let opener = async {
        tokio::task::yield_now().await;
        inner.open();
    };
    let (results, ()) = futures::future::join(lookups, opener).await;
    results
}

#[tokio::test(start_paused = true)]
async fn answers_expire_after_max_age_or_ttl() {
    let inner = Counting::new(Ok(Answer::records(vec![RData::Txt("x".into())], 300)));
    let shared = SharedLookups::new(inner.clone(), Duration::from_secs(60));
    shared.lookup("a.test", RecordType::Txt).await.unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    shared.lookup("a.test", RecordType::Txt).await.unwrap();
    assert_eq!(inner.calls(), 1, "reused within max_age");
    tokio::time::advance(Duration::from_secs(2)).await;
    shared.lookup("a.test", RecordType::Txt).await.unwrap();
    assert_eq!(inner.calls(), 2, "asked again after max_age");

    let short = Counting::new(Ok(Answer::records(vec![RData::Txt("y".into())], 5)));
    let shared = SharedLookups::new(short.clone(), Duration::from_secs(60));
    shared.lookup("b.test", RecordType::Txt).await.unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    shared.lookup("b.test", RecordType::Txt).await.unwrap();
    assert_eq!(short.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    shared.lookup("b.test", RecordType::Txt).await.unwrap();
    assert_eq!(short.calls(), 2, "the TTL bounds reuse below max_age");

    let nxdomain = Answer {
        ttl: 30,
        ..Answer::empty(AnswerStatus::NxDomain)
    };
    let negative = Counting::new(Ok(nxdomain));
    let shared = SharedLookups::new(negative.clone(), Duration::from_secs(60));
    shared.lookup("c.test", RecordType::Txt).await.unwrap();
    shared.lookup("c.test", RecordType::Txt).await.unwrap();
    assert_eq!(negative.calls(), 1, "negative answers are reused too");
}

#[tokio::test]
async fn errors_and_ttl_zero_are_coalesced_but_not_reused() {
    let error = DnsError::Timeout {
        server: "s".into(),
        name: "a.test".into(),
        rtype: RecordType::A,
    };
    let failing = Counting::gated(Err(error.clone()), 0);
    let shared = SharedLookups::new(failing.clone(), Duration::from_secs(60));
    let results = together(&shared, &failing, "a.test", 10).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap_err() == &error));
    assert_eq!(failing.calls(), 1, "coalesced");
    shared.lookup("a.test", RecordType::A).await.unwrap_err();
    assert_eq!(failing.calls(), 2, "not reused");
    assert!(shared.is_empty());

    let zero = Counting::gated(
        Ok(Answer::records(vec![RData::A(Ipv4Addr::LOCALHOST)], 0)),
        0,
    );
    let shared = SharedLookups::new(zero.clone(), Duration::from_secs(60));
    let results = together(&shared, &zero, "z.test", 10).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(zero.calls(), 1);
    shared.lookup("z.test", RecordType::A).await.unwrap();
    assert_eq!(zero.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn memory_is_bounded() {
    let inner = Counting::new(Ok(Answer::records(vec![RData::Txt("x".into())], 300)));
    let shared = SharedLookups::with_max_entries(inner.clone(), Duration::from_secs(10), 4);
    for i in 0..6 {
        shared
            .lookup(&format!("n{i}.test"), RecordType::Txt)
            .await
            .unwrap();
    }
    assert_eq!(shared.len(), 4, "full: further answers are not kept");
    tokio::time::advance(Duration::from_secs(11)).await;
    shared.lookup("fresh.test", RecordType::Txt).await.unwrap();
    assert_eq!(shared.len(), 1, "expired entries swept on insert");
}

#[tokio::test(start_paused = true)]
async fn a_full_memo_does_constant_work_per_insert_and_keeps_hot_answers() {
    // Full of live answers (nothing expires while the test runs), then many more distinct
    // questions: each insert drops exactly one entry, never walks the map, and a question
    // asked between every insert (a provider's SPF include) stays remembered.
    const CAP: usize = 1_000;
    const MORE: usize = 20_000;
    let inner = Counting::new(Ok(Answer::records(vec![RData::Txt("x".into())], 300)));
    let shared = SharedLookups::with_max_entries(inner.clone(), Duration::from_secs(60), CAP);
    for i in 0..CAP {
        let name = format!("fill{i}.test");
        shared.lookup(&name, RecordType::Txt).await.unwrap();
    }
    assert_eq!(shared.evicted(), 0);
    for i in 0..MORE {
        shared.lookup("hot.test", RecordType::Txt).await.unwrap();
        let name = format!("new{i}.test");
        shared.lookup(&name, RecordType::Txt).await.unwrap();
    }
    assert_eq!(shared.len(), CAP);
    assert_eq!(
        shared.evicted(),
        MORE as u64 + 1,
        "one entry dropped per insert into the full map (the +1: the hot question's own insert)"
    );
    assert_eq!(
        inner.calls(),
        CAP + MORE + 1,
        "the hot question was asked once; every other question once"
    );
}
