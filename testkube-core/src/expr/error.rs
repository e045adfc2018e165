//! The one error type of the expression language.
//!
//! Every failure (a syntax error, a call to an unknown function, a division by
//! zero, an undeclared `config.x`) is an [`ExprError`]: a kind a program can
//! match on, a message a user reads, the byte [`Span`] of the offending part of
//! the source and, where we know one, a hint saying what to do.

use std::fmt;
use std::ops::Range;

/// A byte range in the source string an expression (or template) was parsed
/// from: `&source[span.start..span.end]` is the spanned text.
///
/// For a [`Template`](super::Template) the offsets are into the whole template
/// string, not into the `{{ }}` part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset just after the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    #[must_use]
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// The span as a range, for slicing the source.
    #[must_use]
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }

    /// The smallest span covering both.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// The same span moved `delta` bytes to the right.
    #[must_use]
    pub fn shifted(self, delta: usize) -> Span {
        Span::new(
            self.start.saturating_add(delta),
            self.end.saturating_add(delta),
        )
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// What went wrong, for programs that react to some errors differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExprErrorKind {
    /// The source is not a valid expression or template.
    Syntax,
    /// The expression nests deeper than the language allows.
    TooDeep,
    /// A call to a function the language does not have.
    UnknownFunction,
    /// A function called with the wrong number of arguments.
    Arity,
    /// A value of the wrong type for an operator or function.
    Type,
    /// Division or remainder by zero.
    DivisionByZero,
    /// A number outside the range of its type, or not finite.
    Overflow,
    /// A list or string index out of bounds.
    Index,
    /// A function failed on its (well-typed) input, e.g. invalid JSON.
    Function,
    /// A reference to a `config.X` parameter the workflow does not declare.
    UndeclaredConfig,
    /// A variable that is neither one of [`VARIABLES`](super::VARIABLES)
    /// nor a step id of the workflow.
    UnknownVariable,
    /// A final value was required but variables or run-time calls remain.
    Unresolved,
    /// An evaluation limit (work, size) was exceeded.
    LimitExceeded,
    /// A run-time hook of the context (file, glob, secret) failed.
    Runtime,
}

/// An error of the expression language: what, where (byte span) and a hint.
///
/// `Display` prints the message only; use [`ExprError::span`] and
/// [`ExprError::hint`] to show the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    kind: ExprErrorKind,
    message: String,
    span: Span,
    hint: Option<String>,
}

impl ExprError {
    /// An error of `kind` at `span`.
    pub fn new(kind: ExprErrorKind, span: Span, message: impl Into<String>) -> Self {
        ExprError {
            kind,
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// The same error with a hint saying what to do.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same error with its span moved `delta` bytes to the right, for an
    /// expression embedded at offset `delta` of a larger string.
    #[must_use]
    pub fn shifted(mut self, delta: usize) -> Self {
        self.span = self.span.shifted(delta);
        self
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ExprErrorKind {
        self.kind
    }

    /// The message, without span or hint.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the source the problem is.
    #[must_use]
    pub fn span(&self) -> Span {
        self.span
    }

    /// What to do about it, when known.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Errors that come from limits rather than from values: they are never
    /// deferred into a branch that might not be taken.
    pub(crate) fn is_limit(&self) -> bool {
        matches!(
            self.kind,
            ExprErrorKind::TooDeep | ExprErrorKind::LimitExceeded
        )
    }

    pub(crate) fn syntax(span: Span, message: impl Into<String>) -> Self {
        ExprError::new(ExprErrorKind::Syntax, span, message)
    }
}

/// The closest of `candidates` to `name`, for "did you mean" hints.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
