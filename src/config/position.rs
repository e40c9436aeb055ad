//! Where each field of a YAML document is: an index "field path → line:column" built from
//! saphyr-parser's event stream, used to locate type errors and semantic errors alike.
//!
//! yaml_serde (the parser that produces values) does not expose positions of values, only
//! of its own errors, so positions come from a second, event-level parser.

use saphyr_parser::{Event, Parser, Span};
use std::collections::HashMap;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) column: usize,
}

impl Pos {
    /// The start of the document; used when nothing better is known.
    pub(crate) const START: Pos = Pos { line: 1, column: 1 };

    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// Where one node is.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The mapping key naming the node, when the node is a mapping value.
    key: Option<Pos>,
    /// The node itself.
    value: Pos,
}

/// Positions of every node of the first document, by field path (`domains[3].expect.mx`).
#[derive(Debug, Default)]
pub(crate) struct PositionIndex {
    entries: HashMap<String, Entry>,
    /// Keys set twice in one mapping: path and position of the repeat.
    duplicates: Vec<(String, Pos)>,
}

/// A node being read: what the next child node will be.
enum Frame {
    /// A mapping; `key` is `None` while the next node is a key.
    Map {
        /// The mapping's own path.
        path: String,
        /// The key just read, and where it is.
        key: Option<(String, Pos)>,
    },
    /// A sequence.
    Seq {
        /// The sequence's own path.
        path: String,
        /// Index of the next item.
        next: usize,
    },
}

impl PositionIndex {
    /// Indexes `text`. Stops quietly at a syntax error (yaml_serde reports those), keeping
    /// what was indexed so far.
    pub(crate) fn build(text: &str) -> PositionIndex {
        let mut index = PositionIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        let mut in_document = false;
        while let Some(Ok((event, span))) = parser.next_event() {
            let pos = Pos::from_span(&span);
            match event {
                Event::DocumentStart(_) => {
                    if in_document {
                        break;
                    }
                    in_document = true;
                }
                Event::DocumentEnd | Event::StreamEnd => break,
                Event::Scalar(text, ..) => {
                    index.node(&mut stack, pos, Some(text.as_ref()));
                }
                Event::Alias(_) => {
                    index.node(&mut stack, pos, Some("*alias"));
                }
                Event::MappingStart(..) => {
                    let path = index.node(&mut stack, pos, None);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = index.node(&mut stack, pos, None);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::Nothing | Event::StreamStart => {}
            }
        }
        index
    }

    /// Records a node starting at `pos` (`scalar` is its text when it is a scalar) and
    /// returns its path. A node in key position is remembered as the pending key; a
    /// non-scalar key gets the path `?`.
    fn node(&mut self, stack: &mut [Frame], pos: Pos, scalar: Option<&str>) -> String {
        let (path, key) = match stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Seq { path, next }) => {
                let child = format!("{path}[{next}]");
                *next += 1;
                (child, None)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    let name = scalar.unwrap_or("?").to_string();
                    let child = join(path, &name);
                    *key = Some((name, pos));
                    // A key is not a node of its own in the index.
                    return child;
                }
                Some((name, key_pos)) => (join(path, &name), Some(key_pos)),
            },
        };
        if self.entries.contains_key(&path) {
            if let Some(key) = key {
                self.duplicates.push((path.clone(), key));
            }
        } else {
            self.entries.insert(path.clone(), Entry { key, value: pos });
        }
        path
    }

    /// Keys repeated within one mapping (path, position of the repeat), in file order.
    pub(crate) fn duplicate_keys(&self) -> &[(String, Pos)] {
        &self.duplicates
    }

    /// Position of the value at `path`, or of its nearest indexed parent.
    pub(crate) fn value(&self, path: &str) -> Pos {
        self.nearest(path).map_or(Pos::START, |e| e.value)
    }

    /// Position of the key naming `path` (for unknown or misplaced keys), falling back to
    /// the value and then to the nearest parent.
    pub(crate) fn key(&self, path: &str) -> Pos {
        match self.entries.get(path) {
            Some(entry) => entry.key.unwrap_or(entry.value),
            None => self.value(path),
        }
    }

    fn nearest(&self, path: &str) -> Option<&Entry> {
        let mut path = path;
        loop {
            if let Some(entry) = self.entries.get(path) {
                return Some(entry);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }
}

/// `parent.child`, or `child` at the root.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// The path without its last segment (`a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``).
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn indexes_block_and_flow_nodes() {
        let text = "a:\n  b: 1\n  list:\n    - x\n    - { y: 2 }\nc: [p, q]\n";
        let index = PositionIndex::build(text);
        assert_eq!(index.value("a.b"), at(2, 6));
        assert_eq!(index.key("a.b"), at(2, 3));
        assert_eq!(index.value("a.list[0]"), at(4, 7));
        assert_eq!(index.value("a.list[1].y"), at(5, 12));
        assert_eq!(index.key("a.list[1].y"), at(5, 9));
        assert_eq!(index.value("c[1]"), at(6, 8));
        // Unknown paths fall back to the nearest parent.
        assert_eq!(index.value("a.list[1].z"), index.value("a.list[1]"));
        assert_eq!(index.key("nowhere"), Pos::START);
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent("a.b[2]"), "a.b");
        assert_eq!(parent("a.b"), "a");
        assert_eq!(parent("a"), "");
    }
}
