//! The one-line summary of each alert in Chinese, for chat messages (the English summary is
//! the alert's `summary` annotation). `{domain}` and `{check}` are filled in. A new
//! [`AlertName`] fails `every_alert_has_a_chinese_summary` until it has one.

use super::Language;
use crate::config::AlertName;

const ZH_CN: &[(AlertName, &str)] = &[
    (AlertName::MailDnsMxDrift, "{domain} 的 MX 记录发生了变化"),
    (AlertName::MailDnsSpfDrift, "{domain} 的 SPF 记录发生了变化"),
    (
        AlertName::MailDnsSpfLookupLimit,
        "{domain} 的 SPF DNS 查询次数达到上限",
    ),
    (AlertName::MailDnsDkimMissing, "{domain} 缺少 DKIM 公钥"),
    (
        AlertName::MailDnsDmarcWeakened,
        "{domain} 的 DMARC 策略被削弱",
    ),
    (
        AlertName::MailDnsNameserversInconsistent,
        "{domain} 的权威域名服务器应答不一致",
    ),
    (
        AlertName::MailDnsCheckFailing,
        "{domain} 的 {check} 检查收不到 DNS 应答",
    ),
    (
        AlertName::MailDomainExpiring,
        "{domain} 的域名注册即将到期或已失效",
    ),
    (
        AlertName::MailDnsblListed,
        "{domain} 的邮件服务器 IP 被列入黑名单",
    ),
    (
        AlertName::MailMxCertificateExpiring,
        "{domain} 的 MX 主机证书即将过期",
    ),
];

/// The summary of alert `name` about `domain`'s `check` in `language`; `None` for English
/// (the annotation says it) and for an alert without a translation.
pub(crate) fn alert_summary(
    name: AlertName,
    language: Language,
    domain: &str,
    check: &str,
) -> Option<String> {
    let table = match language {
        Language::En => return None,
        Language::ZhCn => ZH_CN,
    };
    let (_, template) = table.iter().find(|(n, _)| *n == name)?;
    Some(
        template
            .replace("{domain}", domain)
            .replace("{check}", check),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_has_a_chinese_summary() {
        for name in AlertName::ALL {
            let summary = alert_summary(name, Language::ZhCn, "a.example", "mx");
            let summary = summary.unwrap_or_else(|| {
                panic!("no Chinese summary for {name:?}: add it to src/i18n/alerts.rs")
            });
            assert!(summary.contains("a.example"), "{summary}");
            assert!(!summary.contains('{'), "{summary}");
        }
        assert_eq!(
            ZH_CN.len(),
            AlertName::ALL.len(),
            "an alert twice in src/i18n/alerts.rs"
        );
        assert_eq!(
            alert_summary(AlertName::MailDnsMxDrift, Language::En, "a.example", "mx"),
            None
        );
    }
}
