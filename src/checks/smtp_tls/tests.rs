//! The SMTP TLS judgement on hand-made dialogues: severities with and without MTA-STS, the
//! expiry windows, certificate changes, unreachable hosts. The dialogue itself runs against
//! real servers in `tests/it/mailpath/`.

use super::*;
use crate::checks::mta_sts::StsMode;

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

fn settings() -> SmtpSettings {
    SmtpSettings::default()
}

fn view(sha: &str, not_after: i64) -> CertificateView {
    CertificateView {
        subject: "CN=mx1.example.net".to_owned(),
        issuer: "CN=Example CA".to_owned(),
        names: vec!["mx1.example.net".to_owned()],
        not_before: NOW - 30 * DAY,
        not_after,
        sha256: sha.to_owned(),
    }
}

fn tls(sha: &str, not_after: i64, trust: Trust, host_name: Result<(), String>) -> ProbeOutcome {
    ProbeOutcome::Tls(Box::new(TlsSession {
        version: "TLSv1.3".to_owned(),
        cipher: "TLS13_AES_128_GCM_SHA256".to_owned(),
        chain: Vec::new(),
        certificate: Ok(view(sha, not_after)),
        verification: Verification { trust, host_name },
    }))
}

fn valid(sha: &str) -> ProbeOutcome {
    tls(sha, NOW + 90 * DAY, Trust::Trusted, Ok(()))
}

fn unreachable() -> ProbeOutcome {
    ProbeOutcome::Unreachable {
        step: "connect",
        reason: "connection refused".to_owned(),
    }
}

fn host(name: &str, outcomes: Vec<ProbeOutcome>) -> HostProbes {
    HostProbes {
        host: name.to_owned(),
        addresses: outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| {
                Arc::new(AddressProbe {
                    host: name.to_owned(),
                    address: SocketAddr::from(([192, 0, 2, i as u8 + 1], 25)),
                    outcome,
                })
            })
            .collect(),
        not_asked: Vec::new(),
        unknown: None,
    }
}

fn observation(hosts: Vec<HostProbes>) -> SmtpTlsObservation {
    SmtpTlsObservation {
        domain: "example.com".to_owned(),
        enabled: true,
        result: Ok(hosts),
        skipped: Vec::new(),
    }
}

fn enforce() -> Option<Policy> {
    Some(Policy {
        mode: StsMode::Enforce,
        patterns: vec!["*.example.net".to_owned()],
    })
}

fn codes(evaluation: &Evaluation<SmtpTlsMemory>) -> Vec<String> {
    let mut codes: Vec<String> = evaluation
        .findings
        .iter()
        .map(|f| format!("{}:{}", f.code, f.severity))
        .collect();
    codes.sort();
    codes
}

fn judge(hosts: Vec<HostProbes>, policy: Option<Policy>) -> Evaluation<SmtpTlsMemory> {
    evaluate(&observation(hosts), &settings(), policy, None, NOW)
}

#[test]
fn a_valid_certificate_is_not_a_finding_and_exports_host_series() {
    let evaluation = judge(vec![host("mx1.example.net", vec![valid("aa")])], enforce());
    assert!(evaluation.success);
    assert_eq!(codes(&evaluation), Vec::<String>::new());
    let series: Vec<(&str, &str, f64)> = evaluation
        .shared
        .iter()
        .filter(|s| !s.object.is_empty())
        .map(|s| (s.family.name, s.object.as_str(), s.samples[0].1))
        .collect();
    assert_eq!(
        series,
        [
            ("maildrift_mx_starttls", "mx1.example.net", 1.0),
            (
                "maildrift_mx_tls_cert_not_after_timestamp_seconds",
                "mx1.example.net",
                (NOW + 90 * DAY) as f64
            ),
        ]
    );
    let record = &evaluation.records[0].values[0];
    assert!(
        record.starts_with("mx1.example.net [192.0.2.1]:25: TLSv1.3 TLS13_AES_128_GCM_SHA256"),
        "{record}"
    );
}

