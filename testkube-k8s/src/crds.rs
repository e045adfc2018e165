//! The CustomResourceDefinitions of the six kinds, generated from the model.
//!
//! The schemas come from the same Rust types the YAML loader reads
//! (`testkube_core::model`, `JsonSchema` behind its `schema` feature), so a
//! field added to the model reaches the cluster without a second copy to
//! keep in step. The generator is set up the way kube's
//! `#[derive(CustomResource)]` sets it up (OpenAPI 3, subschemas inlined,
//! kube's structural rewriting of enums and optional values); we do not use
//! the derive itself because the model is plain serde types shared with
//! local runs, and because the API server needs more than the derive does
//! for these types:
//!
//! - Recursion: a step holds steps, a `parallel` block a whole workflow.
//!   A CRD schema has no `$ref`, so a type met again inside itself is kept
//!   as any object (`x-kubernetes-preserve-unknown-fields`), exactly where
//!   Testkube's own CRDs stop describing (nested `steps`, `setup`, ...).
//!   The loader checks those levels when the workflow runs.
//! - `metadata` is left to the API server (a CRD may not describe it), and
//!   defaults are dropped (the API server would write them into every
//!   stored object).
//! - Keywords OpenAPI v3 in a CRD does not know (`const`, `examples`,
//!   formats such as `uint32`) are rewritten or dropped.
//!
//! `testkube crds` prints [`crds`]; install them with
//! `testkube crds | kubectl apply --server-side -f -` (a workflow CRD is
//! several hundred KB, past the annotation client-side apply writes).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::schema::{OptionalEnum, OptionalIntOrString, StructuralSchemaRewriter};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use schemars::transform::AddNullable;
use serde_json::{Map, Value, json};
use testkube_core::model::{
    DocumentKind, TestTrigger, TestWorkflow, TestWorkflowExecution, TestWorkflowTemplate, Webhook,
    WebhookTemplate,
};

/// The CRDs of TestWorkflow, TestWorkflowTemplate, TestWorkflowExecution
/// (with the status subresource), TestTrigger, Webhook and WebhookTemplate,
/// in that order, with the groups and versions Testkube uses.
pub fn crds() -> Vec<CustomResourceDefinition> {
    DocumentKind::ALL.into_iter().map(crd).collect()
}

/// The CRD of one kind.
fn crd(kind: DocumentKind) -> CustomResourceDefinition {
    let (group, version) = kind
        .api_version()
        .split_once('/')
        .unwrap_or((kind.api_version(), "v1"));
    let singular = kind.name().to_ascii_lowercase();
    let plural = format!("{singular}s");
    let (short_names, columns, schema) = match kind {
        DocumentKind::TestWorkflow => (
            vec!["tw"],
            vec![column("Description", ".description", "string")],
            schema_of::<TestWorkflow>(),
        ),
        DocumentKind::TestWorkflowTemplate => (
            vec!["twt"],
            vec![column("Description", ".description", "string")],
            schema_of::<TestWorkflowTemplate>(),
        ),
        DocumentKind::TestWorkflowExecution => (
            vec!["twe"],
            vec![
                column("Workflow", ".spec.testWorkflow.name", "string"),
                column("Execution", ".status.latestExecution.name", "string"),
                column("Status", ".status.latestExecution.result.status", "string"),
            ],
            schema_of::<TestWorkflowExecution>(),
        ),
        DocumentKind::TestTrigger => (
            vec!["tt"],
            // Testkube's columns.
            vec![
                column("Resource", ".spec.resource", "string"),
                column("Event", ".spec.event", "string"),
                column("Execution", ".spec.execution", "string"),
            ],
            schema_of::<TestTrigger>(),
        ),
        DocumentKind::Webhook => (
            vec!["wh"],
            vec![column("URI", ".spec.uri", "string")],
            schema_of::<Webhook>(),
        ),
        DocumentKind::WebhookTemplate => (
            vec!["wht"],
            vec![column("URI", ".spec.uri", "string")],
            schema_of::<WebhookTemplate>(),
        ),
    };
    let mut columns = columns;
    columns.push(column("Age", ".metadata.creationTimestamp", "date"));
    // Only the execution's status is written by a controller of ours; the
    // subresource keeps users' `apply` from overwriting it (and the
    // controller's status writes from bumping `generation`).
    let subresources =
        (kind == DocumentKind::TestWorkflowExecution).then(|| CustomResourceSubresources {
            status: Some(CustomResourceSubresourceStatus(json!({}))),
            ..CustomResourceSubresources::default()
        });
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{plural}.{group}")),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: group.to_owned(),
            names: CustomResourceDefinitionNames {
                kind: kind.name().to_owned(),
                list_kind: Some(format!("{}List", kind.name())),
                plural,
                singular: Some(singular),
                short_names: Some(short_names.into_iter().map(str::to_owned).collect()),
                // `kubectl get testkube` lists every kind.
                categories: Some(vec!["testkube".to_owned()]),
            },
            scope: "Namespaced".to_owned(),
            versions: vec![CustomResourceDefinitionVersion {
                name: version.to_owned(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema),
                }),
                subresources,
                additional_printer_columns: Some(columns),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

fn column(name: &str, json_path: &str, type_: &str) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.to_owned(),
        json_path: json_path.to_owned(),
        type_: type_.to_owned(),
        ..CustomResourceColumnDefinition::default()
    }
}

