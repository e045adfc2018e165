//! Problems found while resolving or planning, kept with their field path
//! until they become [`Diagnostic`]s (with a source span when the caller has
//! the loaded YAML tree).

use crate::diagnostic::{Diagnostic, Severity};
use crate::yaml::{FieldPath, Node};

/// One problem, addressed by field path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub(crate) severity: Severity,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) path: FieldPath,
    pub(crate) hint: Option<String>,
    /// Whether the problem is in the file (and gets its span); `false` for
    /// problems with the caller's input, such as an unknown `--config` key.
    pub(crate) in_file: bool,
}

impl Problem {
    pub(crate) fn error(code: &'static str, message: impl Into<String>, path: &FieldPath) -> Self {
        Problem {
            severity: Severity::Error,
            code,
            message: message.into(),
            path: path.clone(),
            hint: None,
            in_file: true,
        }
    }

    #[must_use]
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Marks the problem as one with the caller's input, not the file.
    #[must_use]
    pub(crate) fn not_in_file(mut self) -> Self {
        self.in_file = false;
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        matches!(self.severity, Severity::Error)
    }

    /// The diagnostic, pointing into `source` when the path exists there
    /// (the value's span, or the nearest ancestor's).
    pub(crate) fn into_diagnostic(self, source: Option<&Node>) -> Diagnostic {
        let mut diagnostic = match self.severity {
            Severity::Warning => Diagnostic::warning(self.code, self.message),
            _ => Diagnostic::error(self.code, self.message),
        };
        if !self.path.is_empty() {
            diagnostic = diagnostic.with_path(self.path.to_string());
        }
        if let Some(hint) = self.hint {
            diagnostic = diagnostic.with_hint(hint);
        }
        let source = source.filter(|_| self.in_file);
        if let Some(span) = source.and_then(|root| nearest_span(root, &self.path)) {
            diagnostic = diagnostic.with_span(span);
        }
        diagnostic
    }
}

/// The span of the node at `path`, or of its closest ancestor that exists.
fn nearest_span(root: &Node, path: &FieldPath) -> Option<crate::diagnostic::Span> {
    let segments = path.segments();
    (0..=segments.len())
        .rev()
        .find_map(|len| root.get(&segments[..len]))
        .filter(|node| !std::ptr::eq(*node, root) || segments.is_empty())
        .map(|node| node.span)
}

/// Converts problems to diagnostics, in order.
pub(crate) fn to_diagnostics(problems: Vec<Problem>, source: Option<&Node>) -> Vec<Diagnostic> {
    problems
        .into_iter()
        .map(|problem| problem.into_diagnostic(source))
        .collect()
}
