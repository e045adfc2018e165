//! Where a semantic check's diagnostic points: the collector every check
//! writes to, which looks up the span of a field path in the loaded tree.

use crate::diagnostic::{Diagnostic, Severity, Span};
use crate::yaml::{FieldPath, Node, NodeValue, Pruning};

/// Collects diagnostics for one document, attaching the path and the span
/// of the field each one is about.
pub(crate) struct Report<'a> {
    root: &'a Node,
    source: Option<&'a str>,
    /// When `root` is a tree pruned of type errors: how to show paths as
    /// they are in the file.
    pruning: Option<&'a Pruning>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Report<'a> {
    /// A report on the document `root`, loaded from `source` when known
    /// (the source lets positions inside multi-line values be computed).
    pub(crate) fn new(root: &'a Node, source: Option<&'a str>) -> Self {
        Report {
            root,
            source,
            pruning: None,
            diagnostics: Vec::new(),
        }
    }

    /// A report on a tree pruned of type errors (spans still point into
    /// the source); paths are shown as they are in the file.
    pub(crate) fn pruned(mut self, pruning: &'a Pruning) -> Self {
        self.pruning = Some(pruning);
        self
    }

    /// The text the document was loaded from, when known.
    pub(crate) fn source(&self) -> Option<&'a str> {
        self.source
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    /// The node written at `path`, if any.
    pub(crate) fn node(&self, path: &FieldPath) -> Option<&'a Node> {
        self.root.get(path.segments())
    }

    /// Reports a problem with the value at `path`.
    pub(crate) fn at(&mut self, path: &FieldPath, diagnostic: Diagnostic) {
        let span = self.value_span(path);
        self.push(path, diagnostic, span);
    }

    /// Reports a problem with the key of the field at `path` (a field that
    /// should not be there, or conflicts with another).
    pub(crate) fn at_key(&mut self, path: &FieldPath, diagnostic: Diagnostic) {
        let span = self
            .root
            .key_span(path.segments())
            .or_else(|| self.value_span(path));
        self.push(path, diagnostic, span);
    }

    /// Reports a problem at an exact span (e.g. inside an expression).
    pub(crate) fn at_span(&mut self, path: &FieldPath, diagnostic: Diagnostic, span: Span) {
        self.push(path, diagnostic, Some(span));
    }

    fn push(&mut self, path: &FieldPath, diagnostic: Diagnostic, span: Option<Span>) {
        let mut diagnostic = diagnostic;
        let mut shown = path.clone();
        if let Some(pruning) = self.pruning {
            shown = pruning.original(path);
            let warning = diagnostic.severity() == Severity::Warning;
            if pruning.explains(&shown, warning) {
                // Already said: the entry it is about had a type error.
                return;
            }
        }
        if !path.is_empty() {
            diagnostic = diagnostic.with_path(shown.to_string());
        }
        if let Some(span) = span {
            diagnostic = diagnostic.with_span(span);
        }
        self.diagnostics.push(diagnostic);
    }

    /// The span of the value at `path`. A field that is not written (a
    /// missing required field) points at the key of its nearest written
    /// ancestor, or at the document's first key.
    fn value_span(&self, path: &FieldPath) -> Option<Span> {
        if let Some(node) = self.root.get(path.segments()) {
            return Some(node.span);
        }
        let segments = path.segments();
        for len in (1..segments.len()).rev() {
            if self.root.get(&segments[..len]).is_some() {
                return self.root.key_span(&segments[..len]);
            }
        }
        match &self.root.value {
            NodeValue::Map(entries) => entries.first().map(|(key, _)| key.span),
            _ => Some(self.root.span),
        }
    }
}
