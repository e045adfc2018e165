//! Reading and controlling executions: list (with Testkube's filters and
//! `{totals, filtered, results}`), get, abort, resume, tags, test cases,
//! and the final logs as text. Starting runs is [`super::runs`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use testkube_core::store::{ExecutionFilter, ExecutionRecord, LogFilter};

use super::AppRef;
use super::filters::Filter;
use crate::api::{Details, Execution, ExecutionList, TestCase, Totals};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Change;

/// Executions per page when `pageSize` is not given (Testkube's default).
const DEFAULT_PAGE_SIZE: u32 = 100;
/// Log chunks read from the store at a time.
const LOG_PAGE: u64 = 256;

/// The list's query: Testkube's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) start_date: Option<String>,
    pub(crate) end_date: Option<String>,
    pub(crate) selector: Option<String>,
    pub(crate) tag_selector: Option<String>,
    pub(crate) text_search: Option<String>,
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
    // What the store can filter (a workflow, one status) is counted and paged
    // there: the answer costs a page, not every execution.
    if let Some(status) = filter.store_status() {
        let counts = state
            .store
            .count_executions(workflow.as_deref())
            .await
            .map_err(ApiError::store)?;
        let filtered = match status {
            Some(status) => Totals::of_counts(counts.iter().filter(|(s, _)| **s == status)),
            None => Totals::of_counts(&counts),
        };
        let records = state
            .store
            .list_executions(&ExecutionFilter {
                workflow,
                status,
                limit: Some(u32::try_from(page_size).unwrap_or(u32::MAX)),
                skip: (page as u64).saturating_mul(page_size as u64),
            })
            .await
            .map_err(ApiError::store)?;
        return Ok(Json(ExecutionList {
            totals: Totals::of_counts(&counts),
            filtered,
            results: records
                .iter()
                .map(|record| with_context(state, Execution::summary(record)))
                .collect(),
        }));
    }
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

pub(crate) fn with_context(state: &AppRef, mut execution: Execution) -> Execution {
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
    let live = running_here(&state, &id, "abort").await?;
    live.control().abort();
    state.metrics.changed(Change::Aborted, &live.workflow);
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn resume(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    running_here(&state, &id, "resume")
        .await?
        .control()
        .resume();
    Ok(StatusCode::NO_CONTENT)
}

/// The execution `id` (or name) as this server runs it; a 409 saying why
/// there is nothing to `action` when it does not run here.
async fn running_here(
    state: &AppRef,
    id: &str,
    action: &str,
) -> ApiResult<Arc<crate::live::LiveRun>> {
    let record = state
        .store
        .find_execution(id)
        .await
        .map_err(ApiError::store)?;
    match state.live.get(&record.id) {
        Some(live) if !live.is_finished() => Ok(live),
        _ if record.status.is_finished() => Err(ApiError::conflict(format!(
            "execution {} already finished ({}); there is nothing to {action}",
            record.name,
            record.status.as_str()
        ))),
        _ => Err(ApiError::conflict(format!(
            "execution {} is {} but was not started by this server; {action} it where it runs",
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
