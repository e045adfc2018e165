//! The deserializer's error type and the wording of its messages and hints:
//! serde's raw expectations (`u32`, `struct StepRun`) become words a
//! workflow author reads (`a non-negative integer`, `a map (step run)`).

use std::fmt;

use serde::de::{self, Unexpected};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::yaml::scalar::{self, Resolved};
use crate::yaml::{FieldPath, Node, NodeValue, ScalarStyle};

/// The error type of the deserializer: a diagnostic, located or not yet.
#[derive(Debug)]
pub(crate) struct Error {
    /// The diagnostic; its span is set once the error is located.
    pub(super) diagnostic: Diagnostic,
    /// What the visitor expected, for hints.
    expected: Option<String>,
    /// Where the error was located (set with the span).
    pub(super) path: Option<FieldPath>,
    /// The field a `missing-field` error is about.
    pub(super) missing_field: Option<&'static str>,
}

impl Error {
    pub(super) fn new(code: &'static str, message: String) -> Self {
        Error {
            diagnostic: Diagnostic::error(code, message),
            expected: None,
            path: None,
            missing_field: None,
        }
    }

    fn with_hint(mut self, hint: String) -> Self {
        self.diagnostic = self.diagnostic.with_hint(hint);
        self
    }

    /// Gives the error the position of `node` (at `path`) unless an inner
    /// node already did.
    pub(super) fn locate(mut self, node: &Node, path: impl FnOnce() -> FieldPath) -> Self {
        if self.diagnostic.span().is_some() {
            return self;
        }
        let mut diagnostic = self.diagnostic.with_span(node.span);
        let path = path();
        if !path.is_empty() {
            diagnostic = diagnostic.with_path(path.to_string());
        }
        self.path = Some(path);
        if diagnostic.hint().is_none()
            && let Some(hint) = type_hint(self.expected.as_deref(), node)
        {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.diagnostic = diagnostic;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.diagnostic, f)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new("invalid-value", msg.to_string())
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        let expected = expected_words(expected);
        let mut err = Error::new(
            "invalid-type",
            format!(
                "invalid type: expected {expected}, found {}",
                unexpected_words(&unexpected)
            ),
        );
        err.expected = Some(expected);
        err
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        let expected = expected_words(expected);
        let mut err = Error::new(
            "invalid-value",
            format!(
                "invalid value: expected {expected}, found {}",
                unexpected_words(&unexpected)
            ),
        );
        err.expected = Some(expected);
        err
    }

