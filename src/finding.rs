//! Findings: the stable, typed result of evaluating a check (codes per SPEC.md).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A mail-DNS check; the value of the `check` metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// MX records and the addresses of the MX hosts.
    Mx,
    /// The SPF policy and its recursive expansion.
    Spf,
    /// DKIM keys of the configured selectors.
    Dkim,
    /// The DMARC policy record.
    Dmarc,
    /// MTA-STS TXT record and policy file.
    MtaSts,
    /// SMTP TLS reporting record.
    TlsRpt,
    /// Delegation and authoritative consistency.
    Nameservers,
    /// DNSSEC validation of the mail records.
    Dnssec,
    /// Registration expiry and status over RDAP.
    Registration,
    /// Blocklist (DNSBL) listings of the mail addresses.
    Dnsbl,
    /// Each MX host's STARTTLS and certificate.
    SmtpTls,
    /// DANE: the TLSA records of the MX hosts against their certificates.
    Dane,
    /// BIMI: the brand indicator record and its logo.
    Bimi,
}

impl CheckKind {
    /// Every check, in report order.
    pub const ALL: [CheckKind; 13] = [
        CheckKind::Mx,
        CheckKind::Spf,
        CheckKind::Dkim,
        CheckKind::Dmarc,
        CheckKind::MtaSts,
        CheckKind::TlsRpt,
        CheckKind::Nameservers,
        CheckKind::Dnssec,
        CheckKind::Registration,
        CheckKind::Dnsbl,
        CheckKind::SmtpTls,
        CheckKind::Dane,
        CheckKind::Bimi,
    ];

    /// The label value used in metrics, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Mx => "mx",
            CheckKind::Spf => "spf",
            CheckKind::Dkim => "dkim",
            CheckKind::Dmarc => "dmarc",
            CheckKind::MtaSts => "mta_sts",
            CheckKind::TlsRpt => "tls_rpt",
            CheckKind::Nameservers => "nameservers",
            CheckKind::Dnssec => "dnssec",
            CheckKind::Registration => "registration",
            CheckKind::Dnsbl => "dnsbl",
            CheckKind::SmtpTls => "smtp_tls",
            CheckKind::Dane => "dane",
            CheckKind::Bimi => "bimi",
        }
    }
}

impl std::str::FromStr for CheckKind {
    type Err = String;

    /// The check named by its label value; the error quotes the text and lists the checks.
    fn from_str(text: &str) -> Result<CheckKind, String> {
        CheckKind::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = CheckKind::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "{text:?} is not a check; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is; the `severity` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Mail is or will be lost or rejected.
    Critical,
    /// Mail still flows, but a safeguard is weakened or close to a limit.
    Warning,
    /// Worth knowing; nothing to page about.
    Info,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! finding_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// A stable finding code (SPEC.md "Checks"). Codes are never reused for another meaning.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum FindingCode {
            $(
                #[doc = concat!("`", $code, "`")]
                #[serde(rename = $code)]
                $variant,
            )*
        }

        impl FindingCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [FindingCode] = &[$(FindingCode::$variant,)*];

            /// The code as written in SPEC.md, JSON and alerts.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingCode::$variant => $code,)*
                }
            }
        }
    };
}

finding_codes! {
    MxMissing => "mx_missing",
    MxUnexpectedHost => "mx_unexpected_host",
    MxExpectedHostMissing => "mx_expected_host_missing",
    MxHostUnresolvable => "mx_host_unresolvable",
    MxPointsToCname => "mx_points_to_cname",
    MxNull => "mx_null",
    SpfMissing => "spf_missing",
    SpfMultipleRecords => "spf_multiple_records",
    SpfSyntaxError => "spf_syntax_error",
    SpfLookupLimitExceeded => "spf_lookup_limit_exceeded",
    SpfLookupLimitNear => "spf_lookup_limit_near",
    SpfVoidLookupLimitExceeded => "spf_void_lookup_limit_exceeded",
    SpfIncludeLoop => "spf_include_loop",
    SpfExpectedIncludeMissing => "spf_expected_include_missing",
    SpfAllMismatch => "spf_all_mismatch",
    SpfPermissiveAll => "spf_permissive_all",
    SpfNotAuthorized => "spf_not_authorized",
    SpfIpsetChanged => "spf_ipset_changed",
    SpfIncludeNoRecord => "spf_include_no_record",
    DkimKeyMissing => "dkim_key_missing",
    DkimKeyRevoked => "dkim_key_revoked",
    DkimKeyWeak => "dkim_key_weak",
    DkimTestingMode => "dkim_testing_mode",
    DkimKeyInvalid => "dkim_key_invalid",
    DmarcMissing => "dmarc_missing",
    DmarcMultipleRecords => "dmarc_multiple_records",
    DmarcSyntaxError => "dmarc_syntax_error",
    DmarcPolicyNone => "dmarc_policy_none",
    DmarcPolicyWeakened => "dmarc_policy_weakened",
    DmarcPctPartial => "dmarc_pct_partial",
    DmarcExternalReportUnauthorized => "dmarc_external_report_unauthorized",
    MtaStsPolicyUnreachable => "mta_sts_policy_unreachable",
    MtaStsMxMismatch => "mta_sts_mx_mismatch",
    MtaStsIdChanged => "mta_sts_id_changed",
    TlsRptMissing => "tls_rpt_missing",
    MtaStsRecordInvalid => "mta_sts_record_invalid",
    MtaStsPolicyInvalid => "mta_sts_policy_invalid",
    TlsRptInvalid => "tls_rpt_invalid",
    NsLame => "ns_lame",
    NsAnswersDiffer => "ns_answers_differ",
    NsSerialMismatch => "ns_serial_mismatch",
    NsDelegationMismatch => "ns_delegation_mismatch",
    DnssecBogus => "dnssec_bogus",
    DnssecUnsigned => "dnssec_unsigned",
    DnssecSignatureExpiring => "dnssec_signature_expiring",
    DomainExpiring => "domain_expiring",
    DomainExpired => "domain_expired",
    DomainOnHold => "domain_on_hold",
    DomainRegistrarChanged => "domain_registrar_changed",
    DnsblListed => "dnsbl_listed",
    Drift => "drift",
    MxStarttlsMissing => "mx_starttls_missing",
    MxTlsCertExpiring => "mx_tls_cert_expiring",
    MxTlsCertExpired => "mx_tls_cert_expired",
    MxTlsCertUntrusted => "mx_tls_cert_untrusted",
    MxTlsNameMismatch => "mx_tls_name_mismatch",
    MxTlsOldVersion => "mx_tls_old_version",
    MxSmtpUnreachable => "mx_smtp_unreachable",
    MxTlsCertChanged => "mx_tls_cert_changed",
    DaneTlsaMismatch => "dane_tlsa_mismatch",
    DaneTlsaUnsigned => "dane_tlsa_unsigned",
    DaneRolloverUnsafe => "dane_rollover_unsafe",
    DaneTlsaBogus => "dane_tlsa_bogus",
    BimiInvalid => "bimi_invalid",
    BimiLogoUnreachable => "bimi_logo_unreachable",
    BimiDmarcNotEnforced => "bimi_dmarc_not_enforced",
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable machine-readable code.
    pub code: FindingCode,
    /// How bad it is.
    pub severity: Severity,
    /// One sentence for a human, quoting the offending input.
    pub message: String,
    /// What was seen: records, the server asked, from → to for drift. A JSON object.
    pub evidence: Evidence,
}

