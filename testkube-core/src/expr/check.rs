//! Static checks, run when a workflow is validated, before anything is known:
//! calls to unknown functions, wrong numbers of arguments, references to
//! `config.X` parameters the workflow does not declare and, when asked,
//! variables nobody provides. Expression strings given to `map`, `filter` and
//! `eval` are parsed and checked too.

use std::collections::BTreeSet;

use serde_json::Value;

use super::ast::{Kind, Node};
use super::error::{ExprError, ExprErrorKind, Span, did_you_mean};
use super::parser::parse_expression;
use super::stdlib;

/// The root variables an expression may use besides a workflow's step ids
/// (`<stepId>` is whether that step passed), sorted. The engine provides
/// most of them; `resource`, `organization`, `environment` and `dashboard`
/// (set by Testkube's control plane), `output` and `outputs` are accepted so
/// that Testkube's workflows validate, but a local run does not provide them. `_` is only known
/// inside the expression strings of `map` and `filter`.
pub const VARIABLES: &[&str] = &[
    "always",
    "config",
    "count",
    "dashboard",
    "env",
    "environment",
    "error",
    "execution",
    "failed",
    "index",
    "matrix",
    "matrixCount",
    "matrixIndex",
    "never",
    "organization",
    "output",
    "outputs",
    "passed",
    "resource",
    "self",
    "services",
    "shard",
    "shardCount",
    "shardIndex",
    "status",
    "step",
    "success",
    "workflow",
];

/// The variable of the expression strings of `map` and `filter` (`_.value`,
/// `_.index`, `_.key`).
const LOOP_VARIABLE: &str = "_";

/// What the static checks know: the declared `config` parameters and, when
/// variables are checked, the workflow's step ids.
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
    /// Step ids, known as variables besides [`VARIABLES`]; `None` when
    /// variables are not checked.
    step_ids: Option<BTreeSet<String>>,
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

    /// Also checks that every variable is one of [`VARIABLES`] or of
    /// `step_ids` (the ids of the workflow's steps).
    ///
    /// ```
    /// use testkube_core::expr::{Checker, Expr};
    /// let checker = Checker::new().with_variables(["build"]);
    /// let expr = Expr::parse("build && pased").unwrap();
    /// let errors = expr.check(&checker);
    /// assert_eq!(errors[0].message(), "unknown variable `pased`");
    /// assert_eq!(errors[0].hint(), Some("did you mean `passed`?"));
    /// ```
    #[must_use]
    pub fn with_variables<I, S>(mut self, step_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.step_ids = Some(step_ids.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn check(&self, root: &Node) -> Vec<ExprError> {
        let mut errors = Vec::new();
        self.check_node(root, None, false, &mut errors);
        errors
    }

    /// Checks `root`; `at` overrides the spans (for expressions inside a
    /// string argument, whose own offsets mean nothing in the source), and
    /// `in_loop` says the loop variable `_` is known.
    fn check_node(
        &self,
        root: &Node,
        at: Option<Span>,
        in_loop: bool,
        errors: &mut Vec<ExprError>,
    ) {
        root.visit(&mut |node| {
            let span = at.unwrap_or(node.span);
            match &node.kind {
                Kind::Call(name, args) => self.check_call(name, args, span, errors),
                Kind::Property(..) | Kind::Index(..) => self.check_config(node, span, errors),
                Kind::Variable(name) if !(in_loop && name == LOOP_VARIABLE) => {
                    self.check_variable(name, span, errors);
                }
                _ => {}
            }
        });
    }

    fn check_variable(&self, name: &str, span: Span, errors: &mut Vec<ExprError>) {
        let Some(step_ids) = &self.step_ids else {
            return;
        };
        if VARIABLES.binary_search(&name).is_ok() || step_ids.contains(name) {
            return;
        }
        let known = VARIABLES
            .iter()
            .copied()
            .chain(step_ids.iter().map(String::as_str));
        let looks_like_env = name.chars().any(|c| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let hint = match did_you_mean(name, known) {
            Some(close) => format!("did you mean `{close}`?"),
            // Environment variables are read through `env`.
            None if looks_like_env => format!("did you mean `env.{name}`?"),
            None => format!(
                "use a known variable ({}, or a step's `id`), a quoted string (`\"{name}\"`) or \
                 a number",
                VARIABLES.join(", ")
            ),
        };
        errors.push(
            ExprError::new(
                ExprErrorKind::UnknownVariable,
                span,
                format!("unknown variable `{name}`"),
            )
            .with_hint(hint),
        );
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
        let (inner, in_loop) = match name {
            "map" | "filter" => (args.get(1), true),
            "eval" => (args.first(), false),
            _ => (None, false),
        };
        if let Some(Value::String(source)) = inner
            .filter(|a| !a.spread)
            .and_then(|a| a.value.as_literal())
        {
            let at = inner.map_or(span, |a| a.value.span);
            match parse_expression(source) {
                Ok(parsed) => self.check_node(&parsed, Some(at), in_loop, errors),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    fn unknown(source: &str, checker: &Checker) -> Vec<(String, Option<String>)> {
        let expr = Expr::parse(source).expect("parses");
        expr.check(checker)
            .into_iter()
            .map(|e| (e.message().to_owned(), e.hint().map(str::to_owned)))
            .collect()
    }

    #[test]
    fn variables_are_checked_only_when_asked_and_loop_variables_only_in_loops() {
        assert!(unknown("lots", &Checker::new()).is_empty());
        let checker = Checker::new().with_variables(["build_app"]);
        let known = "build_app && passed && step.results != '' && matrix.x == index \
                     && len(map(services.db, \"_.value.ip\")) > 0 && filter([1], '_.value > 0')";
        assert_eq!(unknown(known, &checker), []);
        assert_eq!(
            unknown("_.value + buil_app + HOME", &checker),
            [
                (
                    "unknown variable `_`".to_owned(),
                    Some(format!(
                        "use a known variable ({}, or a step's `id`), a quoted string (`\"_\"`) \
                         or a number",
                        VARIABLES.join(", ")
                    ))
                ),
                (
                    "unknown variable `buil_app`".to_owned(),
                    Some("did you mean `build_app`?".to_owned())
                ),
                (
                    "unknown variable `HOME`".to_owned(),
                    Some("did you mean `env.HOME`?".to_owned())
                ),
            ]
        );
        // `eval` strings are expressions of their own, without `_`.
        assert_eq!(unknown("eval('_.value')", &checker).len(), 1);
    }

    #[test]
    fn the_variable_list_is_sorted_for_binary_search() {
        assert!(VARIABLES.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
