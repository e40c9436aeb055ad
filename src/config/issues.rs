//! Collects located [`ConfigIssue`]s while a file is validated, and deserializes one part
//! of the document at a time, turning a serde error into an issue at the right position.

use super::ConfigIssue;
use super::duration::parse_duration;
use super::position::{PositionIndex, join};
use super::raw::Text;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use std::time::Duration;

/// Every issue found so far, located through the document's position index. The index is
/// built on the first issue: a valid file never needs it (at 100,000 domains it cost
/// ~85 MiB at start-up and at every reload).
pub(crate) struct Issues<'a> {
    /// The document's text.
    text: &'a str,
    /// Its position index, once an issue needs it.
    index: std::cell::OnceCell<PositionIndex>,
    /// The issues, in the order found.
    pub(crate) list: Vec<ConfigIssue>,
}

impl<'a> Issues<'a> {
    /// Starts an empty list over the document `text`.
    pub(crate) fn new(text: &'a str) -> Issues<'a> {
        Issues {
            text,
            index: std::cell::OnceCell::new(),
            list: Vec::new(),
        }
    }

    /// The position index (built on first use).
    pub(crate) fn index(&self) -> &PositionIndex {
        self.index.get_or_init(|| PositionIndex::build(self.text))
    }

    /// Whether the position index was built (only an issue builds it).
    #[cfg(test)]
    pub(crate) fn indexed(&self) -> bool {
        self.index.get().is_some()
    }

    /// An issue about the value at `field`.
    pub(crate) fn value(&mut self, field: &str, message: impl Into<String>) {
        let pos = self.index().value(field);
        self.push(pos.line, pos.column, field, message.into());
    }

    /// An issue about the key `field` itself (unknown or misplaced keys).
    pub(crate) fn key(&mut self, field: &str, message: impl Into<String>) {
        let pos = self.index().key(field);
        self.push(pos.line, pos.column, field, message.into());
    }

    /// An issue at an explicit position.
    pub(crate) fn push(&mut self, line: usize, column: usize, field: &str, message: String) {
        self.list.push(ConfigIssue {
            line,
            column,
            field: field.to_string(),
            message,
        });
    }

    /// Deserializes `value`, found at `field`, into `T`; on error records one issue at the
    /// failing sub-field and returns `None`.
    pub(crate) fn deserialize<T: DeserializeOwned>(
        &mut self,
        value: yaml_serde::Value,
        field: &str,
    ) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                let mut path = field.to_string();
                for segment in err.path().iter() {
                    path = match segment {
                        Segment::Seq { index } => format!("{path}[{index}]"),
                        Segment::Map { key } => join(&path, key),
                        Segment::Enum { variant } => join(&path, variant),
                        Segment::Unknown => break,
                    };
                }
                let message = err.into_inner().to_string();
                if message.starts_with("unknown field") {
                    self.key(&path, message);
                } else {
                    self.value(&path, message);
                }
                None
            }
        }
    }

    /// Parses the duration at `field`; `positive` requires it to be above zero.
    pub(crate) fn duration(
        &mut self,
        text: &Text,
        field: &str,
        positive: bool,
    ) -> Option<Duration> {
        match parse_duration(text.as_str()) {
            Ok(d) if positive && d.is_zero() => {
                self.value(
                    field,
                    format!("{:?} must be greater than zero", text.as_str()),
                );
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.value(field, message);
                None
            }
        }
    }
}
