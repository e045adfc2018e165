//! The spanned YAML loader: workflow files become a tree of [`Node`]s that
//! remember where each value came from, and typed model values are read from
//! that tree with [`from_node`], which reports every problem as a
//! [`Diagnostic`] pointing at `LINE:COL`.
//!
//! Why our own tree instead of a YAML-to-serde crate: users need every
//! unknown field reported (not just the first), with a "did you mean" hint,
//! at the key's exact position, and hostile input (alias bombs, deep nesting,
//! huge files) must be refused quickly with bounded memory. The tree is built
//! from `saphyr-parser` events by an iterative builder ([`load_documents`])
//! that enforces the [`LoadOptions`] budgets; scalars are resolved with the
//! YAML 1.2 core schema (only plain scalars: quoted and block scalars are
//! always strings); YAML 1.1 merge keys (`<<`) are supported. Validation
//! reads documents with `from_node_recovering`, which goes on past type
//! errors so that every error of a file is reported.

mod de;
mod loader;
mod path;
mod positions;
mod recover;
mod scalar;

use crate::diagnostic::{Diagnostic, Location, Span};

pub use de::from_node;
pub use path::{FieldPath, PathSeg};
pub(crate) use recover::{Pruning, from_node_recovering};

/// One YAML value and where it is in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value is written (for a mapping or sequence: from its first
    /// to its last character).
    pub span: Span,
    /// The value.
    pub value: NodeValue,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// A null: an empty value (`key:`) or a plain `~`, `null`, `Null`, `NULL`.
    Null,
    /// Any other scalar, as written (after YAML unescaping and folding).
    Scalar {
        /// The scalar's text.
        text: String,
        /// How it was written; only [`ScalarStyle::Plain`] scalars are
        /// resolved to booleans and numbers.
        style: ScalarStyle,
    },
    /// A sequence (list).
    Seq(Vec<Node>),
    /// A mapping, in document order; keys are nodes too (usually scalars).
    /// Keys are unique: duplicates are refused when loading.
    Map(Vec<(Node, Node)>),
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarStyle {
    /// Unquoted: resolved with the YAML 1.2 core schema (`true`, `5`,
    /// `0x1f`, `1.5e3`, `.inf` ... are not strings).
    Plain,
    /// Single- or double-quoted: always a string.
    Quoted,
    /// Literal (`|`) or folded (`>`) block: always a string.
    Block,
}

/// Limits that make loading hostile input fail fast with bounded memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Largest accepted source, in bytes (default 16 MiB).
    pub max_bytes: usize,
    /// Deepest accepted nesting of sequences and mappings (default 128).
    /// Also bounds the recursion of everything that walks the tree.
    pub max_depth: usize,
    /// Most nodes in all documents of one stream, counted after alias
    /// expansion (default 1,000,000).
    pub max_nodes: usize,
    /// Most alias uses (`*name`) in one stream (default 100,000).
    pub max_alias_expansions: usize,
    /// Most nodes produced by alias expansion in one stream (default
    /// 100,000). Expanding costs time and memory that the file's size does
    /// not show (a 300-byte alias bomb can ask for a million nodes), so it
    /// gets a budget of its own, well below `max_nodes`.
    pub max_alias_nodes: usize,
    /// Most bytes of scalar text produced by alias expansion in one stream
    /// (default 64 MiB): a long string aliased many times stays bounded.
    pub max_alias_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 128,
            max_nodes: 1_000_000,
            max_alias_expansions: 100_000,
            max_alias_nodes: 100_000,
            max_alias_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Checks that `bytes` are UTF-8 and returns the text without a leading
/// UTF-8 byte order mark.
///
/// # Errors
/// An `invalid-utf8` diagnostic at the line and column of the first bad byte.
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, Diagnostic> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(err) => {
            let valid_up_to = err.valid_up_to();
            let valid = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
            let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
            let start = Location {
                line: count_u32(valid.matches('\n').count()) + 1,
                column: count_u32(valid[line_start..].chars().count()) + 1,
            };
            let bad_len = err.error_len().unwrap_or(bytes.len() - valid_up_to);
            let span = Span {
                start,
                end: Location {
                    line: start.line,
                    column: start.column + 1,
                },
                offset: valid_up_to,
                len: bad_len,
            };
            let bad: Vec<String> = bytes[valid_up_to..valid_up_to + bad_len]
                .iter()
                .map(|b| format!("0x{b:02X}"))
                .collect();
            Err(Diagnostic::error(
                "invalid-utf8",
                format!("the file is not valid UTF-8 (byte {})", bad.join(" ")),
            )
            .with_span(span)
            .with_hint("save the file as UTF-8"))
        }
    }
}