#[test]
fn severities_follow_the_mta_sts_mode() {
    let broken = || {
        vec![host(
            "mx1.example.net",
            vec![tls(
                "aa",
                NOW + 90 * DAY,
                Trust::Untrusted("self-signed".to_owned()),
                Err("the certificate names other.example but not mx1.example.net".to_owned()),
            )],
        )]
    };
    assert_eq!(
        codes(&judge(broken(), enforce())),
        [
            "mx_tls_cert_untrusted:critical",
            "mx_tls_name_mismatch:critical"
        ]
    );
    assert_eq!(
        codes(&judge(broken(), None)),
        [
            "mx_tls_cert_untrusted:warning",
            "mx_tls_name_mismatch:warning"
        ]
    );
    let testing = Some(Policy {
        mode: StsMode::Testing,
        patterns: vec!["*.example.net".to_owned()],
    });
    let no_tls = host(
        "mx1.example.net",
        vec![ProbeOutcome::NoStartTls {
            reason: "STARTTLS is not among the EHLO capabilities".to_owned(),
        }],
    );
    assert_eq!(
        codes(&judge(vec![no_tls.clone()], enforce())),
        ["mx_starttls_missing:critical"]
    );
    assert_eq!(
        codes(&judge(vec![no_tls], testing)),
        ["mx_starttls_missing:warning"]
    );
}

#[test]
fn expiry_windows() {
    let at = |left: i64| {
        let hosts = vec![host(
            "mx1.example.net",
            vec![tls("aa", NOW + left, Trust::Trusted, Ok(()))],
        )];
        codes(&judge(hosts, None))
    };
    assert_eq!(at(22 * DAY), Vec::<String>::new());
    assert_eq!(at(20 * DAY), ["mx_tls_cert_expiring:warning"]);
    assert_eq!(at(3 * DAY), ["mx_tls_cert_expiring:critical"]);
    assert_eq!(at(-DAY), ["mx_tls_cert_expired:critical"]);
    let evaluation = judge(
        vec![host(
            "mx1.example.net",
            vec![tls("aa", NOW + 3 * DAY, Trust::Trusted, Ok(()))],
        )],
        None,
    );
    let finding = &evaluation.findings[0];
    assert!(
        finding.message.contains("expires in 3 days"),
        "{}",
        finding.message
    );
    assert_eq!(
        finding.evidence["server"][0],
        "mx1.example.net [192.0.2.1]:25"
    );
    assert_eq!(finding.evidence["host"], "mx1.example.net");
}

#[test]
fn the_certificate_names_must_fit_the_policy_patterns() {
    let policy = Some(Policy {
        mode: StsMode::Enforce,
        patterns: vec!["mail.other.example".to_owned()],
    });
    let evaluation = judge(vec![host("mx1.example.net", vec![valid("aa")])], policy);
    assert_eq!(codes(&evaluation), ["mx_tls_name_mismatch:critical"]);
    assert!(
        evaluation.findings[0]
            .message
            .contains("mail.other.example")
    );
    // A wildcard pattern covers the certificate's name.
    let evaluation = judge(vec![host("mx1.example.net", vec![valid("aa")])], enforce());
    assert_eq!(codes(&evaluation), Vec::<String>::new());
}

#[test]
fn a_new_certificate_is_an_info_event_once() {
    let first = judge(vec![host("mx1.example.net", vec![valid("aa")])], None);
    let memory = first.memory.clone().unwrap();
    let hosts = || vec![host("mx1.example.net", vec![valid("bb")])];
    let second = evaluate(&observation(hosts()), &settings(), None, Some(&memory), NOW);
    assert_eq!(codes(&second), ["mx_tls_cert_changed:info"]);
    assert_eq!(second.findings[0].evidence["from"][0], "aa");
    assert_eq!(second.findings[0].evidence["to"][0], "bb");
    let memory = second.memory.clone().unwrap();
    let third = evaluate(&observation(hosts()), &settings(), None, Some(&memory), NOW);
    assert_eq!(codes(&third), Vec::<String>::new());
}

