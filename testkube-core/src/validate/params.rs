//! Checks of `config` parameter declarations: the default must satisfy the
//! declared type and constraints, and the constraints must make sense.

use indexmap::IndexMap;
use serde_json::Value;

use super::report::Report;
use crate::diagnostic::Diagnostic;
use crate::model::{ParameterSchema, ParameterType};
use crate::yaml::FieldPath;

/// Checks every parameter of a `config` map.
pub(crate) fn check_parameters(
    report: &mut Report<'_>,
    path: &FieldPath,
    config: &IndexMap<String, ParameterSchema>,
) {
    for (name, schema) in config {
        let param_path = path.child(name.as_str());
        check_name(report, &param_path, name);
        check_bounds(report, &param_path, schema);
        let pattern = compile_pattern(report, &param_path, schema);
        for (index, allowed) in schema.allowed.iter().enumerate() {
            if let Err(reason) = check_value(schema, pattern.as_ref(), allowed, false) {
                report.at(
                    &param_path.child("enum").child(index),
                    Diagnostic::error(
                        "invalid-enum",
                        format!("`enum` value of `{name}`: {reason}"),
                    )
                    .with_hint(format!(
                        "every allowed value must be a valid {}",
                        schema.effective_type().as_str()
                    )),
                );
            }
        }
        if let Some(default) = &schema.default
            && let Err(reason) = check_value(schema, pattern.as_ref(), default, true)
        {
            // The default is in the file, but messages end up in logs: a
            // sensitive one is not repeated there.
            let reason = if schema.sensitive == Some(true) {
                hide_value(&reason, default)
            } else {
                reason
            };
            report.at(
                &param_path.child("default"),
                Diagnostic::error("invalid-default", format!("default of `{name}`: {reason}"))
                    .with_hint("fix the default, or remove it to make the parameter required"),
            );
        }
    }
}

/// `config.my-param` would parse as a subtraction; such names need `config["my-param"]`.
fn check_name(report: &mut Report<'_>, path: &FieldPath, name: &str) {
    let identifier = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        report.at_key(
            path,
            Diagnostic::warning(
                "parameter-name",
                format!("parameter `{name}` cannot be written as `config.{name}`"),
            )
            .with_hint(format!(
                "use letters, digits and `_` (e.g. `{}`), or refer to it as `config[\"{name}\"]`",
                name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            )),
        );
    }
}

fn check_bounds(report: &mut Report<'_>, path: &FieldPath, schema: &ParameterSchema) {
    let mut conflict = |low_field: &str, high_field: &str, ok: bool| {
        if !ok {
            report.at(
                &path.child(high_field),
                Diagnostic::error(
                    "invalid-bounds",
                    format!("`{high_field}` is below `{low_field}`"),
                )
                .with_hint("no value could satisfy both bounds; swap or fix them"),
            );
        }
    };
    if let (Some(low), Some(high)) = (schema.min_length, schema.max_length) {
        conflict("minLength", "maxLength", low <= high);
    }
    let bound = |number: &Option<serde_json::Number>| ParameterSchema::bound(number.as_ref());
    if let (Some(low), Some(high)) = (bound(&schema.minimum), bound(&schema.maximum)) {
        conflict("minimum", "maximum", low <= high);
    }
    if let (Some(low), Some(high)) = (
        bound(&schema.exclusive_minimum),
        bound(&schema.exclusive_maximum),
    ) {
        conflict("exclusiveMinimum", "exclusiveMaximum", low < high);
    }
    if let Some(step) = &schema.multiple_of
        && bound(&schema.multiple_of).is_some_and(|step| step <= 0.0)
    {
        report.at(
            &path.child("multipleOf"),
            Diagnostic::error(
                "out-of-range",
                format!("`multipleOf` must be positive, found {step}"),
            )
            .with_hint("use a positive number, e.g. `multipleOf: 5`"),
        );
    }
}

fn compile_pattern(
    report: &mut Report<'_>,
    path: &FieldPath,
    schema: &ParameterSchema,
) -> Option<regex::Regex> {
    let pattern = schema.pattern.as_ref()?;
    match regex::Regex::new(pattern) {
        Ok(regex) => Some(regex),
        Err(error) => {
            let reason = error.to_string();
            let reason = reason.lines().last().unwrap_or_default().trim();
            let reason = reason.strip_prefix("error: ").unwrap_or(reason).to_owned();
            report.at(
                &path.child("pattern"),
                Diagnostic::error(
                    "invalid-pattern",
                    format!("`pattern` is not a valid regular expression: {reason}"),
                )
                .with_hint("the pattern uses RE2 syntax (as in Go)"),
            );
            None
        }
    }
}

