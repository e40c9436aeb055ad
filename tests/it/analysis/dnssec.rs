//! DNSSEC against zones signed in the test (ldns-keygen, ldns-signzone from ldnsutils) and
//! served by the in-process DNS server: the table in `tests/fixtures/checks/dnssec.yaml`.

use crate::harness::dns_server;
use std::time::Duration;

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

/// Whether `program` is an executable file in a `PATH` directory.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Whether ldns-keygen and ldns-signzone are installed. When not: `test` is skipped outside
/// CI and fails in CI (`.ci/run` installs ldnsutils).
pub fn ldns_installed(test: &str) -> bool {
    if on_path("ldns-signzone") && on_path("ldns-keygen") {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "ldns-keygen/ldns-signzone missing: CI must install ldnsutils (.ci/run does)"
    );
    eprintln!("SKIPPED {test}: install ldnsutils to run it");
    false
}

/// Signs the zone `origin` (its text `unsigned`) with a fresh KSK and ZSK (ldns-keygen,
/// ldns-signzone), signatures valid from `inception_days` to `expiration_days` from now.
pub fn sign_zone(
    dir: &std::path::Path,
    origin: &str,
    unsigned: &str,
    inception_days: i64,
    expiration_days: i64,
) -> String {
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
    std::fs::write(dir.join("zone"), unsigned).unwrap();
    let ksk = run(&["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin]);
    let zsk = run(&["ldns-keygen", "-a", "ECDSAP256SHA256", origin]);
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
    format!("$ORIGIN {origin}.\n{signed}")
}

#[tokio::test(flavor = "multi_thread")]
async fn dnssec_cases_against_signed_zones() {
    use maildrift::checks::dnssec;
    use maildrift::dns::SignedQuestions;
    if !ldns_installed("dnssec_cases_against_signed_zones") {
        return;
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checks/dnssec.yaml"
    );
    let cases: Vec<DnssecCase> =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 9);
    // Each case through the shared direct client the daemon uses (UDP with DO, TCP when a
    // signed answer is truncated).
    let shared = maildrift::dns::direct::DirectClient::new(
        maildrift::dns::direct::DirectOptions::default(),
        maildrift::dns::QueryMetrics::unregistered(),
    )
    .await
    .unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        let mut zone = if case.signed {
            sign_zone(
                dir.path(),
                "shop.example",
                UNSIGNED_SHOP,
                case.inception,
                case.expiration,
            )
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
        let transport = "shared client";
        let servers = SignedQuestions::new(shared.clone(), vec![dns.addr()], case.recursive);
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
                "{} ({transport}): {got:?}, want {want:?} ({:?} {messages:#?})",
                case.name, report.error
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
