//! Per-domain scope through the daemon and the binary: internationalized domain names
//! (config, `maildrift check`, the API, the status page), `checks.skip`, and the `parked`
//! preset.

use crate::analysis::run_check;
use crate::harness::{Daemon, dns_server, metric};
use std::net::SocketAddr;
use std::time::Duration;

/// bücher.example, as zone text (its A-label).
const BUCHER: &str = "$ORIGIN xn--bcher-kva.example.\n$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n@ MX 10 mx\nmx A 192.0.2.25\n@ TXT \"v=spf1 mx -all\"\n_dmarc TXT \"v=DMARC1; p=reject\"\n";

/// 例子.中国 (`xn--fsqu00a.xn--fiqs8s`), its MX host 邮件.例子.中国.
const LIZI: &str = "$ORIGIN xn--fsqu00a.xn--fiqs8s.\n$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n@ MX 10 xn--5nq051n\nxn--5nq051n A 192.0.2.26\n@ TXT \"v=spf1 mx -all\"\n";

fn parked_zone(mx: &str, spf: &str) -> String {
    format!(
        "$ORIGIN parked.example.\n$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n@ MX {mx}\nmail A 192.0.2.27\n@ TXT \"{spf}\"\n_dmarc TXT \"v=DMARC1; p=reject\"\n"
    )
}

fn config(dns: SocketAddr) -> String {
    format!(
        "defaults:\n  interval: 1s\n  timeout: 1s\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  checks: {{ skip: [registration] }}\n\
         domains:\n  - name: bücher.example\n    checks: {{ skip: [dnssec, registration, tls_rpt] }}\n  - name: 例子.中国\n    expect: {{ mx: [邮件.例子.中国] }}\n  - name: parked.example\n    provider: parked\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn idn_skip_and_parked_through_the_daemon() {
    let dns = dns_server(&[BUCHER, LIZI, &parked_zone("0 .", "v=spf1 -all")]).await;
    let daemon = Daemon::start(&config(dns.addr())).await;
    daemon.wait_ready(Duration::from_secs(10)).await;

    // IDN: A-labels in metrics, Unicode beside them in the API and on the status page;
    // the API takes either spelling.
    let text = daemon.get("/metrics").await.body;
    let lizi_mx = [("domain", "xn--fsqu00a.xn--fiqs8s"), ("check", "mx")];
    assert_eq!(
        metric(&text, "maildrift_check_success", &lizi_mx),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "maildrift_drift", &lizi_mx),
        Some(0.0),
        "expected MX 邮件.例子.中国 matches"
    );
    let unicode = daemon
        .get("/api/v1/domains/%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD")
        .await;
    assert_eq!(unicode.status, 200, "{}", unicode.body);
    let json: serde_json::Value = serde_json::from_str(&unicode.body).unwrap();
    assert_eq!(json["domain"], "xn--fsqu00a.xn--fiqs8s");
    assert_eq!(json["unicode"], "例子.中国");
    let list = daemon.get("/api/v1/domains").await.body;
    assert!(list.contains("\"unicode\":\"bücher.example\""), "{list}");
    let page = daemon.get("/").await.body;
    assert!(
        page.contains(">bücher.example (xn--bcher-kva.example)</a>"),
        "{page}"
    );
    assert!(
        page.contains(">例子.中国 (xn--fsqu00a.xn--fiqs8s)</a>"),
        "{page}"
    );
    let domain_page = daemon.get("/domains/b%C3%BCcher.example").await;
    assert_eq!(domain_page.status, 200);
    assert!(
        domain_page
            .body
            .contains("<h1>bücher.example (xn--bcher-kva.example) <span")
    );

    // Skipped checks export nothing for that domain (and so never alert); others do.
    for check in ["dnssec", "tls_rpt", "registration"] {
        let skipped = [("domain", "xn--bcher-kva.example"), ("check", check)];
        assert_eq!(
            metric(&text, "maildrift_check_success", &skipped),
            None,
            "{check}"
        );
    }
    let kept = [("domain", "xn--fsqu00a.xn--fiqs8s"), ("check", "tls_rpt")];
    assert!(metric(&text, "maildrift_check_success", &kept).is_some());
    let bucher: serde_json::Value = serde_json::from_str(
        &daemon
            .get("/api/v1/domains/xn--bcher-kva.example")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        bucher["skipped"],
        serde_json::json!(["tls_rpt", "dnssec", "registration"])
    );
    assert!(bucher["checks"].get("dnssec").is_none(), "{bucher}");
    assert!(
        domain_page
            .body
            .contains("dnssec <span class=\"state s-pending\">skipped</span>")
    );

    // Parked: null MX, v=spf1 -all, p=reject as the preset expects: no drift.
    for check in ["mx", "spf", "dmarc"] {
        let labels = [("domain", "parked.example"), ("check", check)];
        assert_eq!(
            metric(&text, "maildrift_drift", &labels),
            Some(0.0),
            "{check}"
        );
        assert_eq!(
            metric(&text, "maildrift_check_success", &labels),
            Some(1.0),
            "{check}"
        );
    }
    // Someone points the parked domain's MX at a host and lets an address send: critical
    // drift on both.
    dns.set_zone(&parked_zone(
        "10 mail.parked.example.",
        "v=spf1 ip4:192.0.2.27 -all",
    ))
    .unwrap();
    for check in ["mx", "spf"] {
        let labels = [("domain", "parked.example"), ("check", check)];
        daemon
            .wait_metric("maildrift_drift", &labels, 1.0, Duration::from_secs(10))
            .await;
        let critical = [
            ("domain", "parked.example"),
            ("check", check),
            ("severity", "critical"),
        ];
        let open = daemon
            .metric("maildrift_findings", &critical)
            .await
            .unwrap_or(0.0);
        assert!(open >= 1.0, "{check}: {open}");
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_takes_and_shows_internationalized_names() {
    let dns = dns_server(&[BUCHER, LIZI]).await;
    let server = dns.addr().to_string();
    let args = |format: &'static str| {
        vec![
            "check".to_owned(),
            "--resolver".to_owned(),
            server.clone(),
            "--nameserver".to_owned(),
            server.clone(),
            "例子.中国".to_owned(),
            "--format".to_owned(),
            format.to_owned(),
        ]
    };
    let json_args = args("json");
    let (_, stdout, stderr) =
        run_check(&json_args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let domain = &json["domains"][0];
    assert_eq!(domain["domain"], "xn--fsqu00a.xn--fiqs8s");
    assert_eq!(domain["unicode"], "例子.中国");
    assert_eq!(domain["checks"]["mx"]["success"], true, "{domain}");
    assert_eq!(
        domain["checks"]["mx"]["records"][0]["values"][0],
        "10 xn--5nq051n.xn--fsqu00a.xn--fiqs8s"
    );
    // .中国 has no RDAP server in the shipped bootstrap file: unknown, with the reason.
    let registration = &domain["checks"]["registration"];
    assert_eq!(registration["success"], false);
    assert!(
        registration["error"]
            .as_str()
            .unwrap()
            .contains("no RDAP server for .中国 (xn--fiqs8s)"),
        "{registration}"
    );
    let text_args = args("text");
    let (_, stdout, _) = run_check(&text_args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(
        stdout.starts_with("例子.中国 (xn--fsqu00a.xn--fiqs8s)\n"),
        "{stdout}"
    );
}
