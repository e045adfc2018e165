//! After a restart: the runs a previous agent process left running.
//!
//! The agent claims them in the store
//! ([`RunService::claim_abandoned`](testkube_core::service::RunService::claim_abandoned))
//! and goes on with each ([`RunService::resume`](testkube_core::service::RunService::resume)):
//! the same plan, each worker's Job found again by its labels and its log
//! read again from the start, only what the store does not hold recorded,
//! and the requests nobody answered asked again. A worker whose Job
//! vanished while no agent watched ends `aborted` with what was stored.
//! The TestWorkflowExecution that started the run gets its status written
//! on as before; once the run ends, whatever objects are left of it are
//! deleted.
//!
//! Sensitive config values are stored masked: they are read back from the
//! root worker's task Secret, which holds what the run started with. A run
//! that cannot go on (its snapshot unreadable, its root task gone while it
//! needs sensitive values) ends `aborted`, in the store and on its
//! document, with a `Warning` Event saying why, and its objects are
//! deleted. Documents whose run the store has as ended while their
//! `status` does not (the process died between the two writes) get the
//! stored end.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::model::{LatestExecution, TestWorkflowExecution};

use super::{Document, ExecutionController, catalog, status};
use crate::labels;
use crate::manifest::{TASK_KEY, job_name};

impl ExecutionController {
    /// At startup, once leading: goes on with the runs of `claimed` (ids
    /// taken over from a process that died), ends those that cannot go on
    /// `aborted`, and brings documents whose run ended while no agent wrote
    /// their status in line with the store. Problems are logged: recovery
    /// never stops the agent.
    pub async fn recover(self: &std::sync::Arc<Self>, claimed: &[String]) {
        let documents = match self.executions.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(err) => {
                tracing::warn!("cannot list TestWorkflowExecutions to recover: {err}");
                Vec::new()
            }
        };
        let mut by_id: BTreeMap<String, (DynamicObject, LatestExecution, i64)> = BTreeMap::new();
        for object in &documents {
            if let Ok(document) = catalog::from_object::<TestWorkflowExecution>(object)
                && let Some(state) = document.status
                && let (Some(latest), Some(generation)) = (state.latest_execution, state.generation)
            {
                by_id.insert(latest.id.clone(), (object.clone(), latest, generation));
            }
        }
        for id in claimed {
            let document = by_id.remove(id);
            if let Err(message) = self.resume(id, document.clone()).await {
                self.give_up(id, document, &message).await;
            }
        }
        for (object, latest, generation) in by_id.into_values() {
            self.settle_document(&object, latest, generation, None)
                .await;
        }
    }

    /// Goes on with run `id`, writing its status to `document`'s.
    async fn resume(
        self: &std::sync::Arc<Self>,
        id: &str,
        document: Option<(DynamicObject, LatestExecution, i64)>,
    ) -> Result<(), String> {
        let config = self.started_config(id).await;
        let run = self
            .service
            .resume(id, config)
            .await
            .map_err(|err| err.to_string())?;
        tracing::info!(execution = %run.name(), "taking over a run a previous agent left running");
        let control = run.control();
        let (document, latest) = match document {
            Some((object, latest, generation)) => {
                let name = object.metadata.name.clone().unwrap_or_default();
                let message = format!(
                    "the agent was restarted: it took over execution {} where its Jobs are",
                    run.name()
                );
                if let Err(err) = self.status.event(&object, false, "Resumed", &message).await {
                    tracing::warn!(execution = %name, "cannot record an Event: {err}");
                }
                let document = Document {
                    object,
                    name,
                    generation,
                };
                (Some(document), latest)
            }
            None => (None, LatestExecution::default()),
        };
        let follower = self.follow_run(run, document, latest, true);
        self.keep(control, follower);
        Ok(())
    }

    /// The config values run `id` started with, from its root worker's
    /// task (sensitive ones are stored masked); `None` when it is gone.
    async fn started_config(&self, id: &str) -> Option<BTreeMap<String, serde_json::Value>> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret = secrets
            .get_opt(&format!("{}-task", job_name(id, 0)))
            .await
            .ok()
            .flatten()?;
        let bytes = secret.data?.remove(TASK_KEY)?;
        let task = WorkerTask::from_json(&bytes.0).ok()?;
        match task.variables.get("config")? {
            serde_json::Value::Object(config) => Some(
                config
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Ends run `id`, which cannot go on, `aborted`: in the store, on its
    /// document (with a `Warning` Event), and deletes its objects.
    async fn give_up(
        &self,
        id: &str,
        document: Option<(DynamicObject, LatestExecution, i64)>,
        why: &str,
    ) {
        tracing::warn!(execution = %id, "cannot take over the run: {why}");
        let message = format!("the agent was restarted and cannot go on with the run: {why}");
        if let Err(err) = self.service.end_abandoned(id, &message).await {
            tracing::warn!(execution = %id, "cannot record the run's end: {err}");
        }
        self.delete_objects(id).await;
        if let Some((object, latest, generation)) = document {
            let event = format!(
                "execution {} was running when the agent stopped and cannot go on: {why}; it is \
                 marked aborted with what was recorded, and its Jobs and pods are deleted",
                latest.name
            );
            self.settle_document(&object, latest, generation, Some(event))
                .await;
        }
    }

    /// Writes the stored end of `object`'s run when its status says it
    /// still runs, with a `Finished` Event (or an `Aborted` warning saying
    /// `aborted`).
    async fn settle_document(
        &self,
        object: &DynamicObject,
        mut latest: LatestExecution,
        generation: i64,
        aborted: Option<String>,
    ) {
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
        let event = match aborted {
            Some(message) => self.status.event(object, true, "Aborted", &message).await,
            None => {
                let message = format!("{} {}", record.name, record.status);
                let warning = !record.status.is_passed();
                self.status
                    .event(object, warning, "Finished", &message)
                    .await
            }
        };
        if let Err(err) = event {
            tracing::warn!(execution = %name, "cannot record an Event: {err}");
        }
    }

    /// Deletes what execution `id` created in the namespace: its Jobs,
    /// their task Secrets (by name: the agent may not list Secrets) and
    /// its pods, whose finalizers are removed (nobody will read their logs
    /// any more).
    pub(super) async fn delete_objects(&self, id: &str) {
        let selector = format!("{}={}", labels::EXECUTION, labels::label_value(id));
        let by_label = ListParams::default().labels(&selector);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let worker = |meta: &kube::api::ObjectMeta| -> Option<usize> {
            meta.labels.as_ref()?.get(labels::WORKER)?.parse().ok()
        };
        let mut workers = std::collections::BTreeSet::new();
        match jobs.list(&by_label).await {
            Ok(list) => workers.extend(list.items.iter().filter_map(|job| worker(&job.metadata))),
            Err(err) => tracing::warn!(execution = %id, "cannot list the Jobs: {err}"),
        }
        let pod_list = match pods.list(&by_label).await {
            Ok(list) => list.items,
            Err(err) => {
                tracing::warn!(execution = %id, "cannot list the pods: {err}");
                Vec::new()
            }
        };
        workers.extend(pod_list.iter().filter_map(|pod| worker(&pod.metadata)));
        for number in workers {
            let job = job_name(id, number);
            let _ = jobs.delete(&job, &DeleteParams::background()).await;
            let _ = secrets
                .delete(&format!("{job}-task"), &DeleteParams::default())
                .await;
        }
        for pod in pod_list {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let _ = pods.delete(&name, &DeleteParams::default()).await;
            let latest = pods.get_opt(&name).await.ok().flatten();
            crate::pods::remove_finalizer(&pods, &name, latest).await;
        }
    }
}
