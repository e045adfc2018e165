//! The bridge to the expression language: what is known at a stage (a
//! [`Scope`], which is an expression [`Context`]) and the evaluation of one
//! template or expression in it.
//!
//! A scope can also bind a variable to an expression that is not a value yet
//! (a template parameter passed `{{ execution.id }}`). The expression
//! language's contexts only hand out values, so such a variable is kept
//! symbolic while evaluating and then replaced, in the simplified source, by
//! its expression in parentheses, and the result evaluated once more.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::problem::Problem;
use crate::expr::{Checker, Context, Expr, ExprError, ExprErrorKind, Template};
use crate::yaml::FieldPath;

/// What is known at one stage of resolution or planning.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// Known variables by root name (`config` → `{workers: 4}`, `index` → 3).
    known: Map<String, Value>,
    /// Variables bound to expressions that are not values yet, by dotted
    /// name (`config.group` → `execution.id + "-a"`).
    bound: Vec<(String, String)>,
    /// Dotted names deliberately left unknown (sensitive parameters in a
    /// preview): references to them stay as they are.
    withheld: Vec<String>,
    /// The declared `config` parameters, when references to others are errors.
    declared_config: Option<BTreeSet<String>>,
}

impl Scope {
    pub(crate) fn new() -> Self {
        Scope::default()
    }

    /// Adds a known root variable.
    pub(crate) fn with(mut self, name: &str, value: Value) -> Self {
        self.known.insert(name.to_owned(), value);
        self
    }

    /// Binds a dotted variable name to an expression.
    pub(crate) fn bind_expression(mut self, name: &str, expression: String) -> Self {
        self.bound.push((name.to_owned(), expression));
        self
    }

    /// Keeps the dotted variable `name` unknown, and its root from being
    /// handed out whole, so that references to it stay symbolic.
    pub(crate) fn withhold(mut self, name: &str) -> Self {
        self.withheld.push(name.to_owned());
        self
    }

    /// Makes `config.X` for an `X` not in `names` an error.
    pub(crate) fn declaring_config(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.declared_config = Some(names.into_iter().collect());
        self
    }

    fn checker(&self) -> Checker {
        match &self.declared_config {
            Some(names) => Checker::new().with_config(names.iter().cloned()),
            None => Checker::new(),
        }
    }

    fn is_bound(&self, name: &str) -> bool {
        let bound = self.bound.iter().map(|(bound, _)| bound);
        bound.chain(&self.withheld).any(|bound| {
            name == bound
                || name
                    .strip_prefix(bound.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
                // A root whose members are partly bound is not handed out whole.
                || bound
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// Replaces bound variables in a simplified source by their expressions.
    /// `None` when none of them occurs.
    fn substitute(&self, source: &str, variables: &[String]) -> Option<String> {
        let mut changed = false;
        let mut text = source.to_owned();
        for (name, expression) in &self.bound {
            if variables.iter().any(|variable| variable == name) {
                text = replace_variable(&text, name, &format!("({expression})"));
                changed = true;
            }
        }
        changed.then_some(text)
    }
}

impl Context for Scope {
    fn variable(&self, name: &str) -> Option<Value> {
        if self.is_bound(name) {
            return None;
        }
        let mut segments = name.split('.');
        let mut value = self.known.get(segments.next()?)?;
        for segment in segments {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value.clone())
    }
}

/// A template after evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TemplateOutcome {
    /// Fully evaluated.
    Text(String),
    /// Simplified, still holding `{{ }}` parts for later.
    Partial(String),
}

/// An expression after evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprOutcome {
    /// Fully evaluated.
    Value(Value),
    /// Simplified expression source, finished later.
    Partial(String),
}

/// An expression that cannot be evaluated, before it knows its field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExprProblem {
    code: &'static str,
    message: String,
    hint: Option<String>,
}

impl ExprProblem {
    fn new(error: &ExprError, source: &str) -> Self {
        let code = match error.kind() {
            ExprErrorKind::Syntax | ExprErrorKind::TooDeep => "expression-syntax",
            ExprErrorKind::UnknownFunction | ExprErrorKind::Arity => "unknown-function",
            ExprErrorKind::UndeclaredConfig => "undeclared-config",
            _ => "expression",
        };
        let culprit = source
            .get(error.span().range())
            .filter(|text| !text.is_empty() && *text != source);
        let message = match culprit {
            Some(culprit) => format!("{} (at `{culprit}` in `{source}`)", error.message()),
            None => format!("{} in `{source}`", error.message()),
        };
        ExprProblem {
            code,
            message,
            hint: error.hint().map(str::to_owned),
        }
    }

