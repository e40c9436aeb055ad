//! `alerting:`: hysteresis, Alertmanager endpoints and webhook receivers, validated here and
//! used by `crate::alert`. Secrets are never in the config itself: only the names of files
//! or environment variables that hold them (the `*_file` / `*_env` convention).

use super::issues::Issues;
use super::names::check_http_url;
use super::raw::{RawAlerting, RawAlertmanager, RawWebhook, Text};
use super::{AlertName, Language};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// Where and when alerts are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertingConfig {
    /// How long a finding must stay open before its alert fires (hysteresis against
    /// flapping DNS answers); zero fires at once.
    pub for_duration: Duration,
    /// How long an alert keeps firing after its condition cleared (zero: resolve at once).
    pub keep_firing_for: Duration,
    /// How often a firing alert is sent again, so Alertmanager does not resolve it.
    pub resend_interval: Duration,
    /// The URL users reach this daemon at, for the links in alerts; `None`: derived from
    /// the listen address.
    pub external_url: Option<String>,
    /// Per-alert overrides of the timings, by alert name.
    pub alerts: BTreeMap<AlertName, AlertOverride>,
    /// Alertmanager base URLs (`http://host:9093`); each gets every alert.
    pub alertmanager_urls: Vec<String>,
    /// How to reach the Alertmanagers (timeout, authentication, TLS).
    pub alertmanager_client: HttpClientConfig,
    /// Direct webhook receivers, names unique.
    pub webhooks: Vec<WebhookConfig>,
}

