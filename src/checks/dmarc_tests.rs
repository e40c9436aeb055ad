//! DMARC tests: the table in `tests/fixtures/checks/dmarc.yaml`, and the parser.

use super::*;
use crate::checks::{Registry, fixture};

#[tokio::test]
async fn fixture_cases() {
    let cases = fixture::load("dmarc.yaml");
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let setup = case.setup(Registry::empty().with(Dmarc));
        let report = setup.report().await;
        let mut problems = case.mismatches(&report);
        if let Some(want) = case.want.get("policy") {
            let got = fixture::gauge(&report, &POLICY_INFO).and_then(|g| {
                g.samples
                    .iter()
                    .find(|(_, value)| *value == 1.0)
                    .map(|(labels, _)| labels[0].to_string())
            });
            if Some(want.as_str().unwrap_or_default()) != got.as_deref() {
                problems.push(format!("policy label {got:?}, want {want}"));
            }
        }
        for problem in problems {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn parses_every_tag() {
    let record = DmarcRecord::parse(
        "v=DMARC1; p=quarantine; sp=reject; pct=50; rua=mailto:a@x.example!10m, mailto:b@y.example; ruf=mailto:c@z.example; adkim=s; aspf=s",
    )
    .unwrap();
    assert_eq!(record.policy, DmarcPolicy::Quarantine);
    assert_eq!(record.subdomain_policy, Some(DmarcPolicy::Reject));
    assert_eq!(record.pct, 50);
    assert_eq!(record.rua.len(), 2);
    assert_eq!(record.rua[0].uri, "mailto:a@x.example");
    assert_eq!(record.rua[1].domain.as_deref(), Some("y.example"));
    assert_eq!(record.ruf[0].domain.as_deref(), Some("z.example"));
    assert_eq!(
        (record.adkim, record.aspf),
        (Alignment::Strict, Alignment::Strict)
    );
    let defaults = DmarcRecord::parse("v=DMARC1; p=none").unwrap();
    assert_eq!(defaults.pct, 100);
    assert_eq!(defaults.adkim, Alignment::Relaxed);
}

#[test]
fn errors_quote_the_input() {
    let err = DmarcRecord::parse("v=DMARC1; p=reject; adkim=x").unwrap_err();
    assert!(err.0.contains("adkim=\"x\""), "{err}");
    let err = DmarcRecord::parse("p=reject; v=DMARC1").unwrap_err();
    assert!(err.0.contains("p=reject"), "{err}");
}

#[test]
fn organizational_domains() {
    assert_eq!(organizational_domain("mail.example.com"), "example.com");
    assert_eq!(
        organizational_domain("a.b.example.com.cn"),
        "example.com.cn"
    );
    assert_eq!(
        organizational_domain("reports.example.co.uk"),
        "example.co.uk"
    );
    assert_eq!(organizational_domain("example.de"), "example.de");
    assert_eq!(
        policy_of(&["v=DMARC1; p=reject".to_owned()]),
        Some(DmarcPolicy::Reject)
    );
}