    /// The problem at a field.
    pub(crate) fn at(self, path: &FieldPath) -> Problem {
        let problem = Problem::error(self.code, self.message, path);
        match self.hint {
            Some(hint) => problem.with_hint(hint),
            None => problem,
        }
    }
}

/// Evaluates a `{{ }}` template as far as `scope` allows.
pub(crate) fn eval_template(text: &str, scope: &Scope) -> Result<TemplateOutcome, ExprProblem> {
    let fail = |error: ExprError| ExprProblem::new(&error, text);
    let template = Template::parse(text).map_err(fail)?;
    if let Some(error) = template.check(&scope.checker()).into_iter().next() {
        return Err(fail(error));
    }
    let mut evaluated = template.evaluate(scope).map_err(fail)?;
    if !scope.bound.is_empty() {
        let shown = evaluated.to_string();
        if let Some(substituted) = substitute_template(&shown, scope) {
            evaluated = Template::parse(&substituted)
                .and_then(|template| template.evaluate(scope))
                .map_err(fail)?;
        }
    }
    Ok(match evaluated.as_string() {
        Some(text) => TemplateOutcome::Text(text),
        None => TemplateOutcome::Partial(evaluated.to_string()),
    })
}

/// Evaluates an expression as far as `scope` allows.
pub(crate) fn eval_expression(text: &str, scope: &Scope) -> Result<ExprOutcome, ExprProblem> {
    let fail = |error: ExprError| ExprProblem::new(&error, text);
    let expr = Expr::parse(text).map_err(fail)?;
    if let Some(error) = expr.check(&scope.checker()).into_iter().next() {
        return Err(fail(error));
    }
    let mut evaluated = expr.evaluate(scope).map_err(fail)?;
    if let Some(substituted) = scope.substitute(&evaluated.to_string(), &evaluated.variables()) {
        evaluated = Expr::parse(&substituted)
            .and_then(|expr| expr.evaluate(scope))
            .map_err(fail)?;
    }
    Ok(match evaluated.value() {
        Some(value) => ExprOutcome::Value(value.clone()),
        None => ExprOutcome::Partial(evaluated.to_string()),
    })
}

/// The template with bound variables replaced inside its `{{ }}` parts.
fn substitute_template(shown: &str, scope: &Scope) -> Option<String> {
    let template = Template::parse(shown).ok()?;
    let mut pieces: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for expr in template.expressions() {
        let range = expr.span().range();
        let source = shown.get(range.clone())?;
        if let Some(substituted) = scope.substitute(source, &expr.variables()) {
            pieces.push((range, substituted));
        }
    }
    if pieces.is_empty() {
        return None;
    }
    let mut text = shown.to_owned();
    for (range, substituted) in pieces.into_iter().rev() {
        text.replace_range(range, &format!("({substituted})"));
    }
    Some(text)
}

/// The expression a partially evaluated template stands for: the sole
/// expression of `{{ x }}`, or the concatenation of its parts
/// (`a-{{ x }}` → `"a-" + string(x)`).
pub(crate) fn template_to_expression(template: &str) -> Option<String> {
    let parsed = Template::parse(template).ok()?;
    if let Some(sole) = parsed.sole_expression() {
        return Some(sole.to_string());
    }
    let mut parts: Vec<String> = Vec::new();
    let mut position = 0;
    for expr in parsed.expressions() {
        let range = expr.span().range();
        let open = template.get(..range.start)?.rfind("{{")?;
        let text = template.get(position..open)?;
        if !text.is_empty() {
            parts.push(Value::String(unescape_braces(text)).to_string());
        }
        parts.push(format!("string({})", template.get(range.clone())?));
        position = template.get(range.end..)?.find("}}")? + range.end + 2;
    }
    let rest = template.get(position..)?;
    if !rest.is_empty() {
        parts.push(Value::String(unescape_braces(rest)).to_string());
    }
    Some(parts.join(" + "))
}

fn unescape_braces(text: &str) -> String {
    text.replace("{{\"{{\"}}", "{{")
}

/// Replaces the variable `name` (a dotted name, possibly followed by more
/// accesses) with `replacement` wherever it occurs as a reference, not inside
/// string literals and not as the tail of a longer name.
fn replace_variable(source: &str, name: &str, replacement: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < source.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            let end = string_end(bytes, i);
            out.push_str(&source[i..end]);
            i = end;
            continue;
        }
        let preceded_by_name = i > 0 && (is_name_byte(bytes[i - 1]) || bytes[i - 1] == b'.');
        let after = i + name.len();
        if !preceded_by_name
            && source[i..].starts_with(name)
            && !bytes.get(after).copied().is_some_and(is_name_byte)
        {
            out.push_str(replacement);
            i = after;
            continue;
        }
        let next = source[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&source[i..i + next]);
        i += next;
    }
    out
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The index just after the string literal starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope() -> Scope {
        Scope::new()
            .with("config", json!({"workers": 3, "name": "api"}))
            .declaring_config(["workers".to_owned(), "name".to_owned(), "group".to_owned()])
            .bind_expression("config.group", "execution.id".to_owned())
    }

    #[test]
    fn templates_fold_known_values_and_keep_the_rest() {
        let outcome = eval_template("{{ config.name }}-{{ env.ARCH }}", &scope());
        assert_eq!(
            outcome,
            Ok(TemplateOutcome::Partial("api-{{ env.ARCH }}".into()))
        );
        let outcome = eval_template("n={{ config.workers * 2 }}", &scope());
        assert_eq!(outcome, Ok(TemplateOutcome::Text("n=6".into())));
    }

    #[test]
    fn bound_expressions_are_substituted() {
        let outcome = eval_template("x-{{ config.group }}", &scope());
        assert_eq!(
            outcome,
            Ok(TemplateOutcome::Partial("x-{{ execution.id }}".into()))
        );
        let outcome = eval_expression("config.group == \"config.group\"", &scope());
        assert_eq!(
            outcome,
            Ok(ExprOutcome::Partial(
                "execution.id == \"config.group\"".into()
            ))
        );
    }

    #[test]
    fn undeclared_config_is_an_error_with_a_hint() {
        let problem = eval_expression("config.worker + 1", &scope()).unwrap_err();
        let problem = problem.at(&FieldPath::new());
        assert_eq!(problem.code, "undeclared-config");
        assert!(
            problem.message.contains("config.worker"),
            "{}",
            problem.message
        );
        assert_eq!(
            problem.hint.as_deref(),
            Some("did you mean `config.workers`?")
        );
    }

    #[test]
    fn templates_become_expressions() {
        assert_eq!(
            template_to_expression("{{ execution.id }}").as_deref(),
            Some("execution.id")
        );
        assert_eq!(
            template_to_expression("a-{{ execution.id }}-b").as_deref(),
            Some("\"a-\" + string(execution.id) + \"-b\"")
        );
    }

    #[test]
    fn variables_are_replaced_only_as_whole_references() {
        assert_eq!(
            replace_variable(
                "config.a + xconfig.a + 'config.a' + config.ab",
                "config.a",
                "(e)"
            ),
            "(e) + xconfig.a + 'config.a' + config.ab"
        );
    }
}
