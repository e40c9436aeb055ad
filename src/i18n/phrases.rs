//! The words of the status pages. Each phrase is written once with both languages, so a
//! phrase (or a language) cannot be missing one: the match the macro builds is exhaustive.

use super::Language;

macro_rules! phrases {
    ($($name:ident => $en:literal, $zh:literal;)*) => {
        /// A phrase of the status pages.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Phrase {
            $(
                #[doc = $en]
                $name,
            )*
        }

        impl Phrase {
            /// Every phrase.
            #[cfg(test)]
            const ALL: &'static [Phrase] = &[$(Phrase::$name,)*];

            /// The phrase in `language`.
            pub(crate) fn text(self, language: Language) -> &'static str {
                match (self, language) {
                    $(
                        (Phrase::$name, Language::En) => $en,
                        (Phrase::$name, Language::ZhCn) => $zh,
                    )*
                }
            }
        }
    };
}

phrases! {
    StateDrift => "DRIFT", "漂移";
    StateCritical => "critical", "严重";
    StateWarning => "warning", "警告";
    StateUnknown => "unknown (DNS)", "未知（DNS 无应答）";
    StateOk => "ok", "正常";
    StatePending => "pending", "待检查";
    StateSkipped => "skipped", "已跳过";
    NoRecord => "no record", "无记录";
    AllDomains => "all domains", "全部域名";
    Domains => "Domains", "域名";
    Domain => "domain", "域名";
    Check => "check", "检查";
    Checks => "Checks", "检查项";
    AllChecks => "all checks", "全部检查";
    State => "state", "状态";
    AnyState => "any state", "任意状态";
    Age => "age", "持续时间";
    Ago => "ago", "前";
    Never => "never", "从未";
    Now => "now", "当前";
    Peak => "peak", "峰值";
    Every => "every", "检查间隔";
    Asked => "asked", "查询对象";
    Event => "event", "事件";
    Events => "events", "事件";
    What => "what", "内容";
    Finding => "finding", "发现";
    TimeUtc => "time (UTC)", "时间（UTC）";
    None => "None.", "无。";
    NoEvents => "No events recorded.", "没有记录到事件。";
    Metrics => "metrics", "指标";
    DomainsWatched => "domains watched", "个域名受监控";
    DomainsInFleet => "domains in the fleet", "个域名在整个集群中";
    Scope => "Showing", "显示范围";
    ScopeShard => "this instance's domains", "本实例的域名";
    ScopeFleet => "the whole fleet (shared store)", "整个集群（共享存储）";
    NotConfiguredHere => "not in this instance's config", "不在本实例的配置中";
    FleetUnavailable => "The shared state store is unavailable, so the whole fleet cannot be shown.", "共享状态存储不可用，无法显示整个集群。";
    StateStored => "state stored", "状态存储于";
    FirstRoundFinished => "first round finished", "首轮检查已完成";
    FirstRoundRunning => "first round running", "首轮检查进行中";
    StoreUnavailable => "state store unavailable: no history", "状态存储不可用：没有历史记录";
    NoStateDir => "no state directory: history is not kept", "未配置状态目录：不保存历史记录";
    BadRequest => "Bad request", "请求有误";
    StateByCheck => "State by check", "各检查项状态";
    OpenIncidents24h => "Open incidents (warning, critical), last 24 h", "近 24 小时未解决的事件（警告、严重）";
    OldestOpenIncidents => "Oldest open incidents", "持续最久的未解决事件";
    LastChanges => "Last changes", "最近变化";
    Search => "Search", "搜索";
    SearchPlaceholder => "domain or label, e.g. shop team=mail", "域名或标签，例如 shop team=mail";
    SearchHelp => "Words match part of the domain name, key=value a label; all must match. Every setting is in the URL: share it.", "普通词匹配域名的一部分，key=value 匹配标签；所有条件都须满足。筛选条件都在网址中，可直接分享。";
    Reset => "reset", "重置";
    Matched => "match the search", "个符合搜索";
    Page => "page", "页";
    FirstPage => "« first", "« 首页";
    PreviousPage => "‹ previous", "‹ 上一页";
    NextPage => "next ›", "下一页 ›";
    LastPage => "last »", "末页 »";
    LastChecked => "last checked", "上次检查";
    NoDomainMatches => "No domain matches.", "没有符合条件的域名。";
    NotWatched => "is not watched", "不在监控范围内";
    IncidentExport => "incident records", "事件记录";
    LastSevenDays => "Last 7 days", "最近 7 天";
    NoHistory => "No history: the state store is not available.", "没有历史：状态存储不可用。";
    TimelineLegend => "Green ok, yellow warning, red critical, dark red underline drift, grey no record; blue dots are notes. Hover for from → to.", "绿色正常，黄色警告，红色严重，深红色下划线表示漂移，灰色表示无记录；蓝点是处理记录。鼠标悬停可查看起止时间和变化。";
    Incidents => "Incidents", "事件";
    Incident => "incident", "事件";
    Opened => "opened", "开始于";
    OpenFor => "open for", "已持续";
    ResolvedAfter => "resolved after", "已恢复，持续";
    Note => "note", "处理记录";
    AddNote => "Add a note", "添加处理记录";
    NoteNotAdded => "The note was not added", "处理记录未添加";
    Channel => "channel", "沟通渠道";
    Ticket => "ticket", "工单号";
    Who => "who", "处理人";
    FirstResponse => "provider's first response (UTC, or with +08:00)", "服务商首次响应时间（UTC，或注明 +08:00）";
    FirstResponseAfter => "first response after", "首次响应用时";
    FirstResponseAt => "first response at", "首次响应于";
    StepsTaken => "steps taken", "处理步骤";
    RegistrarInvolved => "registrar involved", "涉及注册商";
    DnsProviderInvolved => "DNS provider involved", "涉及 DNS 服务商";
    Records => "records", "记录";
    LastError => "last error", "最近错误";
    LearnedBaseline => "learned baseline", "学习到的基线";
    AcceptHint => "accept the current records", "接受当前记录为新基线";
    ComparedWith => "compared with", "比较对象";
    DeclaredExpectation => "the expectation in the config", "配置文件中的预期";
    Timeline => "Timeline", "时间线";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phrase_is_written_in_both_languages() {
        for phrase in Phrase::ALL {
            for language in Language::ALL {
                assert!(
                    !phrase.text(language).trim().is_empty(),
                    "{phrase:?} is empty in {language}"
                );
            }
            let zh = phrase.text(Language::ZhCn);
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{phrase:?}: {zh:?} is not Chinese"
            );
        }
    }
}
