//! Webhook receivers: exact payloads per format and DingTalk/Feishu signatures, delivered to
//! local HTTP receivers.

use super::{Received, Receiver};
use maildrift::alert::delivery::{Deliver, Notice, NoticeStatus, Payload};
use maildrift::alert::lifecycle::FiringAlert;
use maildrift::alert::rules::{AlertFacts, FindingFact, ResolverDelay, SeenAt};
use maildrift::alert::webhook::{WebhookTarget, dingtalk_sign, feishu_sign};
use maildrift::alert::{AlertContent, AlertKey, AlertName};
use maildrift::config::{Language, WebhookFormat, WebhookUrl};
use maildrift::finding::{CheckKind, FindingCode, Severity};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn notice(status: NoticeStatus) -> Notice {
    let labels = BTreeMap::from([
        ("alertname".to_string(), "MailDnsMxDrift".to_string()),
        ("check".to_string(), "mx".to_string()),
        ("domain".to_string(), "acme.example".to_string()),
        ("severity".to_string(), "critical".to_string()),
    ]);
    let annotations = BTreeMap::from([
        (
            "summary".to_string(),
            "MX of acme.example changed".to_string(),
        ),
        (
            "description".to_string(),
            "MX changed from [mx1.acme.example] to [mx.old.example]. Seen at 192.0.2.53:53."
                .to_string(),
        ),
        (
            "runbook_url".to_string(),
            "https://runbook.test/#maildnsmxdrift".to_string(),
        ),
    ]);
    Notice {
        status,
        alert: FiringAlert {
            key: AlertKey {
                name: AlertName::MailDnsMxDrift,
                domain: "acme.example".into(),
                check: CheckKind::Mx,
                severity: Severity::Critical,
            },
            content: AlertContent {
                labels,
                annotations,
                generator_url: "http://maildrift.test:9725/domains/acme.example".into(),
                facts: None,
            },
            starts_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        },
        ends_at: (status == NoticeStatus::Resolved)
            .then(|| UNIX_EPOCH + Duration::from_secs(1_700_000_600)),
        incident: "x".into(),
    }
}

async fn deliver(
    format: WebhookFormat,
    url: String,
    secret: Option<&str>,
    answer: &'static str,
) -> (Received, Result<(), String>) {
    deliver_in(
        Language::En,
        notice(NoticeStatus::Firing),
        format,
        url,
        secret,
        answer,
    )
    .await
}

/// Delivers `notice` to a local receiver through a `format` webhook speaking `language`.
async fn deliver_in(
    language: Language,
    notice: Notice,
    format: WebhookFormat,
    url: String,
    secret: Option<&str>,
    answer: &'static str,
) -> (Received, Result<(), String>) {
    let receiver = Receiver::start(answer).await;
    let target = WebhookTarget {
        name: "robot".into(),
        format,
        url: WebhookUrl::Inline(format!("http://{}{url}", receiver.addr)),
        secret: secret.map(maildrift::alert::transport::Secret::new),
        external_url: "http://maildrift.test:9725".into(),
        language,
        client: reqwest::Client::new(),
    };
    let result = target
        .deliver(&Payload::Notice(notice))
        .await
        .map_err(|e| e.to_string());
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    (received[0].clone(), result)
}

const TEXT: &str = "MX changed from [mx1.acme.example] to [mx.old.example]. Seen at 192.0.2.53:53.";

#[tokio::test]
async fn dingtalk_gets_markdown_and_a_valid_sign() {
    let secret = "SEC0123456789abcdef0123456789abcdef";
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (got, result) = deliver(
        WebhookFormat::DingTalk,
        "/robot/send?access_token=tok".into(),
        Some(secret),
        r#"{"errcode":0,"errmsg":"ok"}"#,
    )
    .await;
    result.unwrap();
    assert_eq!(
        got.body,
        json!({
            "msgtype": "markdown",
            "markdown": {
                "title": "[FIRING] MailDnsMxDrift: MX of acme.example changed",
                "text": format!(
                    "**[FIRING] MailDnsMxDrift: MX of acme.example changed**\n\n\
                     Domain: acme.example · Check: mx · Severity: critical\n\n{TEXT}\n\n\
                     Firing since 2023-11-14T22:13:20.000Z.\n\n\
                     [Details](http://maildrift.test:9725/domains/acme.example) · \
                     [Runbook](https://runbook.test/#maildnsmxdrift)"
                ),
            },
        })
    );
    let query: BTreeMap<String, String> = url_pairs(got.uri.query().unwrap_or(""));
    assert_eq!(query["access_token"], "tok");
    let timestamp: u64 = query["timestamp"].parse().unwrap();
    assert!(timestamp >= before && timestamp < before + 60_000);
    assert_eq!(query["sign"], dingtalk_sign(secret, timestamp));
    // The known vector, computed independently with Python's hmac/hashlib/base64 per
    // DingTalk's documentation (key = secret, message = "{timestamp}\n{secret}").
    assert_eq!(
        dingtalk_sign(secret, 1_700_000_000_000),
        "hJ95/XWePTzrSwXDHEJJY1Ta0B6qiG/YMxNzB4v4U2w="
    );
    // A robot answering an error code is a failed delivery.
    let (_, result) = deliver(
        WebhookFormat::DingTalk,
        "/robot/send?access_token=tok".into(),
        Some(secret),
        r#"{"errcode":310000,"errmsg":"sign not match"}"#,
    )
    .await;
    assert!(result.unwrap_err().contains("310000"));
}

