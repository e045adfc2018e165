//! Diagnostics: the one error type every user-facing problem in a workflow
//! file is reported with.
//!
//! A [`Diagnostic`] carries where the problem is (file, [`Span`], field path),
//! what it is (a short kebab-case code and a message) and what to do about it
//! (a hint). The YAML loader, the model, the validator and the expression
//! checker all produce them, so that the CLI prints one format
//! (`FILE:LINE:COL: error: message` plus a snippet, see [`Diagnostic::render`])
//! and `-o json` emits one schema (see the `Serialize` impl).

use std::fmt::{self, Write as _};

use serde::ser::SerializeMap;

/// A position in a source text.
///
/// Both numbers are 1-based; the column counts characters (not bytes) so a
/// user's editor shows the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number in characters, starting at 1.
    pub column: u32,
}

/// A range of a source text: human positions plus the byte range.
///
/// `offset` and `len` are in bytes of the source string, so
/// `&source[span.offset..span.offset + span.len]` is the spanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// First character of the range.
    pub start: Location,
    /// Position just after the last character of the range.
    pub end: Location,
    /// Byte offset of `start` in the source.
    pub offset: usize,
    /// Length of the range in bytes.
    pub len: usize,
}

impl Span {
    /// The smallest span covering both `self` and `other`.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        let (first, _) = if self.offset <= other.offset {
            (self, other)
        } else {
            (other, self)
        };
        let self_end = self.offset + self.len;
        let other_end = other.offset + other.len;
        let (end, end_offset) = if self_end >= other_end {
            (self.end, self_end)
        } else {
            (other.end, other_end)
        };
        Span {
            start: first.start,
            end,
            offset: first.offset,
            len: end_offset - first.offset,
        }
    }

    /// The spanned text of `source`, if the span lies inside it.
    #[must_use]
    pub fn text<'s>(&self, source: &'s str) -> Option<&'s str> {
        source.get(self.offset..self.offset.checked_add(self.len)?)
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// The document is invalid.
    Error,
    /// The document is valid but probably not what the author meant.
    Warning,
}

impl Severity {
    /// The lowercase word used in text and JSON output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a workflow file, with where it is and how to fix it.
///
/// Build with [`Diagnostic::error`] or [`Diagnostic::warning`] and the
/// `with_*` methods:
///
/// ```
/// use testkube_core::diagnostic::Diagnostic;
/// let d = Diagnostic::error("unknown-field", "unknown field `timout` in step")
///     .with_path("spec.steps[0]")
///     .with_hint("did you mean `timeout`?")
///     .with_file("wf.yaml");
/// assert_eq!(d.to_string(), "wf.yaml: error: unknown field `timout` in step");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostic(Box<Inner>);

/// Boxed so that `Result<T, Diagnostic>` stays one pointer wide.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    code: &'static str,
    message: String,
    severity: Severity,
    span: Option<Span>,
    path: Option<String>,
    hint: Option<String>,
    file: Option<String>,
}

