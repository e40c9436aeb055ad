//! SPEC.md's cardinality budget, counted on a real daemon's `/metrics`: at most 25 series
//! per domain by default, and `metrics.detail: true` adds the zero-valued and per-record
//! series back.

use crate::harness::{Daemon, dns_server};
use std::time::Duration;

const PROVIDER: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1 hostmaster 1 3600 600 86400 60
@        NS  ns1
ns1      A   192.0.2.1
_spf     TXT "v=spf1 include:_spf1.provider.example -all"
_spf1    TXT "v=spf1 ip4:198.51.100.0/24 -all"
"#;

/// A company zone with everything a mail admin publishes.
fn company(name: &str) -> String {
    format!(
        r#"
$ORIGIN {name}.
$TTL 300
@           SOA ns1.provider.example. hostmaster 1 3600 600 86400 60
@           NS  ns1.provider.example.
@           MX  10 mx1
@           MX  20 mx2
mx1         A   192.0.2.11
mx1         AAAA 2001:db8::11
mx2         A   192.0.2.12
@           TXT "v=spf1 mx include:_spf.provider.example -all"
_dmarc      TXT "v=DMARC1; p=none; rua=mailto:dmarc@{name}"
default._domainkey TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDGnZ0HnCDm3lSBdWgPjeAaBzUqZkYDxSJhxV7kw3jmXv5mAfI3HQVzDmyZtjYRrbnEXHRgddpMYnr6cOnJ0GIXM0n4KC4KZqqrvDvuNWBDbSHJe5OIGaBx1rcfmqu8RDsS29dBSvdQlFSdHIpdQy2xYDtbTzN8NLNqsy3nDq7jIwIDAQAB"
_mta-sts    TXT "v=STSv1; id=20261201"
_smtp._tls  TXT "v=TLSRPTv1; rua=mailto:tls@{name}"
"#
    )
}

/// Series of `/metrics` that carry `domain="<domain>"`.
fn series_of(text: &str, domain: &str) -> Vec<String> {
    let label = format!("domain=\"{domain}\"");
    text.lines()
        .filter(|line| !line.starts_with('#') && line.contains(&label))
        .map(str::to_owned)
        .collect()
}

fn config(dns: std::net::SocketAddr, detail: bool) -> String {
    format!(
        "metrics:\n  detail: {detail}\ndefaults:\n  interval: 1h\n  timeout: 5s\n  \
         resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  mta_sts: {{ timeout: 1s }}\n\
         domains:\n  - name: a.example\n    expect: {{ dkim: {{ selectors: [default] }} }}\n  \
         - name: b.example\n    expect: {{ dkim: {{ selectors: [default] }} }}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_25_series_per_domain_by_default_and_more_with_detail() {
    let (a, b) = (company("a.example"), company("b.example"));
    let dns = dns_server(&[PROVIDER, &a, &b]).await;

    let daemon = Daemon::start(&config(dns.addr(), false)).await;
    daemon.wait_ready(Duration::from_secs(30)).await;
    let text = daemon.get("/metrics").await.body;
    for domain in ["a.example", "b.example"] {
        let series = series_of(&text, domain);
        assert!(
            series.len() <= 25,
            "{domain}: {} series by default:\n{}",
            series.len(),
            series.join("\n")
        );
        // What the budget keeps: every check's success, the values alerts and dashboards
        // read, and the findings that are open (DMARC p=none is a warning).
        for kept in [
            "maildrift_check_success{check=\"mx\"",
            "maildrift_mx_records{",
            "maildrift_spf_dns_lookups{",
            "maildrift_dmarc_policy_info{",
            "maildrift_dkim_key_bits{",
            "maildrift_findings{check=\"dmarc\"",
        ] {
            assert!(
                series.iter().any(|s| s.starts_with(kept)),
                "{domain}: no {kept}…:\n{}",
                series.join("\n")
            );
        }
        assert!(
            !series
                .iter()
                .any(|s| s.ends_with(" 0") && s.starts_with("maildrift_findings")),
            "zero findings are left out by default"
        );
    }
    let default_count = series_of(&text, "a.example").len();
    daemon.stop().await;

    let daemon = Daemon::start(&config(dns.addr(), true)).await;
    daemon.wait_ready(Duration::from_secs(30)).await;
    let text = daemon.get("/metrics").await.body;
    let detailed = series_of(&text, "a.example");
    for added in [
        "maildrift_drift{",
        "maildrift_last_check_timestamp_seconds{",
        "maildrift_record_fingerprint{",
        "maildrift_record_ttl_seconds{",
        "maildrift_spf_ipset_fingerprint{",
    ] {
        assert!(
            detailed.iter().any(|s| s.starts_with(added)),
            "detail shows {added}…"
        );
    }
    assert!(
        detailed.len() > default_count + 20,
        "{} series with detail, {default_count} without",
        detailed.len()
    );
    eprintln!(
        "series per domain: {default_count} by default, {} with metrics.detail",
        detailed.len()
    );
    daemon.stop().await;
}
