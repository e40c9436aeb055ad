//! TLSA matching on chains made with rcgen: DANE-EE with every selector and matching type,
//! DANE-TA anchoring the end entity (name checked), unusable usages, rollover awareness.
//! TLSA in signed and unsigned zones, against a real STARTTLS server, is in
//! `tests/it/mailpath/`.

use super::*;
use crate::checks::smtp_tls::{
    AddressProbe, CertificateView, HostProbes, TlsSession, Trust, Verification, sha256, spki,
};
use rustls_pki_types::CertificateDer;

const HOST: &str = "mx1.example.net";

struct Pki {
    leaf: CertificateDer<'static>,
    ca: CertificateDer<'static>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A CA and a leaf for `name` valid for `days` more days.
fn pki(name: &str, days: u64) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "DANE test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + std::time::Duration::from_secs(unix_now() as u64 - 86_400);
    params.not_after = epoch + std::time::Duration::from_secs(unix_now() as u64 + days * 86_400);
    let leaf = params.signed_by(&leaf_key, &ca).unwrap();
    Pki {
        leaf: leaf.der().clone(),
        ca: ca.der().clone(),
    }
}

fn record(usage: u8, selector: u8, matching: u8, cert: &CertificateDer<'_>) -> TlsaRecord {
    let selected = match selector {
        0 => cert.as_ref().to_vec(),
        _ => spki(cert.as_ref()).unwrap(),
    };
    let data = match matching {
        0 => selected,
        1 => sha256(&selected),
        _ => ring::digest::digest(&ring::digest::SHA512, &selected)
            .as_ref()
            .to_vec(),
    };
    TlsaRecord {
        usage,
        selector,
        matching,
        data,
    }
}

#[test]
fn dane_ee_matches_with_every_selector_and_matching_type() {
    let pki = pki(HOST, 90);
    let chain = vec![pki.leaf.clone(), pki.ca.clone()];
    for (selector, matching) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
        let records = [record(DANE_EE, selector, matching, &pki.leaf)];
        assert_eq!(
            match_chain(&records, &chain, HOST, unix_now()),
            Ok(Matched::EndEntity),
            "3 {selector} {matching}"
        );
    }
    // DANE-EE ignores the name (RFC 7672 §3.1.1).
    let records = [record(DANE_EE, 1, 1, &pki.leaf)];
    assert_eq!(
        match_chain(&records, &chain, "other.example", unix_now()),
        Ok(Matched::EndEntity)
    );
    let other = self::pki(HOST, 90);
    let records = [record(DANE_EE, 1, 1, &other.leaf)];
    let why = match_chain(&records, &chain, HOST, unix_now()).unwrap_err();
    assert!(why.contains("no usable TLSA record"), "{why}");
}

#[test]
fn dane_ta_anchors_the_end_entity_and_checks_its_name() {
    let pki = pki(HOST, 90);
    let chain = vec![pki.leaf.clone(), pki.ca.clone()];
    let records = [record(DANE_TA, 0, 1, &pki.ca)];
    assert_eq!(
        match_chain(&records, &chain, HOST, unix_now()),
        Ok(Matched::TrustAnchor)
    );
    let why = match_chain(&records, &chain, "mx9.example.net", unix_now()).unwrap_err();
    assert!(why.contains("not valid for mx9.example.net"), "{why}");
    // The anchor must be in the chain the server sends.
    let why = match_chain(&records, &chain[..1], HOST, unix_now()).unwrap_err();
    assert!(why.contains("no usable TLSA record"), "{why}");
    // Another CA's leaf does not chain to this anchor.
    let other = self::pki(HOST, 90);
    let mixed = vec![other.leaf.clone(), pki.ca.clone()];
    let why = match_chain(&records, &mixed, HOST, unix_now()).unwrap_err();
    assert!(why.contains("does not chain to it"), "{why}");
}

