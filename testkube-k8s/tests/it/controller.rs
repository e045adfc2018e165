//! The TestWorkflowExecution controller on kube-sim: a document created
//! with kube-rs starts a run of the cluster's TestWorkflow as Jobs, the run
//! lands in a real SQLite store, and `status` and Events tell how it went;
//! a document that cannot start says why; a generation starts once.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testkube_core::service::RunService;
use testkube_core::store::{LogFilter, ResultStore};
use testkube_k8s::ExecutionController;
use testkube_results::store::SqliteStore;

use crate::cluster::{self, Cluster};

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "testworkflows.testkube.io".into(),
        version: "v1".into(),
        api_version: "testworkflows.testkube.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// A cluster with the CRDs, a controller on it recording into a SQLite
/// store, and a way to stop the controller.
struct Agent {
    cluster: Cluster,
    store: Arc<dyn ResultStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    controller: tokio::task::JoinHandle<()>,
}

impl Agent {
    async fn start() -> Agent {
        let cluster = cluster::start().await;
        let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
        for crd in testkube_k8s::crds() {
            crds.create(&PostParams::default(), &crd)
                .await
                .expect("CRD created");
        }
        let store: Arc<dyn ResultStore> = Arc::new(
            SqliteStore::open(&cluster.dir.path().join("home/testkube.db"))
                .await
                .expect("store"),
        );
        let mut agent = Agent {
            cluster,
            store,
            stop: None,
            controller: tokio::spawn(async {}),
        };
        agent.restart_controller();
        agent
    }

    /// (Re)starts the controller as a fresh process would: nothing in
    /// memory, only what the cluster and the store hold.
    fn restart_controller(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let service =
            RunService::new(Arc::new(self.cluster.executor())).with_store(Arc::clone(&self.store));
        let controller = Arc::new(ExecutionController::new(
            self.cluster.client.clone(),
            "default",
            Arc::new(service),
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.controller = tokio::spawn(async move {
            controller
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the controller runs");
        });
    }

    /// A controller on the same cluster and store that is not watching
    /// (the running one stopped), as an agent process before it leads.
    fn idle_controller(&mut self) -> ExecutionController {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let service =
            RunService::new(Arc::new(self.cluster.executor())).with_store(Arc::clone(&self.store));
        ExecutionController::new(self.cluster.client.clone(), "default", Arc::new(service))
    }

    fn api(&self, kind: &str, plural: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.cluster.client.clone(),
            "default",
            &resource(kind, plural),
        )
    }

    async fn create(&self, kind: &str, plural: &str, yaml: &str) {
        let value: Value = serde_saphyr::from_str(yaml).expect("YAML");
        let object: DynamicObject = serde_json::from_value(value).expect("an object");
        self.api(kind, plural)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|err| panic!("{kind} created: {err}"));
    }

    /// The document's status once `done` holds for it (within 60 s).
    async fn status_when(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        let executions = self.api("TestWorkflowExecution", "testworkflowexecutions");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let document = executions.get(name).await.expect("document");
            let status = document.data["status"].clone();
            if done(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "status of {name} never got there: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn events(&self, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.cluster.client.clone(), "default");
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|event| event.involved_object.name.as_deref() == Some(name))
            .collect()
    }
}

const WORKFLOW: &str = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: greeter}
spec:
  config:
    who: {type: string, default: world}
  use: [{name: greeting}]
  steps:
  - name: greet
    shell: echo "hello {{ config.who }}"
"#;

const TEMPLATE: &str = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowTemplate
metadata: {name: greeting}
spec:
  setup:
  - name: prepare
    shell: echo "from the template"
"#;

