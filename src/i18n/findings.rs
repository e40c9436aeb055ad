//! What each finding code means, in each language: one table per language with the same
//! keys. The checks' own messages quote the offending input (in English); these say what
//! the code is, for a reader of either language. A new [`FindingCode`] fails
//! `every_code_has_a_message_in_every_language` until both tables have it.

use super::Language;
use crate::finding::FindingCode;

/// English.
const EN: &[(FindingCode, &str)] = &[
    (FindingCode::MxMissing, "The domain publishes no MX records"),
    (
        FindingCode::MxUnexpectedHost,
        "An MX host is not one of the expected hosts",
    ),
    (
        FindingCode::MxExpectedHostMissing,
        "An expected MX host is missing",
    ),
    (
        FindingCode::MxHostUnresolvable,
        "An MX host has no address (A/AAAA)",
    ),
    (
        FindingCode::MxPointsToCname,
        "An MX host is a CNAME, which RFC 5321 forbids",
    ),
    (FindingCode::MxNull, "Null MX: the domain accepts no mail"),
    (
        FindingCode::SpfMissing,
        "The domain publishes no SPF record",
    ),
    (
        FindingCode::SpfMultipleRecords,
        "More than one SPF record (permerror)",
    ),
    (
        FindingCode::SpfSyntaxError,
        "The SPF record has a syntax error",
    ),
    (
        FindingCode::SpfLookupLimitExceeded,
        "SPF needs more than 10 DNS lookups (permerror)",
    ),
    (
        FindingCode::SpfLookupLimitNear,
        "SPF needs 9 or 10 DNS lookups, close to the limit of 10",
    ),
    (
        FindingCode::SpfVoidLookupLimitExceeded,
        "SPF causes more than 2 void lookups (permerror)",
    ),
    (
        FindingCode::SpfIncludeLoop,
        "SPF includes loop back on themselves",
    ),
    (
        FindingCode::SpfExpectedIncludeMissing,
        "An expected SPF include is missing",
    ),
    (
        FindingCode::SpfAllMismatch,
        "The SPF `all` qualifier differs from the expected one",
    ),
    (
        FindingCode::SpfPermissiveAll,
        "SPF ends in +all or ?all: anyone may send as the domain",
    ),
    (
        FindingCode::SpfNotAuthorized,
        "A sender that must pass SPF does not",
    ),
    (
        FindingCode::SpfIpsetChanged,
        "The addresses SPF authorizes changed",
    ),
    (
        FindingCode::SpfIncludeNoRecord,
        "An SPF include names a domain without an SPF record",
    ),
    (
        FindingCode::DkimKeyMissing,
        "A DKIM selector publishes no key",
    ),
    (
        FindingCode::DkimKeyRevoked,
        "A DKIM key is revoked (empty p=)",
    ),
    (FindingCode::DkimKeyWeak, "A DKIM key is too short"),
    (
        FindingCode::DkimTestingMode,
        "DKIM is in testing mode (t=y)",
    ),
    (
        FindingCode::DkimKeyInvalid,
        "A DKIM key record cannot be read",
    ),
    (
        FindingCode::DmarcMissing,
        "The domain publishes no DMARC record",
    ),
    (
        FindingCode::DmarcMultipleRecords,
        "More than one DMARC record",
    ),
    (
        FindingCode::DmarcSyntaxError,
        "The DMARC record has a syntax error",
    ),
    (
        FindingCode::DmarcPolicyNone,
        "The DMARC policy is none: spoofed mail is delivered",
    ),
    (
        FindingCode::DmarcPolicyWeakened,
        "The DMARC policy is weaker than expected or than before",
    ),
    (
        FindingCode::DmarcPctPartial,
        "DMARC applies to part of the mail only (pct below 100)",
    ),
    (
        FindingCode::DmarcExternalReportUnauthorized,
        "A DMARC report address outside the domain has not agreed to receive reports",
    ),
    (
        FindingCode::MtaStsPolicyUnreachable,
        "The MTA-STS policy cannot be fetched",
    ),
    (
        FindingCode::MtaStsMxMismatch,
        "The MTA-STS policy does not cover every MX host",
    ),
    (
        FindingCode::MtaStsIdChanged,
        "The MTA-STS policy id changed",
    ),
    (
        FindingCode::TlsRptMissing,
        "The domain publishes no TLS-RPT record",
    ),
    (
        FindingCode::MtaStsRecordInvalid,
        "The MTA-STS TXT record is invalid",
    ),
    (
        FindingCode::MtaStsPolicyInvalid,
        "The MTA-STS policy file is invalid",
    ),
    (FindingCode::TlsRptInvalid, "The TLS-RPT record is invalid"),
    (
        FindingCode::NsLame,
        "An authoritative nameserver does not answer for the zone (lame)",
    ),
    (
        FindingCode::NsAnswersDiffer,
        "The authoritative nameservers give different answers",
    ),
    (
        FindingCode::NsSerialMismatch,
        "The authoritative nameservers serve different SOA serials",
    ),
    (
        FindingCode::NsDelegationMismatch,
        "The delegation at the parent differs from the zone's own NS records",
    ),
    (FindingCode::DnssecBogus, "DNSSEC validation fails (bogus)"),
    (
        FindingCode::DnssecUnsigned,
        "The zone is not signed with DNSSEC",
    ),
    (
        FindingCode::DnssecSignatureExpiring,
        "DNSSEC signatures expire soon",
    ),
    (
        FindingCode::DomainExpiring,
        "The domain registration expires soon",
    ),
    (
        FindingCode::DomainExpired,
        "The domain registration has expired (or is pending deletion)",
    ),
    (
        FindingCode::DomainOnHold,
        "The registry holds the domain (client/server hold): it is out of the DNS",
    ),
    (
        FindingCode::DomainRegistrarChanged,
        "The registrar or the registered nameservers changed",
    ),
    (
        FindingCode::DnsblListed,
        "An MX or sending address is on a DNS blocklist",
    ),
    (
        FindingCode::MxStarttlsMissing,
        "An MX host does not offer STARTTLS",
    ),
    (
        FindingCode::MxTlsCertExpiring,
        "An MX host's certificate expires soon",
    ),
    (
        FindingCode::MxTlsCertExpired,
        "An MX host's certificate has expired",
    ),
    (
        FindingCode::MxTlsCertUntrusted,
        "An MX host's certificate chain is not trusted",
    ),
    (
        FindingCode::MxTlsNameMismatch,
        "An MX host's certificate does not name the host",
    ),
    (
        FindingCode::MxTlsOldVersion,
        "An MX host offers only TLS below 1.2",
    ),
    (
        FindingCode::MxSmtpUnreachable,
        "An MX address did not answer on the SMTP port (port 25 may be blocked outbound)",
    ),
    (
        FindingCode::MxTlsCertChanged,
        "An MX host presents a new certificate",
    ),
    (
        FindingCode::DaneTlsaMismatch,
        "No TLSA record matches the MX host's certificate: DANE senders defer mail",
    ),
    (
        FindingCode::DaneTlsaUnsigned,
        "TLSA records without DNSSEC: senders ignore them",
    ),
    (
        FindingCode::DaneRolloverUnsafe,
        "The certificate expires soon and every TLSA record names only it",
    ),
    (
        FindingCode::DaneTlsaBogus,
        "The TLSA records' DNSSEC signatures do not validate",
    ),
    (
        FindingCode::BimiInvalid,
        "The BIMI record or logo is invalid",
    ),
    (
        FindingCode::BimiLogoUnreachable,
        "The BIMI logo cannot be fetched",
    ),
    (
        FindingCode::BimiDmarcNotEnforced,
        "BIMI needs DMARC at quarantine or reject with pct=100",
    ),
    (
        FindingCode::Drift,
        "The records differ from the expectation or the learned baseline",
    ),
];

