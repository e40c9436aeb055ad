//! Evaluation of hand-built observations (no network), and the drift annotation.

use super::*;
use crate::checks::Evaluation;
use crate::checks::compare_sets;
use crate::dns::RData;
use crate::finding::{CheckKind, FindingCode};

fn server(addr: &str, serial: u32, mx: &str) -> ServerView {
    let set = |values: &[&str]| RecordSet {
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        ttl: 300,
    };
    let mut answers = BTreeMap::new();
    answers.insert("soa".to_owned(), set(&[&serial.to_string()]));
    answers.insert("ns".to_owned(), set(&["ns1.a.example", "ns2.a.example"]));
    answers.insert("mx".to_owned(), set(&[mx]));
    ServerView {
        nameserver: Nameserver {
            host: None,
            addr: addr.parse().unwrap(),
        },
        lame: None,
        serial: Some(serial),
        answers,
    }
}

fn lame(addr: &str, reason: &str) -> ServerView {
    let mut view = server(addr, 0, "");
    view.lame = Some(reason.to_owned());
    view.serial = None;
    view.answers.clear();
    view
}

fn observation(servers: Vec<ServerView>, apart: Option<u64>) -> NameserversObservation {
    NameserversObservation {
        domain: "a.example".to_owned(),
        result: Some(Ok(AuthorityView {
            zone: "a.example".to_owned(),
            servers,
            delegation: None,
            serials_apart_for: apart.map(Duration::from_secs),
            grace: Duration::from_secs(600),
            resolvers: Vec::new(),
            resolvers_asked_at: None,
            answers_fingerprint: 0,
        })),
    }
}

fn codes(report: &Evaluation<()>) -> Vec<FindingCode> {
    report.findings.iter().map(|f| f.code).collect()
}

#[test]
fn agreeing_servers_give_no_finding_and_the_ns_set_as_records() {
    let obs = observation(
        vec![
            server("192.0.2.1:53", 7, "10 mx.a.example"),
            server("192.0.2.2:53", 7, "10 mx.a.example"),
        ],
        None,
    );
    let report = evaluate(&obs);
    assert!(report.success);
    assert_eq!(codes(&report), []);
    assert_eq!(report.records[0].values, ["ns1.a.example", "ns2.a.example"]);
    assert_eq!(report.records[1].values, ["192.0.2.1:53", "192.0.2.2:53"]);
    let summary = obs.summary().unwrap();
    assert!(summary.consistent);
    assert_eq!(
        summary.serials,
        [("192.0.2.1".to_owned(), 7), ("192.0.2.2".to_owned(), 7)]
    );
}

#[test]
fn differing_answers_name_each_server_and_serials_wait_for_the_grace() {
    let servers = vec![
        server("192.0.2.1:53", 8, "10 new.a.example"),
        server("192.0.2.2:53", 7, "10 old.a.example"),
        server("192.0.2.3:53", 8, "10 new.a.example"),
    ];
    let within = evaluate(&observation(servers.clone(), Some(599)));
    assert_eq!(codes(&within), [FindingCode::NsAnswersDiffer]);
    let differ = &within.findings[0];
    assert_eq!(
        differ.message,
        "the nameservers of a.example disagree on MX: 192.0.2.1, 192.0.2.3 say \
         [10 new.a.example]; 192.0.2.2 says [10 old.a.example]"
    );
    assert_eq!(differ.evidence["answers"][1]["nameservers"][0], "192.0.2.2");
    let past = evaluate(&observation(servers, Some(600)));
    assert_eq!(
        codes(&past),
        [FindingCode::NsAnswersDiffer, FindingCode::NsSerialMismatch]
    );
    assert_eq!(past.findings[1].evidence["serials"]["192.0.2.2"], 7);
}

#[test]
fn lame_servers_are_reported_and_left_out_of_the_comparison() {
    let obs = observation(
        vec![
            lame("192.0.2.1:53", "timeout asking a.example SOA"),
            server("192.0.2.2:53", 7, "10 mx.a.example"),
        ],
        None,
    );
    let report = evaluate(&obs);
    assert!(report.success);
    assert_eq!(codes(&report), [FindingCode::NsLame]);
    assert_eq!(
        report.findings[0].message,
        "nameserver 192.0.2.1 is lame for a.example: timeout asking a.example SOA"
    );
    assert!(!obs.summary().unwrap().consistent);

    let all_lame = observation(vec![lame("192.0.2.1:53", "REFUSED")], None);
    let report = evaluate(&all_lame);
    assert!(!report.success);
    assert!(report.error.unwrap().contains("192.0.2.1: REFUSED"));
    assert_eq!(all_lame.summary(), None);
}

#[test]
fn delegation_mismatch_lists_both_sides() {
    let mut obs = observation(vec![server("192.0.2.1:53", 1, "10 mx.a.example")], None);
    if let Some(Ok(view)) = &mut obs.result {
        view.delegation = Some(Ok(Delegation {
            parent: "example".to_owned(),
            server: "192.0.2.53".to_owned(),
            ns: vec!["ns1.a.example".to_owned(), "ns3.a.example".to_owned()],
        }));
    }
    let report = evaluate(&obs);
    assert_eq!(codes(&report), [FindingCode::NsDelegationMismatch]);
    let evidence = &report.findings[0].evidence;
    assert_eq!(evidence["missing_at_parent"][0], "ns2.a.example");
    assert_eq!(evidence["missing_at_apex"][0], "ns3.a.example");
}

#[test]
fn not_authoritative_is_an_empty_success() {
    let obs = NameserversObservation {
        domain: "a.example".to_owned(),
        result: None,
    };
    let report = evaluate(&obs);
    assert!(report.success && report.records.is_empty() && report.findings.is_empty());
}

#[test]
fn drift_gets_the_longest_remaining_ttl_of_the_resolvers_for_its_record() {
    let finding = compare_sets(
        CheckKind::Mx,
        &["10 old.a.example".to_owned()],
        &["10 new.a.example".to_owned()],
    )
    .unwrap();
    let mut drift = finding;
    let row = |record: &str, resolver: &str, pending_seconds| Propagation {
        record: record.to_owned(),
        resolver: resolver.to_owned(),
        pending_seconds,
    };
    let summary = AuthoritySummary {
        zone: "a.example".to_owned(),
        serials: Vec::new(),
        consistent: true,
        propagation: vec![
            row("mx", "223.5.5.5", 1200),
            row("mx", "119.29.29.29", 0),
            row("spf", "223.5.5.5", 86_400),
        ],
    };
    annotate_drift(CheckKind::Mx, &mut drift, &summary);
    annotate_drift(CheckKind::Mx, &mut drift, &summary);
    assert_eq!(drift.evidence["resolvers_switch_within_seconds"], 1200);
    assert_eq!(drift.evidence["resolvers"].as_array().unwrap().len(), 2);
    assert_eq!(
        drift.message,
        "MX changed from [10 old.a.example] to [10 new.a.example]; resolvers still serve \
         the old records: users switch within 1200 s"
    );
}

#[test]
fn txt_answers_are_split_by_purpose() {
    let records = [
        RData::Txt("v=spf1 -all".to_owned()),
        RData::Txt("google-site-verification=x".to_owned()),
        RData::Txt("v=DMARC1; p=none".to_owned()),
    ];
    let spf = observe::record_set("spf", &records, 60);
    assert_eq!(spf.values, ["v=spf1 -all"]);
    let dmarc = observe::record_set("dmarc", &records, 60);
    assert_eq!(dmarc.values, ["v=DMARC1; p=none"]);
}
