//! Reading a typed value past its type errors, so that a file's author sees
//! every error of a document in one run, not one per run.
//!
//! A serde visitor cannot resume after a type error (`shell: [echo]` where a
//! string is expected): [`from_node`](super::from_node) stops at the first
//! one. [`from_node_recovering`] records that error, removes the offending
//! entry from a copy of the tree (the map entry at the error's path, or the
//! sequence item), and reads again, up to [`MAX_ROUNDS`] times. What is left
//! is a value read from the pruned tree: the semantic checks can run on it,
//! and since every node keeps its span, their positions still point into the
//! original source. Removing a sequence item shifts the indexes after it;
//! [`Pruning::original`] maps paths in the pruned tree back to the file's.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::de::read_once;
use super::{FieldPath, Node, NodeValue, PathSeg};
use crate::diagnostic::Diagnostic;

/// How many type errors of one document are collected before giving up.
pub(crate) const MAX_ROUNDS: usize = 50;

/// A value read past its type errors.
pub(crate) struct Recovered<T> {
    /// The value, from the pruned tree when errors were removed; `None` when
    /// the document itself has the wrong shape or the round limit was hit.
    pub(crate) value: Option<T>,
    /// Every diagnostic (type errors and unknown fields), each once, with
    /// paths in the original tree, in source order.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// The pruned tree the value was read from; `None` when nothing was
    /// removed (the value comes from the original tree).
    pub(crate) pruned: Option<Node>,
    /// What was removed, to map paths back.
    pub(crate) pruning: Pruning,
}

/// The entries removed from a tree, in the order they were removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Pruning {
    /// Sequence items removed: the sequence's path and the item's index,
    /// both as they were in the tree at the time of the removal.
    removed_items: Vec<(FieldPath, usize)>,
    /// Every removed entry, as a path in the original tree.
    removed: Vec<FieldPath>,
}

impl Pruning {
    /// Whether anything was removed.
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }

    /// The path in the original tree of `path` in the pruned one.
    pub(crate) fn original(&self, path: &FieldPath) -> FieldPath {
        let mut segments = path.segments().to_vec();
        for (sequence, removed) in self.removed_items.iter().rev() {
            let depth = sequence.len();
            if segments.len() > depth
                && segments[..depth] == *sequence.segments()
                && let PathSeg::Index(index) = &mut segments[depth]
                && *index >= *removed
            {
                *index += 1;
            }
        }
        FieldPath::from(segments)
    }

    /// Whether a problem found in the pruned tree at `original` (a path in
    /// the file) is only a consequence of the pruning: it is about a removed
    /// entry (`a TestTrigger needs event` after `event: modifed` went), or
    /// it is a warning about the map that lost it (`this step does
    /// nothing` after its `shell: [echo]` went), or any problem of the list
    /// that lost an item (`no events` after its only event went).
    pub(crate) fn explains(&self, original: &FieldPath, warning: bool) -> bool {
        self.removed.iter().any(|removed| {
            let inside = original.len() >= removed.len()
                && original.segments()[..removed.len()] == *removed.segments();
            let item = matches!(removed.segments().last(), Some(PathSeg::Index(_)));
            let parent = (warning || item)
                && removed.len() == original.len() + 1
                && removed.segments()[..original.len()] == *original.segments();
            inside || parent
        })
    }

    /// Records the removal of the entry at `path` (a path in the tree as it
    /// was just before).
    fn record(&mut self, path: &FieldPath) {
        let original = self.original(path);
        if let Some((PathSeg::Index(index), parent)) = path.segments().split_last() {
            self.removed_items
                .push((FieldPath::from(parent.to_vec()), *index));
        }
        self.removed.push(original);
    }
}

