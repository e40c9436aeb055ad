//! One test per fault class and transport (see `mod.rs`).

use super::server::{Fault, Spoof, cname, mx, txt, txt_bytes};
use super::{DOMAIN, GOOD_SPF, Outcome, Path, config, fault_class, healthy_server, watch_rounds};
use crate::harness::{Daemon, finding_codes};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::time::Duration;

#[tokio::test]
async fn no_answer_is_unknown_direct() {
    fault_class(Path::Direct, DOMAIN, Fault::Silent, Outcome::Unknown).await;
}

#[tokio::test]
async fn no_answer_is_unknown_resolver() {
    fault_class(Path::Resolver, DOMAIN, Fault::Silent, Outcome::Unknown).await;
}

#[tokio::test]
async fn servfail_is_unknown_direct() {
    let fault = Fault::Rcode(ResponseCode::ServFail);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn servfail_is_unknown_resolver() {
    let fault = Fault::Rcode(ResponseCode::ServFail);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn refused_is_unknown_direct() {
    let fault = Fault::Rcode(ResponseCode::Refused);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn refused_is_unknown_resolver() {
    let fault = Fault::Rcode(ResponseCode::Refused);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn notimp_is_unknown_direct() {
    let fault = Fault::Rcode(ResponseCode::NotImp);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn notimp_is_unknown_resolver() {
    let fault = Fault::Rcode(ResponseCode::NotImp);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn formerr_is_unknown_direct() {
    let fault = Fault::Rcode(ResponseCode::FormErr);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn formerr_is_unknown_resolver() {
    let fault = Fault::Rcode(ResponseCode::FormErr);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn truncated_udp_is_answered_over_tcp_direct() {
    fault_class(Path::Direct, DOMAIN, Fault::TruncatedUdp, Outcome::Genuine).await;
}

#[tokio::test]
async fn truncated_udp_is_answered_over_tcp_resolver() {
    fault_class(
        Path::Resolver,
        DOMAIN,
        Fault::TruncatedUdp,
        Outcome::Genuine,
    )
    .await;
}

#[tokio::test]
async fn tcp_closed_mid_message_is_unknown_direct() {
    fault_class(
        Path::Direct,
        DOMAIN,
        Fault::TcpCutMidMessage,
        Outcome::Unknown,
    )
    .await;
}

#[tokio::test]
async fn tcp_closed_mid_message_is_unknown_resolver() {
    let fault = Fault::TcpCutMidMessage;
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn spoofed_id_is_dropped_direct() {
    let fault = Fault::Spoof(Spoof::Id);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn spoofed_id_is_dropped_resolver() {
    let fault = Fault::Spoof(Spoof::Id);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn spoofed_question_is_dropped_direct() {
    let fault = Fault::Spoof(Spoof::Question);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn spoofed_question_is_dropped_resolver() {
    let fault = Fault::Spoof(Spoof::Question);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn spoofed_source_port_is_dropped_direct() {
    let fault = Fault::Spoof(Spoof::SourcePort);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn spoofed_source_port_is_dropped_resolver() {
    let fault = Fault::Spoof(Spoof::SourcePort);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Genuine).await;
}

/// Only forged answers ever come: they are never taken, so the checks are unknown.
#[tokio::test]
async fn only_spoofed_answers_are_unknown_direct() {
    let fault = Fault::SpoofOnly(Spoof::SourcePort);
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn only_spoofed_answers_are_unknown_resolver() {
    let fault = Fault::SpoofOnly(Spoof::Id);
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

/// Half the check's share of the 1 s timeout: answered. (An answer later than the check's
/// share but inside the per-query timeout is still taken, by the next round, which joins
/// the query in flight; `transport.rs` has the exact per-query boundary.)
#[tokio::test]
async fn slow_answer_under_the_timeout_is_taken_direct() {
    let fault = Fault::Slow(Duration::from_millis(350));
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn slow_answer_under_the_timeout_is_taken_resolver() {
    let fault = Fault::Slow(Duration::from_millis(350));
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Genuine).await;
}

/// Later than every per-query timeout (direct: 2 s, resolver: 3 s per attempt): unknown.
#[tokio::test]
async fn slow_answer_over_the_timeout_is_unknown_direct() {
    let fault = Fault::Slow(Duration::from_millis(3500));
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

#[tokio::test]
async fn slow_answer_over_the_timeout_is_unknown_resolver() {
    let fault = Fault::Slow(Duration::from_millis(3500));
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

/// The direct client skips an undecodable packet and takes the genuine answer after it.
#[tokio::test]
async fn malformed_packet_then_answer_is_taken_direct() {
    let fault = Fault::Malformed { then_genuine: true };
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Genuine).await;
}

#[tokio::test]
async fn malformed_packet_alone_is_unknown_direct() {
    let fault = Fault::Malformed {
        then_genuine: false,
    };
    fault_class(Path::Direct, DOMAIN, fault, Outcome::Unknown).await;
}

/// hickory's UDP client gives up on an undecodable packet carrying the query's ID and
/// port: unknown, never a wrong answer.
#[tokio::test]
async fn malformed_packet_is_unknown_resolver() {
    let fault = Fault::Malformed { then_genuine: true };
    fault_class(Path::Resolver, DOMAIN, fault, Outcome::Unknown).await;
}

/// An authoritative server must set AA: without it the answer is not taken.
#[tokio::test]
async fn answer_without_aa_is_unknown_direct() {
    fault_class(Path::Direct, DOMAIN, Fault::NoAa, Outcome::Unknown).await;
}

/// A resolver's answers never carry AA: taken.
#[tokio::test]
async fn answer_without_aa_is_taken_resolver() {
    fault_class(Path::Resolver, DOMAIN, Fault::NoAa, Outcome::Genuine).await;
}

/// The SPF include's server fails: SPF unknown (a temporary error), MX still conclusive.
#[tokio::test]
async fn failing_include_makes_only_spf_unknown() {
    let fault = Fault::Rcode(ResponseCode::ServFail);
    fault_class(
        Path::Direct,
        "spf.provider.test",
        fault,
        Outcome::OnlyUnknown(1),
    )
    .await;
}

/// NXDOMAIN and NODATA are conclusive answers, told apart in the finding.
#[tokio::test]
async fn nxdomain_and_nodata_are_conclusive_and_told_apart() {
    for (fault, how) in [
        (Fault::NxDomain, "the domain does not exist (NXDOMAIN)"),
        (Fault::NoData, "no MX records (NODATA)"),
    ] {
        for path in [Path::Direct, Path::Resolver] {
            let dns = healthy_server().await;
            dns.fault(DOMAIN, fault.clone());
            let daemon = Daemon::start(&config(&dns, path, "")).await;
            daemon.wait_ready(Duration::from_secs(15)).await;
            let seen = watch_rounds(&daemon, 2).await;
            assert_eq!(seen.success, [Some(1.0), Some(1.0)], "{fault:?} {path:?}");
            let json: serde_json::Value =
                serde_json::from_str(&daemon.get(&format!("/api/v1/domains/{DOMAIN}")).await.body)
                    .unwrap();
            let mx = &json["checks"]["mx"];
            assert!(
                finding_codes(mx).contains(&"mx_missing:critical".to_owned()),
                "{fault:?} {path:?}: {mx}"
            );
            let message = mx["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["code"] == "mx_missing")
                .unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(message.contains(how), "{fault:?} {path:?}: {message}");
            dns.heal(DOMAIN);
            super::assert_recovers(&daemon).await;
            daemon.stop().await;
        }
    }
}

/// TXT answers of 20 strings of 255 octets (5 KB: only over TCP) and a TXT record without
/// any string beside the SPF record: read whole, conclusive, no drift.
#[tokio::test]
async fn oversized_and_empty_txt_records_are_read() {
    for path in [Path::Direct, Path::Resolver] {
        let dns = healthy_server().await;
        let chunk = [b'a'; 255];
        let strings: Vec<&[u8]> = (0..20).map(|_| &chunk[..]).collect();
        dns.add(DOMAIN, txt_bytes(&strings));
        dns.add(DOMAIN, txt_bytes(&[]));
        let daemon = Daemon::start(&config(&dns, path, "")).await;
        daemon.wait_ready(Duration::from_secs(15)).await;
        let seen = watch_rounds(&daemon, 2).await;
        assert_eq!(seen.max_drift, [0.0, 0.0], "{path:?}: {seen:?}");
        assert_eq!(seen.success, [Some(1.0), Some(1.0)], "{path:?}");
        let json: serde_json::Value =
            serde_json::from_str(&daemon.get(&format!("/api/v1/domains/{DOMAIN}")).await.body)
                .unwrap();
        assert_eq!(finding_codes(&json["checks"]["spf"]), Vec::<String>::new());
        daemon.stop().await;
    }
}

/// An include behind 12 CNAMEs (more than the 8 links followed) and one behind a CNAME
/// loop: conclusive (`spf_include_no_record`), never drift, never a hang; healed, the
/// finding goes.
#[tokio::test]
async fn long_cname_chains_and_loops_never_drift() {
    for looped in [false, true] {
        for path in [Path::Direct, Path::Resolver] {
            let dns = healthy_server().await;
            dns.set("spf.provider.test", RecordType::TXT, Vec::new());
            if looped {
                dns.add("spf.provider.test", cname("loop1.provider.test"));
                dns.add("loop1.provider.test", cname("loop2.provider.test"));
                dns.add("loop2.provider.test", cname("loop1.provider.test"));
            } else {
                dns.add("spf.provider.test", cname("c1.provider.test"));
                for i in 1..12 {
                    dns.add(
                        &format!("c{i}.provider.test"),
                        cname(&format!("c{}.provider.test", i + 1)),
                    );
                }
                dns.add("c12.provider.test", txt("v=spf1 ip4:192.0.2.0/24 -all"));
            }
            let daemon = Daemon::start(&config(&dns, path, "")).await;
            daemon.wait_ready(Duration::from_secs(15)).await;
            let seen = watch_rounds(&daemon, 2).await;
            assert_eq!(
                seen.max_drift,
                [0.0, 0.0],
                "loop {looped} {path:?}: {seen:?}"
            );
            assert_eq!(seen.success[0], Some(1.0), "MX unaffected");
            let json: serde_json::Value =
                serde_json::from_str(&daemon.get(&format!("/api/v1/domains/{DOMAIN}")).await.body)
                    .unwrap();
            // Conclusive: the include has no SPF record at the end of at most 8 links.
            assert_eq!(seen.success[1], Some(1.0), "loop {looped} {path:?}");
            assert_eq!(
                finding_codes(&json["checks"]["spf"]),
                ["spf_include_no_record:critical"],
                "loop {looped} {path:?}"
            );
            dns.set("spf.provider.test", RecordType::CNAME, Vec::new());
            dns.add("spf.provider.test", txt("v=spf1 ip4:192.0.2.0/24 -all"));
            super::assert_recovers(&daemon).await;
            daemon.stop().await;
        }
    }
}

/// Owner names and targets in mixed case, expectations written with capitals and a
/// trailing dot: the same names, no drift.
#[tokio::test]
async fn mixed_case_and_trailing_dots_are_the_same_names() {
    for path in [Path::Direct, Path::Resolver] {
        let dns = super::server::FaultDns::start(&[DOMAIN, "provider.test"]).await;
        dns.add("FaUlT.TeSt", mx(10, "MX1.Provider.TEST."));
        dns.add("fAULT.test.", txt(GOOD_SPF));
        dns.add("Mx1.PROVIDER.test", super::server::a([192, 0, 2, 11]));
        dns.add("SPF.provider.TEST", txt("v=spf1 ip4:192.0.2.0/24 -all"));
        let yaml = config(&dns, path, "")
            .replace("mx: [mx1.provider.test]", "mx: [MX1.Provider.Test.]")
            .replace(
                "includes: [spf.provider.test]",
                "includes: [Spf.Provider.Test.]",
            );
        let daemon = Daemon::start(&yaml).await;
        daemon.wait_ready(Duration::from_secs(15)).await;
        let seen = watch_rounds(&daemon, 2).await;
        assert_eq!(seen.max_drift, [0.0, 0.0], "{path:?}: {seen:?}");
        assert_eq!(seen.success, [Some(1.0), Some(1.0)], "{path:?}");
        daemon.stop().await;
    }
}

/// SPF answers alternating between `-all` and `~all` on each query: drift comes and goes,
/// but inside `for: 1h` no alert ever fires.
#[tokio::test]
async fn flapping_answers_inside_for_never_fire() {
    let dns = healthy_server().await;
    dns.fault(
        DOMAIN,
        Fault::Flapping {
            rtype: RecordType::TXT,
            a: vec![txt(GOOD_SPF)],
            b: vec![txt("v=spf1 include:spf.provider.test ~all")],
        },
    );
    let yaml = config(&dns, Path::Direct, "").replace(
        "domains:",
        "alerting:\n  for: 1h\n  keep_firing_for: 0s\ndomains:",
    );
    let daemon = Daemon::start(&yaml).await;
    daemon.wait_ready(Duration::from_secs(15)).await;
    let mut fired = 0.0_f64;
    let mut drift_seen = 0.0_f64;
    for _ in 0..6 {
        let seen = watch_rounds(&daemon, 1).await;
        drift_seen = drift_seen.max(seen.max_drift[1]);
        let text = daemon.get("/metrics").await.body;
        for line in text
            .lines()
            .filter(|l| l.starts_with("maildrift_alerts_firing"))
        {
            let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            fired = fired.max(value);
        }
    }
    assert_eq!(drift_seen, 1.0, "the flapping was never seen as drift");
    assert_eq!(fired, 0.0, "an alert fired inside `for`");
    assert!(dns.queries(DOMAIN) >= 6, "the server was asked");
    dns.heal(DOMAIN);
    super::assert_recovers(&daemon).await;
    daemon.stop().await;
}
