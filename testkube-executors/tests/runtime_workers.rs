//! The engine with the local executor, on real processes: `parallel`
//! blocks whose workers can only be decided at run time. The runner of the
//! parent worker evaluates `shards`/`matrix`/`count` when the step runs
//! (`glob()` over files an earlier step created, an earlier step's
//! outputs), and the engine plans and runs the workers from those values.
//! Every test runs as plain processes and in each sandbox this machine
//! can build.

use std::collections::BTreeMap;

use testkube_core::engine::{Engine, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::status::{ExecutionStatus, StepStatus};

mod common;
use common::{executors, step};

/// The plan of a workflow with `steps`, which must hold a block decided at
/// run time.
fn plan(steps: &str) -> testkube_core::Plan {
    let plan = common::plan(&common::workflow(steps));
    assert!(
        serde_json::to_string(&plan)
            .unwrap()
            .contains("decidedAtRunTime"),
        "the test needs a block decided at run time"
    );
    plan
}

/// Runs `steps` to the end with each executor; returns the summaries.
async fn run(steps: &str) -> Vec<ExecutionSummary> {
    let dir = tempfile::tempdir().unwrap();
    let mut summaries = Vec::new();
    for executor in executors(dir.path()) {
        let engine = Engine::new(std::sync::Arc::new(executor));
        let mut running = engine
            .start(plan(steps), ExecutionRequest::new("exec"))
            .expect("the engine accepts blocks decided at run time");
        let summary = loop {
            match running.next_event().await {
                Some(Event::Finished(summary)) => break (*summary).clone(),
                Some(_) => {}
                None => panic!("the run ended without a summary"),
            }
        };
        summaries.push(summary);
    }
    summaries
}

/// Output `key` of every parallel worker, by worker id (`root/<step>/<i>`).
fn worker_outputs(summary: &ExecutionSummary, key: &str) -> BTreeMap<String, String> {
    summary
        .workers
        .iter()
        .skip(1)
        .filter_map(|worker| {
            let value = worker.steps.iter().find_map(|step| step.outputs.get(key))?;
            Some((worker.id.clone(), value.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_from_a_glob_over_files_a_setup_step_made() {
    let steps = "  setup:\n  - name: prep\n    shell: |\n      mkdir -p tests\n      touch tests/a.py tests/b.py tests/c.py tests/notes.txt\n  steps:\n  - name: shards\n    parallel:\n      count: 2\n      shards: {file: 'glob(\"tests/*.py\")'}\n      shell: 'echo \"{{ join(shard.file, \" \") }}\" > \"$TESTKUBE_OUTPUTS/files\"'\n";
    for summary in run(steps).await {
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(step(&summary, "shards").status, StepStatus::Passed);
        let outputs = worker_outputs(&summary, "files");
        let expected = BTreeMap::from([
            (
                "root/shards/0".to_owned(),
                "/data/tests/a.py /data/tests/b.py".to_owned(),
            ),
            ("root/shards/1".to_owned(), "/data/tests/c.py".to_owned()),
        ]);
        assert_eq!(outputs, expected, "{summary:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_from_an_earlier_steps_output() {
    let steps = "  steps:\n  - name: prep\n    shell: 'echo 3 > \"$TESTKUBE_OUTPUTS/n\"'\n  - name: workers\n    parallel:\n      count: 'step.prep.outputs.n'\n      shell: 'echo {{ index }}/{{ count }} > \"$TESTKUBE_OUTPUTS/me\"'\n";
    for summary in run(steps).await {
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let outputs = worker_outputs(&summary, "me");
        let expected: BTreeMap<String, String> = (0..3)
            .map(|i| (format!("root/workers/{i}"), format!("{i}/3")))
            .collect();
        assert_eq!(outputs, expected, "{summary:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_from_an_expression() {
    let steps = "  steps:\n  - name: prep\n    shell: 'printf chrome,firefox > \"$TESTKUBE_OUTPUTS/browsers\"'\n  - name: browsers\n    parallel:\n      matrix:\n        browser: 'split(step.prep.outputs.browsers, \",\")'\n        size: [s]\n      description: 'on {{ matrix.browser }}'\n      shell: 'echo {{ matrix.browser }}-{{ matrix.size }} > \"$TESTKUBE_OUTPUTS/b\"'\n";
    for summary in run(steps).await {
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let outputs = worker_outputs(&summary, "b");
        let expected = BTreeMap::from([
            ("root/browsers/0".to_owned(), "chrome-s".to_owned()),
            ("root/browsers/1".to_owned(), "firefox-s".to_owned()),
        ]);
        assert_eq!(outputs, expected, "{summary:#?}");
        let descriptions: Vec<Option<&str>> = summary.workers[1..]
            .iter()
            .map(|worker| worker.description.as_deref())
            .collect();
        assert_eq!(
            descriptions,
            [Some("on chrome"), Some("on firefox")],
            "{summary:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expression_that_is_not_a_list_fails_the_step_saying_so() {
    let steps = "  steps:\n  - name: prep\n    shell: 'echo 3 > \"$TESTKUBE_OUTPUTS/n\"'\n  - name: shards\n    parallel:\n      shards: {file: 'step.prep.outputs.n'}\n      shell: 'echo never'\n  - name: after\n    shell: 'echo after'\n";
    for summary in run(steps).await {
        assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
        let shards = step(&summary, "shards");
        assert_eq!(shards.status, StepStatus::Failed);
        let message = shards.message.as_deref().unwrap_or_default();
        assert!(
            message.contains("`shards.file`") && message.contains("not a list"),
            "{message}"
        );
        assert_eq!(step(&summary, "after").status, StepStatus::Skipped);
        assert_eq!(summary.workers.len(), 1, "no worker was started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_workers_fail_the_step_naming_the_limit() {
    let steps = "  steps:\n  - name: prep\n    shell: 'echo 20000 > \"$TESTKUBE_OUTPUTS/n\"'\n  - name: many\n    parallel:\n      count: 'step.prep.outputs.n'\n      shell: 'echo never'\n";
    for summary in run(steps).await {
        assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
        let many = step(&summary, "many");
        assert_eq!(many.status, StepStatus::Failed);
        let message = many.message.as_deref().unwrap_or_default();
        assert!(message.contains("10000"), "{message}");
        assert_eq!(summary.workers.len(), 1, "no worker was started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glob_is_relative_to_the_working_directory_of_the_step() {
    let steps = "  container: {workingDir: /data/repo}\n  content:\n    files:\n    - {path: /data/repo/tests/x_test.py, content: x}\n    - {path: /data/repo/tests/y_test.py, content: y}\n    - {path: /data/tests/z_test.py, content: z}\n  steps:\n  - name: shards\n    parallel:\n      shards: {file: '{{ glob(\"tests/*_test.py\") }}'}\n      maxCount: 5\n      shell: 'echo \"{{ shard.file }}\" > \"$TESTKUBE_OUTPUTS/files\"'\n";
    for summary in run(steps).await {
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let outputs = worker_outputs(&summary, "files");
        let expected = BTreeMap::from([
            (
                "root/shards/0".to_owned(),
                "/data/repo/tests/x_test.py".to_owned(),
            ),
            (
                "root/shards/1".to_owned(),
                "/data/repo/tests/y_test.py".to_owned(),
            ),
        ]);
        assert_eq!(outputs, expected, "{summary:#?}");
    }
}
