//! `execute` child executions, `paused` steps and start barriers in the
//! engine, with a small in-test executor (the local executor runs them on
//! real processes in testkube-executors' `transfer_paused` tests): children
//! found by name and by selector, config passed, `parallelism`, `async`,
//! failing children, `Canceller::resume`, and plans refused without a
//! workflow catalog.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use testkube_core::engine::{
    ChildError, ChildExecutions, ChildRequest, ChildTarget, Engine, EngineError, Event,
    ExecuteRequest, ExecutionRequest, ExecutionSummary, Executor, ExecutorError, ParallelRequest,
    PreparedChild, StartedChild, StepDetail, WorkerControl, WorkerEvent, WorkerHandle, WorkerSpec,
    WorkflowSet,
};
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::{ExecutionStatus, Interruption, StepStatus};
use testkube_core::{LoadOptions, PlanOptions, ResolveOptions, TemplateSet};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn workflows(yaml: &str) -> Vec<TestWorkflow> {
    let file = testkube_core::load_file("t.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    file.documents
        .iter()
        .filter_map(|doc| match &doc.document {
            Some(Document::TestWorkflow(workflow)) => Some((**workflow).clone()),
            _ => None,
        })
        .collect()
}

fn plan_of(workflow: &TestWorkflow) -> testkube_core::Plan {
    let templates = TemplateSet::with_builtins().unwrap();
    let resolved =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .unwrap();
    testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).unwrap()
}

/// Runs a worker's steps one level deep: `shell: exit N` passes for 0,
/// `shell: sleep` sleeps a little (on tokio's clock, which the tests pause,
/// so nobody waits for real); `execute`, `parallel`, `paused` and the
/// barrier go through the orchestrator. Each worker reports its `config`
/// as an output of its root.
#[derive(Default)]
struct StepsExecutor {
    sleeping: Arc<AtomicUsize>,
    most_sleeping: Arc<AtomicUsize>,
}

struct NoControl;

#[async_trait]
impl WorkerControl for NoControl {
    async fn interrupt(&self, _interruption: Interruption) {}
}

#[async_trait]
impl Executor for StepsExecutor {
    fn name(&self) -> &str {
        "steps"
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        let (tx, rx) = mpsc::channel(64);
        let sleeping = Arc::clone(&self.sleeping);
        let most = Arc::clone(&self.most_sleeping);
        tokio::spawn(async move {
            let status = run_steps(&spec, &tx, &sleeping, &most).await;
            let _ = tx.send(WorkerEvent::Finished { status }).await;
        });
        Ok(WorkerHandle {
            events: Box::pin(ReceiverStream::new(rx)),
            control: Arc::new(NoControl),
        })
    }
}

async fn run_steps(
    spec: &WorkerSpec,
    tx: &mpsc::Sender<WorkerEvent>,
    sleeping: &AtomicUsize,
    most: &AtomicUsize,
) -> StepStatus {
    let step_event = |step: &str, status| WorkerEvent::Step {
        step: step.to_owned(),
        status,
        at: std::time::SystemTime::now(),
        detail: StepDetail::default(),
    };
    if spec.barrier {
        spec.orchestrator.ready().await;
    }
    let _ = tx.send(step_event("root", StepStatus::Running)).await;
    let config = spec.variables.get("config").cloned().unwrap_or_default();
    let _ = tx
        .send(WorkerEvent::Output {
            step: "root".to_owned(),
            key: "config".to_owned(),
            value: config.to_string(),
        })
        .await;
    let mut verdict = StepStatus::Passed;
    for step in children(&spec.root) {
        if step.paused {
            let _ = tx.send(step_event(&step.id, StepStatus::Paused)).await;
            spec.orchestrator.paused(&step.id).await;
        }
        let _ = tx.send(step_event(&step.id, StepStatus::Running)).await;
        let mut status = StepStatus::Passed;
        let mut message = None;
        for operation in &step.operations {
            status = match operation {
                Operation::Shell { script, .. } if script.trim() == "sleep" => {
                    let now = sleeping.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    sleeping.fetch_sub(1, Ordering::SeqCst);
                    StepStatus::Passed
                }
                Operation::Shell { script, .. } if script.trim() == "exit 0" => StepStatus::Passed,
                Operation::Shell { .. } => StepStatus::Failed,
                Operation::Execute(execute) => {
                    let request = ExecuteRequest {
                        step: step.id.clone(),
                        execute: execute.clone(),
                    };
                    let outcome = spec.orchestrator.execute(request).await;
                    message = outcome.message;
                    outcome.status
                }
                Operation::Parallel(block) => {
                    let request = ParallelRequest {
                        step: step.id.clone(),
                        parallel: (**block).clone(),
                    };
                    spec.orchestrator.run_parallel(request).await.status
                }
                _ => StepStatus::Passed,
            };
        }
        let _ = tx
            .send(WorkerEvent::Step {
                step: step.id.clone(),
                status,
                at: std::time::SystemTime::now(),
                detail: StepDetail {
                    message,
                    ..StepDetail::default()
                },
            })
            .await;
        if !status.is_success() {
            verdict = StepStatus::Failed;
        }
    }
    let _ = tx.send(step_event("root", verdict)).await;
    verdict
}

