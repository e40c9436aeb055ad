//! BIMI through a real HTTPS server with a certificate from a test CA: a good logo, a logo
//! that is not SVG Tiny PS, a logo that is not there, a redirect to plain http, a server
//! that refuses connections.

use super::{check, codes, customer_zone, provider_zone, report};
use crate::harness::dns_server;
use crate::tls_servers::{Route, TestCa, https_server};
use maildrift::finding::CheckKind;

const GOOD: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 100 100">
  <title>Shop</title>
  <circle cx="50" cy="50" r="40" fill="#2a6"/>
</svg>"##;

const BAD: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 100 100">
  <title>Shop</title>
  <script>document.location = "https://tracker.example/"</script>
  <image href="https://cdn.example/logo.png" width="100" height="100"/>
</svg>"#;

fn logos(path: &str) -> Route {
    match path {
        "/good.svg" => (200, "image/svg+xml", Vec::new(), GOOD.into()),
        "/bad.svg" => (200, "image/svg+xml", Vec::new(), BAD.into()),
        "/moved.svg" => (
            301,
            "text/html",
            vec![("Location", "http://logo.shop.example/good.svg".to_owned())],
            Vec::new(),
        ),
        _ => (404, "text/html", Vec::new(), b"not found".to_vec()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bimi_good_bad_svg_and_unreachable_logos() {
    let ca = TestCa::new("maildrift test CA");
    let server = https_server(&ca.leaf(&["logo.shop.example"], 90), logos).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = server.addr.port();
    let cases = [
        ("good logo", port, "good.svg", vec![]),
        (
            "not SVG Tiny PS",
            port,
            "bad.svg",
            vec!["bimi_invalid:warning"],
        ),
        (
            "logo not found",
            port,
            "missing.svg",
            vec!["bimi_logo_unreachable:warning"],
        ),
        (
            "redirect to http",
            port,
            "moved.svg",
            vec!["bimi_logo_unreachable:warning"],
        ),
        (
            "connection refused",
            closed,
            "good.svg",
            vec!["bimi_logo_unreachable:warning"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, port, file, want) in cases {
        let zone = customer_zone(
            "shop.example",
            &format!(
                "logo A 127.0.0.1\ndefault._bimi TXT \"v=BIMI1; l=https://logo.shop.example:{port}/{file}\""
            ),
        );
        let dns = dns_server(&[&provider_zone(""), &zone]).await;
        let yaml = format!(
            "defaults:\n  timeout: 8s\n  resolvers: [\"{dns}\"]\n  nameservers: [\"{dns}\"]\n  smtp: {{ enabled: false }}\n  bimi: {{ ca_file: \"{ca}\", timeout: 2s }}\ndomains:\n  - name: shop.example\n",
            dns = dns.addr(),
            ca = ca_file.display()
        );
        let reports = check(&yaml).await;
        let bimi = report(&reports[0], CheckKind::Bimi);
        let got = codes(bimi);
        if !bimi.success || got != want {
            let messages: Vec<&str> = bimi.findings.iter().map(|f| f.message.as_str()).collect();
            failures.push(format!(
                "{name}: success {}, {got:?}, want {want:?}: {messages:?} {:?}",
                bimi.success, bimi.error
            ));
        }
        if name == "not SVG Tiny PS" {
            let problems = bimi.findings[0].evidence["problems"].to_string();
            for wanted in ["tiny-ps", "<script>", "references outside the document"] {
                if !problems.contains(wanted) {
                    failures.push(format!("{name}: {wanted:?} not in {problems}"));
                }
            }
        }
        if name == "redirect to http"
            && !bimi.findings[0].message.contains("redirects outside https")
        {
            failures.push(format!("{name}: {}", bimi.findings[0].message));
        }
    }
    assert!(server.requests.load(std::sync::atomic::Ordering::SeqCst) >= 4);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