fn finished(status: &Value) -> bool {
    matches!(
        status["latestExecution"]["result"]["status"].as_str(),
        Some("passed" | "failed" | "aborted")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_execution_runs_the_clusters_workflow_and_writes_its_status() {
    if !cluster::has_bwrap() {
        return;
    }
    let mut agent = Agent::start().await;
    agent
        .create("TestWorkflowTemplate", "testworkflowtemplates", TEMPLATE)
        .await;
    agent
        .create("TestWorkflow", "testworkflows", WORKFLOW)
        .await;
    agent
        .create(
            "TestWorkflowExecution",
            "testworkflowexecutions",
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowExecution
metadata: {name: greet-now}
spec:
  testWorkflow: {name: greeter}
  executionRequest:
    config: {who: cluster}
    tags: {team: qa}
"#,
        )
        .await;

    let status = agent.status_when("greet-now", finished).await;
    let latest = &status["latestExecution"];
    assert_eq!(status["generation"], 1, "{status:#}");
    assert!(status.get("error").is_none(), "{status:#}");
    assert_eq!(latest["result"]["status"], "passed", "{status:#}");
    assert_eq!(latest["name"], "greeter-1");
    assert_eq!(latest["number"], 1);
    assert_eq!(latest["namespace"], "default");
    assert_eq!(latest["testWorkflowExecutionName"], "greet-now");
    assert_eq!(latest["tags"]["team"], "qa");
    for field in ["scheduledAt", "statusAt"] {
        assert!(latest[field].is_string(), "{field}: {status:#}");
    }
    for field in ["queuedAt", "startedAt", "finishedAt", "duration"] {
        assert!(latest["result"][field].is_string(), "{field}: {status:#}");
    }

    // The store holds the run, its logs (the template's step too) and its
    // tags, as `testkube get executions --home` reads them.
    let id = latest["id"].as_str().expect("an id");
    let record = agent.store.get_execution(id).await.expect("recorded");
    assert_eq!(record.name, "greeter-1");
    let logs: String = agent
        .store
        .logs(id, &LogFilter::default())
        .await
        .expect("logs")
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect();
    assert!(logs.contains("hello cluster\n"), "{logs}");
    assert!(logs.contains("from the template\n"), "{logs}");

    let events = agent.events("greet-now").await;
    assert!(
        events
            .iter()
            .any(|event| event.reason.as_deref() == Some("Started")
                && event.type_.as_deref() == Some("Normal")),
        "{events:#?}"
    );
    let finished_event = events
        .iter()
        .find(|event| event.reason.as_deref() == Some("Finished"))
        .unwrap_or_else(|| panic!("a Finished Event: {events:#?}"));
    assert_eq!(finished_event.type_.as_deref(), Some("Normal"));
    assert_eq!(finished_event.message.as_deref(), Some("greeter-1 passed"));

    // A controller started again (as after a restart) does not run the
    // same generation twice...
    agent.restart_controller();
    // ...but a changed spec (a new generation) runs again, numbered on.
    agent
        .api("TestWorkflowExecution", "testworkflowexecutions")
        .patch(
            "greet-now",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"executionRequest": {"config": {"who": "again"}}}})),
        )
        .await
        .expect("patched");
    let status = agent
        .status_when("greet-now", |status| {
            status["generation"] == 2 && finished(status)
        })
        .await;
    assert_eq!(status["latestExecution"]["name"], "greeter-2", "{status:#}");
    let runs = agent
        .store
        .list_executions(&Default::default())
        .await
        .expect("executions");
    assert_eq!(runs.len(), 2, "one run per generation: {runs:#?}");

    // Nothing of the runs is left in the namespace.
    let jobs: Api<Job> = Api::namespaced(agent.cluster.client.clone(), "default");
    let all = ListParams::default().labels("testkube.io/workflow=greeter");
    assert!(jobs.list(&all).await.expect("jobs").items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_that_cannot_start_gets_status_error_and_a_warning_event() {
    let agent = Agent::start().await;
    agent
        .create(
            "TestWorkflowExecution",
            "testworkflowexecutions",
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowExecution
metadata: {name: nowhere}
spec:
  testWorkflow: {name: missing}
"#,
        )
        .await;
    let status = agent
        .status_when("nowhere", |status| status.get("error").is_some())
        .await;
    let error = status["error"].as_str().expect("an error");
    assert!(
        error.contains("TestWorkflow `missing` does not exist in namespace `default`"),
        "{error}"
    );
    assert_eq!(status["generation"], 1);
    assert!(status.get("latestExecution").is_none(), "{status:#}");
    let events = agent.events("nowhere").await;
    let warning = events
        .iter()
        .find(|event| event.reason.as_deref() == Some("FailedToStart"))
        .unwrap_or_else(|| panic!("a FailedToStart Event: {events:#?}"));
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("missing")
    );

    // A workflow whose config is wrong says which field.
    agent
        .create("TestWorkflow", "testworkflows", WORKFLOW)
        .await;
    agent
        .create(
            "TestWorkflowExecution",
            "testworkflowexecutions",
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowExecution
metadata: {name: bad-config}
spec:
  testWorkflow: {name: greeter}
  executionRequest:
    config: {whom: typo}
"#,
        )
        .await;
    let status = agent
        .status_when("bad-config", |status| status.get("error").is_some())
        .await;
    let error = status["error"].as_str().expect("an error");
    assert!(error.contains("whom"), "{error}");
    assert!(
        agent
            .store
            .list_executions(&Default::default())
            .await
            .expect("executions")
            .is_empty(),
        "nothing ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_steps_run_the_namespaces_workflows_as_executions_of_their_own() {
    if !cluster::has_bwrap() {
        return;
    }
    let agent = Agent::start().await;
    agent
        .create("TestWorkflowTemplate", "testworkflowtemplates", TEMPLATE)
        .await;
    agent
        .create("TestWorkflow", "testworkflows", WORKFLOW)
        .await;
    agent
        .create(
            "TestWorkflow",
            "testworkflows",
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: suite}
spec:
  steps:
  - name: children
    execute:
      workflows:
      - name: greeter
        config: {who: child}
"#,
        )
        .await;
    agent
        .create(
            "TestWorkflowExecution",
            "testworkflowexecutions",
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowExecution
metadata: {name: suite-now}
spec:
  testWorkflow: {name: suite}
"#,
        )
        .await;
    let status = agent.status_when("suite-now", finished).await;
    assert_eq!(
        status["latestExecution"]["result"]["status"], "passed",
        "{status:#}"
    );
    let runs = agent
        .store
        .list_executions(&Default::default())
        .await
        .expect("executions");
    let child = runs
        .iter()
        .find(|run| run.name == "greeter-1")
        .unwrap_or_else(|| panic!("the child is recorded: {runs:#?}"));
    let logs: String = agent
        .store
        .logs(&child.id, &LogFilter::default())
        .await
        .expect("logs")
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect();
    assert!(logs.contains("hello child\n"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_startup_a_status_left_behind_the_store_gets_the_stored_verdict() {
    use testkube_core::status::ExecutionStatus;
    use testkube_core::store::{NewExecution, StatusUpdate};
    let mut agent = Agent::start().await;
    let controller = Arc::new(agent.idle_controller());
    // The store has the run as passed; the document still says running
    // (the process died between the two writes).
    let scheduled = chrono::Utc::now() - chrono::TimeDelta::seconds(10);
    agent
        .store
        .create_execution(NewExecution {
            id: "greeter-gone".to_owned(),
            workflow: "greeter".to_owned(),
            name: None,
            status: ExecutionStatus::Running,
            scheduled_at: scheduled,
            snapshot: json!({}),
            config: Default::default(),
            tags: Default::default(),
            shard_durations: Default::default(),
        })
        .await
        .expect("recorded");
    for (status, seconds) in [(ExecutionStatus::Running, 3), (ExecutionStatus::Passed, 5)] {
        agent
            .store
            .update_status(
                "greeter-gone",
                StatusUpdate {
                    status,
                    at: scheduled + chrono::TimeDelta::seconds(seconds),
                    message: None,
                },
            )
            .await
            .expect("status");
    }
    agent
        .create(
            "TestWorkflowExecution",
            "testworkflowexecutions",
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowExecution
metadata: {name: left-behind}
spec:
  testWorkflow: {name: greeter}
"#,
        )
        .await;
    let executions = agent.api("TestWorkflowExecution", "testworkflowexecutions");
    executions
        .patch_status(
            "left-behind",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "generation": 1,
                "latestExecution": {
                    "id": "greeter-gone", "name": "greeter-1",
                    "result": {"status": "running", "queuedAt": scheduled.to_rfc3339()},
                },
            }})),
        )
        .await
        .expect("status set");

    controller.recover(&[]).await;
    let status = executions.get("left-behind").await.expect("document").data["status"].clone();
    let result = &status["latestExecution"]["result"];
    assert_eq!(result["status"], "passed", "{status:#}");
    assert_eq!(result["durationMs"], 2000, "{status:#}");
    assert!(result["finishedAt"].is_string(), "{status:#}");
    let events = agent.events("left-behind").await;
    assert!(
        events
            .iter()
            .any(|event| event.reason.as_deref() == Some("Finished")
                && event.type_.as_deref() == Some("Normal")),
        "{events:#?}"
    );
    assert_eq!(
        agent
            .store
            .list_executions(&Default::default())
            .await
            .expect("runs")
            .len(),
        1,
        "nothing was started"
    );
}
