//! Taking up a worker an earlier engine started (the agent was restarted):
//! its Job, or the pod its finalizer keeps once the Job is gone, is found
//! by the execution's label and the worker's path, and followed like a
//! worker just started, its log read again from the start.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use testkube_core::engine::protocol::WorkerTask;
use testkube_core::engine::{ExecutorError, WorkerHandle, WorkerSpec};

use super::{Found, KubernetesExecutor, step_containers};
use crate::labels;
use crate::manifest::{job_name, worker_objects};

impl KubernetesExecutor {
    /// [`Executor::attach`](testkube_core::engine::Executor::attach): the
    /// worker's objects found again, followed as [`Executor::start`]'s are,
    /// its log read from the start.
    ///
    /// [`Executor::start`]: testkube_core::engine::Executor::start
    pub(super) async fn take_up(
        &self,
        spec: WorkerSpec,
    ) -> Result<Option<WorkerHandle>, ExecutorError> {
        let task = WorkerTask::from_spec(&spec);
        let objects = worker_objects(&task, spec.pod.as_ref(), spec.job.as_ref(), &self.options)
            .map_err(|err| ExecutorError::new(&spec.worker, err.to_string()))?;
        let namespace = objects
            .job
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| self.options.namespace.clone());
        let Some((worker, job_name)) = self.find(&namespace, &spec).await? else {
            return Ok(None);
        };
        let execution = labels::label_value(&spec.execution.id);
        let view = self.watches.subscribe(&namespace, &execution, &worker);
        let found = Found {
            containers: step_containers(&objects.job),
            namespace,
            secret_name: format!("{job_name}-task"),
            worker,
            job_name,
        };
        Ok(Some(self.follow(&spec, found, view, true)))
    }

    /// Finds the Job (or, once the Job is deleted, the pod its finalizer
    /// keeps) of worker `spec.worker` by its execution label and worker
    /// path: its number and Job name.
    async fn find(
        &self,
        namespace: &str,
        spec: &WorkerSpec,
    ) -> Result<Option<(String, String)>, ExecutorError> {
        let selector = format!(
            "{}={}",
            labels::EXECUTION,
            labels::label_value(&spec.execution.id)
        );
        let params = ListParams::default().labels(&selector);
        let failed = |what: &str, err: kube::Error| {
            ExecutorError::new(
                &spec.worker,
                format!(
                    "cannot list the {what} of execution {}: {err}",
                    spec.execution.id
                ),
            )
        };
        let of_worker = |meta: &ObjectMeta| {
            let path = meta
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(labels::WORKER_PATH));
            let resource = meta
                .labels
                .as_ref()
                .and_then(|labels| labels.get(labels::RESOURCE));
            path == Some(&spec.worker.path)
                && resource.is_none_or(|resource| resource != labels::SERVICE_RESOURCE)
        };
        let number = |meta: &ObjectMeta| {
            meta.labels
                .as_ref()
                .and_then(|labels| labels.get(labels::WORKER))
                .cloned()
        };
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        // The same plan gives the same numbers: its Job is nearly always
        // the one of that number (one GET, not a list per worker of a
        // thousand-worker block); a list finds it when it is not.
        let expected = job_name(&spec.execution.id, spec.worker.number);
        if let Ok(Some(job)) = jobs.get_opt(&expected).await
            && of_worker(&job.metadata)
            && let Some(number) = number(&job.metadata)
        {
            return Ok(Some((number, expected)));
        }
        let list = jobs
            .list(&params)
            .await
            .map_err(|err| failed("Jobs", err))?;
        if let Some(job) = list.items.iter().find(|job| of_worker(&job.metadata))
            && let (Some(number), Some(name)) = (number(&job.metadata), job.metadata.name.clone())
        {
            return Ok(Some((number, name)));
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&params)
            .await
            .map_err(|err| failed("pods", err))?;
        Ok(list
            .items
            .iter()
            .find(|pod| of_worker(&pod.metadata))
            .and_then(|pod| {
                let number = number(&pod.metadata)?;
                let job = job_name(&spec.execution.id, number.parse().ok()?);
                Some((number, job))
            }))
    }
}
