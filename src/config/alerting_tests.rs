//! `alerting:` validation: defaults, every new key, and every error at its position.

use super::AlertName;
use crate::config::{Config, SecretSource, WebhookFormat};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn parse(text: &str) -> Result<Config, Vec<String>> {
    Config::parse(text, Path::new("t.yml"))
        .map_err(|e| e.to_string().lines().map(str::to_string).collect())
}

#[test]
fn every_setting_is_read() {
    let config = parse(
        r#"
domains: []
alerting:
  for: 1m
  keep_firing_for: 5m
  resend_interval: 30s
  external_url: "https://maildrift.example.com/"
  alerts:
    MailDnsCheckFailing: { for: 30m }
    MailDnsMxDrift: { for: 0s, keep_firing_for: 10m }
  alertmanager:
    urls: ["http://am1:9093/", "https://am2:9093"]
    timeout: 5s
    basic_auth: { username: maildrift, password_file: /run/secrets/am-password }
    tls_config: { ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem }
  webhooks:
    - { name: ding, format: dingtalk, url_file: /run/ding-url, secret_env: DING_SECRET }
    - { name: lark, format: feishu, url: "https://open.feishu.cn/x", secret_file: /run/lark }
"#,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let alerting = config.alerting.expect("alerting");
    assert_eq!(alerting.for_duration, Duration::from_secs(60));
    assert_eq!(alerting.keep_firing_for, Duration::from_secs(300));
    assert_eq!(alerting.resend_interval, Duration::from_secs(30));
    assert_eq!(
        alerting.external_url.as_deref(),
        Some("https://maildrift.example.com")
    );
    let failing = alerting.alerts[&AlertName::MailDnsCheckFailing];
    assert_eq!(failing.for_duration, Some(Duration::from_secs(1800)));
    assert_eq!(failing.keep_firing_for, None);
    let mx = alerting.alerts[&AlertName::MailDnsMxDrift];
    assert_eq!(mx.for_duration, Some(Duration::ZERO));
    assert_eq!(mx.keep_firing_for, Some(Duration::from_secs(600)));
    assert_eq!(
        alerting.alertmanager_urls,
        ["http://am1:9093", "https://am2:9093"]
    );
    let client = &alerting.alertmanager_client;
    assert_eq!(client.timeout, Duration::from_secs(5));
    let auth = client.basic_auth.as_ref().expect("basic auth");
    assert_eq!(auth.username, "maildrift");
    assert_eq!(
        auth.password,
        SecretSource::File("/run/secrets/am-password".into())
    );
    assert_eq!(client.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert!(!client.tls.insecure_skip_verify);
    assert_eq!(alerting.webhooks[0].format, WebhookFormat::DingTalk);
    assert_eq!(
        alerting.webhooks[0].secret(),
        Some(SecretSource::Env("DING_SECRET".into()))
    );
    assert_eq!(
        alerting.webhooks[1].secret(),
        Some(SecretSource::File("/run/lark".into()))
    );
}

#[test]
fn defaults_when_only_a_receiver_is_set() {
    let config =
        parse("domains: []\nalerting:\n  alertmanager: { url: http://am:9093 }\n").unwrap();
    let alerting = config.alerting.unwrap();
    assert_eq!(alerting.for_duration, Duration::from_secs(120));
    assert_eq!(alerting.keep_firing_for, Duration::ZERO);
    assert_eq!(alerting.resend_interval, Duration::from_secs(60));
    assert_eq!(alerting.external_url, None);
    assert!(alerting.alerts.is_empty());
    assert_eq!(
        alerting.alertmanager_client.timeout,
        Duration::from_secs(10)
    );
    assert!(alerting.alertmanager_client.basic_auth.is_none());
    assert!(alerting.alertmanager_client.bearer_token.is_none());
}

#[test]
fn new_keys_are_validated_with_positions() {
    let errors = parse(
        r#"domains: []
alerting:
  keep_firing_for: later
  external_url: ftp://x
  alerts:
    MailDnsMxDrfit: { for: 1m }
    MailDriftDown: { for: 1m }
    MailDnsSpfDrift: { for: 1m, keep_firing_for: -1m }
  alertmanager:
    url: http://am:9093
    basic_auth: { username: u, password_file: /p, password_env: P }
    bearer_token_file: /t
    bearer_token_env: T
    tls_config: { cert_file: /c }
  webhooks:
    - { name: s, format: slack, url: "http://x", secret_file: /s }
"#,
    )
    .unwrap_err();
    let expect = [
        ("t.yml:3:20: alerting.keep_firing_for:", "\"later\""),
        (
            "t.yml:4:17: alerting.external_url:",
            "\"ftp://x\" is not an http:// or https:// URL",
        ),
        (
            "t.yml:6:5: alerting.alerts.MailDnsMxDrfit:",
            "unknown alert \"MailDnsMxDrfit\"; expected one of MailDnsMxDrift,",
        ),
        (
            "t.yml:7:5: alerting.alerts.MailDriftDown:",
            "a Prometheus rule only",
        ),
        (
            "t.yml:8:50: alerting.alerts.MailDnsSpfDrift.keep_firing_for:",
            "\"-1m\"",
        ),
        (
            "t.yml:11:17: alerting.alertmanager.basic_auth:",
            "set either `password_file` or `password_env`, not both",
        ),
        (
            "t.yml:10:5: alerting.alertmanager:",
            "set either `bearer_token_file` or `bearer_token_env`, not both",
        ),
        (
            "t.yml:14:17: alerting.alertmanager.tls_config:",
            "set both `cert_file` and `key_file`",
        ),
        (
            "t.yml:16:7: alerting.webhooks[0]:",
            "\"slack\" webhooks are not signed",
        ),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (prefix, needle) in expect {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(prefix) && e.contains(needle)),
            "no {prefix} … {needle} in:\n{}",
            errors.join("\n")
        );
    }
}

#[test]
fn secrets_must_come_from_files_or_the_environment() {
    let errors = parse(
        "domains: []\nalerting:\n  alertmanager:\n    url: http://am:9093\n    basic_auth: { username: u }\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("set `password_file` or `password_env`"),
        "{errors:?}"
    );
    let errors = parse(
        "domains: []\nalerting:\n  alertmanager: { url: http://am:9093, bearer_token: abc }\n",
    )
    .unwrap_err();
    assert!(
        errors[0].contains("unknown field `bearer_token`"),
        "{errors:?}"
    );
}

#[test]
fn chat_webhooks_take_a_language() {
    let config = parse(
        "domains: []\nalerting:\n  webhooks:\n    - { name: ding, format: dingtalk, url: \"https://d.test/x\", language: zh-CN }\n    - { name: wecom, format: wecom, url: \"https://w.test/x\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let hooks = config.alerting.unwrap().webhooks;
    assert_eq!(hooks[0].language, crate::config::Language::ZhCn);
    assert_eq!(hooks[1].language, crate::config::Language::En);
    let errors = parse(
        "domains: []\nalerting:\n  webhooks:\n    - { name: a, format: feishu, url: \"https://f.test/x\", language: fr }\n    - { name: b, format: generic, url: \"https://g.test/x\", language: zh-CN }\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("t.yml:4:69: alerting.webhooks[0].language:")
            && errors[0].contains("\"fr\" is not a language"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("t.yml:5:70: alerting.webhooks[1].language:")
            && errors[1].contains("the generic payload is for machines"),
        "{errors:#?}"
    );
}
