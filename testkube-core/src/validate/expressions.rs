//! Expression checks of a workflow or template: the syntax of every
//! whole-expression field (`condition`, `retry.until`, `count`, `maxCount`,
//! `logs`, matrix/shards expressions) and of every `{{ }}` template in a
//! string, unknown functions and argument counts, and references to
//! `config.X` parameters the workflow does not declare.
//!
//! Errors point inside the YAML value when the value is written on one line
//! without escapes (the usual case); otherwise at the whole value.

use std::collections::HashSet;

use super::report::Report;
use super::workflow::{ConfigScope, WorkflowFacts};
use crate::diagnostic::{Diagnostic, Location, Span};
use crate::expr::{Checker, Expr, ExprError, ExprErrorKind, Template};
use crate::yaml::{FieldPath, Node, NodeValue, ScalarStyle};

/// Runs the expression checks of a workflow or template whose spec checks
/// produced `facts` (the expression fields and the `config` scopes).
pub(crate) fn check_expressions(report: &mut Report<'_>, facts: &WorkflowFacts) {
    let checkers: Vec<Checker> = facts.scopes.iter().map(checker_for).collect();
    let fallback = Checker::new();
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
    for (path, text) in template_strings(spec, spec_path, facts) {
        let scope = innermost_scope(&facts.scopes, &path);
        let checker = scope.and_then(|i| checkers.get(i)).unwrap_or(&fallback);
        let errors = check_template(&text, checker);
        report_errors(report, &path, &errors);
    }
}

fn checker_for(scope: &ConfigScope) -> Checker {
    if scope.complete {
        Checker::new().with_config(scope.names.iter().cloned())
    } else {
        Checker::new()
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
            _ => "expression-syntax",
        };
        let mut diagnostic = Diagnostic::error(code, error.message().to_owned());
        if let Some(hint) = error.hint() {
            diagnostic = diagnostic.with_hint(hint.to_owned());
        }
        match report
            .node(path)
            .and_then(|node| inner_span(node, error.span()))
        {
            Some(span) => report.at_span(path, diagnostic, span),
            None => report.at(path, diagnostic),
        }
    }
}

/// The index of the scope whose start is the longest prefix of `path`.
fn innermost_scope(scopes: &[ConfigScope], path: &FieldPath) -> Option<usize> {
    scopes
        .iter()
        .enumerate()
        .filter(|(_, scope)| path.segments().starts_with(scope.path.segments()))
        .max_by_key(|(_, scope)| scope.path.len())
        .map(|(index, _)| index)
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
    let mut pending = vec![(node, path)];
    while let Some((node, path)) = pending.pop() {
        match &node.value {
            NodeValue::Scalar { text, .. } if text.contains("{{") => {
                if !whole.contains(&path) {
                    found.push((path, text.clone()));
                }
            }
            NodeValue::Seq(items) => {
                for (index, item) in items.iter().enumerate().rev() {
                    pending.push((item, path.child(index)));
                }
            }
            NodeValue::Map(entries) => {
                for (key, value) in entries.iter().rev() {
                    if let Some(key) = key.as_str() {
                        pending.push((value, path.child(key)));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// The source span of `range` (byte offsets into the scalar's text), when
/// the scalar is written on one line exactly as its text (plain, or quoted
/// without escapes).
fn inner_span(node: &Node, range: crate::expr::Span) -> Option<Span> {
    let NodeValue::Scalar { text, style } = &node.value else {
        return None;
    };
    let quote = match style {
        ScalarStyle::Plain => 0,
        ScalarStyle::Quoted => 1,
        ScalarStyle::Block => return None,
    };
    let span = node.span;
    if span.start.line != span.end.line || span.len != text.len() + 2 * quote {
        return None;
    }
    let start = range.start.min(text.len());
    let end = range.end.clamp(start, text.len());
    let before = text.get(..start)?.chars().count();
    let inside = text.get(start..end)?.chars().count().max(1);
    let column = span.start.column + u32::try_from(before + quote).ok()?;
    Some(Span {
        start: Location {
            line: span.start.line,
            column,
        },
        end: Location {
            line: span.start.line,
            column: column + u32::try_from(inside).ok()?,
        },
        offset: span.offset + quote + start,
        len: (end - start).max(1).min(text.len() + quote - start),
    })
}
