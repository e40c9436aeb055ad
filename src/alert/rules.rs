//! Which alerts a check result raises (SPEC.md "Alerts"): alert names, their labels, and the
//! annotation text (summary, description with from → to, server and TTL, runbook link).

use super::AlertKey;
use crate::config::DomainConfig;
pub use crate::config::{AlertName, RUNBOOK_URL};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use crate::monitor::{CheckStatus, CheckUpdate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The path of a domain's page under the daemon's external URL (the alerts' `generatorURL`
/// and the link in webhook messages).
pub fn domain_page_path(domain: &str) -> String {
    format!("/domains/{domain}")
}

/// What one check result says about one alert.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The condition holds; the alert would say this.
    Active(AlertContent),
    /// The condition does not hold (a conclusive answer says so).
    Inactive,
    /// DNS did not answer: neither raise nor clear.
    Unknown,
}

/// What an alert says: its labels, annotations and link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertContent {
    /// `alertname`, `domain`, `check`, `severity` and the domain's own labels.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook_url`.
    pub annotations: BTreeMap<String, String>,
    /// The domain's page on this daemon.
    pub generator_url: String,
    /// What the annotations say, in no language, for chat messages in another (`None` for
    /// an alert restored from the store: its annotations are used as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Box<AlertFacts>>,
}

/// What an alert's description says, in no language: the findings with what changed, where
/// it was seen and when resolvers see it. A chat webhook renders it in its language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFacts {
    /// The findings that raise the alert.
    pub findings: Vec<FindingFact>,
    /// Where it was seen.
    pub seen_at: SeenAt,
    /// When users' resolvers see it.
    pub resolvers: Option<ResolverDelay>,
    /// Why DNS gave no conclusive answer (`MailDnsCheckFailing`).
    pub error: Option<String>,
}

/// One finding behind an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingFact {
    /// Its code.
    pub code: FindingCode,
    /// What it was (evidence `from`), when it says.
    pub from: Option<serde_json::Value>,
    /// What it is now (evidence `to`).
    pub to: Option<serde_json::Value>,
    /// The DNS lookups counted (SPF), when it says.
    pub lookups: Option<u64>,
}

/// Where a finding was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeenAt {
    /// The server (or servers) the finding's evidence names.
    Server(String),
    /// The authoritative servers the config names.
    Nameservers(Vec<String>),
    /// The domain's authoritative servers, discovered.
    #[default]
    Authoritative,
    /// The recursive resolvers.
    Resolvers,
}

/// How long until users' resolvers see the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverDelay {
    /// Seconds.
    pub seconds: u64,
    /// From the TTL of the answer resolvers cached (rather than the finding's own estimate).
    pub cached_ttl: bool,
}

/// The alerts that can be raised by `check`, with their severity. A check without alerts of
/// its own raises only `MailDnsCheckFailing`.
pub fn alerts_of(check: CheckKind) -> &'static [(AlertName, Severity)] {
    use AlertName::*;
    const FAILING: (AlertName, Severity) = (MailDnsCheckFailing, Severity::Warning);
    match check {
        CheckKind::Mx => &[(MailDnsMxDrift, Severity::Critical), FAILING],
        CheckKind::Spf => &[
            (MailDnsSpfDrift, Severity::Critical),
            (MailDnsSpfLookupLimit, Severity::Critical),
            (MailDnsSpfLookupLimit, Severity::Warning),
            FAILING,
        ],
        CheckKind::Dkim => &[(MailDnsDkimMissing, Severity::Critical), FAILING],
        CheckKind::Dmarc => &[(MailDnsDmarcWeakened, Severity::Warning), FAILING],
        CheckKind::Nameservers => &[(MailDnsNameserversInconsistent, Severity::Warning), FAILING],
        CheckKind::SmtpTls => &[
            (MailMxCertificateExpiring, Severity::Critical),
            (MailMxCertificateExpiring, Severity::Warning),
            FAILING,
        ],
        CheckKind::Registration => &[
            (MailDomainExpiring, Severity::Critical),
            (MailDomainExpiring, Severity::Warning),
            FAILING,
        ],
        CheckKind::Dnsbl => &[(MailDnsblListed, Severity::Critical), FAILING],
        _ => &[FAILING],
    }
}

