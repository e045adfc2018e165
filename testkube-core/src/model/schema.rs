//! JSON schemas of the value types whose serde impls are hand-written
//! (feature `schema`).
//!
//! The schemas are written in the dialect Kubernetes accepts in a CRD (a
//! structural OpenAPI v3 schema), because the CRDs are what they are for: a
//! field that takes an integer or a string uses `x-kubernetes-int-or-string`
//! (the one union Kubernetes allows), and a field whose accepted values no
//! structural schema can list (a string, a boolean or a number; a list or a
//! string) keeps any value with `x-kubernetes-preserve-unknown-fields`, so
//! the cluster never refuses a document our loader accepts. The loader then
//! refuses the rest with a clear message.
//!
//! Where the schema is narrower than the deserializer it says so here:
//! [`Quantity`] accepts a YAML float (`cpu: 0.5`) when read from a file, but
//! Kubernetes has no "number or string" type, so a cluster object must quote
//! it (`cpu: "0.5"`), as with Testkube's own CRDs.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::values::{DynamicList, Expression, IntOrExpr, Quantity};

/// An integer or a string: exactly what Kubernetes' `IntOrString` accepts.
fn int_or_string(description: &str) -> Schema {
    json_schema!({
        "description": description,
        "x-kubernetes-int-or-string": true,
        "anyOf": [{ "type": "integer" }, { "type": "string" }],
    })
}

/// Any value, kept as written.
fn any_value(description: &str) -> Schema {
    json_schema!({
        "description": description,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

impl JsonSchema for IntOrExpr {
    fn schema_name() -> Cow<'static, str> {
        "IntOrExpr".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        int_or_string("an integer, or an expression that computes one")
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        int_or_string("a quantity such as `500m`, `1Gi` or `2`, or a `{{ }}` template")
    }
}

impl JsonSchema for Expression {
    fn schema_name() -> Cow<'static, str> {
        "Expression".into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// A string, a boolean or a number (`condition: true`): no structural
    /// type covers the three, so any value is kept and the loader checks it.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        any_value("an expression (a string; a boolean or a number is read as its text)")
    }
}

impl JsonSchema for DynamicList {
    fn schema_name() -> Cow<'static, str> {
        "DynamicList".into()
    }

    fn inline_schema() -> bool {
        true
    }

    /// A list or an expression string yielding one: no structural type
    /// covers both, so any value is kept and the loader checks it.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        any_value("a list, or an expression that yields a list")
    }
}

/// Any object, for a field whose schema the CRDs leave out: the fields of
/// the workflow spec inside `parallel` (a whole workflow again), and the
/// largest Kubernetes types of `pod` (`affinity`). Testkube's CRDs stop
/// describing at the same places; without the cut one workflow CRD is
/// several MB, past the 1.5 MB etcd keeps per object. The loader still
/// reads these fields fully when a workflow runs.
pub(crate) fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Any list of objects; see [`any_object`].
pub(crate) fn any_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
    })
}
