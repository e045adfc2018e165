//! Static checks, run when a workflow is validated, before anything is known:
//! calls to unknown functions, wrong numbers of arguments, and references to
//! `config.X` parameters the workflow does not declare. Expression strings
//! given to `map`, `filter` and `eval` are parsed and checked too.

use std::collections::BTreeSet;

use serde_json::Value;

use super::ast::{Kind, Node};
use super::error::{ExprError, ExprErrorKind, Span, did_you_mean};
use super::parser::parse_expression;
use super::stdlib;

/// What the static checks know: the declared `config` parameters.
///
/// ```
/// use testkube_core::expr::{Checker, Expr};
/// let checker = Checker::new().with_config(["workers"]);
/// let errors = Expr::parse("config.worker * lenn(x)").unwrap().check(&checker);
/// assert_eq!(errors.len(), 2);
/// assert_eq!(errors[0].hint(), Some("did you mean `config.workers`?"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Checker {
    config: Option<BTreeSet<String>>,
}

impl Checker {
    /// A checker of functions and arity only (config references unchecked).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Also checks that every `config.X` is one of `names`.
    #[must_use]
    pub fn with_config<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config = Some(names.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn check(&self, root: &Node) -> Vec<ExprError> {
        let mut errors = Vec::new();
        self.check_node(root, None, &mut errors);
        errors
    }

    /// Checks `root`; `at` overrides the spans (for expressions inside a
    /// string argument, whose own offsets mean nothing in the source).
    fn check_node(&self, root: &Node, at: Option<Span>, errors: &mut Vec<ExprError>) {
        root.visit(&mut |node| {
            let span = at.unwrap_or(node.span);
            match &node.kind {
                Kind::Call(name, args) => self.check_call(name, args, span, errors),
                Kind::Property(..) | Kind::Index(..) => self.check_config(node, span, errors),
                _ => {}
            }
        });
    }

    fn check_call(
        &self,
        name: &str,
        args: &[super::ast::Arg],
        span: Span,
        errors: &mut Vec<ExprError>,
    ) {
        let Some(info) = stdlib::lookup(name) else {
            let mut err = ExprError::new(
                ExprErrorKind::UnknownFunction,
                span,
                format!("unknown function `{name}`"),
            );
            if let Some(close) = did_you_mean(name, stdlib::names()) {
                err = err.with_hint(format!("did you mean `{close}`?"));
            }
            errors.push(err);
            return;
        };
        let fixed = args.iter().filter(|a| !a.spread).count();
        let spread = args.len() > fixed;
        // With a spread list the count is only known at run time: check the
        // fixed arguments against the maximum alone.
        let problem = if spread {
            info.max
                .filter(|max| fixed > *max)
                .and_then(|_| info.arity_problem(fixed))
        } else {
            info.arity_problem(fixed)
        };
        if let Some(message) = problem {
            errors.push(ExprError::new(ExprErrorKind::Arity, span, message));
        }
        let inner = match name {
            "map" | "filter" => args.get(1),
            "eval" => args.first(),
            _ => None,
        };
        if let Some(Value::String(source)) = inner
            .filter(|a| !a.spread)
            .and_then(|a| a.value.as_literal())
        {
            let at = inner.map_or(span, |a| a.value.span);
            match parse_expression(source) {
                Ok(parsed) => self.check_node(&parsed, Some(at), errors),
                Err(e) => errors.push(ExprError::new(
                    e.kind(),
                    at,
                    format!("{name}(): invalid expression: {}", e.message()),
                )),
            }
        }
    }

    fn check_config(&self, node: &Node, span: Span, errors: &mut Vec<ExprError>) {
        let Some(declared) = &self.config else { return };
        let Some(path) = node.static_path() else {
            return;
        };
        // Only the node whose path is exactly `config.X` reports.
        let [root, name] = path.as_slice() else {
            return;
        };
        if root != "config" || declared.contains(name) {
            return;
        }
        let mut err = ExprError::new(
            ExprErrorKind::UndeclaredConfig,
            span,
            format!("`config.{name}` is not a declared parameter"),
        );
        if let Some(close) = did_you_mean(name, declared.iter().map(String::as_str)) {
            err = err.with_hint(format!("did you mean `config.{close}`?"));
        } else if declared.is_empty() {
            err = err.with_hint(format!("declare it under `spec.config.{name}`"));
        } else {
            let list: Vec<&str> = declared.iter().map(String::as_str).collect();
            err = err.with_hint(format!("declared parameters: {}", list.join(", ")));
        }
        errors.push(err);
    }
}
