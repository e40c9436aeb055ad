//! BIMI tests: the table in `tests/fixtures/checks/bimi.yaml` (the logo body comes from the
//! case, or the fetch fails); the real HTTPS fetch is tested in `tests/it/mailpath/`.

use super::*;
use crate::checks::{dmarc, fixture};
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn fixture_cases() {
    let cases = fixture::load("bimi.yaml");
    assert!(cases.len() >= 12, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let dns = Arc::new(case.fake_dns());
        let view = DnsView::new(dns.clone(), dns);
        let text = |key: &str| {
            case.want
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let selectors: Vec<String> = case
            .want
            .get("selectors")
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .unwrap_or_default();
        let fetched = Mutex::new(Vec::new());
        let observation = observe_with(&case.domain, &view, &selectors, |url| {
            fetched.lock().unwrap().push(url.url.clone());
            let logo = match text("logo") {
                Some(body) => Logo::Fetched {
                    url: url.url,
                    content_type: text("content_type")
                        .unwrap_or_else(|| "image/svg+xml".to_owned()),
                    body: body.into_bytes(),
                },
                None => Logo::Unreachable(
                    text("unreachable").unwrap_or_else(|| "connection refused".to_owned()),
                ),
            };
            std::future::ready(Ok(logo))
        })
        .await;
        let dmarc = dmarc::observe(&case.domain, &view).await;
        let report = evaluate(&observation, &dmarc);
        let mut problems = case.mismatches(&report);
        if let Some(want) = text("fetched") {
            let got = fetched.lock().unwrap().clone();
            if got != [want.clone()] {
                problems.push(format!("fetched {got:?}, want [{want}]"));
            }
        }
        failures.extend(problems.into_iter().map(|p| format!("{}: {p}", case.name)));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
