//! Partial evaluation of every expression in a workflow (or a piece of one)
//! with what is known at this stage: `config.*` and `workflow.*` while
//! resolving, worker variables while planning a worker. What is not known yet
//! (`execution.*`, `env.*`, step results, run-time functions) stays as an
//! expression, simplified, to be finished later.
//!
//! The walk goes over the JSON form of the model, and knows which fields hold
//! whole expressions (`condition`, `retry.until`, `count`, `maxCount`,
//! `parallelism`, `logs`, string values of `matrix`/`shards`) and which hold
//! `{{ }}` templates (every other string), the same split Testkube makes with
//! its `expr:"expression"` and `expr:"template"` field tags. The workflow's
//! own `config` declarations are left alone.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::eval::{ExprOutcome, Scope, TemplateOutcome, eval_expression, eval_template};
use super::problem::Problem;
use crate::yaml::FieldPath;

/// What a JSON value is, for the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A workflow or template spec.
    Spec,
    /// A step.
    Step,
    /// A `parallel` block (a spec, a step and a worker strategy in one).
    Parallel,
    /// A service.
    Service,
    /// `execute`.
    Execute,
    /// `execute.workflows[]`.
    ExecuteWorkflow,
    /// `retry`.
    Retry,
    /// A `use[]` or `template` reference.
    TemplateRef,
    /// Anything else: every string is a template.
    Generic,
    /// Not evaluated at all (parameter declarations).
    Skip,
}

/// Walks values and simplifies their expressions in one [`Scope`],
/// collecting the problems found.
pub(crate) struct Simplifier<'a> {
    scope: &'a Scope,
    problems: Vec<Problem>,
}

impl<'a> Simplifier<'a> {
    pub(crate) fn new(scope: &'a Scope) -> Self {
        Simplifier {
            scope,
            problems: Vec::new(),
        }
    }

    /// The problems found so far.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Simplifies a typed model value of the given kind; `path` is where it
    /// sits in the document, for messages.
    pub(crate) fn typed<T: Serialize + DeserializeOwned>(
        &mut self,
        value: &T,
        kind: Kind,
        path: &FieldPath,
    ) -> Option<T> {
        let mut json = match serde_json::to_value(value) {
            Ok(json) => json,
            Err(err) => {
                self.internal(path, &err);
                return None;
            }
        };
        let mut path = path.clone();
        self.value(&mut json, kind, &mut path);
        match serde_json::from_value(json) {
            Ok(typed) => Some(typed),
            Err(err) => {
                self.internal(&path, &err);
                None
            }
        }
    }

    fn internal(&mut self, path: &FieldPath, err: &serde_json::Error) {
        self.problems.push(
            Problem::error(
                "internal",
                format!("cannot evaluate the expressions here: {err}"),
                path,
            )
            .with_hint("an expression produced a value of the wrong type for this field"),
        );
    }

    /// Simplifies one template string (e.g. a worker description).
    pub(crate) fn template(&mut self, text: &str, path: &FieldPath) -> String {
        match eval_template(text, self.scope) {
            Ok(TemplateOutcome::Text(text) | TemplateOutcome::Partial(text)) => text,
            Err(problem) => {
                self.problems.push(problem.at(path));
                text.to_owned()
            }
        }
    }

    /// Simplifies one whole-expression string.
    pub(crate) fn expression(&mut self, text: &str, path: &FieldPath) -> ExprOutcome {
        match eval_expression(strip_braces(text), self.scope) {
            Ok(outcome) => outcome,
            Err(problem) => {
                self.problems.push(problem.at(path));
                ExprOutcome::Partial(text.to_owned())
            }
        }
    }

    /// Walks a JSON value in place.
    pub(crate) fn value(&mut self, value: &mut Value, kind: Kind, path: &mut FieldPath) {
        match (kind, value) {
            (Kind::Skip, _) => {}
            (_, Value::String(text)) if text.contains("{{") => {
                let simplified = self.template(text, path);
                *text = simplified;
            }
            (_, Value::String(_)) => {}
            (_, Value::Array(items)) => {
                for (index, item) in items.iter_mut().enumerate() {
                    path.push(index);
                    self.value(item, kind_of_item(kind), path);
                    path.pop();
                }
            }
            (_, Value::Object(map)) => self.object(map, kind, path),
            _ => {}
        }
    }

    fn object(&mut self, map: &mut Map<String, Value>, kind: Kind, path: &mut FieldPath) {
        for (key, field) in map.iter_mut() {
            path.push(key.as_str());
            match field_kind(kind, key) {
                Field::Value(kind) => self.value(field, kind, path),
                Field::Expression => self.expression_field(field, path, ExprShape::Text),
                Field::Integer => self.expression_field(field, path, ExprShape::Integer),
                Field::Lists => {
                    if let Value::Object(lists) = field {
                        for (key, list) in lists.iter_mut() {
                            path.push(key.as_str());
                            self.expression_field(list, path, ExprShape::List);
                            path.pop();
                        }
                    }
                }
                Field::Map(kind) => {
                    if let Value::Object(entries) = field {
                        for (key, entry) in entries.iter_mut() {
                            path.push(key.as_str());
                            self.value(entry, kind, path);
                            path.pop();
                        }
                    }
                }
            }
            path.pop();
        }
    }

