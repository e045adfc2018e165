//! The run service end to end: real local processes (plain, no sandbox, so
//! the tests run anywhere), a real SQLite store in a temporary folder, and
//! the local secret source.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use testkube_core::engine::{Event, ExecutionSummary, WorkflowSet};
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::service::{
    RerunOptions, RunHandle, RunRequest, RunService, ServiceError, WorkflowCatalog,
};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{ExecutionFilter, LogFilter, ResultStore};
use testkube_core::{LoadOptions, ResolveOptions, TemplateSet};
use testkube_executors::local::LocalSecrets;
use testkube_executors::{LocalExecutor, Sandbox};
use testkube_results::store::SqliteStore;

/// A service over a fresh store and plain local processes in `dir`.
async fn service(dir: &Path) -> (RunService, Arc<dyn ResultStore>) {
    let store: Arc<dyn ResultStore> = Arc::new(
        SqliteStore::open(&dir.join("results.db"))
            .await
            .expect("open the store"),
    );
    let executor = LocalExecutor::new(dir.join("runs")).with_sandbox(Sandbox::Off);
    let service = RunService::new(Arc::new(executor)).with_store(Arc::clone(&store));
    (service, store)
}

/// Every TestWorkflow of `yaml`, as parsed.
fn parsed(yaml: &str) -> Vec<TestWorkflow> {
    let file = testkube_core::load_file("test.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    file.documents
        .iter()
        .filter_map(|doc| match &doc.document {
            Some(Document::TestWorkflow(workflow)) => Some((**workflow).clone()),
            _ => None,
        })
        .collect()
}

/// Every TestWorkflow of `yaml`, resolved with the built-in templates.
fn workflows(yaml: &str) -> Vec<TestWorkflow> {
    let templates = TemplateSet::with_builtins().unwrap();
    parsed(yaml)
        .iter()
        .map(|workflow| {
            testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
                .unwrap()
                .workflow()
                .clone()
        })
        .collect()
}

/// The workflow `name` with `steps` (YAML lines under `steps:`).
fn workflow(name: &str, steps: &str) -> TestWorkflow {
    let yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: {name}}}\nspec:\n  steps:\n{steps}"
    );
    workflows(&yaml).remove(0)
}

/// Reads the run to its end (events and all), returning its summary.
async fn finish(mut run: RunHandle) -> ExecutionSummary {
    while let Some(event) = run.next_event().await {
        if let Event::Finished(summary) = event {
            return *summary;
        }
    }
    panic!("the run ended without a summary")
}

async fn logs(store: &dyn ResultStore, id: &str) -> String {
    let chunks = store.logs(id, &LogFilter::default()).await.unwrap();
    chunks
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect()
}

