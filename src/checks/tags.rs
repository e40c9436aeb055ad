//! `tag=value` lists, the record syntax shared by DKIM (RFC 6376 §3.2), DMARC (RFC 7489
//! §6.4), MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3): tags separated by `;`,
//! whitespace around names and values ignored, an optional trailing `;`.

/// One `tag=value` pair, name as written (case kept), value trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The tag name.
    pub name: String,
    /// The value, surrounding whitespace removed.
    pub value: String,
}

/// Why a tag list does not parse; quotes the offending part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A non-empty segment without `=`.
    #[error("{0:?} is not a tag=value pair")]
    NotAPair(String),
    /// A tag name with characters outside `ALPHA *(ALPHA / DIGIT / "_")`.
    #[error("invalid tag name {0:?}")]
    BadName(String),
    /// The same tag twice.
    #[error("tag {0:?} appears more than once")]
    Duplicate(String),
}

/// Parses a tag list. Empty segments (`a=1;;b=2`, a trailing `;`) are skipped; tag names
/// compare case-insensitively for duplicates.
pub fn parse_tags(text: &str) -> Result<Vec<Tag>, TagError> {
    let mut tags: Vec<Tag> = Vec::new();
    for segment in text.split(';') {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let Some((name, value)) = segment.split_once('=') else {
            return Err(TagError::NotAPair(segment.to_owned()));
        };
        let name = name.trim();
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(TagError::BadName(name.to_owned()));
        }
        if tags.iter().any(|t| t.name.eq_ignore_ascii_case(name)) {
            return Err(TagError::Duplicate(name.to_owned()));
        }
        tags.push(Tag {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        });
    }
    Ok(tags)
}

/// The value of tag `name` (case-insensitive), if present.
pub fn tag<'a>(tags: &'a [Tag], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .map(|t| t.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_whitespace_and_trailing_semicolon() {
        let tags = parse_tags(" v = DMARC1 ; p=reject;; rua=mailto:a@b.example ;").unwrap();
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["v", "p", "rua"]);
        assert_eq!(tag(&tags, "V"), Some("DMARC1"));
        assert_eq!(tag(&tags, "rua"), Some("mailto:a@b.example"));
        assert_eq!(tag(&tags, "sp"), None);
    }

    #[test]
    fn rejects_quoting_the_input() {
        assert_eq!(
            parse_tags("v=DMARC1; p reject"),
            Err(TagError::NotAPair("p reject".into()))
        );
        assert_eq!(
            parse_tags("v=DMARC1; 1p=x"),
            Err(TagError::BadName("1p".into()))
        );
        assert_eq!(
            parse_tags("v=DMARC1; p=none; P=reject"),
            Err(TagError::Duplicate("P".into()))
        );
    }
}
