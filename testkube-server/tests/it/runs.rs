//! Runs through the API: start, follow to the end, list with filters and
//! totals, logs, abort, rerun.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestServer, workflow};

#[tokio::test]
async fn a_run_started_by_the_api_is_recorded_with_its_logs_and_results() {
    let server = TestServer::open().await;
    server
        .create_yaml("apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: greet\n  labels: {team: web}\nspec:\n  config:\n    who: {type: string, default: world}\n  steps:\n  - name: Hello\n    id: hello\n    shell: echo \"hello {{ config.who }}\" && echo 42 > \"$TESTKUBE_OUTPUTS/answer\"\n")
        .await;
    let started = server
        .run(
            "greet",
            json!({"config": {"who": "api"}, "tags": {"ci": "yes"}, "runningContext": {"interface": {"type": "api"}}}),
        )
        .await;
    assert_eq!(started["name"], "greet-1");
    assert_eq!(started["number"], 1);
    assert_eq!(started["workflow"]["name"], "greet");
    assert_eq!(started["tags"]["ci"], "yes");
    assert_eq!(started["configParams"]["who"]["value"], "api");
    assert_eq!(started["runningContext"]["interface"]["type"], "api");
    let id = started["id"].as_str().unwrap();

    let done = server.finished(id).await;
    let result = &done["result"];
    assert_eq!(result["status"], "passed", "{done}");
    assert_eq!(result["predictedStatus"], "passed");
    assert!(result["durationMs"].as_i64().is_some(), "{result}");
    assert!(
        result["duration"].as_str().unwrap().ends_with('s'),
        "{result}"
    );
    assert!(result["totalDurationMs"].as_i64().unwrap() >= result["durationMs"].as_i64().unwrap());
    assert_eq!(result["steps"]["hello"]["status"], "passed", "{result}");
    assert_eq!(result["steps"]["hello"]["exitCode"], 0);
    assert_eq!(done["signature"][0]["ref"], "hello");
    assert_eq!(done["output"][0]["name"], "answer");
    assert_eq!(done["output"][0]["value"], "42");
    assert_eq!(done["workflow"]["labels"]["team"], "web");
    assert_eq!(done["resolvedWorkflow"]["metadata"]["name"], "greet");

    // By name too, as users type it.
    let by_name = server
        .get_json("/v1/test-workflow-executions/greet-1")
        .await;
    assert_eq!(by_name["id"], id);

    let logs = server
        .call(
            Method::GET,
            &format!("/v1/test-workflow-executions/{id}/logs"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(logs.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(logs.text().await.unwrap().contains("hello api"));

    // Tags are replaced afterwards, in Testkube's `{tags}` body or as the bare map.
    for body in [
        json!({"tags": {"release": "2.1"}}),
        json!({"release": "2.1"}),
    ] {
        let patched = server
            .call(
                Method::PATCH,
                &format!("/v1/test-workflow-executions/{id}/tags"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        let patched: Value = patched.json().await.unwrap();
        assert_eq!(patched["tags"], json!({"release": "2.1"}));
    }
    let tagged = server
        .get_json("/v1/test-workflow-executions?tagSelector=release%3D2.1")
        .await;
    assert_eq!(tagged["filtered"]["results"], 1);
    let bad = server
        .call(
            Method::PATCH,
            &format!("/v1/test-workflow-executions/{id}/tags"),
        )
        .json(&json!({"tags": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lists_count_and_filter_executions() {
    let server = TestServer::open().await;
    server.create_yaml(&workflow("ok", "true")).await;
    server
        .create_yaml(&workflow("bad", "echo broken; exit 3"))
        .await;
    for (name, tags) in [
        ("ok", json!({"run": "1"})),
        ("bad", json!({"run": "2"})),
        ("ok", json!({"run": "3"})),
    ] {
        let execution = server.run(name, json!({"tags": tags})).await;
        server.finished(execution["id"].as_str().unwrap()).await;
    }
    let all = server.get_json("/v1/test-workflow-executions").await;
    assert_eq!(
        all["totals"],
        json!({"results": 3, "passed": 2, "failed": 1, "queued": 0, "running": 0})
    );
    assert_eq!(all["filtered"], all["totals"]);
    let names: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ok-2", "bad-1", "ok-1"], "newest first");

    let failed = server
        .get_json("/v1/test-workflow-executions?status=failed")
        .await;
    assert_eq!(failed["filtered"]["results"], 1);
    assert_eq!(failed["totals"]["results"], 3);
    assert_eq!(failed["results"][0]["name"], "bad-1");
    assert_eq!(failed["results"][0]["result"]["status"], "failed");

    let page = server
        .get_json("/v1/test-workflow-executions?pageSize=1&page=1")
        .await;
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["results"][0]["name"], "bad-1");

    let tagged = server
        .get_json("/v1/test-workflow-executions?tagSelector=run%3D3")
        .await;
    assert_eq!(tagged["results"][0]["name"], "ok-2");
    assert_eq!(tagged["filtered"]["results"], 1);
    let labelled = server
        .get_json("/v1/test-workflow-executions?selector=team%3Dweb&textSearch=ok")
        .await;
    assert_eq!(labelled["filtered"]["results"], 2);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let dated = server
        .get_json(&format!(
            "/v1/test-workflow-executions?startDate={today}&endDate={today}"
        ))
        .await;
    assert_eq!(dated["filtered"]["results"], 3);

    let of_workflow = server.get_json("/v1/test-workflows/ok/executions").await;
    assert_eq!(of_workflow["totals"]["results"], 2);

    for bad in ["status=done", "page=-1", "startDate=yesterday"] {
        let response = server
            .call(Method::GET, &format!("/v1/test-workflow-executions?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn runs_are_aborted_and_rerun() {
    let server = TestServer::open().await;
    server
        .create_yaml(&workflow("slow", "echo started; sleep 30"))
        .await;
    let execution = server.run("slow", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    // Wait until the step runs, then abort.
    for _ in 0..200 {
        let logs = server
            .call(
                Method::GET,
                &format!("/v1/test-workflow-executions/{id}/logs"),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if logs.contains("started") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let abort = server
        .call(
            Method::POST,
            &format!("/v1/test-workflow-executions/{id}/abort"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(abort.status(), StatusCode::NO_CONTENT);
    let done = server.finished(&id).await;
    assert_eq!(done["result"]["status"], "aborted", "{done}");
    let again = server
        .call(
            Method::POST,
            &format!("/v1/test-workflow-executions/{id}/abort"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // A rerun is a new execution of the same workflow.
    let rerun = server
        .call(
            Method::POST,
            &format!("/v1/test-workflow-executions/{id}/rerun"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), StatusCode::OK);
    let rerun: Value = rerun.json().await.unwrap();
    assert_eq!(rerun["name"], "slow-2");
    let abort_all = server
        .call(Method::POST, "/v1/test-workflows/slow/abort")
        .send()
        .await
        .unwrap();
    assert_eq!(abort_all.status(), StatusCode::NO_CONTENT);
    let done = server.finished(rerun["id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "aborted");
}

#[tokio::test]
async fn runs_that_cannot_start_say_why() {
    let server = TestServer::open().await;
    server
        .create_yaml("apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: typed}\nspec:\n  config:\n    count: {type: integer}\n  steps:\n  - shell: echo {{ config.count }}\n")
        .await;
    let cases = [
        (
            "/v1/test-workflows/missing/executions",
            json!({}),
            StatusCode::NOT_FOUND,
            "no workflow `missing`",
        ),
        (
            "/v1/test-workflows/typed/executions",
            json!({}),
            StatusCode::BAD_REQUEST,
            "cannot run with this config",
        ),
        (
            "/v1/test-workflows/typed/executions",
            json!({"config": {"count": "many"}}),
            StatusCode::BAD_REQUEST,
            "cannot run with this config",
        ),
        (
            "/v1/test-workflows/typed/executions",
            json!({"config": {"count": 2}, "name": "custom"}),
            StatusCode::BAD_REQUEST,
            "custom execution names",
        ),
    ];
    for (path, body, status, detail) in cases {
        let response = server
            .call(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path} {body}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{problem}"
        );
    }
    // None of them used a number.
    let execution = server.run("typed", json!({"config": {"count": "2"}})).await;
    assert_eq!(execution["name"], "typed-1");
    let done = server.finished(execution["id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "passed");
}

#[tokio::test]
async fn metrics_count_executions_steps_and_changes_with_testkube_names() {
    let server = TestServer::open().await;
    server.create_yaml(&workflow("ok", "true")).await;
    server.create_yaml(&workflow("bad", "exit 1")).await;
    for name in ["ok", "ok", "bad"] {
        let execution = server
            .run(
                name,
                json!({"tags": {"ci": "yes"}, "runningContext": {"interface": {"type": "cli"}}}),
            )
            .await;
        server.finished(execution["id"].as_str().unwrap()).await;
    }
    let deleted = server
        .call(Method::DELETE, "/v1/test-workflows/bad")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let response = server.call(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(series))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(
            r#"testkube_testworkflow_executions_count{name="ok",result="passed",labels="team=web",testworkflow_uri="",triggered_by="cli",tags="ci=yes"}"#
        ),
        2.0
    );
    assert_eq!(
        value(r#"testkube_testworkflow_executions_count{name="bad",result="failed""#),
        1.0
    );
    assert_eq!(
        value(r#"testkube_testworkflow_executions_duration_ms_count{name="ok",result="passed"}"#),
        2.0
    );
    assert_eq!(
        value(
            r#"testkube_testworkflow_execution_steps_count{name="bad",step="Main",result="failed"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"testkube_testworkflow_creations_count{name="ok"}"#),
        1.0
    );
    assert_eq!(
        value(r#"testkube_testworkflow_deletes_count{name="bad"}"#),
        1.0
    );
    assert_eq!(value("testkube_testworkflow_executions_running "), 0.0);
    assert_eq!(value("testkube_testworkflow_executions_queued "), 0.0);
    assert_eq!(value("testkube_testworkflow_workers_running "), 0.0);
}
