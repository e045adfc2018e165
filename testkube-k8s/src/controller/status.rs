//! What the controller writes back: `status` of a TestWorkflowExecution in
//! Testkube's shape, and Kubernetes Events on the document.
//!
//! Why Events as well as `status.error`: `kubectl describe twe NAME` and
//! event-based alerting show why a run did not start, where Testkube
//! writes nothing at all (kubeshop/testkube#6819).

use chrono::{DateTime, SubsecRound, Utc};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use testkube_core::engine::ExecutionSummary;
use testkube_core::model::{LatestExecution, LatestExecutionResult};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::ExecutionRecord;

/// The component Events name as their source.
pub(super) const COMPONENT: &str = "testkube-agent";

/// Writes the status and Events of the TestWorkflowExecutions of one
/// namespace.
#[derive(Clone)]
pub(super) struct StatusWriter {
    executions: Api<DynamicObject>,
    events: Api<Event>,
}

impl StatusWriter {
    pub(super) fn new(client: Client, namespace: &str) -> Self {
        StatusWriter {
            executions: Api::namespaced_with(
                client.clone(),
                namespace,
                &super::catalog::resource("TestWorkflowExecution", "testworkflowexecutions"),
            ),
            events: Api::namespaced(client, namespace),
        }
    }

    /// Sets `status` (a merge patch: `error: null` removes an old error).
    pub(super) async fn write(
        &self,
        name: &str,
        generation: i64,
        latest: Option<&LatestExecution>,
        error: Option<&str>,
    ) -> Result<(), kube::Error> {
        let mut status = json!({ "generation": generation, "error": error });
        if let Some(latest) = latest {
            status["latestExecution"] = serde_json::to_value(latest).unwrap_or_default();
        }
        self.executions
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map(drop)
    }

    /// Records an Event on the document (`Normal` or `Warning`).
    pub(super) async fn event(
        &self,
        document: &DynamicObject,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let name = document.metadata.name.clone().unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}.")),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("testworkflows.testkube.io/v1".to_owned()),
                kind: Some("TestWorkflowExecution".to_owned()),
                name: Some(name),
                namespace: document.metadata.namespace.clone(),
                uid: document.metadata.uid.clone(),
                resource_version: document.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            // The API server refuses messages past 1 KiB in events.k8s.io;
            // keep the start of long ones.
            message: Some(truncate(message, 1000)),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_owned()),
                host: None,
            }),
            reporting_component: Some(COMPONENT.to_owned()),
            reporting_instance: Some(COMPONENT.to_owned()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        self.events
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
    }
}

/// `status.latestExecution` of a run that was just started.
pub(super) fn started(
    run: &testkube_core::service::RunHandle,
    namespace: &str,
    document: &str,
    scheduled_at: DateTime<Utc>,
) -> LatestExecution {
    let at = scheduled_at.trunc_subsecs(3);
    LatestExecution {
        id: run.id().to_owned(),
        name: run.name().to_owned(),
        namespace: Some(namespace.to_owned()),
        number: i64::try_from(run.number()).ok(),
        scheduled_at: Some(at),
        status_at: Some(at),
        result: Some(LatestExecutionResult::queued(at)),
        test_workflow_execution_name: Some(document.to_owned()),
        ..LatestExecution::default()
    }
}

/// Records a status change of the run at `at`.
pub(super) fn changed(latest: &mut LatestExecution, status: ExecutionStatus, at: DateTime<Utc>) {
    let at = at.trunc_subsecs(3);
    latest.status_at = Some(at);
    if let Some(result) = &mut latest.result {
        result.status = status;
        if status == ExecutionStatus::Running && result.started_at.is_none() {
            result.started_at = Some(at);
        }
    }
}

/// Records the end of the run from its summary.
pub(super) fn finished(latest: &mut LatestExecution, summary: &ExecutionSummary) {
    let parse = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    let duration_ms = i64::try_from(summary.duration_ms).unwrap_or(i64::MAX);
    ended(
        latest,
        summary.status,
        parse(&summary.started_at),
        parse(&summary.finished_at).unwrap_or_else(Utc::now),
        Some(duration_ms),
    );
}

/// Records the end of the run as the store has it (after a restart).
pub(super) fn from_record(latest: &mut LatestExecution, record: &ExecutionRecord) {
    let finished_at = record.finished_at.unwrap_or_else(Utc::now);
    let duration_ms = record
        .started_at
        .map(|started| (finished_at - started).num_milliseconds().max(0));
    ended(
        latest,
        record.status,
        record.started_at,
        finished_at,
        duration_ms,
    );
}

/// One place for what the end of a run sets.
fn ended(
    latest: &mut LatestExecution,
    status: ExecutionStatus,
    started_at: Option<DateTime<Utc>>,
    finished_at: DateTime<Utc>,
    duration_ms: Option<i64>,
) {
    latest.status_at = Some(finished_at.trunc_subsecs(3));
    if let Some(result) = &mut latest.result {
        result.end(status, started_at, finished_at, duration_ms);
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn long_messages_are_cut_on_a_character() {
        assert_eq!(truncate("ééé", 3), "é...");
        assert_eq!(truncate("short", 10), "short");
    }
}
