//! How values convert and combine: the loose typing users of Testkube know.
//!
//! Conversions follow Testkube's: anything becomes a string (lists join with
//! `,`, objects print as JSON, `null` is empty), numbers are read from strings,
//! truthiness treats `""`, `"false"`, `"0"`, `"off"`, `null`, `0`, `false`
//! and empty lists and objects as false. One deliberate difference: integers
//! stay integers (`7 / 2` is `3.5` but `6 / 3` is `2`, and `string(1.5 * 2)`
//! is `"3"` either way), where Testkube computes everything in floats.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::ast::BinaryOp;

/// A number read from a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// A failed operation: the error kind and a message.
pub(crate) type OpResult<T> = Result<T, (OpError, String)>;

/// Why an operation failed (mapped to an [`ExprErrorKind`](super::ExprErrorKind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpError {
    Type,
    DivisionByZero,
    Overflow,
}

/// The text of a value, as templates and `string()` print it.
pub(crate) fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        Value::Array(items) => items.iter().map(to_text).collect::<Vec<_>>().join(","),
        Value::Object(_) => value.to_string(),
    }
}

fn number_text(n: &Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        float_text(f)
    } else {
        n.to_string()
    }
}

/// A float as text: whole numbers without a fraction (`3`, not `3.0`), very
/// large ones in exponent form.
pub(crate) fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else if f.abs() >= 1e21 {
        format!("{f:e}")
    } else {
        format!("{f}")
    }
}

/// The language's truthiness: `null`, `false`, empty lists and maps, and
/// values whose text is empty, `false`, `0` or `off` are false.
#[must_use]
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        other => !matches!(to_text(other).as_str(), "" | "false" | "0" | "off"),
    }
}

/// A number from a value: numbers as they are, `null` as 0, strings (and
/// lists, through their text) parsed.
pub(crate) fn to_num(value: &Value) -> OpResult<Num> {
    match value {
        Value::Null => Ok(Num::Int(0)),
        Value::Number(n) => Ok(match n.as_i64() {
            Some(i) => Num::Int(i),
            None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(_) | Value::Array(_) => parse_num(&to_text(value)).ok_or_else(|| {
            (
                OpError::Type,
                format!("{} is not a number", describe(value)),
            )
        }),
        Value::Bool(_) | Value::Object(_) => Err((
            OpError::Type,
            format!("{} is not a number", describe(value)),
        )),
    }
}

fn parse_num(text: &str) -> Option<Num> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Num::Int(i));
    }
    let f = text.parse::<f64>().ok()?;
    f.is_finite().then_some(Num::Float(f))
}

/// An integer from a value; floats are truncated toward zero.
pub(crate) fn to_int(value: &Value) -> OpResult<i64> {
    match to_num(value)? {
        Num::Int(i) => Ok(i),
        Num::Float(f) => float_to_int(f.trunc()),
    }
}

/// A whole float as an integer, or an overflow error.
pub(crate) fn float_to_int(f: f64) -> OpResult<i64> {
    // i64::MAX as f64 rounds up to 2^63, which is already out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if (-LIMIT..LIMIT).contains(&f) {
        Ok(f as i64)
    } else {
        Err((
            OpError::Overflow,
            format!("{} is out of the integer range", float_text(f)),
        ))
    }
}

/// A float from a value.
pub(crate) fn to_float(value: &Value) -> OpResult<f64> {
    Ok(to_num(value)?.as_f64())
}

/// A value from a number; non-finite floats are errors (JSON has none).
pub(crate) fn num_value(n: Num) -> OpResult<Value> {
    match n {
        Num::Int(i) => Ok(Value::from(i)),
        Num::Float(f) => Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            (
                OpError::Overflow,
                "the result is not a finite number".to_string(),
            )
        }),
    }
}

/// A short description of a value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    let text = value.to_string();
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    };
    if text.chars().count() > 40 {
        let short: String = text.chars().take(37).collect();
        format!("the {kind} {short}...")
    } else {
        format!("the {kind} {text}")
    }
}

/// Equality as users expect from Testkube, where both sides compare as text
/// (`1 == "1"`, `null == ""`): numbers compare as numbers, lists and objects
/// element by element (object key order does not matter), anything else by
/// its text.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            matches!(compare_nums(to_num(a), to_num(b)), Some(Ordering::Equal))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| loose_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| loose_eq(v, w)))
        }
        _ => to_text(a) == to_text(b),
    }
}

fn compare_nums(a: OpResult<Num>, b: OpResult<Num>) -> Option<Ordering> {
    match (a.ok()?, b.ok()?) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (x, y) => x.as_f64().partial_cmp(&y.as_f64()),
    }
}