/// The finding codes that raise `name` at `severity` (empty for drift and check failures,
/// which are not finding-driven).
fn codes(name: AlertName, severity: Severity) -> &'static [FindingCode] {
    match (name, severity) {
        (AlertName::MailDnsMxDrift | AlertName::MailDnsSpfDrift, _) => &[FindingCode::Drift],
        (AlertName::MailDnsSpfLookupLimit, Severity::Critical) => {
            &[FindingCode::SpfLookupLimitExceeded]
        }
        (AlertName::MailDnsSpfLookupLimit, _) => &[FindingCode::SpfLookupLimitNear],
        (AlertName::MailDnsDkimMissing, _) => &[FindingCode::DkimKeyMissing],
        (AlertName::MailDnsDmarcWeakened, _) => &[
            FindingCode::DmarcPolicyWeakened,
            FindingCode::DmarcPolicyNone,
        ],
        (AlertName::MailDnsNameserversInconsistent, _) => {
            &[FindingCode::NsAnswersDiffer, FindingCode::NsSerialMismatch]
        }
        (AlertName::MailDnsCheckFailing, _) => &[],
        (AlertName::MailDomainExpiring, Severity::Critical) => &[
            FindingCode::DomainExpiring,
            FindingCode::DomainExpired,
            FindingCode::DomainOnHold,
        ],
        (AlertName::MailDomainExpiring, _) => &[FindingCode::DomainExpiring],
        (AlertName::MailDnsblListed, _) => &[FindingCode::DnsblListed],
        (AlertName::MailMxCertificateExpiring, Severity::Critical) => &[
            FindingCode::MxTlsCertExpiring,
            FindingCode::MxTlsCertExpired,
        ],
        (AlertName::MailMxCertificateExpiring, _) => &[FindingCode::MxTlsCertExpiring],
    }
}

/// Alerts whose warning and critical forms share finding codes: each takes only the
/// findings of its own severity (`domain_expiring` is a warning inside 30 days, critical
/// inside 7; a certificate expiring within 21 days is a warning, within 7 critical; a
/// warning-severity `dnsbl_listed` of an SPF-only address raises nothing).
fn by_severity(name: AlertName) -> bool {
    matches!(
        name,
        AlertName::MailDomainExpiring
            | AlertName::MailDnsblListed
            | AlertName::MailMxCertificateExpiring
    )
}

/// The findings of `next` that raise alert `key`.
fn raising<'a>(key: &AlertKey, next: &'a CheckStatus) -> Vec<&'a Finding> {
    let wanted = codes(key.name, key.severity);
    next.findings
        .iter()
        .filter(|f| wanted.contains(&f.code))
        .filter(|f| !by_severity(key.name) || f.severity == key.severity)
        .collect()
}

/// Every alert `update` rules on, with its condition. DNS failures make every alert but
/// `MailDnsCheckFailing` [`Condition::Unknown`]: they never raise nor clear drift.
pub fn evaluate(update: &CheckUpdate<'_>, external_url: &str) -> Vec<(AlertKey, Condition)> {
    alerts_of(update.check)
        .iter()
        .map(|&(name, severity)| {
            let key = AlertKey {
                name,
                domain: update.domain.name.clone(),
                check: update.check,
                severity,
            };
            let condition = match condition(update, &key, external_url) {
                Condition::Active(content) => Condition::Active(AlertContent {
                    facts: Some(Box::new(facts(update, &key))),
                    ..content
                }),
                other => other,
            };
            (key, condition)
        })
        .collect()
}

