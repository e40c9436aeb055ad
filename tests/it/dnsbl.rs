//! The DNSBL check against blocklist zones served by the local DNS server: a listing with
//! its TXT reason, not listed (NXDOMAIN), a refusal code (`127.255.255.254`), an answer
//! outside 127/8, a zone that times out, IPv6 nibble names; one question per (address,
//! zone) per round for 100 domains sharing an MX host.

use crate::harness::{Daemon, dns_server, metric, wait_until};
use std::net::SocketAddr;
use std::time::Duration;

/// Every check but mx and dnsbl skipped; the blocklists and the domains on one server.
fn config(dns: SocketAddr, interval: &str, domains: &[String]) -> String {
    let names: String = domains.iter().map(|d| format!("  - name: {d}\n")).collect();
    format!(
        "defaults:\n  interval: {interval}\n  timeout: 2s\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  checks: {{ skip: [spf, dkim, dmarc, mta_sts, tls_rpt, nameservers, dnssec, registration] }}\n  dnsbl: {{ zones: [bl.example, clean.example] }}\ndomains:\n{names}"
    )
}

/// A blocklist zone; answers with TTL 0, so no resolver cache shares them: only the check's
/// own memo does.
fn blocklist(entries: &str) -> String {
    format!(
        "$ORIGIN bl.example.\n$TTL 0\n@ SOA ns.bl.example. h.bl.example. 1 3600 600 86400 0\n@ NS ns.bl.example.\nns A 192.0.2.53\n{entries}"
    )
}

const CLEAN: &str = "$ORIGIN clean.example.\n$TTL 0\n@ SOA ns.clean.example. h.clean.example. 1 3600 600 86400 0\n@ NS ns.clean.example.\nns A 192.0.2.53\n";

const LISTED: &str = "25.2.0.192 A 127.0.0.2\n25.2.0.192 TXT \"Listed: spam trap hits, see https://bl.example/192.0.2.25\"\n\
    26.2.0.192 A 127.255.255.254\n27.2.0.192 A 198.51.100.1\n\
    6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2 A 127.0.0.3\n";

fn shop_zone() -> String {
    "$ORIGIN shop.example.\n$TTL 60\n@ SOA ns1.shop.example. h.shop.example. 1 3600 600 86400 60\n@ NS ns1.shop.example.\nns1 A 192.0.2.53\n\
     listed MX 10 mx-listed\nmx-listed A 192.0.2.25\n\
     refused MX 10 mx-refused\nmx-refused A 192.0.2.26\n\
     rewritten MX 10 mx-rewritten\nmx-rewritten A 192.0.2.27\n\
     clean MX 10 mx-clean\nmx-clean A 192.0.2.28\n\
     v6 MX 10 mx-v6\nmx-v6 AAAA 2001:db8::6\n"
        .to_owned()
}

