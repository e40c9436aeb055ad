//! `defaults.mta_sts:` and `defaults.dnssec:` (and, through `reputation.rs`, `defaults.rdap:`
//! and `defaults.dnsbl:`): settings of the checks that need more than
//! DNS answers (an HTTPS fetch, a validation window). Validated here, copied into every
//! domain's [`AnalysisSettings`].

use super::issues::Issues;
use super::raw::{RawDnssec, RawMtaSts};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Check settings every domain inherits from `defaults:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisSettings {
    /// How the MTA-STS policy is fetched.
    pub mta_sts: MtaStsSettings,
    /// How DNSSEC is judged.
    pub dnssec: DnssecSettings,
    /// How registration data is asked over RDAP.
    pub rdap: super::RdapSettings,
    /// Which DNS blocklists are asked.
    pub dnsbl: super::DnsblSettings,
    /// How the MX hosts are asked over SMTP (`smtp_tls`, `dane`).
    pub smtp: super::SmtpSettings,
    /// BIMI selectors and logo fetches.
    pub bimi: super::BimiSettings,
}

/// `defaults.mta_sts:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaStsSettings {
    /// Extra trusted CA certificates (PEM) besides the built-in Mozilla roots: for private
    /// PKI and tests. Checked at load time: readable, at least one certificate.
    pub ca_file: Option<PathBuf>,
    /// HTTPS port of `mta-sts.<domain>`: 443 (RFC 8461); other values for tests and
    /// proxies.
    pub port: u16,
    /// Deadline of one policy fetch (connect, TLS, response).
    pub timeout: Duration,
}

/// `defaults.dnssec:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnssecSettings {
    /// A signature expiring within this window is `dnssec_signature_expiring`.
    pub expiry_warning: Duration,
}

impl Default for AnalysisSettings {
    fn default() -> AnalysisSettings {
        AnalysisSettings {
            mta_sts: MtaStsSettings {
                ca_file: None,
                port: 443,
                timeout: Duration::from_secs(10),
            },
            dnssec: DnssecSettings {
                expiry_warning: Duration::from_secs(7 * 24 * 3600),
            },
            rdap: super::RdapSettings::default(),
            dnsbl: super::DnsblSettings {
                spf_max_addresses: super::reputation::DEFAULT_SPF_MAX_ADDRESSES,
                ..super::DnsblSettings::default()
            },
            smtp: super::SmtpSettings::default(),
            bimi: super::BimiSettings::default(),
        }
    }
}

/// Validates the two sections (absent ones keep their defaults).
pub(crate) fn validate(
    mta_sts: Option<RawMtaSts>,
    dnssec: Option<RawDnssec>,
    issues: &mut Issues<'_>,
) -> AnalysisSettings {
    let mut out = AnalysisSettings::default();
    if let Some(raw) = mta_sts {
        if let Some(file) = raw.ca_file {
            let path = PathBuf::from(file.as_str());
            match read_ca_file(&path) {
                Ok(_) => out.mta_sts.ca_file = Some(path),
                Err(message) => issues.value("defaults.mta_sts.ca_file", message),
            }
        }
        if let Some(port) = raw.port {
            match port.as_str().trim().parse::<u16>() {
                Ok(port) if port > 0 => out.mta_sts.port = port,
                _ => issues.value(
                    "defaults.mta_sts.port",
                    format!("invalid port {:?}: expected 1 to 65535", port.as_str()),
                ),
            }
        }
        if let Some(text) = raw.timeout
            && let Some(timeout) = issues.duration(&text, "defaults.mta_sts.timeout", true)
        {
            out.mta_sts.timeout = timeout;
        }
    }
    if let Some(raw) = dnssec
        && let Some(text) = raw.expiry_warning
        && let Some(window) = issues.duration(&text, "defaults.dnssec.expiry_warning", true)
    {
        out.dnssec.expiry_warning = window;
    }
    out
}

/// Reads a PEM file of CA certificates; the error quotes the path.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("CA file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
pub(super) mod tests {
    use crate::config::Config;
    use std::path::Path;

    /// Parses a config whose `defaults:` holds `defaults` and one domain.
    pub(in crate::config) fn parse(defaults: &str) -> Result<Config, String> {
        let text = format!("defaults:\n{defaults}domains:\n  - name: example.com\n");
        Config::parse(&text, Path::new("t.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_when_absent() {
        let config = parse("  interval: 5m\n").unwrap();
        let analysis = &config.domains[0].analysis;
        assert_eq!(analysis.mta_sts.port, 443);
        assert_eq!(analysis.mta_sts.ca_file, None);
        assert_eq!(analysis.dnssec.expiry_warning.as_secs(), 7 * 86400);
    }

    #[test]
    fn settings_are_validated_with_positions() {
        let err = parse(
            "  mta_sts: { ca_file: /nonexistent/ca.pem, port: 0, timeout: 0s }\n  dnssec: { expiry_warning: soon }\n",
        )
        .unwrap_err();
        assert!(
            err.contains(
                "t.yml:2:23: defaults.mta_sts.ca_file: cannot read CA file /nonexistent/ca.pem"
            ),
            "{err}"
        );
        assert!(
            err.contains("defaults.mta_sts.port: invalid port \"0\""),
            "{err}"
        );
        assert!(
            err.contains("defaults.mta_sts.timeout: \"0s\" must be greater than zero"),
            "{err}"
        );
        assert!(err.contains("defaults.dnssec.expiry_warning:"), "{err}");
        let err = parse("  mta_sts: { cafile: x }\n").unwrap_err();
        assert!(err.contains("unknown field `cafile`"), "{err}");
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = parse(&format!(
            "  mta_sts: {{ ca_file: \"{}\" }}\n",
            empty.display()
        ))
        .unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.pem()).unwrap();
        let config = parse(&format!(
            "  mta_sts: {{ ca_file: \"{}\", port: 8443, timeout: 3s }}\n  dnssec: {{ expiry_warning: 2d }}\n",
            good.display()
        ))
        .unwrap();
        let analysis = &config.domains[0].analysis;
        assert_eq!(analysis.mta_sts.ca_file.as_deref(), Some(good.as_path()));
        assert_eq!(analysis.mta_sts.port, 8443);
        assert_eq!(analysis.mta_sts.timeout.as_secs(), 3);
        assert_eq!(analysis.dnssec.expiry_warning.as_secs(), 2 * 86400);
    }
}
