//! The TestWorkflow expression language, with partial evaluation at its core.
//!
//! Workflows compute values with expressions: whole-expression fields
//! (`condition: passed && config.enabled`) and `{{ }}` parts in strings
//! (`image: "node:{{ config.version }}"`). Values are JSON; the syntax,
//! operators and functions are those of Testkube (see `docs/expressions.md`).
//!
//! Why partial evaluation: a value is known at different times. `config.*`
//! is known when the workflow is resolved, `matrix.*` per worker, `env.*` and
//! `passed` only at run time. [`Expr::evaluate`] folds whatever the
//! [`Context`] knows and returns a smaller expression for the rest, which
//! prints back as source ([`Expr`]'s `Display`) to be finished in a later
//! stage. Evaluating in stages gives what evaluating once would.
//!
//! How the parts meet: [`Expr::parse`] (and [`Template::parse`]) build a tree
//! with byte spans; [`Expr::evaluate`] simplifies it against a [`Context`]
//! ([`MapContext`] for values in hand); [`Expr::check`] runs the static checks
//! of `validate` with a [`Checker`]; every failure is an [`ExprError`].
//!
//! ```
//! use testkube_core::expr::{Expr, MapContext};
//! use serde_json::json;
//! let e = Expr::parse("config.enabled && passed").unwrap();
//! let planned = e.evaluate(&MapContext::new().with("config", json!({"enabled": true}))).unwrap();
//! assert_eq!(planned.to_string(), "passed");
//! let run = planned.evaluate(&MapContext::new().with("passed", json!(false))).unwrap();
//! assert_eq!(run.value(), Some(&json!(false)));
//! ```

mod ast;
mod check;
mod context;
mod display;
mod error;
mod eval;
mod lexer;
mod parser;
mod stdlib;
mod template;
mod value;

use std::fmt;
use std::str::FromStr;

pub use serde_json::Value;

pub use check::{Checker, VARIABLES};
pub use context::{Context, EmptyContext, MapContext};
pub use error::{ExprError, ExprErrorKind, Span};
pub use template::{Template, evaluate_template_str};
pub use value::truthy;

use ast::{Kind, Node};
use eval::Evaluator;

/// A parsed (and possibly partially evaluated) expression.
///
/// Equality ignores spans: two expressions are equal when they print the same.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    node: Node,
}

