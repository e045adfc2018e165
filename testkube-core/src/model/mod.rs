//! The typed model of every resource in the TestWorkflow format: workflows,
//! templates, executions, triggers and webhooks.
//!
//! The types mirror the public Testkube CRDs field for field, so an existing
//! document loads unchanged and serializes back to the same data (fields are
//! optional and skipped when empty, so output stays minimal). Values that may
//! be `{{ }}` expressions keep the text the user wrote ([`IntOrExpr`],
//! [`Expression`], [`DynamicList`], [`Duration`], [`Quantity`]); resolving them
//! is the resolver's job, checking them the validator's.
//!
//! Deliberate rules, relied upon by the YAML loader: no `#[serde(flatten)]`
//! and no `#[serde(untagged)]` anywhere, so every struct hands serde its
//! complete field list and unknown fields (typos) can be reported with a
//! "did you mean" hint. Shared field groups (container fields, worker
//! strategy, workflow spec in `parallel`) are therefore written out in each
//! struct, with conversion helpers such as [`StepRun::container`] and
//! [`Parallel::worker_spec`].
//!
//! Our one extension of the format is [`Balance`] (`parallel.balance`).

mod container;
mod content;
mod execute;
mod execution;
mod parallel;
mod params;
#[cfg(feature = "schema")]
mod schema;
mod service;
mod step;
mod trigger;
mod values;
mod webhook;
mod workflow;

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

pub use container::{
    ContainerConfig, EnvVar, ImagePullPolicy, JobConfig, PodConfig, PodSecurityContext, Resources,
    SecurityContext,
};
pub use content::{Content, ContentFile, ContentTarball, GitAuthType, GitContent, OciContent};
pub use execute::{Execute, ExecuteWorkflow, TarballRequest};
pub use execution::{
    ExecutionDocumentStatus, ExecutionRequest, ExecutionResult, ExecutionSpec, LatestExecution,
    LatestExecutionResult, StepResult, TestWorkflowExecution, go_duration,
};
pub use parallel::{Balance, BalanceBy, Fetch, Parallel, Transfer, WorkerStrategy};
pub use params::{ParameterSchema, ParameterType};
pub use service::{Service, ServiceRestartPolicy};
pub use step::{Artifacts, CacheScope, Compression, Retry, Step, StepCache, StepRun};
pub use trigger::{
    ActionParameters, ConcurrencyPolicy, ConditionSpec, ConditionStatus, ContentSelector,
    FieldMatch, GitPullRequest, GitWatch, HttpProbe, MatchOperator, ProbeSpec, ResourceCondition,
    ResourceRef, TestTrigger, TriggerAction, TriggerEvent, TriggerExecution, TriggerResource,
    TriggerSelector, TriggerSpec,
};
pub(crate) use values::has_template;
pub use values::{Duration, DurationError, DynamicList, Expression, IntOrExpr, Quantity};
pub use webhook::{
    SecretRef, Webhook, WebhookConfigValue, WebhookEvent, WebhookParameter, WebhookSpec,
    WebhookTemplate, WebhookTemplateRef,
};
pub use workflow::{
    Concurrency, CronJob, Event, ExecutionDefaults, NotificationsConfig, SchedulerPolicy,
    SystemConfig, Target, TemplateRef, TestWorkflow, TestWorkflowTemplate, Timeouts, WorkflowSpec,
};

/// `apiVersion` of workflows, templates and executions.
pub const API_VERSION_WORKFLOWS: &str = "testworkflows.testkube.io/v1";
/// `apiVersion` of test triggers.
pub const API_VERSION_TRIGGERS: &str = "tests.testkube.io/v1";
/// `apiVersion` of webhooks and webhook templates.
pub const API_VERSION_WEBHOOKS: &str = "executor.testkube.io/v1";

/// The kinds of document this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentKind {
    /// `TestWorkflow`.
    TestWorkflow,
    /// `TestWorkflowTemplate`.
    TestWorkflowTemplate,
    /// `TestWorkflowExecution`.
    TestWorkflowExecution,
    /// `TestTrigger`.
    TestTrigger,
    /// `Webhook`.
    Webhook,
    /// `WebhookTemplate`.
    WebhookTemplate,
}

impl DocumentKind {
    /// Every supported kind.
    pub const ALL: [DocumentKind; 6] = [
        DocumentKind::TestWorkflow,
        DocumentKind::TestWorkflowTemplate,
        DocumentKind::TestWorkflowExecution,
        DocumentKind::TestTrigger,
        DocumentKind::Webhook,
        DocumentKind::WebhookTemplate,
    ];

