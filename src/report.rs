//! `maildrift check`: one pass of the daemon's own checks over some domains, rendered as a
//! table or SPEC.md's JSON.

use crate::app::RunOptions;
use crate::config::Config;
use crate::engine::{self, DomainReport};
use crate::finding::Severity;
use crate::metrics::Metrics;
use crate::views::ViewFactory;
use serde_json::json;
use std::fmt::Write;
use std::path::Path;

/// The config a one-shot check runs with: the file (optionally narrowed to `domains`), or
/// defaults for the named domains.
pub fn check_config(file: Option<&Path>, domains: &[String]) -> Result<Config, String> {
    if let Some(file) = file {
        let mut config = Config::load(file).map_err(|e| format!("invalid configuration:\n{e}"))?;
        if !domains.is_empty() {
            let wanted: Vec<String> = domains
                .iter()
                .map(|d| crate::dns::normalize_name(d))
                .collect();
            if let Some(missing) = wanted
                .iter()
                .find(|w| !config.domains.iter().any(|d| &d.name == *w))
            {
                return Err(format!("{missing} is not in {}", file.display()));
            }
            config.domains.retain(|d| wanted.contains(&d.name));
        }
        return Ok(config);
    }
    if domains.is_empty() {
        return Err("name at least one DOMAIN, or --config FILE".to_owned());
    }
    // Validate names exactly as the config file would, by building a config document;
    // JSON strings are valid YAML scalars, so any input is quoted safely.
    let mut text = String::from("domains:\n");
    for domain in domains {
        let quoted = serde_json::to_string(domain).map_err(|e| e.to_string())?;
        let _ = writeln!(text, "  - name: {quoted}");
    }
    Config::parse(&text, Path::new("<command line>")).map_err(|e| e.to_string())
}

/// Checks every domain of `config` once, concurrently.
pub async fn run_once(config: &Config, options: &RunOptions) -> anyhow::Result<Vec<DomainReport>> {
    let metrics = Metrics::new(crate::app::VERSION, "unknown");
    let views = ViewFactory::new(metrics.dns.clone()).await?;
    let domains = options.domains(config);
    let limits = &crate::checks::spf::SpfLimits::default();
    let mut runs = Vec::with_capacity(domains.len());
    for domain in &domains {
        let view = views.view(domain)?;
        runs.push(async move {
            let previous = crate::checks::PreviousState::default();
            let run = engine::check_domain(&domain.name, &view, &domain.expect, limits, &previous);
            tokio::time::timeout(domain.timeout, run).await.ok()
        });
    }
    let results = futures::future::join_all(runs).await;
    Ok(results
        .into_iter()
        .zip(&domains)
        .map(|(report, domain)| {
            report
                .unwrap_or_else(|| DomainReport::empty(&domain.name, std::time::SystemTime::now()))
        })
        .collect())
}

/// SPEC.md: `{"domains":[{"domain":…,"checks":{"<check>":{"success","records","findings"}}}]}`.
pub fn to_json(reports: &[DomainReport]) -> String {
    let domains: Vec<serde_json::Value> = reports
        .iter()
        .map(|report| {
            let checks: serde_json::Map<String, serde_json::Value> = report
                .checks
                .iter()
                .map(|c| {
                    let mut entry = json!({
                        "success": c.success,
                        "records": c.records,
                        "findings": c.findings,
                    });
                    if let Some(error) = &c.error {
                        entry["error"] = json!(error);
                    }
                    (c.check.as_str().to_owned(), entry)
                })
                .collect();
            json!({ "domain": report.domain, "checks": checks })
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "domains": domains })).unwrap_or_default()
}

/// A plain table: domain, check, state, then one line per finding.
pub fn to_text(reports: &[DomainReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(out, "{}", report.domain);
        if report.checks.is_empty() {
            let _ = writeln!(out, "  (checks did not finish within the timeout)");
        }
        for check in &report.checks {
            let state = if !check.success {
                "UNKNOWN"
            } else if check
                .findings
                .iter()
                .any(|f| f.severity == Severity::Critical)
            {
                "FAIL"
            } else if check.findings.is_empty() {
                "ok"
            } else {
                "warn"
            };
            let records: Vec<&str> = check
                .records
                .iter()
                .flat_map(|r| r.values.iter().map(String::as_str))
                .collect();
            let _ = writeln!(
                out,
                "  {:<6} {:<8} {}",
                check.check.as_str(),
                state,
                records.join(" | ")
            );
            if let Some(error) = &check.error {
                let _ = writeln!(out, "           ! {error}");
            }
            for finding in &check.findings {
                let _ = writeln!(
                    out,
                    "           {:<8} {}: {}",
                    finding.severity.as_str(),
                    finding.code,
                    finding.message
                );
            }
        }
    }
    out
}

/// 1 with any critical finding, else 2 when some check was inconclusive, else 0.
pub fn exit_code(reports: &[DomainReport]) -> u8 {
    let checks = || reports.iter().flat_map(|r| r.checks.iter());
    if checks().any(|c| c.findings.iter().any(|f| f.severity == Severity::Critical)) {
        1
    } else if reports.iter().any(|r| r.checks.is_empty()) || checks().any(|c| !c.success) {
        2
    } else {
        0
    }
}
