//! Expression checks of a workflow or template: the syntax of every
//! whole-expression field (`condition`, `retry.until`, `count`, `maxCount`,
//! `logs`, matrix/shards expressions) and of every `{{ }}` template in a
//! string, unknown functions and argument counts, references to `config.X`
//! parameters the workflow does not declare, and variables that are neither
//! known ([`crate::expr::VARIABLES`]) nor a step id of the document.
//!
//! Errors point inside the YAML value when the value is written on one line
//! without escapes (the usual case); otherwise at the whole value.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::report::Report;
use crate::diagnostic::{Diagnostic, Location, Span};
use crate::expr::{Checker, Expr, ExprError, ExprErrorKind, Template};
use crate::yaml::{FieldPath, Node, NodeValue, PathSeg, ScalarStyle};

/// A whole-expression field (`condition`, `count`, a matrix expression...).
pub(crate) struct ExpressionSite {
    /// Where it is.
    pub(crate) path: FieldPath,
    /// The expression text.
    pub(crate) text: String,
    /// Index of the [`ConfigScope`] it is evaluated in.
    pub(crate) scope: usize,
}

/// The `config.*` names visible in a workflow or worker.
pub(crate) struct ConfigScope {
    /// Where the scope starts (`spec`, or a `parallel` block).
    pub(crate) path: FieldPath,
    /// Declared parameter names (the worker's plus its parents').
    pub(crate) names: Vec<String>,
    /// Whether references to undeclared names are errors: not in templates,
    /// nor when `use`d templates may declare more parameters.
    pub(crate) complete: bool,
}

/// What the workflow checks found besides diagnostics.
pub(crate) struct WorkflowFacts {
    pub(crate) expressions: Vec<ExpressionSite>,
    pub(crate) scopes: Vec<ConfigScope>,
    /// Every valid step id of the document (workers' too), explicit or
    /// derived from a step's name: each is a variable (whether that step
    /// passed).
    pub(crate) step_ids: BTreeSet<String>,
}

/// Runs the expression checks of a workflow or template whose spec checks
/// produced `facts` (the expression fields and the `config` scopes).
pub(crate) fn check_expressions(report: &mut Report<'_>, facts: &WorkflowFacts) {
    let checkers: Vec<Checker> = facts
        .scopes
        .iter()
        .map(|scope| checker_for(scope, &facts.step_ids))
        .collect();
    let fallback = Checker::new().with_variables(facts.step_ids.iter().cloned());
    for site in &facts.expressions {
        let checker = checkers.get(site.scope).unwrap_or(&fallback);
        let errors = if site.text.contains("{{") {
            check_template(&site.text, checker)
        } else {
            match Expr::parse(&site.text) {
                Ok(expr) => expr.check(checker),
                Err(error) => vec![error],
            }
        };
        report_errors(report, &site.path, &errors);
    }
    let spec_path = FieldPath::new().child("spec");
    let Some(spec) = report.node(&spec_path) else {
        return;
    };
    let scope_starts: HashMap<&[PathSeg], usize> = facts
        .scopes
        .iter()
        .enumerate()
        .map(|(index, scope)| (scope.path.segments(), index))
        .collect();
    for (path, text) in template_strings(spec, spec_path, facts) {
        let scope = innermost_scope(&scope_starts, &path);
        let checker = scope.and_then(|i| checkers.get(i)).unwrap_or(&fallback);
        let errors = check_template(&text, checker);
        report_errors(report, &path, &errors);
    }
}

fn checker_for(scope: &ConfigScope, step_ids: &BTreeSet<String>) -> Checker {
    let checker = Checker::new().with_variables(step_ids.iter().cloned());
    if scope.complete {
        checker.with_config(scope.names.iter().cloned())
    } else {
        checker
    }
}

fn check_template(text: &str, checker: &Checker) -> Vec<ExprError> {
    match Template::parse(text) {
        Ok(template) => template
            .expressions()
            .flat_map(|expr| expr.check(checker))
            .collect(),
        Err(error) => vec![error],
    }
}

fn report_errors(report: &mut Report<'_>, path: &FieldPath, errors: &[ExprError]) {
    for error in errors {
        let code = match error.kind() {
            ExprErrorKind::UnknownFunction => "unknown-function",
            ExprErrorKind::Arity => "wrong-arity",
            ExprErrorKind::UndeclaredConfig => "undeclared-config",
            ExprErrorKind::UnknownVariable => "unknown-variable",
            _ => "expression-syntax",
        };
        let mut diagnostic = Diagnostic::error(code, error.message().to_owned());
        if let Some(hint) = error.hint() {
            diagnostic = diagnostic.with_hint(hint.to_owned());
        }
        let source = report.source();
        match report
            .node(path)
            .and_then(|node| inner_span(node, error.span(), source))
        {
            Some(span) => report.at_span(path, diagnostic, span),
            None => report.at(path, diagnostic),
        }
    }
}