impl AlertingConfig {
    /// The settings used when the file has no `alerting:` section: default timings, no
    /// receivers (alerts are still evaluated, for `maildrift_alerts_firing`).
    pub fn disabled() -> AlertingConfig {
        AlertingConfig {
            for_duration: default_for(),
            keep_firing_for: Duration::ZERO,
            resend_interval: default_resend_interval(),
            external_url: None,
            alerts: BTreeMap::new(),
            alertmanager_urls: Vec::new(),
            alertmanager_client: HttpClientConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

/// `alerting.alerts.<AlertName>`: timings of one alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertOverride {
    /// Replaces `alerting.for` (and `MailDnsCheckFailing`'s own default).
    pub for_duration: Option<Duration>,
    /// Replaces `alerting.keep_firing_for`.
    pub keep_firing_for: Option<Duration>,
}

/// How maildrift talks to an HTTP receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// Deadline of one request.
    pub timeout: Duration,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: Bearer` token.
    pub bearer_token: Option<SecretSource>,
    /// TLS settings for https:// URLs.
    pub tls: TlsConfig,
}

impl Default for HttpClientConfig {
    fn default() -> HttpClientConfig {
        HttpClientConfig {
            timeout: default_timeout(),
            basic_auth: None,
            bearer_token: None,
            tls: TlsConfig::default(),
        }
    }
}

/// HTTP basic authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user name (not a secret).
    pub username: String,
    /// Where the password is.
    pub password: SecretSource,
}

/// Where a secret is read from, when the alerting runtime is built (start-up and reload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A file (trailing newline removed).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// TLS client settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust in addition to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (testing only; logged as a warning).
    pub insecure_skip_verify: bool,
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
    /// An environment variable holding the signing secret (instead of `secret_file`).
    pub secret_env: Option<String>,
    /// The language of the messages (`language: zh-CN`; chat formats only).
    pub language: Language,
}

impl WebhookConfig {
    /// Where the signing secret is, if any.
    pub fn secret(&self) -> Option<SecretSource> {
        match (&self.secret_file, &self.secret_env) {
            (Some(file), _) => Some(SecretSource::File(file.clone())),
            (None, Some(var)) => Some(SecretSource::Env(var.clone())),
            (None, None) => None,
        }
    }
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
    /// The Alertmanager webhook payload (version 4), so existing receivers work.
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

/// Default request timeout towards receivers.
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Validates `alerting:` (already deserialized), recording every issue.
pub(crate) fn validate(raw: RawAlerting, issues: &mut Issues<'_>) -> AlertingConfig {
    let duration = |issues: &mut Issues<'_>, text: &Option<Text>, field: &str, positive: bool| {
        text.as_ref()
            .and_then(|text| issues.duration(text, field, positive))
    };
    let for_duration =
        duration(issues, &raw.for_, "alerting.for", false).unwrap_or_else(default_for);
    let keep_firing_for = duration(
        issues,
        &raw.keep_firing_for,
        "alerting.keep_firing_for",
        false,
    )
    .unwrap_or(Duration::ZERO);
    let resend_interval = duration(
        issues,
        &raw.resend_interval,
        "alerting.resend_interval",
        true,
    )
    .unwrap_or_else(default_resend_interval);
    let external_url = raw.external_url.as_ref().and_then(|url| {
        check_http_url(url.as_str())
            .map(|url| url.trim_end_matches('/').to_string())
            .map_err(|message| issues.value("alerting.external_url", message))
            .ok()
    });
    let mut alerts = BTreeMap::new();
    for (name, entry) in raw.alerts.unwrap_or_default() {
        let field = format!("alerting.alerts.{name}");
        let parsed = AlertName::parse(&name);
        if let Err(message) = &parsed {
            issues.key(&field, message.clone());
        }
        let timing = AlertOverride {
            for_duration: duration(issues, &entry.for_, &format!("{field}.for"), false),
            keep_firing_for: duration(
                issues,
                &entry.keep_firing_for,
                &format!("{field}.keep_firing_for"),
                false,
            ),
        };
        if let Ok(name) = parsed {
            alerts.insert(name, timing);
        }
    }
    let (alertmanager_urls, alertmanager_client) = match raw.alertmanager {
        Some(am) => alertmanager(am, issues),
        None => (Vec::new(), HttpClientConfig::default()),
    };
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
        keep_firing_for,
        resend_interval,
        external_url,
        alerts,
        alertmanager_urls,
        alertmanager_client,
        webhooks,
    }
}

fn alertmanager(am: RawAlertmanager, issues: &mut Issues<'_>) -> (Vec<String>, HttpClientConfig) {
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
    let mut alertmanager_urls = Vec::new();
    for (field, url) in urls {
        match check_http_url(url.as_str()) {
            Ok(url) => alertmanager_urls.push(url.trim_end_matches('/').to_string()),
            Err(message) => issues.value(&field, message),
        }
    }
    let field = "alerting.alertmanager";
    let timeout = am
        .timeout
        .as_ref()
        .and_then(|t| issues.duration(t, &format!("{field}.timeout"), true))
        .unwrap_or_else(default_timeout);
    let basic_auth = am.basic_auth.and_then(|auth| {
        let username = auth.username.as_str().trim().to_string();
        if username.is_empty() {
            issues.value(&format!("{field}.basic_auth.username"), "empty user name");
        }
        let password = secret(
            auth.password_file.as_ref(),
            auth.password_env.as_ref(),
            &format!("{field}.basic_auth"),
            "password",
            issues,
        );
        if auth.password_file.is_none() && auth.password_env.is_none() {
            issues.value(
                &format!("{field}.basic_auth"),
                "set `password_file` or `password_env` (passwords are never written in the config)",
            );
        }
        Some(BasicAuth {
            username,
            password: password?,
        })
    });
    let bearer_token = secret(
        am.bearer_token_file.as_ref(),
        am.bearer_token_env.as_ref(),
        field,
        "bearer_token",
        issues,
    );
    if basic_auth.is_some() && bearer_token.is_some() {
        issues.value(field, "set either `basic_auth` or a bearer token, not both");
    }
    let tls = am.tls_config.map_or_else(TlsConfig::default, |raw| {
        let path = |text: Option<Text>| {
            text.map(|t| PathBuf::from(t.as_str().trim()))
                .filter(|p| !p.as_os_str().is_empty())
        };
        let tls = TlsConfig {
            ca_file: path(raw.ca_file),
            cert_file: path(raw.cert_file),
            key_file: path(raw.key_file),
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
        };
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            issues.value(
                &format!("{field}.tls_config"),
                "set both `cert_file` and `key_file` for a client certificate",
            );
        }
        tls
    });
    let client = HttpClientConfig {
        timeout,
        basic_auth,
        bearer_token,
        tls,
    };
    (alertmanager_urls, client)
}

/// `<name>_file` or `<name>_env` under `field`: at most one, neither empty.
pub(super) fn secret(
    file: Option<&Text>,
    env: Option<&Text>,
    field: &str,
    name: &str,
    issues: &mut Issues<'_>,
) -> Option<SecretSource> {
    match (file, env) {
        (Some(_), Some(_)) => {
            issues.value(
                field,
                format!("set either `{name}_file` or `{name}_env`, not both"),
            );
            None
        }
        (Some(file), None) if file.as_str().trim().is_empty() => {
            issues.value(&format!("{field}.{name}_file"), "empty file name");
            None
        }
        (Some(file), None) => Some(SecretSource::File(PathBuf::from(file.as_str().trim()))),
        (None, Some(var)) if var.as_str().trim().is_empty() => {
            issues.value(
                &format!("{field}.{name}_env"),
                "empty environment variable name",
            );
            None
        }
        (None, Some(var)) => Some(SecretSource::Env(var.as_str().trim().to_string())),
        (None, None) => None,
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
    let language = webhook_language(hook.language.as_ref(), format, field, issues);
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
    let secret = secret(
        hook.secret_file.as_ref(),
        hook.secret_env.as_ref(),
        field,
        "secret",
        issues,
    );
    if secret.is_some()
        && format.is_some_and(|f| !matches!(f, WebhookFormat::DingTalk | WebhookFormat::Feishu))
    {
        issues.value(
            field,
            format!("{format_text:?} webhooks are not signed: `secret_file`/`secret_env` apply to dingtalk and feishu"),
        );
    }
    let (secret_file, secret_env) = match secret {
        Some(SecretSource::File(file)) => (Some(file), None),
        Some(SecretSource::Env(var)) => (None, Some(var)),
        None => (None, None),
    };
    Some(WebhookConfig {
        name,
        format: format?,
        url: url?,
        secret_file,
        secret_env,
        language,
    })
}

/// `language:` of a chat webhook; the generic payload is for machines and has none.
fn webhook_language(
    text: Option<&Text>,
    format: Option<WebhookFormat>,
    field: &str,
    issues: &mut Issues<'_>,
) -> Language {
    let Some(text) = text else {
        return Language::default();
    };
    let field = format!("{field}.language");
    if format == Some(WebhookFormat::Generic) {
        issues.value(
            &field,
            "the generic payload is for machines: `language` applies to slack, dingtalk, feishu and wecom",
        );
        return Language::default();
    }
    text.as_str()
        .parse()
        .map_err(|message: String| issues.value(&field, message))
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "alerting_tests.rs"]
mod tests;
