//! Judging a registration (pure): expiry against the thresholds, hold and deletion
//! statuses, and a registrar or nameserver change since the previous run.

use super::record::{DELETING, HOLD, RdapDomain};
use super::{EXPIRY, Known, RegistrationObservation, rfc3339};
use crate::checks::{Evaluation, FamilyValues, RecordObservation};
use crate::config::RdapSettings;
use crate::finding::{Finding, FindingCode, Severity};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the next run compares with: who registered the domain and where it is delegated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The registrar.
    pub registrar: Option<String>,
    /// The nameservers.
    pub nameservers: Vec<String>,
}

impl Seen {
    fn of(record: &RdapDomain) -> Seen {
        Seen {
            registrar: record.registrar.clone(),
            nameservers: record.nameservers.clone(),
        }
    }
}

/// Findings, the `registration` record set and the expiry gauge of one observation;
/// `previous` is what the last conclusive run saw.
pub fn evaluate(
    observation: &RegistrationObservation,
    settings: &RdapSettings,
    now: SystemTime,
    previous: Option<&Seen>,
) -> Evaluation<Seen> {
    let (server, record, asked_at) = match &observation.result {
        Err(error) => return Evaluation::inconclusive(error),
        Ok(Known::Reserved(reason)) => {
            let records = vec![RecordObservation::new(
                "registration",
                vec![reason.clone()],
                None,
            )];
            return Evaluation::conclusive(records, Vec::new());
        }
        Ok(Known::Registered {
            server,
            record,
            asked_at,
        }) => (server, record, asked_at),
    };
    let name = &record.name;
    let shown = crate::dns::names::display_name(name);
    let asked = rfc3339::format(unix(*asked_at));
    let now = unix(now);
    let mut findings = Vec::new();
    let finding = |code, severity, message: String| {
        Finding::new(code, severity, message)
            .with("name", name)
            .with("server", server)
            .with("asked_at", &asked)
            .with("statuses", &record.statuses)
    };
    let deleting = record.statuses_in(&DELETING);
    if let Some(status) = deleting.first() {
        findings.push(finding(
            FindingCode::DomainExpired,
            Severity::Critical,
            format!("the registration of {shown} expired: the registry has it in {status}; it is deleted unless renewed in time"),
        ));
    } else if let Some(expires) = record.expires {
        let date = rfc3339::format(expires);
        let left = expires - now;
        let days = left.div_euclid(86_400);
        let window = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        if left <= 0 {
            findings.push(
                finding(
                    FindingCode::DomainExpired,
                    Severity::Critical,
                    format!("the registration of {shown} expired on {date}: renew it, its mail DNS goes when the registry deletes it"),
                )
                .with("expires", &date),
            );
        } else if left < window(settings.expiry_warning) {
            let severity = if left < window(settings.expiry_critical) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            findings.push(
                finding(
                    FindingCode::DomainExpiring,
                    severity,
                    format!(
                        "the registration of {shown} expires on {date}, in {days} days: renew it"
                    ),
                )
                .with("expires", &date)
                .with("days_left", days),
            );
        }
    }
    for status in record.statuses_in(&HOLD) {
        findings.push(finding(
            FindingCode::DomainOnHold,
            Severity::Critical,
            format!("{shown} is on {status} at the registry: it is withheld from the DNS, no mail reaches it"),
        ));
    }
    let seen = Seen::of(record);
    if let Some(previous) = previous.filter(|p| **p != seen) {
        let describe = |s: &Seen| {
            format!(
                "registrar {}, nameservers {}",
                s.registrar.as_deref().unwrap_or("(none)"),
                s.nameservers.join(" ")
            )
        };
        findings.push(
            finding(
                FindingCode::DomainRegistrarChanged,
                Severity::Info,
                format!(
                    "the registration of {shown} changed from {} to {}",
                    describe(previous),
                    describe(&seen)
                ),
            )
            .with("from", describe(previous))
            .with("to", describe(&seen)),
        );
    }
    let mut values = vec![
        match record.expires {
            Some(expires) => format!("expires {}", rfc3339::format(expires)),
            None => "expires (not published)".to_owned(),
        },
        format!("nameservers {}", record.nameservers.join(" ")),
        format!(
            "registrar {}",
            record.registrar.as_deref().unwrap_or("(not published)")
        ),
    ];
    if !record.statuses.is_empty() {
        values.push(format!("status {}", record.statuses.join(", ")));
    }
    values.sort();
    let records = vec![RecordObservation::new("registration", values, None)];
    let mut evaluation = Evaluation::conclusive(records, findings).with_memory(Some(seen));
    if let Some(expires) = record.expires {
        evaluation = evaluation.with_gauge(FamilyValues::one(&EXPIRY, expires as f64));
    }
    evaluation
}

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: i64 = 1_700_000_000;
    const DAY: i64 = 86_400;

    fn observed(
        expires: Option<i64>,
        statuses: &[&str],
        registrar: &str,
    ) -> RegistrationObservation {
        RegistrationObservation {
            domain: "mail.shop.example".into(),
            registrable: Some("shop.example".into()),
            result: Ok(Known::Registered {
                server: "https://rdap.example/".into(),
                record: RdapDomain {
                    name: "shop.example".into(),
                    expires,
                    statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
                    registrar: Some(registrar.into()),
                    nameservers: vec!["ns1.example.net".into()],
                },
                asked_at: UNIX_EPOCH + Duration::from_secs(NOW as u64),
            }),
        }
    }

    fn codes(evaluation: &Evaluation<Seen>) -> Vec<String> {
        evaluation
            .findings
            .iter()
            .map(|f| format!("{}:{}", f.code, f.severity))
            .collect()
    }

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    }

    #[test]
    fn expiry_thresholds_statuses_and_changes() {
        let settings = RdapSettings::default();
        let now = at(NOW);
        let table: &[(Option<i64>, &[&str], &[&str])] = &[
            (Some(NOW + 90 * DAY), &["client transfer prohibited"], &[]),
            (None, &[], &[]),
            (Some(NOW + 29 * DAY), &[], &["domain_expiring:warning"]),
            (Some(NOW + 6 * DAY), &[], &["domain_expiring:critical"]),
            (Some(NOW - DAY), &[], &["domain_expired:critical"]),
            (
                Some(NOW + 90 * DAY),
                &["client hold"],
                &["domain_on_hold:critical"],
            ),
            (
                Some(NOW + 90 * DAY),
                &["server hold", "client hold"],
                &["domain_on_hold:critical", "domain_on_hold:critical"],
            ),
            (
                Some(NOW - 10 * DAY),
                &["redemption period"],
                &["domain_expired:critical"],
            ),
            (
                Some(NOW + 300 * DAY),
                &["pending delete"],
                &["domain_expired:critical"],
            ),
        ];
        for (expires, statuses, want) in table {
            let evaluation = evaluate(&observed(*expires, statuses, "R"), &settings, now, None);
            assert!(evaluation.success);
            assert_eq!(codes(&evaluation), *want, "{expires:?} {statuses:?}");
            let gauge = evaluation.gauges.first().map(|g| g.samples[0].1);
            assert_eq!(gauge, expires.map(|e| e as f64));
        }
        let expiring = evaluate(
            &observed(Some(NOW + 6 * DAY), &[], "R"),
            &settings,
            now,
            None,
        );
        assert_eq!(
            expiring.findings[0].message,
            "the registration of shop.example expires on 2023-11-20T22:13:20Z, in 6 days: renew it"
        );
        assert_eq!(
            expiring.findings[0].evidence["server"],
            "https://rdap.example/"
        );
        assert_eq!(
            expiring.records[0].values,
            [
                "expires 2023-11-20T22:13:20Z",
                "nameservers ns1.example.net",
                "registrar R"
            ]
        );

        // Configured thresholds.
        let narrow = RdapSettings {
            expiry_warning: Duration::from_secs(10 * 86_400),
            expiry_critical: Duration::from_secs(2 * 86_400),
            ..RdapSettings::default()
        };
        let evaluation = evaluate(&observed(Some(NOW + 6 * DAY), &[], "R"), &narrow, now, None);
        assert_eq!(codes(&evaluation), ["domain_expiring:warning"]);
        let evaluation = evaluate(
            &observed(Some(NOW + 20 * DAY), &[], "R"),
            &narrow,
            now,
            None,
        );
        assert!(codes(&evaluation).is_empty());

        // A registrar change is an info finding once.
        let before = Seen {
            registrar: Some("Old Registrar".into()),
            nameservers: vec!["ns1.example.net".into()],
        };
        let moved = evaluate(
            &observed(None, &[], "New Registrar"),
            &settings,
            now,
            Some(&before),
        );
        assert_eq!(codes(&moved), ["domain_registrar_changed:info"]);
        assert!(
            moved.findings[0]
                .message
                .contains("from registrar Old Registrar"),
            "{:?}",
            moved.findings
        );
        let seen = moved.memory.clone().unwrap();
        let again = evaluate(
            &observed(None, &[], "New Registrar"),
            &settings,
            now,
            Some(&seen),
        );
        assert!(codes(&again).is_empty());
    }

    #[test]
    fn unknown_and_reserved() {
        let settings = RdapSettings::default();
        let mut observation = observed(None, &[], "R");
        observation.result = Err("no RDAP server for .zz".into());
        let evaluation = evaluate(&observation, &settings, at(NOW), None);
        assert!(!evaluation.success);
        assert_eq!(evaluation.error.as_deref(), Some("no RDAP server for .zz"));
        observation.result = Ok(Known::Reserved("special".into()));
        let evaluation = evaluate(&observation, &settings, at(NOW), None);
        assert!(
            evaluation.success && evaluation.findings.is_empty() && evaluation.gauges.is_empty()
        );
    }
}
