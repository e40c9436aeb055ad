//! `maildrift spf` through the binary against the in-process DNS server: result, exit code,
//! explanation, counts and trace in text and JSON; usage errors; data only our DNS layer
//! reads; and `expect.spf.authorizes` entries with a sender and HELO in `maildrift check`.

use super::zonedata::name;
// Runs the binary with arguments: (exit code, stdout, stderr).
use crate::analysis::run_check as run;
use crate::harness::dns_server;
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{RData, Record};
use maildrift::dns::server::LocalDnsServer;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};

const SHOP_ZONE: &str = r#"
$ORIGIN shop.example.
$TTL 300
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 mx1.shop.example.
mx1      A   192.0.2.25
@        TXT "v=spf1 include:spf.provider.example mx -all exp=why.shop.example"
why      TXT "%{i} is not a sender of %{d}: see https://shop.example/mail"
mail     TXT "v=spf1 a:%{h} -all"
out      A   203.0.113.9
"#;

const PROVIDER_ZONE: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
spf      TXT "v=spf1 ip4:198.51.100.0/24 -all"
"#;

/// `maildrift spf` asking `server` as resolver and as authoritative server.
async fn spf(server: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["spf", "--resolver", server, "--nameserver", server];
    all.extend_from_slice(args);
    run(&all).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_covered_ip_passes_and_an_uncovered_one_fails_with_its_explanation() {
    let dns = dns_server(&[SHOP_ZONE, PROVIDER_ZONE]).await;
    let server = dns.addr().to_string();

    let (code, stdout, stderr) = spf(&server, &["198.51.100.7", "orders@shop.example"]).await;
    assert_eq!(code, Some(0), "pass exits 0:\n{stdout}\n{stderr}");
    assert!(
        stdout
            .starts_with("198.51.100.7 sending as orders@shop.example (HELO shop.example): pass\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  DNS lookups: 1 of 10, void lookups: 0 of 2\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  shop.example: include:spf.provider.example → match\n      \
             TXT spf.provider.example → \"v=spf1 ip4:198.51.100.0/24 -all\"\n    \
             spf.provider.example: ip4:198.51.100.0/24 → match\n"
        ),
        "{stdout}"
    );

    // Not covered: the include does not match, nor the MX host; -all fails, explained. The
    // README shows this very output.
    let (code, stdout, _) = spf(&server, &["203.0.113.9", "orders@shop.example"]).await;
    assert_eq!(code, Some(1), "{stdout}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let shown = readme
        .split_once("$ maildrift spf 203.0.113.9 orders@shop.example\n")
        .and_then(|(_, rest)| rest.split_once("$ echo $?"))
        .map(|(output, _)| output)
        .expect("the README shows `maildrift spf 203.0.113.9 orders@shop.example`");
    assert_eq!(stdout, shown, "the README's example is out of date");
    let (code, stdout, stderr) = spf(
        &server,
        &["--format", "json", "203.0.113.9", "orders@shop.example"],
    )
    .await;
    assert_eq!(code, Some(1), "fail exits 1:\n{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(got["result"], "fail");
    assert_eq!(
        got["explanation"],
        "203.0.113.9 is not a sender of shop.example: see https://shop.example/mail"
    );
    assert_eq!(
        (got["lookups"].clone(), got["void_lookups"].clone()),
        (json!(2), json!(0))
    );
    let steps: Vec<(String, String, bool)> = got["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["domain", "matched", "queries", "term"], "{s}");
            let text = |k: &str| s[k].as_str().unwrap().to_owned();
            (
                text("domain"),
                text("term"),
                s["matched"].as_bool().unwrap(),
            )
        })
        .collect();
    let step = |d: &str, t: &str, m| (d.to_owned(), t.to_owned(), m);
    assert_eq!(
        steps,
        [
            step("shop.example", "include:spf.provider.example", false),
            step("spf.provider.example", "ip4:198.51.100.0/24", false),
            step("spf.provider.example", "-all", true),
            step("shop.example", "mx", false),
            step("shop.example", "-all", true),
            step("shop.example", "exp=why.shop.example", true),
        ]
    );
    assert_eq!(
        got["trace"][3]["queries"],
        json!([
            {"name": "shop.example", "type": "MX", "status": "records", "answer": ["10 mx1.shop.example."]},
            {"name": "mx1.shop.example", "type": "A", "status": "records", "answer": ["192.0.2.25"]},
        ])
    );

    // The null sender checks the HELO name's policy; %{h} is that name.
    let (code, stdout, _) = spf(&server, &["--helo", "out.shop.example", "203.0.113.9", ""]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(": none\n"),
        "no record at out.shop.example:\n{stdout}"
    );
    let (code, stdout, _) = spf(
        &server,
        &[
            "--helo",
            "out.shop.example",
            "203.0.113.9",
            "bounce@mail.shop.example",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("mail.shop.example: a:%{h} → match\n"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_and_name_the_input() {
    for (args, quoted) in [
        (vec!["spf", "not-an-ip", "a@shop.example"], "not-an-ip"),
        (vec!["spf", "192.0.2.1"], "<SENDER>"),
        (vec!["spf", "192.0.2.1", ""], "--helo"),
        (
            vec!["spf", "--format", "yaml", "192.0.2.1", "a@b.example"],
            "yaml",
        ),
    ] {
        let (code, stdout, stderr) = run(&args).await;
        assert_eq!(code, Some(2), "{args:?}:\n{stdout}\n{stderr}");
        assert!(
            stderr.contains(quoted),
            "{args:?} should name {quoted}:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_hickory_refuses_is_evaluated_per_the_rfc() {
    // A TXT record without strings next to the policy, a target whose label holds ':' and
    // '/', and a 64-octet label from a macro: served from records, read by our decoder.
    let origin = name("null.example");
    let soa = SOA::new(
        name("ns.null.example"),
        name("hostmaster.null.example"),
        1,
        3600,
        600,
        86400,
        60,
    );
    let policy = "v=spf1 a:%{l}.null.example a:foo:bar/baz.null.example -all";
    let records = vec![
        Record::from_rdata(origin.clone(), 300, RData::SOA(soa)),
        Record::from_rdata(origin.clone(), 300, RData::TXT(TXT::new(vec![]))),
        Record::from_rdata(
            origin.clone(),
            300,
            RData::TXT(TXT::new(vec![policy.into()])),
        ),
        Record::from_rdata(
            name("foo:bar/baz.null.example"),
            300,
            RData::A(A::new(192, 0, 2, 44)),
        ),
    ];
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let dns = LocalDnsServer::start_with_records(localhost, vec![(origin, records)])
        .await
        .unwrap();
    let server = dns.addr().to_string();
    let long_local = "l".repeat(64);
    let sender = format!("{long_local}@null.example");
    let (code, stdout, stderr) = spf(&server, &["--format", "json", "192.0.2.44", &sender]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(got["result"], "pass", "{got}");
    assert_eq!(
        got["trace"][0]["queries"][0]["status"], "not_asked",
        "{got}"
    );
    assert_eq!(
        (got["lookups"].clone(), got["void_lookups"].clone()),
        (json!(2), json!(0))
    );
    let (code, stdout, _) = spf(&server, &["192.0.2.45", &sender]).await;
    assert_eq!(code, Some(1));
    assert!(stdout.contains("): fail\n"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn authorizes_entries_with_sender_and_helo_use_the_same_evaluation() {
    let dns = dns_server(&[SHOP_ZONE, PROVIDER_ZONE]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("check.yml");
    let addr = dns.addr();
    std::fs::write(
        &config,
        format!(
            r#"
defaults:
  resolvers: ["{addr}"]
  nameservers: ["{addr}"]
domains:
  - name: shop.example
    expect:
      spf:
        authorizes:
          - 198.51.100.7
          - {{ ip: 203.0.113.9, sender: bounce@mail.shop.example, helo: out.shop.example }}
          - {{ ip: 203.0.113.9, sender: news@mail.shop.example, helo: mx1.shop.example }}
"#
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let (code, stdout, stderr) = run(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(&stdout).unwrap();
    let findings = got["domains"][0]["checks"]["spf"]["findings"]
        .as_array()
        .unwrap();
    let not_authorized: Vec<&Value> = findings
        .iter()
        .filter(|f| f["code"] == "spf_not_authorized")
        .collect();
    assert_eq!(not_authorized.len(), 1, "{findings:?}");
    let evidence = &not_authorized[0]["evidence"];
    assert_eq!(
        (
            &evidence["ip"],
            &evidence["sender"],
            &evidence["helo"],
            &evidence["result"]
        ),
        (
            &json!("203.0.113.9"),
            &json!("news@mail.shop.example"),
            &json!("mx1.shop.example"),
            &json!("fail")
        ),
    );
    assert!(
        not_authorized[0]["message"]
            .as_str()
            .unwrap()
            .contains("(MAIL FROM news@mail.shop.example, HELO mx1.shop.example)"),
        "{}",
        not_authorized[0]
    );
}
