//! After a restart: the runs a previous agent process left unfinished.
//!
//! The run service marks them `aborted` in the store
//! ([`RunService::recover_abandoned`](testkube_core::service::RunService::recover_abandoned));
//! here their documents get the same verdict in `status` (with a
//! `Warning` Event saying why), as does any document whose run the store
//! has as ended while its `status` does not (the process died between
//! the two writes), and the objects they left in the namespace
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
    /// At startup: brings the documents whose `status` says a run is
    /// unfinished in line with the store (a run that ended while no agent
    /// wrote its status, or one of `abandoned`: ids the store marked
    /// aborted because the previous process died), and deletes the objects
    /// of `abandoned`. Problems are logged: recovery never stops the agent.
    pub async fn recover(&self, abandoned: &[String]) {
        match self.executions.list(&ListParams::default()).await {
            Ok(list) => {
                for object in list.items {
                    self.settle_document(&object, abandoned).await;
                }
            }
            Err(err) => tracing::warn!("cannot list TestWorkflowExecutions to recover: {err}"),
        }
        for id in abandoned {
            self.delete_objects(id).await;
        }
    }

    /// Writes the stored end of `object`'s run when its status says it
    /// still runs.
    async fn settle_document(&self, object: &kube::api::DynamicObject, abandoned: &[String]) {
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
        let Some(store) = self.service.store() else {
            return;
        };
        if !unfinished {
            return;
        }
        let record = match store.get_execution(&latest.id).await {
            Ok(record) if record.status.is_finished() => record,
            // Another store's run, or still running elsewhere: not ours.
            Ok(_) | Err(_) => return,
        };
        let name = object.metadata.name.clone().unwrap_or_default();
        status::from_record(&mut latest, &record);
        if let Err(err) = self
            .status
            .write(&name, generation, Some(&latest), None)
            .await
        {
            tracing::warn!(execution = %name, "cannot write status: {err}");
        }
        let event = if abandoned.contains(&latest.id) {
            let message = format!(
                "execution {} was running when the agent stopped; it is marked aborted with what \
                 was recorded, and its Jobs and pods are deleted",
                latest.name
            );
            self.status.event(object, true, "Aborted", &message).await
        } else {
            let message = format!("{} {}", record.name, record.status);
            let warning = !record.status.is_passed();
            self.status
                .event(object, warning, "Finished", &message)
                .await
        };
        if let Err(err) = event {
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