fn children(root: &PlanStep) -> Vec<&PlanStep> {
    root.operations
        .iter()
        .filter_map(|op| match op {
            Operation::Steps { steps } => Some(steps.iter()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A [`WorkflowSet`] that keeps every child's summary, as a frontend
/// would store it.
struct Recording {
    set: WorkflowSet,
    summaries: Mutex<Vec<ExecutionSummary>>,
}

#[async_trait]
impl ChildExecutions for Recording {
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError> {
        self.set.find(target)
    }

    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError> {
        self.set.prepare(child)
    }

    async fn register(
        &self,
        child: &ChildRequest,
        prepared: &mut PreparedChild,
    ) -> Result<(), ChildError> {
        self.set.register(child, prepared).await
    }

    async fn follow(&self, child: StartedChild) -> Option<ExecutionSummary> {
        let summary = child.execution.wait().await;
        if let (Some(summary), Ok(mut all)) = (&summary, self.summaries.lock()) {
            all.push(summary.clone());
        }
        summary
    }
}

const CHILDREN: &str = "
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: child, labels: {suite: api}}
spec:
  config:
    code: {type: integer, default: 0}
    note: {default: ''}
  steps:
  - {id: run, shell: 'exit {{ config.code }}'}
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: other, labels: {suite: api, speed: slow}}
spec:
  steps:
  - {id: run, shell: 'exit 0'}
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: slow, labels: {suite: ui}}
spec:
  steps:
  - {id: run, shell: sleep}
";

struct Setup {
    engine: Engine,
    recording: Arc<Recording>,
    executor: Arc<StepsExecutor>,
}

fn setup() -> Setup {
    let mut set = WorkflowSet::new(TemplateSet::with_builtins().unwrap());
    for workflow in workflows(CHILDREN) {
        set.insert(workflow).unwrap();
    }
    let recording = Arc::new(Recording {
        set,
        summaries: Mutex::new(Vec::new()),
    });
    let executor = Arc::new(StepsExecutor::default());
    let engine = Engine::new(executor.clone()).with_children(recording.clone());
    Setup {
        engine,
        recording,
        executor,
    }
}

fn parent(steps: &str) -> testkube_core::Plan {
    let yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: parent}}\nspec:\n  steps:\n{steps}"
    );
    plan_of(&workflows(&yaml)[0])
}

async fn run_collecting(
    engine: &Engine,
    plan: testkube_core::Plan,
) -> (Vec<Event>, ExecutionSummary) {
    let mut running = engine.start(plan, ExecutionRequest::new("p")).unwrap();
    let mut events = Vec::new();
    while let Some(event) = running.next_event().await {
        if let Event::Finished(summary) = &event {
            let summary = (**summary).clone();
            events.push(event);
            return (events, summary);
        }
        events.push(event);
    }
    panic!("no summary in {events:#?}")
}

fn step_status(summary: &ExecutionSummary, id: &str) -> StepStatus {
    summary.workers[0]
        .steps
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.status)
        .unwrap_or_else(|| panic!("no step {id} in {summary:#?}"))
}

