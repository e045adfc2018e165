//! Templates: strings with `{{ expression }}` parts, as in Testkube.
//!
//! Text outside `{{ }}` is literal. Each expression's value is turned into
//! text (lists join with `,`, objects print as JSON, `null` is empty). A
//! literal `{{` is written `{{"{{"}}`. Evaluating a template evaluates each
//! part; parts that stay unknown are kept, and [`Template`]'s `Display`
//! writes them back with `{{ }}`, escaping literal braces as needed.

use std::fmt;

use super::Expr;
use super::ast::Node;
use super::check::Checker;
use super::context::Context;
use super::error::{ExprError, ExprErrorKind, Span};
use super::eval::Evaluator;
use super::parser::{check_depth, parse_prefix};
use super::value::to_text;

/// A string with `{{ expression }}` parts.
///
/// ```
/// use testkube_core::expr::{MapContext, Template};
/// use serde_json::json;
/// let t = Template::parse("node:{{ config.version }}-{{ env.ARCH }}").unwrap();
/// let ctx = MapContext::new().with("config", json!({"version": 20}));
/// let partial = t.evaluate(&ctx).unwrap();
/// assert_eq!(partial.to_string(), "node:20-{{ env.ARCH }}");
/// let done = partial.evaluate(&MapContext::new().with("env.ARCH", json!("arm64"))).unwrap();
/// assert_eq!(done.as_string().as_deref(), Some("node:20-arm64"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

impl Template {
    /// Parses a template. Errors (and the spans of the expressions) carry
    /// byte offsets into the whole `source`.
    pub fn parse(source: &str) -> Result<Template, ExprError> {
        let mut builder = Builder::default();
        let mut pos = 0;
        while let Some(found) = source[pos..].find("{{") {
            let open = pos + found;
            builder.text(&source[pos..open]);
            let (node, end) = parse_prefix(source, open + 2)?;
            if !source[end..].starts_with("}}") {
                return Err(if end >= source.len() {
                    ExprError::syntax(Span::new(open, open + 2), "`{{` is not closed")
                        .with_hint("add `}}` after the expression")
                } else {
                    ExprError::syntax(
                        Span::new(
                            end,
                            end + source[end..].chars().next().map_or(0, char::len_utf8),
                        ),
                        "expected `}}` to close the expression",
                    )
                });
            }
            if let Some(node) = node {
                builder.node(node);
            }
            pos = end + 2;
        }
        builder.text(&source[pos..]);
        Ok(builder.finish())
    }

    /// A template of plain text (no expression), e.g. a resolved value.
    #[must_use]
    pub fn literal(text: impl Into<String>) -> Template {
        let mut builder = Builder::default();
        builder.text(&text.into());
        builder.finish()
    }

    /// Evaluates every expression part as far as `ctx` allows.
    pub fn evaluate(&self, ctx: &dyn Context) -> Result<Template, ExprError> {
        let mut builder = Builder::default();
        for part in &self.parts {
            match part {
                Part::Text(text) => builder.text(text),
                Part::Expr(expr) => {
                    let node = Evaluator::new(ctx).eval(&expr.node)?;
                    builder.node(check_depth(node)?);
                }
            }
        }
        Ok(builder.finish())
    }

    /// The text when nothing is left to evaluate.
    #[must_use]
    pub fn as_string(&self) -> Option<String> {
        match self.parts.as_slice() {
            [] => Some(String::new()),
            [Part::Text(text)] => Some(text.clone()),
            _ => None,
        }
    }

    /// Whether the template is plain text (fully resolved).
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.as_string().is_some()
    }

    /// The expression parts that remain, in order; their spans locate them in
    /// the source (for a parsed, not yet evaluated template).
    pub fn expressions(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Text(_) => None,
        })
    }

    /// The expression when the template is one `{{ expr }}` and nothing else
    /// but whitespace, whose value should keep its type (a list stays a list),
    /// as Testkube does for such fields.
    #[must_use]
    pub fn sole_expression(&self) -> Option<&Expr> {
        let mut found = None;
        for part in &self.parts {
            match part {
                Part::Text(text) if text.trim().is_empty() => {}
                Part::Expr(e) if found.is_none() => found = Some(e),
                _ => return None,
            }
        }
        found
    }

    /// Evaluates and requires a complete result.
    ///
    /// # Errors
    /// An [`ExprErrorKind::Unresolved`] error naming what is still unknown.
    pub fn render(&self, ctx: &dyn Context) -> Result<String, ExprError> {
        let done = self.evaluate(ctx)?;
        if let Some(text) = done.as_string() {
            return Ok(text);
        }
        let span = done
            .expressions()
            .map(Expr::span)
            .reduce(Span::to)
            .unwrap_or_default();
        let names: Vec<String> = done.expressions().flat_map(Expr::unresolved).collect();
        Err(ExprError::new(
            ExprErrorKind::Unresolved,
            span,
            format!("the template needs {} that is not known", names.join(", ")),
        ))
    }

    /// Dotted variable names the remaining expressions refer to.
    #[must_use]
    pub fn variables(&self) -> Vec<String> {
        let mut names = Vec::new();
        for expr in self.expressions() {
            for name in expr.variables() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Static checks of every expression part.
    #[must_use]
    pub fn check(&self, checker: &Checker) -> Vec<ExprError> {
        self.expressions().flat_map(|e| e.check(checker)).collect()
    }
}

impl std::str::FromStr for Template {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

/// Collects parts, merging literal values into the surrounding text.
#[derive(Default)]
struct Builder {
    parts: Vec<Part>,
    text: String,
}

impl Builder {
    fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn node(&mut self, node: Node) {
        if let Some(value) = node.as_literal() {
            self.text.push_str(&to_text(value));
            return;
        }
        if !self.text.is_empty() {
            self.parts.push(Part::Text(std::mem::take(&mut self.text)));
        }
        self.parts.push(Part::Expr(Expr { node }));
    }

    fn finish(mut self) -> Template {
        if !self.text.is_empty() {
            self.parts.push(Part::Text(self.text));
        }
        Template { parts: self.parts }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Text(text) => {
                    let escaped = text.replace("{{", "{{\"{{\"}}");
                    // A `{` right before `{{ expr }}` would read as `{{{`.
                    let before_expr = matches!(self.parts.get(i + 1), Some(Part::Expr(_)));
                    match escaped.strip_suffix('{') {
                        Some(head) if before_expr => write!(f, "{head}{{{{\"{{\"}}}}")?,
                        _ => f.write_str(&escaped)?,
                    }
                }
                Part::Expr(expr) => {
                    f.write_str("{{ ")?;
                    write!(f, "{expr}")?;
                    f.write_str(" }}")?;
                }
            }
        }
        Ok(())
    }
}

/// Renders a template string with `ctx`, keeping what is not known yet.
///
/// ```
/// use testkube_core::expr::{MapContext, evaluate_template_str};
/// use serde_json::json;
/// let ctx = MapContext::new().with("index", json!(1));
/// let t = evaluate_template_str("worker {{ index + 1 }}", &ctx).unwrap();
/// assert_eq!(t.as_string().as_deref(), Some("worker 2"));
/// ```
pub fn evaluate_template_str(source: &str, ctx: &dyn Context) -> Result<Template, ExprError> {
    Template::parse(source)?.evaluate(ctx)
}