/// Simplified Chinese.
const ZH_CN: &[(FindingCode, &str)] = &[
    (FindingCode::MxMissing, "域名没有发布 MX 记录"),
    (
        FindingCode::MxUnexpectedHost,
        "出现了不在预期列表中的 MX 主机",
    ),
    (FindingCode::MxExpectedHostMissing, "缺少预期的 MX 主机"),
    (
        FindingCode::MxHostUnresolvable,
        "MX 主机解析不到地址（A/AAAA）",
    ),
    (
        FindingCode::MxPointsToCname,
        "MX 主机是 CNAME，RFC 5321 不允许这样配置",
    ),
    (FindingCode::MxNull, "空 MX：该域名声明不接收邮件"),
    (FindingCode::SpfMissing, "域名没有发布 SPF 记录"),
    (
        FindingCode::SpfMultipleRecords,
        "存在多条 SPF 记录（permerror）",
    ),
    (FindingCode::SpfSyntaxError, "SPF 记录有语法错误"),
    (
        FindingCode::SpfLookupLimitExceeded,
        "SPF 需要超过 10 次 DNS 查询（permerror）",
    ),
    (
        FindingCode::SpfLookupLimitNear,
        "SPF 需要 9 到 10 次 DNS 查询，接近 10 次的上限",
    ),
    (
        FindingCode::SpfVoidLookupLimitExceeded,
        "SPF 的空查询超过 2 次（permerror）",
    ),
    (FindingCode::SpfIncludeLoop, "SPF 的 include 出现了循环引用"),
    (
        FindingCode::SpfExpectedIncludeMissing,
        "缺少预期的 SPF include",
    ),
    (FindingCode::SpfAllMismatch, "SPF 的 all 限定符与预期不符"),
    (
        FindingCode::SpfPermissiveAll,
        "SPF 以 +all 或 ?all 结尾：任何人都能以该域名发信",
    ),
    (
        FindingCode::SpfNotAuthorized,
        "应当通过 SPF 的发信地址没有通过",
    ),
    (FindingCode::SpfIpsetChanged, "SPF 授权的 IP 地址发生了变化"),
    (
        FindingCode::SpfIncludeNoRecord,
        "SPF include 指向的域名没有 SPF 记录",
    ),
    (FindingCode::DkimKeyMissing, "DKIM 选择器没有发布公钥"),
    (FindingCode::DkimKeyRevoked, "DKIM 公钥已吊销（p= 为空）"),
    (FindingCode::DkimKeyWeak, "DKIM 公钥长度过短"),
    (FindingCode::DkimTestingMode, "DKIM 处于测试模式（t=y）"),
    (FindingCode::DkimKeyInvalid, "DKIM 公钥记录无法读取"),
    (FindingCode::DmarcMissing, "域名没有发布 DMARC 记录"),
    (FindingCode::DmarcMultipleRecords, "存在多条 DMARC 记录"),
    (FindingCode::DmarcSyntaxError, "DMARC 记录有语法错误"),
    (
        FindingCode::DmarcPolicyNone,
        "DMARC 策略为 none：伪造的邮件仍会被投递",
    ),
    (
        FindingCode::DmarcPolicyWeakened,
        "DMARC 策略比预期或之前更宽松",
    ),
    (
        FindingCode::DmarcPctPartial,
        "DMARC 只对部分邮件生效（pct 小于 100）",
    ),
    (
        FindingCode::DmarcExternalReportUnauthorized,
        "域外的 DMARC 报告接收地址没有同意接收报告",
    ),
    (
        FindingCode::MtaStsPolicyUnreachable,
        "无法获取 MTA-STS 策略文件",
    ),
    (
        FindingCode::MtaStsMxMismatch,
        "MTA-STS 策略没有覆盖所有 MX 主机",
    ),
    (FindingCode::MtaStsIdChanged, "MTA-STS 策略 id 已变更"),
    (FindingCode::TlsRptMissing, "域名没有发布 TLS-RPT 记录"),
    (FindingCode::MtaStsRecordInvalid, "MTA-STS TXT 记录无效"),
    (FindingCode::MtaStsPolicyInvalid, "MTA-STS 策略文件无效"),
    (FindingCode::TlsRptInvalid, "TLS-RPT 记录无效"),
    (
        FindingCode::NsLame,
        "权威域名服务器不为该区域应答（lame delegation）",
    ),
    (FindingCode::NsAnswersDiffer, "各权威域名服务器的应答不一致"),
    (
        FindingCode::NsSerialMismatch,
        "各权威域名服务器的 SOA 序列号不一致",
    ),
    (
        FindingCode::NsDelegationMismatch,
        "上级区域的委派与本区域的 NS 记录不一致",
    ),
    (FindingCode::DnssecBogus, "DNSSEC 验证失败（bogus）"),
    (FindingCode::DnssecUnsigned, "该区域没有 DNSSEC 签名"),
    (FindingCode::DnssecSignatureExpiring, "DNSSEC 签名即将过期"),
    (FindingCode::DomainExpiring, "域名注册即将到期"),
    (
        FindingCode::DomainExpired,
        "域名注册已过期（或处于赎回期、待删除）",
    ),
    (
        FindingCode::DomainOnHold,
        "注册局暂停了该域名的解析（clientHold/serverHold）",
    ),
    (
        FindingCode::DomainRegistrarChanged,
        "域名的注册商或注册的域名服务器发生了变化",
    ),
    (
        FindingCode::DnsblListed,
        "MX 或发信 IP 地址被列入了 DNS 黑名单",
    ),
    (FindingCode::MxStarttlsMissing, "MX 主机不支持 STARTTLS"),
    (FindingCode::MxTlsCertExpiring, "MX 主机的证书即将过期"),
    (FindingCode::MxTlsCertExpired, "MX 主机的证书已过期"),
    (FindingCode::MxTlsCertUntrusted, "MX 主机的证书链不受信任"),
    (
        FindingCode::MxTlsNameMismatch,
        "MX 主机的证书与主机名不匹配",
    ),
    (
        FindingCode::MxTlsOldVersion,
        "MX 主机只支持低于 1.2 的 TLS 版本",
    ),
    (
        FindingCode::MxSmtpUnreachable,
        "MX 地址的 SMTP 端口无应答（出方向 25 端口可能被封）",
    ),
    (FindingCode::MxTlsCertChanged, "MX 主机更换了证书"),
    (
        FindingCode::DaneTlsaMismatch,
        "TLSA 记录与 MX 主机的证书不匹配：支持 DANE 的发件方会暂缓投递",
    ),
    (
        FindingCode::DaneTlsaUnsigned,
        "TLSA 记录没有 DNSSEC 签名：发件方会忽略它们",
    ),
    (
        FindingCode::DaneRolloverUnsafe,
        "证书即将过期，而所有 TLSA 记录都只对应当前证书",
    ),
    (
        FindingCode::DaneTlsaBogus,
        "TLSA 记录的 DNSSEC 签名验证失败",
    ),
    (FindingCode::BimiInvalid, "BIMI 记录或徽标无效"),
    (FindingCode::BimiLogoUnreachable, "无法获取 BIMI 徽标"),
    (
        FindingCode::BimiDmarcNotEnforced,
        "BIMI 要求 DMARC 策略为 quarantine 或 reject 且 pct=100",
    ),
    (FindingCode::Drift, "记录与配置的预期或学习到的基线不一致"),
];

