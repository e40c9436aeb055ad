//! `alerting:`: hysteresis, Alertmanager endpoints and webhook receivers, validated now and
//! used by the alerting module.

use super::issues::Issues;
use super::names::check_http_url;
use super::raw::{RawAlerting, RawWebhook, Text};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where and when alerts are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertingConfig {
    /// How long a finding must stay open before its alert fires (hysteresis against
    /// flapping DNS answers); zero fires at once.
    pub for_duration: Duration,
    /// How often a firing alert is sent again, so Alertmanager does not resolve it.
    pub resend_interval: Duration,
    /// Alertmanager base URLs (`http://host:9093`); each gets every alert.
    pub alertmanager_urls: Vec<String>,
    /// Direct webhook receivers, names unique.
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Unique name, used as the `receiver` label of `maildrift_notifications_total`.
    pub name: String,
    /// Which payload the receiving service expects.
    pub format: WebhookFormat,
    /// Where to POST.
    pub url: WebhookUrl,
    /// A file holding a signing secret (DingTalk and Feishu sign their webhooks).
    pub secret_file: Option<PathBuf>,
}

/// Where a webhook's URL comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookUrl {
    /// Written in the config (validated as an http(s) URL).
    Inline(String),
    /// Read from this file when sending, so tokens in URLs stay out of the config.
    File(PathBuf),
}

/// Webhook payload formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookFormat {
    /// maildrift's own JSON (the alerts as sent to Alertmanager).
    Generic,
    /// Slack incoming webhook.
    Slack,
    /// DingTalk (钉钉) robot.
    DingTalk,
    /// Feishu / Lark (飞书) bot.
    Feishu,
    /// WeCom (企业微信) group robot.
    WeCom,
}

impl WebhookFormat {
    /// Every format, with its config name.
    pub const ALL: [(&'static str, WebhookFormat); 5] = [
        ("generic", WebhookFormat::Generic),
        ("slack", WebhookFormat::Slack),
        ("dingtalk", WebhookFormat::DingTalk),
        ("feishu", WebhookFormat::Feishu),
        ("wecom", WebhookFormat::WeCom),
    ];

    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("generic", |(name, _)| name)
    }
}

/// Default `alerting.for`: a finding must persist two minutes before it fires.
fn default_for() -> Duration {
    Duration::from_secs(120)
}

/// Default `alerting.resend_interval`: Prometheus' resend delay.
fn default_resend_interval() -> Duration {
    Duration::from_secs(60)
}

/// Validates `alerting:` (already deserialized), recording every issue.
pub(crate) fn validate(raw: RawAlerting, issues: &mut Issues<'_>) -> AlertingConfig {
    let for_duration = match &raw.for_ {
        None => default_for(),
        Some(text) => issues
            .duration(text, "alerting.for", false)
            .unwrap_or_else(default_for),
    };
    let resend_interval = match &raw.resend_interval {
        None => default_resend_interval(),
        Some(text) => issues
            .duration(text, "alerting.resend_interval", true)
            .unwrap_or_else(default_resend_interval),
    };
    let mut alertmanager_urls = Vec::new();
    if let Some(am) = raw.alertmanager {
        let urls: Vec<(String, &Text)> = match (&am.url, &am.urls) {
            (Some(url), None) => vec![("alerting.alertmanager.url".to_string(), url)],
            (None, Some(urls)) => urls
                .iter()
                .enumerate()
                .map(|(i, u)| (format!("alerting.alertmanager.urls[{i}]"), u))
                .collect(),
            (Some(_), Some(_)) => {
                issues.value(
                    "alerting.alertmanager",
                    "set either `url` or `urls`, not both",
                );
                Vec::new()
            }
            (None, None) => {
                issues.value("alerting.alertmanager", "set `url` or `urls`");
                Vec::new()
            }
        };
        for (field, url) in urls {
            match check_http_url(url.as_str()) {
                Ok(url) => alertmanager_urls.push(url),
                Err(message) => issues.value(&field, message),
            }
        }
    }
    let mut webhooks = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for (i, hook) in raw.webhooks.into_iter().enumerate() {
        let field = format!("alerting.webhooks[{i}]");
        let name = hook.name.as_str().trim().to_string();
        if name.is_empty() {
            issues.value(&format!("{field}.name"), "empty webhook name");
        } else if let Some(first) = names.get(&name) {
            let pos = issues.index().value(first);
            issues.value(
                &format!("{field}.name"),
                format!(
                    "duplicate webhook name {name:?}: also at line {} ({first})",
                    pos.line
                ),
            );
        } else {
            names.insert(name.clone(), format!("{field}.name"));
        }
        if let Some(webhook) = webhook(hook, name, &field, issues) {
            webhooks.push(webhook);
        }
    }
    AlertingConfig {
        for_duration,
        resend_interval,
        alertmanager_urls,
        webhooks,
    }
}

fn webhook(
    hook: RawWebhook,
    name: String,
    field: &str,
    issues: &mut Issues<'_>,
) -> Option<WebhookConfig> {
    let format_text = hook.format.as_str();
    let format = WebhookFormat::ALL
        .iter()
        .find(|(n, _)| *n == format_text.trim().to_ascii_lowercase())
        .map(|(_, f)| *f);
    if format.is_none() {
        let known: Vec<&str> = WebhookFormat::ALL.iter().map(|(n, _)| *n).collect();
        issues.value(
            &format!("{field}.format"),
            format!(
                "unknown webhook format {format_text:?}; expected one of {}",
                known.join(", ")
            ),
        );
    }
    let url = match (hook.url, hook.url_file) {
        (Some(url), None) => match check_http_url(url.as_str()) {
            Ok(url) => Some(WebhookUrl::Inline(url)),
            Err(message) => {
                issues.value(&format!("{field}.url"), message);
                None
            }
        },
        (None, Some(file)) if !file.as_str().trim().is_empty() => {
            Some(WebhookUrl::File(PathBuf::from(file.as_str().trim())))
        }
        (None, Some(_)) => {
            issues.value(&format!("{field}.url_file"), "empty file name");
            None
        }
        (Some(_), Some(_)) => {
            issues.value(field, "set either `url` or `url_file`, not both");
            None
        }
        (None, None) => {
            issues.value(field, "set `url` or `url_file`");
            None
        }
    };
    Some(WebhookConfig {
        name,
        format: format?,
        url: url?,
        secret_file: hook.secret_file.map(|f| PathBuf::from(f.as_str().trim())),
    })
}
