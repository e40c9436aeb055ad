//! The names of maildrift's alerts (SPEC.md "Alerts"), as the config names them in
//! `alerting.alerts.<AlertName>` and as the alerting engine raises them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where the runbook lives; each alert links to its section (`#maildnsmxdrift`). The same
/// links are in `deploy/prometheus/rules.yml`.
pub const RUNBOOK_URL: &str =
    "https://github.com/maildrift/maildrift/blob/main/deploy/prometheus/RUNBOOK.md";

/// A native alert (the same names as the rules in `deploy/prometheus/rules.yml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AlertName {
    /// The MX set differs from the expectation or learned baseline.
    MailDnsMxDrift,
    /// The SPF policy differs from the expectation or learned baseline.
    MailDnsSpfDrift,
    /// The SPF expansion needs more than 10 DNS lookups (critical) or 9–10 (warning).
    MailDnsSpfLookupLimit,
    /// A configured DKIM selector publishes no key.
    MailDnsDkimMissing,
    /// The DMARC policy is `none` or weaker than expected.
    MailDnsDmarcWeakened,
    /// The authoritative nameservers give different answers or SOA serials.
    MailDnsNameserversInconsistent,
    /// A check gets no conclusive DNS answer.
    MailDnsCheckFailing,
    /// The domain's registration expires within 30 days (warning) or 7 days, expired, or
    /// is on hold at the registry (critical).
    MailDomainExpiring,
    /// An MX host or authorized sending address is listed in a DNS blocklist.
    MailDnsblListed,
    /// An MX host's certificate expires within `defaults.smtp.cert_warning` (warning) or
    /// 7 days, or has expired (critical).
    MailMxCertificateExpiring,
}

impl AlertName {
    /// Every native alert.
    pub const ALL: [AlertName; 10] = [
        AlertName::MailDnsMxDrift,
        AlertName::MailDnsSpfDrift,
        AlertName::MailDnsSpfLookupLimit,
        AlertName::MailDnsDkimMissing,
        AlertName::MailDnsDmarcWeakened,
        AlertName::MailDnsNameserversInconsistent,
        AlertName::MailDnsCheckFailing,
        AlertName::MailDomainExpiring,
        AlertName::MailDnsblListed,
        AlertName::MailMxCertificateExpiring,
    ];

    /// The `alertname` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertName::MailDnsMxDrift => "MailDnsMxDrift",
            AlertName::MailDnsSpfDrift => "MailDnsSpfDrift",
            AlertName::MailDnsSpfLookupLimit => "MailDnsSpfLookupLimit",
            AlertName::MailDnsDkimMissing => "MailDnsDkimMissing",
            AlertName::MailDnsDmarcWeakened => "MailDnsDmarcWeakened",
            AlertName::MailDnsNameserversInconsistent => "MailDnsNameserversInconsistent",
            AlertName::MailDnsCheckFailing => "MailDnsCheckFailing",
            AlertName::MailDomainExpiring => "MailDomainExpiring",
            AlertName::MailDnsblListed => "MailDnsblListed",
            AlertName::MailMxCertificateExpiring => "MailMxCertificateExpiring",
        }
    }

    /// Parses an alert name as written in the config; the error quotes it and lists the
    /// known names.
    pub fn parse(text: &str) -> Result<AlertName, String> {
        if let Some(name) = Self::ALL.iter().find(|n| n.as_str() == text.trim()) {
            return Ok(*name);
        }
        if text.trim() == "MailDriftDown" {
            return Err(
                "\"MailDriftDown\" is a Prometheus rule only (maildrift cannot report itself down)"
                    .to_string(),
            );
        }
        let known: Vec<&str> = Self::ALL.iter().map(|n| n.as_str()).collect();
        Err(format!(
            "unknown alert {text:?}; expected one of {}",
            known.join(", ")
        ))
    }

    /// The runbook link of this alert.
    pub fn runbook_url(self) -> String {
        format!("{RUNBOOK_URL}#{}", self.as_str().to_ascii_lowercase())
    }
}

impl fmt::Display for AlertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
