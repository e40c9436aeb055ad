//! What people read, in their language: the finding messages (one table per language, the
//! same keys), the status pages' phrases and the chat messages' alert summaries. English is
//! the default; `zh-CN` serves the on-call who are paged in DingTalk, Feishu or WeCom.

mod alerts;
mod findings;
mod phrases;

pub(crate) use crate::config::Language;
pub(crate) use alerts::alert_summary;
pub(crate) use findings::finding_message;
pub(crate) use phrases::Phrase;

/// Records as people read them: a JSON list of strings as `a, b`; anything else as JSON.
pub(crate) fn record_list(value: &serde_json::Value) -> String {
    match value.as_array() {
        Some(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        None => value.to_string(),
    }
}

/// The language an `Accept-Language` header prefers among those maildrift speaks: the
/// supported tag with the highest weight (`q`), English when none is supported.
pub(crate) fn negotiate(accept_language: Option<&str>) -> Language {
    let Some(header) = accept_language else {
        return Language::default();
    };
    let mut best: Option<(f32, Language)> = None;
    // A header is short; the bound keeps a hostile one cheap.
    for item in header.split(',').take(32) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let language = match primary {
            "zh" => Language::ZhCn,
            "en" => Language::En,
            _ => continue,
        };
        if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, language));
        }
    }
    best.map_or(Language::default(), |(_, language)| language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_supported_tag() {
        assert_eq!(negotiate(None), Language::En);
        assert_eq!(negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), Language::ZhCn);
        assert_eq!(negotiate(Some("en-US,en;q=0.9,zh-CN;q=0.8")), Language::En);
        assert_eq!(negotiate(Some("fr-FR, zh-TW;q=0.5")), Language::ZhCn);
        assert_eq!(negotiate(Some("de, fr;q=0.5")), Language::En);
        assert_eq!(negotiate(Some("zh;q=0, en;q=0.1")), Language::En);
        assert_eq!(negotiate(Some("ZH-cn;q=0.7, en;q=0.3")), Language::ZhCn);
    }
}
