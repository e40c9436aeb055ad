//! Alert rules: finding codes → alerts, SPEC labels and annotations, and the Prometheus
//! rules and runbook kept in step with the native alerts.

use super::*;

#[test]
fn finding_codes_map_to_spec_alerts_and_severities() {
    let domain = domain();
    let spf = |code: FindingCode| CheckStatus {
        success: true,
        drift: false,
        findings: vec![Finding::new(code, Severity::Warning, "x").with("lookups", 11)].into(),
        records: Box::default(),
        error: None,
        last_checked: None,
    };
    let active = |check: CheckKind, status: &CheckStatus| -> Vec<(AlertName, Severity)> {
        active_alerts(&domain, check, status)
            .into_iter()
            .map(|(k, _)| (k.name, k.severity))
            .collect()
    };
    use AlertName::*;
    let cases = [
        (
            CheckKind::Spf,
            FindingCode::SpfLookupLimitExceeded,
            (MailDnsSpfLookupLimit, Severity::Critical),
        ),
        (
            CheckKind::Spf,
            FindingCode::SpfLookupLimitNear,
            (MailDnsSpfLookupLimit, Severity::Warning),
        ),
        (
            CheckKind::Spf,
            FindingCode::Drift,
            (MailDnsSpfDrift, Severity::Critical),
        ),
        (
            CheckKind::Dkim,
            FindingCode::DkimKeyMissing,
            (MailDnsDkimMissing, Severity::Critical),
        ),
        (
            CheckKind::Dmarc,
            FindingCode::DmarcPolicyWeakened,
            (MailDnsDmarcWeakened, Severity::Warning),
        ),
        (
            CheckKind::Dmarc,
            FindingCode::DmarcPolicyNone,
            (MailDnsDmarcWeakened, Severity::Warning),
        ),
        (
            CheckKind::Nameservers,
            FindingCode::NsAnswersDiffer,
            (MailDnsNameserversInconsistent, Severity::Warning),
        ),
        (
            CheckKind::Nameservers,
            FindingCode::NsSerialMismatch,
            (MailDnsNameserversInconsistent, Severity::Warning),
        ),
    ];
    for (check, code, expected) in cases {
        assert_eq!(active(check, &spf(code)), [expected], "{check} {code}");
    }
    assert!(active(CheckKind::Spf, &spf(FindingCode::SpfPermissiveAll)).is_empty());
    assert!(active(CheckKind::Mx, &spf(FindingCode::MxNull)).is_empty());
}

#[test]
fn drift_alert_has_spec_labels_and_annotations() {
    let mut domain = domain();
    domain.nameservers = vec!["127.0.0.1:5300".parse().unwrap()];
    let previous = mx(Some(false));
    let next = mx(Some(true));
    let update = CheckUpdate {
        domain: &domain,
        check: CheckKind::Mx,
        previous: Some(&previous),
        next: &next,
        at: SystemTime::now(),
    };
    let evaluated = rules::evaluate(&update, "http://maildrift.test:9725");
    let Condition::Active(content) = &evaluated[0].1 else {
        panic!("{evaluated:?}")
    };
    let labels: Vec<(&str, &str)> = content
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("alertname", "MailDnsMxDrift"),
            ("check", "mx"),
            ("domain", "a.example"),
            ("severity", "critical"),
            ("team", "mail")
        ]
    );
    assert_eq!(content.annotations["summary"], "MX of a.example changed");
    assert_eq!(
        content.annotations["description"],
        "MX changed from [5 mx1.qiye.aliyun.com] to [10 mxw.mxhichina.com]. \
         Seen at the authoritative nameservers 127.0.0.1:5300. \
         Resolvers that cached the previous answer see it within 10 min (its TTL)."
    );
    assert_eq!(
        content.annotations["runbook_url"],
        format!("{}#maildnsmxdrift", rules::RUNBOOK_URL)
    );
    assert_eq!(
        content.generator_url,
        "http://maildrift.test:9725/domains/a.example"
    );
    // The same, in no language, for chat messages in another.
    assert_eq!(
        content.facts,
        Some(Box::new(rules::AlertFacts {
            findings: vec![rules::FindingFact {
                code: FindingCode::Drift,
                from: Some(serde_json::json!(["5 mx1.qiye.aliyun.com"])),
                to: Some(serde_json::json!(["10 mxw.mxhichina.com"])),
                lookups: None,
            }],
            seen_at: rules::SeenAt::Nameservers(vec!["127.0.0.1:5300".into()]),
            resolvers: Some(rules::ResolverDelay {
                seconds: 600,
                cached_ttl: true
            }),
            error: None,
        }))
    );
    // A DNS failure: the drift alert is unknown, the check-failing one active.
    let failed = mx(None);
    let update = CheckUpdate {
        next: &failed,
        ..update
    };
    let evaluated = rules::evaluate(&update, "http://m");
    assert_eq!(evaluated[0].1, Condition::Unknown);
    assert!(
        matches!(&evaluated[1].1, Condition::Active(c) if c.annotations["description"].starts_with("timeout asking 127.0.0.1:53."))
    );
    let Condition::Active(failing) = &evaluated[1].1 else {
        panic!("{evaluated:?}")
    };
    let facts = failing.facts.as_ref().expect("facts");
    assert_eq!(facts.error.as_deref(), Some("timeout asking 127.0.0.1:53"));
    assert!(facts.findings.is_empty());
}

