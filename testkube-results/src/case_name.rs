//! [`CaseName`], the string type of [`TestCase::name`](crate::TestCase::name).
//!
//! Every case has a name of its own, so on a report with hundreds of thousands of cases one heap
//! allocation per name (and one free per name when the report is dropped) was a large part of
//! the parse. Names read from a report are instead packed into shared blocks of text, and each
//! `CaseName` points at its range in one block; it reads like a `&str` everywhere.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A test case's name: an immutable string that reads like `&str` (through `Deref`,
/// [`as_str`](Self::as_str), `==` with `str`, `&str` and `String`, `Display`), stored as a range
/// of a text block shared with other names of the same report.
///
/// A block holds about 64 KiB of names and lives as long as any of its names: keep
/// `String::from(name)` rather than the `CaseName` to hold on to a few names of a report that is
/// otherwise dropped.
#[derive(Clone, Default)]
pub struct CaseName {
    /// The block holding the name; `None` for the empty name.
    block: Option<Arc<str>>,
    start: u32,
    end: u32,
}

impl CaseName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.block {
            Some(block) => block
                .get(self.start as usize..self.end as usize)
                .unwrap_or_default(),
            None => "",
        }
    }

    /// The name at `range` of `block`; `range` must lie on character boundaries of `block`.
    pub(crate) fn in_block(block: &Arc<str>, start: u32, end: u32) -> Self {
        CaseName {
            block: Some(Arc::clone(block)),
            start,
            end,
        }
    }
}

impl From<&str> for CaseName {
    fn from(name: &str) -> Self {
        if name.is_empty() {
            return CaseName::default();
        }
        match u32::try_from(name.len()) {
            Ok(end) => CaseName {
                block: Some(Arc::from(name)),
                start: 0,
                end,
            },
            // A name over 4 GiB cannot come from a report this crate accepts in memory; keep
            // the type total anyway.
            Err(_) => CaseName::default(),
        }
    }
}

impl From<String> for CaseName {
    fn from(name: String) -> Self {
        CaseName::from(name.as_str())
    }
}

impl From<CaseName> for String {
    fn from(name: CaseName) -> Self {
        name.as_str().to_owned()
    }
}

impl Deref for CaseName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for CaseName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for CaseName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for CaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for CaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for CaseName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CaseName {}

impl PartialOrd for CaseName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CaseName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for CaseName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for CaseName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for CaseName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for CaseName {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<CaseName> for str {
    fn eq(&self, other: &CaseName) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<CaseName> for &str {
    fn eq(&self, other: &CaseName) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<CaseName> for String {
    fn eq(&self, other: &CaseName) -> bool {
        self == other.as_str()
    }
}

impl Serialize for CaseName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Packs the names of a report's cases into shared blocks: names are appended to one growing
/// buffer, and every `BLOCK_BYTES` the buffer becomes a shared block and the cases named so far
/// get their [`CaseName`]s pointing into it.
#[derive(Debug, Default)]
pub(crate) struct NameArena {
    text: String,
}

/// Where a name staged in a [`NameArena`] is, until its block is sealed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StagedName {
    start: u32,
    end: u32,
}

impl NameArena {
    /// Blocks are sealed at about this size: large enough that sharing one costs nothing per
    /// name, small enough that the cases waiting for it are still in cache when it is sealed.
    pub(crate) const BLOCK_BYTES: usize = 64 * 1024;

    /// Appends a name through `write` (which pushes onto the buffer) and keeps it without
    /// leading and trailing XML whitespace.
    pub(crate) fn stage_trimmed(&mut self, write: impl FnOnce(&mut String)) -> StagedName {
        const XML_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];
        let start = self.text.len();
        write(&mut self.text);
        let written = &self.text[start..];
        let end = start + written.trim_end_matches(XML_SPACE).len();
        let start = start + (written.len() - written.trim_start_matches(XML_SPACE).len());
        match (u32::try_from(start), u32::try_from(end)) {
            (Ok(start), Ok(end)) if start < end => StagedName { start, end },
            // All whitespace (or, beyond 4 GiB of names, unrepresentable): the empty name.
            _ => StagedName { start: 0, end: 0 },
        }
    }

    /// Whether the buffer is big enough to be sealed.
    pub(crate) fn is_full(&self) -> bool {
        self.text.len() >= Self::BLOCK_BYTES
    }

    /// Forgets the staged names (none of them is used).
    pub(crate) fn clear(&mut self) {
        self.text.clear();
    }

    /// Turns the buffer into a shared block and empties it for the next names.
    pub(crate) fn seal(&mut self) -> Arc<str> {
        let block = Arc::from(self.text.as_str());
        self.text.clear();
        block
    }
}

impl StagedName {
    /// The name, in the block sealed from the arena it was staged in.
    pub(crate) fn in_block(self, block: &Arc<str>) -> CaseName {
        if self.start == self.end {
            return CaseName::default();
        }
        CaseName::in_block(block, self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_and_compare_like_strings() {
        let name = CaseName::from("adds two numbers");
        assert_eq!(name, "adds two numbers");
        assert_eq!(name.as_str(), "adds two numbers");
        assert_eq!(&*name, "adds two numbers");
        assert!(name.starts_with("adds"));
        assert_eq!(name.to_string(), "adds two numbers");
        assert_eq!(format!("{name:?}"), "\"adds two numbers\"");
        assert_eq!(CaseName::default(), "");
        assert_eq!(String::from("x"), CaseName::from("x"));
        assert_eq!(
            serde_json::to_string(&name).ok().as_deref(),
            Some("\"adds two numbers\"")
        );
    }

    #[test]
    fn staged_names_point_into_their_sealed_block() {
        let mut arena = NameArena::default();
        let first = arena.stage_trimmed(|text| text.push_str("first"));
        let second = arena.stage_trimmed(|text| text.push_str("  second \n"));
        let blank = arena.stage_trimmed(|text| text.push_str(" \t "));
        let block = arena.seal();
        let names: Vec<CaseName> = [first, second, blank]
            .into_iter()
            .map(|staged| staged.in_block(&block))
            .collect();
        assert_eq!(names, ["first", "second", ""]);
        assert!(!arena.is_full());
        assert_eq!(arena.stage_trimmed(|text| text.push_str("next")).start, 0);
    }
}
