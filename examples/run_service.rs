//! Embedding the run service: what a frontend of your own (a bot, a CI
//! plugin, a web UI) calls to run workflows the way `testkube run` does,
//! with numbering, history-balanced shards, secrets, children and
//! recording done by the library.
//!
//! It runs a sharded workflow twice against one SQLite store (the second
//! run splits its shards by the durations the first one's JUnit report
//! recorded), answers `secret()` from a secrets file, resumes a paused
//! step through the run's control, and reruns only the failed worker.
//!
//! Run it with `cargo run --example run_service`. It keeps its store and
//! workspaces in a temporary folder and prints where.

use std::sync::Arc;

use testkube_core::engine::Event;
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::resolve::{ResolveOptions, TemplateSet, resolve_workflow};
use testkube_core::service::{RerunOptions, RunHandle, RunRequest, RunService};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::ResultStore;
use testkube_core::validate::load_file;
use testkube_core::yaml::LoadOptions;
use testkube_executors::{LocalExecutor, LocalSecrets, Sandbox};
use testkube_results::store::SqliteStore;

const WORKFLOW: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: service-demo
spec:
  steps:
  - name: Login
    shell: echo "logging in with {{ secret('demo-api', 'token') }}"
  - name: Review
    paused: true
    shell: echo "reviewed"
  - name: Suite
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
            echo "<testcase classname=\"t\" name=\"test_$f\" file=\"$f\" time=\"$t\"/>"
          done
          echo '</testsuite>'
        } > reports/junit.xml
        case "{{ join(shard.file, ' ') }}" in *c.py*) echo "c.py is flaky"; exit 1;; esac
      artifacts:
        workingDir: reports
        paths: ['*.xml']
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = std::env::temp_dir().join(format!("testkube-service-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let secrets_file = home.join("secrets.yaml");
    std::fs::write(&secrets_file, "demo-api: {token: s3cr3t-value}\n")?;

    // The local parts: plain processes (no sandbox, so it runs anywhere),
    // the SQLite store, secrets from the environment and a file.
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::open(&home.join("results.db")).await?);
    let executor = LocalExecutor::new(home.join("runs")).with_sandbox(Sandbox::Off);
    let service = RunService::new(Arc::new(executor))
        .with_store(Arc::clone(&store))
        .with_secrets(Arc::new(LocalSecrets::with_file(&secrets_file)?))
        .with_warnings(|warning| eprintln!("warning: {warning}"));

    let workflow = resolved_workflow()?;
    for _ in 0..2 {
        // prepare: secrets, history, plan; nothing recorded yet.
        let prepared = service
            .prepare(RunRequest::new(workflow.clone()).with_tag("demo", "yes"))
            .await?;
        for note in prepared.notes() {
            println!("note: {note}");
        }
        let run = service.launch(prepared).await?;
        watch(run).await;
    }

    // Only the worker that failed runs again, with the shard it had.
    let rerun = service
        .rerun("service-demo-2", &RerunOptions::new().failed_only(true))
        .await?;
    watch(rerun).await;

    let record = store.find_execution("service-demo-2").await?;
    println!(
        "service-demo-2 was split with {:?}; the store is in {}",
        record.shard_durations,
        home.display()
    );
    Ok(())
}

/// Renders a run: resumes it when it pauses, prints its steps and logs.
async fn watch(mut run: RunHandle) {
    println!("== {} ({})", run.name(), run.id());
    let control = run.control();
    while let Some(event) = run.next_event().await {
        match event {
            Event::Execution {
                status: ExecutionStatus::Paused,
                ..
            } => {
                println!("   paused: resuming through the run's control");
                control.resume();
            }
            Event::Log { worker, chunk, .. } => {
                for line in String::from_utf8_lossy(&chunk).lines() {
                    println!("   [{}] {line}", worker.path);
                }
            }
            Event::Finished(summary) => {
                println!("   {} in {} ms", summary.status, summary.duration_ms);
            }
            _ => {}
        }
    }
}

fn resolved_workflow() -> Result<TestWorkflow, Box<dyn std::error::Error>> {
    let loaded = load_file("demo.yaml", WORKFLOW.as_bytes(), &LoadOptions::default());
    if loaded.has_errors() {
        for diagnostic in &loaded.diagnostics {
            eprintln!("{}", diagnostic.render(Some(WORKFLOW)));
        }
        return Err("the workflow is not valid".into());
    }
    let Some(Document::TestWorkflow(workflow)) = &loaded.documents[0].document else {
        return Err("expected a TestWorkflow".into());
    };
    let templates = TemplateSet::with_builtins()?;
    let resolved = resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)?;
    Ok(resolved.workflow().clone())
}
