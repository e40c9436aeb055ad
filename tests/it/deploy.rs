//! The deploy files against the daemon: every metric name that the Grafana dashboard, the
//! Prometheus rules and the Kubernetes/Helm files use is one the daemon exports, every
//! JSON/YAML file there parses, and every maildrift config they embed is valid.

use crate::harness::{Daemon, dns_server, wait_until};
use maildrift::config::Config;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ZONE: &str = r#"
$ORIGIN acme.example.
$TTL 300
@        SOA ns1.acme.example. hostmaster.acme.example. 7 3600 600 86400 60
@        NS  ns1.acme.example.
ns1      A   192.0.2.53
mx1      A   192.0.2.25
@        MX  10 mx1.acme.example.
@        TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc   TXT "v=DMARC1; p=reject"
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (recursively), sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files whose metric names must exist: the dashboards and everything under deploy/.
fn metric_users() -> Vec<PathBuf> {
    let mut files = files_under(&repo().join("dashboards"));
    files.extend(files_under(&repo().join("deploy")));
    files
}

/// Every `maildrift_[a-z0-9_]+` token in `text` (lower case: `MAILDRIFT_SHARD` is an
/// environment variable, not a metric).
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(found) = text[at..].find("maildrift_") {
        let start = at + found;
        let mut end = start + "maildrift_".len();
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        let preceded_by_name = start > 0 && (is_name(bytes[start - 1]) || bytes[start - 1] == b':');
        if !preceded_by_name && end > start + "maildrift_".len() {
            names.insert(text[start..end].to_owned());
        }
        at = end;
    }
    names
}

/// `# TYPE name kind` lines of an exposition: name → kind.
fn exported_families(exposition: &str) -> Vec<(String, String)> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_owned(), kind.trim().to_owned()))
        })
        .collect()
}

/// The series names a scrape of the daemon can contain: each family, plus the `_bucket`,
/// `_sum` and `_count` series of histograms.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, kind) in exported_families(exposition) {
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name);
    }
    names
}

/// A daemon whose scrape has every family: one domain with DKIM selectors, a DMARC record, a
/// resolver (propagation) and authoritative servers (SOA serials), a drift that fires an
/// alert, and a webhook that refuses the connection (notifications).
async fn full_exposition() -> String {
    let dns = dns_server(&[ZONE]).await;
    let server = dns.addr();
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        r#"
defaults:
  interval: 1h
  timeout: 5s
  resolvers: ["{server}"]
  nameservers: ["{server}"]
domains:
  - name: acme.example
    expect:
      mx: [mx9.acme.example]
      dkim: {{ selectors: [default] }}
alerting:
  for: 0s
  webhooks:
    - {{ name: refused, format: generic, url: "http://{refused}/hook" }}
"#
    );
    let daemon = Daemon::start(&yaml).await;
    daemon.wait_ready(Duration::from_secs(20)).await;
    let notified = wait_until(Duration::from_secs(20), || async {
        daemon
            .get("/metrics")
            .await
            .body
            .contains("maildrift_notifications_total{")
    })
    .await;
    assert!(
        notified,
        "the MX drift alert was never delivered to the webhook"
    );
    let body = daemon.get("/metrics").await.body;
    daemon.stop().await;
    body
}