#[test]
fn unreachable_addresses_are_unknown_never_findings_about_tls() {
    // One address of two answers: the silent one is info, the other is judged.
    let evaluation = judge(
        vec![host("mx1.example.net", vec![valid("aa"), unreachable()])],
        enforce(),
    );
    assert!(evaluation.success);
    assert_eq!(codes(&evaluation), ["mx_smtp_unreachable:info"]);
    // A host that does not answer while another does.
    let evaluation = judge(
        vec![
            host("mx1.example.net", vec![valid("aa")]),
            host("mx2.example.net", vec![unreachable()]),
        ],
        enforce(),
    );
    assert_eq!(codes(&evaluation), ["mx_smtp_unreachable:info"]);
    // No host answers: inconclusive (check_success 0), never drift or a TLS finding.
    let evaluation = judge(
        vec![host("mx1.example.net", vec![unreachable()])],
        enforce(),
    );
    assert!(!evaluation.success);
    let error = evaluation.error.unwrap();
    assert!(
        error.contains("no MX host of example.com answered SMTP on port 25"),
        "{error}"
    );
    assert!(error.contains("connection refused"), "{error}");
}

#[test]
fn a_silent_host_keeps_its_last_known_series() {
    let first = judge(
        vec![
            host("mx1.example.net", vec![valid("aa")]),
            host("mx2.example.net", vec![valid("bb")]),
        ],
        None,
    );
    let memory = first.memory.unwrap();
    let hosts = vec![
        host("mx1.example.net", vec![valid("aa")]),
        host("mx2.example.net", vec![unreachable()]),
    ];
    let second = evaluate(&observation(hosts), &settings(), None, Some(&memory), NOW);
    let objects: Vec<&str> = second.shared.iter().map(|s| s.object.as_str()).collect();
    assert_eq!(
        objects.iter().filter(|o| **o == "mx2.example.net").count(),
        2
    );
    assert_eq!(
        second.memory.unwrap().hosts["mx2.example.net"].fingerprints,
        ["bb"]
    );
}

#[test]
fn old_tls_and_disabled_and_unknown_mx() {
    let old = host(
        "mx1.example.net",
        vec![ProbeOutcome::HandshakeFailed {
            reason: "received fatal alert: ProtocolVersion".to_owned(),
            old_version: true,
        }],
    );
    let evaluation = judge(vec![old], None);
    assert_eq!(codes(&evaluation), ["mx_tls_old_version:warning"]);
    assert_eq!(
        evaluation.shared[2].samples[0].1, 0.0,
        "no STARTTLS session"
    );

    let disabled = SmtpTlsObservation {
        enabled: false,
        ..observation(Vec::new())
    };
    let evaluation = evaluate(&disabled, &settings(), None, None, NOW);
    assert!(evaluation.success);
    assert!(evaluation.findings.is_empty());
    assert!(
        evaluation.shared.iter().all(|s| s.object.is_empty()),
        "turned off: the domain leaves its hosts' series"
    );

    let unknown = SmtpTlsObservation {
        result: Err("MX hosts unknown: timeout".to_owned()),
        ..observation(Vec::new())
    };
    assert!(!evaluate(&unknown, &settings(), None, None, NOW).success);
}

#[test]
fn documentation_addresses_are_never_dialled() {
    for (ip, reserved) in [
        ("192.0.2.11", true),
        ("198.51.100.1", true),
        ("203.0.113.200", true),
        ("2001:db8::26", true),
        ("127.0.0.1", false),
        ("8.8.8.8", false),
        ("2001:4860::1", false),
    ] {
        assert_eq!(documentation(ip.parse().unwrap()), reserved, "{ip}");
    }
    let only_documentation = HostProbes {
        not_asked: vec!["192.0.2.11".parse().unwrap()],
        ..host("mx1.example.net", Vec::new())
    };
    let evaluation = judge(vec![only_documentation], enforce());
    assert!(evaluation.success);
    assert!(evaluation.findings.is_empty());
    assert_eq!(
        evaluation.records[0].values,
        [
            "mx1.example.net [192.0.2.11]: not asked (a documentation address: no server answers there)"
        ]
    );
}

#[test]
fn a_dialogue_serves_at_most_half_an_interval_and_ten_minutes() {
    let mut config = DomainConfig::new("example.com");
    config.interval = Duration::from_secs(300);
    assert_eq!(round_max_age(&config), Duration::from_secs(150));
    config.interval = Duration::from_secs(86_400);
    assert_eq!(round_max_age(&config), MAX_ROUND_AGE);
}