fn condition(update: &CheckUpdate<'_>, key: &AlertKey, external_url: &str) -> Condition {
    let next = update.next;
    let content = |summary: String, description: String| {
        Condition::Active(content(
            update.domain,
            key,
            summary,
            description,
            external_url,
        ))
    };
    let domain = &update.domain.name;
    let check = update.check;
    if key.name == AlertName::MailDnsCheckFailing {
        if next.success {
            return Condition::Inactive;
        }
        let error = next.error.as_deref().unwrap_or("no conclusive DNS answer");
        return content(
            format!("The {check} check of {domain} gets no DNS answer"),
            format!(
                "{error}. Until DNS answers, maildrift neither raises nor clears drift for this check."
            ),
        );
    }
    if !next.success {
        return Condition::Unknown;
    }
    let findings = raising(key, next);
    if findings.is_empty() {
        return Condition::Inactive;
    }
    let upper = check.as_str().to_ascii_uppercase();
    let summary = match key.name {
        AlertName::MailDnsMxDrift | AlertName::MailDnsSpfDrift => {
            format!("{upper} of {domain} changed")
        }
        AlertName::MailDnsSpfLookupLimit => {
            let lookups = findings
                .iter()
                .find_map(|f| f.evidence.get("lookups").and_then(|v| v.as_u64()));
            match (lookups, key.severity) {
                (Some(n), Severity::Critical) => {
                    format!("SPF of {domain} needs {n} DNS lookups, over the limit of 10")
                }
                (Some(n), _) => {
                    format!("SPF of {domain} needs {n} DNS lookups, near the limit of 10")
                }
                (None, _) => format!("SPF of {domain} is at the DNS lookup limit"),
            }
        }
        AlertName::MailDnsDkimMissing => format!("DKIM key missing for {domain}"),
        AlertName::MailDnsDmarcWeakened => format!("DMARC policy of {domain} weakened"),
        AlertName::MailDnsNameserversInconsistent => {
            format!("Authoritative nameservers of {domain} disagree")
        }
        AlertName::MailDnsCheckFailing => format!("The {check} check of {domain} is failing"),
        AlertName::MailDomainExpiring => match findings.first().map(|f| f.code) {
            Some(FindingCode::DomainExpired) => format!("Registration of {domain} expired"),
            Some(FindingCode::DomainOnHold) => format!("{domain} is on hold at its registry"),
            _ => format!("Registration of {domain} expires soon"),
        },
        AlertName::MailDnsblListed => {
            format!("A mail address of {domain} is on a DNS blocklist")
        }
        AlertName::MailMxCertificateExpiring => {
            let hosts: Vec<&str> = findings
                .iter()
                .filter_map(|f| f.evidence.get("host").and_then(|h| h.as_str()))
                .collect();
            format!(
                "The certificate of MX host {} of {domain} expires soon",
                hosts.join(", ")
            )
        }
    };
    let mut parts: Vec<String> = findings
        .iter()
        .map(|f| f.message.trim_end_matches('.').to_string() + ".")
        .collect();
    parts.push(server_sentence(update.domain, &findings));
    if let Some(sentence) = ttl_sentence(&findings, update.previous, next) {
        parts.push(sentence);
    }
    content(summary, parts.join(" "))
}

fn content(
    domain: &DomainConfig,
    key: &AlertKey,
    summary: String,
    description: String,
    external_url: &str,
) -> AlertContent {
    let mut labels = domain.labels.clone();
    labels.insert("alertname".into(), key.name.as_str().into());
    labels.insert("domain".into(), domain.name.clone());
    labels.insert("check".into(), key.check.as_str().into());
    labels.insert("severity".into(), key.severity.as_str().into());
    let annotations = BTreeMap::from([
        ("summary".to_string(), summary),
        ("description".to_string(), description),
        ("runbook_url".to_string(), key.name.runbook_url()),
    ]);
    AlertContent {
        labels,
        annotations,
        generator_url: format!("{external_url}{}", domain_page_path(&domain.name)),
        facts: None,
    }
}