#[test]
fn prometheus_rules_and_runbook_cover_every_native_alert() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let rules = std::fs::read_to_string(dir.join("rules.yml")).unwrap();
    let runbook = std::fs::read_to_string(dir.join("RUNBOOK.md")).unwrap();
    let names: BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    let mut expected: BTreeSet<&str> = AlertName::ALL.iter().map(|n| n.as_str()).collect();
    expected.insert("MailDriftDown");
    assert_eq!(names, expected);
    for name in AlertName::ALL {
        assert!(
            rules.contains(&name.runbook_url()),
            "{name}: runbook_url differs"
        );
        assert!(
            runbook.contains(&format!("\n## {name}\n")),
            "{name}: no runbook section"
        );
    }
    assert!(runbook.contains("\n## MailDriftDown\n"));
}

#[test]
fn registration_and_blocklist_alerts_follow_the_finding_severity() {
    let domain = domain();
    let status = |findings: Vec<Finding>| CheckStatus {
        success: true,
        drift: false,
        findings: findings.into(),
        records: Box::default(),
        error: None,
        last_checked: None,
    };
    let active = |check: CheckKind, status: &CheckStatus| -> Vec<(AlertName, Severity, String)> {
        active_alerts(&domain, check, status)
            .into_iter()
            .map(|(k, content)| (k.name, k.severity, content.annotations["summary"].clone()))
            .collect()
    };
    let finding = |code, severity| Finding::new(code, severity, "m");
    use AlertName::*;
    let expiring = status(vec![finding(
        FindingCode::DomainExpiring,
        Severity::Warning,
    )]);
    assert_eq!(
        active(CheckKind::Registration, &expiring),
        [(
            MailDomainExpiring,
            Severity::Warning,
            "Registration of a.example expires soon".to_owned()
        )]
    );
    let urgent = status(vec![finding(
        FindingCode::DomainExpiring,
        Severity::Critical,
    )]);
    assert_eq!(
        active(CheckKind::Registration, &urgent)
            .iter()
            .map(|(n, s, _)| (*n, *s))
            .collect::<Vec<_>>(),
        [(MailDomainExpiring, Severity::Critical)]
    );
    let held = status(vec![finding(FindingCode::DomainOnHold, Severity::Critical)]);
    assert_eq!(
        active(CheckKind::Registration, &held)[0].2,
        "a.example is on hold at its registry"
    );
    let changed = status(vec![finding(
        FindingCode::DomainRegistrarChanged,
        Severity::Info,
    )]);
    assert!(active(CheckKind::Registration, &changed).is_empty());
    let listed = status(vec![finding(FindingCode::DnsblListed, Severity::Critical)]);
    assert_eq!(active(CheckKind::Dnsbl, &listed)[0].0, MailDnsblListed);
    // A listed SPF-only address is a warning finding: no page.
    let spf_only = status(vec![finding(FindingCode::DnsblListed, Severity::Warning)]);
    assert!(active(CheckKind::Dnsbl, &spf_only).is_empty());
}

/// The alerts a check result raises, with what they would say.
fn active_alerts(
    domain: &DomainConfig,
    check: CheckKind,
    status: &CheckStatus,
) -> Vec<(AlertKey, AlertContent)> {
    let update = CheckUpdate {
        domain,
        check,
        previous: None,
        next: status,
        at: SystemTime::now(),
    };
    rules::evaluate(&update, "http://m")
        .into_iter()
        .filter_map(|(k, c)| match c {
            Condition::Active(content) => Some((k, content)),
            _ => None,
        })
        .collect()
}

#[test]
fn mx_certificate_expiring_fires_at_the_finding_severity() {
    let domain = domain();
    let status = |code: FindingCode, severity: Severity| CheckStatus {
        success: true,
        drift: false,
        findings: vec![
            Finding::new(
                code,
                severity,
                "the certificate of MX host mx1.a.example expires in 3 days",
            )
            .with("host", "mx1.a.example")
            .with("server", ["mx1.a.example [192.0.2.1]:25"]),
        ]
        .into(),
        records: Box::default(),
        error: None,
        last_checked: None,
    };
    let active = |status: &CheckStatus| -> Vec<(AlertName, Severity, rules::AlertContent)> {
        let update = CheckUpdate {
            domain: &domain,
            check: CheckKind::SmtpTls,
            previous: None,
            next: status,
            at: SystemTime::now(),
        };
        rules::evaluate(&update, "http://m")
            .into_iter()
            .filter_map(|(k, c)| match c {
                Condition::Active(content) => Some((k.name, k.severity, content)),
                _ => None,
            })
            .collect()
    };
    use AlertName::MailMxCertificateExpiring as Expiring;
    let warning = active(&status(FindingCode::MxTlsCertExpiring, Severity::Warning));
    assert_eq!(warning.len(), 1);
    assert_eq!((warning[0].0, warning[0].1), (Expiring, Severity::Warning));
    let content = &warning[0].2;
    assert_eq!(content.labels["check"], "smtp_tls");
    assert_eq!(
        content.annotations["summary"],
        "The certificate of MX host mx1.a.example of a.example expires soon"
    );
    assert!(
        content.annotations["description"].contains("Seen at mx1.a.example [192.0.2.1]:25."),
        "{}",
        content.annotations["description"]
    );
    let critical = active(&status(FindingCode::MxTlsCertExpiring, Severity::Critical));
    assert_eq!(
        critical.iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(),
        [(Expiring, Severity::Critical)]
    );
    let expired = active(&status(FindingCode::MxTlsCertExpired, Severity::Critical));
    assert_eq!(
        expired.iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(),
        [(Expiring, Severity::Critical)]
    );
    assert!(active(&status(FindingCode::MxTlsCertUntrusted, Severity::Critical)).is_empty());
}
