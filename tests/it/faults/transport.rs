//! The two transports alone against the fault server, on tokio's paused clock: answers
//! just under the per-attempt timeout are taken, just over are timeouts; forged answers
//! (wrong ID, question or source port) are never taken, whether or not the genuine one
//! follows. The server's delays and the clients' timeouts run on the same paused clock, so
//! "just under" and "just over" are exact; loopback delivery is immediate.

use super::server::{EVIL_MX, Fault, FaultDns, Spoof};
use super::{DOMAIN, healthy_server};
use maildrift::dns::direct::{DirectClient, DirectOptions};
use maildrift::dns::hickory::{RecursiveResolver, ResolverOptions};
use maildrift::dns::{DnsError, DnsLookup, LookupResult, QueryMetrics, RData, RecordType};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn direct() -> std::sync::Arc<DirectClient> {
    let options = DirectOptions {
        timeout: TIMEOUT,
        attempts: 1,
        ..DirectOptions::default()
    };
    DirectClient::new(options, QueryMetrics::unregistered())
        .await
        .unwrap()
}

fn resolver(dns: &FaultDns) -> RecursiveResolver {
    let options = ResolverOptions {
        timeout: TIMEOUT,
        attempts: 1,
    };
    RecursiveResolver::with_servers(&[dns.addr()], &options, QueryMetrics::unregistered())
}

async fn ask_both(dns: &FaultDns) -> [LookupResult; 2] {
    let client = direct().await;
    let direct = client
        .query(dns.addr(), DOMAIN, RecordType::Mx, false)
        .await;
    let recursive = resolver(dns).lookup(DOMAIN, RecordType::Mx).await;
    [direct, recursive]
}

fn genuine(result: &LookupResult) -> bool {
    matches!(result, Ok(answer) if answer.records == [RData::Mx {
        preference: 10,
        exchange: "mx1.provider.test".to_owned(),
    }])
}

fn timed_out(result: &LookupResult) -> bool {
    matches!(result, Err(DnsError::Timeout { .. }))
}

#[tokio::test(start_paused = true)]
async fn answer_just_under_the_timeout_is_taken() {
    let dns = healthy_server().await;
    dns.fault(DOMAIN, Fault::Slow(TIMEOUT - Duration::from_millis(50)));
    for (transport, result) in ["direct", "resolver"].iter().zip(ask_both(&dns).await) {
        assert!(genuine(&result), "{transport}: {result:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn answer_just_over_the_timeout_is_a_timeout() {
    let dns = healthy_server().await;
    dns.fault(DOMAIN, Fault::Slow(TIMEOUT + Duration::from_millis(50)));
    let client = direct().await;
    let started = tokio::time::Instant::now();
    let result = client
        .query(dns.addr(), DOMAIN, RecordType::Mx, false)
        .await;
    assert!(timed_out(&result), "direct: {result:?}");
    assert_eq!(started.elapsed(), TIMEOUT, "gave up exactly at the timeout");
    let result = resolver(&dns).lookup(DOMAIN, RecordType::Mx).await;
    assert!(result.is_err(), "resolver: {result:?}");
}

#[tokio::test(start_paused = true)]
async fn forged_answers_are_dropped_and_the_genuine_one_taken() {
    for spoof in [Spoof::Id, Spoof::Question, Spoof::SourcePort] {
        let dns = healthy_server().await;
        dns.fault(DOMAIN, Fault::Spoof(spoof));
        for (transport, result) in ["direct", "resolver"].iter().zip(ask_both(&dns).await) {
            assert!(genuine(&result), "{spoof:?} {transport}: {result:?}");
        }
        assert_eq!(dns.spoofed(), 2, "{spoof:?}: one forged answer per query");
    }
}

#[tokio::test(start_paused = true)]
async fn forged_answers_alone_are_never_taken() {
    for spoof in [Spoof::Id, Spoof::Question, Spoof::SourcePort] {
        let dns = healthy_server().await;
        dns.fault(DOMAIN, Fault::SpoofOnly(spoof));
        let [direct, recursive] = ask_both(&dns).await;
        assert!(timed_out(&direct), "{spoof:?} direct: {direct:?}");
        let evil = |r: &LookupResult| matches!(r, Ok(a) if a.records.iter().any(|d| d.to_string().contains(EVIL_MX.trim_end_matches('.'))));
        assert!(
            recursive.is_err() && !evil(&recursive),
            "{spoof:?} resolver: {recursive:?}"
        );
        // hickory may ask again within its timeout; each forged answer is dropped.
        assert!(dns.spoofed() >= 2, "{spoof:?}");
    }
}

/// A truncated UDP answer is asked again over TCP; a TCP answer cut mid-message is a
/// transport error, not a partial answer.
#[tokio::test(start_paused = true)]
async fn truncation_goes_to_tcp_and_a_cut_tcp_answer_is_an_error() {
    let dns = healthy_server().await;
    dns.fault(DOMAIN, Fault::TruncatedUdp);
    for (transport, result) in ["direct", "resolver"].iter().zip(ask_both(&dns).await) {
        assert!(genuine(&result), "{transport}: {result:?}");
    }
    dns.fault(DOMAIN, Fault::TcpCutMidMessage);
    for (transport, result) in ["direct", "resolver"].iter().zip(ask_both(&dns).await) {
        assert!(result.is_err(), "{transport}: {result:?}");
    }
}

/// A TXT answer over 4 KB (20 strings of 255 octets: truncated over UDP, whole over TCP)
/// and a TXT record without any string are both read, the strings joined.
#[tokio::test(start_paused = true)]
async fn oversized_and_empty_txt_are_read_by_both_transports() {
    let chunk = [b'a'; 255];
    let strings: Vec<&[u8]> = (0..20).map(|_| &chunk[..]).collect();
    let big = "a".repeat(255 * 20);
    for (label, data, expected) in [
        (
            "oversized",
            super::server::txt_bytes(&strings),
            big.as_str(),
        ),
        ("empty", super::server::txt_bytes(&[]), ""),
    ] {
        let dns = healthy_server().await;
        dns.set(
            DOMAIN,
            hickory_proto::rr::RecordType::TXT,
            vec![data.clone()],
        );
        for (transport, result) in ask_txt(&dns).await {
            let records = result
                .unwrap_or_else(|e| panic!("{label} {transport}: {e}"))
                .records;
            assert_eq!(
                records,
                [RData::Txt(expected.to_owned())],
                "{label} {transport}"
            );
        }
        // Beside the SPF record and the other kind.
        let (first, second) = (
            super::server::txt_bytes(&strings),
            super::server::txt_bytes(&[]),
        );
        dns.set(
            DOMAIN,
            hickory_proto::rr::RecordType::TXT,
            vec![super::server::txt(super::GOOD_SPF), first, second],
        );
        for (transport, result) in ask_txt(&dns).await {
            let records = result
                .unwrap_or_else(|e| panic!("{label} {transport}: {e}"))
                .records;
            assert_eq!(records.len(), 3, "{label} {transport}");
        }
    }
}

async fn ask_txt(dns: &FaultDns) -> [(&'static str, LookupResult); 2] {
    let client = direct().await;
    let direct = client
        .query(dns.addr(), DOMAIN, RecordType::Txt, false)
        .await;
    let recursive = resolver(dns).lookup(DOMAIN, RecordType::Txt).await;
    [("direct", direct), ("resolver", recursive)]
}
