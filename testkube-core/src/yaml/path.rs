//! Field paths such as `spec.steps[0].name`: how diagnostics say which field
//! is wrong, and how callers address nodes in a loaded tree.

use std::fmt;

/// One step of a [`FieldPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index, starting at 0.
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(key: &str) -> Self {
        PathSeg::Key(key.to_owned())
    }
}

impl From<String> for PathSeg {
    fn from(key: String) -> Self {
        PathSeg::Key(key)
    }
}

impl From<usize> for PathSeg {
    fn from(index: usize) -> Self {
        PathSeg::Index(index)
    }
}

/// A path from a document's root to a field, displayed as
/// `spec.steps[0].name` (keys that are not simple identifiers are quoted:
/// `metadata.labels["app.kubernetes.io/name"]`).
///
/// ```
/// use testkube_core::yaml::FieldPath;
/// let path = FieldPath::default().child("spec").child("steps").child(0).child("name");
/// assert_eq!(path.to_string(), "spec.steps[0].name");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<PathSeg>);

impl FieldPath {
    /// The empty path (the document root).
    #[must_use]
    pub fn new() -> Self {
        FieldPath(Vec::new())
    }

    /// Appends a segment.
    pub fn push(&mut self, seg: impl Into<PathSeg>) {
        self.0.push(seg.into());
    }

    /// Removes and returns the last segment.
    pub fn pop(&mut self) -> Option<PathSeg> {
        self.0.pop()
    }

    /// A copy of this path with one more segment.
    #[must_use]
    pub fn child(&self, seg: impl Into<PathSeg>) -> Self {
        let mut path = self.clone();
        path.push(seg);
        path
    }

    /// The segments, root first.
    #[must_use]
    pub fn segments(&self) -> &[PathSeg] {
        &self.0
    }

    /// Whether this is the root path.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of segments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<Vec<PathSeg>> for FieldPath {
    fn from(segments: Vec<PathSeg>) -> Self {
        FieldPath(segments)
    }
}

impl FromIterator<PathSeg> for FieldPath {
    fn from_iter<I: IntoIterator<Item = PathSeg>>(iter: I) -> Self {
        FieldPath(iter.into_iter().collect())
    }
}

impl AsRef<[PathSeg]> for FieldPath {
    fn as_ref(&self) -> &[PathSeg] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            write_seg(f, seg, i == 0)?;
        }
        Ok(())
    }
}

/// Writes one segment the way [`FieldPath`] displays it.
pub(crate) fn write_seg(f: &mut impl fmt::Write, seg: &PathSeg, first: bool) -> fmt::Result {
    match seg {
        PathSeg::Index(i) => write!(f, "[{i}]"),
        PathSeg::Key(key) if is_simple_key(key) => {
            if !first {
                f.write_char('.')?;
            }
            f.write_str(key)
        }
        PathSeg::Key(key) => write!(f, "[{key:?}]"),
    }
}

fn is_simple_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_indexes_and_quoted_keys() {
        let mut path = FieldPath::new();
        assert_eq!(path.to_string(), "");
        path.push("metadata");
        path.push("labels");
        path.push("app.kubernetes.io/name");
        assert_eq!(
            path.to_string(),
            r#"metadata.labels["app.kubernetes.io/name"]"#
        );
        assert_eq!(path.pop(), Some(PathSeg::from("app.kubernetes.io/name")));
        let path: FieldPath = vec![PathSeg::Index(2), "a".into(), 0.into()].into();
        assert_eq!(path.to_string(), "[2].a[0]");
        assert_eq!(path.len(), 3);
    }
}
