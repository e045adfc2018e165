//! The engine with the local executor, on real processes: files moved into
//! parallel workers (`transfer`) and back (`fetch`), the start barrier of a
//! `paused` block, `paused` steps resumed through the API, and `execute`
//! child executions (by name and selector, with config, `parallelism`,
//! `async`, failing children). Every test runs as plain processes
//! and in each sandbox this machine can build.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use testkube_core::engine::{
    ChildError, ChildExecutions, ChildRequest, ChildTarget, Engine, Event, ExecutionRequest,
    ExecutionSummary, PreparedChild, StartedChild, WorkflowSet,
};
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::{LoadOptions, TemplateSet};
use testkube_executors::{LocalExecutor, Sandbox};

mod common;
use common::{executors, plan, step, workflow};

fn workflows(yaml: &str) -> Vec<TestWorkflow> {
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

/// Runs `yaml` to its end, keeping every event.
async fn run_with(engine: &Engine, yaml: &str) -> (Vec<Event>, ExecutionSummary) {
    let mut running = engine
        .start(plan(yaml), ExecutionRequest::new("exec"))
        .unwrap();
    let mut events = Vec::new();
    while let Some(event) = running.next_event().await {
        if let Event::Finished(summary) = &event {
            let summary = (**summary).clone();
            events.push(event);
            return (events, summary);
        }
        events.push(event);
    }
    panic!("the run ended without a summary: {events:#?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transferred_files_reach_every_worker_and_fetched_files_come_back() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let yaml = workflow(
            r#"  steps:
  - id: prepare
    shell: 'mkdir -p input/sub && echo seed > input/sub/seed.txt && echo no > input/skip.log'
  - id: work
    parallel:
      count: 3
      transfer:
      - {from: /data/input, to: /data/given, files: ['**/*.txt']}
      fetch:
      - {from: /data/out, to: /data/results}
      shell: 'test ! -e given/skip.log && mkdir -p out && echo "$(cat given/sub/seed.txt)-{{ index }}" > out/result-{{ index }}.txt'
  - id: check
    shell: 'cat results/result-0.txt results/result-1.txt results/result-2.txt'
"#,
        );
        let (_, summary) = run_with(&engine, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(step(&summary, "work").status, StepStatus::Passed);
        let results = executor.workspace("exec", "root").join("data/results");
        for index in 0..3 {
            let text = std::fs::read_to_string(results.join(format!("result-{index}.txt")))
                .unwrap_or_else(|err| panic!("result {index} was not fetched: {err}"));
            assert_eq!(text.trim(), format!("seed-{index}"));
        }
        for index in 0..3 {
            let given = executor
                .workspace("exec", &format!("root/work/{index}"))
                .join("data/given");
            assert!(given.join("sub/seed.txt").is_file());
            assert!(!given.join("skip.log").exists(), "only *.txt was sent");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_outside_the_workspace_fails_the_step() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let yaml = workflow(
            "  steps:\n  - id: work\n    parallel:\n      count: 2\n      transfer:\n      - {from: /etc}\n      shell: 'true'\n",
        );
        let (_, summary) = run_with(&engine, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Failed);
        let message = step(&summary, "work").message.clone().unwrap_or_default();
        assert!(message.contains("outside /data"), "{message}");
        assert_eq!(summary.workers.len(), 1, "no worker started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_workers_start_their_steps_once_all_are_ready() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let yaml = workflow(
            "  steps:\n  - id: load\n    parallel:\n      count: 3\n      paused: true\n      steps:\n      - {id: hit, shell: 'echo hit > hit'}\n",
        );
        let (events, summary) = run_with(&engine, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let positions = |wanted: &dyn Fn(&Event) -> bool| -> Vec<usize> {
            events
                .iter()
                .enumerate()
                .filter(|(_, event)| wanted(event))
                .map(|(i, _)| i)
                .collect()
        };
        let ready = positions(
            &|event| matches!(event, Event::Worker { worker, status: StepStatus::Paused, .. } if worker.number > 0),
        );
        let started = positions(
            &|event| matches!(event, Event::Step { worker, status: StepStatus::Running, .. } if worker.number > 0),
        );
        assert_eq!(ready.len(), 3, "each worker reported ready: {events:#?}");
        assert_eq!(started.len(), 6, "root and `hit` of each worker");
        assert!(
            ready.iter().max() < started.iter().min(),
            "no worker ran a step before all were ready: {events:#?}"
        );
        for index in 0..3 {
            assert!(
                executor
                    .workspace("exec", &format!("root/load/{index}"))
                    .join("data/hit")
                    .is_file()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_step_runs_once_resumed() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let yaml = workflow(
            "  steps:\n  - {id: before, shell: 'echo one > a'}\n  - {id: gate, paused: true, shell: 'test -f a && echo two > b'}\n",
        );
        let mut running = engine
            .start(plan(&yaml), ExecutionRequest::new("exec"))
            .unwrap();
        let canceller = running.canceller();
        let gate_output = executor.workspace("exec", "root").join("data/b");
        let mut gate = Vec::new();
        let mut paused_before_running = None;
        let summary = loop {
            let event = running.next_event().await.expect("events until the end");
            match &event {
                Event::Execution {
                    status: ExecutionStatus::Paused,
                    ..
                } => {
                    paused_before_running = Some(!gate_output.exists());
                    canceller.resume();
                }
                Event::Step { step, status, .. } if step.id == "gate" => gate.push(*status),
                Event::Finished(summary) => break (**summary).clone(),
                _ => {}
            }
        };
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(
            gate,
            [StepStatus::Paused, StepStatus::Running, StepStatus::Passed]
        );
        assert_eq!(paused_before_running, Some(true), "the step waited");
        assert!(gate_output.is_file());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_a_paused_run_aborts_the_paused_step() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let engine = Engine::new(Arc::new(executor.clone()));
        let yaml = workflow("  steps:\n  - {id: gate, paused: true, shell: 'echo ran > ran'}\n");
        let mut running = engine
            .start(plan(&yaml), ExecutionRequest::new("exec"))
            .unwrap();
        let canceller = running.canceller();
        let summary = loop {
            let event = running.next_event().await.expect("events until the end");
            match &event {
                Event::Execution {
                    status: ExecutionStatus::Paused,
                    ..
                } => canceller.abort(),
                Event::Finished(summary) => break (**summary).clone(),
                _ => {}
            }
        };
        assert_eq!(summary.status, ExecutionStatus::Aborted);
        assert_eq!(step(&summary, "gate").status, StepStatus::Aborted);
        assert!(!executor.workspace("exec", "root").join("data/ran").exists());
    }
}

/// Child workflows: `report` writes its config as an output and exits
/// with `code`; `exclusive` fails when another child holds its lock folder;
/// `waiting` waits until its flag file exists.
const CHILDREN: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: report, labels: {suite: smoke}}
spec:
  config:
    code: {type: integer, default: 0}
    who: {default: nobody}
  steps:
  - id: run
    shell: 'printf %s "{{ config.who }}" > "$TESTKUBE_OUTPUTS/who"; exit {{ config.code }}'
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: smoke-two, labels: {suite: smoke}}
spec:
  steps:
  - {id: run, shell: 'true'}
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: exclusive}
spec:
  config:
    lock: {}
  steps:
  - {id: run, shell: 'mkdir "{{ config.lock }}" && sleep 0.2 && rmdir "{{ config.lock }}"'}
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: waiting}
spec:
  config:
    flag: {}
  steps:
  - {id: run, timeout: 30s, shell: 'while [ ! -e "{{ config.flag }}" ]; do sleep 0.05; done'}
"#;

/// A [`WorkflowSet`] that keeps each child's summary, as a frontend would.
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

fn with_children(executor: &LocalExecutor) -> (Engine, Arc<Recording>) {
    let mut set = WorkflowSet::new(TemplateSet::with_builtins().unwrap());
    for workflow in workflows(CHILDREN) {
        set.insert(workflow).unwrap();
    }
    let recording = Arc::new(Recording {
        set,
        summaries: Mutex::new(Vec::new()),
    });
    let engine = Engine::new(Arc::new(executor.clone())).with_children(recording.clone());
    (engine, recording)
}

fn child_statuses(events: &[Event]) -> Vec<(String, StepStatus)> {
    let mut finished: Vec<(String, StepStatus)> = events
        .iter()
        .filter_map(|event| match event {
            Event::Child { child, .. } if child.status != StepStatus::Running => {
                Some((child.name.clone(), child.status))
            }
            _ => None,
        })
        .collect();
    finished.sort();
    finished
}

fn outputs(recording: &Recording, key: &str) -> Vec<String> {
    let mut values: Vec<String> = recording
        .summaries
        .lock()
        .unwrap()
        .iter()
        .filter_map(|summary| {
            summary.workers[0]
                .steps
                .iter()
                .find_map(|step| step.outputs.get(key).cloned())
        })
        .collect();
    values.sort();
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_by_name_run_with_their_config() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let (engine, recording) = with_children(&executor);
        let yaml = workflow(
            "  steps:\n  - id: children\n    execute:\n      workflows:\n      - name: report\n        matrix: {who: [ann, bob]}\n        config: {who: '{{ matrix.who }}'}\n",
        );
        let (events, summary) = run_with(&engine, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(step(&summary, "children").status, StepStatus::Passed);
        assert_eq!(
            child_statuses(&events),
            [
                ("report-1".to_owned(), StepStatus::Passed),
                ("report-2".to_owned(), StepStatus::Passed)
            ]
        );
        assert_eq!(outputs(&recording, "who"), ["ann", "bob"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_child_fails_the_execute_step() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let (engine, _) = with_children(&executor);
        let yaml = workflow(
            "  steps:\n  - id: children\n    execute:\n      workflows:\n      - {name: report, config: {code: 0}}\n      - {name: report, config: {code: 2}}\n",
        );
        let (events, summary) = run_with(&engine, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
        assert_eq!(step(&summary, "children").status, StepStatus::Failed);
        let statuses: Vec<StepStatus> = child_statuses(&events)
            .into_iter()
            .map(|(_, status)| status)
            .collect();
        assert!(statuses.contains(&StepStatus::Passed), "{statuses:?}");
        assert!(statuses.contains(&StepStatus::Failed), "{statuses:?}");
        let message = step(&summary, "children")
            .message
            .clone()
            .unwrap_or_default();
        assert!(message.contains("ended failed"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_runs_every_labelled_workflow() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let (engine, recording) = with_children(&executor);
        let yaml = workflow(
            "  steps:\n  - id: smoke\n    execute:\n      workflows:\n      - selector: {matchLabels: {suite: smoke}}\n",
        );
        let (_, summary) = run_with(&engine, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let mut names: Vec<String> = recording
            .summaries
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.workflow.clone())
            .collect();
        names.sort();
        assert_eq!(names, ["report", "smoke-two"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_one_runs_children_one_after_another() {
    let dir = tempfile::tempdir().unwrap();
    // The lock folder is shared by the children, so only plain processes
    // (a sandbox keeps the host read-only).
    let executor = LocalExecutor::new(dir.path().join("runs")).with_sandbox(Sandbox::Off);
    let lock = dir.path().join("lock");
    let (engine, recording) = with_children(&executor);
    let yaml = workflow(&format!(
        "  steps:\n  - id: children\n    execute:\n      parallelism: 1\n      workflows:\n      - name: exclusive\n        count: 3\n        config: {{lock: '{}'}}\n",
        lock.display()
    ));
    let (events, summary) = run_with(&engine, &yaml).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{events:#?}");
    assert_eq!(recording.summaries.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_children_run_on_while_the_parent_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // The child waits for a file a later step of the parent writes: the
    // run only ends if the step did not wait for the child. Plain
    // processes only (the file is outside the workspaces).
    let executor = LocalExecutor::new(dir.path().join("runs")).with_sandbox(Sandbox::Off);
    let flag = dir.path().join("flag");
    let (engine, recording) = with_children(&executor);
    let yaml = workflow(&format!(
        "  steps:\n  - id: background\n    execute:\n      async: true\n      workflows:\n      - {{name: waiting, config: {{flag: '{flag}'}}}}\n  - {{id: next, shell: 'touch {flag}'}}\n",
        flag = flag.display()
    ));
    let (events, summary) = run_with(&engine, &yaml).await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{events:#?}");
    assert_eq!(step(&summary, "background").status, StepStatus::Passed);
    assert_eq!(step(&summary, "next").status, StepStatus::Passed);
    assert_eq!(
        child_statuses(&events),
        [("waiting-1".to_owned(), StepStatus::Passed)],
        "the child ended before the parent's summary"
    );
    assert_eq!(recording.summaries.lock().unwrap().len(), 1);
}
