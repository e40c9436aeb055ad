//! Complete mail-DNS analysis against real servers: `maildrift check` (the binary, JSON and
//! text, exit codes) over an in-process authoritative server; MTA-STS with a local HTTPS
//! server whose certificate comes from a test CA; DMARC weakening seen by the daemon.

use crate::harness::{Daemon, dns_server};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_maildrift");

/// A 2048-bit RSA public key (SubjectPublicKeyInfo, base64), split in two TXT strings.
const DKIM_KEY: (&str, &str) = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyFQjM/UdIJH0OL42tn+514xqlKZKORYbcKfyBw1AgJyLlljmmEd3uZsxBXZqli9UytZj7Yz4Ev3DUaRXQSvsDzX3m5x+JXgvrzccv21b/e6aA//Vv3vgcEqur6dD4gEFtXwSL6iSbjSI4fbAnZCTSaYmy4e2",
    "uUSflcpdEAS8kiijOBiQ9wEldCJ2nOxeOKRxHu2UOR15Zu+siPFB0QjlIDiLi9BtrJuxPIP6oiRAqvcVj35ay6mWyAkdv5+nWsl5zqnWW+ukveCwYyJOgwSK3/0afwt6CUv/4kteKnVyTS6LXm7gDlLZaHIoKQQlsXOpNPhtfBqPVNQY4d9iq9fjTQIDAQAB",
);

const PROVIDER_ZONE: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx1      A   192.0.2.11
spf      TXT "v=spf1 ip4:192.0.2.0/24 -all"
"#;

/// A DMARC report vendor that has not authorised shop.example's reports.
const VENDOR_ZONE: &str = r#"
$ORIGIN vendor.example.
$TTL 300
@        SOA ns1.vendor.example. hostmaster.vendor.example. 1 3600 600 86400 60
@        NS  ns1.vendor.example.
ns1      A   192.0.2.2
other.example._report._dmarc.reports TXT "v=DMARC1"
"#;

fn shop_zone(dmarc: &str) -> String {
    let (k1, k2) = DKIM_KEY;
    format!(
        r#"
$ORIGIN shop.example.
$TTL 120
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 mx1.provider.example.
@        TXT "v=spf1 include:spf.provider.example -all"
_dmarc   TXT "{dmarc}"
s1._domainkey TXT "v=DKIM1; k=rsa; " "p={k1}" "{k2}"
"#
    )
}

fn check_config(dns: SocketAddr, authorizes: &str) -> String {
    format!(
        r#"
defaults:
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  timeout: 5s
domains:
  - name: shop.example
    expect:
      mx: [mx1.provider.example]
      spf: {{ includes: [spf.provider.example], all: "-all", authorizes: [{authorizes}] }}
      dmarc: {{ policy: reject }}
      dkim: {{ selectors: [s1] }}
"#
    )
}

