//! Starting runs and reading executions: run a workflow, list (with
//! Testkube's filters and `{totals, filtered, results}`), get, abort,
//! resume, rerun, and the final logs as text.
//!
//! Every run starts through the run service (as the CLI's do); this module
//! only turns requests into [`RunRequest`]s and records into JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;
use testkube_core::engine::WorkflowSet;
use testkube_core::engine::mask::sensitive_config_values;
use testkube_core::model::TestWorkflowTemplate;
use testkube_core::resolve::TemplateOrigin;
use testkube_core::service::{RerunOptions, RunRequest, ServiceError};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{ExecutionFilter, ExecutionRecord, LogFilter};
use testkube_core::{ResolveOptions, Severity, TemplateSet, resolve_workflow};

use super::AppRef;
use super::definitions::error as definitions_error;
use crate::api::{Details, Execution, ExecutionList, RunBody, TestCase, Totals};
use crate::definitions::Kind;
use crate::error::{ApiError, ApiResult, Issue};
use crate::metrics::{Change, RunLabels};

/// Executions per page when `pageSize` is not given (Testkube's default).
const DEFAULT_PAGE_SIZE: u32 = 100;
/// Log chunks read from the store at a time.
const LOG_PAGE: u64 = 256;

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
    let passed = body.config.iter().map(|(key, value)| {
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        (key.clone(), text)
    });
    let sensitive = sensitive_config_values(&resolved.workflow().spec.config, passed);
    let mut request = RunRequest::new(resolved.workflow().clone())
        .with_config(
            resolved
                .config()
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        )
        .with_sensitive(sensitive)
        .with_source(format!("TestWorkflow {name}"));
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
        | ServiceError::Engine(_)
        | ServiceError::SensitiveConfig { .. }
        | ServiceError::UnusableSnapshot { .. } => ApiError::bad_request(err.to_string()),
        ServiceError::Store(store) => ApiError::store(store),
        other => ApiError::internal(other.to_string()),
    }
}

/// The list's query: Testkube's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    status: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    selector: Option<String>,
    tag_selector: Option<String>,
    text_search: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppRef>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<ExecutionList>> {
    list_executions(&state, None, &query).await
}

