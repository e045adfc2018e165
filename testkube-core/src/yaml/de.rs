//! A serde deserializer over a loaded [`Node`] tree.
//!
//! It exists so the model's plain `#[derive(Deserialize)]` types get
//! workflow-grade errors: every unknown field in a document is reported (with
//! a "did you mean" hint) instead of only the first, and every error carries
//! the span and field path of the innermost node it happened at.
//!
//! Unknown fields are found in `deserialize_struct`, which knows the field
//! list: the entry is recorded as a diagnostic and skipped, so the struct's
//! visitor never sees it and deserialization goes on. Type errors are fatal
//! for the document (serde visitors cannot resume), and are located while
//! they unwind: the first node that sees an error without a span attaches its
//! own.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Unexpected, Visitor};

use super::path::{FieldPath, PathSeg};
use super::scalar::{self, Resolved};
use super::{Node, NodeValue, ScalarStyle};
use crate::diagnostic::{Diagnostic, did_you_mean};

/// Reads a typed value from a loaded node, collecting every problem.
///
/// Returns `(Some(value), diagnostics)` when a value could be built (the
/// diagnostics, e.g. `unknown-field`, are still errors to report) and
/// `(None, diagnostics)` when a type error stopped deserialization; that
/// error is then among the diagnostics. Diagnostics are in source order.
///
/// Any scalar is accepted where a string is expected (`value: 5` gives
/// `"5"`); booleans and numbers are only read from plain (unquoted) scalars.
/// A null is read as an empty mapping or sequence where one is expected.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> (Option<T>, Vec<Diagnostic>) {
    let ctx = Ctx::default();
    let root = Path::Root;
    let result = T::deserialize(NodeDe::new(node, &root, &ctx));
    let mut diagnostics = ctx.diagnostics.into_inner();
    let value = match result {
        Ok(value) => Some(value),
        Err(err) => {
            diagnostics.push(*err.diagnostic);
            None
        }
    };
    diagnostics.sort_by_key(|d| d.span().map_or(usize::MAX, |s| s.offset));
    (value, diagnostics)
}

/// Problems that do not stop deserialization.
#[derive(Default)]
struct Ctx {
    diagnostics: RefCell<Vec<Diagnostic>>,
}

/// Where a node is, as a stack-allocated linked list, turned into a
/// [`FieldPath`] only when an error needs it.
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p Node),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    fn to_field_path(&self) -> FieldPath {
        let mut segments = Vec::new();
        let mut current = self;
        loop {
            match current {
                Path::Root => break,
                Path::Key(parent, key) => {
                    segments.push(PathSeg::Key(key.key_string()));
                    current = parent;
                }
                Path::Index(parent, index) => {
                    segments.push(PathSeg::Index(*index));
                    current = parent;
                }
            }
        }
        segments.reverse();
        FieldPath::from(segments)
    }
}

/// The error type of the deserializer: a diagnostic, located or not yet.
#[derive(Debug)]
pub(crate) struct Error {
    diagnostic: Box<Diagnostic>,
    /// What the visitor expected, for hints.
    expected: Option<String>,
}

impl Error {
    fn new(code: &'static str, message: String) -> Self {
        Error {
            diagnostic: Box::new(Diagnostic::error(code, message)),
            expected: None,
        }
    }

    fn with_hint(mut self, hint: String) -> Self {
        *self.diagnostic = self.diagnostic.with_hint(hint);
        self
    }