    fn invalid_length(len: usize, expected: &dyn de::Expected) -> Self {
        Error::new(
            "invalid-length",
            format!("invalid length {len}, expected {expected}"),
        )
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        // With a close match the hint says it all; a list of 33 event names
        // next to it would bury it.
        match did_you_mean(variant, expected.iter().copied()) {
            Some(best) => Error::new("unknown-variant", format!("unknown value `{variant}`"))
                .with_hint(format!("did you mean `{best}`?")),
            None => Error::new(
                "unknown-variant",
                format!(
                    "unknown value `{variant}`, expected one of {}",
                    capped_list(expected)
                ),
            ),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new("unknown-field", format!("unknown field `{field}`"))
            .with_hint(choice_hint(field, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        let mut err = Error::new("missing-field", format!("missing field `{field}`"))
            .with_hint(format!("add `{field}: ...`"));
        err.missing_field = Some(field);
        err
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::new("duplicate-field", format!("duplicate field `{field}`"))
    }
}

/// "did you mean `x`?" or the list of choices.
pub(super) fn choice_hint(name: &str, choices: &[&str]) -> String {
    match did_you_mean(name, choices.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if choices.is_empty() => "no fields are allowed here".to_owned(),
        None => format!("expected one of: {}", choices.join(", ")),
    }
}

/// How many choices a message lists before it cuts the list short.
const LISTED_CHOICES: usize = 12;

/// `` `a`, `b`, `c` ``, cut after [`LISTED_CHOICES`] with "… (N in all)".
fn capped_list(names: &[&str]) -> String {
    let mut listed: Vec<String> = names
        .iter()
        .take(LISTED_CHOICES)
        .map(|n| format!("`{n}`"))
        .collect();
    if names.len() > LISTED_CHOICES {
        listed.push(format!("… ({} in all)", names.len()));
    }
    listed.join(", ")
}

/// The visitor's expectation in plain words (`u32` becomes `an integer`).
fn expected_words(expected: &dyn de::Expected) -> String {
    let raw = expected.to_string();
    match raw.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "option" => "a value or null".to_owned(),
        _ => match raw.strip_prefix("struct ") {
            Some(name) => format!("a map ({})", type_words(name)),
            None => raw,
        },
    }
}

fn unexpected_words(unexpected: &Unexpected<'_>) -> String {
    match unexpected {
        Unexpected::Bool(b) => format!("the boolean `{b}`"),
        Unexpected::Unsigned(n) => format!("the integer `{n}`"),
        Unexpected::Signed(n) => format!("the integer `{n}`"),
        Unexpected::Float(f) => format!("the number `{f}`"),
        Unexpected::Char(c) => format!("the character {c:?}"),
        Unexpected::Str(s) => {
            let mut shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            format!("the string {shown:?}")
        }
        Unexpected::Unit => "null".to_owned(),
        Unexpected::Seq => "a sequence".to_owned(),
        Unexpected::Map => "a map".to_owned(),
        other => other.to_string(),
    }
}

/// A hint for a type error, from what was expected and what is there.
fn type_hint(expected: Option<&str>, node: &Node) -> Option<String> {
    let expected = expected?;
    let wants_scalar = ["integer", "number", "boolean", "string"]
        .iter()
        .any(|w| expected.contains(w));
    if expected.contains("or an expression") {
        return Some(
            "write a whole number (`3`), or an expression that computes one, e.g. \
             `config.workers` or `{{ config.workers * 2 }}`"
                .to_owned(),
        );
    }
    match &node.value {
        NodeValue::Scalar {
            text,
            style: ScalarStyle::Quoted,
        } if !matches!(
            scalar::resolve(text, ScalarStyle::Plain),
            Resolved::Str(_) | Resolved::Null
        ) && wants_scalar =>
        {
            Some("remove the quotes: quoted values are always strings".to_owned())
        }
        NodeValue::Scalar { text, style }
            if expected.contains("boolean")
                && matches!(scalar::resolve(text, *style), Resolved::Str(_)) =>
        {
            Some("use true or false".to_owned())
        }
        NodeValue::Scalar { text, style }
            if (expected.contains("integer") || expected.contains("number"))
                && matches!(scalar::resolve(text, *style), Resolved::Str(_)) =>
        {
            Some("use a number, or a `{{ }}` expression where the field allows it".to_owned())
        }
        NodeValue::Map(_) if wants_scalar => Some(
            "this value is a map; check the indentation, or quote a value that contains `: `"
                .to_owned(),
        ),
        NodeValue::Seq(_) if wants_scalar => {
            Some("this value is a list; give a single value".to_owned())
        }
        _ if expected.contains("sequence") => {
            Some("write a list: each item on its own line starting with `- `".to_owned())
        }
        NodeValue::Scalar { .. } if expected.starts_with("a map") => {
            Some("write `key: value` pairs, indented on the lines below".to_owned())
        }
        _ => None,
    }
}

/// `StepRun` → `step run`; names that are not plain identifiers are kept.
pub(super) fn type_words(name: &str) -> String {
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return name.to_owned();
    }
    let chars: Vec<char> = name.chars().collect();
    let mut words = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                words.push(' ');
            }
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_read_as_words() {
        assert_eq!(type_words("StepRun"), "step run");
        assert_eq!(type_words("HTTPGetAction"), "http get action");
        assert_eq!(type_words("V1Beta"), "v1 beta");
        assert_eq!(type_words("io.k8s.Thing"), "io.k8s.Thing");
    }
}
