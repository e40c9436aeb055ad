//! Webhook receivers: the generic Alertmanager webhook payload (version 4), Slack, DingTalk
//! (signed: `timestamp` and `sign` query parameters), Feishu/Lark (signed: `timestamp` and
//! `sign` in the body) and WeCom. One message per alert, when it fires and when it resolves,
//! in the webhook's `language` (chat formats).

use super::alertmanager::rfc3339;
use super::chat_text::{ChatText, chat_text};
use super::delivery::{Deliver, Notice, Payload};
use super::ledger::fingerprint;
use super::transport::{DeliveryError, Secret, send};
use crate::config::{Language, WebhookFormat, WebhookUrl};
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

/// Renders `notice` for `format` in `language` (chat formats; the generic payload is for
/// machines); `now` is used for signatures.
pub fn render(
    format: WebhookFormat,
    notice: &Notice,
    receiver: &str,
    external_url: &str,
    secret: Option<&Secret>,
    language: Language,
    now: SystemTime,
) -> Rendered {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let mut query = Vec::new();
    let chat = chat_text(notice, language);
    let body = match format {
        WebhookFormat::Generic => generic(notice, receiver, external_url),
        WebhookFormat::Slack => json!({ "text": text(notice, &chat, Style::Slack) }),
        WebhookFormat::DingTalk => {
            if let Some(secret) = secret {
                let ms = since.as_millis() as u64;
                query.push(("timestamp".into(), ms.to_string()));
                query.push(("sign".into(), dingtalk_sign(secret.expose(), ms)));
            }
            json!({
                "msgtype": "markdown",
                "markdown": { "title": chat.title, "text": text(notice, &chat, Style::Markdown) },
            })
        }
        WebhookFormat::Feishu => {
            let mut body = json!({
                "msg_type": "text",
                "content": { "text": text(notice, &chat, Style::Plain) },
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
            "markdown": { "content": text(notice, &chat, Style::Markdown) },
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

/// `text` (which may quote DNS data: a TXT record from → to) made inert for the message:
/// control characters (ANSI escapes, NUL, line breaks) shown as `\u{1b}`, and for Slack and
/// Markdown `&`, `<` and `>` as entities, so that a record can neither add lines, links nor
/// mentions (`<!channel>`).
fn neutral(text: &str, style: Style) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' if style != Style::Plain => out.push_str("&amp;"),
            '<' if style != Style::Plain => out.push_str("&lt;"),
            '>' if style != Style::Plain => out.push_str("&gt;"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The message: title, what and where (domain, check), from → to, server and TTL (the
/// description), when, and the links.
fn text(notice: &Notice, chat: &ChatText, style: Style) -> String {
    let bold = |s: &str| match style {
        Style::Plain => s.to_string(),
        Style::Markdown => format!("**{s}**"),
        Style::Slack => format!("*{s}*"),
    };
    let mut lines = vec![
        bold(&neutral(&chat.title, style)),
        neutral(&chat.subject, style),
        neutral(&chat.description, style),
        neutral(&chat.timing, style),
    ];
    let link = &notice.alert.content.generator_url;
    let runbook = notice
        .alert
        .content
        .annotations
        .get("runbook_url")
        .map_or("", String::as_str);
    let (details, runbook_label, colon) = (chat.details, chat.runbook, chat.colon);
    match style {
        Style::Plain => {
            lines.push(format!("{details}{colon}{link}"));
            lines.push(format!("{runbook_label}{colon}{runbook}"));
        }
        Style::Markdown => lines.push(format!(
            "[{details}]({link}) · [{runbook_label}]({runbook})"
        )),
        Style::Slack => lines.push(format!("<{link}|{details}> · <{runbook}|{runbook_label}>")),
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
    /// The language of chat messages.
    pub language: Language,
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
            self.language,
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
