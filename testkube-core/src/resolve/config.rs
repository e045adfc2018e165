//! Binding config values to a workflow's or a template's parameters: passed
//! values cast and checked, defaults filled in, required ones demanded,
//! unknown ones refused (with a "did you mean").

use indexmap::IndexMap;
use serde_json::Value;

use super::eval::{ExprOutcome, Scope, TemplateOutcome, eval_template};
use super::params::{cast, check, placeholder, plain};
use super::problem::Problem;
use super::simplify::strip_braces;
use crate::diagnostic::did_you_mean;
use crate::model::ParameterSchema;
use crate::yaml::FieldPath;

/// The text shown instead of a sensitive value.
pub const MASK: &str = "********";

/// Who the parameters belong to, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// The workflow: values come from `--config` (or an execution request).
    Workflow,
    /// A template used at `path`.
    Template(&'a str),
}

/// Parameters with their values.
#[derive(Debug, Clone, Default)]
pub(crate) struct BoundConfig {
    /// Values known now, by parameter name, in declaration order.
    pub(crate) values: IndexMap<String, Value>,
    /// Values that are expressions finished later (e.g. `{{ execution.id }}`).
    pub(crate) expressions: IndexMap<String, String>,
    /// Names of sensitive parameters.
    pub(crate) sensitive: Vec<String>,
}

impl BoundConfig {
    /// The scope in which `config.*` means these values. With `mask`,
    /// sensitive parameters are not bound at all: expressions using them
    /// stay symbolic (`{{ config.token }}`), so a preview shows where a
    /// secret goes without showing it, and nothing is computed from a
    /// stand-in value.
    pub(crate) fn scope(&self, base: Scope, mask: bool) -> Scope {
        let withheld = |name: &String| mask && self.sensitive.contains(name);
        let mut config = serde_json::Map::new();
        for (name, value) in &self.values {
            if !withheld(name) {
                config.insert(name.clone(), value.clone());
            }
        }
        let mut scope = base.with("config", Value::Object(config));
        for (name, expression) in &self.expressions {
            if !withheld(name) {
                scope = scope.bind_expression(&format!("config.{name}"), expression.clone());
            }
        }
        for name in self.values.keys().chain(self.expressions.keys()) {
            if withheld(name) {
                scope = scope.withhold(&format!("config.{name}"));
            }
        }
        let declared: Vec<String> = self
            .values
            .keys()
            .chain(self.expressions.keys())
            .cloned()
            .collect();
        scope.declaring_config(declared)
    }

    /// The values as shown to people: sensitive ones masked, expressions as
    /// `{{ }}` templates.
    pub(crate) fn shown(&self) -> IndexMap<String, Value> {
        let mut shown = IndexMap::new();
        for (name, value) in &self.values {
            let value = if self.sensitive.contains(name) {
                Value::String(MASK.to_owned())
            } else {
                value.clone()
            };
            shown.insert(name.clone(), value);
        }
        for (name, expression) in &self.expressions {
            let value = if self.sensitive.contains(name) {
                MASK.to_owned()
            } else {
                format!("{{{{ {expression} }}}}")
            };
            shown.insert(name.clone(), Value::String(value));
        }
        shown
    }
}

