//! Tests of the whole pipeline: example files, error reports with exact positions, presets.

use super::SpfExpectation;
use super::*;

/// The error lines `FILE:LINE:COL: FIELD: MESSAGE` for `text`, or a panic if it is valid.
fn error_lines(text: &str) -> Vec<String> {
    match Config::parse(text, Path::new("t.yml")) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

fn parse_ok(text: &str) -> Config {
    match Config::parse(text, Path::new("t.yml")) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config:\n{e}"),
    }
}

fn domain<'a>(config: &'a Config, name: &str) -> &'a DomainConfig {
    match config.domains.iter().find(|d| d.name == name) {
        Some(d) => d,
        None => panic!("no domain {name}"),
    }
}

#[test]
fn every_shipped_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("config/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yml") {
            if let Err(e) = Config::load(&path) {
                panic!("{e}");
            }
            names.push(
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    names.sort();
    assert_eq!(names, ["demo.yml", "example.yml", "minimal.yml"]);
}

#[test]
fn example_config_has_presets_merged_and_defaults_applied() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yml");
    let config = Config::load(&path).expect("valid");
    assert_eq!(config.domains.len(), 7);
    assert_eq!(config.global.concurrency, 64);
    let parked = domain(&config, "old-brand.example");
    assert_eq!(parked.expect.mx.as_ref().expect("mx").hosts, ["."]);
    let idn = domain(&config, "xn--bcher-kva.example");
    assert_eq!(idn.skip, [crate::finding::CheckKind::Dnsbl]);
    let aliyun = domain(&config, "example.com");
    assert_eq!(
        aliyun.expect.mx.as_ref().expect("mx").hosts,
        [
            "mx1.qiye.aliyun.com",
            "mx2.qiye.aliyun.com",
            "mx3.qiye.aliyun.com"
        ]
    );
    let spf = aliyun.expect.spf.as_ref().expect("spf");
    assert_eq!(spf.includes, ["spf.qiye.aliyun.com"]);
    assert_eq!(spf.all.as_deref(), Some("-all"));
    assert_eq!(
        spf.authorizes,
        [crate::config::AuthorizedSender {
            ip: "203.0.113.7".parse().expect("ip"),
            sender: None,
            helo: None,
        }]
    );
    assert_eq!(aliyun.labels.get("team").map(String::as_str), Some("mail"));
    let tencent = domain(&config, "example.cn");
    assert_eq!(tencent.interval, Duration::from_secs(60));
    assert_eq!(tencent.timeout, Duration::from_secs(20));
    assert_eq!(
        tencent.resolvers,
        [
            ResolverSpec::Addr("223.5.5.5:53".parse().expect("addr")),
            ResolverSpec::Addr("119.29.29.29:53".parse().expect("addr")),
        ]
    );
    let baseline = domain(&config, "example.io");
    assert_eq!(baseline.expect, Expectations::default());
    assert!(!baseline.authoritative);
    assert_eq!(baseline.interval, Duration::from_secs(300));
    assert_eq!(baseline.resolvers, [ResolverSpec::System]);
    let alerting = config.alerting.expect("alerting");
    assert_eq!(alerting.for_duration, Duration::from_secs(120));
    assert_eq!(alerting.alertmanager_urls, ["http://alertmanager:9093"]);
    assert_eq!(alerting.webhooks[0].format, WebhookFormat::Slack);
    assert_eq!(
        alerting.webhooks[1].url,
        WebhookUrl::File("/etc/maildrift/dingtalk-url".into())
    );
}

#[test]
fn unknown_key_is_rejected_naming_it_and_the_expected_ones() {
    let text = "domains:\n  - name: example.com\n    intervall: 5m\n";
    assert_eq!(
        error_lines(text),
        [
            "t.yml:3:5: domains[0].intervall: unknown field `intervall`, expected one of \
          `name`, `interval`, `timeout`, `resolvers`, `authoritative`, `nameservers`, \
          `provider`, `expect`, `labels`, `checks`"
        ]
    );
    // An unknown top-level key does not hide errors in the known sections.
    let text = "domains:\n  - name: bad_name.com\nfoo: 1\n";
    assert_eq!(
        error_lines(text),
        [
            "t.yml:2:11: domains[0].name: \"bad_name.com\" is not a valid domain name: '_' is \
             not allowed (letters, digits and '-' only)",
            "t.yml:3:1: foo: unknown field `foo`, expected one of `defaults`, `domains`, \
             `alerting`, `providers`, `state`, `metrics`",
        ]
    );
    let text = "domains: []\nalerting:\n  for: 1m\n  webhook: []\n";
    let lines = error_lines(text);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]
            .starts_with("t.yml:4:3: alerting.webhook: unknown field `webhook`, expected one of"),
        "{lines:?}"
    );
}