/// Reads a typed value from `node`, going on after type errors by removing
/// the offending entries (see the module documentation).
pub(crate) fn from_node_recovering<T: DeserializeOwned>(node: &Node) -> Recovered<T> {
    let mut pruned: Option<Node> = None;
    let mut pruning = Pruning::default();
    let mut diagnostics = Diagnostics::default();
    for _ in 0..MAX_ROUNDS {
        let current = pruned.as_ref().unwrap_or(node);
        let (result, collected) = read_once::<T>(current);
        for (path, diagnostic) in collected {
            diagnostics.push(diagnostic.with_path(pruning.original(&path).to_string()));
        }
        let fatal = match result {
            Ok(value) => {
                return Recovered {
                    value: Some(value),
                    diagnostics: diagnostics.into_sorted(),
                    pruned,
                    pruning,
                };
            }
            Err(fatal) => fatal,
        };
        let path = fatal.path.filter(|path| !path.is_empty());
        let Some(path) = path else {
            diagnostics.push(fatal.diagnostic);
            return Recovered {
                value: None,
                diagnostics: diagnostics.into_sorted(),
                pruned,
                pruning,
            };
        };
        let original = pruning.original(&path);
        // `name: [x]` removed makes its map lack `name`: that is the same
        // error again, not a new one.
        let consequence = fatal
            .missing_field
            .is_some_and(|field| pruning.removed.contains(&original.child(field)));
        if !consequence {
            diagnostics.push(fatal.diagnostic.with_path(original.to_string()));
        }
        let tree = pruned.get_or_insert_with(|| node.clone());
        if !remove(tree, &path) {
            break;
        }
        pruning.record(&path);
    }
    diagnostics.push(
        Diagnostic::warning(
            "too-many-errors",
            format!("stopped reading this document after {MAX_ROUNDS} type errors"),
        )
        .with_span(node.span)
        .with_hint("fix the errors above and validate again"),
    );
    Recovered {
        value: None,
        diagnostics: diagnostics.into_sorted(),
        pruned,
        pruning,
    }
}

/// What makes two diagnostics the same: code, span (offset, length) and
/// message.
type Identity = (&'static str, Option<(usize, usize)>, String);

/// Diagnostics without repeats: every round reports the unknown fields
/// again.
#[derive(Default)]
struct Diagnostics {
    seen: HashSet<Identity>,
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    fn push(&mut self, diagnostic: Diagnostic) {
        let span = diagnostic.span().map(|span| (span.offset, span.len));
        let key = (diagnostic.code(), span, diagnostic.message().to_owned());
        if self.seen.insert(key) {
            self.list.push(diagnostic);
        }
    }

    fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.list
            .sort_by_key(|d| d.span().map_or(usize::MAX, |s| s.offset));
        self.list
    }
}

/// Removes the map entry or sequence item at `path`; `false` when there is
/// none.
fn remove(root: &mut Node, path: &FieldPath) -> bool {
    let Some((last, parent_path)) = path.segments().split_last() else {
        return false;
    };
    let Some(parent) = get_mut(root, parent_path) else {
        return false;
    };
    match (last, &mut parent.value) {
        (PathSeg::Key(key), NodeValue::Map(entries)) => {
            let before = entries.len();
            entries.retain(|(entry_key, _)| entry_key.key_string() != *key);
            entries.len() < before
        }
        (PathSeg::Index(index), NodeValue::Seq(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        _ => false,
    }
}

fn get_mut<'n>(root: &'n mut Node, path: &[PathSeg]) -> Option<&'n mut Node> {
    let mut node = root;
    for segment in path {
        node = match (segment, &mut node.value) {
            (PathSeg::Key(key), NodeValue::Map(entries)) => entries
                .iter_mut()
                .find(|(entry_key, _)| entry_key.key_string() == *key)
                .map(|(_, value)| value)?,
            (PathSeg::Index(index), NodeValue::Seq(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_after_a_removed_item_map_back_to_the_file() {
        let mut pruning = Pruning::default();
        let steps = FieldPath::new().child("spec").child("steps");
        // steps[1] removed, then (in the pruned tree) steps[1] again, which
        // was steps[2] in the file.
        pruning.record(&steps.child(1));
        pruning.record(&steps.child(1));
        assert_eq!(pruning.removed[1], steps.child(2));
        assert_eq!(pruning.original(&steps.child(0)), steps.child(0));
        assert_eq!(
            pruning.original(&steps.child(1).child("name")),
            steps.child(3).child("name")
        );
        let other = FieldPath::new().child("spec").child("after").child(1);
        assert_eq!(pruning.original(&other), other);
        // Problems of a removed entry, or of the list that lost an item.
        assert!(pruning.explains(&steps.child(2).child("shell"), false));
        assert!(pruning.explains(&steps, false));
        assert!(!pruning.explains(&steps.child(0), true));
        // A map that lost an entry: its warnings only.
        pruning.record(&steps.child(0).child("shell"));
        assert!(pruning.explains(&steps.child(0), true));
        assert!(!pruning.explains(&steps.child(0), false));
        assert!(!pruning.explains(&steps.child(0).child("name"), false));
    }
}
