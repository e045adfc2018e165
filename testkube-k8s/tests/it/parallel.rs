//! `parallel` blocks on kube-sim: the `paused` start barrier (no worker runs
//! a step before all are ready; an abort while they wait leaves nothing)
//! and `failFast` (the others are stopped after their logs are stored).
//!
//! The workers of a block are separate pods; where a test needs them to
//! see each other (a marker written during initialization, a worker that
//! fails only once the others are busy) they share a hostPath folder,
//! which kube-sim binds from this machine.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;
use testkube_core::engine::Event;
use testkube_core::service::{RunRequest, RunService};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{LogFilter, ResultStore};
use testkube_core::{Document, LoadOptions, ResolveOptions, TemplateSet};
use testkube_k8s::{KubernetesExecutor, ManifestOptions, labels};
use testkube_results::store::SqliteStore;

use crate::cluster::{self, Cluster, plan};
use crate::git::BareRepo;

/// Jobs, pods and Secrets of `execution` still in the namespace, once the
/// pods that are going away went (their finalizer is removed after their
/// log was read).
async fn left_behind(cluster: &Cluster, execution: &str) -> Vec<String> {
    let selector = ListParams::default().labels(&format!("{}={}", labels::EXECUTION, execution));
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    for _ in 0..100 {
        if pods.list(&selector).await.unwrap().items.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut left = Vec::new();
    for pod in pods.list(&selector).await.unwrap() {
        left.push(format!(
            "pod {} (finalizers {:?})",
            pod.metadata.name.unwrap_or_default(),
            pod.metadata.finalizers
        ));
    }
    for job in jobs.list(&selector).await.unwrap() {
        left.push(format!("job {}", job.metadata.name.unwrap_or_default()));
    }
    for secret in secrets.list(&selector).await.unwrap() {
        left.push(format!(
            "secret {}",
            secret.metadata.name.unwrap_or_default()
        ));
    }
    left
}

/// Where in `events` each worker of step `fan` was reported `paused` at the
/// barrier, and where the first step of any of them started.
fn barrier_order(events: &[Event]) -> (Vec<(String, usize)>, Option<usize>) {
    let mut paused = Vec::new();
    let mut first_step = None;
    for (index, event) in events.iter().enumerate() {
        match event {
            Event::Worker { worker, status, .. }
                if worker.path.starts_with("root/fan/") && *status == StepStatus::Paused =>
            {
                paused.push((worker.path.clone(), index));
            }
            Event::Step { worker, status, .. }
                if worker.path.starts_with("root/fan/") && *status == StepStatus::Running =>
            {
                first_step.get_or_insert(index);
            }
            _ => {}
        }
    }
    (paused, first_step)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_block_starts_no_worker_before_all_are_ready_then_releases_them_all() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let shared = cluster.dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    // Each worker writes its marker while it initializes (its `content`),
    // before it reports ready; its first step finds every marker only if
    // no worker was released before all were ready. The checkout makes the
    // git container the one that waits (and gets the reply).
    let repo = BareRepo::new(&[("README", "checked out\n")]);
    let yaml = format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: barrier}}
spec:
  steps:
  - name: fan
    parallel:
      count: 4
      paused: true
      pod:
        volumes: [{{name: shared, hostPath: {{path: "{shared}"}}}}]
      container:
        volumeMounts: [{{name: shared, mountPath: /data/shared}}]
      content:
        files:
        - path: '/data/shared/ready-{{{{ index }}}}'
          content: ready
        git: {{uri: '{repo}'}}
      steps:
      - name: first
        shell: |
          for i in 0 1 2 3; do
            test -e /data/shared/ready-$i || {{ echo "worker $i was not ready"; exit 1; }}
          done
          echo "released {{{{ index }}}}"
"#,
        shared = shared.display(),
        repo = repo.url()
    );
    let (summary, events) = cluster.run(plan(&yaml), "barrier-1").await;
    assert_eq!(
        summary.status,
        ExecutionStatus::Passed,
        "{summary:#?}\n{events:#?}"
    );
    let (paused, first_step) = barrier_order(&events);
    let workers: std::collections::BTreeSet<&str> =
        paused.iter().map(|(worker, _)| worker.as_str()).collect();
    assert_eq!(
        workers.len(),
        4,
        "every worker waited at the barrier: {paused:?}"
    );
    let first_step = first_step.expect("the workers ran their steps");
    assert!(
        paused.iter().all(|(_, index)| *index < first_step),
        "a worker ran a step (event {first_step}) before all were ready: {paused:?}"
    );
    // All were released and ran their step.
    let mut released = std::collections::BTreeMap::<String, String>::new();
    for event in &events {
        if let Event::Log {
            worker,
            chunk,
            step,
            ..
        } = event
            && worker.path.starts_with("root/fan/")
            && step == "first"
        {
            released
                .entry(worker.path.clone())
                .or_default()
                .push_str(&String::from_utf8_lossy(chunk));
        }
    }
    let released: Vec<&str> = released.values().map(String::as_str).collect();
    assert_eq!(
        released,
        [
            "released 0\n",
            "released 1\n",
            "released 2\n",
            "released 3\n"
        ]
    );
    assert!(left_behind(&cluster, "barrier-1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_while_workers_wait_at_the_barrier_ends_the_run_aborted_leaving_nothing() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let repo = BareRepo::new(&[("README", "hello\n")]);
    // A server that accepts connections and never answers: the worker
    // cloning from it never gets ready, so the other one waits.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let yaml = format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: barrier-abort}}
spec:
  steps:
  - name: fan
    parallel:
      matrix:
        repo: ['{good}', 'http://127.0.0.1:{port}/never.git']
      paused: true
      content:
        git: {{uri: '{{{{ matrix.repo }}}}'}}
      steps:
      - name: first
        shell: echo started
"#,
        good = repo.url()
    );
    let mut run = cluster.start_run(plan(&yaml), "barrier-abort-1");
    // Worker 0 checked out its repository and waits for worker 1.
    let wait = async {
        while let Some(event) = run.running.next_event().await {
            let at_barrier = matches!(&event, Event::Worker { worker, status, .. }
                if worker.path == "root/fan/0" && *status == StepStatus::Paused);
            run.events.push(event);
            if at_barrier {
                return true;
            }
        }
        false
    };
    let waiting = tokio::time::timeout(std::time::Duration::from_secs(30), wait).await;
    assert!(
        matches!(waiting, Ok(true)),
        "worker 0 waits at the barrier: {:#?}",
        run.events
    );
    run.running.canceller().abort();
    let summary = run.finish().await;
    assert_eq!(
        summary.status,
        ExecutionStatus::Aborted,
        "{:#?}",
        run.events
    );
    let (_, first_step) = barrier_order(&run.events);
    assert_eq!(
        first_step, None,
        "no worker started a step: {:#?}",
        run.events
    );
    // The one waiting and the one still cloning were both stopped.
    for path in ["root/fan/0", "root/fan/1"] {
        let ended = run.events.iter().rev().find_map(|event| match event {
            Event::Worker { worker, status, .. } if worker.path == path && status.is_finished() => {
                Some(*status)
            }
            _ => None,
        });
        assert_eq!(
            ended,
            Some(StepStatus::Aborted),
            "{path}: {:#?}",
            run.events
        );
    }
    assert_eq!(
        cluster::logs(&run.events, "first"),
        "",
        "the step after the barrier never ran"
    );
    assert_eq!(
        left_behind(&cluster, "barrier-abort-1").await,
        Vec::<String>::new()
    );
}

