//! What an MX host's certificate says (names, issuer, validity, fingerprint) and how it
//! verifies: the chain against the built-in roots plus `defaults.smtp.ca_file`, judged at a
//! time inside the certificate's validity so that "expired" and "untrusted" stay apart, and
//! the name against the MX host (RFC 6125 wildcards, through webpki).

use crate::checks::https::root_store;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use x509_parser::extensions::GeneralName;

/// The end-entity certificate, as shown in records and evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateView {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names of the subjectAltName extension, lower-cased.
    pub names: Vec<String>,
    /// Start of validity (unix seconds).
    pub not_before: i64,
    /// End of validity (unix seconds).
    pub not_after: i64,
    /// SHA-256 of the certificate (hex): what `mx_tls_cert_changed` compares.
    pub sha256: String,
}

/// Whether the chain reaches a trusted root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// It does (at a time inside the certificate's validity).
    Trusted,
    /// It does not; why.
    Untrusted(String),
    /// Could not be judged (the CA file became unreadable); why.
    Unknown(String),
}

/// The certificate's verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The chain.
    pub trust: Trust,
    /// The name against the MX host: `Err(why)` when not valid for it.
    pub host_name: Result<(), String>,
}

/// Unix seconds of `time` (0 before 1970).
pub fn unix_seconds(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// The DER SubjectPublicKeyInfo of a certificate (DANE selector 1).
pub fn spki(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.tbs_certificate.subject_pki.raw.to_vec())
}

impl CertificateView {
    /// Reads a DER certificate; the error says what is malformed.
    pub fn parse(der: &CertificateDer<'_>) -> Result<CertificateView, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("the certificate does not parse: {e}"))?;
        let names = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let validity = cert.validity();
        Ok(CertificateView {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            sha256: hex(&sha256(der.as_ref())),
        })
    }

    /// Seconds left until `not_after` at `now` (unix seconds); negative once expired.
    pub fn seconds_left(&self, now: i64) -> i64 {
        self.not_after - now
    }
}

impl Verification {
    /// Verifies `chain` (end entity first) for `host` at `now`, clamped into the
    /// certificate's validity.
    pub fn of(
        host: &str,
        chain: &[CertificateDer<'static>],
        view: &CertificateView,
        ca_file: Option<&Path>,
        now: i64,
    ) -> Verification {
        let Some(leaf) = chain.first() else {
            return Verification::failed("the server sent no certificate");
        };
        let parsed = match rustls::server::ParsedCertificate::try_from(leaf) {
            Ok(parsed) => parsed,
            Err(error) => return Verification::failed(&error.to_string()),
        };
        let host_name = match ServerName::try_from(host) {
            Ok(name) => rustls::client::verify_server_name(&parsed, &name).map_err(|_| {
                format!(
                    "the certificate names {} but not {host}",
                    list_or_none(&view.names)
                )
            }),
            Err(error) => Err(format!("{host:?} is not a host name: {error}")),
        };
        let trust = match root_store(ca_file) {
            Err(error) => Trust::Unknown(error),
            Ok(roots) => {
                let at = now.clamp(view.not_before, view.not_after.max(view.not_before));
                let at = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));
                let algorithms = rustls::crypto::ring::default_provider()
                    .signature_verification_algorithms
                    .all;
                match rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &roots,
                    &chain[1..],
                    at,
                    algorithms,
                ) {
                    Ok(()) => Trust::Trusted,
                    Err(error) => Trust::Untrusted(describe(&error)),
                }
            }
        };
        Verification { trust, host_name }
    }

    /// Nothing could be verified: `why`.
    pub fn failed(why: &str) -> Verification {
        Verification {
            trust: Trust::Untrusted(why.to_owned()),
            host_name: Err(why.to_owned()),
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "no DNS name".to_owned()
    } else {
        names.join(", ")
    }
}

/// A human reading of a chain error.
fn describe(error: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(E::UnknownIssuer) => {
            "the chain does not lead to a trusted root (unknown issuer or self-signed)".to_owned()
        }
        rustls::Error::InvalidCertificate(E::BadSignature) => {
            "a signature in the chain does not verify".to_owned()
        }
        rustls::Error::InvalidCertificate(E::Expired | E::ExpiredContext { .. }) => {
            "a certificate of the chain has expired".to_owned()
        }
        other => other.to_string(),
    }
}

/// `2026-01-31T12:00:00Z` for unix seconds (UTC), through the certificate parser's time.
pub fn utc(seconds: i64) -> String {
    match x509_parser::time::ASN1Time::from_timestamp(seconds) {
        Ok(time) => {
            let t = time.to_datetime();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => format!("@{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }
}