/// Applies a binary operator other than `&&` / `||` to two values.
pub(crate) fn binary(op: BinaryOp, a: &Value, b: &Value) -> OpResult<Value> {
    match op {
        BinaryOp::Eq => Ok(Value::Bool(loose_eq(a, b))),
        BinaryOp::Ne => Ok(Value::Bool(!loose_eq(a, b))),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ord = compare_nums(Ok(to_num(a)?), Ok(to_num(b)?))
                .ok_or_else(|| (OpError::Type, "cannot compare these numbers".to_string()))?;
            Ok(Value::Bool(match op {
                BinaryOp::Lt => ord == Ordering::Less,
                BinaryOp::Le => ord != Ordering::Greater,
                BinaryOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        BinaryOp::Add if a.is_string() || b.is_string() => {
            Ok(Value::String(to_text(a) + &to_text(b)))
        }
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Mod
        | BinaryOp::Pow => num_value(arithmetic(op, to_num(a)?, to_num(b)?)?),
        BinaryOp::And | BinaryOp::Or => Ok(if truthy(a) == (op == BinaryOp::And) {
            b.clone()
        } else {
            a.clone()
        }),
    }
}

/// Integer arithmetic where the result is an exact integer, float otherwise
/// (also when an integer result would overflow, as Testkube's floats would).
fn arithmetic(op: BinaryOp, a: Num, b: Num) -> OpResult<Num> {
    let zero = matches!(b, Num::Int(0)) || matches!(b, Num::Float(f) if f == 0.0);
    if zero && matches!(op, BinaryOp::Div | BinaryOp::Mod) {
        let what = if op == BinaryOp::Div {
            "divide"
        } else {
            "take the remainder"
        };
        return Err((OpError::DivisionByZero, format!("cannot {what} by zero")));
    }
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let exact = match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            BinaryOp::Div if x.checked_rem(y) == Some(0) => x.checked_div(y),
            BinaryOp::Mod => Some(x.checked_rem(y).unwrap_or(0)),
            BinaryOp::Pow => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
            _ => None,
        };
        if let Some(v) = exact {
            return Ok(Num::Int(v));
        }
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    let result = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Mod => x % y,
        _ => x.powf(y),
    };
    if result.is_finite() {
        Ok(Num::Float(result))
    } else {
        Err((
            OpError::Overflow,
            "the result is not a finite number".to_string(),
        ))
    }
}

/// `-x`.
pub(crate) fn negate(value: &Value) -> OpResult<Value> {
    num_value(match to_num(value)? {
        Num::Int(i) => match i.checked_neg() {
            Some(n) => Num::Int(n),
            None => Num::Float(-(i as f64)),
        },
        Num::Float(f) => Num::Float(-f),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_print_like_testkube_users_expect() {
        assert_eq!(float_text(3.0), "3");
        assert_eq!(float_text(-0.5), "-0.5");
        assert_eq!(float_text(1e21), "1e21");
        assert_eq!(float_text(123456789.0), "123456789");
        assert_eq!(to_text(&json!(2.50)), "2.5");
    }

    #[test]
    fn numbers_are_read_from_text_exactly() {
        assert_eq!(
            to_num(&json!("9007199254740993")).unwrap(),
            Num::Int(9_007_199_254_740_993)
        );
        assert_eq!(to_num(&json!(" 5")).map_err(|e| e.0), Err(OpError::Type));
        assert_eq!(to_num(&json!("inf")).map_err(|e| e.0), Err(OpError::Type));
        assert_eq!(to_num(&json!([7])).unwrap(), Num::Int(7));
        assert_eq!(to_num(&Value::Null).unwrap(), Num::Int(0));
    }

    #[test]
    fn integer_arithmetic_is_exact_and_overflows_to_float() {
        let add = |a: Value, b: Value| binary(BinaryOp::Add, &a, &b).unwrap();
        assert_eq!(
            add(json!(i64::MAX), json!(1)),
            json!(9_223_372_036_854_775_808.0)
        );
        assert_eq!(
            binary(BinaryOp::Mod, &json!(i64::MIN), &json!(-1)).unwrap(),
            json!(0)
        );
        assert_eq!(
            binary(BinaryOp::Div, &json!(i64::MIN), &json!(-1)).unwrap(),
            json!(9_223_372_036_854_775_808.0)
        );
        assert_eq!(
            negate(&json!(i64::MIN)).unwrap(),
            json!(9_223_372_036_854_775_808.0)
        );
        assert_eq!(
            float_to_int(9.3e18).map_err(|e| e.0),
            Err(OpError::Overflow)
        );
    }
}
