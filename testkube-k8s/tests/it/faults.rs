//! What happens when pods, watches, the API server or the node fail: no
//! log line that was written is lost, and every run ends.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use kube_sim::FailRule;
use testkube_core::status::{ExecutionStatus, StepStatus};

use crate::cluster::{self, logs, plan, step_status};

const SLOW: &str = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: slow}
spec:
  steps:
  - name: work
    shell: |
      echo started
      for i in $(seq 1 30); do sleep 0.1; done
      echo finished
  - name: after
    shell: echo after
"#;

async fn the_pod(cluster: &cluster::Cluster, execution: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels(&format!("testkube.io/execution={execution}")))
        .await
        .unwrap();
    list.items[0].metadata.name.clone().unwrap()
}

async fn pods_left(cluster: &cluster::Cluster, execution: &str) -> usize {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let selector = ListParams::default().labels(&format!("testkube.io/execution={execution}"));
    for _ in 0..100 {
        if pods.list(&selector).await.unwrap().items.is_empty() {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pods.list(&selector).await.unwrap().items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_mid_run_keeps_its_log_until_it_is_read() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let mut run = cluster.start_run(plan(SLOW), "deleted-1");
    run.until_log("work", "started").await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let pod = the_pod(&cluster, "deleted-1").await;
    pods.delete(&pod, &DeleteParams::default()).await.unwrap();
    let summary = run.finish().await;
    assert_eq!(summary.status, ExecutionStatus::Aborted, "{summary:#?}");
    // Everything written before the deletion was read.
    assert_eq!(logs(&run.events, "work"), "started\n");
    assert_eq!(step_status(&run.events, "work"), Some(StepStatus::Aborted));
    assert_eq!(
        pods_left(&cluster, "deleted-1").await,
        0,
        "the finalizer was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_stops_the_pod_and_ends_the_run_aborted() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let mut run = cluster.start_run(plan(SLOW), "abort-1");
    run.until_log("work", "started").await;
    run.running.canceller().abort();
    let summary = run.finish().await;
    assert_eq!(summary.status, ExecutionStatus::Aborted);
    assert_eq!(step_status(&run.events, "after"), Some(StepStatus::Skipped));
    assert_eq!(pods_left(&cluster, "abort-1").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_watches_and_failing_log_requests_lose_nothing() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let mut run = cluster.start_run(plan(SLOW), "flaky-api-1");
    run.until_log("work", "started").await;
    cluster.sim.expire_watches();
    // The next two log requests fail: the stream is opened again.
    cluster.sim.fail_requests(FailRule {
        verb: Some("get".to_owned()),
        path: Some("/log".to_owned()),
        code: 503,
        count: 2,
    });
    let summary = run.finish().await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
    assert_eq!(logs(&run.events, "work"), "started\nfinished\n");
    assert_eq!(logs(&run.events, "after"), "after\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_ends_the_run_with_what_was_read() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let mut run = cluster.start_run(plan(SLOW), "lost-1");
    run.until_log("work", "started").await;
    cluster.sim.lose_node().await;
    let summary = run.finish().await;
    assert_eq!(summary.status, ExecutionStatus::Aborted, "{summary:#?}");
    assert_eq!(logs(&run.events, "work"), "started\n");
    assert_ne!(step_status(&run.events, "work"), Some(StepStatus::Passed));
}