/// Parses every document of a YAML stream (documents separated by `---`),
/// skipping empty ones (a document that holds only comments or a null).
///
/// # Errors
/// The first problem found: `yaml-syntax` for malformed YAML,
/// `duplicate-key`, `invalid-merge` for a bad `<<` value, `unknown-anchor`,
/// and `budget` when a [`LoadOptions`] limit is exceeded.
pub fn load_documents(source: &str, options: &LoadOptions) -> Result<Vec<Node>, Diagnostic> {
    loader::load(source, options)
}

impl Node {
    /// The node at `path` below this one (map keys and sequence indexes).
    #[must_use]
    pub fn get(&self, path: &[PathSeg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.value) {
                (PathSeg::Key(key), NodeValue::Map(_)) => node.get_key(key)?,
                (PathSeg::Index(i), NodeValue::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The value of `key` when this node is a mapping.
    #[must_use]
    pub fn get_key(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, value)| value)
    }

    /// The `(key, value)` entry for `key` when this node is a mapping.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.key_text().as_deref() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The span of the key of the last segment of `path` (where an
    /// unknown-field error should point); for a last segment that is an
    /// index, the span of that item.
    #[must_use]
    pub fn key_span(&self, path: &[PathSeg]) -> Option<Span> {
        let (last, parent) = path.split_last()?;
        let parent = self.get(parent)?;
        match last {
            PathSeg::Key(key) => parent.entry(key).map(|(k, _)| k.span),
            PathSeg::Index(_) => parent.get(std::slice::from_ref(last)).map(|n| n.span),
        }
    }

    /// The value as JSON: plain scalars resolved (YAML 1.2 core schema;
    /// `.inf` and `.nan` become `null` as JSON cannot hold them), keys
    /// stringified (non-scalar keys as compact JSON text).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Scalar { text, style } => scalar::to_json(text, *style),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The text of a scalar of any style (`None` for null, sequences and
    /// mappings).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether the node is a null.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    /// The word for this kind of node in messages: `null`, `a string`,
    /// `a sequence`, `a map`...
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Scalar { text, style } => scalar::kind_name(text, *style),
            NodeValue::Seq(_) => "a sequence",
            NodeValue::Map(_) => "a map",
        }
    }

    /// The text of a scalar key (`null` for a null key), borrowed when possible.
    pub(crate) fn key_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match &self.value {
            NodeValue::Scalar { text, .. } => Some(std::borrow::Cow::Borrowed(text)),
            NodeValue::Null => Some(std::borrow::Cow::Borrowed("null")),
            _ => None,
        }
    }

    /// The key as a string: scalar text, or compact JSON for complex keys.
    pub(crate) fn key_string(&self) -> String {
        match self.key_text() {
            Some(text) => text.into_owned(),
            None => self.to_json().to_string(),
        }
    }
}

/// Converts a count to `u32` for a [`Location`], saturating.
pub(crate) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_utf8_strips_bom() {
        assert_eq!(decode_utf8(b"\xEF\xBB\xBFa: 1").unwrap(), "a: 1");
        assert_eq!(decode_utf8(b"a: 1").unwrap(), "a: 1");
    }

    #[test]
    fn decode_utf8_reports_line_and_column_of_first_bad_byte() {
        let err = decode_utf8(b"a: 1\nb: \xC3\xA9\xFF\n").unwrap_err();
        assert_eq!(err.code(), "invalid-utf8");
        let span = err.span().unwrap();
        assert_eq!((span.start.line, span.start.column), (2, 5));
        assert_eq!((span.offset, span.len), (10, 1));
        assert_eq!(err.hint(), Some("save the file as UTF-8"));
        assert!(err.message().contains("0xFF"), "{}", err.message());
    }

    #[test]
    fn decode_utf8_reports_truncated_sequence_at_end() {
        let err = decode_utf8(b"ab\xE2\x82").unwrap_err();
        let span = err.span().unwrap();
        assert_eq!((span.start.line, span.start.column, span.len), (1, 3, 2));
    }
}