    /// A field holding a whole expression, written back in the shape the
    /// model expects: expression text, an integer, or a list.
    fn expression_field(&mut self, field: &mut Value, path: &FieldPath, shape: ExprShape) {
        let Value::String(text) = field else {
            if shape == ExprShape::List {
                // A literal list: its strings are templates.
                let mut path = path.clone();
                self.value(field, Kind::Generic, &mut path);
            }
            return;
        };
        let outcome = self.expression(text, path);
        *field = match (shape, outcome) {
            (ExprShape::Text, ExprOutcome::Value(value)) => Value::String(value.to_string()),
            (ExprShape::Integer, ExprOutcome::Value(value)) => match integral(&value) {
                Some(number) => Value::from(number),
                None => Value::String(value.to_string()),
            },
            (ExprShape::List, ExprOutcome::Value(Value::Array(items))) => Value::Array(items),
            (_, ExprOutcome::Value(value)) => Value::String(value.to_string()),
            (_, ExprOutcome::Partial(text)) => Value::String(text),
        };
    }
}

/// `{{ x }}` written in an expression field means `x`.
pub(crate) fn strip_braces(text: &str) -> &str {
    let trimmed = text.trim();
    match trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
    {
        Some(inner) if !inner.contains("{{") && !inner.contains("}}") => inner.trim(),
        _ => trimmed,
    }
}

/// An integer value, also from an integral float or a numeric string.
pub(crate) fn integral(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExprShape {
    Text,
    Integer,
    List,
}

enum Field {
    Value(Kind),
    Expression,
    Integer,
    Lists,
    Map(Kind),
}

fn kind_of_item(kind: Kind) -> Kind {
    match kind {
        Kind::Step | Kind::TemplateRef | Kind::ExecuteWorkflow => kind,
        _ => Kind::Generic,
    }
}

/// Which fields of which kind hold what.
fn field_kind(kind: Kind, key: &str) -> Field {
    let spec_field = |key: &str| match key {
        "config" => Some(Field::Value(Kind::Skip)),
        "use" => Some(Field::Value(Kind::TemplateRef)),
        "services" => Some(Field::Map(Kind::Service)),
        "setup" | "steps" | "after" => Some(Field::Value(Kind::Step)),
        _ => None,
    };
    let step_field = |key: &str| match key {
        "condition" => Some(Field::Expression),
        "retry" => Some(Field::Value(Kind::Retry)),
        "parallel" => Some(Field::Value(Kind::Parallel)),
        "services" => Some(Field::Map(Kind::Service)),
        "setup" | "steps" => Some(Field::Value(Kind::Step)),
        "execute" => Some(Field::Value(Kind::Execute)),
        "use" | "template" => Some(Field::Value(Kind::TemplateRef)),
        _ => None,
    };
    let strategy_field = |key: &str| match key {
        "matrix" | "shards" => Some(Field::Lists),
        "count" | "maxCount" => Some(Field::Integer),
        _ => None,
    };
    let found = match kind {
        Kind::Spec => spec_field(key),
        Kind::Step => step_field(key),
        Kind::Parallel => match key {
            "parallelism" => Some(Field::Integer),
            "logs" => Some(Field::Expression),
            _ => strategy_field(key)
                .or_else(|| spec_field(key))
                .or_else(|| step_field(key)),
        },
        Kind::Service => match key {
            "logs" => Some(Field::Expression),
            "use" => Some(Field::Value(Kind::TemplateRef)),
            _ => strategy_field(key),
        },
        Kind::Execute => match key {
            "parallelism" => Some(Field::Integer),
            "workflows" => Some(Field::Value(Kind::ExecuteWorkflow)),
            _ => None,
        },
        Kind::ExecuteWorkflow => strategy_field(key),
        Kind::Retry => match key {
            "count" => Some(Field::Integer),
            "until" => Some(Field::Expression),
            _ => None,
        },
        Kind::TemplateRef | Kind::Generic | Kind::Skip => None,
    };
    found.unwrap_or(Field::Value(Kind::Generic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_around_a_whole_expression_are_dropped() {
        assert_eq!(strip_braces("{{ config.workers }}"), "config.workers");
        assert_eq!(strip_braces(" len(x) "), "len(x)");
        assert_eq!(strip_braces("{{ a }}-{{ b }}"), "{{ a }}-{{ b }}");
    }

    #[test]
    fn integral_accepts_integers_in_any_clothing() {
        assert_eq!(integral(&Value::from(3)), Some(3));
        assert_eq!(integral(&Value::from(3.0)), Some(3));
        assert_eq!(integral(&Value::from("3")), Some(3));
        assert_eq!(integral(&Value::from(3.5)), None);
    }
}
