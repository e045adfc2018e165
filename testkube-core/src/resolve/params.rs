//! Typed config parameters: casting passed values (often strings from a
//! command line) to the declared type and checking them against the schema
//! (`enum`, `pattern`, lengths, bounds, `multipleOf`).

use serde_json::{Number, Value};

use crate::model::{ParameterSchema, ParameterType};

/// Why a value does not fit its parameter, as a sentence fragment that
/// follows "config `name` ...": the rule broken and, apart, what the value
/// was, so that a sensitive value is never put in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamProblem {
    /// The rule, e.g. "must match the pattern `^tk_`".
    rule: String,
    /// The offending value (or a fact about it, such as its length) as
    /// shown after "got".
    got: Option<String>,
    pub(crate) hint: Option<String>,
}

impl ParamProblem {
    fn new(rule: impl Into<String>) -> Self {
        ParamProblem {
            rule: rule.into(),
            got: None,
            hint: None,
        }
    }

    fn got(mut self, got: impl Into<String>) -> Self {
        self.got = Some(got.into());
        self
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The fragment, e.g. "must be an integer, got `four`"; for a
    /// sensitive parameter the value is not shown.
    pub(crate) fn describe(&self, sensitive: bool) -> String {
        match (&self.got, sensitive) {
            (Some(got), false) => format!("{}, got {got}", self.rule),
            (Some(_), true) => format!("{}, got the value (sensitive, not shown)", self.rule),
            (None, _) => self.rule.clone(),
        }
    }
}

/// Casts a literal value to the parameter's type, the way Testkube casts
/// `--config` strings: `"4"` to `4` for integers, `"true"` to `true` for
/// booleans (Go's `strconv.ParseBool` spellings), numbers and booleans to
/// their text for strings.
pub(crate) fn cast(value: &Value, ty: ParameterType) -> Result<Value, ParamProblem> {
    let shown = shown(value);
    let wrong = |expected: &str| ParamProblem::new(format!("must be {expected}")).got(&shown);
    match ty {
        ParameterType::String => Ok(Value::String(match value {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        })),
        ParameterType::Integer => match value {
            Value::Number(number) => number
                .as_i64()
                .or_else(|| number.as_f64().and_then(integral))
                .map(Value::from)
                .ok_or_else(|| wrong("an integer")),
            Value::String(text) => parse_integer(text.trim())
                .map(Value::from)
                .ok_or_else(|| wrong("an integer")),
            _ => Err(wrong("an integer")),
        },
        ParameterType::Number => {
            let parsed = match value {
                Value::Number(number) => number.as_f64(),
                Value::String(text) => text.trim().parse::<f64>().ok(),
                _ => None,
            };
            parsed
                .filter(|number| number.is_finite())
                .map(number_value)
                .ok_or_else(|| wrong("a number"))
        }
        ParameterType::Boolean => match value {
            Value::Bool(flag) => Ok(Value::Bool(*flag)),
            Value::String(text) => parse_bool(text.trim())
                .map(Value::Bool)
                .ok_or_else(|| wrong("a boolean (true or false)")),
            Value::Number(number) if number.as_i64() == Some(1) => Ok(Value::Bool(true)),
            Value::Number(number) if number.as_i64() == Some(0) => Ok(Value::Bool(false)),
            _ => Err(wrong("a boolean (true or false)")),
        },
    }
}

/// A float as JSON: integral values stay floats (`2.0`) so that the type
/// shows.
fn number_value(number: f64) -> Value {
    Number::from_f64(number).map_or(Value::Null, Value::Number)
}

fn integral(number: f64) -> Option<i64> {
    // The range check keeps the cast exact; i64::MAX itself is not
    // representable as f64, hence the strict upper bound.
    (number.fract() == 0.0 && number >= i64::MIN as f64 && number < i64::MAX as f64)
        .then_some(number as i64)
}

fn parse_integer(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .or_else(|| text.parse::<f64>().ok().and_then(integral))
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// How a value is quoted in messages.
pub(crate) fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    }
}

/// Checks an already cast value against the schema's constraints.
pub(crate) fn check(value: &Value, schema: &ParameterSchema) -> Result<(), ParamProblem> {
    let ty = schema.effective_type();
    if !schema.allowed.is_empty() {
        let allowed: Vec<Value> = schema
            .allowed
            .iter()
            .map(|option| cast(option, ty).unwrap_or_else(|_| option.clone()))
            .collect();
        if !allowed.iter().any(|option| same_value(option, value)) {
            let listed: Vec<String> = allowed.iter().map(shown).collect();
            let first = allowed.first().map(plain).unwrap_or_default();
            return Err(
                ParamProblem::new(format!("must be one of {}", listed.join(", ")))
                    .got(shown(value))
                    .with_hint(format!("pick one of the allowed values, e.g. `{first}`")),
            );
        }
    }
    if let Value::String(text) = value {
        check_string(text, schema)?;
    }
    if let Some(number) = value.as_f64().filter(|_| value.is_number()) {
        check_number(number, schema)?;
    }
    Ok(())
}