/// Binds `passed` values to `schema`. `base` is the scope `{{ }}` templates
/// in values and defaults are evaluated in (no `config` in it). `path` is
/// where the values were written (the `use` entry of a template), or the
/// workflow's `spec.config` for command-line values.
pub(crate) fn bind(
    schema: &IndexMap<String, ParameterSchema>,
    passed: &IndexMap<String, Value>,
    base: &Scope,
    owner: Owner<'_>,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> BoundConfig {
    let mut bound = BoundConfig::default();
    for (name, value) in passed {
        if !schema.contains_key(name) {
            problems.push(unknown_parameter(name, schema, owner, path));
        }
        let _ = value;
    }
    for (name, parameter) in schema {
        let sensitive = parameter.sensitive == Some(true);
        if sensitive {
            bound.sensitive.push(name.clone());
        }
        let value_path = match owner {
            Owner::Workflow => path.child(name.as_str()),
            Owner::Template(_) => path.child("config").child(name.as_str()),
        };
        let (value, from_default) = match (passed.get(name), &parameter.default) {
            (Some(value), _) => (value, false),
            (None, Some(default)) => (default, true),
            (None, None) => {
                let at = match owner {
                    Owner::Workflow => path.child(name.as_str()),
                    Owner::Template(_) => path.clone(),
                };
                problems.push(missing_parameter(name, parameter, owner, &at));
                continue;
            }
        };
        match evaluate_value(value, base) {
            Err(_) if sensitive => problems.push(
                Problem::error(
                    "invalid-config",
                    format!(
                        "{} holds a `{{{{ }}}}` expression that cannot be evaluated \
                         (the value is sensitive, not shown)",
                        shown_name(name, owner)
                    ),
                    &value_path,
                )
                .with_hint("check the expression in the value you pass"),
            ),
            Err(problem) => problems.push(problem.at(&value_path)),
            Ok(ExprOutcome::Partial(expression)) => {
                bound.expressions.insert(name.clone(), expression);
            }
            Ok(ExprOutcome::Value(value)) => {
                let ty = parameter.effective_type();
                let checked = cast(&value, ty).and_then(|value| {
                    // Defaults are the author's choice: only passed values are
                    // held to the declared constraints.
                    if !from_default {
                        check(&value, parameter)?;
                    }
                    Ok(value)
                });
                match checked {
                    Ok(value) => {
                        bound.values.insert(name.clone(), value);
                    }
                    Err(problem) => {
                        let shown_name = shown_name(name, owner);
                        let source = if from_default { " (its default)" } else { "" };
                        let mut diagnostic = Problem::error(
                            "invalid-config",
                            format!("{shown_name}{source} {}", problem.describe(sensitive)),
                            &value_path,
                        );
                        let hint = problem
                            .hint
                            .unwrap_or_else(|| pass_hint(name, parameter, owner));
                        diagnostic = diagnostic.with_hint(hint);
                        problems.push(diagnostic);
                    }
                }
            }
        }
    }
    bound
}

/// A passed or default value with its `{{ }}` templates evaluated: a value,
/// or an expression left for later.
fn evaluate_value(value: &Value, base: &Scope) -> Result<ExprOutcome, super::eval::ExprProblem> {
    let Value::String(text) = value else {
        return Ok(ExprOutcome::Value(value.clone()));
    };
    if !text.contains("{{") {
        return Ok(ExprOutcome::Value(value.clone()));
    }
    match eval_template(text, base)? {
        TemplateOutcome::Text(text) => Ok(ExprOutcome::Value(Value::String(text))),
        TemplateOutcome::Partial(template) => Ok(ExprOutcome::Partial(
            super::eval::template_to_expression(&template)
                .unwrap_or_else(|| strip_braces(&template).to_owned()),
        )),
    }
}

fn shown_name(name: &str, owner: Owner<'_>) -> String {
    match owner {
        Owner::Workflow => format!("config `{name}`"),
        Owner::Template(template) => format!("config `{name}` of template `{template}`"),
    }
}

fn pass_hint(name: &str, parameter: &ParameterSchema, owner: Owner<'_>) -> String {
    let example = placeholder(parameter);
    match owner {
        Owner::Workflow => format!("pass it as --config {name}={example}"),
        Owner::Template(_) => format!("set it in the `use` entry: `config: {{{name}: {example}}}`"),
    }
}

fn missing_parameter(
    name: &str,
    parameter: &ParameterSchema,
    owner: Owner<'_>,
    path: &FieldPath,
) -> Problem {
    let ty = parameter.effective_type().as_str();
    let described = parameter
        .description
        .as_deref()
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    let message = format!(
        "missing required {} ({ty}{described})",
        shown_name(name, owner)
    );
    let mut problem = Problem::error("missing-config", message, path)
        .with_hint(pass_hint(name, parameter, owner));
    if let Some(allowed) = (!parameter.allowed.is_empty()).then_some(&parameter.allowed) {
        let listed: Vec<String> = allowed.iter().map(plain).collect();
        problem.hint = problem
            .hint
            .map(|hint| format!("{hint} (one of: {})", listed.join(", ")));
    }
    problem
}

