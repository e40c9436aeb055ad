//! Beyond the records: each MX host's STARTTLS and certificate (`smtp_tls`) against SMTP
//! servers on loopback with rcgen certificates and against a real Postfix, DANE TLSA in
//! signed and unsigned zones, BIMI logos over HTTPS, and the shared-host rule (1,000
//! domains on one MX host: one SMTP connection per host address per round). Only loopback:
//! the SMTP port is the test server's, never 25 of a real host.

mod bimi;
mod daemon;
mod dane;
mod postfix;
mod shared_hosts;
mod smtp;

use maildrift::app::RunOptions;
use maildrift::checks::{CheckReport, DomainReport};
use maildrift::config::Config;
use maildrift::finding::CheckKind;
use std::path::Path;

/// The provider zone: `mx1.provider.example` on loopback, plus `extra` lines.
pub fn provider_zone(extra: &str) -> String {
    format!(
        r#"$ORIGIN provider.example.
$TTL 300
@        SOA ns1.provider.example. hostmaster.provider.example. 1 3600 600 86400 60
@        NS  ns1.provider.example.
ns1      A   192.0.2.1
mx1      A   127.0.0.1
{extra}
"#
    )
}

/// A customer zone whose MX is `mx1.provider.example`, with `extra` lines.
pub fn customer_zone(domain: &str, extra: &str) -> String {
    format!(
        r#"$ORIGIN {domain}.
$TTL 300
@        SOA ns1.{domain}. hostmaster.{domain}. 1 3600 600 86400 60
@        NS  ns1.{domain}.
ns1      A   192.0.2.53
@        MX  10 mx1.provider.example.
@        TXT "v=spf1 -all"
_dmarc   TXT "v=DMARC1; p=reject"
{extra}
"#
    )
}

/// Runs `maildrift check`'s pass (the library) over the config `yaml`.
pub async fn check(yaml: &str) -> Vec<DomainReport> {
    let config =
        Config::parse(yaml, Path::new("test.yml")).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    maildrift::run_once(&config, &RunOptions::default())
        .await
        .unwrap()
}

/// The report of `check` in a domain's report.
pub fn report(domain: &DomainReport, check: CheckKind) -> &CheckReport {
    domain
        .checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no {check} report: {domain:?}"))
}

/// The findings of a report as sorted `code:severity`.
pub fn codes(report: &CheckReport) -> Vec<String> {
    let mut codes: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{}:{}", f.code, f.severity))
        .collect();
    codes.sort();
    codes
}
