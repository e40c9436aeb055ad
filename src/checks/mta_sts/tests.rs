//! MTA-STS and TLS-RPT tests: the table in `tests/fixtures/checks/mta_sts.yaml`. The policy
//! body comes from the case (`want.policy`), or the fetch fails (`want.unreachable`); the
//! real HTTPS fetch is tested in `tests/it/analysis.rs`.

use super::*;
use crate::checks::fixture;
use crate::checks::{mx, tls_rpt};
use std::sync::Arc;

#[tokio::test]
async fn fixture_cases() {
    let cases = fixture::load("mta_sts.yaml");
    assert!(cases.len() >= 12, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let dns = Arc::new(case.fake_dns());
        let view = DnsView::new(dns.clone(), dns);
        let body = case
            .want
            .get("policy")
            .and_then(|p| p.as_str())
            .map(str::to_owned);
        let fetched = std::sync::Mutex::new(None);
        let observation = observe_with(&case.domain, &view, |host, addresses| {
            *fetched.lock().unwrap() = Some((host.clone(), addresses));
            let result = body.ok_or(FetchError::Connect {
                host,
                reason: "connection refused".to_owned(),
            });
            std::future::ready(result)
        })
        .await;
        let mx = mx::observe(&case.domain, &view).await;
        let previous = case.previous.mta_sts_id.clone();
        let mut report = evaluate(&case.domain, &observation, &mx, previous.as_deref());
        let rpt = tls_rpt::observe(&case.domain, &view).await;
        let rpt = tls_rpt::evaluate(&case.domain, &rpt, observation.deployed());
        let mut problems = Vec::new();
        if let Some(want) = case.want.get("fetched_from") {
            let got = fetched.lock().unwrap().clone();
            let got = got.map(|(h, a)| format!("{h} {a:?}"));
            if got.as_deref() != want.as_str() {
                problems.push(format!("fetched {got:?}, want {want}"));
            }
        }
        if !rpt.success {
            problems.push(format!("tls_rpt inconclusive: {:?}", rpt.error));
        }
        report.findings.extend(rpt.findings);
        problems.extend(case.mismatches(&report));
        for problem in problems {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
