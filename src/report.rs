//! `maildrift check`: one pass of the daemon's own checks over some domains, rendered as a
//! table or SPEC.md's JSON.

use crate::app::RunOptions;
use crate::checks::{self, DomainReport, JsonShape, Known, Registry};
use crate::config::Config;
use crate::finding::Severity;
use crate::metrics::Metrics;
use crate::views::ViewFactory;
use serde_json::json;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

/// The config a one-shot check runs with: the file (optionally narrowed to `domains`), or
/// defaults for the named domains.
pub(crate) fn check_config(file: Option<&Path>, domains: &[String]) -> Result<Config, String> {
    if let Some(file) = file {
        let mut config = Config::load(file).map_err(|e| format!("invalid configuration:\n{e}"))?;
        if !domains.is_empty() {
            let wanted: Vec<String> = domains
                .iter()
                .map(|d| crate::dns::names::lookup_name(d))
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

/// Checks every domain of `config` once, at most `defaults.concurrency` at a time (as the
/// daemon does), each within its timeout; reports come back in the config's order.
pub async fn run_once(config: &Config, options: &RunOptions) -> anyhow::Result<Vec<DomainReport>> {
    let mut reports = Vec::new();
    run_streaming(config, options, |report| reports.push(report)).await?;
    Ok(reports)
}

/// [`run_once`], handing each report to `each` as soon as it and every domain before it
/// are done (in the config's order), so that nothing keeps all of them: `maildrift check`
/// writes each domain out and drops it.
pub(crate) async fn run_streaming(
    config: &Config,
    options: &RunOptions,
    mut each: impl FnMut(DomainReport),
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let registry = Arc::new(Registry::standard());
    let metrics = Metrics::new(crate::app::VERSION, "unknown", &registry);
    let views = Arc::new(ViewFactory::new(metrics.dns.clone(), options.dns_limits).await?);
    let global = Arc::new(config.global.clone());
    let runs = futures::stream::iter(options.domains(config)).map(|domain| {
        let (registry, views, global) = (registry.clone(), views.clone(), global.clone());
        // Each domain runs as its own task, so that every worker thread of the runtime
        // takes a share (a stream polled in place keeps all the work on one thread);
        // `buffered` starts the next one only when fewer than `concurrency` are running.
        let task = tokio::spawn(async move {
            let view = views.view(&domain)?;
            let run = checks::run_domain(&registry, &domain, &view, &global, Known::default());
            let report = tokio::time::timeout(domain.timeout, run)
                .await
                .unwrap_or_else(|_| {
                    DomainReport::empty(&domain.name, std::time::SystemTime::now())
                });
            Ok::<_, anyhow::Error>(report)
        });
        async move { task.await? }
    });
    let mut reports = runs.buffered(config.global.concurrency.max(1));
    while let Some(report) = reports.next().await {
        each(report?);
    }
    Ok(())
}

/// SPEC.md: `{"domains":[{"domain":…,"checks":{"<check>":{"success","records","findings"}}}]}`,
/// plus per domain `checked_at` (unix seconds) and `metrics` (the values the daemon
/// exports: MX count, SPF lookups, DMARC policy, DKIM key sizes; absent when unknown).
#[cfg(test)]
pub(crate) fn to_json(reports: &[DomainReport]) -> String {
    let domains: Vec<serde_json::Value> = reports.iter().map(domain_json).collect();
    serde_json::to_string_pretty(&json!({ "domains": domains })).unwrap_or_default()
}

/// One element of the `domains` list of [`to_json`].
pub(crate) fn domain_json(report: &DomainReport) -> serde_json::Value {
    {
        {
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
            let checked_at = report
                .checked_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let mut domain = json!({
                "domain": report.domain,
                "checked_at": checked_at,
                "checks": checks,
                "metrics": metrics_json(report),
            });
            let unicode = crate::dns::names::to_unicode(&report.domain);
            if unicode != report.domain {
                domain["unicode"] = json!(unicode);
            }
            domain
        }
    }
}

/// The `metrics` of one domain: the gauge families the checks show in JSON, as this run
/// found them.
fn metrics_json(report: &DomainReport) -> serde_json::Value {
    let mut metrics = serde_json::Map::new();
    for values in report.checks.iter().flat_map(|c| &c.gauges) {
        let value = match values.family.json {
            None => continue,
            Some(JsonShape::Number(key)) => values.samples.first().map(|(_, v)| (key, number(*v))),
            Some(JsonShape::ByLabel(key)) => {
                let by_label: serde_json::Map<String, serde_json::Value> = values
                    .samples
                    .iter()
                    .filter_map(|(labels, v)| Some((labels.first()?.to_string(), number(*v))))
                    .collect();
                Some((key, serde_json::Value::Object(by_label)))
            }
            Some(JsonShape::Label(key)) => values
                .samples
                .iter()
                .find(|(_, v)| *v == 1.0)
                .and_then(|(labels, _)| labels.first())
                .map(|label| (key, json!(label))),
        };
        if let Some((key, value)) = value {
            metrics.insert(key.to_owned(), value);
        }
    }
    serde_json::Value::Object(metrics)
}

/// A sample as JSON: an integer when it is one (counts, key sizes), else a float.
fn number(value: f64) -> serde_json::Value {
    if value.fract() == 0.0 && value.abs() < 9e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// Terminal colours (ANSI), used only when stdout is a terminal.
struct Palette {
    on: bool,
}

impl Palette {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn severity(&self, severity: Severity, text: &str) -> String {
        let code = match severity {
            Severity::Critical => "1;31",
            Severity::Warning => "33",
            Severity::Info => "36",
        };
        self.paint(code, text)
    }
}

/// A report for people, grouped by domain and check: the state of each check, its records,
/// one line per finding. Severity-coloured when `colour` (stdout is a terminal).
pub(crate) fn to_text(reports: &[DomainReport], colour: bool) -> String {
    let palette = Palette { on: colour };
    let mut out = String::new();
    for report in reports {
        let shown = crate::dns::names::display_name(&report.domain);
        let _ = writeln!(out, "{}", palette.paint("1", &shown));
        if report.checks.is_empty() {
            let _ = writeln!(out, "  (checks did not finish within the timeout)");
        }
        for check in &report.checks {
            let worst = check.findings.iter().map(|f| f.severity).min();
            let state = match (check.success, worst) {
                (false, _) => palette.paint("35", "UNKNOWN"),
                (true, Some(Severity::Critical)) => palette.severity(Severity::Critical, "FAIL   "),
                (true, Some(Severity::Warning)) => palette.severity(Severity::Warning, "warn   "),
                (true, Some(Severity::Info)) => palette.severity(Severity::Info, "info   "),
                (true, None) => palette.paint("32", "ok     "),
            };
            let mut records: Vec<String> = check
                .records
                .iter()
                .flat_map(|r| r.values.iter().map(|v| shorten(v, 100)))
                .collect();
            if records.is_empty() && check.success {
                records.push("(no record)".to_owned());
            }
            let _ = writeln!(
                out,
                "  {:<11} {state} {}",
                check.check.as_str(),
                records.join(" | ")
            );
            if let Some(error) = &check.error {
                let _ = writeln!(out, "                ! {error}");
            }
            for finding in &check.findings {
                let label = format!("{:<8}", finding.severity.as_str());
                let _ = writeln!(
                    out,
                    "                {} {}: {}",
                    palette.severity(finding.severity, &label),
                    finding.code,
                    finding.message
                );
            }
        }
    }
    out
}

/// `text` cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// SPEC.md: 1 with any critical ("error-severity") finding; else 2 when some check was
/// inconclusive (DNS did not answer); else 0.
#[cfg(test)]
pub(crate) fn exit_code(reports: &[DomainReport]) -> u8 {
    let mut outcome = Outcome::default();
    for report in reports {
        outcome.add(report);
    }
    outcome.exit_code()
}

/// What decides the exit code, gathered one report at a time (reports streamed out are not
/// kept).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outcome {
    /// Some finding is critical.
    critical: bool,
    /// Some check (or a whole domain) was inconclusive.
    unknown: bool,
}

impl Outcome {
    /// Takes one report into account.
    pub(crate) fn add(&mut self, report: &DomainReport) {
        let checks = &report.checks;
        self.critical |= checks
            .iter()
            .any(|c| c.findings.iter().any(|f| f.severity == Severity::Critical));
        self.unknown |= checks.is_empty() || checks.iter().any(|c| !c.success);
    }

    /// 1 with any critical finding; else 2 when something was inconclusive; else 0.
    pub(crate) fn exit_code(self) -> u8 {
        if self.critical {
            1
        } else if self.unknown {
            2
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{CheckReport, FamilyValues};
    use crate::finding::{CheckKind, Finding, FindingCode};

    fn report(findings: Vec<Finding>, success: bool) -> DomainReport {
        let mut report = DomainReport::empty("example.com", std::time::UNIX_EPOCH);
        let mut check = CheckReport::inconclusive(CheckKind::Dmarc, "timeout");
        if success {
            check.success = true;
            check.error = None;
        }
        check.findings = findings;
        check.gauges = vec![FamilyValues::info(
            &crate::checks::dmarc::POLICY_INFO,
            "none",
        )];
        report.checks = vec![check];
        report
    }

    #[test]
    fn colour_only_when_asked_and_exit_codes() {
        let finding = Finding::new(FindingCode::DmarcPolicyNone, Severity::Warning, "p=none");
        let warn = report(vec![finding.clone()], true);
        let plain = to_text(std::slice::from_ref(&warn), false);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.contains("dmarc       warn"), "{plain}");
        let coloured = to_text(std::slice::from_ref(&warn), true);
        assert!(coloured.contains("\x1b[33mwarning"), "{coloured}");
        assert_eq!(exit_code(std::slice::from_ref(&warn)), 0);
        let mut critical = finding;
        critical.severity = Severity::Critical;
        assert_eq!(exit_code(&[report(vec![critical], true)]), 1);
        assert_eq!(exit_code(&[report(Vec::new(), false)]), 2);
        let json: serde_json::Value = serde_json::from_str(&to_json(&[warn])).unwrap();
        let domain = &json["domains"][0];
        assert_eq!(
            domain["checks"]["dmarc"]["findings"][0]["code"],
            "dmarc_policy_none"
        );
        assert_eq!(domain["metrics"]["dmarc_policy"], "none");
        assert!(domain["metrics"].get("mx_records").is_none());
    }
}