/// The structural schema of a whole document type.
fn schema_of<T: JsonSchema>() -> JSONSchemaProps {
    // The settings of kube's `#[derive(CustomResource)]`.
    let generator = SchemaSettings::openapi3()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .with_transform(AddNullable::default())
        .with_transform(StructuralSchemaRewriter)
        .with_transform(OptionalEnum)
        .with_transform(OptionalIntOrString)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(root) = schema.as_object_mut() {
        // Definitions only hold the recursive types, cut below.
        for key in ["$schema", "$defs", "definitions", "components", "title"] {
            root.remove(key);
        }
        if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
            // The API server owns `metadata` and refuses a schema of it.
            properties.insert("metadata".to_owned(), json!({ "type": "object" }));
        }
        // apiVersion and kind are set on every object the API server keeps.
        root.remove("required");
    }
    let schema = structural(schema);
    // The shape is ours and fixed: a failure here is a bug the unit tests
    // catch, not something input can cause.
    serde_json::from_value(schema).expect("a generated schema is a valid JSONSchemaProps")
}

/// The keywords a CRD's `JSONSchemaProps` knows (besides `x-kubernetes-*`).
const KEYWORDS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "nullable",
    "example",
];

/// The formats Kubernetes knows for CRD schemas; schemars also writes
/// Rust-specific ones (`uint32`, `uint`) that the API server warns about.
const FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "duration",
    "password",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// A schema that keeps any value: where the model keeps arbitrary JSON, and
/// where recursion is cut.
fn any_value(description: Option<Value>) -> Value {
    let mut schema = Map::new();
    if let Some(description) = description {
        schema.insert("description".to_owned(), description);
    }
    schema.insert(
        "x-kubernetes-preserve-unknown-fields".to_owned(),
        Value::Bool(true),
    );
    Value::Object(schema)
}