impl Diagnostic {
    /// An error with a short kebab-case `code` (e.g. `"unknown-field"`).
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message.into())
    }

    /// A warning with a short kebab-case `code`.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message.into())
    }

    fn new(severity: Severity, code: &'static str, message: String) -> Self {
        Diagnostic(Box::new(Inner {
            code,
            message,
            severity,
            span: None,
            path: None,
            hint: None,
            file: None,
        }))
    }

    /// Sets where in the source the problem is.
    #[must_use]
    pub fn with_span(mut self, span: Span) -> Self {
        self.0.span = Some(span);
        self
    }

    /// Sets the field path, e.g. `spec.steps[0].timeout`.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.0.path = Some(path.into());
        self
    }

    /// Sets a hint telling the user how to fix the problem.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// Sets the file name shown in front of the position.
    #[must_use]
    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.0.file = Some(file.into());
        self
    }

    /// The short kebab-case identifier of the kind of problem.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The one-line description of the problem.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// How to fix it, when known.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        self.0.hint.as_deref()
    }

    /// Where in the source the problem is, when known.
    #[must_use]
    pub fn span(&self) -> Option<Span> {
        self.0.span
    }

    /// The field path, when known.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        self.0.path.as_deref()
    }

    /// The file name, when known.
    #[must_use]
    pub fn file(&self) -> Option<&str> {
        self.0.file.as_deref()
    }

    /// Error or warning.
    #[must_use]
    pub fn severity(&self) -> Severity {
        self.0.severity
    }

    /// Multi-line human text: the [`Display`](fmt::Display) line, then the
    /// source snippet with carets under the span (when `source` is given and
    /// the diagnostic has a span), the field path and the hint.
    ///
    /// ```text
    /// wf.yaml:12:5: error: unknown field `timout` in step
    ///    |
    /// 12 |     timout: 5m
    ///    |     ^^^^^^
    ///    = field: spec.steps[0]
    ///    = help: did you mean `timeout`?
    /// ```
    #[must_use]
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.to_string();
        let snippet = match (source, self.0.span) {
            (Some(source), Some(span)) => snippet_lines(source, span),
            _ => None,
        };
        let gutter = snippet
            .as_ref()
            .map_or(2, |s| s.line_number.to_string().len());
        let pad = " ".repeat(gutter);
        // Writing to a String cannot fail.
        if let Some(s) = &snippet {
            let _ = write!(
                out,
                "\n{pad} |\n{} | {}\n{pad} | {}{}",
                s.line_number,
                s.text,
                " ".repeat(s.caret_start),
                "^".repeat(s.caret_len)
            );
        }
        if let Some(path) = &self.0.path {
            let _ = write!(out, "\n{pad} = field: {path}");
        }
        if let Some(hint) = &self.0.hint {
            let _ = write!(out, "\n{pad} = help: {hint}");
        }
        out
    }
}

/// The source line a span starts on, ready to print with carets.
struct Snippet {
    line_number: u32,
    /// The line with tabs expanded, so carets line up.
    text: String,
    caret_start: usize,
    caret_len: usize,
}

const TAB_WIDTH: usize = 4;

fn snippet_lines(source: &str, span: Span) -> Option<Snippet> {
    let start = span.offset.min(source.len());
    if !source.is_char_boundary(start) {
        return None;
    }
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[start..]
        .find('\n')
        .map_or(source.len(), |i| start + i);
    let line = source[line_start..line_end].trim_end_matches('\r');
    // A span can start on the line's `\r` or `\n`: then it points past the text.
    let text_end = (line_start + line.len()).max(start);
    let span_end = span.offset.saturating_add(span.len).clamp(start, text_end);
    let mut text = String::with_capacity(line.len());
    let mut caret_start = 0;
    let mut caret_end = None;
    for (i, c) in line.char_indices() {
        let at = line_start + i;
        if at == start {
            caret_start = text.chars().count();
        }
        if at == span_end {
            caret_end = Some(text.chars().count());
        }
        if c == '\t' {
            text.push_str(&" ".repeat(TAB_WIDTH));
        } else {
            text.push(c);
        }
    }
    let width = text.chars().count();
    if start >= line_start + line.len() {
        caret_start = width;
    }
    let caret_end = caret_end.unwrap_or(width);
    let mut snippet = Snippet {
        line_number: span.start.line,
        text,
        caret_start,
        caret_len: caret_end.saturating_sub(caret_start).max(1),
    };
    if width > MAX_SNIPPET_WIDTH {
        snippet.window(width);
    }
    Some(snippet)
}

/// Lines longer than this (minified JSON, long scripts) are cut around the
/// span.
const MAX_SNIPPET_WIDTH: usize = 120;

impl Snippet {
    /// Cuts the line to a window around the carets, marking cuts with `…`.
    fn window(&mut self, width: usize) {
        let first = self.caret_start.saturating_sub(MAX_SNIPPET_WIDTH / 3);
        let last = (first + MAX_SNIPPET_WIDTH).min(width);
        let mut text: String = self.text.chars().skip(first).take(last - first).collect();
        let mut caret_start = self.caret_start - first;
        if first > 0 {
            text.insert(0, '…');
            caret_start += 1;
        }
        if last < width {
            text.push('…');
        }
        let room = text.chars().count().saturating_sub(caret_start).max(1);
        self.text = text;
        self.caret_start = caret_start;
        self.caret_len = self.caret_len.min(room);
    }
}

