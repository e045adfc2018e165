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

mod error;

use std::cell::RefCell;

use serde::de::{self, DeserializeSeed, Unexpected, Visitor};

use self::error::{Error, choice_hint, type_words};
use super::path::{FieldPath, PathSeg};
use super::scalar::{self, Resolved};
use super::{Node, NodeValue, ScalarStyle};
use crate::diagnostic::Diagnostic;

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
/// Map keys are read as text (`1: x` gives the key `"1"`) unless the map's
/// key type asks for numbers. Kubernetes `Quantity` values keep their text
/// (`cpu: 1.10` stays `1.10`).
#[must_use]
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> (Option<T>, Vec<Diagnostic>) {
    let (result, collected) = read_once::<T>(node);
    let mut diagnostics: Vec<Diagnostic> = collected.into_iter().map(|(_, d)| d).collect();
    let value = match result {
        Ok(value) => Some(value),
        Err(fatal) => {
            diagnostics.push(fatal.diagnostic);
            None
        }
    };
    diagnostics.sort_by_key(|d| d.span().map_or(usize::MAX, |s| s.offset));
    (value, diagnostics)
}

/// The error that stopped one deserialization pass, with where it happened.
pub(super) struct Fatal {
    pub(super) diagnostic: Diagnostic,
    /// The field path of the node the error is at (`None` when unknown).
    pub(super) path: Option<FieldPath>,
    /// For a `missing-field` error, the field.
    pub(super) missing_field: Option<&'static str>,
}

/// One deserialization pass: the value or the error that stopped it, and
/// the non-fatal diagnostics (unknown fields) with their field paths, in the
/// order found.
pub(super) fn read_once<T: de::DeserializeOwned>(
    node: &Node,
) -> (Result<T, Fatal>, Vec<(FieldPath, Diagnostic)>) {
    let ctx = Ctx::default();
    let root = Path::Root;
    let result = T::deserialize(NodeDe::new(node, &root, &ctx)).map_err(|err| Fatal {
        diagnostic: err.diagnostic,
        path: err.path,
        missing_field: err.missing_field,
    });
    (result, ctx.diagnostics.into_inner())
}

/// Problems that do not stop deserialization, with their field paths.
#[derive(Default)]
struct Ctx {
    diagnostics: RefCell<Vec<(FieldPath, Diagnostic)>>,
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

/// How scalars answer `deserialize_any`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain scalars resolved to booleans and numbers.
    Resolved,
    /// Every scalar is its text: map keys, and string-like newtypes
    /// (Kubernetes `Quantity`, where `cpu: 1.10` must stay `1.10`).
    Text,
}

/// The deserializer for one node: where it is, and the shared collector.
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
        result.map_err(|e| e.locate(self.node, || self.path.to_field_path()))
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
            // serde's derived structs also read sequences, field by field
            // in declaration order: `- [a, b]` would silently become a step
            // with `id: a` and `name: b`.
            NodeValue::Seq(_) => Err(de::Error::invalid_type(
                Unexpected::Seq,
                &format!("a map ({})", type_words(name)).as_str(),
            )),
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
        let path = Path::Key(self.path, key).to_field_path();
        let diagnostic = Diagnostic::error("unknown-field", message)
            .with_span(key.span)
            .with_path(path.to_string())
            .with_hint(choice_hint(&field, fields));
        self.ctx.diagnostics.borrow_mut().push((path, diagnostic));
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
                .locate(value, || path.to_field_path()))
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
    fn map_keys_are_text_even_when_they_look_like_numbers() {
        let (map, diags) =
            from_node::<std::collections::BTreeMap<String, u8>>(&node("1: 1\ntrue: 2\n0x10: 3\n"));
        assert!(diags.is_empty());
        let keys: Vec<_> = map.unwrap().into_keys().collect();
        assert_eq!(keys, ["0x10", "1", "true"]);
        let (map, _) = from_node::<std::collections::BTreeMap<u16, bool>>(&node("8080: true\n"));
        assert!(map.unwrap()[&8080]);
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
