//! Webhook receivers: the generic Alertmanager webhook payload (version 4), Slack, DingTalk
//! (signed: `timestamp` and `sign` query parameters), Feishu/Lark (signed: `timestamp` and
//! `sign` in the body) and WeCom. One message per alert, when it fires and when it resolves.

use super::alertmanager::rfc3339;
use super::delivery::{Deliver, Notice, NoticeStatus, Payload};
use super::ledger::fingerprint;
use super::transport::{DeliveryError, Secret, send};
use crate::config::{WebhookFormat, WebhookUrl};
use async_trait::async_trait;
use ring::hmac;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// DingTalk's `sign`: base64(HMAC-SHA256(key = secret, message = "{timestamp_ms}\n{secret}")),
/// before URL encoding.
pub fn dingtalk_sign(secret: &str, timestamp_ms: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp_ms}\n{secret}").as_bytes());
    data_encoding::BASE64.encode(tag.as_ref())
}

/// Feishu's `sign`: base64(HMAC-SHA256(key = "{timestamp_s}\n{secret}", message = empty)).
pub fn feishu_sign(secret: &str, timestamp_s: u64) -> String {
    let key = hmac::Key::new(
        hmac::HMAC_SHA256,
        format!("{timestamp_s}\n{secret}").as_bytes(),
    );
    data_encoding::BASE64.encode(hmac::sign(&key, b"").as_ref())
}

/// A request to send: extra query parameters and the JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// Appended to the URL's query (DingTalk's signature).
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: Value,
}

/// Renders `notice` for `format`; `now` is used for signatures.
pub fn render(
    format: WebhookFormat,
    notice: &Notice,
    receiver: &str,
    external_url: &str,
    secret: Option<&Secret>,
    now: SystemTime,
) -> Rendered {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let mut query = Vec::new();
    let body = match format {
        WebhookFormat::Generic => generic(notice, receiver, external_url),
        WebhookFormat::Slack => json!({ "text": text(notice, Style::Slack) }),
        WebhookFormat::DingTalk => {
            if let Some(secret) = secret {
                let ms = since.as_millis() as u64;
                query.push(("timestamp".into(), ms.to_string()));
                query.push(("sign".into(), dingtalk_sign(secret.expose(), ms)));
            }
            json!({
                "msgtype": "markdown",
                "markdown": { "title": title(notice), "text": text(notice, Style::Markdown) },
            })
        }
        WebhookFormat::Feishu => {
            let mut body = json!({
                "msg_type": "text",
                "content": { "text": text(notice, Style::Plain) },
            });
            if let Some(secret) = secret {
                let secs = since.as_secs();
                body["timestamp"] = json!(secs.to_string());
                body["sign"] = json!(feishu_sign(secret.expose(), secs));
            }
            body
        }
        WebhookFormat::WeCom => json!({
            "msgtype": "markdown",
            "markdown": { "content": text(notice, Style::Markdown) },
        }),
    };
    Rendered { query, body }
}

/// The Alertmanager webhook payload (version 4) with one alert.
fn generic(notice: &Notice, receiver: &str, external_url: &str) -> Value {
    let alert = &notice.alert;
    let labels = &alert.content.labels;
    let ends_at = notice
        .ends_at
        .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339);
    json!({
        "version": "4",
        "groupKey": format!(
            "{{}}:{{alertname=\"{}\", domain=\"{}\"}}",
            alert.key.name, alert.key.domain
        ),
        "truncatedAlerts": 0,
        "status": notice.status.as_str(),
        "receiver": receiver,
        "groupLabels": { "alertname": alert.key.name.as_str(), "domain": alert.key.domain },
        "commonLabels": labels,
        "commonAnnotations": alert.content.annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": notice.status.as_str(),
            "labels": labels,
            "annotations": alert.content.annotations,
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": ends_at,
            "generatorURL": alert.content.generator_url,
            "fingerprint": fingerprint(labels),
        }],
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Markdown,
    Slack,
}

/// `[FIRING] MailDnsMxDrift: MX of example.com changed`.
fn title(notice: &Notice) -> String {
    let summary = notice
        .alert
        .content
        .annotations
        .get("summary")
        .map_or("", String::as_str);
    format!(
        "[{}] {}: {summary}",
        notice.status.as_str().to_ascii_uppercase(),
        notice.alert.key.name
    )
}

