//! Embedding the engine: run a workflow from Rust code with the local
//! executor, keep it in the SQLite result store, and consume the event
//! stream as it happens (here: one line per step and the test results).
//!
//! Run it with `cargo run --example run_workflow`. It keeps its store and
//! workspaces in a temporary folder and prints where.

use std::sync::Arc;

use testkube_core::engine::{Engine, Event, ExecutionRequest};
use testkube_core::model::Document;
use testkube_core::plan::{PlanOptions, plan_workflow};
use testkube_core::resolve::{ResolveOptions, TemplateSet, resolve_workflow};
use testkube_core::store::{LogFilter, NewExecution, ResultStore};
use testkube_core::validate::load_file;
use testkube_core::yaml::LoadOptions;
use testkube_executors::LocalExecutor;
use testkube_results::store::{EventRecorder, SqliteStore};

const WORKFLOW: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: embedded
spec:
  steps:
  - name: Build
    shell: echo "building $(uname -s)"
  - name: Test
    parallel:
      count: 2
      shell: echo "worker {{ index }} of {{ count }} tests"
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = std::env::temp_dir().join(format!("testkube-example-{}", std::process::id()));

    // 1. From YAML to a plan: load (with positions for errors), resolve, plan.
    let loaded = load_file(
        "embedded.yaml",
        WORKFLOW.as_bytes(),
        &LoadOptions::default(),
    );
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
    let plan = plan_workflow(resolved.workflow(), &PlanOptions::new())?;

    // 2. A store to keep the run: the execution is created first, which numbers it.
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::open(&home.join("results.db")).await?);
    let record = store
        .create_execution(NewExecution {
            id: format!("embedded-{}", std::process::id()),
            workflow: plan.workflow.clone(),
            name: None,
            status: testkube_core::status::ExecutionStatus::Queued,
            scheduled_at: std::time::SystemTime::now().into(),
            snapshot: serde_json::to_value(resolved.workflow())?,
            config: Default::default(),
            tags: Default::default(),
            shard_durations: Default::default(),
        })
        .await?;

    // 3. The engine with the local executor; every event goes to the store
    //    through the recorder, and to us.
    let engine = Engine::new(Arc::new(LocalExecutor::new(home.join("runs"))));
    let request = ExecutionRequest {
        number: record.number,
        name: record.name.clone(),
        ..ExecutionRequest::new(record.id.clone())
    };
    let mut running = engine.start(plan, request)?;
    let mut recorder = EventRecorder::new(Arc::clone(&store), record.id.clone());
    while let Some(event) = running.next_event().await {
        recorder.record(&event).await?;
        match &event {
            Event::Step {
                worker,
                step,
                status,
                ..
            } if step.depth > 0 => println!("{status:<8} {worker} {}", step.label()),
            Event::Finished(summary) => {
                println!(
                    "{} {} in {} ms",
                    summary.name, summary.status, summary.duration_ms
                );
            }
            _ => {}
        }
    }

    // 4. Everything is in the store now: read the logs back.
    let logs = store.logs(&record.id, &LogFilter::default()).await?;
    for chunk in logs {
        print!(
            "{} | {}",
            chunk.worker,
            String::from_utf8_lossy(&chunk.data)
        );
    }
    println!("kept in {}", home.display());
    Ok(())
}