async fn run_check(args: &[&str]) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_reports_json_and_text_with_spec_exit_codes() {
    let healthy = shop_zone("v=DMARC1; p=reject; rua=mailto:dmarc@shop.example");
    let dns = dns_server(&[PROVIDER_ZONE, VENDOR_ZONE, &healthy]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("check.yml");
    std::fs::write(&config, check_config(dns.addr(), "192.0.2.77")).unwrap();
    let config = config.display().to_string();

    let (code, stdout, stderr) =
        run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let domain = &json["domains"][0];
    assert_eq!(domain["domain"], "shop.example");
    for check in ["mx", "spf", "dkim", "dmarc"] {
        let report = &domain["checks"][check];
        assert_eq!(report["success"], true, "{check}: {report}");
        assert_eq!(
            report["findings"],
            serde_json::json!([]),
            "{check}: {report}"
        );
    }
    assert_eq!(domain["metrics"]["dkim_key_bits"]["s1"], 2048);
    assert_eq!(domain["metrics"]["dmarc_policy"], "reject");
    assert_eq!(domain["metrics"]["spf_dns_lookups"], 1);

    // Weakened DMARC with an unauthorised report destination, and a sender outside SPF.
    dns.set_zone(&shop_zone(
        "v=DMARC1; p=quarantine; pct=50; rua=mailto:d@reports.vendor.example",
    ))
    .unwrap();
    std::fs::write(
        &config,
        check_config(dns.addr(), "192.0.2.77, 198.51.100.9"),
    )
    .unwrap();
    let (code, stdout, stderr) =
        run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(
        code,
        Some(1),
        "critical findings exit 1:\n{stdout}\n{stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let codes = |check: &str| -> Vec<String> {
        let findings = json["domains"][0]["checks"][check]["findings"]
            .as_array()
            .unwrap();
        let mut codes: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{}:{}",
                    f["code"].as_str().unwrap(),
                    f["severity"].as_str().unwrap()
                )
            })
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(
        codes("dmarc"),
        [
            "dmarc_external_report_unauthorized:warning",
            "dmarc_pct_partial:warning",
            "dmarc_policy_weakened:warning",
            "drift:critical"
        ],
        "{stdout}"
    );
    assert_eq!(codes("spf"), ["spf_not_authorized:critical"]);
    let finding = &json["domains"][0]["checks"]["spf"]["findings"][0];
    assert_eq!(finding["evidence"]["ip"], "198.51.100.9");
    assert_eq!(finding["evidence"]["result"], "fail");

    // Text: grouped by domain and check, no colour codes when stdout is not a terminal.
    let (code, stdout, _) = run_check(&["check", "--config", &config]).await;
    assert_eq!(code, Some(1));
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(stdout.starts_with("shop.example\n"), "{stdout}");
    assert!(stdout.contains("  dmarc    FAIL"), "{stdout}");
    assert!(stdout.contains("critical spf_not_authorized: SPF of shop.example gives fail for sending IP 198.51.100.9"), "{stdout}");

    // DNS that does not answer: exit 2.
    dns.set_mode(maildrift::dns::server::ServerMode::ServFail);
    let (code, stdout, _) = run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(2), "{stdout}");

    // Usage error: exit 2.
    let (code, _, stderr) = run_check(&["check"]).await;
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_takes_domains_and_servers_from_flags() {
    let zone = shop_zone("v=DMARC1; p=none");
    let dns = dns_server(&[PROVIDER_ZONE, &zone]).await;
    let server = dns.addr().to_string();
    let (code, stdout, stderr) = run_check(&[
        "check",
        "--resolver",
        &server,
        "--nameserver",
        &server,
        "--format",
        "json",
        "shop.example",
    ])
    .await;
    // p=none without expectation is a warning: exit 0.
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let dmarc = &json["domains"][0]["checks"]["dmarc"];
    assert_eq!(dmarc["findings"][0]["code"], "dmarc_policy_none", "{dmarc}");
    assert_eq!(dmarc["records"][0]["values"][0], "v=DMARC1; p=none");
}

/// A test CA and a certificate for `host` signed by it: (CA PEM, leaf DER, leaf key DER).
fn test_pki(host: &str) -> (String, Vec<u8>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "maildrift test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.der().to_vec(), leaf_key.serialize_der())
}

/// An HTTPS server on 127.0.0.1:0 answering every request with `policy` as text/plain.
struct PolicyServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn policy_server(cert: Vec<u8>, key: Vec<u8>, policy: &'static str) -> PolicyServer {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls_pki_types::PrivateKeyDer::try_from(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.into()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                if !head.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1") {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{policy}",
                    policy.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    PolicyServer {
        addr,
        requests,
        task,
    }
}

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx1.provider.example\nmax_age: 86400\n";

fn sts_zone(mx: &str, dmarc: &str) -> String {
    format!(
        r#"
$ORIGIN shop.example.
$TTL 120
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 {mx}
@        TXT "v=spf1 include:spf.provider.example -all"
_dmarc   TXT "{dmarc}"
_mta-sts TXT "v=STSv1; id=20250101"
mta-sts  A   127.0.0.1
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@shop.example"
"#
    )
}