async fn findings(daemon: &Daemon, domain: &str) -> serde_json::Value {
    let body = daemon.get(&format!("/api/v1/domains/{domain}")).await.body;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["checks"]["dnsbl"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_refusals_and_timeouts() {
    let dns = dns_server(&[&shop_zone(), &blocklist(LISTED), CLEAN]).await;
    let domains: Vec<String> = ["listed", "refused", "rewritten", "clean", "v6"]
        .iter()
        .map(|d| format!("{d}.shop.example"))
        .collect();
    let daemon = Daemon::start(&config(dns.addr(), "2s", &domains)).await;
    daemon.wait_ready(Duration::from_secs(15)).await;

    let listed = findings(&daemon, "listed.shop.example").await;
    assert_eq!(listed["success"], true, "{listed}");
    let finding = &listed["findings"][0];
    assert_eq!(finding["code"], "dnsbl_listed");
    assert_eq!(finding["severity"], "critical");
    assert_eq!(
        finding["message"],
        "192.0.2.25 (MX host mx-listed.shop.example of listed.shop.example) is listed in bl.example (127.0.0.2): Listed: spam trap hits, see https://bl.example/192.0.2.25"
    );
    let v6 = findings(&daemon, "v6.shop.example").await;
    assert_eq!(
        v6["findings"][0]["evidence"]["address"], "2001:db8::6",
        "{v6}"
    );
    let clean = findings(&daemon, "clean.shop.example").await;
    assert_eq!(
        (clean["success"].clone(), clean["findings"].clone()),
        (true.into(), serde_json::json!([]))
    );
    for (domain, reason) in [
        ("refused", "bl.example answered 127.255.255.254"),
        ("rewritten", "not a blocklist code"),
    ] {
        let check = findings(&daemon, &format!("{domain}.shop.example")).await;
        assert_eq!(check["success"], false, "{check}");
        assert!(check["error"].as_str().unwrap().contains(reason), "{check}");
        assert_eq!(check["findings"], serde_json::json!([]), "never a listing");
    }
    // The listed pairs only, once each, as shared series.
    let text = daemon.get("/metrics").await.body;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("maildrift_dnsbl_listed{"))
        .collect();
    assert_eq!(
        series,
        [
            "maildrift_dnsbl_listed{zone=\"bl.example\",address=\"192.0.2.25\"} 1",
            "maildrift_dnsbl_listed{zone=\"bl.example\",address=\"2001:db8::6\"} 1"
        ]
    );

    // The blocklist stops answering: unknown, the listing kept (never "fixed" by a
    // timeout), the series kept.
    dns.set_zone_silent("bl.example", true);
    let labels = [("domain", "listed.shop.example"), ("check", "dnsbl")];
    daemon
        .wait_metric(
            "maildrift_check_success",
            &labels,
            0.0,
            Duration::from_secs(15),
        )
        .await;
    let silent = findings(&daemon, "listed.shop.example").await;
    // The resolver's own timeout, or the check's share of the domain's timeout first.
    let error = silent["error"].as_str().unwrap();
    assert!(
        error.contains("timeout") || error.contains("did not finish"),
        "{silent}"
    );
    assert_eq!(silent["findings"][0]["code"], "dnsbl_listed");
    assert!(
        metric(
            &daemon.get("/metrics").await.body,
            "maildrift_dnsbl_listed",
            &[("address", "192.0.2.25")]
        )
        .is_some()
    );

    // Delisted: the finding and the series go.
    dns.set_zone_silent("bl.example", false);
    dns.set_zone(&blocklist("")).unwrap();
    daemon
        .wait_metric(
            "maildrift_check_success",
            &labels,
            1.0,
            Duration::from_secs(15),
        )
        .await;
    let gone = wait_until(Duration::from_secs(15), || async {
        !daemon
            .get("/metrics")
            .await
            .body
            .contains("maildrift_dnsbl_listed{")
    })
    .await;
    assert!(gone, "series of delisted pairs leave");
    assert_eq!(
        findings(&daemon, "listed.shop.example").await["findings"],
        serde_json::json!([])
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_question_per_address_and_zone_for_a_hundred_domains() {
    let mut zone = String::from(
        "$ORIGIN hosted.example.\n$TTL 60\n@ SOA ns1.hosted.example. h.hosted.example. 1 3600 600 86400 60\n@ NS ns1.hosted.example.\nns1 A 192.0.2.53\nmx A 192.0.2.25\nmx AAAA 2001:db8::25\n",
    );
    let domains: Vec<String> = (0..100)
        .map(|i| format!("d{i:03}.hosted.example"))
        .collect();
    for i in 0..100 {
        zone.push_str(&format!("d{i:03} MX 10 mx.hosted.example.\n"));
    }
    let dns = dns_server(&[&zone, &blocklist(LISTED), CLEAN]).await;
    let daemon = Daemon::start(&config(dns.addr(), "1h", &domains)).await;
    daemon.wait_ready(Duration::from_secs(30)).await;

    let v4 = "25.2.0.192";
    let v6 = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2";
    // Listed: one A and one TXT question; not listed: one A question each.
    assert_eq!(dns.queries_for(&format!("{v4}.bl.example")), 2);
    assert_eq!(dns.queries_for(&format!("{v6}.bl.example")), 1);
    assert_eq!(dns.queries_for(&format!("{v4}.clean.example")), 1);
    assert_eq!(dns.queries_for(&format!("{v6}.clean.example")), 1);
    let text = daemon.get("/metrics").await.body;
    assert_eq!(
        text.matches("maildrift_dnsbl_listed{").count(),
        1,
        "one series, not 100"
    );
    for domain in ["d000.hosted.example", "d099.hosted.example"] {
        let critical = [
            ("domain", domain),
            ("check", "dnsbl"),
            ("severity", "critical"),
        ];
        assert_eq!(
            metric(&text, "maildrift_findings", &critical),
            Some(1.0),
            "{domain}"
        );
    }
    daemon.stop().await;
}