/// The index of the scope whose start is the longest prefix of `path`.
fn innermost_scope(scopes: &HashMap<&[PathSeg], usize>, path: &FieldPath) -> Option<usize> {
    let segments = path.segments();
    (0..=segments.len())
        .rev()
        .find_map(|len| scopes.get(&segments[..len]).copied())
}

/// Every string scalar with `{{` below `node`, except the whole-expression
/// fields (checked as expressions), with its path.
fn template_strings(
    node: &Node,
    path: FieldPath,
    facts: &WorkflowFacts,
) -> Vec<(FieldPath, String)> {
    let whole: HashSet<&FieldPath> = facts.expressions.iter().map(|site| &site.path).collect();
    let mut found = Vec::new();
    let mut path = path;
    collect_template_strings(node, &mut path, &whole, &mut found);
    found
}

/// Depth-first, in document order; recursion is bounded by the loader's
/// nesting budget.
fn collect_template_strings(
    node: &Node,
    path: &mut FieldPath,
    whole: &HashSet<&FieldPath>,
    found: &mut Vec<(FieldPath, String)>,
) {
    match &node.value {
        NodeValue::Scalar { text, .. } if text.contains("{{") && !whole.contains(path) => {
            found.push((path.clone(), text.clone()));
        }
        NodeValue::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(index);
                collect_template_strings(item, path, whole, found);
                path.pop();
            }
        }
        NodeValue::Map(entries) => {
            for (key, value) in entries {
                if let Some(key) = key.as_str() {
                    path.push(key);
                    collect_template_strings(value, path, whole, found);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// The source span of `range` (byte offsets into the scalar's text): for a
/// scalar written on one line exactly as its text (plain, or quoted without
/// escapes), and, when the source is known, for a literal block (`|`).
/// `None` when the text does not map back to the source one to one.
fn inner_span(node: &Node, range: crate::expr::Span, source: Option<&str>) -> Option<Span> {
    let NodeValue::Scalar { text, style } = &node.value else {
        return None;
    };
    let start = range.start.min(text.len());
    let end = range.end.clamp(start, text.len());
    let span = node.span;
    let (line, line_text, column_base, offset_base, text_line_start) = match style {
        ScalarStyle::Plain | ScalarStyle::Quoted => {
            let quote = usize::from(*style == ScalarStyle::Quoted);
            if span.start.line != span.end.line || span.len != text.len() + 2 * quote {
                return None;
            }
            let column = span.start.column + u32::try_from(quote).ok()?;
            (
                span.start.line,
                text.as_str(),
                column,
                span.offset + quote,
                0,
            )
        }
        ScalarStyle::Block => block_line(node, text, start, source?)?,
    };
    // The part of the range on the error's line.
    let line_start_in_text = text_line_start;
    let from = start - line_start_in_text;
    let to = (end - line_start_in_text).min(line_text.len()).max(from);
    let before = line_text.get(..from)?.chars().count();
    let inside = line_text.get(from..to)?.chars().count().max(1);
    let offset = offset_base + from;
    if let Some(source) = source
        && source.get(offset..offset + (to - from)) != line_text.get(from..to)
    {
        return None;
    }
    let column = column_base + u32::try_from(before).ok()?;
    Some(Span {
        start: Location { line, column },
        end: Location {
            line,
            column: column + u32::try_from(inside).ok()?,
        },
        offset,
        len: to - from,
    })
}

/// For a literal block scalar: the source line holding text offset `at`,
/// as (line number, the text's line, its column, its byte offset in the
/// source, where that line starts in the text).
fn block_line<'t>(
    node: &Node,
    text: &'t str,
    at: usize,
    source: &str,
) -> Option<(u32, &'t str, u32, usize, usize)> {
    // Depending on the parser, a block's span starts at its `|` indicator or
    // at its first content line.
    let offset = node.span.offset;
    let after = source.get(offset..)?;
    let before = source.get(..offset)?;
    let (first_line_offset, first_line) = if after.starts_with('|') {
        (offset + after.find('\n')? + 1, node.span.start.line + 1)
    } else if before
        .trim_end()
        .trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit())
        .ends_with('|')
    {
        (
            before.rfind('\n').map_or(0, |i| i + 1),
            node.span.start.line,
        )
    } else {
        return None;
    };
    let text_line_start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let text_line_end = text[text_line_start..]
        .find('\n')
        .map_or(text.len(), |i| text_line_start + i);
    let text_line = &text[text_line_start..text_line_end];
    let line_index = text[..text_line_start].matches('\n').count();
    let mut line_offset = first_line_offset;
    for _ in 0..line_index {
        line_offset += source.get(line_offset..)?.find('\n')? + 1;
    }
    let source_line = source.get(line_offset..)?.lines().next()?;
    let indent = source_line.len().checked_sub(text_line.len())?;
    if !source_line.ends_with(text_line) || !source_line[..indent].chars().all(|c| c == ' ') {
        return None;
    }
    let line = first_line + u32::try_from(line_index).ok()?;
    let column = 1 + u32::try_from(indent).ok()?;
    Some((
        line,
        text_line,
        column,
        line_offset + indent,
        text_line_start,
    ))
}