/// Whether `value` satisfies the schema. Strings holding `{{ }}` templates
/// are only known after resolution and pass. `is_default` also checks the
/// value against `enum`.
fn check_value(
    schema: &ParameterSchema,
    pattern: Option<&regex::Regex>,
    value: &Value,
    is_default: bool,
) -> Result<(), String> {
    if let Value::String(text) = value
        && text.contains("{{")
    {
        return Ok(());
    }
    let kind = schema.effective_type();
    let number = match (kind, value) {
        (_, Value::Array(_) | Value::Object(_)) => {
            return Err(format!(
                "must be a single {} value, not a list or map",
                kind.as_str()
            ));
        }
        (_, Value::Null) => return Err("is null".to_owned()),
        (ParameterType::String, _) => None,
        (ParameterType::Boolean, Value::Bool(_)) => None,
        (ParameterType::Boolean, Value::String(text))
            if matches!(text.as_str(), "true" | "false") =>
        {
            None
        }
        (ParameterType::Boolean, other) => {
            return Err(format!("`{}` is not a boolean", plain(other)));
        }
        (ParameterType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_f64(),
        (ParameterType::Integer, Value::String(text)) if text.trim().parse::<i64>().is_ok() => {
            text.trim().parse().ok()
        }
        (ParameterType::Integer, other) => {
            return Err(format!("`{}` is not an integer", plain(other)));
        }
        (ParameterType::Number, Value::Number(n)) => n.as_f64(),
        (ParameterType::Number, Value::String(text)) if text.trim().parse::<f64>().is_ok() => {
            text.trim().parse().ok()
        }
        (ParameterType::Number, other) => {
            return Err(format!("`{}` is not a number", plain(other)));
        }
    };
    if let Some(number) = number {
        check_number(schema, number)?;
    }
    if kind == ParameterType::String {
        let text = plain(value);
        let length = text.chars().count() as u64;
        if let Some(min) = schema.min_length
            && length < min
        {
            return Err(format!("`{text}` is shorter than minLength {min}"));
        }
        if let Some(max) = schema.max_length
            && length > max
        {
            return Err(format!("`{text}` is longer than maxLength {max}"));
        }
        if let Some(pattern) = pattern
            && !pattern.is_match(&text)
        {
            return Err(format!(
                "`{text}` does not match pattern `{}`",
                pattern.as_str()
            ));
        }
    }
    if is_default
        && !schema.allowed.is_empty()
        && !schema
            .allowed
            .iter()
            .any(|allowed| plain(allowed) == plain(value))
    {
        let allowed: Vec<String> = schema.allowed.iter().map(plain).collect();
        return Err(format!(
            "`{}` is not one of the `enum` values: {}",
            plain(value),
            allowed.join(", ")
        ));
    }
    Ok(())
}

fn check_number(schema: &ParameterSchema, number: f64) -> Result<(), String> {
    let bound = |value: &Option<serde_json::Number>| ParameterSchema::bound(value.as_ref());
    let checks = [
        (
            &schema.minimum,
            number >= bound(&schema.minimum).unwrap_or(f64::MIN),
            "below minimum",
        ),
        (
            &schema.maximum,
            number <= bound(&schema.maximum).unwrap_or(f64::MAX),
            "above maximum",
        ),
        (
            &schema.exclusive_minimum,
            number > bound(&schema.exclusive_minimum).unwrap_or(f64::MIN),
            "not above exclusiveMinimum",
        ),
        (
            &schema.exclusive_maximum,
            number < bound(&schema.exclusive_maximum).unwrap_or(f64::MAX),
            "not below exclusiveMaximum",
        ),
    ];
    for (limit, ok, what) in checks {
        if let Some(limit) = limit
            && !ok
        {
            return Err(format!("{number} is {what} {limit}"));
        }
    }
    if let Some(step) = bound(&schema.multiple_of)
        && step > 0.0
        && (number / step).fract().abs() > 1e-9
    {
        return Err(format!("{number} is not a multiple of {step}"));
    }
    Ok(())
}

/// `reason` with `value` (as [`check_value`] shows it) replaced by words.
fn hide_value(reason: &str, value: &Value) -> String {
    const HIDDEN: &str = "the value (sensitive, not shown)";
    let text = plain(value);
    let mut hidden = reason.replace(&format!("`{text}`"), HIDDEN);
    if let Some(number) = value.as_f64().map(|n| n.to_string())
        && let Some(rest) = hidden.strip_prefix(&number)
    {
        hidden = format!("{HIDDEN}{rest}");
    }
    hidden
}

/// A scalar as the user wrote it (strings without quotes).
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
