//! The engine's orchestration with a focused fake executor (real processes
//! are tested with the local executor in testkube-executors): the
//! `parallelism` limit, `failFast`, the verdict of a block, refusing plans
//! that use what cannot run yet, and the execution's initialization result.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use testkube_core::engine::{
    Engine, Event, ExecutionRequest, Executor, ExecutorError, ParallelRequest, StepDetail,
    WorkerControl, WorkerEvent, WorkerHandle, WorkerSpec,
};
use testkube_core::model::Document;
use testkube_core::plan::Operation;
use testkube_core::status::{ExecutionStatus, Interruption, StepStatus};
use testkube_core::{LoadOptions, PlanOptions, ResolveOptions, TemplateSet};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

fn plan(yaml: &str) -> testkube_core::Plan {
    let file = testkube_core::load_file("t.yaml", yaml.as_bytes(), &LoadOptions::default());
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("{:?}", file.diagnostics)
    };
    let templates = TemplateSet::with_builtins().unwrap();
    let resolved =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .unwrap();
    testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).unwrap()
}

/// Runs the root worker's first `parallel` block through the engine;
/// a parallel worker's shell script says what it does: `pass`, `fail`, or
/// `hang` (until interrupted).
#[derive(Default)]
struct FakeExecutor {
    running: Arc<AtomicUsize>,
    most_at_once: AtomicUsize,
}

struct FakeControl(watch::Sender<Option<Interruption>>);

#[async_trait]
impl WorkerControl for FakeControl {
    async fn interrupt(&self, interruption: Interruption) {
        let _ = self.0.send(Some(interruption));
    }
}

#[async_trait]
impl Executor for FakeExecutor {
    fn name(&self) -> &str {
        "fake"
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        let (tx, rx) = mpsc::channel(16);
        let (stop_tx, mut stop) = watch::channel(None);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let running = Arc::clone(&self.running);
        tokio::spawn(async move {
            let status = match find_parallel(&spec) {
                Some(request) => spec.orchestrator.run_parallel(request).await.status,
                None => match script(&spec).as_str() {
                    "pass" => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        StepStatus::Passed
                    }
                    "fail" => StepStatus::Failed,
                    _ => {
                        let fired = stop.wait_for(Option::is_some).await.ok().and_then(|v| *v);
                        fired.map_or(StepStatus::Aborted, |i: Interruption| {
                            i.step_status(StepStatus::Running)
                        })
                    }
                },
            };
            running.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(WorkerEvent::Finished { status }).await;
        });
        Ok(WorkerHandle {
            events: Box::pin(ReceiverStream::new(rx)),
            control: Arc::new(FakeControl(stop_tx)),
        })
    }
}

fn find_parallel(spec: &WorkerSpec) -> Option<ParallelRequest> {
    spec.root.operations.iter().find_map(|op| match op {
        Operation::Steps { steps } => steps.iter().find_map(|step| {
            step.operations.iter().find_map(|op| match op {
                Operation::Parallel(block) => Some(ParallelRequest {
                    step: step.id.clone(),
                    parallel: (**block).clone(),
                }),
                _ => None,
            })
        }),
        _ => None,
    })
}

fn script(spec: &WorkerSpec) -> String {
    fn find(step: &testkube_core::plan::PlanStep) -> Option<String> {
        step.operations.iter().find_map(|op| match op {
            Operation::Shell { script, .. } => Some(script.trim().to_owned()),
            Operation::Steps { steps } => steps.iter().find_map(find),
            _ => None,
        })
    }
    find(&spec.root).unwrap_or_default()
}

fn workflow(parallel: &str) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: t}}\nspec:\n  steps:\n  - id: block\n    parallel:\n{parallel}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_stops_the_block_and_fails_the_run() {
    let executor = Arc::new(FakeExecutor::default());
    let engine = Engine::new(executor);
    let yaml = workflow(
        "      count: 3\n      failFast: true\n      shell: '{{ index == 1 ? \"fail\" : \"hang\" }}'\n",
    );
    let summary = engine
        .start(plan(&yaml), ExecutionRequest::new("e"))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(summary.status, ExecutionStatus::Failed);
    let workers: Vec<StepStatus> = summary.workers[1..].iter().map(|w| w.status).collect();
    assert_eq!(
        workers,
        [StepStatus::Aborted, StepStatus::Failed, StepStatus::Aborted]
    );
}