impl fmt::Display for Diagnostic {
    /// One line: `FILE:LINE:COL: error: message` (parts that are unknown are
    /// left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.file, self.0.span) {
            (Some(file), Some(span)) => {
                write!(f, "{file}:{}:{}: ", span.start.line, span.start.column)?;
            }
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(span)) => write!(f, "{}:{}: ", span.start.line, span.start.column)?,
            (None, None) => {}
        }
        write!(f, "{}: {}", self.0.severity, self.0.message)
    }
}

impl std::error::Error for Diagnostic {}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostic")
            .field("code", &self.0.code)
            .field("message", &self.0.message)
            .field("severity", &self.0.severity)
            .field("span", &self.0.span)
            .field("path", &self.0.path)
            .field("hint", &self.0.hint)
            .field("file", &self.0.file)
            .finish()
    }
}

impl serde::Serialize for Diagnostic {
    /// `{"file","line","column","endLine","endColumn","severity","code",
    /// "message","path","hint"}`, with unknown parts left out.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(file) = &self.0.file {
            map.serialize_entry("file", file)?;
        }
        if let Some(span) = self.0.span {
            map.serialize_entry("line", &span.start.line)?;
            map.serialize_entry("column", &span.start.column)?;
            map.serialize_entry("endLine", &span.end.line)?;
            map.serialize_entry("endColumn", &span.end.column)?;
        }
        map.serialize_entry("severity", self.0.severity.as_str())?;
        map.serialize_entry("code", self.0.code)?;
        map.serialize_entry("message", &self.0.message)?;
        if let Some(path) = &self.0.path {
            map.serialize_entry("path", path)?;
        }
        if let Some(hint) = &self.0.hint {
            map.serialize_entry("hint", hint)?;
        }
        map.end()
    }
}