pub(crate) async fn list_of_workflow(
    State(state): State<AppRef>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<ExecutionList>> {
    list_executions(&state, Some(name), &query).await
}

async fn list_executions(
    state: &AppRef,
    workflow: Option<String>,
    query: &ListQuery,
) -> ApiResult<Json<ExecutionList>> {
    let filter = Filter::parse(query)?;
    // Whole numbers the OpenAPI document declares as int32 from 0.
    let number = |text: Option<&str>, name: &str, default: u32| -> ApiResult<usize> {
        let Some(text) = text else {
            return Ok(default as usize);
        };
        text.parse::<u32>()
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(|n| n as usize)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` is `{text}`; give a whole number from 0 to {}",
                    i32::MAX
                ))
            })
    };
    let page = number(query.page.as_deref(), "page", 0)?;
    let page_size = number(query.page_size.as_deref(), "pageSize", DEFAULT_PAGE_SIZE)?.max(1);
    let records = state
        .store
        .list_executions(&ExecutionFilter {
            workflow,
            ..ExecutionFilter::default()
        })
        .await
        .map_err(ApiError::store)?;
    let kept: Vec<&ExecutionRecord> = records.iter().filter(|r| filter.matches(r)).collect();
    let results = kept
        .iter()
        .skip(page.saturating_mul(page_size))
        .take(page_size)
        .map(|record| with_context(state, Execution::summary(record)))
        .collect();
    Ok(Json(ExecutionList {
        totals: Totals::of(&records),
        filtered: Totals::of(kept.iter().copied()),
        results,
    }))
}

fn with_context(state: &AppRef, mut execution: Execution) -> Execution {
    if let Some(live) = state.live.get(&execution.id) {
        execution.running_context = live.running_context().cloned();
    }
    execution
}

pub(crate) async fn get(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<Json<Execution>> {
    let record = state
        .store
        .find_execution(&id)
        .await
        .map_err(ApiError::store)?;
    let store = &state.store;
    let (steps, outputs, cases) = tokio::join!(
        store.steps(&record.id),
        store.outputs(&record.id),
        store.test_cases(&record.id)
    );
    let details = Details {
        steps: steps.map_err(ApiError::store)?,
        outputs: outputs.map_err(ApiError::store)?,
        cases: cases.map_err(ApiError::store)?,
    };
    Ok(Json(with_context(
        &state,
        Execution::full(&record, &details),
    )))
}

pub(crate) async fn abort(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let record = state
        .store
        .find_execution(&id)
        .await
        .map_err(ApiError::store)?;
    match state.live.get(&record.id) {
        Some(live) if !live.is_finished() => {
            live.control().abort();
            state.metrics.changed(Change::Aborted, &live.workflow);
            Ok(StatusCode::NO_CONTENT)
        }
        _ if record.status.is_finished() => Err(ApiError::conflict(format!(
            "execution {} already finished ({}); there is nothing to abort",
            record.name,
            record.status.as_str()
        ))),
        _ => Err(ApiError::conflict(format!(
            "execution {} is {} but was not started by this server; abort it where it runs",
            record.name,
            record.status.as_str()
        ))),
    }
}

pub(crate) async fn resume(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let record = state
        .store
        .find_execution(&id)
        .await
        .map_err(ApiError::store)?;
    match state.live.get(&record.id) {
        Some(live) if !live.is_finished() => {
            live.control().resume();
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::conflict(format!(
            "execution {} is not running on this server ({}); there is nothing to resume",
            record.name,
            record.status.as_str()
        ))),
    }
}

pub(crate) async fn abort_workflow(
    State(state): State<AppRef>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    for live in state.live.running(Some(&name)) {
        live.control().abort();
        state.metrics.changed(Change::Aborted, &live.workflow);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH .../tags`: replaces the execution's tags with the body's, either
/// `{"tags": {...}}` or the map itself.
pub(crate) async fn update_tags(
    State(state): State<AppRef>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Execution>> {
    let value: Value = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request(format!(
            "the body is not JSON ({err}); send {{\"tags\": {{\"key\": \"value\"}}}}"
        ))
    })?;
    let value = match value {
        Value::Object(mut map)
            if map.len() == 1 && map.get("tags").is_some_and(Value::is_object) =>
        {
            map.remove("tags").unwrap_or_default()
        }
        other => other,
    };
    let tags: BTreeMap<String, String> = serde_json::from_value(value).map_err(|err| {
        ApiError::bad_request(format!(
            "the tags are not a map of texts ({err}); send {{\"tags\": {{\"key\": \"value\"}}}}"
        ))
    })?;
    let record = state
        .store
        .find_execution(&id)
        .await
        .map_err(ApiError::store)?;
    state
        .store
        .update_tags(&record.id, &tags)
        .await
        .map_err(ApiError::store)?;
    let record = state
        .store
        .get_execution(&record.id)
        .await
        .map_err(ApiError::store)?;
    Ok(Json(with_context(&state, Execution::summary(&record))))
}

/// The test cases of the execution's reports (ours), in recorded order.
pub(crate) async fn test_cases(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TestCase>>> {
    let record = state
        .store
        .find_execution(&id)
        .await
        .map_err(ApiError::store)?;
    let cases = state
        .store
        .test_cases(&record.id)
        .await
        .map_err(ApiError::store)?;
    Ok(Json(cases.iter().map(TestCase::of).collect()))
}

/// `?worker=PATH&step=REF` (ours) narrow the log.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogQuery {
    worker: Option<String>,
    step: Option<String>,
}

/// The execution's output as plain text, streamed from the store a page
/// at a time (a long log is never held whole).
pub(crate) async fn logs(
    State(state): State<AppRef>,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Response> {
    let record = state
        .store
        .find_execution(&id)
        .await
        .map_err(ApiError::store)?;
    let store = Arc::clone(&state.store);
    let filter = LogFilter {
        worker: query.worker,
        step: query.step,
        skip: 0,
        limit: Some(LOG_PAGE),
    };
    // The first page is read before answering, so a failing store is an
    // error status rather than a cut body.
    let first = store
        .logs(&record.id, &filter)
        .await
        .map_err(ApiError::store)?;
    let pages = futures_util::stream::unfold(
        (Some(first), filter, record.id),
        move |(page, mut filter, id)| {
            let store = Arc::clone(&store);
            async move {
                let chunks = match page {
                    Some(chunks) => chunks,
                    None => match store.logs(&id, &filter).await {
                        Ok(chunks) => chunks,
                        Err(err) => {
                            return Some((Err(std::io::Error::other(err)), (None, filter, id)));
                        }
                    },
                };
                if chunks.is_empty() {
                    return None;
                }
                filter.skip += chunks.len() as u64;
                let bytes: Vec<u8> = chunks.into_iter().flat_map(|chunk| chunk.data).collect();
                Some((Ok(Bytes::from(bytes)), (None, filter, id)))
            }
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(pages),
    )
        .into_response())
}

/// The list's filters, parsed once.
struct Filter {
    statuses: Vec<ExecutionStatus>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    labels: LabelSelector,
    tags: LabelSelector,
    text: Option<String>,
}

impl Filter {
    fn parse(query: &ListQuery) -> ApiResult<Self> {
        let statuses = match query.status.as_deref() {
            None | Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    ExecutionStatus::ALL
                        .into_iter()
                        .find(|status| status.as_str() == name.trim())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "unknown status `{name}`; the statuses are {}",
                                ExecutionStatus::ALL.map(|s| s.as_str()).join(", ")
                            ))
                        })
                })
                .collect::<ApiResult<_>>()?,
        };
        Ok(Filter {
            statuses,
            start: date(query.start_date.as_deref(), "startDate", false)?,
            end: date(query.end_date.as_deref(), "endDate", true)?,
            labels: LabelSelector::parse(query.selector.as_deref())?,
            tags: LabelSelector::parse(query.tag_selector.as_deref())?,
            text: query.text_search.clone().filter(|text| !text.is_empty()),
        })
    }

    fn matches(&self, record: &ExecutionRecord) -> bool {
        let labels: BTreeMap<String, String> = record
            .snapshot
            .pointer("/metadata/labels")
            .and_then(|labels| serde_json::from_value(labels.clone()).ok())
            .unwrap_or_default();
        (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && self.start.is_none_or(|start| record.scheduled_at >= start)
            && self.end.is_none_or(|end| record.scheduled_at <= end)
            && self.labels.matches(&labels)
            && self.tags.matches(&record.tags)
            && self
                .text
                .as_ref()
                .is_none_or(|text| record.name.contains(text.as_str()))
    }
}