/// The message: what, where (domain, check), from → to, server and TTL (the description),
/// when, and the link.
fn text(notice: &Notice, style: Style) -> String {
    let alert = &notice.alert;
    let annotation = |name: &str| {
        alert
            .content
            .annotations
            .get(name)
            .map_or("", String::as_str)
            .to_string()
    };
    let bold = |s: &str| match style {
        Style::Plain => s.to_string(),
        Style::Markdown => format!("**{s}**"),
        Style::Slack => format!("*{s}*"),
    };
    let mut lines = vec![
        bold(&title(notice)),
        format!(
            "Domain: {} · Check: {} · Severity: {}",
            alert.key.domain, alert.key.check, alert.key.severity
        ),
        annotation("description"),
    ];
    match (notice.status, notice.ends_at) {
        (NoticeStatus::Resolved, Some(ends_at)) => lines.push(format!(
            "Firing since {}, resolved at {}.",
            rfc3339(alert.starts_at),
            rfc3339(ends_at)
        )),
        _ => lines.push(format!("Firing since {}.", rfc3339(alert.starts_at))),
    }
    let link = &alert.content.generator_url;
    let runbook = annotation("runbook_url");
    match style {
        Style::Plain => {
            lines.push(format!("Details: {link}"));
            lines.push(format!("Runbook: {runbook}"));
        }
        Style::Markdown => lines.push(format!("[Details]({link}) · [Runbook]({runbook})")),
        Style::Slack => lines.push(format!("<{link}|Details> · <{runbook}|Runbook>")),
    }
    // Markdown needs a blank line for a line break.
    let separator = if style == Style::Markdown {
        "\n\n"
    } else {
        "\n"
    };
    lines.join(separator)
}

/// A configured webhook.
pub struct WebhookTarget {
    /// Its name (the `receiver`).
    pub name: String,
    /// Payload format.
    pub format: WebhookFormat,
    /// Where to POST.
    pub url: WebhookUrl,
    /// Signing secret (DingTalk, Feishu).
    pub secret: Option<Secret>,
    /// The daemon's external URL (generic payload's `externalURL`).
    pub external_url: String,
    /// The HTTP client.
    pub client: reqwest::Client,
}

impl WebhookTarget {
    /// The URL: inline, or read from its file now (so a rotated token applies at once).
    fn url(&self) -> Result<reqwest::Url, DeliveryError> {
        let text = match &self.url {
            WebhookUrl::Inline(url) => url.clone(),
            WebhookUrl::File(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    DeliveryError::Retryable(format!("cannot read {}: {e}", path.display()))
                })?
                .trim()
                .to_string(),
        };
        match reqwest::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
            // The URL may hold a token: say where it came from, not what it is.
            _ => Err(DeliveryError::Permanent(
                "the webhook URL is not an http(s) URL".into(),
            )),
        }
    }
}

#[async_trait]
impl Deliver for WebhookTarget {
    async fn deliver(&self, payload: &Payload) -> Result<(), DeliveryError> {
        let Payload::Notice(notice) = payload else {
            return Err(DeliveryError::Permanent(
                "a webhook takes notices, not Alertmanager batches".into(),
            ));
        };
        let rendered = render(
            self.format,
            notice,
            &self.name,
            &self.external_url,
            self.secret.as_ref(),
            SystemTime::now(),
        );
        let mut url = self.url()?;
        if !rendered.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &rendered.query {
                pairs.append_pair(key, value);
            }
        }
        let body = send(self.client.post(url).json(&rendered.body)).await?;
        check_answer(self.format, &body)
    }
}

/// The robots answer 200 with an error code in the body: `errcode` (DingTalk, WeCom),
/// `code` / `StatusCode` (Feishu). Non-zero is a failure.
fn check_answer(format: WebhookFormat, body: &str) -> Result<(), DeliveryError> {
    if matches!(format, WebhookFormat::Generic | WebhookFormat::Slack) {
        return Ok(());
    }
    let Ok(answer) = serde_json::from_str::<Value>(body) else {
        return Ok(());
    };
    let code = ["errcode", "code", "StatusCode"]
        .iter()
        .find_map(|k| answer.get(*k).and_then(Value::as_i64));
    match code {
        Some(code) if code != 0 => {
            let message = ["errmsg", "msg", "StatusMessage"]
                .iter()
                .find_map(|k| answer.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            Err(DeliveryError::Retryable(format!(
                "{} answered error {code}: {message}",
                format.as_str()
            )))
        }
        _ => Ok(()),
    }
}