#[test]
fn pkix_usages_are_ignored_by_smtp() {
    let pki = pki(HOST, 90);
    let chain = vec![pki.leaf.clone(), pki.ca.clone()];
    let records = [record(1, 1, 1, &pki.leaf), record(0, 0, 1, &pki.ca)];
    assert!(records.iter().all(|r| !r.usable()));
    assert!(match_chain(&records, &chain, HOST, unix_now()).is_err());
    assert_eq!(
        record(DANE_EE, 1, 1, &pki.leaf).to_string(),
        format!(
            "3 1 1 {}",
            crate::checks::smtp_tls::hex(&record(3, 1, 1, &pki.leaf).data)
        )
    );
}

fn smtp_observation(pki: &Pki) -> SmtpTlsObservation {
    let chain = vec![pki.leaf.clone(), pki.ca.clone()];
    let session = TlsSession {
        version: "TLSv1.3".to_owned(),
        cipher: "TLS13_AES_128_GCM_SHA256".to_owned(),
        certificate: CertificateView::parse(&chain[0]),
        chain,
        verification: Verification {
            trust: Trust::Trusted,
            host_name: Ok(()),
        },
    };
    SmtpTlsObservation {
        domain: "example.com".to_owned(),
        enabled: true,
        result: Ok(vec![HostProbes {
            host: HOST.to_owned(),
            addresses: vec![Arc::new(AddressProbe {
                host: HOST.to_owned(),
                address: "192.0.2.1:25".parse().unwrap(),
                outcome: ProbeOutcome::Tls(Box::new(session)),
            })],
            not_asked: Vec::new(),
            unknown: None,
        }]),
        skipped: Vec::new(),
    }
}

fn tlsa_set(records: Vec<TlsaRecord>) -> TlsaSet {
    let set = SignedSet {
        name: Name::root(),
        rtype: RecordType::TLSA,
        records: Vec::new(),
        rrsigs: Vec::new(),
    };
    TlsaSet {
        records,
        ttl: 300,
        keys: ZoneKeys {
            zone: Name::root(),
            set: set.clone(),
            keys: Vec::new(),
            ds: None,
        },
        set,
    }
}

fn codes(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| format!("{}:{}", f.code, f.severity))
        .collect()
}

#[test]
fn a_certificate_about_to_change_needs_the_next_tlsa_record() {
    const WINDOW: Duration = Duration::from_secs(21 * 86_400);
    let expiring = pki(HOST, 10);
    let smtp = smtp_observation(&expiring);
    let current = record(DANE_EE, 1, 1, &expiring.leaf);
    let found = match_host(
        HOST,
        &tlsa_set(vec![current.clone()]),
        &smtp,
        WINDOW,
        unix_now(),
    );
    assert_eq!(codes(&found), ["dane_rollover_unsafe:warning"]);
    assert_eq!(found[0].evidence["presented_3_1_1"], current.to_string());
    // The next key's record published beside the current one: safe.
    let next = record(DANE_EE, 1, 1, &pki(HOST, 90).leaf);
    let set = tlsa_set(vec![current.clone(), next]);
    assert!(match_host(HOST, &set, &smtp, WINDOW, unix_now()).is_empty());
    // A DANE-TA record covers a renewal by the same CA: safe.
    let set = tlsa_set(vec![current, record(DANE_TA, 0, 1, &expiring.ca)]);
    assert!(match_host(HOST, &set, &smtp, WINDOW, unix_now()).is_empty());
    // Far from expiry: nothing to say.
    let fresh = pki(HOST, 90);
    let set = tlsa_set(vec![record(DANE_EE, 1, 1, &fresh.leaf)]);
    assert!(match_host(HOST, &set, &smtp_observation(&fresh), WINDOW, unix_now()).is_empty());
    // A TLSA set naming another key: DANE senders defer mail.
    let set = tlsa_set(vec![record(DANE_EE, 1, 1, &pki(HOST, 90).leaf)]);
    let found = match_host(HOST, &set, &smtp_observation(&fresh), WINDOW, unix_now());
    assert_eq!(codes(&found), ["dane_tlsa_mismatch:critical"]);
}
