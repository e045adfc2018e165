//! Starting runs: `POST /v1/test-workflows/{name}/executions` (and the
//! schedules), and reruns. Every run starts through the run service (as
//! the CLI's do); this module only turns requests into [`RunRequest`]s.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use testkube_core::engine::{EngineError, WorkflowSet};
use testkube_core::model::TestWorkflowTemplate;
use testkube_core::resolve::TemplateOrigin;
use testkube_core::service::{RerunOptions, RunRequest, ServiceError};
use testkube_core::{ResolveOptions, Severity, TemplateSet, resolve_workflow};

use super::AppRef;
use super::definitions::error as definitions_error;
use crate::api::{Execution, RunBody};
use crate::definitions::Kind;
use crate::error::{ApiError, ApiResult, Issue};
use crate::metrics::RunLabels;

pub(crate) async fn run(
    State(state): State<AppRef>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Execution>> {
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| {
            ApiError::bad_request(format!(
                "the body is not a run request `{{config, tags, runningContext}}`: {err}"
            ))
        })?
    };
    start_workflow(&state, &name, body).await.map(Json)
}

/// Starts the workflow `name` as `body` asks: what `POST .../executions`
/// and the schedules do.
pub(crate) async fn start_workflow(
    state: &AppRef,
    name: &str,
    body: RunBody,
) -> ApiResult<Execution> {
    if body.name.as_deref().is_some_and(|name| !name.is_empty()) {
        return Err(ApiError::bad_request(
            "custom execution names are not supported yet; leave `name` out (executions are named WORKFLOW-N)",
        ));
    }
    let workflow = state
        .definitions
        .get(Kind::Workflow, name)
        .await
        .map_err(definitions_error)?;
    let templates = templates(state).await?;
    let options = body
        .config
        .iter()
        .fold(ResolveOptions::new(), |options, (key, value)| {
            options.with_config(key.clone(), value.clone())
        });
    let resolved = resolve_workflow(&workflow, &templates, &options, None).map_err(|err| {
        ApiError::invalid(
            format!("workflow `{name}` cannot run with this config"),
            issues(&err.diagnostics),
        )
    })?;
    let mut request =
        RunRequest::resolved(&resolved, &body.config).with_source(format!("TestWorkflow {name}"));
    for (key, value) in body.tags {
        request = request.with_tag(key, value);
    }
    start(state, request, body.running_context, templates).await
}

/// `?failedOnly=true` (ours) runs only the workers that did not pass.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RerunQuery {
    failed_only: Option<String>,
}

pub(crate) async fn rerun(
    State(state): State<AppRef>,
    Path(id): Path<String>,
    Query(query): Query<RerunQuery>,
) -> ApiResult<Json<Execution>> {
    let failed_only = match query.failed_only.as_deref() {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`failedOnly` is `{other}`; give true or false"
            )));
        }
    };
    let options = RerunOptions::new().failed_only(failed_only);
    let request = state
        .service
        .rerun_request(&id, &options)
        .await
        .map_err(service_error)?;
    let templates = templates(&state).await?;
    start(&state, request, None, templates).await.map(Json)
}

/// Plans, records and starts `request`; answers the new execution.
async fn start(
    state: &AppRef,
    request: RunRequest,
    running_context: Option<Value>,
    templates: TemplateSet,
) -> ApiResult<Execution> {
    let scheduled_at = Utc::now();
    let labels = RunLabels {
        name: String::new(),
        labels: request.workflow.metadata.labels.clone().unwrap_or_default(),
        tags: request.tags.clone(),
        triggered_by: running_context
            .as_ref()
            .and_then(|context| context.pointer("/interface/type"))
            .and_then(Value::as_str)
            .unwrap_or("api")
            .to_owned(),
    };
    let mut prepared = state
        .service
        .prepare(request)
        .await
        .map_err(service_error)?;
    // `execute` runs the server's workflows, read only when a step needs them.
    if prepared.uses_execute() {
        let mut set = WorkflowSet::new(templates);
        let workflows = state
            .definitions
            .list(Kind::Workflow)
            .await
            .map_err(definitions_error)?;
        for workflow in workflows {
            if let Err(err) = set.insert(workflow) {
                tracing::warn!("left out of `execute`: {err}");
            }
        }
        prepared = prepared.with_catalog(Arc::new(set));
    }
    let run = state
        .service
        .launch(prepared)
        .await
        .map_err(service_error)?;
    let id = run.id().to_owned();
    let labels = RunLabels {
        name: run.workflow().to_owned(),
        ..labels
    };
    let metrics = (Arc::clone(&state.metrics), labels);
    let live = state
        .live
        .follow(run, scheduled_at, running_context, metrics);
    let record = state
        .store
        .get_execution(&id)
        .await
        .map_err(ApiError::store)?;
    let mut execution = Execution::summary(&record);
    execution.running_context = live.running_context().cloned();
    Ok(execution)
}

/// The built-in templates and the server's (which win).
async fn templates(state: &AppRef) -> ApiResult<TemplateSet> {
    let mut set =
        TemplateSet::with_builtins().map_err(|err| ApiError::internal(err.to_string()))?;
    let templates = state
        .definitions
        .list(Kind::Template)
        .await
        .map_err(definitions_error)?;
    for template in templates {
        let name = template.metadata.name.clone().unwrap_or_default();
        match serde_json::to_value(template)
            .and_then(serde_json::from_value::<TestWorkflowTemplate>)
        {
            Ok(template) => {
                set.insert(template, TemplateOrigin::File(format!("template {name}")));
            }
            Err(err) => tracing::warn!(template = %name, "left out: {err}"),
        }
    }
    Ok(set)
}

fn issues(diagnostics: &[testkube_core::Diagnostic]) -> Vec<Issue> {
    diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity() == Severity::Error)
        .map(|diagnostic| Issue {
            path: diagnostic.path().map(str::to_owned),
            line: None,
            column: None,
            message: diagnostic.message().to_owned(),
        })
        .collect()
}

fn service_error(err: ServiceError) -> ApiError {
    match err {
        ServiceError::Plan {
            ref workflow,
            ref diagnostics,
        } => ApiError::invalid(
            format!("cannot plan workflow `{workflow}`"),
            issues(diagnostics),
        ),
        ServiceError::NotFound(_) => ApiError::not_found(err.to_string()),
        ServiceError::StillRunning { .. } => ApiError::conflict(err.to_string()),
        ServiceError::MissingSecret { .. }
        | ServiceError::MissingEnvFromSecret { .. }
        | ServiceError::SecretCall { .. }
        | ServiceError::Engine(EngineError::Unsupported(_))
        | ServiceError::SensitiveConfig { .. }
        | ServiceError::UnusableSnapshot { .. } => ApiError::bad_request(err.to_string()),
        ServiceError::Store(store) => ApiError::store(store),
        other => ApiError::internal(other.to_string()),
    }
}
