//! Bearer tokens and scopes: nothing is read without a token, nothing is
//! written without the scope, and a refused write changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ADMIN, READ, RUN, TestServer, workflow};

/// Every route that changes something, with the scope it needs.
fn writes(id: &str) -> Vec<(Method, String, &'static str)> {
    let execution = format!("/v1/test-workflow-executions/{id}");
    vec![
        (Method::POST, "/v1/test-workflows".into(), "admin"),
        (Method::PUT, "/v1/test-workflows/kept".into(), "admin"),
        (Method::DELETE, "/v1/test-workflows/kept".into(), "admin"),
        (Method::POST, "/v1/test-workflow-templates".into(), "admin"),
        (
            Method::PUT,
            "/v1/test-workflow-templates/tpl".into(),
            "admin",
        ),
        (
            Method::DELETE,
            "/v1/test-workflow-templates/tpl".into(),
            "admin",
        ),
        (
            Method::POST,
            "/v1/test-workflows/kept/executions".into(),
            "run",
        ),
        (Method::POST, "/v1/test-workflows/kept/abort".into(), "run"),
        (Method::POST, format!("{execution}/abort"), "run"),
        (Method::POST, format!("{execution}/resume"), "run"),
        (Method::POST, format!("{execution}/rerun"), "run"),
        (Method::PATCH, format!("{execution}/tags"), "run"),
    ]
}

fn body_for(path: &str) -> (String, &'static str) {
    if path.contains("template") {
        (
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflowTemplate\nmetadata: {name: tpl}\nspec:\n  steps:\n  - shell: 'true'\n".into(),
            "text/yaml",
        )
    } else if path.ends_with("executions") {
        ("{}".into(), "application/json")
    } else if path.ends_with("tags") {
        (r#"{"tags": {"changed": "yes"}}"#.into(), "application/json")
    } else {
        (workflow("kept", "echo changed"), "text/yaml")
    }
}

#[tokio::test]
async fn writes_need_a_token_with_their_scope_and_refusals_change_nothing() {
    let mut server = TestServer::with_tokens(ADMIN).await;
    server.create_yaml(&workflow("kept", "echo original")).await;
    let response = server
        .call(Method::POST, "/v1/test-workflow-templates")
        .header("content-type", "text/yaml")
        .body(body_for("template").0)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let execution = server.run("kept", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    server.finished(&id).await;
    let before = (
        server.get_json("/v1/test-workflows/kept").await,
        server.get_json("/v1/test-workflow-templates/tpl").await,
        server.get_json("/v1/test-workflow-executions").await["totals"].clone(),
        server
            .get_json(&format!("/v1/test-workflow-executions/{id}"))
            .await["tags"]
            .clone(),
    );

    for (method, path, scope) in writes(&id) {
        let (body, content_type) = body_for(&path);
        let mut callers: Vec<(Option<&str>, StatusCode)> = vec![
            (None, StatusCode::UNAUTHORIZED),
            (Some("not-a-token-at-all-xx"), StatusCode::UNAUTHORIZED),
            (Some(READ), StatusCode::FORBIDDEN),
        ];
        if scope == "admin" {
            callers.push((Some(RUN), StatusCode::FORBIDDEN));
        }
        for (token, expected) in callers {
            let mut request = server
                .client
                .request(method.clone(), server.url(&path))
                .header("content-type", content_type)
                .body(body.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                expected,
                "{method} {path} with {token:?}"
            );
            if expected == StatusCode::UNAUTHORIZED {
                assert!(response.headers().contains_key("www-authenticate"));
            }
            let problem: Value = response.json().await.unwrap();
            if expected == StatusCode::FORBIDDEN {
                assert!(
                    problem["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("`{scope}` scope")),
                    "{problem}"
                );
            }
        }
    }
    let after = (
        server.get_json("/v1/test-workflows/kept").await,
        server.get_json("/v1/test-workflow-templates/tpl").await,
        server.get_json("/v1/test-workflow-executions").await["totals"].clone(),
        server
            .get_json(&format!("/v1/test-workflow-executions/{id}"))
            .await["tags"]
            .clone(),
    );
    assert_eq!(before, after, "a refused request changed something");

    // Reads need a token too, any scope will do; /health does not.
    server.token = Some(READ);
    server.get_json("/v1/test-workflow-executions").await;
    let anonymous = server
        .client
        .get(server.url("/v1/test-workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let health = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // A run token runs.
    server.token = Some(RUN);
    let execution = server.run("kept", json!({})).await;
    assert_eq!(execution["name"], "kept-2");
    server.finished(execution["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let server = TestServer::open().await;
    let document: Value = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/v1/test-workflows",
        "/v1/test-workflows/{name}",
        "/v1/test-workflows/{name}/executions",
        "/v1/test-workflow-executions",
        "/v1/test-workflow-executions/{id}",
        "/v1/test-workflow-executions/{id}/notifications",
        "/v1/test-workflow-executions/{id}/artifact-archive",
        "/v1/test-workflow-templates/{name}",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let info = server.get_json("/v1/info").await;
    assert_eq!(info["auth"], false);
    assert_eq!(info["executor"], "local");
}