#[test]
fn every_error_is_reported_with_its_position() {
    let text = "\
defaults:
  interval: 0s
  resolvers: [system, \"10.0.0.300\"]
domains:
  - name: example.com
    provider: aliyun
  - name: \"exa mple.com\"
  - name: Example.COM.
  - name: slow.example
    interval: 1m
    timeout: 2m
  - name: spf.example
    expect:
      spf: { all: all }
  - name: typed.example
    authoritative: maybe
  - name: other.example
    provider: nosuch
";
    let err = Config::parse(text, Path::new("t.yml")).expect_err("invalid");
    let found: Vec<(usize, usize, &str)> = err
        .issues
        .iter()
        .map(|i| (i.line, i.column, i.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, 13, "defaults.interval"),
            (3, 23, "defaults.resolvers[1]"),
            (7, 11, "domains[1].name"),
            (8, 11, "domains[2].name"),
            (11, 14, "domains[3].timeout"),
            (14, 19, "domains[4].expect.spf.all"),
            (16, 20, "domains[5].authoritative"),
            (18, 15, "domains[6].provider"),
        ]
    );
    let messages: Vec<&str> = err.issues.iter().map(|i| i.message.as_str()).collect();
    assert_eq!(messages[0], "\"0s\" must be greater than zero");
    assert!(messages[1].starts_with("\"10.0.0.300\" is not an address"));
    assert!(messages[2].starts_with("\"exa mple.com\" is not a valid domain name"));
    assert_eq!(
        messages[3],
        "duplicate domain \"example.com\": listed at line 5 (domains[0].name) and line 8"
    );
    assert!(messages[4].starts_with("timeout 2m is longer than interval 1m"));
    assert!(messages[5].starts_with("\"all\" alone means \"+all\""));
    assert_eq!(
        messages[6],
        "invalid type: string \"maybe\", expected a boolean"
    );
    assert!(messages[7].starts_with("unknown provider \"nosuch\"; known providers: aliyun, "));
    let display = err.to_string();
    assert_eq!(display.lines().count(), 8);
    assert!(
        display.starts_with("t.yml:2:13: defaults.interval: \"0s\" must be greater than zero\n")
    );
}

#[test]
fn timeout_longer_than_interval_is_reported_where_it_was_written() {
    // Only in defaults: reported once, at defaults, not for every domain.
    let text = "defaults:\n  timeout: 10m\ndomains:\n  - name: a.com\n  - name: b.com\n";
    let lines = error_lines(text);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0]
            .starts_with("t.yml:2:12: defaults.timeout: timeout 10m is longer than interval 5m")
    );
    // A domain interval shorter than a written default timeout.
    let text = "defaults:\n  timeout: 30s\ndomains:\n  - name: a.com\n    interval: 10s\n";
    assert_eq!(
        error_lines(text),
        [
            "t.yml:5:15: domains[0].interval: timeout 30s is longer than interval 10s: a check \
          must end before the next one starts (the timeout comes from defaults)"
        ]
    );
    // An explicit domain timeout longer than the default interval.
    let text = "domains:\n  - name: a.com\n    timeout: 6m\n";
    assert_eq!(
        error_lines(text),
        [
            "t.yml:3:14: domains[0].timeout: timeout 6m is longer than interval 5m: a check \
          must end before the next one starts (the interval comes from defaults)"
        ]
    );
}

