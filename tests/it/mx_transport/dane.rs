//! DANE against a STARTTLS server on loopback: TLSA records in the provider's zone, signed
//! in the test (ldns-keygen, ldns-signzone, as the DNSSEC tests do) or not, matching or not
//! the chain the server presents (DANE-EE 3 1 1 and DANE-TA 2 0 1).

use super::{check, codes, customer_zone, provider_zone, report};
use crate::analysis::dnssec::{ldns_installed, sign_zone};
use crate::harness::dns_server;
use crate::tls_servers::{Smtp, TestCa, smtp_server};
use maildrift::checks::smtp_tls::{hex, sha256, spki};
use maildrift::finding::CheckKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

const HOST: &str = "mx1.provider.example";

/// "3 1 1" of a certificate: SHA-256 of its SubjectPublicKeyInfo.
fn dane_ee(cert: &[u8]) -> String {
    format!("3 1 1 {}", hex(&sha256(&spki(cert).unwrap())))
}

/// "2 0 1" of a CA certificate: SHA-256 of the whole certificate.
fn dane_ta(cert: &[u8]) -> String {
    format!("2 0 1 {}", hex(&sha256(cert)))
}

/// `zone` (of `origin`) signed with fresh keys, valid from yesterday for 30 days; or as it
/// is.
fn signed_if(origin: &str, zone: String, signed: bool) -> String {
    if !signed {
        return zone;
    }
    let keys = tempfile::tempdir().unwrap();
    sign_zone(keys.path(), origin, &zone, -1, 30)
}

/// A config watching shop.example through `dns`, the SMTP of its MX hosts on `port`
/// trusting the CA in `ca_file`.
fn shop_config(dns: SocketAddr, port: u16, ca_file: &Path) -> String {
    format!(
        "defaults:\n  timeout: 8s\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  smtp: {{ port: {port}, timeout: 2s, ca_file: \"{ca}\" }}\ndomains:\n  - name: shop.example\n",
        ca = ca_file.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsa_matching_and_not_in_signed_and_unsigned_zones() {
    if !ldns_installed("tlsa_matching_and_not_in_signed_and_unsigned_zones") {
        return;
    }
    let ca = TestCa::new("DANE test CA");
    let leaf = ca.leaf(&[HOST], 90);
    let server = smtp_server(
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        Smtp::StartTls(leaf.clone()),
    )
    .await;
    let other_ca = TestCa::new("another CA");
    let other = other_ca.leaf(&[HOST], 90);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let cases = [
        (
            "DANE-EE 3 1 1 matching, signed",
            dane_ee(&leaf.chain[0]),
            true,
            vec![],
        ),
        (
            "DANE-EE 3 1 1 of another key, signed",
            dane_ee(&other.chain[0]),
            true,
            vec!["dane_tlsa_mismatch:critical"],
        ),
        (
            "DANE-TA 2 0 1 matching, signed",
            dane_ta(&ca.der()),
            true,
            vec![],
        ),
        (
            "DANE-TA 2 0 1 of another CA, signed",
            dane_ta(&other_ca.der()),
            true,
            vec!["dane_tlsa_mismatch:critical"],
        ),
        (
            "DANE-EE 3 1 1 matching, unsigned zone",
            dane_ee(&leaf.chain[0]),
            false,
            vec!["dane_tlsa_unsigned:warning"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, tlsa, signed, want) in cases {
        let zone = provider_zone(&format!("_25._tcp.mx1 TLSA {tlsa}"));
        let zone = signed_if("provider.example", zone, signed);
        let dns = dns_server(&[&zone, &customer_zone("shop.example", "")]).await;
        let yaml = shop_config(dns.addr(), server.port, &ca_file);
        let reports = check(&yaml).await;
        let dane = report(&reports[0], CheckKind::Dane);
        let smtp = report(&reports[0], CheckKind::SmtpTls);
        let got = codes(dane);
        let record = format!("{HOST} {}", tlsa.to_ascii_lowercase());
        let recorded = dane
            .records
            .first()
            .is_some_and(|r| r.values == [record.clone()]);
        if !dane.success || !smtp.success || got != want || !recorded {
            let messages: Vec<&str> = dane.findings.iter().map(|f| f.message.as_str()).collect();
            failures.push(format!(
                "{name}: success {}/{}, {got:?}, want {want:?}, records {:?} (want {record}); {messages:?} {:?}",
                dane.success, smtp.success, dane.records, dane.error
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A company zone whose MX host is in the zone itself, with that host's TLSA record.
fn own_host_zone(tlsa: &str) -> String {
    format!(
        r#"$ORIGIN shop.example.
$TTL 300
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 mx1.shop.example.
mx1      A   127.0.0.1
@        TXT "v=spf1 -all"
_dmarc   TXT "v=DMARC1; p=reject"
_25._tcp.mx1 TLSA {tlsa}
"#
    )
}

/// The query-count rule: a host inside the domain's own zone is asked for TLSA only when
/// that zone is signed (nothing below an unsigned zone validates, so senders never use its
/// TLSA). Signed, the same host is asked and its record judged.
#[tokio::test(flavor = "multi_thread")]
async fn tlsa_of_a_host_in_the_domains_unsigned_zone_is_not_asked() {
    if !ldns_installed("tlsa_of_a_host_in_the_domains_unsigned_zone_is_not_asked") {
        return;
    }
    const OWN_HOST: &str = "mx1.shop.example";
    let ca = TestCa::new("DANE test CA");
    let leaf = ca.leaf(&[OWN_HOST], 90);
    let server = smtp_server(
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        Smtp::StartTls(leaf.clone()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let tlsa = dane_ee(&leaf.chain[0]);
    for signed in [false, true] {
        let zone = signed_if("shop.example", own_host_zone(&tlsa), signed);
        let dns = dns_server(&[&zone]).await;
        let yaml = shop_config(dns.addr(), server.port, &ca_file);
        let reports = check(&yaml).await;
        let dane = report(&reports[0], CheckKind::Dane);
        let asked = dns.queries_for(&format!("_25._tcp.{OWN_HOST}"));
        assert!(dane.success, "signed {signed}: {:?}", dane.error);
        assert_eq!(codes(dane), Vec::<String>::new(), "signed {signed}");
        let values = &dane.records[0].values;
        if signed {
            assert!(asked > 0, "a signed zone's host must be asked");
            assert_eq!(
                values,
                &[format!("{OWN_HOST} {}", tlsa.to_ascii_lowercase())]
            );
        } else {
            assert_eq!(asked, 0, "a host in an unsigned zone was asked for TLSA");
            assert!(values.is_empty(), "{values:?}");
        }
    }
}