/// The facts behind alert `key` raised by `update` (the same findings as its annotations).
fn facts(update: &CheckUpdate<'_>, key: &AlertKey) -> AlertFacts {
    let next = update.next;
    if key.name == AlertName::MailDnsCheckFailing {
        return AlertFacts {
            seen_at: seen_at(update.domain, &[]),
            error: Some(next.error.as_deref().unwrap_or_default().to_owned()),
            ..AlertFacts::default()
        };
    }
    let findings = raising(key, next);
    AlertFacts {
        findings: findings
            .iter()
            .map(|f| FindingFact {
                code: f.code,
                from: f.evidence.get("from").cloned(),
                to: f.evidence.get("to").cloned(),
                lookups: f.evidence.get("lookups").and_then(|v| v.as_u64()),
            })
            .collect(),
        seen_at: seen_at(update.domain, &findings),
        resolvers: resolver_delay(&findings, update.previous, next),
        error: None,
    }
}

/// Which server saw it: the finding's evidence when it names one, else where the domain's
/// records are asked.
fn seen_at(domain: &DomainConfig, findings: &[&Finding]) -> SeenAt {
    let named = findings.iter().find_map(|f| {
        ["nameserver", "server", "servers", "nameservers"]
            .iter()
            .find_map(|key| f.evidence.get(key))
            .and_then(|value| match value {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Array(items) => Some(
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => None,
            })
    });
    match named {
        Some(server) => SeenAt::Server(server),
        None if !domain.nameservers.is_empty() => {
            SeenAt::Nameservers(domain.nameservers.iter().map(|s| s.to_string()).collect())
        }
        None if domain.authoritative => SeenAt::Authoritative,
        None => SeenAt::Resolvers,
    }
}

fn server_sentence(domain: &DomainConfig, findings: &[&Finding]) -> String {
    match seen_at(domain, findings) {
        SeenAt::Server(server) => format!("Seen at {server}."),
        SeenAt::Nameservers(servers) => format!(
            "Seen at the authoritative nameservers {}.",
            servers.join(", ")
        ),
        SeenAt::Authoritative => "Seen at the domain's authoritative nameservers.".into(),
        SeenAt::Resolvers => "Seen through the recursive resolvers.".into(),
    }
}

/// When users' resolvers see it: the finding's own estimate when it has one, else the TTL
/// of the answer they may have cached (the previous one).
fn resolver_delay(
    findings: &[&Finding],
    previous: Option<&CheckStatus>,
    next: &CheckStatus,
) -> Option<ResolverDelay> {
    let estimate = findings.iter().find_map(|f| {
        ["resolvers_switch_within", "propagation_seconds", "ttl"]
            .iter()
            .find_map(|key| f.evidence.get(key).and_then(|v| v.as_u64()))
    });
    if let Some(seconds) = estimate {
        return Some(ResolverDelay {
            seconds,
            cached_ttl: false,
        });
    }
    let cached = previous
        .filter(|p| p.records != next.records)
        .unwrap_or(next);
    let ttl = cached.records.iter().filter_map(|r| r.ttl).min()?;
    Some(ResolverDelay {
        seconds: u64::from(ttl),
        cached_ttl: true,
    })
}

fn ttl_sentence(
    findings: &[&Finding],
    previous: Option<&CheckStatus>,
    next: &CheckStatus,
) -> Option<String> {
    let delay = resolver_delay(findings, previous, next)?;
    Some(if delay.cached_ttl {
        format!(
            "Resolvers that cached the previous answer see it within {} (its TTL).",
            human_seconds(delay.seconds)
        )
    } else {
        format!(
            "Users' resolvers see it within {} (TTL).",
            human_seconds(delay.seconds)
        )
    })
}

/// `300 s`, `1 h 30 min`.
pub fn human_seconds(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
