//! The OpenAPI document of the API (`GET /openapi.json`), generated with
//! utoipa from the shapes in [`crate::api`].
//!
//! Why the operations are described here and not on the handlers: one
//! file shows the whole API as clients see it, and the handlers stay
//! readable. CI checks the document against the running server with
//! schemathesis, so a description that drifts from a handler fails there.
#![allow(dead_code)]

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{
    Artifact, ConfigParam, Definition, Execution, ExecutionList, Info, Notification, Output,
    ResultJson, RunBody, Signature, StepJson, StepState, TestCase, TestCounts, Totals, WorkflowRef,
};
use crate::error::{Issue, Problem};

/// The document as pretty JSON.
#[must_use]
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "testkube-rs API",
        description = "Testkube's REST API paths and shapes: test workflows, templates, executions, logs, artifacts and live notifications. Every route but /health and /openapi.json needs `Authorization: Bearer <token>` with the scope it names (read, run, admin).",
    ),
    paths(
        health, metrics, info, list_workflows, create_workflow, validate_workflow, get_workflow,
        replace_workflow, delete_workflow, run_workflow, list_workflow_executions, abort_workflow,
        list_templates, create_template, validate_template, get_template, replace_template,
        delete_template, list_executions, get_execution, abort_execution, resume_execution,
        rerun_execution, update_tags, execution_logs, execution_test_cases, notifications, worker_notifications,
        service_notifications, list_artifacts, download_artifact, artifact_archive,
    ),
    components(schemas(
        Artifact, ConfigParam, Definition, Execution, ExecutionList, Info, Notification, Output,
        ResultJson, RunBody, Signature, StepJson, StepState, TestCase, TestCounts, Totals,
        WorkflowRef, Issue, Problem, TagsBody,
    )),
    modifiers(&Bearer),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[utoipa::path(get, path = "/health", security(()), responses((status = 200, description = "The server answers", body = String, content_type = "text/plain")))]
fn health() {}

#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus metrics with Testkube's names (scope read)", body = String, content_type = "application/openmetrics-text"),
    (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
))]
fn metrics() {}

#[utoipa::path(get, path = "/v1/info", responses(
    (status = 200, description = "Version and setup (scope read)", body = Info),
    (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
))]
fn info() {}

#[utoipa::path(get, path = "/v1/test-workflows", tag = "workflows",
    params(
        ("selector" = Option<String>, Query, description = "Label selector: `k=v,k2!=v,k3`"),
        ("textSearch" = Option<String>, Query, description = "Part of the name"),
    ),
    responses(
        (status = 200, description = "The workflows (scope read)", body = [Definition]),
        (status = 400, description = "A bad selector", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
fn list_workflows() {}

#[utoipa::path(post, path = "/v1/test-workflows", tag = "workflows",
    request_body(content = Definition, description = "The API form as JSON, or the TestWorkflow document as YAML (`Content-Type: text/yaml`)"),
    responses(
        (status = 200, description = "Created (scope admin)", body = Definition),
        (status = 400, description = "Not valid: every problem with its field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One with this name exists", body = Problem, content_type = "application/problem+json"),
    ))]
fn create_workflow() {}

#[utoipa::path(put, path = "/v1/test-workflows", tag = "workflows",
    request_body(content = Definition, description = "A workflow to check; nothing is stored"),
    responses(
        (status = 204, description = "Valid (scope read)"),
        (status = 400, description = "Not valid: every problem with its field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
fn validate_workflow() {}

#[utoipa::path(get, path = "/v1/test-workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "The workflow (YAML with `Accept: text/yaml`; scope read)", body = Definition),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    ))]
fn get_workflow() {}

#[utoipa::path(put, path = "/v1/test-workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    request_body(content = Definition, description = "The new workflow (JSON API form, or YAML)"),
    responses(
        (status = 200, description = "Replaced (scope admin)", body = Definition),
        (status = 400, description = "Not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It comes from a file the server only reads", body = Problem, content_type = "application/problem+json"),
    ))]
fn replace_workflow() {}

#[utoipa::path(delete, path = "/v1/test-workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 204, description = "Deleted (scope admin); its executions are kept"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It comes from a file the server only reads", body = Problem, content_type = "application/problem+json"),
    ))]
fn delete_workflow() {}

#[utoipa::path(post, path = "/v1/test-workflows/{name}/executions", tag = "executions",
    params(("name" = String, Path, description = "The workflow to run")),
    request_body(content = RunBody, description = "Config values, tags and who asks"),
    responses(
        (status = 200, description = "Started (scope run)", body = Execution),
        (status = 400, description = "It cannot run (config, secrets, plan): every problem", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the run scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    ))]