// Paused time: the fake workers' sleeps pass at once, in order.
#[tokio::test(start_paused = true)]
async fn parallelism_limits_workers_at_once() {
    let executor = Arc::new(FakeExecutor::default());
    let engine = Engine::new(Arc::clone(&executor) as Arc<dyn Executor>);
    let yaml = workflow("      count: 6\n      parallelism: 2\n      shell: pass\n");
    let summary = engine
        .start(plan(&yaml), ExecutionRequest::new("e"))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(summary.status, ExecutionStatus::Passed);
    assert_eq!(summary.workers.len(), 7);
    // The root worker plus at most two block workers at a time.
    assert!(executor.most_at_once.load(Ordering::SeqCst) <= 3);
}

#[tokio::test(start_paused = true)]
async fn an_abort_ends_the_run_aborted() {
    let engine = Engine::new(Arc::new(FakeExecutor::default()));
    let yaml = workflow("      count: 2\n      shell: hang\n");
    let running = engine
        .start(plan(&yaml), ExecutionRequest::new("e"))
        .unwrap();
    let canceller = running.canceller();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.abort();
    });
    let summary = running.wait().await.unwrap();
    assert_eq!(summary.status, ExecutionStatus::Aborted);
    assert!(
        summary.workers[1..]
            .iter()
            .all(|w| w.status == StepStatus::Aborted)
    );
}

/// `job.activeDeadlineSeconds` is a tokio timer: with paused time an hour
/// passes at once, and the hanging workers are stopped by it.
#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_hanging_run_failed() {
    let engine = Engine::new(Arc::new(FakeExecutor::default()));
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: t}\nspec:\n  job: {activeDeadlineSeconds: 3600}\n  steps:\n  - id: block\n    parallel:\n      count: 2\n      shell: hang\n";
    let started = tokio::time::Instant::now();
    let summary = engine
        .start(plan(yaml), ExecutionRequest::new("e"))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(summary.status, ExecutionStatus::Failed);
    assert!(
        summary
            .message
            .as_deref()
            .is_some_and(|m| m.contains("activeDeadlineSeconds (3600s)")),
        "{:?}",
        summary.message
    );
    assert!(
        summary.workers[1..]
            .iter()
            .all(|w| w.status != StepStatus::Passed && w.status != StepStatus::Running),
        "{:?}",
        summary.workers
    );
    // Not a moment early, on tokio's (paused) clock.
    assert!(started.elapsed() >= Duration::from_secs(3600));
}

#[test]
fn plans_with_services_are_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let engine = Engine::new(Arc::new(FakeExecutor::default()));
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: t}\nspec:\n  steps:\n  - execute: {workflows: [{name: other}]}\n";
    let err = engine
        .start(plan(yaml), ExecutionRequest::new("e"))
        .unwrap_err();
    assert!(
        err.to_string().contains("not supported yet: execute"),
        "{err}"
    );
}

/// Reports a secret everywhere a worker can: split over log chunks of two
/// steps, in an output, a notice and a step message.
struct LeakyExecutor;

const SECRET: &str = "s3cr3t-T0ken-value";

#[async_trait]
impl Executor for LeakyExecutor {
    fn name(&self) -> &str {
        "leaky"
    }