    /// Gives the error the position of `node` unless an inner node already did.
    fn locate(mut self, node: &Node, path: &Path<'_>) -> Self {
        if self.diagnostic.span().is_some() {
            return self;
        }
        let mut diagnostic = self.diagnostic.with_span(node.span);
        let path = path.to_field_path();
        if !path.is_empty() {
            diagnostic = diagnostic.with_path(path.to_string());
        }
        if diagnostic.hint().is_none()
            && let Some(hint) = type_hint(self.expected.as_deref(), node)
        {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.diagnostic = Box::new(diagnostic);
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
        Error::new(
            "invalid-value",
            format!(
                "invalid value: expected {}, found {}",
                expected_words(expected),
                unexpected_words(&unexpected)
            ),
        )
    }

    fn invalid_length(len: usize, expected: &dyn de::Expected) -> Self {
        Error::new(
            "invalid-length",
            format!("invalid length {len}, expected {expected}"),
        )
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(
            "unknown-variant",
            format!(
                "unknown value `{variant}`, expected one of {}",
                backticked(expected)
            ),
        )
        .with_hint(choice_hint(variant, expected))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new("unknown-field", format!("unknown field `{field}`"))
            .with_hint(choice_hint(field, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        Error::new("missing-field", format!("missing field `{field}`"))
            .with_hint(format!("add `{field}: ...`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::new("duplicate-field", format!("duplicate field `{field}`"))
    }
}

/// "did you mean `x`?" or the list of choices.
fn choice_hint(name: &str, choices: &[&str]) -> String {
    match did_you_mean(name, choices.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if choices.is_empty() => "no fields are allowed here".to_owned(),
        None => format!("expected one of: {}", choices.join(", ")),
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
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
fn type_words(name: &str) -> String {
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

/// How scalars answer `deserialize_any`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain scalars resolved to booleans and numbers.
    Resolved,
    /// Every scalar is its text: map keys, and string-like newtypes
    /// (Kubernetes `Quantity`, where `cpu: 1.10` must stay `1.10`).
    Text,
}

#[derive(Clone, Copy)]
struct NodeDe<'a, 'p> {
    node: &'a Node,
    path: &'p Path<'p>,
    ctx: &'p Ctx,
    mode: Mode,
}

impl<'a, 'p> NodeDe<'a, 'p> {
    fn new(node: &'a Node, path: &'p Path<'p>, ctx: &'p Ctx) -> Self {
        NodeDe {
            node,
            path,
            ctx,
            mode: Mode::Resolved,
        }
    }

    fn locate<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| e.locate(self.node, self.path))
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.value {
            NodeValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    fn visit_seq<V: Visitor<'a>>(self, items: &'a [Node], visitor: V) -> Result<V::Value, Error> {
        let mut access = SeqDe {
            items: items.iter().enumerate(),
            path: self.path,
            ctx: self.ctx,
        };
        let value = visitor.visit_seq(&mut access)?;
        match access.items.len() {
            0 => Ok(value),
            left => Err(de::Error::invalid_length(
                items.len() - left,
                &"fewer elements",
            )),
        }
    }

    fn visit_map<V: Visitor<'a>>(
        self,
        entries: &'a [(Node, Node)],
        fields: Option<(&'static str, &'static [&'static str])>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(MapDe {
            entries: entries.iter(),
            value: None,
            fields,
            path: self.path,
            ctx: self.ctx,
        })
    }
}

impl<'a> de::Deserializer<'a> for NodeDe<'a, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Scalar { text, .. } if self.mode == Mode::Text => {
                visitor.visit_borrowed_str(text)
            }
            NodeValue::Scalar { text, style } => match scalar::resolve(text, *style) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::UInt(n) => visitor.visit_u64(n),
                Resolved::Int(n) => visitor.visit_i64(n),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(_) => visitor.visit_borrowed_str(text),
            },
            NodeValue::Seq(items) => self.visit_seq(items, visitor),
            NodeValue::Map(entries) => self.visit_map(entries, None, visitor),
        };
        self.locate(result)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.text() {
            Some(text) => self.locate(visitor.visit_borrowed_str(text)),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        };
        self.locate(result)
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let inner = NodeDe {
            mode: if name == "Quantity" {
                Mode::Text
            } else {
                self.mode
            },
            ..self
        };
        self.locate(visitor.visit_newtype_struct(inner))
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            return self.locate(self.visit_seq(&[], visitor));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            return self.locate(self.visit_map(&[], None, visitor));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            NodeValue::Null => self.visit_map(&[], Some((name, fields)), visitor),
            NodeValue::Map(entries) => self.visit_map(entries, Some((name, fields)), visitor),
            _ => return self.deserialize_any(visitor),
        };
        self.locate(result)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            NodeValue::Scalar { .. } => visitor.visit_enum(EnumDe {
                variant: self,
                value: None,
            }),
            NodeValue::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(EnumDe {
                    variant: NodeDe {
                        node: key,
                        mode: Mode::Text,
                        ..self
                    },
                    value: Some(value),
                })
            }
            _ => Err(Error::new(
                "invalid-type",
                format!(
                    "invalid type: expected {} (a name, or a map with one `name: value` entry), found {}",
                    type_words(name),
                    self.node.kind_name()
                ),
            )),
        };
        self.locate(result)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bytes byte_buf
    }

    scalar_methods! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64
    }
}

