//! Continuing the executions a killed process left running: the agent,
//! restarted, takes them over in the store ([`RunService::claim_abandoned`])
//! and goes on with each ([`RunService::resume`]) where its workers still
//! run (Kubernetes Jobs outlive the agent).
//!
//! Why from the store alone: it holds what the run was started with (the
//! resolved workflow with its `secret()` calls, config, tags, the shard
//! durations), so the same plan is made again, with the same worker
//! numbers; secrets are looked up again, never stored. Sensitive config
//! values are stored masked, so the caller passes them back (the agent reads
//! them from the root worker's task) or the run cannot continue.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::error::ServiceError;
use super::recorder::EventRecorder;
use super::request::RunRequest;
use super::rerun::FailedOnly;
use super::{RunHandle, RunService};
use crate::engine::mask::sensitive_config_values;
use crate::engine::{ExecutionRequest, Recovered};
use crate::model::TestWorkflow;
use crate::status::{ExecutionStatus, StepStatus};
use crate::store::{StatusUpdate, StoreError};

impl RunService {
    /// Takes over the executions a process that died left unfinished (see
    /// [`ResultStore::claim_abandoned`](crate::store::ResultStore::claim_abandoned)),
    /// to [`resume`](Self::resume) each, instead of marking them aborted
    /// ([`recover_abandoned`](Self::recover_abandoned)). Returns their ids
    /// (none without a store).
    ///
    /// # Errors
    /// The store's error.
    pub async fn claim_abandoned(&self) -> Result<Vec<String>, StoreError> {
        match &self.store {
            Some(store) => store.claim_abandoned().await,
            None => Ok(Vec::new()),
        }
    }

    /// Ends a claimed execution that cannot go on (see
    /// [`resume`](Self::resume)'s errors) as `aborted` with `message`,
    /// keeping what it recorded: its open steps end `aborted` too.
    ///
    /// # Errors
    /// The store's error.
    pub async fn end_abandoned(&self, id: &str, message: &str) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = chrono::Utc::now();
        for mut step in store.steps(id).await? {
            if step.status.is_finished() {
                continue;
            }
            step.status = StepStatus::Aborted;
            step.finished_at = Some(now);
            store.upsert_step(id, step).await?;
        }
        let update = StatusUpdate {
            status: ExecutionStatus::Aborted,
            at: now,
            message: Some(message.to_owned()),
        };
        store.update_status(id, update).await
    }

    /// Goes on with the recorded, unfinished execution `id` that an earlier
    /// process started (see [`Engine::resume`](crate::engine::Engine::resume)):
    /// the same plan, its workers taken up through the executor, every event
    /// recorded once. `config` gives the values it runs with when the
    /// stored ones are not whole (sensitive values are stored masked);
    /// `None` uses the stored ones.
    ///
    /// # Errors
    /// [`ServiceError::NoStore`], [`ServiceError::NotFound`],
    /// [`ServiceError::UnusableSnapshot`], [`ServiceError::SensitiveConfig`]
    /// (sensitive values are needed and `config` is `None`), the
    /// store's error, or why the plan cannot be made or started (as
    /// [`RunService::start`]).
    pub async fn resume(
        &self,
        id: &str,
        config: Option<BTreeMap<String, Value>>,
    ) -> Result<RunHandle, ServiceError> {
        let store = self.store.as_ref().ok_or(ServiceError::NoStore(
            "resuming reads the recorded execution",
        ))?;
        let record = store.get_execution(id).await.map_err(|err| match err {
            StoreError::NotFound(_) => ServiceError::NotFound(id.to_owned()),
            other => ServiceError::Store(other),
        })?;
        let workflow: TestWorkflow =
            serde_json::from_value(record.snapshot.clone()).map_err(|err| {
                ServiceError::UnusableSnapshot {
                    name: record.name.clone(),
                    reason: err.to_string(),
                }
            })?;
        let sensitive_keys: Vec<String> = workflow
            .spec
            .config
            .iter()
            .filter(|(_, schema)| schema.sensitive == Some(true))
            .map(|(name, _)| name.clone())
            .collect();
        let config = match config {
            Some(config) => config,
            None if sensitive_keys.is_empty() => record.config.clone(),
            None => {
                return Err(ServiceError::SensitiveConfig {
                    name: record.name,
                    parameters: sensitive_keys,
                });
            }
        };
        let passed = config.iter().map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        });
        let sensitive = sensitive_config_values(&workflow.spec.config, passed);
        let mut request = RunRequest::new(workflow)
            .with_config(config)
            .with_sensitive(sensitive)
            .with_source(format!("execution {}", record.name));
        request.tags = record.tags.clone();
        request.failed_only = Some(FailedOnly::keeping_all(
            &record.name,
            record.shard_durations.clone(),
        ));
        let prepared = self.prepare(request).await?;
        let steps = store.steps(id).await.map_err(ServiceError::Store)?;
        let recorder = EventRecorder::resume(Arc::clone(store), id)
            .await
            .map_err(ServiceError::Store)?;
        let engine = self.engine(prepared.catalog.clone());
        let execution = ExecutionRequest {
            id: record.id.clone(),
            number: record.number,
            name: record.name.clone(),
            config: prepared.request.config.clone(),
            tags: record.tags.clone(),
            labels: prepared.labels.clone(),
            secrets: prepared.secrets.clone(),
        };
        let recovered = Recovered::new(
            record.scheduled_at.into(),
            record.started_at.map(Into::into),
            steps,
        );
        let running = engine
            .resume(prepared.plan, execution, recovered)
            .map_err(ServiceError::Engine)?;
        Ok(self.follow(
            running,
            Some(recorder),
            record.id,
            record.name,
            record.number,
            prepared.workflow_name,
        ))
    }
}
