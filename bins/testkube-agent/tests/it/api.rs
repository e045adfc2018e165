//! The agent serves the REST API in the cluster: workflows are the
//! namespace's TestWorkflow objects, runs go through the Kubernetes
//! executor, requests need a token.

use std::time::Duration;

use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};

use super::{Setup, free_port, resource};

const TOKEN: &str = "agent-api-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_serves_the_api_over_the_namespace_and_runs_as_jobs() {
    if !super::has_bwrap() {
        eprintln!("skipped: kube-sim's kubelet needs bubblewrap");
        return;
    }
    let setup = Setup::start().await;
    let tokens = setup.dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} read,run,admin\n")).unwrap();
    let api = free_port();
    let home = setup.dir.path().join("home-api");
    let _agent = setup
        .agent_with(
            "api",
            &home,
            &[
                "--api-addr",
                &api.to_string(),
                "--tokens",
                tokens.to_str().unwrap(),
            ],
        )
        .await;
    let base = format!("http://{api}");
    let http = reqwest::Client::new();
    // The API is served once the agent leads.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let info: Value = loop {
        if let Ok(response) = http
            .get(format!("{base}/v1/info"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            break response.json().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the API never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(info["executor"], "kubernetes");
    assert_eq!(info["auth"], true);
    let anonymous = http
        .get(format!("{base}/v1/test-workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Workflows are the namespace's objects, both ways.
    let listed: Value = http
        .get(format!("{base}/v1/test-workflows"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "smoke"),
        "{listed}"
    );
    let created = http
        .post(format!("{base}/v1/test-workflows"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "from-api", "labels": {"made": "api"}, "spec": {"steps": [{"name": "say", "shell": "echo made-by-the-api"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let objects: Api<DynamicObject> = Api::namespaced_with(
        setup.client.clone(),
        "default",
        &resource("TestWorkflow", "testworkflows"),
    );
    let object = objects
        .get("from-api")
        .await
        .expect("the API made a TestWorkflow object");
    assert_eq!(object.metadata.labels.unwrap()["made"], "api");
    let again = http
        .post(format!("{base}/v1/test-workflows"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "from-api", "spec": {"steps": [{"shell": "true"}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // A run of it happens as Jobs, recorded as the controller's are.
    let started: Value = http
        .post(format!("{base}/v1/test-workflows/from-api/executions"))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let done: Value = loop {
        let execution: Value = http
            .get(format!("{base}/v1/test-workflow-executions/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["passed", "failed", "aborted"]
            .contains(&execution["result"]["status"].as_str().unwrap())
        {
            break execution;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never ended: {execution}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["result"]["status"], "passed", "{done}");
    let logs = http
        .get(format!("{base}/v1/test-workflow-executions/{id}/logs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(logs.contains("made-by-the-api"), "{logs}");

    let deleted = http
        .delete(format!("{base}/v1/test-workflows/from-api"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(objects.get_opt("from-api").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leading_agent_runs_a_missed_schedule_once() {
    if !super::has_bwrap() {
        eprintln!("skipped: kube-sim's kubelet needs bubblewrap");
        return;
    }
    let setup = Setup::start().await;
    setup
        .create(
            "TestWorkflow",
            "testworkflows",
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: nightly}\n\
             spec:\n  events:\n  - cronjob: {cron: '* * * * *', labels: {source: schedule}}\n  steps:\n  - name: say\n    shell: echo scheduled-run\n",
        )
        .await;
    // As an agent that stopped an hour ago left its ticks: 60 missed.
    let home = setup.dir.path().join("home-cron");
    std::fs::create_dir_all(&home).unwrap();
    let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    std::fs::write(
        home.join("schedules.json"),
        json!({"nightly/0/* * * * */": an_hour_ago}).to_string(),
    )
    .unwrap();
    let _agent = setup.agent_with("cron", &home, &[]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let store =
        testkube_results::store::SqliteStore::open(&home.join(testkube_results::store::DB_FILE))
            .await
            .unwrap();
    loop {
        let runs = testkube_core::store::ResultStore::list_executions(
            &store,
            &testkube_core::store::ExecutionFilter {
                workflow: Some("nightly".to_owned()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        if let Some(run) = runs.first().filter(|run| run.status.is_finished()) {
            assert_eq!(runs.len(), 1, "the missed ticks ran once");
            assert_eq!(run.status.as_str(), "passed");
            assert_eq!(run.tags["source"], "schedule");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the schedule never ran: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