fn url_pairs(query: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn feishu_gets_text_with_timestamp_and_sign_in_the_body() {
    let secret = "feishu-secret";
    let (got, result) = deliver(
        WebhookFormat::Feishu,
        "/open-apis/bot/v2/hook/abc".into(),
        Some(secret),
        r#"{"code":0}"#,
    )
    .await;
    result.unwrap();
    assert_eq!(got.uri.path(), "/open-apis/bot/v2/hook/abc");
    let timestamp: u64 = got.body["timestamp"].as_str().unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(timestamp <= now && timestamp + 60 > now);
    assert_eq!(got.body["sign"], feishu_sign(secret, timestamp));
    assert_eq!(
        got.body["content"]["text"],
        format!(
            "[FIRING] MailDnsMxDrift: MX of acme.example changed\n\
             Domain: acme.example · Check: mx · Severity: critical\n{TEXT}\n\
             Firing since 2023-11-14T22:13:20.000Z.\n\
             Details: http://maildrift.test:9725/domains/acme.example\n\
             Runbook: https://runbook.test/#maildnsmxdrift"
        )
    );
    assert_eq!(got.body["msg_type"], "text");
    assert_eq!(got.body.as_object().unwrap().len(), 4);
    // Known vector from Python (key = "{timestamp}\n{secret}", message empty), per Feishu's docs.
    assert_eq!(
        feishu_sign(secret, 1_700_000_000),
        "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="
    );
}

#[tokio::test]
async fn slack_and_wecom_payloads() {
    let (got, result) = deliver(WebhookFormat::Slack, "/services/T/B/X".into(), None, "ok").await;
    result.unwrap();
    assert_eq!(
        got.body,
        json!({ "text": format!(
            "*[FIRING] MailDnsMxDrift: MX of acme.example changed*\n\
             Domain: acme.example · Check: mx · Severity: critical\n{TEXT}\n\
             Firing since 2023-11-14T22:13:20.000Z.\n\
             <http://maildrift.test:9725/domains/acme.example|Details> · \
             <https://runbook.test/#maildnsmxdrift|Runbook>"
        )})
    );
    let (got, result) = deliver(
        WebhookFormat::WeCom,
        "/cgi-bin/webhook/send?key=k".into(),
        None,
        r#"{"errcode":0}"#,
    )
    .await;
    result.unwrap();
    assert_eq!(got.uri.query(), Some("key=k"));
    assert_eq!(got.body["msgtype"], "markdown");
    assert!(
        got.body["markdown"]["content"]
            .as_str()
            .unwrap()
            .starts_with(
                "**[FIRING] MailDnsMxDrift: MX of acme.example changed**\n\nDomain: acme.example"
            )
    );
}

#[tokio::test]
async fn generic_resolved_payload_is_the_alertmanager_webhook_shape() {
    let receiver = Receiver::start("").await;
    let target = WebhookTarget {
        name: "generic".into(),
        format: WebhookFormat::Generic,
        url: WebhookUrl::Inline(format!("http://{}/", receiver.addr)),
        secret: None,
        external_url: "http://maildrift.test:9725".into(),
        language: Language::ZhCn,
        client: reqwest::Client::new(),
    };
    target
        .deliver(&Payload::Notice(notice(NoticeStatus::Resolved)))
        .await
        .unwrap();
    let notice = notice(NoticeStatus::Resolved);
    let labels = json!(notice.alert.content.labels);
    let annotations = json!(notice.alert.content.annotations);
    assert_eq!(
        receiver.received()[0].body,
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"MailDnsMxDrift\", domain=\"acme.example\"}",
            "truncatedAlerts": 0,
            "status": "resolved",
            "receiver": "generic",
            "groupLabels": { "alertname": "MailDnsMxDrift", "domain": "acme.example" },
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "http://maildrift.test:9725",
            "alerts": [{
                "status": "resolved",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2023-11-14T22:13:20.000Z",
                "endsAt": "2023-11-14T22:23:20.000Z",
                "generatorURL": "http://maildrift.test:9725/domains/acme.example",
                "fingerprint": maildrift::alert::ledger::fingerprint(&notice.alert.content.labels),
            }],
        })
    );
}

