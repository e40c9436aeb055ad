//! The languages people read maildrift in: `--web.language` for the status pages and
//! `language:` per chat webhook. Only the names live here (config is a leaf); the texts are
//! in `crate::i18n`.

use std::fmt;

/// A language of the status pages and chat messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// English (the default).
    #[default]
    En,
    /// Simplified Chinese (`zh-CN`).
    ZhCn,
}

impl Language {
    /// Every language, with its tag.
    pub const ALL: [Language; 2] = [Language::En, Language::ZhCn];

    /// The BCP 47 tag (`en`, `zh-CN`), as written in the config, on the command line and in
    /// `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::ZhCn => "zh-CN",
        }
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    /// `en` or `zh-CN` (case-insensitive; `zh`, `zh-Hans` and `zh_CN` mean `zh-CN`).
    fn from_str(text: &str) -> Result<Language, String> {
        let lower = text.trim().to_ascii_lowercase().replace('_', "-");
        match lower.as_str() {
            "en" | "en-us" | "en-gb" => Ok(Language::En),
            "zh-cn" | "zh" | "zh-hans" | "zh-hans-cn" => Ok(Language::ZhCn),
            _ => Err(format!("{text:?} is not a language; expected en or zh-CN")),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_back_and_aliases_are_accepted() {
        for language in Language::ALL {
            assert_eq!(language.tag().parse::<Language>(), Ok(language));
        }
        assert_eq!("zh_cn".parse::<Language>(), Ok(Language::ZhCn));
        assert_eq!("ZH-Hans".parse::<Language>(), Ok(Language::ZhCn));
        assert!("fr".parse::<Language>().unwrap_err().contains("\"fr\""));
    }
}
