//! SPF check tests: the table in `tests/fixtures/checks/spf.yaml`, plus the tree, networks
//! and limits that the table does not show.

use super::*;
use crate::checks::{Registry, fixture};
use crate::dns::fake::FakeDns;
use std::sync::Arc;

fn view(dns: FakeDns) -> (Arc<FakeDns>, DnsView) {
    let dns = Arc::new(dns);
    let view = DnsView::new(dns.clone(), dns.clone());
    (dns, view)
}

#[tokio::test]
async fn fixture_cases() {
    let cases = fixture::load("spf.yaml");
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let setup = case.setup(Registry::empty().with(Spf));
        let run = setup.observe().await;
        let report = setup.evaluate(&run);
        let observation = run.observation::<Spf>().expect("observed");
        let mut problems = case.mismatches(&report);
        if let Some(want) = case.lookups
            && observation.dns_lookups() != Some(want)
        {
            problems.push(format!(
                "lookups {:?}, want {want}",
                observation.dns_lookups()
            ));
        }
        if let Some(want) = case.void
            && observation.void_lookups() != Some(want)
        {
            problems.push(format!(
                "void {:?}, want {want}",
                observation.void_lookups()
            ));
        }
        if let Some(want) = &case.networks
            && &observation.authorized_networks() != want
        {
            let got = observation.authorized_networks();
            problems.push(format!("networks {got:?}, want {want:?}"));
        }
        if !report.success && (observation.dns_lookups().is_some() || !report.findings.is_empty()) {
            problems.push("inconclusive, yet counts or findings".to_owned());
        }
        for problem in problems {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn tree_keeps_records_counts_and_children() {
    let dns = FakeDns::new();
    dns.txt(
        "example.com",
        &["v=spf1   include:a.example  mx ip4:192.0.2.1 -all"],
    )
    .txt(
        "a.example",
        &["v=spf1 include:b.example a:%{i}.x.example ~all"],
    )
    .txt("b.example", &["v=spf1 ip6:2001:db8::/32 ?all"])
    .mx("example.com", &[(10, "mx.example.com")])
    .a("mx.example.com", &["198.51.100.9"]);
    let (_, view) = view(dns);
    let obs = observe("Example.COM.", &view, &SpfLimits::default()).await;
    assert_eq!(obs.domain, "example.com");
    assert_eq!(
        obs.records,
        vec!["v=spf1 include:a.example mx ip4:192.0.2.1 -all"]
    );
    assert_eq!(obs.ttl, Some(300));
    let tree = obs.tree.as_ref().unwrap();
    assert_eq!(tree.lookups, 2);
    assert_eq!(tree.total_lookups(), 4);
    assert_eq!(tree.includes, vec!["a.example"]);
    let a = &tree.children[0];
    assert_eq!(
        (a.domain.as_str(), a.via),
        ("a.example", Via::Include(Qualifier::Pass))
    );
    assert_eq!(a.unexpanded, vec!["a:%{i}.x.example"]);
    assert_eq!(a.children[0].domain, "b.example");
    assert_eq!(a.children[0].all, Some(Qualifier::Neutral));
    assert_eq!(obs.dns_lookups(), Some(4));
    assert_eq!(obs.void_lookups(), Some(0));
    assert_eq!(
        obs.authorized_networks(),
        vec!["192.0.2.1/32", "198.51.100.9/32", "2001:db8::/32"]
    );
    let json = serde_json::to_value(&obs).unwrap();
    assert_eq!(
        json["tree"]["children"][0]["children"][0]["domain"],
        "b.example"
    );
    assert_eq!(json["error"], serde_json::Value::Null);
}

#[tokio::test]
async fn lookup_bound_stops_expansion_and_says_so() {
    // A chain of 60 includes: expansion stops at the bound, the count is a lower bound.
    let dns = FakeDns::new();
    for i in 0..60 {
        let next = format!("v=spf1 include:n{}.example -all", i + 1);
        dns.txt(&format!("n{i}.example"), &[next.as_str()]);
    }
    let (dns, view) = view(dns);
    let limits = SpfLimits {
        max_depth: 100,
        ..SpfLimits::default()
    };
    let obs = observe("n0.example", &view, &limits).await;
    assert_eq!(obs.dns_lookups(), Some(50));
    assert_eq!(
        obs.truncated.as_deref(),
        Some("expansion stopped at 50 DNS lookups")
    );
    assert_eq!(
        dns.asked().len(),
        51,
        "top TXT plus one TXT per counted include"
    );
    let report = evaluate("n0.example", &obs, None, None);
    assert_eq!(report.findings.len(), 1);
    assert!(
        report.findings[0].message.contains("at least 50"),
        "{}",
        report.findings[0].message
    );

    let obs = observe("n0.example", &view, &SpfLimits::default()).await;
    assert_eq!(
        obs.truncated.as_deref(),
        Some("expansion stopped at include depth 10")
    );
    assert_eq!(obs.dns_lookups(), Some(11));
}

#[tokio::test]
async fn dns_failure_of_the_top_record_is_inconclusive() {
    let dns = FakeDns::new();
    dns.fail(
        "example.com",
        crate::dns::RecordType::Txt,
        DnsError::Rcode {
            server: "192.0.2.53:53".to_owned(),
            name: "example.com".to_owned(),
            rtype: crate::dns::RecordType::Txt,
            rcode: "SERVFAIL".to_owned(),
        },
    );
    let (_, view) = view(dns);
    let obs = observe("example.com", &view, &SpfLimits::default()).await;
    let report = evaluate("example.com", &obs, None, None);
    assert!(!report.success);
    assert_eq!(
        report.error.as_deref(),
        Some("192.0.2.53:53 answered SERVFAIL for example.com TXT")
    );
    assert_eq!(obs.dns_lookups(), None);
    assert_eq!(obs.void_lookups(), None);
}

#[tokio::test]
async fn lookups_of_one_record_are_concurrent() {
    let dns = FakeDns::new();
    dns.txt(
        "example.com",
        &["v=spf1 include:a.example include:b.example a:c.example -all"],
    )
    .txt("a.example", &["v=spf1 ip4:192.0.2.1 -all"])
    .txt("b.example", &["v=spf1 ip4:192.0.2.2 -all"])
    .a("c.example", &["192.0.2.3"]);
    let gated = [
        ("a.example", crate::dns::RecordType::Txt),
        ("b.example", crate::dns::RecordType::Txt),
        ("c.example", crate::dns::RecordType::A),
    ];
    let dns = Arc::new(fixture::GatedDns::new(dns, &gated));
    let view = DnsView::new(dns.clone(), dns);
    let limits = SpfLimits::default();
    let observe = observe("example.com", &view, &limits);
    let obs = tokio::time::timeout(std::time::Duration::from_secs(5), observe)
        .await
        .expect("lookups of one record were asked one after another");
    assert_eq!(obs.dns_lookups(), Some(3));
    assert_eq!(obs.authorized_networks().len(), 3);
}

#[tokio::test]
async fn check_host_cases() {
    let cases = fixture::load("spf_check_host.yaml");
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let dns = case.fake_dns();
        let text = |key: &str| case.want.get(key).and_then(|v| v.as_str());
        let results = case.want["results"].as_object().expect("want.results");
        for (i, (ip, want)) in results.iter().enumerate() {
            let ip: std::net::IpAddr = ip.parse().expect("IP in want.results");
            let default_sender = format!("postmaster@{}", case.domain);
            let sender = text("sender").unwrap_or(&default_sender);
            let connection = SpfConnection::new(ip, sender, text("helo"));
            let got = check_host(&dns, &connection).await;
            let mut problems = Vec::new();
            if got.result.as_str() != want.as_str().unwrap_or_default() {
                problems.push(format!(
                    "{ip} gives {} ({}), want {want}",
                    got.result.as_str(),
                    got.reason
                ));
            }
            // Counts and explanation are those of the first IP.
            let first = |key: &str| case.want.get(key).filter(|_| i == 0);
            if let Some(want) = first("lookups")
                && Some(u64::from(got.lookups)) != want.as_u64()
            {
                problems.push(format!("{} lookups, want {want}", got.lookups));
            }
            if let Some(want) = first("void")
                && Some(u64::from(got.void_lookups)) != want.as_u64()
            {
                problems.push(format!("{} void lookups, want {want}", got.void_lookups));
            }
            if let Some(want) = first("explanation")
                && got.explanation.as_deref() != want.as_str()
            {
                problems.push(format!("explanation {:?}, want {want}", got.explanation));
            }
            if let Some(want) = first("trace") {
                let steps: Vec<String> = got
                    .trace
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {}{}",
                            s.domain,
                            s.term,
                            if s.matched { " +" } else { "" }
                        )
                    })
                    .collect();
                if serde_json::json!(steps) != *want {
                    problems.push(format!("trace {steps:?}, want {want}"));
                }
            }
            failures.extend(problems.into_iter().map(|p| format!("{}: {p}", case.name)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Answers nothing, ever.
struct SilentDns;

impl crate::dns::DnsLookup for SilentDns {
    fn lookup<'a>(
        &'a self,
        _name: &'a str,
        _rtype: crate::dns::RecordType,
    ) -> futures::future::BoxFuture<'a, crate::dns::LookupResult> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn an_evaluation_that_outlasts_the_time_limit_is_temperror_and_inconclusive() {
    let connection = SpfConnection::new("192.0.2.1".parse().unwrap(), "a@example.com", None);
    let started = tokio::time::Instant::now();
    let got = check_host(&SilentDns, &connection).await;
    assert_eq!(started.elapsed(), check_host::TIME_LIMIT);
    assert_eq!(got.result, SpfResult::TempError);
    assert_eq!(got.reason, "check_host() took longer than 20s");
    assert!(
        got.dns_error.is_some(),
        "the daemon must see it as inconclusive"
    );
    assert_eq!(
        (got.helo.as_str(), got.sender.as_str()),
        ("example.com", "a@example.com")
    );
}