fn check_string(text: &str, schema: &ParameterSchema) -> Result<(), ParamProblem> {
    let length = u64::try_from(text.chars().count()).unwrap_or(u64::MAX);
    if let Some(min) = schema.min_length.filter(|min| length < *min) {
        return Err(
            ParamProblem::new(format!("must be at least {min} characters long"))
                .got(length.to_string()),
        );
    }
    if let Some(max) = schema.max_length.filter(|max| length > *max) {
        return Err(
            ParamProblem::new(format!("must be at most {max} characters long"))
                .got(length.to_string()),
        );
    }
    if let Some(pattern) = &schema.pattern {
        let regex = regex::Regex::new(pattern).map_err(|err| {
            ParamProblem::new(format!("has an invalid `pattern` `{pattern}`: {err}"))
                .with_hint("fix the pattern in the parameter's declaration")
        })?;
        if !regex.is_match(text) {
            return Err(
                ParamProblem::new(format!("must match the pattern `{pattern}`"))
                    .got(format!("`{text}`")),
            );
        }
    }
    Ok(())
}

fn check_number(number: f64, schema: &ParameterSchema) -> Result<(), ParamProblem> {
    let fail =
        |rule: String| Err(ParamProblem::new(format!("must be {rule}")).got(number.to_string()));
    let bound = |value: &Option<Number>| ParameterSchema::bound(value.as_ref());
    if let Some(min) = bound(&schema.minimum).filter(|min| number < *min) {
        return fail(format!("at least {min}"));
    }
    if let Some(max) = bound(&schema.maximum).filter(|max| number > *max) {
        return fail(format!("at most {max}"));
    }
    if let Some(min) = bound(&schema.exclusive_minimum).filter(|min| number <= *min) {
        return fail(format!("greater than {min}"));
    }
    if let Some(max) = bound(&schema.exclusive_maximum).filter(|max| number >= *max) {
        return fail(format!("less than {max}"));
    }
    if let Some(step) = bound(&schema.multiple_of).filter(|step| *step > 0.0) {
        let ratio = number / step;
        if (ratio - ratio.round()).abs() > 1e-9 {
            return fail(format!("a multiple of {step}"));
        }
    }
    Ok(())
}

/// Equality that treats `2` and `2.0` as the same number.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value as a user types it on a command line.
pub(crate) fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What to write after `--config name=` in a hint: an example of the type.
pub(crate) fn placeholder(schema: &ParameterSchema) -> String {
    if let Some(example) = &schema.example {
        return plain(example);
    }
    if let Some(first) = schema.allowed.first() {
        return plain(first);
    }
    format!("<{}>", schema.effective_type().as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(ty: ParameterType) -> ParameterSchema {
        ParameterSchema {
            param_type: Some(ty),
            ..ParameterSchema::default()
        }
    }

    #[test]
    fn command_line_strings_are_cast_to_the_declared_type() {
        assert_eq!(cast(&json!("4"), ParameterType::Integer), Ok(json!(4)));
        assert_eq!(cast(&json!(" 4.0 "), ParameterType::Integer), Ok(json!(4)));
        assert_eq!(cast(&json!("2.5"), ParameterType::Number), Ok(json!(2.5)));
        assert_eq!(
            cast(&json!("True"), ParameterType::Boolean),
            Ok(json!(true))
        );
        assert_eq!(cast(&json!("0"), ParameterType::Boolean), Ok(json!(false)));
        assert_eq!(cast(&json!(3), ParameterType::String), Ok(json!("3")));
        let err = cast(&json!("four"), ParameterType::Integer).unwrap_err();
        assert_eq!(err.describe(false), "must be an integer, got `four`");
        assert_eq!(
            err.describe(true),
            "must be an integer, got the value (sensitive, not shown)"
        );
        assert!(cast(&json!("2.5"), ParameterType::Integer).is_err());
        assert!(cast(&json!("yes"), ParameterType::Boolean).is_err());
        assert!(cast(&json!("nan"), ParameterType::Number).is_err());
    }

    #[test]
    fn enum_compares_after_casting_both_sides() {
        let mut workers = schema(ParameterType::Integer);
        workers.allowed = vec![json!("1"), json!(2)];
        assert!(check(&json!(1), &workers).is_ok());
        assert!(check(&json!(2), &workers).is_ok());
        let err = check(&json!(3), &workers).unwrap_err();
        assert_eq!(err.describe(false), "must be one of `1`, `2`, got `3`");
    }

    #[test]
    fn string_and_number_constraints_are_enforced() {
        let mut name = schema(ParameterType::String);
        name.pattern = Some("^[a-z]+$".into());
        name.min_length = Some(2);
        name.max_length = Some(4);
        assert!(check(&json!("abc"), &name).is_ok());
        assert!(
            check(&json!("a"), &name)
                .unwrap_err()
                .describe(false)
                .contains("at least 2")
        );
        assert!(
            check(&json!("abcde"), &name)
                .unwrap_err()
                .describe(false)
                .contains("at most 4")
        );
        assert!(
            check(&json!("ab1"), &name)
                .unwrap_err()
                .describe(false)
                .contains("pattern")
        );

        let mut ratio = schema(ParameterType::Number);
        ratio.minimum = Some(0.into());
        ratio.exclusive_maximum = Some(1.into());
        ratio.multiple_of = Number::from_f64(0.25);
        assert!(check(&json!(0.5), &ratio).is_ok());
        assert!(
            check(&json!(1.0), &ratio)
                .unwrap_err()
                .describe(false)
                .contains("less than 1")
        );
        assert!(
            check(&json!(-1.0), &ratio)
                .unwrap_err()
                .describe(false)
                .contains("at least 0")
        );
        assert!(
            check(&json!(0.3), &ratio)
                .unwrap_err()
                .describe(false)
                .contains("multiple of 0.25")
        );

        let mut broken = schema(ParameterType::String);
        broken.pattern = Some("(".into());
        assert!(
            check(&json!("x"), &broken)
                .unwrap_err()
                .describe(false)
                .contains("invalid `pattern`")
        );
    }
}
