//! After a restart: the runs a previous agent process left unfinished.
//!
//! The run service marks them `aborted` in the store
//! ([`RunService::recover_abandoned`](testkube_core::service::RunService::recover_abandoned));
//! here their documents get the same verdict in `status` (with a
//! `Warning` Event saying why), and the objects they left in the namespace
//! (Jobs, task Secrets, pods held by the `testkube.io/results` finalizer,
//! service pods) are deleted, so nothing keeps running or stays behind.
//!
//! Why abort rather than re-attach: the engine that followed those
//! workers (their parallel blocks, requests, logs read so far) lived in the
//! killed process; continuing them needs the engine to rebuild that state
//! from the store and the pods, which is not built yet.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use testkube_core::model::TestWorkflowExecution;

use super::{ExecutionController, catalog, status};
use crate::labels;

impl ExecutionController {
    /// Ends the documents and deletes the objects of `abandoned` (ids of
    /// executions the store marked aborted at startup). Problems are
    /// logged: recovery never stops the agent.
    pub async fn recover(&self, abandoned: &[String]) {
        if abandoned.is_empty() {
            return;
        }
        match self.executions.list(&ListParams::default()).await {
            Ok(list) => {
                for object in list.items {
                    self.abort_document(&object, abandoned).await;
                }
            }
            Err(err) => tracing::warn!("cannot list TestWorkflowExecutions to recover: {err}"),
        }
        for id in abandoned {
            self.delete_objects(id).await;
        }
    }

    async fn abort_document(&self, object: &kube::api::DynamicObject, abandoned: &[String]) {
        let Ok(document) = catalog::from_object::<TestWorkflowExecution>(object) else {
            return;
        };
        let Some(state) = document.status else { return };
        let (Some(mut latest), Some(generation)) = (state.latest_execution, state.generation)
        else {
            return;
        };
        let unfinished = latest
            .result
            .as_ref()
            .is_some_and(|result| !result.status.is_finished());
        if !unfinished || !abandoned.contains(&latest.id) {
            return;
        }
        let name = object.metadata.name.clone().unwrap_or_default();
        status::aborted(&mut latest, chrono::Utc::now());
        if let Err(err) = self
            .status
            .write(&name, generation, Some(&latest), None)
            .await
        {
            tracing::warn!(execution = %name, "cannot write status: {err}");
        }
        let message = format!(
            "execution {} was running when the agent stopped; it is marked aborted with what was \
             recorded, and its Jobs and pods are deleted",
            latest.name
        );
        if let Err(err) = self.status.event(object, true, "Aborted", &message).await {
            tracing::warn!(execution = %name, "cannot record an Event: {err}");
        }
    }

    /// Deletes what execution `id` created in the namespace.
    async fn delete_objects(&self, id: &str) {
        let selector = format!("{}={}", labels::EXECUTION, labels::label_value(id));
        let by_label = ListParams::default().labels(&selector);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        if let Err(err) = jobs
            .delete_collection(&DeleteParams::background(), &by_label)
            .await
        {
            tracing::warn!(execution = %id, "cannot delete the Jobs: {err}");
        }
        if let Err(err) = secrets
            .delete_collection(&DeleteParams::default(), &by_label)
            .await
        {
            tracing::warn!(execution = %id, "cannot delete the task Secrets: {err}");
        }
        // Worker and service pods: deleted, then let go (nobody will read
        // their logs any more).
        match pods.list(&by_label).await {
            Ok(list) => {
                for pod in list.items {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let _ = pods.delete(&name, &DeleteParams::default()).await;
                    let latest = pods.get_opt(&name).await.ok().flatten();
                    crate::pods::remove_finalizer(&pods, &name, latest).await;
                }
            }
            Err(err) => tracing::warn!(execution = %id, "cannot list the pods: {err}"),
        }
        tracing::info!(execution = %id, "deleted the objects of an abandoned execution");
    }
}
