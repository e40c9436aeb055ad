//! DKIM tests: the table in `tests/fixtures/checks/dkim.yaml`, the DER walk, the chain
//! reported by a real resolver.

use super::*;
use crate::checks::{Registry, fixture};
use crate::dns::fake::FakeDns;
use std::sync::Arc;

#[tokio::test]
async fn fixture_cases() {
    let cases = fixture::load("dkim.yaml");
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let setup = case.setup(Registry::empty().with(Dkim));
        let report = setup.report().await;
        let mut problems = case.mismatches(&report);
        let bits = fixture::gauge(&report, &KEY_BITS);
        if let Some(want) = case.want.get("bits") {
            let got: serde_json::Map<String, serde_json::Value> = bits
                .map(|g| g.samples.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|(s, b)| (s[0].to_string(), (b as u32).into()))
                .collect();
            if &serde_json::Value::Object(got.clone()) != want {
                problems.push(format!("bits {got:?}, want {want}"));
            }
        }
        if report.success != bits.is_some() {
            problems.push("key_bits disagrees with success".to_owned());
        }
        for problem in problems {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn der_walk_rejects_truncated_and_foreign_keys() {
    assert_eq!(key::rsa_modulus_bits(&[]), None);
    assert_eq!(key::rsa_modulus_bits(&[0x30, 0x82, 0x01]), None);
    // SEQUENCE { INTEGER 0x00 0x80 (8 bits after the sign byte), INTEGER 3 }.
    assert_eq!(
        key::rsa_modulus_bits(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x03]),
        Some(8)
    );
    // The same with an EC algorithm OID is not RSA.
    let ec_spki = [
        0x30, 0x0e, 0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x03, 0x01,
        0x00,
    ];
    assert_eq!(key::rsa_modulus_bits(&ec_spki), None);
}

#[test]
fn summaries_change_with_the_key_and_keep_no_raw_key() {
    let parse = |p: &str| SelectorObservation {
        selector: "s".into(),
        name: "s._domainkey.example.com".into(),
        cname_chain: Vec::new(),
        records: vec![format!("p={p}")],
        ttl: Some(60),
        key: Some(DkimKey::parse(&format!("k=ed25519; p={p}"))),
    };
    let a = parse("AiYWhY9O7KHQkrfrNAaKwphKvDWUgqQMdZQRQ72et/4=");
    let b = parse("BiYWhY9O7KHQkrfrNAaKwphKvDWUgqQMdZQRQ72et/4=");
    assert!(
        a.summary().starts_with("s: k=ed25519 bits=256 key="),
        "{}",
        a.summary()
    );
    assert_ne!(a.summary(), b.summary());
    assert!(!a.summary().contains("AiYW"));
}

#[tokio::test]
async fn alias_reported_in_the_zone_answer_is_followed_through_the_resolver() {
    // The zone's answer names the alias target without its records (another zone).
    struct AliasOnly;
    impl DnsLookup for AliasOnly {
        fn lookup<'a>(
            &'a self,
            _name: &'a str,
            _rtype: RecordType,
        ) -> futures::future::BoxFuture<'a, crate::dns::LookupResult> {
            let mut answer = Answer::empty(crate::dns::AnswerStatus::NoData);
            answer.cname_chain = vec!["key.provider.example".to_owned()];
            Box::pin(std::future::ready(Ok(answer)))
        }
    }
    let recursive = FakeDns::new();
    recursive.txt(
        "key.provider.example",
        &["k=ed25519; p=AiYWhY9O7KHQkrfrNAaKwphKvDWUgqQMdZQRQ72et/4="],
    );
    let view = DnsView::new(Arc::new(AliasOnly), Arc::new(recursive));
    let expect = DkimExpectation {
        selectors: vec!["s1".into()],
    };
    let observation = observe("example.com", &view, Some(&expect)).await;
    assert_eq!(observation.key_bits(), Some(vec![("s1".to_owned(), 256)]));
    let report = evaluate("example.com", &observation);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.records[0].values[0].contains("via key.provider.example"));
}

/// Found by `fuzz/run.sh` (dkim_key): a malformed key with a multi-byte character near its
/// start panicked while shortening it for the error message.
#[test]
fn a_key_with_non_ascii_characters_is_an_error_not_a_panic() {
    // Byte 20 of the key falls inside U+0708 (bytes 19..21), as in the fuzzer's input.
    let record = "v=DKIM1; k=rsa; p=IGfMA0GCSqGSIb    c\u{708}ecYtIxN2S    AQAB";
    assert!(DkimKey::parse(record).is_err());
    let record = format!("v=DKIM1; p=a{}", "\u{e9}".repeat(13));
    assert!(DkimKey::parse(&record).is_err());
}
