//! The JSON shapes of the API, in Testkube's field names (so its users'
//! scripts and tools keep working), and how they are built from stored
//! records. Public, so that clients (the CLI's `--server` mode, embedders)
//! read answers with the same types the server writes.
//!
//! Where we add something (test totals, every worker's steps, why a run
//! ended), it is an extra field; no Testkube field is renamed.

mod execution;
mod records;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use testkube_core::model::TestWorkflow;

pub use execution::{
    ConfigParam, Details, Execution, ExecutionList, Output, ResultJson, Signature, StepJson,
    StepState, TestCounts, Totals, WorkflowRef,
};
pub use records::{Artifact, TestCase, artifact_name};

/// The worker path of a run's main worker.
pub const ROOT_WORKER: &str = "root";

/// A workflow or template in the API form (`{name, namespace, description,
/// labels, annotations, spec}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    /// Its name.
    pub name: String,
    /// Its namespace, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The spec, as in the YAML.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub spec: Value,
}

impl Definition {
    /// The API form of a definition.
    #[must_use]
    pub fn of(definition: &TestWorkflow) -> Self {
        let meta = &definition.metadata;
        Definition {
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone(),
            description: definition.description.clone(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            spec: serde_json::to_value(&definition.spec).unwrap_or(Value::Null),
        }
    }

    /// The document form (`apiVersion`, `kind`, `metadata`, `spec`) of this
    /// definition, as `kind`.
    #[must_use]
    pub fn to_document(&self, kind: &str) -> Value {
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), Value::String(self.name.clone()));
        if let Some(namespace) = &self.namespace {
            metadata.insert("namespace".into(), Value::String(namespace.clone()));
        }
        let map = |entries: &BTreeMap<String, String>| {
            Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), Value::String(value.clone())))
                    .collect(),
            )
        };
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), map(&self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), map(&self.annotations));
        }
        let mut document = serde_json::Map::new();
        document.insert(
            "apiVersion".into(),
            Value::String(testkube_core::model::API_VERSION_WORKFLOWS.to_owned()),
        );
        document.insert("kind".into(), Value::String(kind.to_owned()));
        document.insert("metadata".into(), Value::Object(metadata));
        if let Some(description) = &self.description {
            document.insert("description".into(), Value::String(description.clone()));
        }
        document.insert("spec".into(), self.spec.clone());
        Value::Object(document)
    }
}

/// What `POST /v1/test-workflows/{name}/executions` takes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunBody {
    /// A custom execution name (not supported yet: must be empty).
    #[schema(max_length = 0)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Config values (strings are cast to the parameters' types).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    /// Tags of the execution.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Accepted for compatibility; no webhooks are called yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_webhooks: Option<bool>,
    /// Accepted for compatibility; this server runs everything itself.
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
    /// Who or what asked for the run (`{interface: {type}, actor: {name, type}}`).
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_context: Option<Value>,
}

/// One live notification (an SSE `data:` line): `{ts, seqNo, ref, log |
/// output | result, temporary}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// Its position in the execution's stream (also the SSE `id`).
    pub seq_no: u64,
    /// The step it is about (empty for the execution).
    #[serde(rename = "ref")]
    pub step: String,
    /// Output of the step, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// An output the step wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// The execution's result as it now stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultJson>,
    /// Always `false`: every notification is kept.
    pub temporary: bool,
}

impl Notification {
    /// An empty notification about `step` at `ts` (its `seqNo` is set when
    /// it is numbered).
    #[must_use]
    pub fn about(step: &str, ts: DateTime<Utc>) -> Self {
        Notification {
            ts,
            seq_no: 0,
            step: step.to_owned(),
            log: None,
            output: None,
            result: None,
            temporary: false,
        }
    }
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// The server's version.
    pub version: String,
    /// Always `testkube-rs`.
    pub commit: String,
    /// Where runs execute (`local`, `kubernetes`).
    pub executor: String,
    /// Whether requests need a token.
    pub auth: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_form_round_trips_to_the_document_form() {
        let definition = Definition {
            name: "smoke".into(),
            namespace: None,
            description: Some("checks".into()),
            labels: BTreeMap::from([("team".into(), "web".into())]),
            annotations: BTreeMap::new(),
            spec: serde_json::json!({"steps": [{"shell": "true"}]}),
        };
        let document = definition.to_document("TestWorkflow");
        let workflow: TestWorkflow = serde_json::from_value(document).unwrap();
        assert_eq!(Definition::of(&workflow), definition);
    }
}
