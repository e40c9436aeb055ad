//! `?scope=fleet` on `/api/v1/domains`, `/api/v1/domains/{domain}` and the status pages:
//! two shard daemons (`--shard 0/2`, `1/2`) on one PostgreSQL each show only their own
//! domains by default and the whole fleet, from the shared store, with the fleet scope;
//! on SQLite (one instance) the fleet scope reads the same domains from the local store.
//! A scope other than `shard` or `fleet` is a 400 naming both.

use super::fleet::{drift, postgres, start_shard, with_state, zone};
use super::{StateDaemon, of_kind, ready_daemon};
use crate::harness::{dns_server, metric, request, request_body, wait_until};
use maildrift::app::Shard;
use serde_json::Value;
use std::time::Duration;

/// The `domain` names of an API answer, in order.
fn names(list: &Value) -> Vec<String> {
    list["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap().to_owned())
        .collect()
}

/// The domains with a row in a status page, in order.
fn rows(page: &str) -> Vec<String> {
    page.split("<tr class=\"domain-row\" data-domain=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The entry of `domain` in an API answer.
fn entry<'a>(list: &'a Value, domain: &str) -> &'a Value {
    list["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not listed: {list}"))
}

/// Every path that takes `scope` answers 400 to another value, naming the allowed ones.
async fn bad_scopes_are_refused(daemon: &StateDaemon, domain: &str) {
    for path in [
        "/api/v1/domains?scope=world".to_owned(),
        format!("/api/v1/domains/{domain}?scope=world"),
        "/?scope=world".to_owned(),
        format!("/domains/{domain}?scope=world"),
        "/api/v1/events?scope=world".to_owned(),
    ] {
        let response = request(daemon.addr, "GET", &path).await;
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        assert!(
            response.body.contains("neither shard nor fleet"),
            "{path}: {}",
            response.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_shows_the_whole_fleet_with_scope_fleet() {
    let Some(pg) = postgres("every_shard_shows_the_whole_fleet_with_scope_fleet") else {
        return;
    };
    let domains: Vec<String> = (0..8).map(|i| format!("v{i}.fleet.example")).collect();
    let owned = |index: u32| -> Vec<String> {
        let mut mine: Vec<String> = domains
            .iter()
            .filter(|d| Shard::owner(d, 2) == index)
            .cloned()
            .collect();
        mine.sort();
        mine
    };
    let (mine, theirs) = (owned(0), owned(1));
    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "both shards own some"
    );
    let zones: Vec<String> = domains.iter().map(|d| zone(d, "mx-a")).collect();
    let dns = dns_server(&zones.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // Labels from the config, one with markup that every page must escape.
    let mut yaml = format!(
        "defaults:\n  interval: 300ms\n  timeout: 300ms\n  resolvers: [\"{0}\"]\n  nameservers: [\"{0}\"]\ndomains:\n",
        dns.addr()
    );
    for (i, domain) in domains.iter().enumerate() {
        let team = if domain == &theirs[0] {
            "\"<b>t1</b>\"".to_owned()
        } else {
            format!("t{}", i % 2)
        };
        yaml.push_str(&format!(
            "  - name: {domain}\n    labels: {{ team: {team} }}\n"
        ));
    }
    let yaml = with_state(&pg, &yaml);
    let dir = tempfile::tempdir().unwrap();
    let shards = [
        start_shard(dir.path(), &yaml, Some(Shard { index: 0, count: 2 })).await,
        start_shard(dir.path(), &yaml, Some(Shard { index: 1, count: 2 })).await,
    ];
    let stored = "SELECT count(DISTINCT domain) FROM check_states WHERE check_name = 'mx'";
    let all_stored = wait_until(Duration::from_secs(20), || async {
        pg.query_i64("maildrift", stored) == 8
    })
    .await;
    assert!(
        all_stored,
        "{} domains stored",
        pg.query_i64("maildrift", stored)
    );
    // One of shard 1's domains drifts; shard 0 sees it through the store.
    let drifting = theirs.last().unwrap().clone();
    dns.set_zone(&zone(&drifting, "mx-evil")).unwrap();
    let reported = wait_until(Duration::from_secs(20), || async {
        drift(&shards[1], &drifting).await == Some(1.0)
    })
    .await;
    assert!(reported, "shard 1 did not report the drift");
    let seen = wait_until(Duration::from_secs(20), || async {
        let fleet = shards[0].json("/api/v1/domains?scope=fleet").await;
        entry(&fleet, &drifting)["checks"]["mx"]["drift"] == true
    })
    .await;
    assert!(
        seen,
        "shard 0 never read the drift of {drifting} from the store"
    );
    // A domain only the store knows (removed from the config): listed, marked.
    pg.execute(
        "maildrift",
        "INSERT INTO check_states (domain, check_name, state_json, updated_at) VALUES \
         ('gone.fleet.example', 'mx', '{\"success\":true,\"drift\":false,\"findings\":[],\"records\":[],\"last_checked\":1.0}', 1.0)",
    );
    let mut everything = domains.clone();
    everything.push("gone.fleet.example".to_owned());
    everything.sort();

    for (index, daemon) in shards.iter().enumerate() {
        let (own, other) = if index == 0 {
            (&mine, &theirs)
        } else {
            (&theirs, &mine)
        };
        // The API: the shard by default, the fleet with the scope.
        assert_eq!(&names(&daemon.json("/api/v1/domains").await), own);
        assert_eq!(
            &names(&daemon.json("/api/v1/domains?scope=shard").await),
            own
        );
        let fleet = daemon.json("/api/v1/domains?scope=fleet").await;
        assert_eq!(names(&fleet), everything, "shard {index}");
        for domain in &domains {
            let shown = entry(&fleet, domain);
            assert_eq!(shown["checks"]["mx"]["success"], true, "{domain}: {shown}");
            assert_eq!(
                shown["checks"]["mx"]["drift"],
                *domain == drifting,
                "{domain}: {shown}"
            );
            assert!(shown["last_checked"].as_f64().unwrap() > 1.6e9, "{shown}");
            assert!(shown["labels"]["team"].is_string(), "{shown}");
            assert!(shown.get("configured").is_none(), "{shown}");
        }
        assert_eq!(entry(&fleet, "gone.fleet.example")["configured"], false);
        // One domain of the other shard: 404 in the shard scope, its stored records and
        // learned baseline in the fleet scope.
        let remote = &other[0];
        let response = request(daemon.addr, "GET", &format!("/api/v1/domains/{remote}")).await;
        assert_eq!(response.status, 404, "{}", response.body);
        let detail = daemon
            .json(&format!("/api/v1/domains/{remote}?scope=fleet"))
            .await;
        assert_eq!(
            detail["checks"]["mx"]["baseline"],
            serde_json::json!([format!("10 mx-a.{remote}")]),
            "{detail}"
        );
        assert!(detail["events"].as_array().is_some_and(|e| !e.is_empty()));
        assert!(detail.get("interval_seconds").is_none(), "not watched here");
        let local = daemon
            .json(&format!("/api/v1/domains/{}?scope=fleet", own[0]))
            .await;
        assert_eq!(local["interval_seconds"], 0.3, "{local}");
        let response = request(
            daemon.addr,
            "GET",
            "/api/v1/domains/nowhere.example?scope=fleet",
        )
        .await;
        assert_eq!(response.status, 404, "{}", response.body);

        // The overview: this instance's rows, a link to the fleet; the fleet's rows, the
        // scope said and a link back, every domain link keeping the scope.
        let page = request(daemon.addr, "GET", "/").await;
        assert_eq!(page.status, 200);
        let mut shown = rows(&page.body);
        shown.sort();
        assert_eq!(&shown, own);
        assert!(page.body.contains("data-scope=\"shard\""));
        assert!(
            page.body.contains("<a href=\"/?scope=fleet\">"),
            "no link to the fleet"
        );
        let page = request(daemon.addr, "GET", "/?scope=fleet&sort=domain&dir=asc").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(rows(&page.body), everything, "shard {index}");
        assert!(page.body.contains("data-scope=\"fleet\""));
        assert!(page.body.contains("9 domains in the fleet"));
        assert!(
            page.body.contains("<a href=\"/?sort=domain\">"),
            "no link back to this instance's domains"
        );
        assert!(page.body.contains(&format!(
            "data-domain=\"{drifting}\" data-state=\"drift\"><td><a href=\"/domains/{drifting}?scope=fleet\">"
        )));
        assert!(page.body.contains("/api/v1/events?scope=fleet"));
        assert!(page.body.contains("not in this instance's config"));
        assert!(
            page.body.contains("team=&lt;b&gt;t1&lt;/b&gt;"),
            "label not escaped"
        );
        assert!(!page.body.contains("<b>t1</b>"), "raw markup from a label");
        // The label search covers the other shard's domains too.
        let page = request(daemon.addr, "GET", "/?scope=fleet&q=team%3Dt0").await;
        let mut found = rows(&page.body);
        found.sort();
        let mut expected: Vec<String> = domains
            .iter()
            .enumerate()
            .filter(|(i, d)| i % 2 == 0 && **d != theirs[0])
            .map(|(_, d)| d.clone())
            .collect();
        expected.sort();
        assert_eq!(found, expected);
        // The other shard's domain page: 404 here, shown from the store with the scope.
        let page = request(daemon.addr, "GET", &format!("/domains/{remote}")).await;
        assert_eq!(page.status, 404);
        let page = request(
            daemon.addr,
            "GET",
            &format!("/domains/{drifting}?scope=fleet"),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("data-scope=\"fleet\""));
        assert!(page.body.contains("<a href=\"/?scope=fleet\">"));
        assert!(
            page.body.contains(&format!("mx-evil.{drifting}")),
            "the stored records"
        );
        assert!(page.body.contains(">DRIFT</span>"), "drift not shown");
        // A link to this instance's page of the domain only where it watches it.
        assert_eq!(
            page.body
                .contains(&format!("<a href=\"/domains/{drifting}\">")),
            index == 1,
            "shard {index}: the link to the shard page of {drifting}"
        );
        let page = request(daemon.addr, "GET", &format!("/domains/{}", own[0])).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("data-scope=\"shard\""));
        assert!(
            page.body
                .contains(&format!("<a href=\"/domains/{}?scope=fleet\">", own[0]))
        );
        bad_scopes_are_refused(daemon, remote).await;
        // `/metrics` stays per shard.
        let body = request(daemon.addr, "GET", "/metrics").await.body;
        assert_eq!(
            metric(&body, "maildrift_domains", &[]),
            Some(own.len() as f64)
        );
        for domain in other {
            assert_eq!(
                metric(
                    &body,
                    "maildrift_drift",
                    &[("domain", domain), ("check", "mx")]
                ),
                None,
                "{domain} exported by shard {index}"
            );
        }
    }
    // Shard 0 takes a note on shard 1's incident from its fleet page, and goes back there.
    let opened = shards[0]
        .events(&format!("scope=fleet&domain={drifting}&check=mx"))
        .await;
    let id = of_kind(&opened, "opened", Some("drift"))[0]["id"]
        .as_i64()
        .unwrap();
    let form = format!("incident={id}&channel=ticket&text=called+the+provider");
    let response = request_body(
        shards[0].addr,
        "POST",
        &format!("/domains/{drifting}/notes"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 303, "{}", response.body);
    assert!(
        response
            .headers
            .contains(&format!("/domains/{drifting}?scope=fleet&note=")),
        "{}",
        response.headers
    );
    let page = request(
        shards[0].addr,
        "GET",
        &format!("/domains/{drifting}?scope=fleet"),
    )
    .await;
    assert!(page.body.contains("called the provider"));
    for daemon in shards {
        daemon.stop().await;
    }
}

#[tokio::test]
async fn with_sqlite_the_fleet_scope_reads_the_same_domains_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, daemon) = ready_daemon(dir.path()).await;
    dns.set_zone(&super::learned_zone("mx-b")).unwrap();
    daemon.wait_drift(1.0).await;
    let shard = daemon.json("/api/v1/domains").await;
    let fleet = daemon.json("/api/v1/domains?scope=fleet").await;
    assert_eq!(names(&fleet), names(&shard));
    assert_eq!(names(&fleet), ["declared.example", "learned.example"]);
    for domain in ["declared.example", "learned.example"] {
        let (stored, live) = (entry(&fleet, domain), entry(&shard, domain));
        assert_eq!(
            stored["checks"]["mx"]["drift"],
            live["checks"]["mx"]["drift"]
        );
        assert_eq!(
            stored["checks"]["mx"]["findings"],
            live["checks"]["mx"]["findings"]
        );
        assert_eq!(stored["labels"], live["labels"]);
    }
    assert_eq!(
        entry(&fleet, "learned.example")["checks"]["mx"]["drift"],
        true
    );
    let page = request(daemon.addr, "GET", "/?scope=fleet").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut shown = rows(&page.body);
    shown.sort();
    assert_eq!(shown, ["declared.example", "learned.example"]);
    assert!(page.body.contains(
        "data-domain=\"learned.example\" data-state=\"drift\"><td><a href=\"/domains/learned.example?scope=fleet\">"
    ));
    let page = request(daemon.addr, "GET", "/domains/learned.example?scope=fleet").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(">DRIFT</span>"));
    bad_scopes_are_refused(&daemon, "learned.example").await;
    daemon.stop().await;
}
