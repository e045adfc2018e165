//! Live notifications as server-sent events: an execution's (its main
//! worker's logs and outputs, and the execution's result as it changes), a
//! parallel worker's, or a service instance's.
//!
//! Every event's `id` is its `seqNo`; a client that reconnects with
//! `Last-Event-ID` (browsers' `EventSource` do) or `?resumeAfterSeqNo=N`
//! gets what followed, nothing twice. A run this server runs is followed
//! live (see [`crate::live`]); any other execution is read from the store:
//! its logs (as they grow, while another process still runs it), then its
//! outputs and its result, numbered in that order, the same at every
//! request. A comment line every 20 seconds keeps idle
//! connections (and proxies) open.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
use testkube_core::store::{LogFilter, ResultStore};

use super::AppRef;
use crate::api::{Execution, Notification, Output, ROOT_WORKER};
use crate::error::{ApiError, ApiResult};
use crate::live::{Entry, LiveRun};

/// Heartbeat interval (Testkube's).
const HEARTBEAT: Duration = Duration::from_secs(20);
/// Notifications sent per read of the live log.
const BATCH: usize = 256;
/// How often a run another process runs is read again from the store.
const POLL: Duration = Duration::from_millis(500);

type Events = BoxStream<'static, Result<SseEvent, Infallible>>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResumeQuery {
    resume_after_seq_no: Option<String>,
}

/// Which notifications a stream carries.
#[derive(Debug, Clone)]
enum Scope {
    /// The main worker's, and the execution's results.
    Execution,
    /// One worker's (`…/{step}/{index}`).
    Worker(String),
    /// One service instance's logs: its log "step" ends in
    /// `.services.{name}.{index}`, in the worker that started it.
    Service(String),
}

impl Scope {
    fn wants(&self, entry: &Entry) -> bool {
        match (self, entry.worker.as_deref()) {
            (Scope::Execution, None | Some(ROOT_WORKER)) => true,
            (Scope::Worker(suffix), Some(worker)) => worker.ends_with(suffix.as_str()),
            (Scope::Service(suffix), Some(_)) => {
                entry.notification.log.is_some()
                    && entry.notification.step.ends_with(suffix.as_str())
            }
            _ => false,
        }
    }
}

pub(crate) async fn execution(
    State(state): State<AppRef>,
    Path(id): Path<String>,
    Query(query): Query<ResumeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    follow(&state, &id, Scope::Execution, after(&query, &headers)?).await
}

pub(crate) async fn worker(
    State(state): State<AppRef>,
    Path((id, step, index)): Path<(String, String, String)>,
    Query(query): Query<ResumeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let index = index_of(&index)?;
    let scope = Scope::Worker(format!("/{step}/{index}"));
    follow(&state, &id, scope, after(&query, &headers)?).await
}

pub(crate) async fn service(
    State(state): State<AppRef>,
    Path((id, name, index)): Path<(String, String, String)>,
    Query(query): Query<ResumeQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let index = index_of(&index)?;
    let scope = Scope::Service(format!(".services.{name}.{index}"));
    follow(&state, &id, scope, after(&query, &headers)?).await
}

fn index_of(text: &str) -> ApiResult<usize> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("the index `{text}` is not a number")))
}

/// The `seqNo` the client has seen last (0: none).
fn after(query: &ResumeQuery, headers: &HeaderMap) -> ApiResult<u64> {
    let header = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .filter(|text| !text.is_empty())
        .map(|text| {
            seq_no(text.trim()).ok_or_else(|| {
                ApiError::bad_request(format!("Last-Event-ID `{text}` is not a seqNo"))
            })
        })
        .transpose()?;
    let query = query
        .resume_after_seq_no
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(|text| {
            seq_no(text).ok_or_else(|| {
                ApiError::bad_request(format!("resumeAfterSeqNo `{text}` is not a seqNo"))
            })
        })
        .transpose()?;
    Ok(header.unwrap_or(0).max(query.unwrap_or(0)))
}

/// A seqNo as clients send it: a whole number the OpenAPI document's int64
/// holds.
fn seq_no(text: &str) -> Option<u64> {
    text.parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
}

async fn follow(state: &AppRef, id: &str, scope: Scope, after: u64) -> ApiResult<Response> {
    let record = state
        .store
        .find_execution(id)
        .await
        .map_err(ApiError::store)?;
    let events = match state.live.get(&record.id) {
        Some(live) => live_events(live, scope, after),
        None => {
            let worker = match &scope {
                Scope::Execution => Some(ROOT_WORKER.to_owned()),
                // Any worker may have started it: every log is looked at.
                Scope::Service(_) => Some(String::new()),
                Scope::Worker(suffix) => state
                    .store
                    .steps(&record.id)
                    .await
                    .map_err(ApiError::store)?
                    .into_iter()
                    .map(|step| step.worker)
                    .find(|worker| worker.ends_with(suffix.as_str())),
            };
            let Some(worker) = worker else {
                return Err(ApiError::not_found(format!(
                    "execution {} has no such worker",
                    record.name
                )));
            };
            stored_events(Arc::clone(&state.store), record, worker, scope, after)
        }
    };
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response())
}