/// Like Prometheus' `scrape_timeout`: a timeout nobody wrote is clamped to the interval.
#[test]
fn default_timeout_is_clamped_to_the_interval() {
    let timeouts = |text: &str| -> Vec<(u64, u64)> {
        Config::parse(text, Path::new("t.yml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .domains
            .iter()
            .map(|d| (d.interval.as_secs(), d.timeout.as_secs()))
            .collect()
    };
    // `defaults: { interval: 10s }` alone: the issue's new user.
    assert_eq!(
        timeouts("defaults:\n  interval: 10s\ndomains:\n  - name: a.com\n"),
        [(10, 10)]
    );
    // A domain's own short interval clamps the default too; longer ones keep 30 s.
    assert_eq!(
        timeouts(
            "domains:\n  - name: a.com\n    interval: 5s\n  - name: b.com\n  - name: c.com\n    interval: 1m\n"
        ),
        [(5, 5), (300, 30), (60, 30)]
    );
    // A written timeout is kept as written.
    assert_eq!(
        timeouts("defaults:\n  interval: 10s\n  timeout: 4s\ndomains:\n  - name: a.com\n"),
        [(10, 4)]
    );
}

#[test]
fn syntax_errors_and_duplicate_keys_are_located() {
    let text = "domains:\n  - name: example.com\n   bad: [\n";
    assert_eq!(
        error_lines(text),
        [
            "t.yml:3:4: YAML syntax error: did not find expected '-' indicator at line 3 column 4, \
          while parsing a block collection at line 2 column 3"
        ]
    );
    let text = "domains:\n  - name: a.com\n    name: b.com\n";
    assert_eq!(
        error_lines(text),
        [
            "t.yml:3:5: domains[0].name: YAML syntax error: duplicate key \"name\" (first set at line 2)"
        ]
    );
}

#[test]
fn unreadable_file_is_one_issue_at_line_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.yml");
    let err = Config::load(&path).expect_err("missing");
    assert_eq!(err.issues.len(), 1);
    assert_eq!(err.issues[0].line, 0);
    assert!(
        err.issues[0]
            .message
            .contains("cannot read the config file")
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read", path.display()))
    );
}

#[test]
fn empty_domain_list_is_valid_with_a_warning() {
    let config = parse_ok("domains: []\n");
    assert!(config.domains.is_empty());
    assert_eq!(config.warnings().len(), 1);
    assert!(config.alerting.is_none());
    assert_eq!(
        error_lines(""),
        [
            "t.yml:1:1: expected a mapping with the keys `defaults`, `domains`, `alerting`, `providers`, `state`, `metrics`"
        ]
    );
    assert_eq!(
        error_lines("defaults: {}\n"),
        ["t.yml:1:1: missing field `domains` (write `domains: []` to watch nothing)"]
    );
}

#[test]
fn presets_fill_only_what_expect_leaves_unset() {
    let text = "\
domains:
  - name: Contoso.Example.COM
    provider: microsoft365
  - name: explicit.example
    provider: google
    expect:
      mx: [mx.explicit.example]
      spf: { includes: [] }
  - name: allonly.example
    provider: tencent
    expect:
      spf: { all: \"~all\" }
  - name: mine.example
    provider: tencent
providers:
  tencent: { mx: [mx.override.example], spf_includes: [spf.override.example] }
";
    let config = parse_ok(text);
    let ms = domain(&config, "contoso.example.com");
    assert_eq!(ms.provider.as_deref(), Some("microsoft365"));
    assert_eq!(
        ms.expect.mx.as_ref().expect("mx").hosts,
        ["contoso-example-com.mail.protection.outlook.com"]
    );
    assert_eq!(
        ms.expect.spf.as_ref().expect("spf").includes,
        ["spf.protection.outlook.com"]
    );
    let explicit = domain(&config, "explicit.example");
    assert_eq!(
        explicit.expect.mx.as_ref().expect("mx").hosts,
        ["mx.explicit.example"]
    );
    assert_eq!(explicit.expect.spf, Some(SpfExpectation::default()));
    let all_only = domain(&config, "allonly.example");
    let spf = all_only.expect.spf.as_ref().expect("spf");
    assert_eq!(spf.includes, ["spf.override.example"]);
    assert_eq!(spf.all.as_deref(), Some("~all"));
    let mine = domain(&config, "mine.example");
    assert_eq!(
        mine.expect.mx.as_ref().expect("mx").hosts,
        ["mx.override.example"]
    );
}

#[test]
fn expectations_labels_and_addresses_are_validated() {
    let text = "\
defaults:
  nameservers: [\"127.0.0.1:5300\", \"::1\"]
  concurrency: 0
domains:
  - name: a.example
    resolvers: []
    labels: { severity: x, 9bad: y, team: mail }
    expect:
      mx: [x]
      spf: { includes: [\"include:_spf.google.com\"], authorizes: [203.0.113.0/24, nope] }
      dmarc: { policy: strict }
      dkim: { selectors: [\"bad selector\"] }
";
    let err = Config::parse(text, Path::new("t.yml")).expect_err("invalid");
    let found: Vec<(usize, usize, &str)> = err
        .issues
        .iter()
        .map(|i| (i.line, i.column, i.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (3, 16, "defaults.concurrency"),
            (6, 16, "domains[0].resolvers"),
            (7, 15, "domains[0].labels.severity"),
            (7, 28, "domains[0].labels.9bad"),
            (9, 12, "domains[0].expect.mx[0]"),
            (10, 25, "domains[0].expect.spf.includes[0]"),
            (10, 66, "domains[0].expect.spf.authorizes[0]"),
            (10, 82, "domains[0].expect.spf.authorizes[1]"),
            (11, 24, "domains[0].expect.dmarc.policy"),
            (12, 27, "domains[0].expect.dkim.selectors[0]"),
        ]
    );
    let config = parse_ok(
        "defaults:\n  nameservers: [\"127.0.0.1:5300\", \"::1\"]\ndomains:\n  - name: a.example\n",
    );
    assert_eq!(
        domain(&config, "a.example").nameservers,
        [
            "127.0.0.1:5300".parse::<SocketAddr>().expect("addr"),
            "[::1]:53".parse().expect("addr")
        ]
    );
}

#[test]
fn alerting_errors_are_all_reported() {
    let text = "\
domains: []
alerting:
  for: 5
  alertmanager: { url: am:9093 }
  webhooks:
    - { name: a, format: teams, url: x }
    - { name: a, format: slack, url: http://x, url_file: /y }
    - { name: b, format: slack }
";
    let found: Vec<String> = error_lines(text)
        .iter()
        .map(|l| l.splitn(4, ':').take(3).collect::<Vec<_>>().join(":"))
        .collect();
    assert_eq!(
        found,
        [
            "t.yml:3:8",
            "t.yml:4:24",
            "t.yml:6:26",
            "t.yml:6:38",
            "t.yml:7:7",
            "t.yml:7:15",
            "t.yml:8:7"
        ]
    );
}

#[test]
fn ns_serial_grace_defaults_to_ten_minutes_and_is_validated() {
    let config = parse_ok("domains: []\n");
    assert_eq!(config.global.ns_serial_grace, Duration::from_secs(600));
    let config = parse_ok("defaults:\n  ns_serial_grace: 90s\ndomains: []\n");
    assert_eq!(config.global.ns_serial_grace, Duration::from_secs(90));
    // Zero is allowed: report a serial difference at once.
    let config = parse_ok("defaults:\n  ns_serial_grace: 0s\ndomains: []\n");
    assert_eq!(config.global.ns_serial_grace, Duration::ZERO);
    assert_eq!(
        error_lines("defaults:\n  ns_serial_grace: soon\ndomains: []\n")[0]
            .split(": ")
            .take(2)
            .collect::<Vec<_>>(),
        ["t.yml:2:20", "defaults.ns_serial_grace"]
    );
    let lines = error_lines("defaults:\n  ns_serial_grace: 2d\ndomains: []\n");
    assert_eq!(
        lines,
        [
            "t.yml:2:20: defaults.ns_serial_grace: ns_serial_grace \"2d\" is longer than 1d: \
          a lagging nameserver would go unreported"
        ]
    );
}

#[test]
fn a_valid_file_is_never_indexed_and_an_invalid_one_is_located() {
    // The position index costs ~850 bytes per domain; only an issue needs it.
    let valid = "defaults:\n  interval: 5m\ndomains:\n  - name: a.example\n  - name: b.example\n";
    let mut issues = Issues::new(valid);
    let config = parse_document(valid, Path::new("t.yml"), &mut issues).expect("valid");
    assert_eq!(config.domains.len(), 2);
    assert!(issues.list.is_empty());
    assert!(!issues.indexed());

    let invalid = "domains:\n  - name: a.example\n  - name: b.example\n    interval: soon\n";
    let mut issues = Issues::new(invalid);
    parse_document(invalid, Path::new("t.yml"), &mut issues);
    assert!(issues.indexed());
    assert_eq!(issues.list.len(), 1, "{:?}", issues.list);
    assert_eq!(
        (issues.list[0].line, issues.list[0].field.as_str()),
        (4, "domains[1].interval")
    );
}
