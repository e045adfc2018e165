//! Small value types for fields that hold either a literal or an expression.
//!
//! The TestWorkflow format lets many fields carry `{{ expr }}` templates or
//! whole expressions instead of a literal (`count: 3` or
//! `count: 'len(config.browsers)'`). These types keep exactly what the user
//! wrote, so serialization is lossless, and leave evaluation and semantic
//! checks (duration syntax, ranges) to the resolver and the validator. Every
//! type has hand-written serde impls because `#[serde(untagged)]` would hide
//! the field list the loader needs for unknown-field detection.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::expr::{EmptyContext, Expr, VARIABLES};
use crate::resolve::simplify::integral;

/// Whether a string holds a `{{ }}` template that is only known after resolution.
pub(crate) fn has_template(text: &str) -> bool {
    text.contains("{{")
}

/// An integer literal or an expression yielding one (`count`, `maxCount`,
/// `parallelism`, `retry.count`, `concurrency.max`, security-context ids).
///
/// Reading one refuses a string that cannot become an integer: one that
/// does not parse as an expression, a constant that is not a whole number
/// (`"lots"` quoted inside, `true`, `2.5`), or one that uses a variable
/// nobody provides (`retry: {count: lots}` reads `lots` as a variable). A
/// `{{ }}` template is kept as written: its parts are checked as
/// expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrExpr {
    /// A literal integer, e.g. `count: 3`.
    Int(i64),
    /// An expression or template string, e.g. `count: 'len(config.items)'`.
    Expr(String),
}

impl Default for IntOrExpr {
    fn default() -> Self {
        IntOrExpr::Int(0)
    }
}

impl IntOrExpr {
    /// The literal value, if this is not an expression.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            IntOrExpr::Int(value) => Some(*value),
            IntOrExpr::Expr(_) => None,
        }
    }
}

impl Serialize for IntOrExpr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrExpr::Int(value) => serializer.serialize_i64(*value),
            IntOrExpr::Expr(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntOrExprVisitor;
        impl Visitor<'_> for IntOrExprVisitor {
            type Value = IntOrExpr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or an expression that computes one")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<IntOrExpr, E> {
                Ok(IntOrExpr::Int(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<IntOrExpr, E> {
                i64::try_from(value)
                    .map(IntOrExpr::Int)
                    .map_err(|_| E::custom(format!("integer {value} is too large")))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<IntOrExpr, E> {
                match not_an_integer(value) {
                    None => Ok(IntOrExpr::Expr(value.to_owned())),
                    Some(why) => Err(E::invalid_value(de::Unexpected::Other(&why), &self)),
                }
            }
        }
        deserializer.deserialize_any(IntOrExprVisitor)
    }
}

/// Why `text` cannot become an integer, as it follows "found"; `None` when
/// it can (or may: a template, or an expression of known variables).
fn not_an_integer(text: &str) -> Option<String> {
    if has_template(text) || text.trim().parse::<i64>().is_ok() {
        return None;
    }
    let expr = match Expr::parse(text) {
        Ok(expr) => expr,
        Err(error) => {
            return Some(format!(
                "`{text}`, which is not an expression ({})",
                error.message()
            ));
        }
    };
    match expr.evaluate(&EmptyContext) {
        Ok(value) => match value.value() {
            // Read as the planner reads counts.
            Some(constant) if integral(constant).is_some() => None,
            Some(constant) => Some(format!("`{text}`, which is {}", describe(constant))),
            None => value
                .variables()
                .iter()
                .map(|name| name.split('.').next().unwrap_or(name))
                .find(|root| VARIABLES.binary_search(root).is_err())
                .map(|root| {
                    if root == text.trim() {
                        format!("`{text}`, which is neither a number nor a known variable")
                    } else {
                        format!("`{text}`, where `{root}` is not a known variable")
                    }
                }),
        },
        Err(error) => Some(format!("`{text}`, which fails: {}", error.message())),
    }
}

fn describe(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::Bool(flag) => format!("the boolean `{flag}`"),
        serde_json::Value::Number(number) => format!("the number `{number}`, not a whole one"),
        serde_json::Value::String(text) => format!("the string {text:?}"),
        serde_json::Value::Array(_) => "a list".to_owned(),
        serde_json::Value::Object(_) => "a map".to_owned(),
    }
}