/// `worker id → description` of a summary's parallel workers.
fn shards(summary: &ExecutionSummary) -> BTreeMap<String, String> {
    summary
        .workers
        .iter()
        .filter(|worker| worker.id != "root")
        .map(|worker| {
            (
                worker.id.clone(),
                worker.description.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_numbered_per_workflow_and_recorded_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let hello = workflow(
        "hello",
        "  - {name: Greet, shell: 'echo hello from {{ execution.name }}'}\n",
    );

    let first = service.start(RunRequest::new(hello.clone())).await.unwrap();
    assert_eq!((first.name(), first.number()), ("hello-1", 1));
    assert!(first.recorded());
    let first_id = first.id().to_owned();
    let summary = finish(first).await;
    assert_eq!(summary.status, ExecutionStatus::Passed);

    let other = service
        .start(RunRequest::new(workflow("other", "  - shell: 'true'\n")))
        .await
        .unwrap();
    assert_eq!(other.name(), "other-1");
    finish(other).await;
    let second = service
        .start(RunRequest::new(hello).with_tag("branch", "main"))
        .await
        .unwrap();
    assert_eq!(second.name(), "hello-2");
    assert_ne!(second.id(), first_id);
    // Only waiting, not watching: the store still gets every event.
    let summary = second.wait().await.unwrap();
    assert_eq!(summary.name, "hello-2");

    // The frontend saw the end only once the store had all of it.
    let record = store.find_execution("hello-2").await.unwrap();
    assert_eq!(record.status, ExecutionStatus::Passed);
    assert_eq!(record.tags.get("branch").map(String::as_str), Some("main"));
    assert!(record.finished_at.is_some());
    assert!(
        logs(store.as_ref(), &record.id)
            .await
            .contains("hello from hello-2")
    );
    let steps = store.steps(&record.id).await.unwrap();
    assert!(
        steps
            .iter()
            .any(|step| step.name.as_deref() == Some("Greet") && step.status == StepStatus::Passed),
        "{steps:?}"
    );
    let all = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
}

/// Workers that write JUnit reports (a.py takes 3 s on paper, c.py fails)
/// and keep them as artifacts, from which the run takes its test results.
const REPORTING: &str = r#"  - name: Suite
    parallel:
      count: 2
      description: 'files {{ join(shard.file, ",") }}'
      shards:
        file: [a.py, b.py, c.py, d.py]
      balance: {by: duration, key: file}
      shell: |
        mkdir -p reports
        {
          echo '<testsuite name="unit">'
          for f in {{ join(shard.file, ' ') }}; do
            case $f in a.py) t=3.0;; *) t=0.1;; esac
            if [ $f = c.py ]; then
              echo "<testcase classname=\"t\" name=\"test_$f\" file=\"$f\" time=\"$t\"><failure message=\"boom\">trace</failure></testcase>"
            else
              echo "<testcase classname=\"t\" name=\"test_$f\" file=\"$f\" time=\"$t\"/>"
            fi
          done
          echo '</testsuite>'
        } > reports/junit.xml
        case "{{ join(shard.file, ' ') }}" in *c.py*) exit 1;; esac
      artifacts:
        workingDir: reports
        paths: ['*.xml']
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_durations_are_stored_typed_balance_the_next_run_and_a_failed_only_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let suite = workflow("reporting", REPORTING);

    // First run: no history, the format's contiguous split, nothing kept.
    let prepared = service
        .prepare(RunRequest::new(suite.clone()))
        .await
        .unwrap();
    assert!(
        prepared.notes()[0].contains("no recorded durations yet"),
        "{:?}",
        prepared.notes()
    );
    assert!(prepared.shard_durations().is_empty());
    let first = finish(service.launch(prepared).await.unwrap()).await;
    assert_eq!(first.status, ExecutionStatus::Failed);
    assert_eq!(
        shards(&first).into_values().collect::<Vec<_>>(),
        ["files a.py,b.py", "files c.py,d.py"]
    );
    let record = store.find_execution("reporting-1").await.unwrap();
    assert!(record.shard_durations.is_empty());
    assert_eq!(store.test_cases(&record.id).await.unwrap().len(), 4);

    // Second run: split by the first run's reports; the durations it used
    // are a field of its record, not part of its workflow snapshot.
    let prepared = service.prepare(RunRequest::new(suite)).await.unwrap();
    assert!(
        prepared.notes()[0].contains("shards split by 4 recorded durations"),
        "{:?}",
        prepared.notes()
    );
    let second = finish(service.launch(prepared).await.unwrap()).await;
    let balanced = shards(&second);
    assert!(
        balanced.values().any(|d| d == "files a.py"),
        "the slow file gets a worker of its own: {balanced:?}"
    );
    let record = store.find_execution("reporting-2").await.unwrap();
    assert_eq!(record.shard_durations.get("a.py"), Some(&3.0));
    assert_eq!(
        record.shard_durations.len(),
        4,
        "{:?}",
        record.shard_durations
    );
    assert!(!record.snapshot.to_string().contains("x-testkube-durations"));

    // Only the worker that held c.py runs again, with the shard it had.
    let request = service
        .rerun_request("reporting-2", &RerunOptions::new().failed_only(true))
        .await
        .unwrap();
    let prepared = service.prepare(request).await.unwrap();
    assert!(
        prepared.notes()[0].contains("1 of 2 workers run again (the others passed in reporting-2)"),
        "{:?}",
        prepared.notes()
    );
    let rerun = finish(service.launch(prepared).await.unwrap()).await;
    assert_eq!(rerun.name, "reporting-3");
    let again = shards(&rerun);
    assert_eq!(again.len(), 1, "{again:?}");
    let (worker, description) = again.iter().next().unwrap();
    assert_eq!(balanced.get(worker), Some(description));
    assert!(description.contains("c.py"), "{description}");
    // The rerun keeps the durations it was planned with, for a rerun of it.
    let record = store.find_execution("reporting-3").await.unwrap();
    assert_eq!(record.shard_durations.get("a.py"), Some(&3.0));

    // A full rerun of the passed-over workflow: a new number, all workers.
    let full = finish(
        service
            .rerun("reporting-1", &RerunOptions::new())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (full.name.as_str(), shards(&full).len()),
        ("reporting-4", 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_resumes_and_a_running_one_aborts_through_its_control() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let gated = workflow(
        "gated",
        "  - {name: Before, shell: 'echo before'}\n  - {name: Gate, paused: true, shell: 'echo after the gate'}\n",
    );
    let mut run = service.start(RunRequest::new(gated)).await.unwrap();
    let control = run.control();
    let id = run.id().to_owned();
    loop {
        match run.next_event().await {
            Some(Event::Execution {
                status: ExecutionStatus::Paused,
                ..
            }) => break,
            Some(Event::Finished(summary)) => panic!("ended unpaused: {summary:?}"),
            Some(_) => {}
            None => panic!("no events"),
        }
    }
    // The store says paused before anyone resumes (what `testkube resume` checks).
    assert_eq!(
        store.get_execution(&id).await.unwrap().status,
        ExecutionStatus::Paused
    );
    control.resume();
    let summary = finish(run).await;
    assert_eq!(summary.status, ExecutionStatus::Passed);
    assert!(logs(store.as_ref(), &id).await.contains("after the gate"));

    let endless = workflow(
        "endless",
        "  - {name: Wait, shell: 'echo waiting; sleep 600'}\n",
    );
    let mut run = service.start(RunRequest::new(endless)).await.unwrap();
    let id = run.id().to_owned();
    loop {
        match run.next_event().await {
            Some(Event::Log { .. }) => break,
            Some(Event::Finished(summary)) => panic!("ended early: {summary:?}"),
            Some(_) => {}
            None => panic!("no events"),
        }
    }
    // Any clone aborts it.
    run.control().clone().abort();
    let summary = finish(run).await;
    assert_eq!(summary.status, ExecutionStatus::Aborted);
    let record = store.get_execution(&id).await.unwrap();
    assert_eq!(record.status, ExecutionStatus::Aborted);
    let steps = store.steps(&id).await.unwrap();
    assert!(
        steps.iter().any(|step| step.status == StepStatus::Aborted),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_resolved_from_the_source_and_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    std::fs::write(
        &file,
        "svcapi: {token: tok-31415}\nsvcdb: {password: pw-27182}\n",
    )
    .unwrap();
    let (service, store) = service(dir.path()).await;
    let service = service.with_secrets(Arc::new(LocalSecrets::with_file(&file).unwrap()));
    let uses = workflow(
        "secretive",
        "  - name: Use\n    shell: 'echo token={{ secret(\"svcapi\", \"token\") }} password=$PASSWORD'\n    container:\n      env:\n      - name: PASSWORD\n        valueFrom: {secretKeyRef: {name: svcdb, key: password}}\n",
    );
    let summary = finish(service.start(RunRequest::new(uses)).await.unwrap()).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:?}");
    let record = store.find_execution("secretive-1").await.unwrap();
    let logged = logs(store.as_ref(), &record.id).await;
    assert!(logged.contains("token=********"), "{logged}");
    assert!(logged.contains("password=********"), "{logged}");
    assert!(
        !logged.contains("tok-31415") && !logged.contains("pw-27182"),
        "{logged}"
    );
    // The snapshot keeps the calls, never the values: a rerun reads them again.
    let snapshot = record.snapshot.to_string();
    assert!(snapshot.contains("secret("), "{snapshot}");
    assert!(snapshot.contains("secretKeyRef"), "{snapshot}");
    assert!(!snapshot.contains("tok-31415") && !snapshot.contains("pw-27182"));

    // A secret set nowhere refuses the run before anything is recorded.
    let missing = workflow(
        "lacking",
        "  - shell: 'echo {{ secret(\"svcapi\", \"other\") }}'\n",
    );
    let err = service.start(RunRequest::new(missing)).await.unwrap_err();
    assert!(
        matches!(&err, ServiceError::MissingSecret { name, key } if name == "svcapi" && key == "other"),
        "{err:?}"
    );
    assert!(matches!(
        store.find_execution("lacking-1").await,
        Err(testkube_core::store::StoreError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_run_from_the_catalog_and_are_recorded_as_executions() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let found = parsed(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: child}\nspec:\n  config:\n    who: {type: string}\n  steps:\n  - shell: echo \"hello {{ config.who }}\"\n---\napiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: smoke-a, labels: {suite: smoke}}\nspec:\n  steps:\n  - shell: 'exit 3'\n",
    );
    let mut catalog = WorkflowSet::new(TemplateSet::with_builtins().unwrap());
    for workflow in found {
        catalog.insert(workflow).unwrap();
    }
    let catalog: Arc<dyn WorkflowCatalog> = Arc::new(catalog);
    let service = service.with_catalog(catalog);
    let parent = workflow(
        "parent",
        "  - name: Children\n    execute:\n      workflows:\n      - {name: child, config: {who: alice}}\n      - selector: {matchLabels: {suite: smoke}}\n",
    );
    let summary = finish(service.start(RunRequest::new(parent)).await.unwrap()).await;
    assert_eq!(summary.status, ExecutionStatus::Failed, "smoke-a exits 3");
    let parent = store.find_execution("parent-1").await.unwrap();
    let child = store.find_execution("child-1").await.unwrap();
    assert_eq!(child.status, ExecutionStatus::Passed);
    assert_eq!(child.snapshot["parent"]["id"], parent.id.as_str());
    assert!(
        logs(store.as_ref(), &child.id)
            .await
            .contains("hello alice")
    );
    let smoke = store.find_execution("smoke-a-1").await.unwrap();
    assert_eq!(smoke.status, ExecutionStatus::Failed);
    // A second run numbers its children on.
    let again = workflow(
        "parent",
        "  - execute: {workflows: [{name: child, config: {who: bob}}]}\n",
    );
    finish(service.start(RunRequest::new(again)).await.unwrap()).await;
    let child = store.find_execution("child-2").await.unwrap();
    assert!(logs(store.as_ref(), &child.id).await.contains("hello bob"));
}

/// A fixed wall clock.
#[derive(Debug)]
struct Fixed(std::time::SystemTime);

impl testkube_core::service::Clock for Fixed {
    fn now(&self) -> std::time::SystemTime {
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_record_times_come_from_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_800_000_000_123);
    let service = service.with_clock(Arc::new(Fixed(at)), "7");
    let clocked = workflow("clocked", "  - shell: 'echo {{ execution.scheduledAt }}'\n");
    let first = service
        .start(RunRequest::new(clocked.clone()))
        .await
        .unwrap();
    assert_eq!(first.id(), "clocked-1800000000123-7");
    let summary = finish(first).await;
    assert_eq!(summary.started_at, summary.finished_at, "{summary:?}");
    // Two runs in the same millisecond still get ids of their own.
    let second = service.start(RunRequest::new(clocked)).await.unwrap();
    assert_eq!(second.id(), "clocked-1800000000124-7");
    finish(second).await;
    let record = store
        .get_execution("clocked-1800000000123-7")
        .await
        .unwrap();
    assert_eq!(
        std::time::SystemTime::from(record.scheduled_at),
        at,
        "{record:?}"
    );
    assert!(
        logs(store.as_ref(), &record.id)
            .await
            .contains("2027-01-15T08:00:00Z"),
        "{}",
        logs(store.as_ref(), &record.id).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_started_at_once_get_numbers_and_ids_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let busy = workflow("busy", "  - shell: 'echo {{ execution.number }}'\n");
    let starts = (0..3).map(|_| {
        let (service, busy) = (service.clone(), busy.clone());
        async move { service.start(RunRequest::new(busy)).await }
    });
    let runs: Vec<RunHandle> = futures_join(starts).await;
    let mut names: Vec<String> = runs.iter().map(|run| run.name().to_owned()).collect();
    let mut ids: Vec<String> = runs.iter().map(|run| run.id().to_owned()).collect();
    for run in runs {
        assert_eq!(finish(run).await.status, ExecutionStatus::Passed);
    }
    names.sort();
    ids.sort();
    ids.dedup();
    assert_eq!(names, ["busy-1", "busy-2", "busy-3"]);
    assert_eq!(ids.len(), 3);
    for name in names {
        let record = store.find_execution(&name).await.unwrap();
        let number = record.number.to_string();
        assert!(logs(store.as_ref(), &record.id).await.contains(&number));
    }
}

/// Runs the futures at once (as tasks of this runtime) and returns their
/// results in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<RunHandle>
where
    F: std::future::Future<Output = Result<RunHandle, ServiceError>> + Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap().unwrap());
    }
    out
}

/// A record from before the durations had a field of their own (a store
/// that was not migrated, here a row written that way): the rerun takes
/// them from the snapshot, and the workflow reads back without the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_only_rerun_of_an_old_record_uses_the_durations_in_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (service, store) = service(dir.path()).await;
    let suite = workflow("legacy", REPORTING);
    let mut snapshot = serde_json::to_value(&suite).unwrap();
    snapshot["x-testkube-durations"] = serde_json::json!({"a.py": 3.0, "b.py": 0.1});
    let old = store
        .create_execution(testkube_core::store::NewExecution {
            id: "legacy-old".to_owned(),
            workflow: "legacy".to_owned(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: chrono_now(),
            snapshot,
            config: BTreeMap::new(),
            tags: BTreeMap::new(),
            shard_durations: BTreeMap::new(),
        })
        .await
        .unwrap();
    store
        .update_status(
            &old.id,
            testkube_core::store::StatusUpdate {
                status: ExecutionStatus::Failed,
                at: chrono_now(),
                message: None,
            },
        )
        .await
        .unwrap();
    let request = service
        .rerun_request("legacy-1", &RerunOptions::new().failed_only(true))
        .await
        .unwrap();
    let failed_only = request.failed_only.as_ref().unwrap();
    assert_eq!(
        failed_only.durations(),
        &BTreeMap::from([("a.py".to_owned(), 3.0), ("b.py".to_owned(), 0.1)])
    );
    assert_eq!(request.workflow, suite);
    assert_eq!(request.source, "execution legacy-1");
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    std::time::SystemTime::now().into()
}