#[tokio::test]
async fn every_metric_in_dashboards_rules_and_manifests_is_exported() {
    let exposition = full_exposition().await;
    let exported = exported_names(&exposition);
    // The daemon side of the comparison is not empty by accident: SPEC's per-domain families
    // are there.
    for family in [
        "maildrift_drift",
        "maildrift_dkim_key_bits",
        "maildrift_propagation_pending_seconds",
        "maildrift_nameserver_soa_serial",
    ] {
        assert!(
            exported.contains(family),
            "{family} missing from:\n{exposition}"
        );
    }

    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for file in metric_users() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for name in metric_names(&text) {
            if !exported.contains(&name) {
                unknown.push(format!("{}: {name}", file.display()));
            }
            used.insert(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "metric names not exported by the daemon:\n{}",
        unknown.join("\n")
    );
    // The dashboard covers what the issue asks for.
    let dashboard = std::fs::read_to_string(repo().join("dashboards/maildrift.json")).unwrap();
    for needed in [
        "maildrift_drift",
        "maildrift_check_success",
        "maildrift_findings",
        "maildrift_spf_dns_lookups",
        "maildrift_dmarc_policy_info",
        "maildrift_dkim_key_bits",
        "maildrift_nameservers_consistent",
        "maildrift_nameserver_soa_serial",
        "maildrift_propagation_pending_seconds",
        "maildrift_record_fingerprint",
        "maildrift_check_round_duration_seconds_bucket",
        "maildrift_dns_queries_total",
        "maildrift_dns_query_duration_seconds_bucket",
        "maildrift_notifications_total",
        "maildrift_state_write_failures_total",
        "maildrift_config_last_reload_successful",
    ] {
        assert!(
            metric_names(&dashboard).contains(needed),
            "the dashboard has no panel on {needed}"
        );
    }
    assert!(used.len() >= 20, "only {} metric names found", used.len());
}

#[test]
fn metric_name_scanner_skips_environment_variables_and_recording_rules() {
    let text = r#"expr: sum(maildrift_drift{check="mx"}) + rate(maildrift_dns_queries_total[5m])
      env: MAILDRIFT_SHARD, job:maildrift_up:sum, my_maildrift_thing"#;
    let names: Vec<String> = metric_names(text).into_iter().collect();
    assert_eq!(names, ["maildrift_dns_queries_total", "maildrift_drift"]);
}

#[test]
fn deploy_json_and_yaml_files_parse() {
    let mut parsed = 0;
    for file in metric_users() {
        let name = file.to_string_lossy().into_owned();
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if name.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            parsed += 1;
        } else if (name.ends_with(".yml") || name.ends_with(".yaml"))
            // Helm templates are Go templates, not YAML, until rendered.
            && !name.contains("/templates/")
        {
            for document in yaml_serde::Deserializer::from_str(&text) {
                yaml_serde::Value::deserialize(document).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 10, "only {parsed} files parsed");
}

#[test]
fn dashboards_use_datasource_and_domain_variables() {
    for file in files_under(&repo().join("dashboards")) {
        dashboard_uses_datasource_and_domain_variables(&file);
    }
}

fn dashboard_uses_datasource_and_domain_variables(file: &Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        variables.contains(&"datasource") && variables.contains(&"domain"),
        "{variables:?}"
    );
    // Every panel queries through the variable, never a fixed data source.
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"],
            "${datasource}",
            "{}: panel {:?}",
            file.display(),
            panel["title"]
        );
        assert!(
            !panel["targets"].as_array().unwrap().is_empty(),
            "{}: panel {:?} has no query",
            file.display(),
            panel["title"]
        );
    }
}

/// The `maildrift.yml` of every ConfigMap in a YAML file.
fn embedded_configs(text: &str) -> Vec<String> {
    yaml_serde::Deserializer::from_str(text)
        .map(|document| yaml_serde::Value::deserialize(document).unwrap())
        .filter(|doc| doc["kind"].as_str() == Some("ConfigMap"))
        .filter_map(|doc| doc["data"]["maildrift.yml"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn configs_in_manifests_and_helm_values_are_valid() {
    let mut checked = 0;
    for file in files_under(&repo().join("deploy/kubernetes")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for config in embedded_configs(&text) {
            Config::parse(&config, &file)
                .unwrap_or_else(|e| panic!("{}: invalid maildrift config:\n{e}", file.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} embedded configs found");

    let values_path = repo().join("deploy/helm/maildrift/values.yaml");
    let values: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(&values_path).unwrap()).unwrap();
    let config = yaml_serde::to_string(&values["config"]).unwrap();
    Config::parse(&config, &values_path)
        .unwrap_or_else(|e| panic!("values.yaml `config` is not a valid maildrift config:\n{e}"));
    let chart: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo().join("deploy/helm/maildrift/Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart["name"].as_str(), Some("maildrift"));
}