fn run_workflow() {}

#[utoipa::path(get, path = "/v1/test-workflows/{name}/executions", tag = "executions",
    params(("name" = String, Path, description = "The workflow"), ListParams),
    responses(
        (status = 200, description = "Its executions, newest first (scope read)", body = ExecutionList),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
fn list_workflow_executions() {}

#[utoipa::path(post, path = "/v1/test-workflows/{name}/abort", tag = "executions",
    params(("name" = String, Path, description = "The workflow")),
    responses(
        (status = 204, description = "Every execution of it this server runs is aborted (scope run)"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the run scope", body = Problem, content_type = "application/problem+json"),
    ))]
fn abort_workflow() {}

#[utoipa::path(get, path = "/v1/test-workflow-templates", tag = "templates",
    params(
        ("selector" = Option<String>, Query, description = "Label selector: `k=v,k2!=v,k3`"),
        ("textSearch" = Option<String>, Query, description = "Part of the name"),
    ),
    responses(
        (status = 200, description = "The templates (scope read)", body = [Definition]),
        (status = 400, description = "A bad selector", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
fn list_templates() {}

#[utoipa::path(post, path = "/v1/test-workflow-templates", tag = "templates",
    request_body(content = Definition, description = "The API form as JSON, or the TestWorkflowTemplate document as YAML"),
    responses(
        (status = 200, description = "Created (scope admin)", body = Definition),
        (status = 400, description = "Not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One with this name exists", body = Problem, content_type = "application/problem+json"),
    ))]
fn create_template() {}

#[utoipa::path(put, path = "/v1/test-workflow-templates", tag = "templates",
    request_body(content = Definition, description = "A template to check; nothing is stored"),
    responses(
        (status = 204, description = "Valid (scope read)"),
        (status = 400, description = "Not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
fn validate_template() {}

#[utoipa::path(get, path = "/v1/test-workflow-templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "The template's name")),
    responses(
        (status = 200, description = "The template (scope read)", body = Definition),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
    ))]
fn get_template() {}

#[utoipa::path(put, path = "/v1/test-workflow-templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "The template's name")),
    request_body(content = Definition, description = "The new template"),
    responses(
        (status = 200, description = "Replaced (scope admin)", body = Definition),
        (status = 400, description = "Not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It comes from a file the server only reads", body = Problem, content_type = "application/problem+json"),
    ))]
fn replace_template() {}

#[utoipa::path(delete, path = "/v1/test-workflow-templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "The template's name")),
    responses(
        (status = 204, description = "Deleted (scope admin)"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It comes from a file the server only reads", body = Problem, content_type = "application/problem+json"),
    ))]
fn delete_template() {}

/// The execution list's query.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
struct ListParams {
    /// The page, from 0.
    #[param(minimum = 0)]
    page: Option<i32>,
    /// Executions per page (default 100).
    #[param(minimum = 0)]
    page_size: Option<i32>,
    /// Statuses, comma-separated (`passed,failed`).
    status: Option<String>,
    /// Scheduled at or after (`2026-12-07` or RFC 3339).
    start_date: Option<String>,
    /// Scheduled at or before (`2026-12-07` is the whole day).
    end_date: Option<String>,
    /// The workflow's labels: `k=v,k2!=v,k3`.
    selector: Option<String>,
    /// The execution's tags: `k=v,k2!=v,k3`.
    tag_selector: Option<String>,
    /// Part of the execution's name.
    text_search: Option<String>,
}

#[utoipa::path(get, path = "/v1/test-workflow-executions", tag = "executions",
    params(ListParams),
    responses(
        (status = 200, description = "Executions, newest first, with totals (scope read)", body = ExecutionList),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
fn list_executions() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "The execution's id or name (`WORKFLOW-N`)")),
    responses(
        (status = 200, description = "The execution, full form (scope read)", body = Execution),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn get_execution() {}

#[utoipa::path(post, path = "/v1/test-workflow-executions/{id}/abort", tag = "executions",
    params(("id" = String, Path, description = "The execution's id or name")),
    responses(
        (status = 204, description = "Aborting (scope run)"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the run scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It finished, or another process runs it", body = Problem, content_type = "application/problem+json"),
    ))]
fn abort_execution() {}

#[utoipa::path(post, path = "/v1/test-workflow-executions/{id}/resume", tag = "executions",
    params(("id" = String, Path, description = "The execution's id or name")),
    responses(
        (status = 204, description = "Its paused steps go on (scope run)"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the run scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is not running on this server", body = Problem, content_type = "application/problem+json"),
    ))]
fn resume_execution() {}