impl Finding {
    /// A finding with an empty evidence object.
    pub fn new(code: FindingCode, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity,
            message: message.into(),
            evidence: Evidence::default(),
        }
    }

    /// Adds one evidence field (builder style).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.evidence.insert(key, value);
        self
    }
}

/// A finding's evidence: a JSON object of a few fields, kept as one exactly sized vector
/// sorted by key. Every open finding of every watched domain holds one; as serde_json's
/// map (a B-tree whose nodes hold eleven entries) a single field cost ~650 bytes, here ~80.
/// Serialised exactly as that map was (an object, keys in order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence(Vec<(Box<str>, serde_json::Value)>);

/// What a missing field reads as (as with `serde_json::Value`'s indexing).
static NULL: serde_json::Value = serde_json::Value::Null;

impl Evidence {
    /// The field `key`.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        let at = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    /// Sets the field `key`.
    pub fn insert(&mut self, key: &str, value: serde_json::Value) {
        match self.0.binary_search_by(|(k, _)| (**k).cmp(key)) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => {
                self.0.reserve_exact(1);
                self.0.insert(at, (key.into(), value));
            }
        }
    }

    /// (key, value) in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// Whether it has no field.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for Evidence {
    type Output = serde_json::Value;
    /// The field `key`, `null` when absent.
    fn index(&self, key: &str) -> &serde_json::Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl PartialEq<serde_json::Value> for Evidence {
    fn eq(&self, other: &serde_json::Value) -> bool {
        other.as_object().is_some_and(|map| {
            map.len() == self.0.len() && self.iter().all(|(k, v)| map.get(k) == Some(v))
        })
    }
}

impl fmt::Display for Evidence {
    /// As JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut fields: Vec<(Box<str>, serde_json::Value)> =
            map.into_iter().map(|(k, v)| (k.into(), v)).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.shrink_to_fit();
        Ok(Evidence(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_spec_strings() {
        let json = serde_json::to_string(&FindingCode::SpfLookupLimitExceeded).unwrap();
        assert_eq!(json, "\"spf_lookup_limit_exceeded\"");
        assert_eq!(FindingCode::Drift.as_str(), "drift");
        assert_eq!(CheckKind::MtaSts.as_str(), "mta_sts");
        let f =
            Finding::new(FindingCode::MxNull, Severity::Info, "null MX").with("records", ["0 ."]);
        assert_eq!(f.evidence["records"][0], "0 .");
    }

    #[test]
    fn evidence_reads_and_serialises_as_the_json_object_it_stands_for() {
        let f = Finding::new(FindingCode::Drift, Severity::Critical, "changed")
            .with("to", ["b"])
            .with("from", ["a"])
            .with("lookups", 11)
            .with("to", ["c"]);
        let json = serde_json::json!({"from": ["a"], "lookups": 11, "to": ["c"]});
        assert_eq!(f.evidence, json);
        assert_eq!(f.evidence["lookups"], 11);
        assert_eq!(f.evidence["absent"], serde_json::Value::Null);
        assert_eq!(f.evidence.get("from"), Some(&serde_json::json!(["a"])));
        let text = serde_json::to_string(&f).unwrap();
        assert!(
            text.contains(r#""evidence":{"from":["a"],"lookups":11,"to":["c"]}"#),
            "{text}"
        );
        assert_eq!(
            f.evidence.to_string(),
            serde_json::to_string(&json).unwrap()
        );
        let back: Finding = serde_json::from_str(&text).unwrap();
        assert_eq!(back, f);
        assert_eq!(f.evidence.0.capacity(), 3);
    }
}
