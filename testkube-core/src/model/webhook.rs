//! `Webhook` and `WebhookTemplate`: outbound HTTP notifications about
//! executions (POST JSON; a status of 400 or more counts as a failure).

use indexmap::IndexMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::workflow::Target;

/// A `Webhook` document (`executor.testkube.io/v1`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `executor.testkube.io/v1`.
    pub api_version: String,
    /// `Webhook`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Where to send which events.
    #[serde(default)]
    pub spec: WebhookSpec,
    /// Observed state written by a controller; kept as-is, never read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// A `WebhookTemplate` document: defaults a `Webhook` refers to with
/// `webhookTemplateRef`. Same spec as a webhook, without `webhookTemplateRef`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookTemplate {
    /// `executor.testkube.io/v1`.
    pub api_version: String,
    /// `WebhookTemplate`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Where to send which events.
    #[serde(default)]
    pub spec: WebhookSpec,
    /// Observed state written by a controller; kept as-is, never read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// The spec of a `Webhook` or `WebhookTemplate`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// URL to POST to (may contain templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Events that fire the webhook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<WebhookEvent>,
    /// Label selector over workflow labels, e.g. `team=web,tier!=dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Wrap the payload in an object under this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_object_field: Option<String>,
    /// Template of the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_template: Option<String>,
    /// Name of a resource holding the payload template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_template_reference: Option<String>,
    /// Request headers (values may contain templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Keep the webhook but never call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Deprecated upstream and ignored; `become-*` events replace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_state_change: Option<bool>,
    /// Values available to the templates, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, WebhookConfigValue>,
    /// Parameters the webhook (template) accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<WebhookParameter>,
    /// The template this webhook extends (webhooks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_template_ref: Option<WebhookTemplateRef>,
    /// Which runner sends the webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// `spec.events[]`. `become-*` events fire only when a finished run's status
/// differs from the previous finished run's. Legacy `*-test` and
/// `*-testsuite` events load but never fire here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum WebhookEvent {
    /// An execution was queued.
    QueueTestworkflow,
    /// An execution started.
    StartTestworkflow,
    /// An execution passed.
    EndTestworkflowSuccess,
    /// An execution failed.
    EndTestworkflowFailed,
    /// An execution was aborted.
    EndTestworkflowAborted,
    /// An execution was canceled.
    EndTestworkflowCanceled,
    /// An execution ended without passing.
    EndTestworkflowNotPassed,
    /// The workflow passed after not passing.
    BecomeTestworkflowUp,
    /// The workflow stopped passing.
    BecomeTestworkflowDown,
    /// The workflow failed after a different result.
    BecomeTestworkflowFailed,
    /// The workflow was aborted after a different result.
    BecomeTestworkflowAborted,
    /// The workflow was canceled after a different result.
    BecomeTestworkflowCanceled,
    /// The workflow did not pass after passing.
    BecomeTestworkflowNotPassed,
    /// Legacy: a Test started.
    StartTest,
    /// Legacy: a Test passed.
    EndTestSuccess,
    /// Legacy: a Test failed.
    EndTestFailed,
    /// Legacy: a Test was aborted.
    EndTestAborted,
    /// Legacy: a Test timed out.
    EndTestTimeout,
    /// Legacy: a Test became up.
    BecomeTestUp,
    /// Legacy: a Test became down.
    BecomeTestDown,
    /// Legacy: a Test became failed.
    BecomeTestFailed,
    /// Legacy: a Test became aborted.
    BecomeTestAborted,
    /// Legacy: a Test became timed out.
    BecomeTestTimeout,
    /// Legacy: a TestSuite started.
    StartTestsuite,
    /// Legacy: a TestSuite passed.
    EndTestsuiteSuccess,
    /// Legacy: a TestSuite failed.
    EndTestsuiteFailed,
    /// Legacy: a TestSuite was aborted.
    EndTestsuiteAborted,
    /// Legacy: a TestSuite timed out.
    EndTestsuiteTimeout,
    /// Legacy: a TestSuite became up.
    BecomeTestsuiteUp,
    /// Legacy: a TestSuite became down.
    BecomeTestsuiteDown,
    /// Legacy: a TestSuite became failed.
    BecomeTestsuiteFailed,
    /// Legacy: a TestSuite became aborted.
    BecomeTestsuiteAborted,
    /// Legacy: a TestSuite became timed out.
    BecomeTestsuiteTimeout,
}

impl WebhookEvent {
    /// Whether the event concerns legacy Tests/TestSuites, which never run here.
    pub fn is_legacy(self) -> bool {
        !matches!(
            self,
            WebhookEvent::QueueTestworkflow
                | WebhookEvent::StartTestworkflow
                | WebhookEvent::EndTestworkflowSuccess
                | WebhookEvent::EndTestworkflowFailed
                | WebhookEvent::EndTestworkflowAborted
                | WebhookEvent::EndTestworkflowCanceled
                | WebhookEvent::EndTestworkflowNotPassed
                | WebhookEvent::BecomeTestworkflowUp
                | WebhookEvent::BecomeTestworkflowDown
                | WebhookEvent::BecomeTestworkflowFailed
                | WebhookEvent::BecomeTestworkflowAborted
                | WebhookEvent::BecomeTestworkflowCanceled
                | WebhookEvent::BecomeTestworkflowNotPassed
        )
    }
}

/// `spec.config.<name>`: a public value or a secret reference.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfigValue {
    /// Public value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value stored in a Kubernetes secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
}

/// A key of a Kubernetes secret.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Namespace (default: the webhook's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Secret name.
    pub name: String,
    /// Key inside the secret.
    pub key: String,
}

/// `spec.parameters[]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookParameter {
    /// Parameter name.
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a value must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Example value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Regular expression the value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// `spec.webhookTemplateRef`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookTemplateRef {
    /// Name of the `WebhookTemplate`.
    pub name: String,
}