    /// The `kind` as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            DocumentKind::TestWorkflow => "TestWorkflow",
            DocumentKind::TestWorkflowTemplate => "TestWorkflowTemplate",
            DocumentKind::TestWorkflowExecution => "TestWorkflowExecution",
            DocumentKind::TestTrigger => "TestTrigger",
            DocumentKind::Webhook => "Webhook",
            DocumentKind::WebhookTemplate => "WebhookTemplate",
        }
    }

    /// The `apiVersion` documents of this kind must have.
    pub fn api_version(self) -> &'static str {
        match self {
            DocumentKind::TestWorkflow
            | DocumentKind::TestWorkflowTemplate
            | DocumentKind::TestWorkflowExecution => API_VERSION_WORKFLOWS,
            DocumentKind::TestTrigger => API_VERSION_TRIGGERS,
            DocumentKind::Webhook | DocumentKind::WebhookTemplate => API_VERSION_WEBHOOKS,
        }
    }

    /// Finds the kind of a document from its `apiVersion` and `kind` fields.
    pub fn resolve(api_version: Option<&str>, kind: Option<&str>) -> Result<Self, KindError> {
        let kind = kind.ok_or(KindError::MissingKind)?;
        let found = DocumentKind::ALL
            .into_iter()
            .find(|known| known.name() == kind)
            .ok_or_else(|| KindError::UnknownKind {
                kind: kind.to_owned(),
                suggestion: closest_kind(kind),
            })?;
        match api_version {
            None => Err(KindError::MissingApiVersion { kind: found }),
            Some(version) if version == found.api_version() => Ok(found),
            Some(version) => Err(KindError::WrongApiVersion {
                kind: found,
                found: version.to_owned(),
            }),
        }
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn closest_kind(kind: &str) -> Option<DocumentKind> {
    let lower = kind.to_ascii_lowercase();
    DocumentKind::ALL
        .into_iter()
        .map(|known| {
            let distance = strsim::levenshtein(&lower, &known.name().to_ascii_lowercase());
            (distance, known)
        })
        .filter(|(distance, known)| *distance <= 3.max(known.name().len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Why a document's `apiVersion`/`kind` pair is not one we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// No `kind` field.
    #[error("missing `kind`; supported kinds: {}", supported_kinds())]
    MissingKind,
    /// A `kind` we do not know.
    #[error("unknown kind `{kind}`{}; supported kinds: {}", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), supported_kinds())]
    UnknownKind {
        /// The kind as written.
        kind: String,
        /// The closest supported kind, if any is close.
        suggestion: Option<DocumentKind>,
    },
    /// No `apiVersion` field.
    #[error("missing `apiVersion`; a {kind} needs `apiVersion: {}`", kind.api_version())]
    MissingApiVersion {
        /// The document's kind.
        kind: DocumentKind,
    },
    /// An `apiVersion` that does not go with the kind.
    #[error("unsupported apiVersion `{found}` for kind {kind}; expected `{}`", kind.api_version())]
    WrongApiVersion {
        /// The document's kind.
        kind: DocumentKind,
        /// The apiVersion as written.
        found: String,
    },
}

/// `TestWorkflow (testworkflows.testkube.io/v1), ...`
fn supported_kinds() -> String {
    DocumentKind::ALL
        .iter()
        .map(|kind| format!("{kind} ({})", kind.api_version()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Any document of a supported kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A workflow.
    TestWorkflow(Box<TestWorkflow>),
    /// A workflow template.
    TestWorkflowTemplate(Box<TestWorkflowTemplate>),
    /// A request to run a workflow.
    TestWorkflowExecution(Box<TestWorkflowExecution>),
    /// An event trigger.
    TestTrigger(Box<TestTrigger>),
    /// An outbound notification.
    Webhook(Box<Webhook>),
    /// Defaults for webhooks.
    WebhookTemplate(Box<WebhookTemplate>),
}

impl Document {
    /// The document's kind.
    pub fn kind(&self) -> DocumentKind {
        match self {
            Document::TestWorkflow(_) => DocumentKind::TestWorkflow,
            Document::TestWorkflowTemplate(_) => DocumentKind::TestWorkflowTemplate,
            Document::TestWorkflowExecution(_) => DocumentKind::TestWorkflowExecution,
            Document::TestTrigger(_) => DocumentKind::TestTrigger,
            Document::Webhook(_) => DocumentKind::Webhook,
            Document::WebhookTemplate(_) => DocumentKind::WebhookTemplate,
        }
    }

    /// `metadata` of the document.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Document::TestWorkflow(doc) => &doc.metadata,
            Document::TestWorkflowTemplate(doc) => &doc.metadata,
            Document::TestWorkflowExecution(doc) => &doc.metadata,
            Document::TestTrigger(doc) => &doc.metadata,
            Document::Webhook(doc) => &doc.metadata,
            Document::WebhookTemplate(doc) => &doc.metadata,
        }
    }

    /// `metadata.name`, if set.
    pub fn name(&self) -> Option<&str> {
        self.metadata().name.as_deref()
    }

    /// The workflow spec of a workflow or template.
    pub fn workflow_spec(&self) -> Option<&WorkflowSpec> {
        match self {
            Document::TestWorkflow(doc) => Some(&doc.spec),
            Document::TestWorkflowTemplate(doc) => Some(&doc.spec),
            _ => None,
        }
    }

    /// Deserializes a document of a known kind from any serde data format.
    pub fn deserialize_kind<'de, D: Deserializer<'de>>(
        kind: DocumentKind,
        deserializer: D,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            DocumentKind::TestWorkflow => {
                Document::TestWorkflow(Deserialize::deserialize(deserializer)?)
            }
            DocumentKind::TestWorkflowTemplate => {
                Document::TestWorkflowTemplate(Deserialize::deserialize(deserializer)?)
            }
            DocumentKind::TestWorkflowExecution => {
                Document::TestWorkflowExecution(Deserialize::deserialize(deserializer)?)
            }
            DocumentKind::TestTrigger => {
                Document::TestTrigger(Deserialize::deserialize(deserializer)?)
            }
            DocumentKind::Webhook => Document::Webhook(Deserialize::deserialize(deserializer)?),
            DocumentKind::WebhookTemplate => {
                Document::WebhookTemplate(Deserialize::deserialize(deserializer)?)
            }
        })
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Document::TestWorkflow(doc) => doc.serialize(serializer),
            Document::TestWorkflowTemplate(doc) => doc.serialize(serializer),
            Document::TestWorkflowExecution(doc) => doc.serialize(serializer),
            Document::TestTrigger(doc) => doc.serialize(serializer),
            Document::Webhook(doc) => doc.serialize(serializer),
            Document::WebhookTemplate(doc) => doc.serialize(serializer),
        }
    }
}

