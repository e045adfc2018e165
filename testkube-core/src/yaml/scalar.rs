//! Scalar resolution with the YAML 1.2 core schema: which plain scalars are
//! nulls, booleans, integers and floats. Quoted and block scalars are always
//! strings.

use serde_json::Value;

use super::ScalarStyle;

/// The typed value of a scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer.
    Int(i64),
    Float(f64),
    Str(&'a str),
}

/// Whether a plain scalar is a null (`~`, `null`, `Null`, `NULL` or empty).
pub(crate) fn is_plain_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Resolves a scalar with the core schema.
pub(crate) fn resolve(text: &str, style: ScalarStyle) -> Resolved<'_> {
    if style != ScalarStyle::Plain {
        return Resolved::Str(text);
    }
    if is_plain_null(text) {
        return Resolved::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let Some(first) = text.bytes().next() else {
        return Resolved::Str(text);
    };
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Resolved::Str(text);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return radix_int(text, hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return radix_int(text, octal, 8);
    }
    if is_decimal_int(text) {
        let parsed = if first == b'-' {
            text.parse::<i64>().map(Resolved::Int).ok()
        } else {
            text.trim_start_matches('+')
                .parse::<u64>()
                .map(Resolved::UInt)
                .ok()
        };
        // Too large for 64 bits: a float, as JSON parsers do.
        return parsed.unwrap_or_else(|| float(text));
    }
    if is_float(text) {
        return float(text);
    }
    Resolved::Str(text)
}

fn radix_int<'a>(text: &'a str, digits: &str, radix: u32) -> Resolved<'a> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Resolved::Str(text);
    }
    u64::from_str_radix(digits, radix).map_or(Resolved::Str(text), Resolved::UInt)
}

fn float(text: &str) -> Resolved<'_> {
    text.parse::<f64>()
        .map_or(Resolved::Str(text), Resolved::Float)
}

/// `[-+]?[0-9]+`
fn is_decimal_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_digits = digits(&mut i);
        if int_digits == 0 && frac_digits == 0 {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// The scalar as a JSON value (non-finite floats become `null`).
pub(crate) fn to_json(text: &str, style: ScalarStyle) -> Value {
    match resolve(text, style) {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::UInt(n) => Value::from(n),
        Resolved::Int(n) => Value::from(n),
        Resolved::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Resolved::Str(s) => Value::String(s.to_owned()),
    }
}

/// The word for the scalar's type in messages.
pub(crate) fn kind_name(text: &str, style: ScalarStyle) -> &'static str {
    match resolve(text, style) {
        Resolved::Null => "null",
        Resolved::Bool(_) => "a boolean",
        Resolved::UInt(_) | Resolved::Int(_) => "an integer",
        Resolved::Float(_) => "a number",
        Resolved::Str(_) => "a string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Resolved<'_> {
        resolve(text, ScalarStyle::Plain)
    }

    #[test]
    fn resolves_core_schema_plain_scalars() {
        for null in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(plain(null), Resolved::Null);
        }
        assert_eq!(plain("True"), Resolved::Bool(true));
        assert_eq!(plain("FALSE"), Resolved::Bool(false));
        assert_eq!(plain("42"), Resolved::UInt(42));
        assert_eq!(plain("+42"), Resolved::UInt(42));
        assert_eq!(plain("-42"), Resolved::Int(-42));
        assert_eq!(plain("0x1F"), Resolved::UInt(31));
        assert_eq!(plain("0o17"), Resolved::UInt(15));
        assert_eq!(plain("1.5"), Resolved::Float(1.5));
        assert_eq!(plain("-.5e3"), Resolved::Float(-500.0));
        assert_eq!(plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(plain("1."), Resolved::Float(1.0));
        assert_eq!(plain("-.inf"), Resolved::Float(f64::NEG_INFINITY));
        assert!(matches!(plain(".NaN"), Resolved::Float(f) if f.is_nan()));
        assert_eq!(
            plain("18446744073709551616"),
            Resolved::Float(18_446_744_073_709_551_616.0)
        );
    }

    #[test]
    fn keeps_strings_that_only_look_like_values() {
        for s in [
            "yes", "no", "on", "off", "y", "5m", "1.2.3", "0x", "0xG", "0o8", "inf", "nan", ".",
            "-", "+", "1e", "e3", "1_000", "0b101", "infinity", "1:30",
        ] {
            assert_eq!(plain(s), Resolved::Str(s), "{s}");
        }
        assert_eq!(resolve("5", ScalarStyle::Quoted), Resolved::Str("5"));
        assert_eq!(resolve("true", ScalarStyle::Block), Resolved::Str("true"));
    }

    #[test]
    fn converts_to_json() {
        assert_eq!(to_json("5", ScalarStyle::Plain), serde_json::json!(5));
        assert_eq!(to_json(".inf", ScalarStyle::Plain), Value::Null);
        assert_eq!(to_json("5", ScalarStyle::Quoted), serde_json::json!("5"));
        assert_eq!(kind_name("5", ScalarStyle::Plain), "an integer");
        assert_eq!(kind_name("x", ScalarStyle::Plain), "a string");
    }
}
