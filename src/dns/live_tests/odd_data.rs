//! Data the host-name rules and hickory's decoder refuse, yet SPF meets: names with any
//! octets in their labels (`foo:bar/baz`, spaces, `%`), and TXT records without strings.
//! Served by the local server from records (zone files cannot express them), read through
//! the recursive resolver and the direct client alike.

use super::{LOCALHOST, direct_client};
use crate::dns::hickory::{RecursiveResolver, ResolverOptions};
use crate::dns::server::LocalDnsServer;
use crate::dns::{AnswerStatus, DnsError, DnsLookup, QueryMetrics, RData, RecordType};
use hickory_proto::rr::rdata::{A, MX, SOA, TXT};
use hickory_proto::rr::{self, Name, Record};
use std::net::Ipv4Addr;
use std::time::Duration;

/// A name whose labels are the octets between the dots.
fn octets(name: &str) -> Name {
    Name::from_labels(name.split('.').map(str::as_bytes)).unwrap()
}

async fn odd_server() -> LocalDnsServer {
    let odd = octets("foo:bar/baz.example.com");
    let spaced = octets("macro%percent  space%20url-space.example.com");
    let null = octets("null.example.com");
    let soa = SOA::new(
        octets("ns.test"),
        octets("hostmaster.test"),
        1,
        3600,
        600,
        86400,
        60,
    );
    let records = vec![
        Record::from_rdata(Name::root(), 300, rr::RData::SOA(soa)),
        Record::from_rdata(null.clone(), 300, rr::RData::TXT(TXT::new(vec![]))),
        Record::from_rdata(
            null,
            300,
            rr::RData::TXT(TXT::new(vec![
                "v=spf1 ip4:".into(),
                "192.0.2.5 -all".into(),
            ])),
        ),
        Record::from_rdata(odd.clone(), 300, rr::RData::A(A::new(192, 0, 2, 1))),
        Record::from_rdata(odd.clone(), 300, rr::RData::MX(MX::new(0, odd))),
        Record::from_rdata(spaced, 300, rr::RData::A(A::new(192, 0, 2, 2))),
    ];
    LocalDnsServer::start_with_records(LOCALHOST, vec![(Name::root(), records)])
        .await
        .unwrap()
}

#[tokio::test]
async fn odd_names_and_txt_without_strings_are_read_by_both_clients() {
    let server = odd_server().await;
    let metrics = QueryMetrics::unregistered();
    let options = ResolverOptions {
        timeout: Duration::from_millis(500),
        attempts: 2,
    };
    let resolver = RecursiveResolver::with_servers(&[server.addr()], &options, metrics.clone());
    let (direct, _) = direct_client(500).await;
    let cases = [
        (
            "null.example.com",
            RecordType::Txt,
            vec![
                RData::Txt(String::new()),
                RData::Txt("v=spf1 ip4:192.0.2.5 -all".into()),
            ],
        ),
        (
            "Foo:Bar/baz.example.com",
            RecordType::A,
            vec![RData::A(Ipv4Addr::new(192, 0, 2, 1))],
        ),
        (
            "foo:bar/baz.example.com",
            RecordType::Mx,
            vec![RData::Mx {
                preference: 0,
                exchange: "foo:bar/baz.example.com".into(),
            }],
        ),
        (
            "macro%percent  space%20url-space.example.com",
            RecordType::A,
            vec![RData::A(Ipv4Addr::new(192, 0, 2, 2))],
        ),
    ];
    for (name, rtype, want) in cases {
        let mut got = resolver.lookup(name, rtype).await.unwrap().records;
        got.sort();
        assert_eq!(got, want, "resolver, {name} {rtype}");
        let mut got = direct
            .query(server.addr(), name, rtype, false)
            .await
            .unwrap()
            .records;
        got.sort();
        assert_eq!(got, want, "direct client, {name} {rtype}");
    }
    let missing = resolver
        .lookup("foo:bar/nothing.example.com", RecordType::A)
        .await
        .unwrap();
    assert_eq!(missing.status, AnswerStatus::NxDomain);
    // Names that cannot be sent are refused before anything is asked.
    let asked = server.query_count();
    let long = format!("{}.example.com", "a".repeat(64));
    for name in ["mail.example...com", long.as_str()] {
        let err = resolver.lookup(name, RecordType::A).await.unwrap_err();
        assert!(matches!(err, DnsError::InvalidName { .. }), "{err}");
    }
    assert_eq!(server.query_count(), asked);
}
