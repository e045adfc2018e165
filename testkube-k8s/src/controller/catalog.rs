//! The cluster as the catalog of workflows: a TestWorkflowExecution names a
//! TestWorkflow of its namespace, which is resolved with the namespace's
//! TestWorkflowTemplates (and the built-in ones), as `testkube run` resolves
//! a file with the templates it is given.
//!
//! `execute` steps run the namespace's TestWorkflows ([`ClusterCatalog::workflow_set`]).
//!
//! Why it reads on demand instead of keeping a watch: a workflow is read
//! once per run start (one GET and one LIST), the agent keeps no copy that
//! could be stale, and an edited workflow is used by the next execution.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;
use testkube_core::engine::WorkflowSet;
use testkube_core::model::{TestWorkflow, TestWorkflowTemplate};
use testkube_core::resolve::TemplateOrigin;
use testkube_core::{ResolveOptions, ResolvedWorkflow, TemplateSet, resolve_workflow};

use super::ControllerError;

/// `testworkflows.testkube.io/v1` resources by kind and plural.
pub(super) fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "testworkflows.testkube.io".into(),
        version: "v1".into(),
        api_version: "testworkflows.testkube.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Reads TestWorkflows and TestWorkflowTemplates of one namespace.
pub(super) struct ClusterCatalog {
    workflows: Api<DynamicObject>,
    templates: Api<DynamicObject>,
    namespace: String,
}

impl ClusterCatalog {
    pub(super) fn new(client: Client, namespace: &str) -> Self {
        ClusterCatalog {
            workflows: Api::namespaced_with(
                client.clone(),
                namespace,
                &resource("TestWorkflow", "testworkflows"),
            ),
            templates: Api::namespaced_with(
                client,
                namespace,
                &resource("TestWorkflowTemplate", "testworkflowtemplates"),
            ),
            namespace: namespace.to_owned(),
        }
    }

    /// The TestWorkflow `name`, resolved with `config` and the namespace's
    /// templates.
    pub(super) async fn resolve(
        &self,
        name: &str,
        config: impl IntoIterator<Item = (&String, &Value)>,
    ) -> Result<ResolvedWorkflow, ControllerError> {
        let object = match self.workflows.get_opt(name).await {
            Ok(Some(object)) => object,
            Ok(None) => {
                return Err(ControllerError::WorkflowNotFound {
                    name: name.to_owned(),
                    namespace: self.namespace.clone(),
                });
            }
            Err(source) => {
                return Err(ControllerError::Api {
                    what: format!("cannot read TestWorkflow `{name}`"),
                    source,
                });
            }
        };
        let workflow: TestWorkflow =
            from_object(&object).map_err(|message| ControllerError::InvalidWorkflow {
                name: name.to_owned(),
                message,
            })?;
        let templates = self.templates().await?;
        let options = config
            .into_iter()
            .fold(ResolveOptions::new(), |options, (key, value)| {
                options.with_config(key.clone(), value.clone())
            });
        resolve_workflow(&workflow, &templates, &options, None).map_err(|err| {
            ControllerError::InvalidWorkflow {
                name: name.to_owned(),
                message: err
                    .diagnostics
                    .iter()
                    .filter(|diagnostic| {
                        matches!(diagnostic.severity(), testkube_core::Severity::Error)
                    })
                    .map(|diagnostic| match diagnostic.path() {
                        Some(path) => format!("{path}: {}", diagnostic.message()),
                        None => diagnostic.message().to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })
    }

    /// Every TestWorkflow of the namespace, for the `execute` steps of a
    /// run (read when a run has one; a workflow that does not parse is left
    /// out, so `execute` names it as unknown).
    pub(super) async fn workflow_set(&self) -> Result<WorkflowSet, ControllerError> {
        let list = self
            .workflows
            .list(&ListParams::default())
            .await
            .map_err(|source| ControllerError::Api {
                what: "cannot list TestWorkflows".to_owned(),
                source,
            })?;
        let mut set = WorkflowSet::new(self.templates().await?);
        for object in list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            match from_object::<TestWorkflow>(&object) {
                Ok(workflow) => {
                    if let Err(err) = set.insert(workflow) {
                        tracing::warn!(workflow = %name, "left out of `execute`: {err}");
                    }
                }
                Err(message) => {
                    tracing::warn!(workflow = %name, "left out of `execute`, invalid: {message}");
                }
            }
        }
        Ok(set)
    }

    /// The built-in templates, then the namespace's (which win).
    async fn templates(&self) -> Result<TemplateSet, ControllerError> {
        let mut set = TemplateSet::with_builtins().map_err(|err| ControllerError::Internal {
            message: err.to_string(),
        })?;
        let list = self
            .templates
            .list(&ListParams::default())
            .await
            .map_err(|source| ControllerError::Api {
                what: "cannot list TestWorkflowTemplates".to_owned(),
                source,
            })?;
        for object in list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            // A broken template fails the workflows that use it (as an
            // unknown template), not every run of the namespace.
            match from_object::<TestWorkflowTemplate>(&object) {
                Ok(template) => {
                    set.insert(
                        template,
                        TemplateOrigin::File(format!(
                            "TestWorkflowTemplate {}/{name}",
                            self.namespace
                        )),
                    );
                }
                Err(message) => {
                    tracing::warn!(template = %name, "ignored an invalid TestWorkflowTemplate: {message}");
                }
            }
        }
        Ok(set)
    }
}

/// A model document from a cluster object, with the path of the field that
/// does not fit.
pub(super) fn from_object<T: serde::de::DeserializeOwned>(
    object: &DynamicObject,
) -> Result<T, String> {
    let value = serde_json::to_value(object).map_err(|err| err.to_string())?;
    serde_json::from_value(value).map_err(|err| err.to_string())
}
