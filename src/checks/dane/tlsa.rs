//! TLSA records (RFC 6698) as SMTP uses them (RFC 7672): matching a record against the
//! chain a host presented, DANE-EE (3) against the end-entity certificate alone (names and
//! dates ignored, §3.1.1), DANE-TA (2) against a certificate of the chain that then anchors
//! the end entity, whose name is checked (§3.1.2). Pure functions.

use crate::checks::smtp_tls::{hex, sha256, spki};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// DANE-TA: a trust anchor of the chain.
pub const DANE_TA: u8 = 2;
/// DANE-EE: the end-entity certificate itself.
pub const DANE_EE: u8 = 3;

/// One TLSA record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TlsaRecord {
    /// Certificate usage (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE).
    pub usage: u8,
    /// 0: the whole certificate; 1: its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0: the data itself; 1: SHA-256; 2: SHA-512.
    pub matching: u8,
    /// The certificate association data.
    #[serde(serialize_with = "as_hex")]
    pub data: Vec<u8>,
}

fn as_hex<S: serde::Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex(data))
}

impl fmt::Display for TlsaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            hex(&self.data)
        )
    }
}

impl TlsaRecord {
    /// Whether SMTP senders use this record (RFC 7672 §3.1.3: only DANE-TA and DANE-EE,
    /// with a known selector and matching type).
    pub fn usable(&self) -> bool {
        matches!(self.usage, DANE_TA | DANE_EE) && self.selector <= 1 && self.matching <= 2
    }

    /// Whether this record's data is the association of `cert`.
    pub fn associates(&self, cert: &CertificateDer<'_>) -> bool {
        let selected = match self.selector {
            0 => Some(cert.as_ref().to_vec()),
            1 => spki(cert.as_ref()),
            _ => None,
        };
        let Some(selected) = selected else {
            return false;
        };
        let digest = match self.matching {
            0 => selected,
            1 => sha256(&selected),
            2 => ring::digest::digest(&ring::digest::SHA512, &selected)
                .as_ref()
                .to_vec(),
            _ => return false,
        };
        digest == self.data
    }

    /// The "3 1 1" record of an end-entity certificate (what to publish for it).
    pub fn dane_ee_311(cert: &CertificateDer<'_>) -> Option<TlsaRecord> {
        Some(TlsaRecord {
            usage: DANE_EE,
            selector: 1,
            matching: 1,
            data: sha256(&spki(cert.as_ref())?),
        })
    }
}

/// How a chain matched a TLSA set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    /// A DANE-EE record names the end-entity certificate.
    EndEntity,
    /// A DANE-TA record names a certificate of the chain that anchors the end entity.
    TrustAnchor,
}

/// Matches `chain` (end entity first) presented by `host` against the usable `records` at
/// `now` (unix seconds); `Err(why)` when none matches.
pub fn match_chain(
    records: &[TlsaRecord],
    chain: &[CertificateDer<'static>],
    host: &str,
    now: i64,
) -> Result<Matched, String> {
    let Some(leaf) = chain.first() else {
        return Err("the server sent no certificate".to_owned());
    };
    let usable: Vec<&TlsaRecord> = records.iter().filter(|r| r.usable()).collect();
    if usable
        .iter()
        .any(|r| r.usage == DANE_EE && r.associates(leaf))
    {
        return Ok(Matched::EndEntity);
    }
    let mut why = Vec::new();
    for record in usable.iter().filter(|r| r.usage == DANE_TA) {
        for (index, anchor) in chain.iter().enumerate() {
            if !record.associates(anchor) {
                continue;
            }
            match anchored(leaf, &chain[1..], anchor, host, now) {
                Ok(()) => return Ok(Matched::TrustAnchor),
                Err(error) => why.push(format!(
                    "DANE-TA {record} names certificate {index} of the chain, but {error}"
                )),
            }
        }
    }
    if why.is_empty() {
        why.push("no usable TLSA record names the end-entity certificate (DANE-EE) or a certificate of the chain (DANE-TA)".to_owned());
    }
    Err(why.join("; "))
}

/// Whether `leaf` chains to `anchor` at `now` and is valid for `host`.
fn anchored(
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    anchor: &CertificateDer<'static>,
    host: &str,
    now: i64,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(anchor.clone())
        .map_err(|e| format!("it is not a usable trust anchor ({e})"))?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf).map_err(|e| e.to_string())?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        intermediates,
        at,
        algorithms,
    )
    .map_err(|e| format!("the end-entity certificate does not chain to it ({e})"))?;
    let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
    rustls::client::verify_server_name(&parsed, &name)
        .map_err(|_| format!("the end-entity certificate is not valid for {host}"))
}