fn table(language: Language) -> &'static [(FindingCode, &'static str)] {
    match language {
        Language::En => EN,
        Language::ZhCn => ZH_CN,
    }
}

/// What `code` means, in `language` (the code itself if a table lacks it, which the tests
/// below forbid).
pub(crate) fn finding_message(code: FindingCode, language: Language) -> &'static str {
    table(language)
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code.as_str(), |(_, message)| message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(language: Language) -> Vec<FindingCode> {
        table(language).iter().map(|(code, _)| *code).collect()
    }

    #[test]
    fn the_tables_have_the_same_keys_once_each() {
        let en = keys(Language::En);
        for language in Language::ALL {
            let keys = keys(language);
            let unique: BTreeSet<_> = keys.iter().collect();
            assert_eq!(unique.len(), keys.len(), "{language}: a code twice");
            assert_eq!(
                unique,
                en.iter().collect::<BTreeSet<_>>(),
                "{language} and en differ"
            );
        }
    }

    #[test]
    fn every_code_has_a_message_in_every_language() {
        for language in Language::ALL {
            let keys: BTreeSet<FindingCode> = keys(language).into_iter().collect();
            let missing: Vec<&str> = FindingCode::ALL
                .iter()
                .filter(|code| !keys.contains(code))
                .map(|code| code.as_str())
                .collect();
            assert!(
                missing.is_empty(),
                "no {language} message for {missing:?}: add them to src/i18n/findings.rs"
            );
            for (code, message) in table(language) {
                assert!(!message.trim().is_empty(), "{language} {code}: empty");
            }
        }
        assert_eq!(
            finding_message(FindingCode::MxNull, Language::ZhCn),
            "空 MX：该域名声明不接收邮件"
        );
        assert_eq!(
            finding_message(FindingCode::Drift, Language::En),
            "The records differ from the expectation or the learned baseline"
        );
    }

    #[test]
    fn chinese_messages_are_chinese() {
        // A copy-pasted English line in the Chinese table is a bug too.
        for (code, message) in ZH_CN {
            assert!(
                message
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{code}: {message:?} has no Chinese"
            );
        }
    }
}