#[utoipa::path(post, path = "/v1/test-workflow-executions/{id}/rerun", tag = "executions",
    params(
        ("id" = String, Path, description = "The execution's id or name"),
        ("failedOnly" = Option<bool>, Query, description = "Run only the parallel workers that did not pass (ours)"),
    ),
    responses(
        (status = 200, description = "The new execution (scope run)", body = Execution),
        (status = 400, description = "It cannot run again (sensitive config, unusable workflow)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the run scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is still running", body = Problem, content_type = "application/problem+json"),
    ))]
fn rerun_execution() {}

#[utoipa::path(patch, path = "/v1/test-workflow-executions/{id}/tags", tag = "executions",
    params(("id" = String, Path, description = "The execution's id or name")),
    request_body(content = TagsBody, description = "The new tags (they replace the old ones); the bare map is accepted too"),
    responses(
        (status = 200, description = "The execution with its new tags (scope run)", body = Execution),
        (status = 400, description = "Not a map of texts", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the run scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn update_tags() {}

/// `PATCH .../tags`'s body.
#[derive(utoipa::ToSchema)]
struct TagsBody {
    /// The tags.
    tags: std::collections::BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/logs", tag = "logs",
    params(
        ("id" = String, Path, description = "The execution's id or name"),
        ("worker" = Option<String>, Query, description = "Only this worker (`root`, `root/tests/2`)"),
        ("step" = Option<String>, Query, description = "Only this step's ref"),
    ),
    responses(
        (status = 200, description = "Its output so far, as text (scope read)", body = String, content_type = "text/plain"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn execution_logs() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/test-cases", tag = "executions",
    params(("id" = String, Path, description = "The execution's id or name")),
    responses(
        (status = 200, description = "The test cases of its reports, in recorded order (ours; scope read)", body = [TestCase]),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn execution_test_cases() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/notifications", tag = "logs",
    params(
        ("id" = String, Path, description = "The execution's id or name"),
        ("resumeAfterSeqNo" = Option<u64>, Query, description = "Send what follows this seqNo (as `Last-Event-ID`)"),
    ),
    responses(
        (status = 200, description = "Server-sent events: each `data:` line a Notification (see components), its `id` the seqNo (scope read)", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A resume position that is not a seqNo", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn notifications() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/notifications/parallel-steps/{ref}/{workerIndex}", tag = "logs",
    params(
        ("id" = String, Path, description = "The execution's id or name"),
        ("ref" = String, Path, description = "The parallel step's ref"),
        ("workerIndex" = u32, Path, description = "The worker's index, from 0"),
        ("resumeAfterSeqNo" = Option<u64>, Query, description = "Send what follows this seqNo"),
    ),
    responses(
        (status = 200, description = "That worker's notifications, as server-sent events (scope read)", body = String, content_type = "text/event-stream"),
        (status = 400, description = "An index or resume position that is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution or worker", body = Problem, content_type = "application/problem+json"),
    ))]
fn worker_notifications() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/notifications/services/{name}/{index}", tag = "logs",
    params(
        ("id" = String, Path, description = "The execution's id or name"),
        ("name" = String, Path, description = "The service's name"),
        ("index" = u32, Path, description = "The instance's index, from 0"),
        ("resumeAfterSeqNo" = Option<u64>, Query, description = "Send what follows this seqNo"),
    ),
    responses(
        (status = 200, description = "That service instance's notifications, as server-sent events (scope read)", body = String, content_type = "text/event-stream"),
        (status = 400, description = "An index or resume position that is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution or instance", body = Problem, content_type = "application/problem+json"),
    ))]
fn service_notifications() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/artifacts", tag = "artifacts",
    params(("id" = String, Path, description = "The execution's id or name")),
    responses(
        (status = 200, description = "Its artifacts (scope read)", body = [Artifact]),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn list_artifacts() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/artifacts/{filename}", tag = "artifacts",
    params(
        ("id" = String, Path, description = "The execution's id or name"),
        ("filename" = String, Path, description = "The artifact's name, as listed (may hold `/`)"),
    ),
    responses(
        (status = 200, description = "The file (scope read)", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution or artifact", body = Problem, content_type = "application/problem+json"),
    ))]
fn download_artifact() {}

#[utoipa::path(get, path = "/v1/test-workflow-executions/{id}/artifact-archive", tag = "artifacts",
    params(("id" = String, Path, description = "The execution's id or name")),
    responses(
        (status = 200, description = "Every artifact in a .tar.gz (scope read)", body = Vec<u8>, content_type = "application/gzip"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution", body = Problem, content_type = "application/problem+json"),
    ))]
fn artifact_archive() {}