/// Booleans and numbers: resolved from plain scalars, and also from map keys
/// of any quoting (`"8080": x` in a map with integer keys).
macro_rules! scalar_methods {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
                self.deserialize_typed_scalar(visitor)
            }
        )*
    };
}
use scalar_methods;

impl<'a> NodeDe<'a, '_> {
    fn deserialize_typed_scalar<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let NodeValue::Scalar { text, .. } = &self.node.value else {
            return de::Deserializer::deserialize_any(self, visitor);
        };
        if self.mode != Mode::Text {
            return de::Deserializer::deserialize_any(self, visitor);
        }
        let result = match scalar::resolve(text, ScalarStyle::Plain) {
            Resolved::Bool(b) => visitor.visit_bool(b),
            Resolved::UInt(n) => visitor.visit_u64(n),
            Resolved::Int(n) => visitor.visit_i64(n),
            Resolved::Float(f) => visitor.visit_f64(f),
            Resolved::Null | Resolved::Str(_) => visitor.visit_borrowed_str(text),
        };
        self.locate(result)
    }
}

struct SeqDe<'a, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'p Path<'p>,
    ctx: &'p Ctx,
}

impl<'a> de::SeqAccess<'a> for SeqDe<'a, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((index, item)) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Index(self.path, index);
        seed.deserialize(NodeDe::new(item, &path, self.ctx))
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// Map access for both plain maps and structs; for structs (`fields` set),
/// keys that are not fields are reported and skipped.
struct MapDe<'a, 'p> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, &'a Node)>,
    fields: Option<(&'static str, &'static [&'static str])>,
    path: &'p Path<'p>,
    ctx: &'p Ctx,
}

impl MapDe<'_, '_> {
    fn report_unknown_field(&self, key: &Node, name: &str, fields: &[&str]) {
        let field = key.key_string();
        let message = if name.is_empty() {
            format!("unknown field `{field}`")
        } else {
            format!("unknown field `{field}` in {}", type_words(name))
        };
        let path = Path::Key(self.path, key);
        let diagnostic = Diagnostic::error("unknown-field", message)
            .with_span(key.span)
            .with_path(path.to_field_path().to_string())
            .with_hint(choice_hint(&field, fields));
        self.ctx.diagnostics.borrow_mut().push(diagnostic);
    }
}

impl<'a> de::MapAccess<'a> for MapDe<'a, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        loop {
            let Some((key, value)) = self.entries.next() else {
                return Ok(None);
            };
            if let Some((name, fields)) = self.fields {
                let known = key
                    .key_text()
                    .is_some_and(|text| fields.contains(&text.as_ref()));
                if !known {
                    self.report_unknown_field(key, name, fields);
                    continue;
                }
            }
            self.value = Some((key, value));
            let path = Path::Key(self.path, key);
            let key_de = NodeDe {
                mode: Mode::Text,
                ..NodeDe::new(key, &path, self.ctx)
            };
            return seed.deserialize(key_de).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom(
                "a map value was requested before its key",
            ));
        };
        let path = Path::Key(self.path, key);
        seed.deserialize(NodeDe::new(value, &path, self.ctx))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum written as `Variant` or `{Variant: value}`.
