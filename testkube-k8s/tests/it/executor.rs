//! Workflows run as Jobs on kube-sim: verdicts, logs, outputs, container
//! groups, parallel workers, and what happens when pods go away.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;
use testkube_core::engine::Event;
use testkube_core::status::{ExecutionStatus, StepStatus};

use crate::cluster::{self, logs, plan, step_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_as_a_job_with_live_logs_outputs_and_verdict_then_is_cleaned_up() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let (summary, events) = cluster
        .run(
            plan(
                r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: hello}
spec:
  steps:
  - name: greet
    shell: echo "hello from $(hostname)"; echo 42 > /testkube/outputs/answer
  - name: check
    condition: always
    shell: test "{{ step.greet.outputs.answer }}" = 42 && echo checked
  - name: fail
    shell: echo failing; exit 3
"#,
            ),
            "hello-1",
        )
        .await;
    assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:?}");
    assert!(
        logs(&events, "greet").starts_with("hello from "),
        "{events:#?}"
    );
    assert_eq!(logs(&events, "check"), "checked\n");
    assert_eq!(logs(&events, "fail"), "failing\n");
    assert_eq!(step_status(&events, "greet"), Some(StepStatus::Passed));
    assert_eq!(step_status(&events, "fail"), Some(StepStatus::Failed));
    let exit_code = events.iter().find_map(|event| match event {
        Event::Step { step, detail, .. } if step.id == "fail" => detail.exit_code,
        _ => None,
    });
    assert_eq!(exit_code, Some(3));
    // Nothing of the run is left behind.
    let all = ListParams::default().labels("testkube.io/execution=hello-1");
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    assert!(jobs.list(&all).await.unwrap().items.is_empty());
    assert!(secrets.list(&all).await.unwrap().items.is_empty());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pods.list(&all).await.unwrap().items.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the pod is deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_with_other_images_run_in_ordered_containers_and_parallel_workers_in_jobs() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let (summary, events) = cluster
        .run(
            plan(
                r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: mixed}
spec:
  container: {image: alpine:3}
  steps:
  - name: first
    shell: echo one > /data/shared.txt
  - name: second
    run: {image: python:3.13-slim, shell: cat /data/shared.txt; echo two >> /data/shared.txt}
  - name: fan
    parallel:
      matrix: {n: [a, b]}
      shell: echo "worker {{ matrix.n }}"
  - name: third
    shell: cat /data/shared.txt
"#,
            ),
            "mixed-1",
        )
        .await;
    assert_eq!(
        summary.status,
        ExecutionStatus::Passed,
        "{summary:?}\n{events:#?}"
    );
    assert_eq!(logs(&events, "second"), "one\n");
    assert_eq!(
        logs(&events, "third"),
        "one\ntwo\n",
        "/data is shared by the containers"
    );
    let mut workers = std::collections::BTreeMap::<String, String>::new();
    for event in &events {
        if let Event::Log { worker, chunk, .. } = event
            && worker.path.starts_with("root/fan/")
        {
            workers
                .entry(worker.path.clone())
                .or_default()
                .push_str(&String::from_utf8_lossy(chunk));
        }
    }
    assert_eq!(workers["root/fan/0"], "worker a\n", "{workers:?}");
    assert_eq!(workers["root/fan/1"], "worker b\n", "{workers:?}");
    // Each step is reported finished once, whatever container ran it.
    for step in ["first", "second", "fan", "third"] {
        let finished = events
            .iter()
            .filter(|event| {
                matches!(event, Event::Step { step: s, worker, status, .. }
                    if s.id == step && worker.path == "root" && status.is_finished())
            })
            .count();
        assert_eq!(finished, 1, "{step}");
    }
    // Objects sent to the API server are audited (CI validates them).
    let creates = cluster
        .audit()
        .into_iter()
        .filter(|line| line["verb"] == "create" && line["objectRef"]["resource"] == "jobs")
        .count();
    assert_eq!(
        creates, 3,
        "the root worker's Job and two parallel workers' Jobs"
    );
}
