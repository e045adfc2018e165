//! Definitions kept as custom resources: the TestWorkflows and
//! TestWorkflowTemplates of one namespace, as `kubectl` and GitOps tools
//! keep them. What the agent serves; the API and `kubectl apply` change the
//! same objects.

use async_trait::async_trait;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use testkube_core::model::TestWorkflow;

use super::{Definitions, DefinitionsError, Kind, Save, valid_name};

/// The TestWorkflows and TestWorkflowTemplates of a namespace.
#[derive(Clone)]
pub struct ClusterDefinitions {
    workflows: Api<DynamicObject>,
    templates: Api<DynamicObject>,
    namespace: String,
}

impl std::fmt::Debug for ClusterDefinitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterDefinitions")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn resource(kind: Kind) -> ApiResource {
    let (kind, plural) = match kind {
        Kind::Workflow => ("TestWorkflow", "testworkflows"),
        Kind::Template => ("TestWorkflowTemplate", "testworkflowtemplates"),
    };
    ApiResource {
        group: "testworkflows.testkube.io".into(),
        version: "v1".into(),
        api_version: "testworkflows.testkube.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

impl ClusterDefinitions {
    /// The definitions of `namespace`, through `client` (its CRDs must be
    /// installed: `testkube crds | kubectl apply --server-side -f -`).
    #[must_use]
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        ClusterDefinitions {
            workflows: Api::namespaced_with(client.clone(), namespace, &resource(Kind::Workflow)),
            templates: Api::namespaced_with(client, namespace, &resource(Kind::Template)),
            namespace: namespace.to_owned(),
        }
    }

    fn api(&self, kind: Kind) -> &Api<DynamicObject> {
        match kind {
            Kind::Workflow => &self.workflows,
            Kind::Template => &self.templates,
        }
    }

    fn error(&self, kind: Kind, name: &str, err: kube::Error) -> DefinitionsError {
        match &err {
            kube::Error::Api(status) if status.code == 404 => DefinitionsError::NotFound {
                kind,
                name: name.to_owned(),
            },
            kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists" => {
                DefinitionsError::Exists {
                    kind,
                    name: name.to_owned(),
                }
            }
            kube::Error::Api(status) if status.code == 409 => DefinitionsError::Changed {
                kind,
                name: name.to_owned(),
            },
            kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
                DefinitionsError::Refused {
                    kind,
                    name: name.to_owned(),
                    message: status.message.clone(),
                }
            }
            _ => DefinitionsError::Storage(format!(
                "{} {}/{name}: {err}",
                kind.document_kind(),
                self.namespace
            )),
        }
    }
}

fn from_object(object: &DynamicObject) -> Result<TestWorkflow, String> {
    let value = serde_json::to_value(object).map_err(|err| err.to_string())?;
    serde_json::from_value(value).map_err(|err| err.to_string())
}

fn to_object(
    definition: &TestWorkflow,
    kind: Kind,
    namespace: &str,
) -> Result<DynamicObject, DefinitionsError> {
    let mut definition = definition.clone();
    definition.kind = kind.document_kind().to_owned();
    definition.metadata.namespace = Some(namespace.to_owned());
    definition.status = None;
    serde_json::to_value(&definition)
        .and_then(serde_json::from_value)
        .map_err(|err| DefinitionsError::Storage(err.to_string()))
}

#[async_trait]
impl Definitions for ClusterDefinitions {
    async fn list(&self, kind: Kind) -> Result<Vec<TestWorkflow>, DefinitionsError> {
        let list = self
            .api(kind)
            .list(&ListParams::default())
            .await
            .map_err(|err| self.error(kind, "", err))?;
        let mut found = Vec::new();
        for object in &list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            match from_object(object) {
                Ok(definition) => found.push(definition),
                // A broken object (applied with kubectl) hides only itself.
                Err(err) => {
                    tracing::warn!(%name, "left out, invalid {}: {err}", kind.document_kind())
                }
            }
        }
        found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(found)
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<TestWorkflow, DefinitionsError> {
        if !valid_name(name) {
            return Err(DefinitionsError::NotFound {
                kind,
                name: name.to_owned(),
            });
        }
        let object = self
            .api(kind)
            .get(name)
            .await
            .map_err(|err| self.error(kind, name, err))?;
        from_object(&object).map_err(|err| {
            DefinitionsError::Storage(format!(
                "{} {}/{name} cannot be read: {err}",
                kind.document_kind(),
                self.namespace
            ))
        })
    }

    async fn save(
        &self,
        kind: Kind,
        definition: TestWorkflow,
        mode: Save,
    ) -> Result<(), DefinitionsError> {
        let name = definition.metadata.name.clone().unwrap_or_default();
        if !valid_name(&name) {
            return Err(DefinitionsError::InvalidName { name });
        }
        let mut object = to_object(&definition, kind, &self.namespace)?;
        let api = self.api(kind);
        match mode {
            Save::Create => api
                .create(&PostParams::default(), &object)
                .await
                .map(drop)
                .map_err(|err| self.error(kind, &name, err)),
            Save::Replace => {
                // Replaced over the version read now: a change made in
                // between by someone else is a conflict, not lost.
                let current = api
                    .get(&name)
                    .await
                    .map_err(|err| self.error(kind, &name, err))?;
                object.metadata.resource_version = current.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &object)
                    .await
                    .map(drop)
                    .map_err(|err| self.error(kind, &name, err))
            }
        }
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), DefinitionsError> {
        if !valid_name(name) {
            return Err(DefinitionsError::NotFound {
                kind,
                name: name.to_owned(),
            });
        }
        self.api(kind)
            .delete(name, &DeleteParams::default())
            .await
            .map(drop)
            .map_err(|err| self.error(kind, name, err))
    }
}