const PROVIDER_WITH_MX2: &str = r#"
$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx1      A   192.0.2.11
mx2      A   192.0.2.12
spf      TXT "v=spf1 ip4:192.0.2.0/24 -all"
"#;

fn sts_config(dns: SocketAddr, https: SocketAddr, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map_or(String::new(), |p| format!("ca_file: \"{}\", ", p.display()));
    format!(
        r#"
defaults:
  interval: 1s
  timeout: 1s
  resolvers: ["{dns}"]
  nameservers: ["{dns}"]
  mta_sts: {{ {ca}port: {port}, timeout: 1s }}
domains:
  - name: shop.example
"#,
        port = https.port()
    )
}

const STS_CRITICAL: [(&str, &str); 3] = [
    ("domain", "shop.example"),
    ("check", "mta_sts"),
    ("severity", "critical"),
];

#[tokio::test(flavor = "multi_thread")]
async fn mx_moving_while_the_mta_sts_policy_stays_is_a_mismatch() {
    let (ca_pem, cert, key) = test_pki("mta-sts.shop.example");
    let https = policy_server(cert, key, POLICY).await;
    let dns = dns_server(&[
        PROVIDER_WITH_MX2,
        &sts_zone("mx1.provider.example.", "v=DMARC1; p=reject"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let daemon = Daemon::start(&sts_config(dns.addr(), https.addr, Some(&ca_file))).await;
    daemon.wait_ready(Duration::from_secs(10)).await;

    let success = [("domain", "shop.example"), ("check", "mta_sts")];
    assert_eq!(
        daemon.metric("maildrift_check_success", &success).await,
        Some(1.0)
    );
    assert_eq!(
        daemon.metric("maildrift_findings", &STS_CRITICAL).await,
        Some(0.0)
    );
    assert!(
        https.requests.load(Ordering::SeqCst) >= 1,
        "policy fetched over HTTPS"
    );
    let api = daemon.get("/api/v1/domains/shop.example").await.body;
    assert!(!api.contains("mta_sts_"), "no MTA-STS finding yet: {api}");
    let reject = [("domain", "shop.example"), ("policy", "reject")];
    assert_eq!(
        daemon.metric("maildrift_dmarc_policy_info", &reject).await,
        Some(1.0)
    );

    // The MX moves to mx2, the policy still lists only mx1; DMARC drops to p=none.
    dns.set_zone(&sts_zone("mx2.provider.example.", "v=DMARC1; p=none"))
        .unwrap();
    daemon
        .wait_metric(
            "maildrift_findings",
            &STS_CRITICAL,
            1.0,
            Duration::from_secs(10),
        )
        .await;
    let api = daemon.get("/api/v1/domains/shop.example").await.body;
    assert!(api.contains("mta_sts_mx_mismatch"), "{api}");
    assert!(
        api.contains("MX host mx2.provider.example of shop.example matches no mx: pattern"),
        "{api}"
    );
    assert!(
        api.contains("dmarc_policy_weakened"),
        "weakened against the learned p=reject: {api}"
    );
    let none = [("domain", "shop.example"), ("policy", "none")];
    assert_eq!(
        daemon.metric("maildrift_dmarc_policy_info", &none).await,
        Some(1.0)
    );

    // Back to mx1: the mismatch clears.
    dns.set_zone(&sts_zone("mx1.provider.example.", "v=DMARC1; p=reject"))
        .unwrap();
    daemon
        .wait_metric(
            "maildrift_findings",
            &STS_CRITICAL,
            0.0,
            Duration::from_secs(10),
        )
        .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_policy_from_an_untrusted_ca_is_unreachable() {
    let (_, cert, key) = test_pki("mta-sts.shop.example");
    let https = policy_server(cert, key, POLICY).await;
    let dns = dns_server(&[
        PROVIDER_WITH_MX2,
        &sts_zone("mx1.provider.example.", "v=DMARC1; p=reject"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("check.yml");
    std::fs::write(&config, sts_config(dns.addr(), https.addr, None)).unwrap();
    let config = config.display().to_string();
    let (code, stdout, stderr) =
        run_check(&["check", "--config", &config, "--format", "json"]).await;
    assert_eq!(code, Some(0), "warnings only:\n{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let finding = &json["domains"][0]["checks"]["mta_sts"]["findings"][0];
    assert_eq!(finding["code"], "mta_sts_policy_unreachable", "{stdout}");
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains("TLS with mta-sts.shop.example failed"),
        "{message}"
    );
    assert_eq!(https.requests.load(Ordering::SeqCst), 0);
}

/// One case of `tests/fixtures/checks/dnssec.yaml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DnssecCase {
    name: String,
    #[serde(default = "yes")]
    signed: bool,
    #[serde(default)]
    inception: i64,
    #[serde(default)]
    expiration: i64,
    tamper: Option<Tamper>,
    drop: Option<String>,
    /// Ask as a recursive resolver (RD, CD, and the DS question).
    #[serde(default)]
    recursive: bool,
    findings: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Tamper {
    from: String,
    to: String,
}

fn yes() -> bool {
    true
}

const UNSIGNED_SHOP: &str = r#"$ORIGIN shop.example.
$TTL 120
@        SOA ns1.shop.example. hostmaster.shop.example. 1 3600 600 86400 60
@        NS  ns1.shop.example.
ns1      A   192.0.2.53
@        MX  10 mx1.provider.example.
@        TXT "v=spf1 include:spf.provider.example -all"
_dmarc   TXT "v=DMARC1; p=reject"
"#;

/// Signs `UNSIGNED_SHOP` with a fresh KSK and ZSK (ldns-keygen, ldns-signzone).
fn sign_zone(dir: &std::path::Path, inception_days: i64, expiration_days: i64) -> String {
    let run = |args: &[&str]| {
        let output = std::process::Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("{} (install ldnsutils): {e}", args[0]));
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    std::fs::write(dir.join("zone"), UNSIGNED_SHOP).unwrap();
    let ksk = run(&["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "shop.example"]);
    let zsk = run(&["ldns-keygen", "-a", "ECDSAP256SHA256", "shop.example"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |days: i64| (now + days * 86400).to_string();
    run(&[
        "ldns-signzone",
        "-i",
        &at(inception_days),
        "-e",
        &at(expiration_days),
        "-f",
        "signed",
        "zone",
        &zsk,
        &ksk,
    ]);
    let signed = std::fs::read_to_string(dir.join("signed")).unwrap();
    format!("$ORIGIN shop.example.\n{signed}")
}

#[tokio::test(flavor = "multi_thread")]
async fn dnssec_cases_against_signed_zones() {
    use maildrift::checks::dnssec::{self, DnssecServers};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checks/dnssec.yaml"
    );
    let cases: Vec<DnssecCase> =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 9);
    let mut failures = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        let mut zone = if case.signed {
            sign_zone(dir.path(), case.inception, case.expiration)
        } else {
            UNSIGNED_SHOP.to_owned()
        };
        if let Some(tamper) = &case.tamper {
            assert!(
                zone.contains(&tamper.from),
                "{}: nothing to tamper",
                case.name
            );
            zone = zone.replace(&tamper.from, &tamper.to);
        }
        if let Some(owner) = &case.drop {
            zone = zone
                .lines()
                .filter(|l| !(l.starts_with(owner.as_str()) && l.contains("\tRRSIG\t")))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let dns = dns_server(&[&zone]).await;
        let servers = DnssecServers {
            servers: vec![dns.addr()],
            recursive: case.recursive,
        };
        let observation = dnssec::observe("shop.example", &servers).await;
        let report = dnssec::evaluate(
            "shop.example",
            &observation,
            Duration::from_secs(7 * 86400),
            std::time::SystemTime::now(),
        );
        let mut got: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{}:{}", f.code, f.severity))
            .collect();
        got.sort();
        let mut want = case.findings.clone();
        want.sort();
        if !report.success || got != want {
            let messages: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
            failures.push(format!(
                "{}: {got:?}, want {want:?} ({:?} {messages:#?})",
                case.name, report.error
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
