//! `resources.limits` with the local executor, on real processes: a step
//! that allocates past its memory limit fails as out of memory, one within
//! it passes, the user is told how limits are enforced, and a bad quantity
//! that only a template reveals fails the step with a message saying what
//! to write (written ones are refused when the file is loaded). Every test runs
//! as plain processes and in each sandbox this machine can build.

use std::sync::Arc;

use testkube_core::engine::{Engine, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::status::StepStatus;
use testkube_executors::LocalExecutor;

mod common;
use common::{executors, plan, step, workflow};

/// The summary and the notices of a run.
async fn run(executor: &LocalExecutor, yaml: &str) -> (ExecutionSummary, Vec<String>) {
    let engine = Engine::new(Arc::new(executor.clone()));
    let mut running = engine
        .start(plan(yaml), ExecutionRequest::new("exec"))
        .unwrap();
    let mut notices = Vec::new();
    while let Some(event) = running.next_event().await {
        match event {
            Event::Notice { message, .. } => notices.push(message),
            Event::Finished(summary) => return (*summary, notices),
            _ => {}
        }
    }
    panic!("the run ended without a summary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_past_the_memory_limit_is_reported_as_out_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let (summary, notices) = run(
            &executor,
            &workflow(
                r#"  steps:
  - id: small
    container:
      resources: {limits: {memory: 64Mi}}
    run:
      command: [python3, -c, 'a = bytearray(8*1024*1024); print("fits")']
  - id: big
    container:
      resources: {limits: {memory: 64Mi, cpu: 500m}}
    run:
      command: [python3, -c, 'a = bytearray(512*1024*1024)']
  - id: unlimited
    condition: always
    run:
      command: [python3, -c, 'a = bytearray(128*1024*1024)']
"#,
            ),
        )
        .await;
        assert_eq!(
            step(&summary, "small").status,
            StepStatus::Passed,
            "{summary:#?}"
        );
        let big = step(&summary, "big");
        assert_eq!(big.status, StepStatus::Failed, "{summary:#?}");
        assert_eq!(big.exit_code, Some(1), "Python's MemoryError");
        let message = big.message.clone().unwrap_or_default();
        assert!(
            message.starts_with("likely out of memory (limit 64Mi)"),
            "{message}"
        );
        assert_eq!(
            step(&summary, "unlimited").status,
            StepStatus::Passed,
            "limits stay with their step"
        );
        let said: Vec<_> = notices
            .iter()
            .filter(|n| n.starts_with("resources.limits"))
            .collect();
        assert_eq!(said.len(), 1, "once per worker: {notices:#?}");
        assert!(said[0].contains("RLIMIT_DATA"), "{said:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_limits_are_announced_as_not_enforced() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let (summary, notices) = run(
            &executor,
            &workflow(
                "  steps:\n  - id: a\n    container: {resources: {limits: {cpu: '2'}}}\n    shell: echo hi\n",
            ),
        )
        .await;
        assert_eq!(step(&summary, "a").status, StepStatus::Passed);
        assert!(
            notices
                .iter()
                .any(|n| n.contains("CPU limits are not enforced locally")),
            "{notices:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_quantity_fails_the_step_saying_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let (summary, _) = run(
            &executor,
            &workflow(
                "  config: {mem: {type: string, default: 64MB}}\n  steps:\n  - id: a\n    container: {resources: {limits: {memory: '{{ config.mem }}'}}}\n    shell: echo never\n",
            ),
        )
        .await;
        let a = step(&summary, "a");
        assert_eq!(a.status, StepStatus::Failed);
        let message = a.message.clone().unwrap_or_default();
        assert!(
            message.contains("resources.limits.memory") && message.contains("64Mi"),
            "{message}"
        );
    }
}