impl Expr {
    /// Parses an expression.
    ///
    /// # Errors
    /// A [`ExprErrorKind::Syntax`] (or [`ExprErrorKind::TooDeep`]) error with
    /// the byte span of the problem.
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        parser::parse_expression(source).map(|node| Expr { node })
    }

    /// An expression that is just a value.
    #[must_use]
    pub fn literal(value: Value) -> Expr {
        Expr {
            node: Node::literal(value, Span::default()),
        }
    }

    /// Evaluates as far as `ctx` allows: known variables and constant parts
    /// are folded, unknown variables and run-time calls without a hook stay.
    ///
    /// # Errors
    /// Errors of operators and functions on known values (division by zero,
    /// a wrong type, an unknown function...), with the span of the culprit.
    pub fn evaluate(&self, ctx: &dyn Context) -> Result<Expr, ExprError> {
        let node = Evaluator::new(ctx).eval(&self.node)?;
        // `eval()` and `map()` can build a deeper tree than was parsed.
        parser::check_depth(node).map(|node| Expr { node })
    }

    /// Evaluates and requires a value.
    ///
    /// # Errors
    /// Evaluation errors, or [`ExprErrorKind::Unresolved`] naming the
    /// variables and run-time calls that are still unknown.
    pub fn resolve(&self, ctx: &dyn Context) -> Result<Value, ExprError> {
        let done = self.evaluate(ctx)?;
        match done.node.kind {
            Kind::Literal(v) => Ok(v),
            _ => Err(ExprError::new(
                ExprErrorKind::Unresolved,
                done.node.span,
                format!(
                    "`{done}` needs {} that is not known",
                    done.unresolved().join(", ")
                ),
            )),
        }
    }

    /// The value, when the expression is fully evaluated.
    #[must_use]
    pub fn value(&self) -> Option<&Value> {
        self.node.as_literal()
    }

    /// Whether the expression is a value (nothing left to evaluate).
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.value().is_some()
    }

    /// Where the expression is in the source it was parsed from.
    #[must_use]
    pub fn span(&self) -> Span {
        self.node.span
    }

    /// The same truth value as a boolean: `x && true` where `x` could be any
    /// value becomes `bool(x)`, so conditions simplify as far as possible
    /// (`bool(passed) && true` is `bool(passed)`).
    #[must_use]
    pub fn into_condition(self) -> Expr {
        Expr {
            node: eval::to_condition(self.node),
        }
    }

    /// The variables still referenced, as dotted names made of the root and
    /// its constant properties (`config.x`, `services.db.0.ip`), in order of
    /// appearance, without duplicates. Expression strings of `map`, `filter`
    /// and `eval` count too (without their `_` variables).
    #[must_use]
    pub fn variables(&self) -> Vec<String> {
        let mut names = Vec::new();
        collect_variables(&self.node, false, &mut names);
        names
    }

    /// Names of the functions still called, in order, without duplicates.
    #[must_use]
    pub fn functions(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        self.node.visit(&mut |n| {
            if let Kind::Call(name, _) = &n.kind
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        });
        names
    }

    /// Static checks: unknown functions, argument counts, undeclared
    /// `config.X` (when the checker knows the declared names).
    #[must_use]
    pub fn check(&self, checker: &Checker) -> Vec<ExprError> {
        checker.check(&self.node)
    }

    /// What keeps the expression from being a value, for messages.
    pub(crate) fn unresolved(&self) -> Vec<String> {
        let mut what = self.variables();
        for name in self.functions() {
            if matches!(
                name.as_str(),
                "file" | "glob" | "secret" | "date" | "abspath" | "relpath"
            ) {
                what.push(format!("{name}()"));
            }
        }
        what
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)
    }
}

impl FromStr for Expr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

impl From<Value> for Expr {
    fn from(value: Value) -> Self {
        Expr::literal(value)
    }
}

fn collect_variables(node: &Node, inner: bool, names: &mut Vec<String>) {
    if let Some(path) = node.static_path() {
        let name = path.join(".");
        let underscore = inner && path.first().is_some_and(|root| root == "_");
        if !underscore && !names.contains(&name) {
            names.push(name);
        }
        return;
    }
    let mut recurse = |n: &Node| collect_variables(n, inner, names);
    match &node.kind {
        Kind::Literal(_) | Kind::Variable(_) => {}
        Kind::Property(base, _) => recurse(base),
        Kind::Index(base, key) => {
            recurse(base);
            recurse(key);
        }
        Kind::Wildcard(base, steps) => {
            recurse(base);
            for step in steps {
                if let ast::Step::Index(key) = step {
                    recurse(key);
                }
            }
        }
        Kind::Unary(_, x) => recurse(x),
        Kind::Binary(_, a, b) => {
            recurse(a);
            recurse(b);
        }
        Kind::Ternary(c, a, b) => {
            recurse(c);
            recurse(a);
            recurse(b);
        }
        Kind::Call(name, args) => {
            for arg in args {
                recurse(&arg.value);
            }
            let source = match name.as_str() {
                "map" | "filter" => args.get(1),
                "eval" => args.first(),
                _ => None,
            };
            if let Some(Value::String(text)) = source.and_then(|a| a.value.as_literal())
                && let Ok(parsed) = parser::parse_expression(text)
            {
                collect_variables(&parsed, true, names);
            }
        }
        Kind::Array(items) => items.iter().for_each(recurse),
        Kind::Object(members) => members.iter().for_each(|(_, n)| recurse(n)),
    }
}

/// Serializes as canonical source text.
impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserializes from source text, parsing it.
impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Expr::parse(&source).map_err(serde::de::Error::custom)
    }
}

/// Serializes as template text (remaining parts in `{{ }}`).
impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserializes from template text, parsing it.
impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}