    async fn start(&self, _spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        let step = |id: &str| id.to_owned();
        let log = |id: &str, text: &str| WorkerEvent::Log {
            step: step(id),
            chunk: bytes::Bytes::copy_from_slice(text.as_bytes()),
        };
        let status = |id: &str, status: StepStatus, message: Option<String>| WorkerEvent::Step {
            step: step(id),
            status,
            at: std::time::SystemTime::now(),
            detail: StepDetail {
                exit_code: None,
                attempt: 1,
                message,
            },
        };
        let events = vec![
            WorkerEvent::Initialized {
                status: StepStatus::Failed,
                at: std::time::SystemTime::now(),
                message: Some(format!("cannot clone with {SECRET}")),
            },
            status("a", StepStatus::Running, None),
            // Split over three chunks, interleaved with another step's log.
            log("a", "token=s3cr"),
            log("b", "b says s3cr3t-T0k"),
            log("a", "3t-T0k"),
            log("b", "en-value\n"),
            log("a", "en-value done\n"),
            // The end of a step's log is held until the step ends.
            log("a", "tail s3cr3t"),
            WorkerEvent::Output {
                step: step("a"),
                key: "token".to_owned(),
                value: SECRET.to_owned(),
            },
            WorkerEvent::Notice {
                message: format!("used {SECRET}"),
            },
            status("a", StepStatus::Failed, Some(format!("bad token {SECRET}"))),
            WorkerEvent::Finished {
                status: StepStatus::Failed,
            },
        ];
        Ok(WorkerHandle {
            events: Box::pin(tokio_stream::iter(events)),
            control: Arc::new(FakeControl(watch::channel(None).0)),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_in_every_event_and_the_summary() {
    let engine = Engine::new(Arc::new(LeakyExecutor));
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: t}\nspec:\n  steps:\n  - {id: a, shell: 'true'}\n";
    let request = ExecutionRequest {
        secrets: vec![SECRET.to_owned(), "x".to_owned()],
        ..ExecutionRequest::new("e")
    };
    let mut running = engine.start(plan(yaml), request).unwrap();
    let mut logs: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut seen = Vec::new();
    while let Some(event) = running.next_event().await {
        if let Event::Log { step, chunk, .. } = &event {
            logs.entry(step.clone())
                .or_default()
                .extend_from_slice(chunk);
        }
        if let Event::Finished(summary) = &event {
            seen.push(serde_json::to_string(summary).unwrap());
        }
        seen.push(format!("{event:?}"));
    }
    let log = |id: &str| String::from_utf8_lossy(&logs[id]).into_owned();
    assert_eq!(log("a"), "token=******** done\ntail s3cr3t");
    assert_eq!(log("b"), "b says ********\n");
    for text in &seen {
        assert!(!text.contains(SECRET), "{text}");
    }
    let all = seen.join("\n");
    assert!(all.contains("bad token ********"), "{all}");
    assert!(all.contains("used ********"), "{all}");
    assert!(all.contains("cannot clone with ********"), "{all}");
    assert!(all.contains("\"token\":\"********\""), "{all}");
}

/// Cannot start any worker (e.g. its workspace cannot be created).
struct BrokenExecutor;

#[async_trait]
impl Executor for BrokenExecutor {
    fn name(&self) -> &str {
        "broken"
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        Err(ExecutorError::new(
            &spec.worker,
            "cannot create /runs/e: permission denied",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_start_fails_the_initialization_with_the_reason() {
    let engine = Engine::new(Arc::new(BrokenExecutor));
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: t}\nspec:\n  steps:\n  - {id: a, shell: 'true'}\n";
    let summary = engine
        .start(plan(yaml), ExecutionRequest::new("e"))
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(summary.status, ExecutionStatus::Failed);
    let init = summary.result.initialization.expect("recorded");
    assert_eq!(init.status, StepStatus::Failed);
    assert!(
        init.error_message
            .as_deref()
            .is_some_and(|m| m.contains("cannot create /runs/e: permission denied")),
        "{init:?}"
    );
    assert!(init.started_at.is_some() && init.finished_at >= init.started_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_initialization_report_the_worker_is_initialized_by_its_first_step() {
    // The fake reports no `Initialized` and no steps: its end decides.
    let engine = Engine::new(Arc::new(FakeExecutor::default()));
    let run = |script: &str| {
        let yaml = format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: t}}\nspec:\n  steps:\n  - {{id: a, shell: {script}}}\n"
        );
        engine
            .start(plan(&yaml), ExecutionRequest::new("e"))
            .unwrap()
            .wait()
    };
    let passed = run("pass").await.unwrap().result.initialization.unwrap();
    assert_eq!(passed.status, StepStatus::Passed);
    assert_eq!(passed.error_message, None);
    let failed = run("fail").await.unwrap().result.initialization.unwrap();
    assert_eq!(failed.status, StepStatus::Failed);
    assert!(failed.error_message.is_some(), "{failed:?}");
}