/// Dispatches on `apiVersion` + `kind`. The document is buffered as JSON
/// first; the YAML loader instead dispatches on its node tree so that errors
/// keep their positions (see `validate::load_file`).
impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
        let kind =
            DocumentKind::resolve(field("apiVersion"), field("kind")).map_err(de::Error::custom)?;
        Document::deserialize_kind(kind, value).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_resolve_with_their_api_version() {
        for kind in DocumentKind::ALL {
            assert_eq!(
                DocumentKind::resolve(Some(kind.api_version()), Some(kind.name())),
                Ok(kind)
            );
        }
    }

    #[test]
    fn unknown_kind_suggests_the_closest_and_lists_all() {
        let error = DocumentKind::resolve(Some(API_VERSION_WORKFLOWS), Some("TestWorkfow"));
        let message = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("did you mean `TestWorkflow`?"),
            "{message}"
        );
        assert!(
            message.contains("WebhookTemplate (executor.testkube.io/v1)"),
            "{message}"
        );
    }

    #[test]
    fn wrong_api_version_names_the_expected_one() {
        let error = DocumentKind::resolve(Some("tests.testkube.io/v3"), Some("TestTrigger"));
        assert_eq!(
            error,
            Err(KindError::WrongApiVersion {
                kind: DocumentKind::TestTrigger,
                found: "tests.testkube.io/v3".into()
            })
        );
    }

    #[test]
    fn document_dispatches_from_json() {
        let json = r#"{"apiVersion":"testworkflows.testkube.io/v1","kind":"TestWorkflow",
            "metadata":{"name":"k6"},"spec":{"steps":[{"name":"run","shell":"k6 run test.js"}]}}"#;
        let doc: Document = serde_json::from_str(json).unwrap();
        assert_eq!(doc.kind(), DocumentKind::TestWorkflow);
        assert_eq!(doc.name(), Some("k6"));
        let back = serde_json::to_string(&doc).unwrap();
        let again: Document = serde_json::from_str(&back).unwrap();
        assert_eq!(doc, again);
    }
}