/// The candidate `name` was most likely meant to be, if any is close enough.
///
/// A case-insensitive exact match wins; otherwise the candidate with the best
/// normalized Damerau-Levenshtein similarity, accepted when the similarity is
/// at least 0.7 or the edit distance is small for the name's length (one edit
/// for names up to three characters, two edits for longer ones).
///
/// ```
/// use testkube_core::diagnostic::did_you_mean;
/// assert_eq!(did_you_mean("timout", ["timeout", "name"]), Some("timeout"));
/// assert_eq!(did_you_mean("xyz", ["timeout", "name"]), None);
/// ```
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lowered = name.to_lowercase();
    let name_len = lowered.chars().count();
    let mut best: Option<(&'a str, f64)> = None;
    for candidate in candidates {
        let candidate_lowered = candidate.to_lowercase();
        if candidate_lowered == lowered {
            return Some(candidate);
        }
        let distance = strsim::damerau_levenshtein(&lowered, &candidate_lowered);
        let similarity = strsim::normalized_damerau_levenshtein(&lowered, &candidate_lowered);
        let max_edits = if name_len <= 3 { 1 } else { 2 };
        let close = similarity >= 0.7 || distance <= max_edits;
        if close && best.is_none_or(|(_, s)| similarity > s) {
            best = Some((candidate, similarity));
        }
    }
    best.map(|(candidate, _)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(line: u32, column: u32, offset: usize, len: usize) -> Span {
        Span {
            start: Location { line, column },
            end: Location {
                line,
                column: column + len as u32,
            },
            offset,
            len,
        }
    }

    #[test]
    fn display_is_one_line_with_position() {
        let d = Diagnostic::error("unknown-field", "unknown field `timout`")
            .with_file("wf.yaml")
            .with_span(span(3, 5, 20, 6));
        assert_eq!(d.to_string(), "wf.yaml:3:5: error: unknown field `timout`");
        let w = Diagnostic::warning("deprecated", "old");
        assert_eq!(w.to_string(), "warning: old");
    }

    #[test]
    fn render_shows_snippet_with_carets_path_and_hint() {
        let source = "spec:\n  steps:\n  - name: a\n    timout: 5m\n";
        let offset = source.find("timout").unwrap();
        let d = Diagnostic::error("unknown-field", "unknown field `timout` in step")
            .with_file("wf.yaml")
            .with_span(span(4, 5, offset, 6))
            .with_path("spec.steps[0]")
            .with_hint("did you mean `timeout`?");
        assert_eq!(
            d.render(Some(source)),
            "wf.yaml:4:5: error: unknown field `timout` in step\n  |\n4 |     timout: 5m\n  |     ^^^^^^\n  = field: spec.steps[0]\n  = help: did you mean `timeout`?"
        );
    }

    #[test]
    fn render_expands_tabs_and_counts_unicode_chars() {
        let source = "a:\t\"é\" bad\n";
        let offset = source.find("bad").unwrap();
        let d = Diagnostic::error("x", "m").with_span(span(1, 8, offset, 3));
        let rendered = d.render(Some(source));
        assert!(
            rendered.ends_with("1 | a:    \"é\" bad\n  |           ^^^"),
            "{rendered}"
        );
    }

    #[test]
    fn render_cuts_long_lines_around_the_span() {
        let source = format!(
            "{{{}\"bad\": 1{}}}",
            "\"k\": 1, ".repeat(100),
            ", \"z\": 2".repeat(100)
        );
        let offset = source.find("\"bad\"").unwrap();
        let d = Diagnostic::error("x", "m").with_span(span(1, offset as u32 + 1, offset, 5));
        let rendered = d.render(Some(&source));
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines.len(), 4, "{rendered}");
        assert!(
            lines[2].starts_with("1 | …") && lines[2].ends_with('…'),
            "{rendered}"
        );
        assert!(lines[2].chars().count() < 130);
        let caret_col = lines[3].find('^').unwrap();
        assert_eq!(
            &lines[2][lines[2].char_indices().nth(caret_col).unwrap().0..][..5],
            "\"bad\""
        );
        assert!(lines[3].ends_with("^^^^^"));
    }

    #[test]
    fn render_points_past_the_text_for_a_span_on_a_line_break() {
        let source = "a: 1\r\nb: 2\r\n";
        let d = Diagnostic::error("x", "m").with_span(span(1, 5, 4, 2));
        assert!(d.render(Some(source)).ends_with("1 | a: 1\n  |     ^"));
    }

    #[test]
    fn render_survives_span_outside_source() {
        let d = Diagnostic::error("x", "m").with_span(span(9, 1, 1000, 5));
        let rendered = d.render(Some("short"));
        assert!(rendered.starts_with("9:1: error: m"));
    }

    #[test]
    fn json_omits_unknown_parts() {
        let d = Diagnostic::error("yaml-syntax", "bad").with_file("a.yaml");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"file":"a.yaml","severity":"error","code":"yaml-syntax","message":"bad"}"#
        );
        let d = d.with_span(span(2, 3, 4, 1)).with_hint("h").with_path("p");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"file":"a.yaml","line":2,"column":3,"endLine":2,"endColumn":4,
                "severity":"error","code":"yaml-syntax","message":"bad","path":"p","hint":"h"})
        );
    }

    #[test]
    fn did_you_mean_prefers_exact_case_insensitive_then_closest() {
        let fields = ["timeout", "name", "retry", "container"];
        assert_eq!(did_you_mean("Name", fields), Some("name"));
        assert_eq!(did_you_mean("timout", fields), Some("timeout"));
        assert_eq!(did_you_mean("contianer", fields), Some("container"));
        assert_eq!(did_you_mean("nmae", fields), Some("name"));
        assert_eq!(did_you_mean("shell", fields), None);
        assert_eq!(did_you_mean("ab", ["xy"]), None);
    }

    #[test]
    fn span_to_covers_both() {
        let a = span(1, 1, 0, 2);
        let b = span(1, 5, 4, 3);
        let c = a.to(b);
        assert_eq!(
            (c.offset, c.len, c.start.column, c.end.column),
            (0, 7, 1, 8)
        );
        assert_eq!(b.to(a), c);
    }
}
