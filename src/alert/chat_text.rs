//! The words of a chat message (Slack, DingTalk, Feishu, WeCom) in the webhook's language:
//! the title, the domain line, what happened (from → to, which nameserver, when resolvers
//! see it), when, and the labels of the links. English says what the annotations say;
//! Chinese is written from the alert's facts, with each finding code's meaning from the
//! shared table, and times in Beijing time.

use super::alertmanager::{civil_from_days, rfc3339};
use super::delivery::{Notice, NoticeStatus};
use super::rules::{AlertFacts, SeenAt};
use crate::config::Language;
use crate::finding::Severity;
use crate::i18n;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The parts of a message, before styling.
pub(super) struct ChatText {
    /// `[FIRING] MailDnsMxDrift: MX of example.com changed`.
    pub title: String,
    /// Domain, check, severity.
    pub subject: String,
    /// What happened.
    pub description: String,
    /// Since when (and until when).
    pub timing: String,
    /// The label of the link to the domain's page.
    pub details: &'static str,
    /// The label of the runbook link.
    pub runbook: &'static str,
    /// What follows a label in plain text (`: ` or `：`).
    pub colon: &'static str,
}

fn annotation<'a>(notice: &'a Notice, name: &str) -> &'a str {
    notice
        .alert
        .content
        .annotations
        .get(name)
        .map_or("", String::as_str)
}

/// The message of `notice` in `language`.
pub(super) fn chat_text(notice: &Notice, language: Language) -> ChatText {
    match language {
        Language::En => english(notice),
        Language::ZhCn => chinese(notice),
    }
}

fn english(notice: &Notice) -> ChatText {
    let alert = &notice.alert;
    let timing = match (notice.status, notice.ends_at) {
        (NoticeStatus::Resolved, Some(ends_at)) => format!(
            "Firing since {}, resolved at {}.",
            rfc3339(alert.starts_at),
            rfc3339(ends_at)
        ),
        _ => format!("Firing since {}.", rfc3339(alert.starts_at)),
    };
    ChatText {
        title: format!(
            "[{}] {}: {}",
            notice.status.as_str().to_ascii_uppercase(),
            alert.key.name,
            annotation(notice, "summary")
        ),
        subject: format!(
            "Domain: {} · Check: {} · Severity: {}",
            alert.key.domain, alert.key.check, alert.key.severity
        ),
        description: annotation(notice, "description").to_owned(),
        timing,
        details: "Details",
        runbook: "Runbook",
        colon: ": ",
    }
}

/// `2023-11-15 06:13:20`, Beijing time (UTC+8, no daylight saving).
fn beijing(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        + 8 * 3600;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `300 秒`, `10 分钟`, `2 小时 30 分钟`.
fn duration_zh(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} 秒"),
        s if s < 7200 => format!("{} 分钟", s / 60),
        s => format!("{} 小时 {} 分钟", s / 3600, (s % 3600) / 60),
    }
}

fn severity_zh(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "严重",
        Severity::Warning => "警告",
        Severity::Info => "提示",
    }
}

/// The description in Chinese from the facts.
fn description_zh(facts: &AlertFacts) -> String {
    let mut parts = Vec::new();
    if let Some(error) = &facts.error {
        parts.push(format!(
            "DNS 没有给出确定的应答（{error}）。在 DNS 恢复应答之前，maildrift 不会报告也不会清除该检查的漂移。"
        ));
    }
    for finding in &facts.findings {
        let mut sentence = i18n::finding_message(finding.code, Language::ZhCn).to_owned();
        if let (Some(from), Some(to)) = (&finding.from, &finding.to) {
            sentence.push_str(&format!(
                "：从 [{}] 变为 [{}]",
                i18n::record_list(from),
                i18n::record_list(to)
            ));
        }
        if let Some(lookups) = finding.lookups {
            sentence.push_str(&format!("（共 {lookups} 次 DNS 查询）"));
        }
        sentence.push('。');
        parts.push(sentence);
    }
    if facts.error.is_none() {
        parts.push(match &facts.seen_at {
            SeenAt::Server(server) => format!("发现于 {server}。"),
            SeenAt::Nameservers(servers) => {
                format!("发现于权威域名服务器 {}。", servers.join(", "))
            }
            SeenAt::Authoritative => "发现于该域名的权威域名服务器。".to_owned(),
            SeenAt::Resolvers => "通过递归解析器发现。".to_owned(),
        });
    }
    if let Some(delay) = facts.resolvers {
        let within = duration_zh(delay.seconds);
        parts.push(if delay.cached_ttl {
            format!("缓存了旧应答的解析器将在 {within}内看到这一变化（TTL）。")
        } else {
            format!("用户的解析器将在 {within}内看到这一变化（TTL）。")
        });
    }
    parts.join("")
}

fn chinese(notice: &Notice) -> ChatText {
    let alert = &notice.alert;
    let key = &alert.key;
    let summary = i18n::alert_summary(key.name, Language::ZhCn, &key.domain, key.check.as_str())
        .unwrap_or_else(|| annotation(notice, "summary").to_owned());
    let status = match notice.status {
        NoticeStatus::Firing => "告警",
        NoticeStatus::Resolved => "已恢复",
    };
    let description = match &alert.content.facts {
        Some(facts) => description_zh(facts),
        // Restored from the store without facts: the English description, marked as such.
        None => format!("（英文原文）{}", annotation(notice, "description")),
    };
    let timing = match (notice.status, notice.ends_at) {
        (NoticeStatus::Resolved, Some(ends_at)) => format!(
            "开始于 {}，恢复于 {}（北京时间）。",
            beijing(alert.starts_at),
            beijing(ends_at)
        ),
        _ => format!("开始于 {}（北京时间）。", beijing(alert.starts_at)),
    };
    ChatText {
        title: format!("[{status}] {}：{summary}", key.name),
        subject: format!(
            "域名：{} · 检查：{} · 级别：{}",
            key.domain,
            key.check,
            severity_zh(key.severity)
        ),
        description,
        timing,
        details: "详情",
        runbook: "处置手册",
        colon: "：",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_and_durations() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(beijing(at), "2023-11-15 06:13:20");
        assert_eq!(duration_zh(59), "59 秒");
        assert_eq!(duration_zh(600), "10 分钟");
        assert_eq!(duration_zh(9000), "2 小时 30 分钟");
    }
}