/// The notice with the facts the rules attach: a Chinese message is written from them.
fn notice_with_facts(status: NoticeStatus) -> Notice {
    let mut notice = notice(status);
    notice.alert.content.facts = Some(Box::new(AlertFacts {
        findings: vec![FindingFact {
            code: FindingCode::Drift,
            from: Some(json!(["mx1.acme.example"])),
            to: Some(json!(["mx.old.example"])),
            lookups: None,
        }],
        seen_at: SeenAt::Server("192.0.2.53:53".into()),
        resolvers: Some(ResolverDelay {
            seconds: 300,
            cached_ttl: true,
        }),
        error: None,
    }));
    notice
}

/// What the Chinese messages say about the drift: summary, from → to, the nameserver, when
/// resolvers switch.
const ZH_TITLE: &str = "[告警] MailDnsMxDrift：acme.example 的 MX 记录发生了变化";
const ZH_SUBJECT: &str = "域名：acme.example · 检查：mx · 级别：严重";
const ZH_TEXT: &str = "记录与配置的预期或学习到的基线不一致：从 [mx1.acme.example] 变为 [mx.old.example]。\
    发现于 192.0.2.53:53。缓存了旧应答的解析器将在 5 分钟内看到这一变化（TTL）。";

/// The DingTalk and WeCom markdown of the firing drift in Chinese.
fn zh_markdown() -> String {
    format!(
        "**{ZH_TITLE}**\n\n{ZH_SUBJECT}\n\n{ZH_TEXT}\n\n\
         开始于 2023-11-15 06:13:20（北京时间）。\n\n\
         [详情](http://maildrift.test:9725/domains/acme.example) · \
         [处置手册](https://runbook.test/#maildnsmxdrift)"
    )
}

/// Delivers the drift (`status`) through a Chinese `format` webhook; what it received.
async fn in_chinese(
    format: WebhookFormat,
    status: NoticeStatus,
    url: &str,
    secret: Option<&str>,
) -> Received {
    let (got, result) = deliver_in(
        Language::ZhCn,
        notice_with_facts(status),
        format,
        url.into(),
        secret,
        r#"{"errcode":0,"code":0}"#,
    )
    .await;
    result.unwrap();
    got
}

#[tokio::test]
async fn dingtalk_in_chinese() {
    let secret = "SEC0123456789abcdef0123456789abcdef";
    let url = "/robot/send?access_token=tok";
    let got = in_chinese(
        WebhookFormat::DingTalk,
        NoticeStatus::Firing,
        url,
        Some(secret),
    )
    .await;
    assert_eq!(
        got.body,
        json!({ "msgtype": "markdown", "markdown": { "title": ZH_TITLE, "text": zh_markdown() } })
    );
    // Signed as in English.
    let query = url_pairs(got.uri.query().unwrap_or(""));
    let timestamp: u64 = query["timestamp"].parse().unwrap();
    assert_eq!(query["sign"], dingtalk_sign(secret, timestamp));
}

#[tokio::test]
async fn feishu_in_chinese_when_resolved() {
    let url = "/open-apis/bot/v2/hook/abc";
    let got = in_chinese(WebhookFormat::Feishu, NoticeStatus::Resolved, url, None).await;
    let text = format!(
        "[已恢复] MailDnsMxDrift：acme.example 的 MX 记录发生了变化\n{ZH_SUBJECT}\n{ZH_TEXT}\n\
         开始于 2023-11-15 06:13:20，恢复于 2023-11-15 06:23:20（北京时间）。\n\
         详情：http://maildrift.test:9725/domains/acme.example\n\
         处置手册：https://runbook.test/#maildnsmxdrift"
    );
    assert_eq!(
        got.body,
        json!({ "msg_type": "text", "content": { "text": text } })
    );
}

#[tokio::test]
async fn wecom_in_chinese_and_english_without_facts() {
    let url = "/cgi-bin/webhook/send?key=k";
    let got = in_chinese(WebhookFormat::WeCom, NoticeStatus::Firing, url, None).await;
    assert_eq!(
        got.body,
        json!({ "msgtype": "markdown", "markdown": { "content": zh_markdown() } })
    );
    // An alert restored from the store has no facts: its English description, marked.
    // English reads the annotations, facts or not.
    for (language, notice, prefix) in [
        (Language::ZhCn, notice(NoticeStatus::Firing), "（英文原文）"),
        (Language::En, notice_with_facts(NoticeStatus::Firing), ""),
    ] {
        let (got, result) = deliver_in(
            language,
            notice,
            WebhookFormat::WeCom,
            url.into(),
            None,
            "{}",
        )
        .await;
        result.unwrap();
        let content = got.body["markdown"]["content"].as_str().unwrap();
        assert!(
            content.contains(&format!("\n\n{prefix}{TEXT}\n\n")),
            "{language}: {content}"
        );
    }
}