fn step_message(summary: &ExecutionSummary, id: &str) -> String {
    summary.workers[0]
        .steps
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

fn child_events(events: &[Event]) -> Vec<(String, StepStatus)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Child { child, .. } => Some((child.name.clone(), child.status)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn children_by_name_get_their_config_and_are_recorded() {
    let setup = setup();
    let plan = parent(
        "  - id: tests\n    execute:\n      workflows:\n      - name: child\n        matrix: {n: [1, 2, 3]}\n        config: {code: 0}\n",
    );
    let (events, summary) = run_collecting(&setup.engine, plan).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    assert_eq!(step_status(&summary, "tests"), StepStatus::Passed);
    let children = child_events(&events);
    let finished: Vec<_> = children
        .iter()
        .filter(|(_, status)| *status == StepStatus::Passed)
        .map(|(name, _)| name.clone())
        .collect();
    let mut sorted = finished.clone();
    sorted.sort();
    assert_eq!(sorted, ["child-1", "child-2", "child-3"], "{children:?}");
    let recorded = setup.recording.summaries.lock().unwrap().clone();
    assert_eq!(recorded.len(), 3);
    for child in &recorded {
        assert_eq!(child.workflow, "child");
        assert_eq!(child.status, ExecutionStatus::Passed);
        let config = &child.workers[0].steps[0].outputs["config"];
        assert_eq!(config, r#"{"code":0,"note":""}"#);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_child_fails_the_parent_step() {
    let setup = setup();
    let plan = parent(
        "  - id: tests\n    execute:\n      workflows:\n      - {name: child, config: {code: 0}}\n      - {name: child, config: {code: 3}}\n  - {id: after, shell: 'exit 0'}\n",
    );
    let (events, summary) = run_collecting(&setup.engine, plan).await;
    assert_eq!(summary.status, ExecutionStatus::Failed);
    assert_eq!(step_status(&summary, "tests"), StepStatus::Failed);
    let children = child_events(&events);
    assert!(
        children.contains(&("child-1".to_owned(), StepStatus::Passed))
            || children.contains(&("child-2".to_owned(), StepStatus::Passed)),
        "{children:?}"
    );
    assert_eq!(
        children
            .iter()
            .filter(|(_, status)| *status == StepStatus::Failed)
            .count(),
        1,
        "{children:?}"
    );
    let recorded = setup.recording.summaries.lock().unwrap().clone();
    let failed: Vec<_> = recorded
        .iter()
        .filter(|s| s.status == ExecutionStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].workers[0].steps[0].outputs["config"],
        r#"{"code":3,"note":""}"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_selector_runs_every_matching_workflow() {
    let setup = setup();
    let plan = parent(
        "  - id: api\n    execute:\n      workflows:\n      - selector: {matchLabels: {suite: api}}\n",
    );
    let (events, summary) = run_collecting(&setup.engine, plan).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    let mut workflows: Vec<String> = setup
        .recording
        .summaries
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.workflow.clone())
        .collect();
    workflows.sort();
    assert_eq!(workflows, ["child", "other"], "{events:#?}");

    let none = parent(
        "  - id: nothing\n    execute:\n      workflows:\n      - selector: {matchLabels: {suite: missing}}\n",
    );
    let (_, summary) = run_collecting(&setup.engine, none).await;
    assert_eq!(step_status(&summary, "nothing"), StepStatus::Failed);
    let message = step_message(&summary, "nothing");
    assert!(message.contains("no workflow matches"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn unknown_workflows_fail_the_step_before_any_child_starts() {
    let setup = setup();
    let plan = parent(
        "  - id: tests\n    execute:\n      workflows:\n      - name: child\n      - name: chlid\n",
    );
    let (events, summary) = run_collecting(&setup.engine, plan).await;
    assert_eq!(step_status(&summary, "tests"), StepStatus::Failed);
    let message = step_message(&summary, "tests");
    assert!(message.contains("no workflow named `chlid`"), "{message}");
    assert!(child_events(&events).is_empty(), "nothing started");
    assert!(setup.recording.summaries.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn parallelism_limits_children_at_once() {
    let setup = setup();
    let plan = parent(
        "  - id: tests\n    execute:\n      parallelism: 2\n      workflows:\n      - {name: slow, count: 5}\n",
    );
    let (_, summary) = run_collecting(&setup.engine, plan).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    assert_eq!(setup.recording.summaries.lock().unwrap().len(), 5);
    let most = setup.executor.most_sleeping.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} children ran at once");
}

#[tokio::test(start_paused = true)]
async fn async_children_do_not_hold_the_step_but_end_before_the_parent() {
    let setup = setup();
    let plan = parent(
        "  - id: tests\n    execute:\n      async: true\n      workflows:\n      - {name: slow, count: 2}\n  - {id: next, shell: 'exit 0'}\n",
    );
    let (events, summary) = run_collecting(&setup.engine, plan).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    assert_eq!(step_status(&summary, "tests"), StepStatus::Passed);
    assert_eq!(step_status(&summary, "next"), StepStatus::Passed);
    let passed = child_events(&events)
        .iter()
        .filter(|(_, status)| *status == StepStatus::Passed)
        .count();
    assert_eq!(passed, 2, "both children finished before the parent's end");
    assert_eq!(setup.recording.summaries.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn execute_is_refused_without_a_catalog() {
    let engine = Engine::new(Arc::new(StepsExecutor::default()));
    let plan = parent("  - id: tests\n    execute:\n      workflows:\n      - name: child\n");
    match engine.check(&plan) {
        Err(EngineError::Unsupported(features)) => {
            assert_eq!(features[0].feature, "execute");
            assert_eq!(features[0].step, "tests");
        }
        other => panic!("{other:?}"),
    }
    assert!(setup().engine.check(&plan).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_paused_step_waits_for_resume() {
    let engine = Engine::new(Arc::new(StepsExecutor::default()));
    let plan =
        parent("  - {id: first, shell: 'exit 0'}\n  - {id: gate, paused: true, shell: 'exit 0'}\n");
    let mut running = engine.start(plan, ExecutionRequest::new("p")).unwrap();
    let canceller = running.canceller();
    let mut seen = Vec::new();
    let summary = loop {
        let event = running.next_event().await.expect("events until the end");
        match &event {
            Event::Execution {
                status: ExecutionStatus::Paused,
                ..
            } => canceller.resume(),
            Event::Step { step, status, .. } if step.id == "gate" => seen.push(*status),
            Event::Finished(summary) => break (**summary).clone(),
            _ => {}
        }
    };
    assert_eq!(summary.status, ExecutionStatus::Passed);
    assert_eq!(
        seen,
        [StepStatus::Paused, StepStatus::Running, StepStatus::Passed]
    );
}

#[tokio::test(start_paused = true)]
async fn barrier_workers_start_after_every_worker_is_ready() {
    let engine = Engine::new(Arc::new(StepsExecutor::default()));
    let plan = parent(
        "  - id: load\n    parallel:\n      count: 4\n      paused: true\n      shell: 'exit 0'\n",
    );
    let (events, summary) = run_collecting(&engine, plan).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    let position = |wanted: &dyn Fn(&Event) -> bool| -> Vec<usize> {
        events
            .iter()
            .enumerate()
            .filter(|(_, event)| wanted(event))
            .map(|(i, _)| i)
            .collect()
    };
    let ready = position(
        &|event| matches!(event, Event::Worker { worker, status: StepStatus::Paused, .. } if worker.number > 0),
    );
    let started = position(
        &|event| matches!(event, Event::Step { worker, status: StepStatus::Running, .. } if worker.number > 0),
    );
    assert_eq!(ready.len(), 4, "{events:#?}");
    assert_eq!(started.len(), 4 * 2, "root and step of each worker");
    assert!(
        ready.iter().max() < started.iter().min(),
        "every worker was ready before any started: {events:#?}"
    );
}

#[test]
fn workflow_sets_refuse_duplicate_and_unnamed_workflows() {
    let mut set = WorkflowSet::new(TemplateSet::new());
    let all = workflows(CHILDREN);
    set.insert(all[0].clone()).unwrap();
    let err = set.insert(all[0].clone()).unwrap_err();
    assert!(
        err.message.contains("two workflows are named `child`"),
        "{err}"
    );
    let mut unnamed = all[1].clone();
    unnamed.metadata.name = None;
    assert!(set.insert(unnamed).is_err());
    let err = set.find(ChildTarget::Name("nope")).unwrap_err();
    assert!(err.message.contains("known: child"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_workflow_that_executes_itself_stops_at_the_depth_limit() {
    let yaml = "
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: again}
spec:
  steps:
  - id: deeper
    execute:
      workflows:
      - name: again
";
    let mut set = WorkflowSet::new(TemplateSet::new());
    let workflow = workflows(yaml).remove(0);
    set.insert(workflow.clone()).unwrap();
    let engine = Engine::new(Arc::new(StepsExecutor::default())).with_children(Arc::new(set));
    let (_, summary) = run_collecting(&engine, plan_of(&workflow)).await;
    assert_eq!(summary.status, ExecutionStatus::Failed);
    let message = step_message(&summary, "deeper");
    assert!(message.contains("ended failed"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn the_parents_secrets_are_masked_in_its_children() {
    let setup = setup();
    let plan = parent(
        "  - id: tests\n    execute:\n      workflows:\n      - {name: child, config: {note: topsecret-value-123}}\n",
    );
    let request = ExecutionRequest {
        secrets: vec!["topsecret-value-123".to_owned()],
        ..ExecutionRequest::new("p")
    };
    let summary = setup
        .engine
        .start(plan, request)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    let recorded = setup.recording.summaries.lock().unwrap().clone();
    let config = &recorded[0].workers[0].steps[0].outputs["config"];
    assert!(!config.contains("topsecret"), "{config}");
    assert!(config.contains("note"), "{config}");
}