/// Rewrites one generated (sub)schema into what a CRD accepts; see the
/// module docs.
fn structural(schema: Value) -> Value {
    let Value::Object(mut object) = schema else {
        // `true` (serde_json::Value, any value) or `false` (never produced).
        return any_value(None);
    };
    if object.contains_key("$ref") {
        // A recursive type met again inside itself.
        let description = object.remove("description");
        let mut cut = any_value(description);
        if let Some(map) = cut.as_object_mut() {
            map.insert("type".to_owned(), json!("object"));
        }
        return cut;
    }
    if let Some(value) = object.remove("const") {
        object.insert("enum".to_owned(), json!([value]));
    }
    if object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| !FORMATS.contains(&format))
    {
        object.remove("format");
    }
    // Rust integer types say `minimum: 0` for unsigned ones; keep that, but
    // schemars' 64-bit bounds are noise.
    object.retain(|key, _| KEYWORDS.contains(&key.as_str()) || key.starts_with("x-kubernetes-"));
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for (_, property) in properties.iter_mut() {
            *property = structural(property.take());
        }
    }
    if let Some(items) = object.get_mut("items") {
        *items = structural(items.take());
    }
    if let Some(additional) = object.get_mut("additionalProperties") {
        *additional = structural(additional.take());
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = object.get_mut(junctor) {
            for branch in branches.iter_mut() {
                if let Value::Object(branch) = branch {
                    branch.remove("description");
                }
            }
        }
    }
    let typed = object.contains_key("type")
        || object.contains_key("x-kubernetes-int-or-string")
        || object.contains_key("x-kubernetes-preserve-unknown-fields");
    if !typed {
        // No type and nothing else that stands in for one: any value.
        let description = object.remove("description");
        let nullable = object.remove("nullable");
        let mut any = any_value(description);
        if let (Some(nullable), Some(map)) = (nullable, any.as_object_mut()) {
            map.insert("nullable".to_owned(), nullable);
        }
        return any;
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Kubernetes rules for structural schemas that our rewriting is
    /// relied upon to meet (the API server refuses a CRD that breaks one):
    /// every node has a type (or int-or-string / preserve-unknown-fields),
    /// no `$ref`, no type/description/default/nullable inside a junctor
    /// other than the int-or-string pattern, `properties` and
    /// `additionalProperties` never together, arrays with `items`, no
    /// `uniqueItems: true`, and only known keywords.
    fn structural_violations(schema: &Value, path: &str, found: &mut Vec<String>) {
        let Some(object) = schema.as_object() else {
            found.push(format!("{path}: not an object schema"));
            return;
        };
        for key in object.keys() {
            if !KEYWORDS.contains(&key.as_str()) && !key.starts_with("x-kubernetes-") {
                found.push(format!("{path}: keyword `{key}` unknown to CRDs"));
            }
        }
        let typed = object.contains_key("type")
            || object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
            || object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if !typed {
            found.push(format!("{path}: no type"));
        }
        if let Some(Value::String(kind)) = object.get("type") {
            if !["object", "array", "string", "integer", "number", "boolean"]
                .contains(&kind.as_str())
            {
                found.push(format!("{path}: type `{kind}`"));
            }
            if kind == "array" && !object.contains_key("items") {
                found.push(format!("{path}: array without items"));
            }
        } else if object.contains_key("type") {
            found.push(format!("{path}: type is not a single string"));
        }
        if object.contains_key("properties") && object.contains_key("additionalProperties") {
            found.push(format!(
                "{path}: properties and additionalProperties together"
            ));
        }
        let int_or_string = object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        for junctor in ["allOf", "anyOf", "oneOf", "not"] {
            let Some(branches) = object.get(junctor) else {
                continue;
            };
            let branches = match branches {
                Value::Array(branches) => branches.clone(),
                other => vec![other.clone()],
            };
            for branch in &branches {
                let pattern = int_or_string
                    && junctor == "anyOf"
                    && (branch == &json!({"type": "integer"})
                        || branch == &json!({"type": "string"}));
                if pattern {
                    continue;
                }
                for banned in ["type", "description", "default", "nullable"] {
                    if branch.get(banned).is_some() {
                        found.push(format!("{path}.{junctor}: sets `{banned}`"));
                    }
                }
            }
        }
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (name, property) in properties {
                structural_violations(property, &format!("{path}.{name}"), found);
            }
        }
        if let Some(items) = object.get("items") {
            structural_violations(items, &format!("{path}[]"), found);
        }
        if let Some(additional) = object.get("additionalProperties") {
            structural_violations(additional, &format!("{path}.*"), found);
        }
    }

    fn schema_json(crd: &CustomResourceDefinition) -> Value {
        serde_json::to_value(&crd.spec.versions[0].schema).expect("serializes")["openAPIV3Schema"]
            .clone()
    }

    #[test]
    fn every_schema_is_structural() {
        for crd in crds() {
            let mut found = Vec::new();
            structural_violations(&schema_json(&crd), "", &mut found);
            assert!(found.is_empty(), "{}: {found:#?}", crd.spec.names.kind);
        }
    }

    #[test]
    fn recursion_is_cut_where_testkube_stops_describing() {
        let crd = &crds()[0];
        let schema = schema_json(crd);
        let step = &schema["properties"]["spec"]["properties"]["steps"]["items"];
        assert_eq!(step["properties"]["shell"]["type"], "string");
        let nested = &step["properties"]["steps"]["items"];
        assert_eq!(nested["type"], "object", "{nested}");
        assert_eq!(nested["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(
            step["properties"]["parallel"]["properties"]["count"]["x-kubernetes-int-or-string"],
            true
        );
    }

    #[test]
    fn names_groups_and_subresources_are_testkube_s() {
        let crds = crds();
        let names: Vec<_> = crds
            .iter()
            .map(|crd| crd.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "testworkflows.testworkflows.testkube.io",
                "testworkflowtemplates.testworkflows.testkube.io",
                "testworkflowexecutions.testworkflows.testkube.io",
                "testtriggers.tests.testkube.io",
                "webhooks.executor.testkube.io",
                "webhooktemplates.executor.testkube.io",
            ]
        );
        for crd in &crds {
            let has_status = crd.spec.versions[0].subresources.is_some();
            assert_eq!(
                has_status,
                crd.spec.names.kind == "TestWorkflowExecution",
                "{}",
                crd.spec.names.kind
            );
        }
        let execution = schema_json(&crds[2]);
        let status = &execution["properties"]["status"]["properties"];
        assert_eq!(status["generation"]["type"], "integer");
        assert_eq!(status["error"]["type"], "string");
        let latest = &status["latestExecution"]["properties"];
        assert_eq!(latest["scheduledAt"]["format"], "date-time");
        assert_eq!(latest["result"]["properties"]["status"]["type"], "string");
    }
}