fn workflow(yaml: &str) -> testkube_core::model::TestWorkflow {
    let file = testkube_core::load_file("wf.yaml", yaml.as_bytes(), &LoadOptions::default());
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow: {:?}", file.diagnostics)
    };
    let templates = TemplateSet::with_builtins().unwrap();
    testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
        .unwrap()
        .workflow()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_stops_the_other_workers_after_storing_their_logs_and_leaves_nothing() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let shared = cluster.dir.path().join("busy");
    std::fs::create_dir_all(&shared).unwrap();
    let store = Arc::new(
        SqliteStore::open(&cluster.dir.path().join("results.db"))
            .await
            .unwrap(),
    );
    let service = RunService::new(Arc::new(KubernetesExecutor::new(
        cluster.client.clone(),
        ManifestOptions::default(),
    )))
    .with_store(store.clone());
    // Worker 0 fails once workers 1 and 2 have written their first line
    // (they say so in the shared folder); they would sleep for minutes.
    let yaml = format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: fail-fast}}
spec:
  steps:
  - name: fan
    parallel:
      count: 3
      failFast: true
      pod:
        volumes: [{{name: busy, hostPath: {{path: "{shared}"}}}}]
      container:
        volumeMounts: [{{name: busy, mountPath: /data/busy}}]
      steps:
      - name: work
        shell: |
          if [ {{{{ index }}}} = 0 ]; then
            until [ -e /data/busy/1 ] && [ -e /data/busy/2 ]; do sleep 0.05; done
            echo "worker 0 fails"
            exit 1
          fi
          echo "worker {{{{ index }}}} is busy"
          touch /data/busy/{{{{ index }}}}
          sleep 600
          echo "worker {{{{ index }}}} is done"
"#,
        shared = shared.display()
    );
    let mut run = service
        .start(RunRequest::new(workflow(&yaml)))
        .await
        .unwrap();
    let id = run.id().to_owned();
    let mut events = Vec::new();
    let collect = async {
        while let Some(event) = run.next_event().await {
            events.push(event);
        }
    };
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), collect).await;
    assert!(
        ended.is_ok(),
        "failFast ends the run long before the sleeping workers would: {events:#?}"
    );
    let summary = events
        .iter()
        .find_map(|event| match event {
            Event::Finished(summary) => Some((**summary).clone()),
            _ => None,
        })
        .expect("a summary");
    assert_eq!(summary.status, ExecutionStatus::Failed, "{events:#?}");
    let worker_status = |path: &str| {
        events.iter().rev().find_map(|event| match event {
            Event::Worker { worker, status, .. } if worker.path == path && status.is_finished() => {
                Some(*status)
            }
            _ => None,
        })
    };
    assert_eq!(worker_status("root/fan/0"), Some(StepStatus::Failed));
    assert_eq!(worker_status("root/fan/1"), Some(StepStatus::Aborted));
    assert_eq!(worker_status("root/fan/2"), Some(StepStatus::Aborted));
    // What the stopped workers wrote before they were stopped is stored.
    for worker in ["root/fan/1", "root/fan/2"] {
        let number = worker.trim_start_matches("root/fan/");
        let chunks = store
            .logs(
                &id,
                &LogFilter {
                    worker: Some(worker.to_owned()),
                    ..LogFilter::default()
                },
            )
            .await
            .unwrap();
        let text: String = chunks
            .iter()
            .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
            .collect();
        assert!(
            text.contains(&format!("worker {number} is busy\n")),
            "{worker}'s partial log is stored: {text:?}"
        );
        assert!(!text.contains("is done"), "{worker} was stopped: {text:?}");
    }
    assert_eq!(
        left_behind(&cluster, &labels::label_value(&id)).await,
        Vec::<String>::new()
    );
}
