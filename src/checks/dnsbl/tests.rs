//! The DNSBL check through the seam, from `tests/fixtures/checks/dnsbl.yaml`.

use super::*;
use crate::checks::mx::Mx;
use crate::checks::spf::Spf;
use crate::checks::{Registry, fixture};

#[tokio::test]
async fn fixture_cases() {
    let cases = fixture::load("dnsbl.yaml");
    assert!(cases.len() >= 10, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let registry = Registry::empty().with(Dnsbl::default()).with(Mx).with(Spf);
        let setup = case.setup(registry);
        let run = setup.observe().await;
        let report = setup.evaluate(&run);
        for problem in case.mismatches(&report) {
            failures.push(format!("{}: {problem}", case.name));
        }
        if !report.success {
            continue;
        }
        let listed: Vec<String> = report
            .shared
            .iter()
            .filter(|s| !s.samples.is_empty())
            .map(|s| s.object.clone())
            .collect();
        if let Some(want) = case.want.get("listed")
            && serde_json::json!(listed) != *want
        {
            failures.push(format!("{}: listed {listed:?}, want {want}", case.name));
        }
        if let Some(want) = case.want.get("asked").and_then(|w| w.as_u64())
            && report.shared.len() as u64 != want
        {
            failures.push(format!(
                "{}: {} pairs asked, want {want}",
                case.name,
                report.shared.len()
            ));
        }
        // Every listed series carries the zone and address labels, value 1.
        for series in report.shared.iter().flat_map(|s| &s.samples) {
            if series.0.len() != 2 || series.1 != 1.0 {
                failures.push(format!("{}: bad series {series:?}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn unknown_says_which_pair_and_why() {
    let case = fixture::load("dnsbl.yaml")
        .into_iter()
        .find(|c| c.name.starts_with("a refusal code"))
        .expect("the refusal case");
    let setup = case.setup(Registry::empty().with(Dnsbl::default()).with(Mx));
    let report = setup.report().await;
    let error = report.error.expect("inconclusive");
    assert!(
        error.starts_with("192.0.2.25 in bl.example.org: bl.example.org answered 127.255.255.254"),
        "{error}"
    );
    assert!(report.findings.is_empty());
}