/// An expression field (`condition`, `retry.until`, `logs`).
///
/// The format stores these as strings; a YAML boolean or number
/// (`condition: true`) is accepted and kept as its text, since it is a valid
/// expression too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expression(pub String);

impl Expression {
    /// The expression source text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Expression {
    fn from(text: &str) -> Self {
        Expression(text.to_owned())
    }
}

impl Serialize for Expression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Expression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpressionVisitor;
        impl Visitor<'_> for ExpressionVisitor {
            type Value = Expression;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an expression string")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Expression, E> {
                Ok(Expression(value.to_string()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Expression, E> {
                Ok(Expression(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Expression, E> {
                Ok(Expression(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Expression, E> {
                Ok(Expression(value.to_string()))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Expression, E> {
                Ok(Expression(value.to_owned()))
            }
        }
        deserializer.deserialize_any(ExpressionVisitor)
    }
}

/// A duration such as `1h2m3s500ms` (Go `time.ParseDuration` syntax), or a
/// `{{ }}` template that yields one.
///
/// Deserialization accepts any string so that every bad duration in a file
/// can be reported at once by the validator; call [`Duration::parse`] to get
/// the value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Duration(pub String);

/// Why a [`Duration`] string is not a valid duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration")]
    Empty,
    /// The duration is negative.
    #[error("duration `{0}` is negative")]
    Negative(String),
    /// The text does not follow the `<number><unit>...` syntax.
    #[error("invalid duration `{text}`: {reason}")]
    Syntax {
        /// The offending text.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The duration does not fit in 64-bit nanoseconds.
    #[error("duration `{0}` is too large")]
    Overflow(String),
}

impl Duration {
    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the value is a `{{ }}` template, only checkable after resolution.
    pub fn is_expression(&self) -> bool {
        has_template(&self.0)
    }

    /// Parses the Go-style duration (`300ms`, `1.5h`, `2h45m`, units
    /// `ns us µs ms s m h`; `0` alone is allowed). Negative durations are an
    /// error: no field of the format accepts them.
    pub fn parse(&self) -> Result<std::time::Duration, DurationError> {
        parse_go_duration(self.0.trim())
    }
}

impl From<&str> for Duration {
    fn from(text: &str) -> Self {
        Duration(text.to_owned())
    }
}

fn parse_go_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let syntax = |reason: &str| DurationError::Syntax {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let (negative, mut rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(syntax("expected a number"));
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(syntax("remove the spaces, e.g. `5m` or `1h30m`"));
    }
    if rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(syntax(&format!("missing unit, e.g. `{rest}s` for seconds")));
    }
    let mut total: f64 = 0.0;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(syntax("expected a number before each unit"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(syntax("missing unit (use h, m, s, ms, us or ns)")),
            _ => {
                return Err(syntax(&format!(
                    "unknown unit `{unit}` (use h, m, s, ms, us or ns)"
                )));
            }
        };
        match number.split_once('.') {
            None => {
                let whole: u128 = number
                    .parse()
                    .map_err(|_| DurationError::Overflow(text.to_owned()))?;
                nanos = whole
                    .checked_mul(unit_nanos)
                    .and_then(|n| nanos.checked_add(n))
                    .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
            }
            Some(_) => {
                let value: f64 = number.parse().map_err(|_| syntax("invalid number"))?;
                total += value * unit_nanos as f64;
            }
        }
    }
    let total_nanos = nanos as f64 + total;
    if total_nanos > u64::MAX as f64 {
        return Err(DurationError::Overflow(text.to_owned()));
    }
    if negative && total_nanos > 0.0 {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let whole = nanos + total.round() as u128;
    let whole = u64::try_from(whole).map_err(|_| DurationError::Overflow(text.to_owned()))?;
    Ok(std::time::Duration::from_nanos(whole))
}

/// A list literal, or an expression string that yields a list (`matrix` and
/// `shards` values, `transfer[].files`).
#[derive(Debug, Clone, PartialEq)]
pub enum DynamicList {
    /// A literal YAML list; items are free-form JSON values.
    Static(Vec<serde_json::Value>),
    /// An expression yielding a list, e.g. `'glob("tests/**/*.py")'`.
    Expression(String),
}

impl Default for DynamicList {
    fn default() -> Self {
        DynamicList::Static(Vec::new())
    }
}

impl Serialize for DynamicList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DynamicList::Static(items) => items.serialize(serializer),
            DynamicList::Expression(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for DynamicList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DynamicListVisitor;
        impl<'de> Visitor<'de> for DynamicListVisitor {
            type Value = DynamicList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list or an expression string that yields a list")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<DynamicList, E> {
                Ok(DynamicList::Expression(value.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DynamicList, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element::<serde_json::Value>()? {
                    items.push(item);
                }
                Ok(DynamicList::Static(items))
            }
        }
        deserializer.deserialize_any(DynamicListVisitor)
    }
}

/// A Kubernetes resource quantity (`cpu: 500m`, `memory: 1Gi`, `cpu: 1`) or a
/// `{{ }}` template. YAML numbers are accepted and kept as their text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quantity(pub String);

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as `500m`, `1Gi` or `2`")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Quantity, E> {
                Ok(Quantity(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Quantity, E> {
                Ok(Quantity(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Quantity, E> {
                Ok(Quantity(value.to_string()))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Quantity, E> {
                Ok(Quantity(value.to_owned()))
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> Result<u128, DurationError> {
        Duration::from(text).parse().map(|d| d.as_millis())
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(millis("1h2m3s500ms"), Ok(3_723_500));
        assert_eq!(millis("0"), Ok(0));
        assert_eq!(millis("1.5s"), Ok(1500));
        assert_eq!(millis("90m"), Ok(5_400_000));
        assert_eq!(millis("250us").map(|_| ()), Ok(()));
    }

    #[test]
    fn bad_durations_are_rejected() {
        assert!(matches!(millis("10"), Err(DurationError::Syntax { .. })));
        assert!(matches!(millis("5 min"), Err(DurationError::Syntax { .. })));
        assert!(matches!(millis("1d"), Err(DurationError::Syntax { .. })));
        assert!(matches!(millis("-5s"), Err(DurationError::Negative(_))));
        assert!(matches!(millis(""), Err(DurationError::Empty)));
        assert!(matches!(millis("s"), Err(DurationError::Syntax { .. })));
        assert!(matches!(
            millis("99999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn literal_or_expression_values_round_trip() {
        let count: IntOrExpr = serde_json::from_str("3").unwrap_or_default();
        assert_eq!(count, IntOrExpr::Int(3));
        let count: Result<IntOrExpr, _> = serde_json::from_str("\"len(config.x)\"");
        assert_eq!(count.ok(), Some(IntOrExpr::Expr("len(config.x)".into())));
        assert!(serde_json::from_str::<IntOrExpr>("true").is_err());

        let list: Result<DynamicList, _> = serde_json::from_str("[\"a\", 1]");
        assert_eq!(
            list.ok(),
            Some(DynamicList::Static(vec!["a".into(), 1.into()]))
        );
        assert!(serde_json::from_str::<DynamicList>("{}").is_err());

        let condition: Result<Expression, _> = serde_json::from_str("true");
        assert_eq!(condition.ok(), Some(Expression::from("true")));
        let cpu: Result<Quantity, _> = serde_json::from_str("1");
        assert_eq!(cpu.ok(), Some(Quantity("1".into())));
    }

    #[test]
    fn integer_fields_take_only_strings_that_can_become_whole_numbers() {
        for can in [
            "3",
            " 4 ",
            "2.0",
            "{{ config.workers }}",
            "{{ lots }}",
            "len(config.items)",
            "config.workers * 2",
            "step.prep.outputs.n",
            "index + 1",
            "1 + 2",
        ] {
            assert_eq!(not_an_integer(can), None, "{can}");
        }
        for (cannot, why) in [
            (
                "lots",
                "`lots`, which is neither a number nor a known variable",
            ),
            (
                "lots * 2",
                "`lots * 2`, where `lots` is not a known variable",
            ),
            ("'three'", "`'three'`, which is the string \"three\""),
            ("true", "`true`, which is the boolean `true`"),
            ("2.5", "`2.5`, which is the number `2.5`, not a whole one"),
            ("[1]", "`[1]`, which is a list"),
            (
                "1 +",
                "`1 +`, which is not an expression (expected a value, found the end)",
            ),
            ("1 / 0", "`1 / 0`, which fails: cannot divide by zero"),
        ] {
            assert_eq!(not_an_integer(cannot).as_deref(), Some(why), "{cannot}");
        }
    }
}
