//! Workflows and templates through the API: both body forms, checks with
//! field paths and positions, conflicts, read-only files.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestServer, workflow};

#[tokio::test]
async fn workflows_are_created_read_replaced_and_deleted() {
    let server = TestServer::open().await;
    server.create_yaml(&workflow("smoke", "echo hi")).await;

    // The API form, as Testkube's clients send it.
    let api = json!({
        "name": "api-form",
        "description": "made with JSON",
        "labels": {"team": "api"},
        "spec": {"steps": [{"name": "One", "shell": "true"}]},
    });
    let response = server
        .call(Method::POST, "/v1/test-workflows")
        .json(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["name"], "api-form");
    assert_eq!(created["labels"]["team"], "api");
    assert_eq!(created["spec"]["steps"][0]["shell"], "true");

    let list = server.get_json("/v1/test-workflows").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api-form", "smoke"]);
    let selected = server
        .get_json("/v1/test-workflows?selector=team%3Dweb")
        .await;
    assert_eq!(selected.as_array().unwrap().len(), 1);
    assert_eq!(selected[0]["name"], "smoke");
    let searched = server.get_json("/v1/test-workflows?textSearch=api").await;
    assert_eq!(searched[0]["name"], "api-form");

    // A second POST of the same name is a conflict; PUT replaces.
    let again = server
        .call(Method::POST, "/v1/test-workflows")
        .json(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let replaced = server
        .call(Method::PUT, "/v1/test-workflows/api-form")
        .json(&json!({"name": "api-form", "spec": {"steps": [{"shell": "echo new"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    let one = server.get_json("/v1/test-workflows/api-form").await;
    assert_eq!(one["spec"]["steps"][0]["shell"], "echo new");

    // YAML back, in the document form.
    let yaml = server
        .call(Method::GET, "/v1/test-workflows/smoke")
        .header("accept", "text/yaml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yaml.contains("kind: TestWorkflow"), "{yaml}");

    let deleted = server
        .call(Method::DELETE, "/v1/test-workflows/api-form")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = server
        .call(Method::GET, "/v1/test-workflows/api-form")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let problem: Value = gone.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["detail"], "no workflow `api-form`");
}

#[tokio::test]
async fn invalid_workflows_are_refused_with_every_problem_and_where() {
    let server = TestServer::open().await;
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: bad}\nspec:\n  steps:\n  - name: A\n    shel: echo typo\n    timeout: soon\n";
    for (method, path) in [
        (Method::POST, "/v1/test-workflows"),
        (Method::PUT, "/v1/test-workflows"),
    ] {
        let response = server
            .call(method, path)
            .header("content-type", "application/yaml")
            .body(yaml)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        let issues = problem["issues"].as_array().unwrap();
        assert!(issues.len() >= 2, "{problem}");
        let typo = issues
            .iter()
            .find(|issue| issue["message"].as_str().unwrap().contains("shel"))
            .unwrap_or_else(|| panic!("{problem}"));
        assert_eq!(typo["line"], 7, "{typo}");
        assert_eq!(typo["column"], 5, "{typo}");
    }
    // Nothing was stored.
    assert_eq!(server.get_json("/v1/test-workflows").await, json!([]));

    // A valid one validates with 204 and is not stored either.
    let ok = server
        .call(Method::PUT, "/v1/test-workflows")
        .header("content-type", "text/yaml")
        .body(crate::workflow("fine", "true"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(server.get_json("/v1/test-workflows").await, json!([]));

    // Not JSON, a template sent as a workflow, a path that is no name.
    let cases = [
        ("application/json", "{not json".to_owned(), "not JSON"),
        (
            "text/yaml",
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowTemplate\nmetadata: {name: t}\nspec: {}\n".to_owned(),
            "holds no TestWorkflow",
        ),
        ("text/yaml", crate::workflow("../../etc", "true"), "the workflow is not valid"),
    ];
    for (content_type, body, expected) in cases {
        let response = server
            .call(Method::POST, "/v1/test-workflows")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let problem: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(expected),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn templates_apply_to_runs_and_files_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("from-file.yaml");
    std::fs::write(&file, workflow("from-file", "echo file")).unwrap();
    let server = TestServer::with_files(vec![dir.path().to_path_buf()]).await;

    let template = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowTemplate\nmetadata: {name: greet}\nspec:\n  config:\n    who: {type: string, default: world}\n  steps:\n  - name: Greet\n    shell: echo hello {{ config.who }}\n";
    let response = server
        .call(Method::POST, "/v1/test-workflow-templates")
        .header("content-type", "text/yaml")
        .body(template)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let templates = server.get_json("/v1/test-workflow-templates").await;
    assert_eq!(templates[0]["name"], "greet");

    server
        .create_yaml("apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: uses}\nspec:\n  steps:\n  - template: {name: greet, config: {who: server}}\n")
        .await;
    let execution = server.run("uses", json!({})).await;
    let done = server.finished(execution["id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "passed", "{done}");
    let logs = server
        .call(
            Method::GET,
            &format!(
                "/v1/test-workflow-executions/{}/logs",
                execution["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(logs.contains("hello server"), "{logs}");

    // The file's workflow is listed and runs, but cannot be changed here.
    let list = server.get_json("/v1/test-workflows").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "from-file")
    );
    let response = server
        .call(Method::DELETE, "/v1/test-workflows/from-file")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("from-file.yaml"),
        "{problem}"
    );
    let execution = server.run("from-file", json!({})).await;
    let done = server.finished(execution["id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "passed");
}