fn sse(notification: &Notification) -> Result<SseEvent, Infallible> {
    let data = serde_json::to_string(notification).unwrap_or_default();
    Ok(SseEvent::default()
        .id(notification.seq_no.to_string())
        .data(data))
}

/// A live run's notifications from `after` on, until it ends.
fn live_events(live: Arc<LiveRun>, scope: Scope, after: u64) -> Events {
    let changes = live.subscribe();
    let position = usize::try_from(after).unwrap_or(usize::MAX);
    stream::unfold(
        (live, changes, position, false),
        move |(live, mut changes, position, done)| {
            let scope = scope.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    let (page, last) = live.read(position, BATCH);
                    if !page.is_empty() || last {
                        let events: Vec<_> = page
                            .iter()
                            .filter(|entry| scope.wants(entry))
                            .map(|entry| sse(&entry.notification))
                            .collect();
                        let next = position + page.len();
                        return Some((stream::iter(events), (live, changes, next, last)));
                    }
                    // Nothing new: wait for the next notification (or the end).
                    if changes.changed().await.is_err() {
                        return None;
                    }
                }
            }
        },
    )
    .flatten()
    .boxed()
}

/// A stored execution's notifications: `worker`'s logs, then its outputs,
/// then (for the execution's stream) the execution's result.
fn stored_events(
    store: Arc<dyn ResultStore>,
    record: testkube_core::store::ExecutionRecord,
    worker: String,
    scope: Scope,
    after: u64,
) -> Events {
    let id = record.id.clone();
    let filter = LogFilter {
        worker: (!worker.is_empty()).then(|| worker.clone()),
        step: None,
        skip: 0,
        limit: Some(BATCH as u64),
    };
    let service = match &scope {
        Scope::Service(suffix) => Some(suffix.clone()),
        _ => None,
    };
    let logs = {
        let store = Arc::clone(&store);
        stream::unfold((Some(filter), false), move |(filter, ended)| {
            let store = Arc::clone(&store);
            let id = id.clone();
            let service = service.clone();
            async move {
                let mut filter = filter?;
                let chunks = store.logs(&id, &filter).await.unwrap_or_default();
                if chunks.is_empty() {
                    if ended {
                        return None;
                    }
                    // A run still going in another process (the agent's
                    // controller, a server before a restart) is followed
                    // until it ends; then its log is read once more, for
                    // what came just before the end.
                    let running = store
                        .get_execution(&id)
                        .await
                        .is_ok_and(|current| !current.status.is_finished());
                    if running {
                        tokio::time::sleep(POLL).await;
                    }
                    return Some((stream::iter(Vec::new()), (Some(filter), !running)));
                }
                filter.skip += chunks.len() as u64;
                let notes: Vec<Notification> = chunks
                    .into_iter()
                    .filter(|chunk| {
                        service
                            .as_deref()
                            .is_none_or(|suffix| chunk.step.ends_with(suffix))
                    })
                    .map(|chunk| Notification {
                        log: Some(String::from_utf8_lossy(&chunk.data).into_owned()),
                        ..note(&chunk.step)
                    })
                    .collect();
                Some((stream::iter(notes), (Some(filter), ended)))
            }
        })
        .flatten()
    };
    let tail = {
        let store = Arc::clone(&store);
        stream::once(async move {
            // The record as it ended (it may have been running at first).
            let record = store.get_execution(&record.id).await.unwrap_or(record);
            let outputs = store.outputs(&record.id).await.unwrap_or_default();
            let mut notes: Vec<Notification> = outputs
                .iter()
                .filter(|output| output.worker == worker)
                .map(|output| Notification {
                    output: Some(Output::of(output)),
                    ..note(&output.step)
                })
                .collect();
            if matches!(scope, Scope::Execution) {
                notes.push(Notification {
                    result: Some(Execution::summary(&record).result),
                    ..note("")
                });
            }
            stream::iter(notes)
        })
        .flatten()
    };
    logs.chain(tail)
        .enumerate()
        .filter_map(move |(index, mut notification)| {
            let seq_no = index as u64 + 1;
            notification.seq_no = seq_no;
            std::future::ready((seq_no > after).then(|| sse(&notification)))
        })
        .boxed()
}

fn note(step: &str) -> Notification {
    Notification::about(step, Utc::now())
}