fn unknown_parameter(
    name: &str,
    schema: &IndexMap<String, ParameterSchema>,
    owner: Owner<'_>,
    path: &FieldPath,
) -> Problem {
    let suggestion = did_you_mean(name, schema.keys().map(String::as_str));
    let declared: Vec<&str> = schema.keys().map(String::as_str).collect();
    let hint = match (suggestion, declared.is_empty()) {
        (Some(close), _) => format!("did you mean `{close}`?"),
        (None, true) => "this workflow declares no config parameters".to_owned(),
        (None, false) => format!("declared parameters: {}", declared.join(", ")),
    };
    match owner {
        // A command-line key has no place in the file to point at: the hint
        // lists what can be passed instead.
        Owner::Workflow => Problem::error(
            "unknown-config",
            format!("unknown config `{name}`: the workflow does not declare it"),
            path,
        )
        .with_hint(match suggestion {
            Some(_) => format!("{hint} (declared parameters: {})", declared.join(", ")),
            None => hint,
        })
        .not_in_file(),
        // Testkube passes unknown template parameters through silently, so
        // a typo silently falls back to the default; here it is an error,
        // at the `use` entry, like a missing parameter.
        Owner::Template(template) => Problem::error(
            "unknown-config",
            format!("template `{template}` has no config parameter `{name}`"),
            path,
        )
        .with_hint(hint),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::ParameterType;

    fn schema() -> IndexMap<String, ParameterSchema> {
        let mut schema = IndexMap::new();
        schema.insert(
            "workers".to_owned(),
            ParameterSchema {
                param_type: Some(ParameterType::Integer),
                ..ParameterSchema::default()
            },
        );
        schema.insert(
            "browser".to_owned(),
            ParameterSchema {
                default: Some(json!("chrome")),
                allowed: vec![json!("chrome"), json!("firefox")],
                ..ParameterSchema::default()
            },
        );
        schema.insert(
            "token".to_owned(),
            ParameterSchema {
                default: Some(json!("s3cr3t")),
                sensitive: Some(true),
                ..ParameterSchema::default()
            },
        );
        schema
    }

    fn passed(pairs: &[(&str, &str)]) -> IndexMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[test]
    fn passed_values_are_cast_and_defaults_fill_in() {
        let mut problems = Vec::new();
        let path = FieldPath::new().child("spec").child("config");
        let bound = bind(
            &schema(),
            &passed(&[("workers", "4")]),
            &Scope::new(),
            Owner::Workflow,
            &path,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(bound.values.get("workers"), Some(&json!(4)));
        assert_eq!(bound.values.get("browser"), Some(&json!("chrome")));
        assert_eq!(bound.shown().get("token"), Some(&json!(MASK)));
    }

    #[test]
    fn missing_unknown_and_invalid_values_are_reported() {
        let mut problems = Vec::new();
        let path = FieldPath::new().child("spec").child("config");
        bind(
            &schema(),
            &passed(&[("worker", "4"), ("browser", "safari")]),
            &Scope::new(),
            Owner::Workflow,
            &path,
            &mut problems,
        );
        let messages: Vec<(&str, &str, Option<&str>)> = problems
            .iter()
            .map(|p| (p.code, p.message.as_str(), p.hint.as_deref()))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    "unknown-config",
                    "unknown config `worker`: the workflow does not declare it",
                    Some("did you mean `workers`? (declared parameters: workers, browser, token)")
                ),
                (
                    "missing-config",
                    "missing required config `workers` (integer)",
                    Some("pass it as --config workers=<integer>")
                ),
                (
                    "invalid-config",
                    "config `browser` must be one of `chrome`, `firefox`, got `safari`",
                    Some("pick one of the allowed values, e.g. `chrome`")
                ),
            ]
        );
    }
}
