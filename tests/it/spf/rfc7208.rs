//! The OpenSPF RFC 7208 test suite (`rfc7208-tests.yml` from the pyspf source distribution,
//! downloaded by `.ci/run`, never copied here): every case through the public
//! `check_host()` with the case's IP, sender and HELO, against its scenario's zone data on
//! the in-process DNS server. Every result must be one the suite allows, and every
//! explanation the suite gives must be ours ("DEFAULT" meaning: no `exp=` explanation).

use super::zonedata::{ScenarioServer, ZoneData};
use futures::future::join_all;
use maildrift::checks::spf::{SpfConnection, check_host};
use maildrift::dns::QueryMetrics;
use maildrift::dns::hickory::{RecursiveResolver, ResolverOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use yaml_serde::Value;

/// Where `.ci/run` puts the suite; `MAILDRIFT_RFC7208_TESTS` overrides it.
fn suite_path() -> PathBuf {
    match std::env::var_os("MAILDRIFT_RFC7208_TESTS") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/rfc7208/rfc7208-tests.yml"
        )),
    }
}

/// One scenario (a YAML document): cases and the zone data they run against.
#[derive(Debug, Deserialize)]
struct Scenario {
    description: String,
    tests: BTreeMap<String, Case>,
    zonedata: Value,
}

/// One case; the fields the suite documents but a driver does not use are ignored.
#[derive(Debug, Deserialize)]
struct Case {
    host: String,
    mailfrom: String,
    helo: String,
    /// One result, or the list of allowed results.
    result: Value,
    explanation: Option<String>,
}

impl Case {
    fn allowed(&self) -> Vec<String> {
        match &self.result {
            Value::Sequence(items) => items
                .iter()
                .map(|v| v.as_str().expect("result name").to_owned())
                .collect(),
            other => vec![other.as_str().expect("result name").to_owned()],
        }
    }
}

/// What our evaluation says about one case.
struct Outcome {
    result: String,
    explanation: Option<String>,
    reason: String,
}

/// One case through the recursive resolver the daemon uses. A `TIMEOUT` question costs
/// timeout × attempts; loopback answers take milliseconds, the margin is for a busy machine.
async fn evaluate(server: &ScenarioServer, case: &Case) -> Outcome {
    let options = ResolverOptions {
        timeout: Duration::from_secs(2),
        attempts: 2,
    };
    let dns =
        RecursiveResolver::with_servers(&[server.addr], &options, QueryMetrics::unregistered());
    let connection = SpfConnection {
        ip: case.host.parse().expect("case IP"),
        sender: case.mailfrom.clone(),
        helo: case.helo.clone(),
    };
    let got = check_host(&dns, &connection).await;
    Outcome {
        result: got.result.as_str().to_owned(),
        explanation: got.explanation,
        reason: got.reason,
    }
}

/// Runs one scenario's cases concurrently; returns (passed, failures).
async fn run_scenario(scenario: &Scenario) -> (usize, Vec<String>) {
    let server = ScenarioServer::start(ZoneData::from_yaml(&scenario.zonedata)).await;
    let outcomes = join_all(scenario.tests.values().map(|case| evaluate(&server, case))).await;
    let mut failures = Vec::new();
    for ((id, case), outcome) in scenario.tests.iter().zip(outcomes) {
        let allowed = case.allowed();
        let mut problems = Vec::new();
        if !allowed.contains(&outcome.result) {
            problems.push(format!(
                "result {} ({}), allowed {allowed:?}",
                outcome.result, outcome.reason
            ));
        }
        if let Some(want) = &case.explanation {
            let want = (want != "DEFAULT").then_some(want);
            if outcome.explanation.as_ref() != want {
                problems.push(format!(
                    "explanation {:?}, want {want:?}",
                    outcome.explanation
                ));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{id} ({}): {} [ip {}, mailfrom {:?}, helo {:?}]",
                scenario.description,
                problems.join("; "),
                case.host,
                case.mailfrom,
                case.helo
            ));
        }
    }
    (scenario.tests.len() - failures.len(), failures)
}

#[tokio::test(flavor = "multi_thread")]
async fn openspf_rfc7208_suite() {
    let path = suite_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is missing in CI: .ci/run downloads it from the pyspf sdist on PyPI",
            path.display()
        );
        eprintln!(
            "SKIPPED openspf_rfc7208_suite: {} not found (bash .ci/run downloads it from the \
             pyspf sdist on PyPI; or set MAILDRIFT_RFC7208_TESTS to its path)",
            path.display()
        );
        return;
    };
    let scenarios: Vec<Scenario> = yaml_serde::Deserializer::from_str(&text)
        .map(|document| Scenario::deserialize(document).expect("suite scenario"))
        .collect();
    let total: usize = scenarios.iter().map(|s| s.tests.len()).sum();
    assert!(total >= 200, "only {total} cases in {}", path.display());
    let results = join_all(scenarios.iter().map(run_scenario)).await;
    let passed: usize = results.iter().map(|(p, _)| p).sum();
    let failures: Vec<&String> = results.iter().flat_map(|(_, f)| f).collect();
    eprintln!("OpenSPF RFC 7208 suite: {passed} of {total} cases pass");
    assert!(
        failures.is_empty(),
        "{passed} of {total} cases pass; failing:\n{}",
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
