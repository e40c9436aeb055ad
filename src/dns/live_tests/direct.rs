//! DirectClient and LocalDnsServer together.

use super::{LOCALHOST, direct_client, example_server, example_zone};
use crate::dns::server::{LocalDnsServer, ServerMode};
use crate::dns::{AnswerStatus, DnsError, RData, RecordType};
use std::net::Ipv4Addr;

#[tokio::test]
async fn authoritative_answers_for_mx_txt_a() {
    let server = example_server().await;
    let (client, metrics) = direct_client(2000).await;

    let mx = client
        .query(server.addr(), "Example.Test.", RecordType::Mx, false)
        .await
        .unwrap();
    assert_eq!(mx.status, AnswerStatus::Records);
    assert!(mx.authoritative);
    assert_eq!(mx.server, Some(server.addr()));
    assert_eq!(mx.ttl, 300);
    let mut records = mx.records.clone();
    records.sort();
    assert_eq!(
        records,
        vec![
            RData::Mx {
                preference: 10,
                exchange: "mx1.example.test".into()
            },
            RData::Mx {
                preference: 20,
                exchange: "mx2.example.test".into()
            },
        ]
    );

    let txt = client
        .query(server.addr(), "example.test", RecordType::Txt, false)
        .await
        .unwrap();
    assert_eq!(
        txt.records,
        vec![RData::Txt("v=spf1 include:_spf.provider.test -all".into())]
    );

    let a = client
        .query(server.addr(), "mx1.example.test", RecordType::A, true)
        .await
        .unwrap();
    assert_eq!(a.records, vec![RData::A(Ipv4Addr::new(192, 0, 2, 10))]);
    assert!(a.authoritative);
    assert_eq!(metrics.count("noerror"), 3);
    assert_eq!(metrics.duration.get_sample_count(), 3);
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_negative_ttl() {
    let server = example_server().await;
    let (client, metrics) = direct_client(2000).await;

    let nodata = client
        .query(server.addr(), "mx1.example.test", RecordType::Txt, false)
        .await
        .unwrap();
    assert_eq!(nodata.status, AnswerStatus::NoData);
    assert!(nodata.records.is_empty());
    assert_eq!(nodata.ttl, 120);

    let nxdomain = client
        .query(
            server.addr(),
            "missing.example.test",
            RecordType::Txt,
            false,
        )
        .await
        .unwrap();
    assert_eq!(nxdomain.status, AnswerStatus::NxDomain);
    assert_eq!(nxdomain.ttl, 120);
    assert!(nxdomain.authoritative);
    assert_eq!(metrics.count("noerror"), 1);
    assert_eq!(metrics.count("nxdomain"), 1);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let server = example_server().await;
    let (client, _) = direct_client(2000).await;
    let big = client
        .query(server.addr(), "big.example.test", RecordType::Txt, false)
        .await
        .unwrap();
    assert_eq!(big.records.len(), 8, "{big:?}");
    assert_eq!(
        server.query_count(),
        2,
        "one UDP query, truncated, then one over TCP"
    );
    for record in &big.records {
        let RData::Txt(text) = record else {
            panic!("{record:?}")
        };
        assert_eq!(text.len(), 200);
    }
}

#[tokio::test]
async fn cname_chain_is_followed() {
    let server = example_server().await;
    let (client, _) = direct_client(2000).await;
    let a = client
        .query(server.addr(), "www.example.test", RecordType::A, false)
        .await
        .unwrap();
    assert_eq!(a.records, vec![RData::A(Ipv4Addr::new(192, 0, 2, 20))]);
    assert_eq!(
        a.cname_chain,
        vec!["alias.example.test", "target.example.test"]
    );
    assert_eq!(a.ttl, 60);

    let cname = client
        .query(server.addr(), "www.example.test", RecordType::Cname, false)
        .await
        .unwrap();
    assert_eq!(
        cname.records,
        vec![RData::Cname("alias.example.test".into())]
    );
    assert!(cname.cname_chain.is_empty());
}

#[tokio::test]
async fn servfail_and_silent_modes() {
    let server = example_server().await;
    let (client, metrics) = direct_client(200).await;

    server.set_mode(ServerMode::ServFail);
    let error = client
        .query(server.addr(), "example.test", RecordType::Mx, false)
        .await
        .unwrap_err();
    match &error {
        DnsError::Rcode {
            rcode,
            server: asked,
            name,
            ..
        } => {
            assert_eq!(rcode, "SERVFAIL");
            assert_eq!(asked, &server.addr().to_string());
            assert_eq!(name, "example.test");
        }
        other => panic!("expected SERVFAIL, got {other:?}"),
    }
    assert_eq!(metrics.count("servfail"), 1);

    server.set_mode(ServerMode::Silent);
    let before = server.query_count();
    let error = client
        .query(server.addr(), "example.test", RecordType::Mx, false)
        .await
        .unwrap_err();
    assert!(matches!(error, DnsError::Timeout { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&server.addr().to_string()),
        "{error}"
    );
    assert_eq!(server.query_count() - before, 2, "two UDP attempts");
    assert_eq!(metrics.count("timeout"), 1);

    server.set_mode(ServerMode::Normal);
    let answer = client
        .query(server.addr(), "example.test", RecordType::Mx, false)
        .await
        .unwrap();
    assert_eq!(answer.records.len(), 2);
}

#[tokio::test]
async fn set_zone_changes_the_answer_and_bad_zones_are_refused() {
    let server = example_server().await;
    let (client, _) = direct_client(2000).await;
    let drifted = example_zone().replace("10 mx1.example.test.", "10 evil.example.net.");
    server.set_zone(&drifted).unwrap();
    let mx = client
        .query(server.addr(), "example.test", RecordType::Mx, false)
        .await
        .unwrap();
    assert!(
        mx.records.contains(&RData::Mx {
            preference: 10,
            exchange: "evil.example.net".into()
        }),
        "{mx:?}"
    );

    let no_soa = "$ORIGIN other.test.\n@ 300 IN TXT \"x\"\n";
    let error = server.set_zone(no_soa).unwrap_err();
    assert!(error.contains("SOA"), "{error}");
    let garbage = "$ORIGIN other.test.\n@ 300 IN MX not-a-number\n";
    let error = server.set_zone(garbage).unwrap_err();
    assert!(error.contains("invalid zone file"), "{error}");

    // Restoring brings the old answer back.
    server.set_zone(&example_zone()).unwrap();
    let mx = client
        .query(server.addr(), "example.test", RecordType::Mx, false)
        .await
        .unwrap();
    assert!(mx.records.contains(&RData::Mx {
        preference: 10,
        exchange: "mx1.example.test".into()
    }));
}

#[tokio::test]
async fn several_zones_and_shutdown() {
    let other = "$ORIGIN other.test.\n$TTL 60\n@ IN SOA ns.other.test. h.other.test. 1 60 60 60 30\n@ IN TXT \"v=DMARC1; p=reject\"\n";
    let server = LocalDnsServer::start(LOCALHOST, &[&example_zone(), other])
        .await
        .unwrap();
    let (client, _) = direct_client(200).await;
    let txt = client
        .query(server.addr(), "other.test", RecordType::Txt, false)
        .await
        .unwrap();
    assert_eq!(txt.records, vec![RData::Txt("v=DMARC1; p=reject".into())]);
    let addr = server.addr();
    server.shutdown().await.unwrap();
    let error = client
        .query(addr, "other.test", RecordType::Txt, false)
        .await
        .unwrap_err();
    assert!(
        matches!(error, DnsError::Timeout { .. } | DnsError::Transport { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn concurrent_queries_share_the_sockets() {
    let server = example_server().await;
    let (client, metrics) = direct_client(2000).await;
    let queries = (0..200).map(|i| {
        let client = client.clone();
        let addr = server.addr();
        async move {
            let name = if i % 2 == 0 {
                "mx1.example.test"
            } else {
                "target.example.test"
            };
            let answer = client
                .query(addr, name, RecordType::A, false)
                .await
                .unwrap();
            (i, answer)
        }
    });
    for (i, answer) in futures::future::join_all(queries).await {
        let expected = if i % 2 == 0 {
            [192, 0, 2, 10]
        } else {
            [192, 0, 2, 20]
        };
        assert_eq!(answer.records, vec![RData::A(Ipv4Addr::from(expected))]);
    }
    assert_eq!(metrics.count("noerror"), 200);
}

#[tokio::test]
async fn invalid_names_are_rejected_before_sending() {
    let server = example_server().await;
    let (client, _) = direct_client(200).await;
    let long_label = "a".repeat(64);
    let error = client
        .query(
            server.addr(),
            &format!("{long_label}.example.test"),
            RecordType::A,
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, DnsError::InvalidName { .. }), "{error:?}");
    assert_eq!(server.query_count(), 0);
}
