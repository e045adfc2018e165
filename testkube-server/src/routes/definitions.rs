//! `/v1/test-workflows` and `/v1/test-workflow-templates`: list, read,
//! create, replace, validate and delete definitions.
//!
//! A body is the document form as YAML when the `Content-Type` says `yaml`
//! (what `kubectl` users have on disk), else JSON in the API form
//! (`{name, description, labels, annotations, spec}`) or the document form.
//! Either way it is checked as `testkube validate` checks a file, and its
//! problems come back with field paths (and, for YAML, line and column).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::{LoadOptions, Severity, load_file};

use super::AppRef;
use crate::api::Definition;
use crate::definitions::{DefinitionsError, Kind, Save};
use crate::error::{ApiError, ApiResult, Issue};
use crate::metrics::Change;

/// `?selector=k=v,k2&textSearch=...`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    selector: Option<String>,
    text_search: Option<String>,
}

pub(crate) async fn list_workflows(
    State(state): State<AppRef>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Definition>>> {
    list(&state, Kind::Workflow, &query).await
}

pub(crate) async fn list_templates(
    State(state): State<AppRef>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Definition>>> {
    list(&state, Kind::Template, &query).await
}

pub(crate) async fn get_workflow(
    State(state): State<AppRef>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    get(&state, Kind::Workflow, &name, &headers).await
}

pub(crate) async fn get_template(
    State(state): State<AppRef>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    get(&state, Kind::Template, &name, &headers).await
}

pub(crate) async fn create_workflow(
    State(state): State<AppRef>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Definition>> {
    save(&state, Kind::Workflow, None, &headers, &body).await
}

pub(crate) async fn create_template(
    State(state): State<AppRef>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Definition>> {
    save(&state, Kind::Template, None, &headers, &body).await
}

pub(crate) async fn replace_workflow(
    State(state): State<AppRef>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Definition>> {
    save(&state, Kind::Workflow, Some(name), &headers, &body).await
}

pub(crate) async fn replace_template(
    State(state): State<AppRef>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Definition>> {
    save(&state, Kind::Template, Some(name), &headers, &body).await
}

pub(crate) async fn validate_workflow(headers: HeaderMap, body: Bytes) -> ApiResult<StatusCode> {
    parse(Kind::Workflow, &headers, &body).map(|_| StatusCode::NO_CONTENT)
}

pub(crate) async fn validate_template(headers: HeaderMap, body: Bytes) -> ApiResult<StatusCode> {
    parse(Kind::Template, &headers, &body).map(|_| StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_workflow(
    State(state): State<AppRef>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&state, Kind::Workflow, &name).await
}

pub(crate) async fn delete_template(
    State(state): State<AppRef>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&state, Kind::Template, &name).await
}

async fn list(state: &AppRef, kind: Kind, query: &ListQuery) -> ApiResult<Json<Vec<Definition>>> {
    let selector = super::filters::LabelSelector::parse(query.selector.as_deref())?;
    let text = query.text_search.as_deref().unwrap_or_default();
    let definitions = state.definitions.list(kind).await.map_err(error)?;
    Ok(Json(
        definitions
            .iter()
            .map(Definition::of)
            .filter(|definition| definition.name.contains(text))
            .filter(|definition| selector.matches(&definition.labels))
            .collect(),
    ))
}

async fn get(state: &AppRef, kind: Kind, name: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let definition = state.definitions.get(kind, name).await.map_err(error)?;
    let wants_yaml = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("yaml"));
    if wants_yaml {
        let text = serde_saphyr::to_string(&definition)
            .map_err(|err| ApiError::internal(format!("cannot write YAML: {err}")))?;
        return Ok(([(header::CONTENT_TYPE, "text/yaml")], text).into_response());
    }
    Ok(Json(Definition::of(&definition)).into_response())
}

async fn save(
    state: &AppRef,
    kind: Kind,
    path_name: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Json<Definition>> {
    let mut definition = parse(kind, headers, body)?;
    let mode = match path_name {
        None => Save::Create,
        Some(name) => {
            match definition.metadata.name.as_deref() {
                None | Some("") => definition.metadata.name = Some(name),
                Some(given) if given == name => {}
                Some(given) => {
                    return Err(ApiError::bad_request(format!(
                        "the body names {} `{given}` but the path `{name}`; rename it with DELETE and POST",
                        kind.noun()
                    )));
                }
            }
            Save::Replace
        }
    };
    if definition
        .metadata
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "the {} has no name; set `metadata.name` (or `name` in the API form)",
            kind.noun()
        )));
    }
    let answer = Definition::of(&definition);
    state
        .definitions
        .save(kind, definition, mode)
        .await
        .map_err(error)?;
    if kind == Kind::Workflow {
        let change = match mode {
            Save::Create => Change::Created,
            Save::Replace => Change::Updated,
        };
        state.metrics.changed(change, &answer.name);
    }
    Ok(Json(answer))
}

async fn delete(state: &AppRef, kind: Kind, name: &str) -> ApiResult<StatusCode> {
    state.definitions.delete(kind, name).await.map_err(error)?;
    if kind == Kind::Workflow {
        state.metrics.changed(Change::Deleted, name);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The definition a body holds, checked as `testkube validate` checks a file.
fn parse(kind: Kind, headers: &HeaderMap, body: &[u8]) -> ApiResult<TestWorkflow> {
    let yaml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.contains("yaml"));
    let (text, positions) = if yaml {
        (body.to_vec(), true)
    } else {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
            ApiError::bad_request(format!(
                "the body is not JSON ({err}); send JSON, or YAML with `Content-Type: text/yaml`"
            ))
        })?;
        let document = if value.get("apiVersion").is_some() || value.get("metadata").is_some() {
            value
        } else {
            let api: Definition = serde_json::from_value(value).map_err(|err| {
                ApiError::bad_request(format!(
                    "the body is not a {} in the API form `{{name, description, labels, annotations, spec}}`: {err}",
                    kind.noun()
                ))
            })?;
            api.to_document(kind.document_kind())
        };
        // JSON is YAML: the same checks; positions would point into this
        // re-encoding, not the body, so only field paths are given.
        let text = serde_json::to_vec_pretty(&document)
            .map_err(|err| ApiError::internal(err.to_string()))?;
        (text, false)
    };
    let file = load_file("request body", &text, &LoadOptions::default());
    let issues: Vec<Issue> = file
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity() == Severity::Error)
        .map(|diagnostic| {
            let start = diagnostic
                .span()
                .filter(|_| positions)
                .map(|span| span.start);
            Issue {
                path: diagnostic.path().map(str::to_owned),
                line: start.map(|at| at.line),
                column: start.map(|at| at.column),
                message: match diagnostic.hint() {
                    Some(hint) => format!("{} ({hint})", diagnostic.message()),
                    None => diagnostic.message().to_owned(),
                },
            }
        })
        .collect();
    if !issues.is_empty() {
        return Err(ApiError::invalid(
            format!("the {} is not valid", kind.noun()),
            issues,
        ));
    }
    let mut found: Vec<TestWorkflow> = Vec::new();
    let mut others = BTreeMap::new();
    for document in file.typed_documents() {
        match (document, kind) {
            (Document::TestWorkflow(workflow), Kind::Workflow) => found.push((**workflow).clone()),
            (Document::TestWorkflowTemplate(template), Kind::Template) => found.push(
                serde_json::to_value(template)
                    .and_then(serde_json::from_value)
                    .map_err(|err| ApiError::internal(err.to_string()))?,
            ),
            (other, _) => {
                others.insert(format!("{:?}", other.kind()), ());
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ApiError::bad_request(format!(
            "the body holds no {}{}; send one document of kind {}",
            kind.document_kind(),
            if others.is_empty() {
                String::new()
            } else {
                format!(
                    " (it holds {})",
                    others.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            },
            kind.document_kind()
        ))),
        n => Err(ApiError::bad_request(format!(
            "the body holds {n} documents of kind {}; send one per request",
            kind.document_kind()
        ))),
    }
}

/// A definitions error as an answer.
pub(crate) fn error(err: DefinitionsError) -> ApiError {
    match err {
        DefinitionsError::NotFound { .. } => ApiError::not_found(err.to_string()),
        DefinitionsError::Exists { .. }
        | DefinitionsError::ReadOnly { .. }
        | DefinitionsError::Changed { .. } => ApiError::conflict(err.to_string()),
        DefinitionsError::InvalidName { .. } | DefinitionsError::Refused { .. } => {
            ApiError::bad_request(err.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}