/// `2026-12-07` (the whole day) or an RFC 3339 time.
fn date(text: Option<&str>, name: &str, end_of_day: bool) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(text) = text.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` is `{text}`; give a date (2026-12-07) or an RFC 3339 time"
        ))
    })?;
    let time = if end_of_day {
        day.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(time.map(|time| time.and_utc()))
}

/// A Kubernetes equality selector: `k=v`, `k!=v`, `k` (has), comma-separated.
#[derive(Debug, Default)]
pub(crate) struct LabelSelector {
    requirements: Vec<(String, Requirement)>,
}

#[derive(Debug)]
enum Requirement {
    Equals(String),
    Differs(String),
    Exists,
}

impl LabelSelector {
    pub(crate) fn parse(text: Option<&str>) -> ApiResult<Self> {
        let mut requirements = Vec::new();
        for part in text.unwrap_or_default().split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (key, requirement) = if let Some((key, value)) = part.split_once("!=") {
                (key, Requirement::Differs(value.trim().to_owned()))
            } else if let Some((key, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                (key, Requirement::Equals(value.trim().to_owned()))
            } else {
                (part, Requirement::Exists)
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "the selector part `{part}` has no key; write `key=value`, `key!=value` or `key`"
                )));
            }
            requirements.push((key.to_owned(), requirement));
        }
        Ok(LabelSelector { requirements })
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|(key, requirement)| match requirement {
                Requirement::Equals(value) => labels.get(key) == Some(value),
                Requirement::Differs(value) => labels.get(key) != Some(value),
                Requirement::Exists => labels.contains_key(key),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_read_as_kubernetes_ones() {
        let labels = BTreeMap::from([
            ("team".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "smoke".to_owned()),
        ]);
        let matches = |text: &str| LabelSelector::parse(Some(text)).unwrap().matches(&labels);
        assert!(matches("team=web"));
        assert!(matches("team==web,tier"));
        assert!(matches("team!=api"));
        assert!(!matches("team=api"));
        assert!(!matches("owner"));
        assert!(matches(""));
        assert!(LabelSelector::parse(Some("=x")).is_err());
    }

    #[test]
    fn dates_are_days_or_times() {
        let start = date(Some("2026-12-07"), "startDate", false)
            .unwrap()
            .unwrap();
        assert_eq!(start.to_rfc3339(), "2026-12-07T00:00:00+00:00");
        let end = date(Some("2026-12-07"), "endDate", true).unwrap().unwrap();
        assert_eq!(end.to_rfc3339(), "2026-12-07T23:59:59.999+00:00");
        assert!(date(Some("yesterday"), "startDate", false).is_err());
        assert_eq!(date(None, "startDate", false).unwrap(), None);
    }
}