struct EnumDe<'a, 'p> {
    variant: NodeDe<'a, 'p>,
    value: Option<&'a Node>,
}

impl<'a, 'p> de::EnumAccess<'a> for EnumDe<'a, 'p> {
    type Error = Error;
    type Variant = VariantDe<'a, 'p>;

    fn variant_seed<V: DeserializeSeed<'a>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(self.variant)?;
        Ok((
            variant,
            VariantDe {
                key: self.variant,
                value: self.value,
            },
        ))
    }
}

struct VariantDe<'a, 'p> {
    key: NodeDe<'a, 'p>,
    value: Option<&'a Node>,
}

impl<'a> VariantDe<'a, '_> {
    /// Runs `f` on the variant's value, or fails if it has none.
    fn with_value<T>(
        self,
        expected: &str,
        f: impl FnOnce(NodeDe<'a, '_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match self.value {
            Some(value) => {
                let path = Path::Key(self.key.path, self.key.node);
                f(NodeDe::new(value, &path, self.key.ctx))
            }
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &expected)),
        }
    }
}

impl<'a> de::VariantAccess<'a> for VariantDe<'a, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(value) if value.is_null() => Ok(()),
            Some(value) => {
                let path = Path::Key(self.key.path, self.key.node);
                Err(Error::new(
                    "invalid-type",
                    format!(
                        "invalid type: `{}` takes no value, found {}",
                        self.key.node.key_string(),
                        value.kind_name()
                    ),
                )
                .locate(value, &path))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        self.with_value("a `name: value` entry", |de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.with_value("a `name: [values]` entry", |de| {
            de::Deserializer::deserialize_seq(de, visitor)
        })
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.with_value("a `name: {fields}` entry", |de| {
            de::Deserializer::deserialize_struct(de, "", fields, visitor)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{LoadOptions, load_documents};

    fn node(source: &str) -> Node {
        let mut docs = load_documents(source, &LoadOptions::default()).unwrap();
        docs.remove(0)
    }

    #[test]
    fn type_names_read_as_words() {
        assert_eq!(type_words("StepRun"), "step run");
        assert_eq!(type_words("HTTPGetAction"), "http get action");
        assert_eq!(type_words("V1Beta"), "v1 beta");
        assert_eq!(type_words("io.k8s.Thing"), "io.k8s.Thing");
    }

    #[test]
    fn map_keys_are_text_even_when_they_look_like_numbers() {
        let (map, diags) =
            from_node::<std::collections::BTreeMap<String, u8>>(&node("1: 1\ntrue: 2\n0x10: 3\n"));
        assert!(diags.is_empty());
        let keys: Vec<_> = map.unwrap().into_keys().collect();
        assert_eq!(keys, ["0x10", "1", "true"]);
        let (map, _) = from_node::<std::collections::BTreeMap<u16, bool>>(&node("8080: true\n"));
        assert_eq!(map.unwrap()[&8080], true);
    }

    #[test]
    fn unit_variants_refuse_values_and_data_variants_need_them() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Policy {
            Always,
            Retry(u32),
        }
        let (value, diags) = from_node::<Policy>(&node("always: 5\n"));
        assert!(value.is_none());
        assert_eq!(
            diags[0].message(),
            "invalid type: `always` takes no value, found an integer"
        );
        assert_eq!(diags[0].span().map(|s| s.start.column), Some(9));
        let (value, _) = from_node::<Policy>(&node("always: \n"));
        assert_eq!(value, Some(Policy::Always));
        let (value, _) = from_node::<Policy>(&node("retry: 3\n"));
        assert_eq!(value, Some(Policy::Retry(3)));
        let (_, diags) = from_node::<Policy>(&node("- retry\n"));
        assert_eq!(diags[0].code(), "invalid-type");
    }

    #[test]
    fn tuples_report_extra_elements() {
        let (value, diags) = from_node::<(u8, u8)>(&node("[1, 2, 3]\n"));
        assert!(value.is_none());
        assert_eq!(diags[0].code(), "invalid-length");
    }
}
