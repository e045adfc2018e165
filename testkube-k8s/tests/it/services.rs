//! `services` on kube-sim: each instance a pod of its own that the engine
//! creates, ready by its native readiness probe, reached at its pod IP
//! (`{{ services.NAME.N.ip }}`), its log in the store, failures named, and
//! nothing left in the namespace after a run (also an aborted one).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;
use testkube_core::engine::Event;
use testkube_core::service::{RunRequest, RunService};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{LogFilter, ResultStore};
use testkube_core::{Document, LoadOptions, ResolveOptions, TemplateSet};
use testkube_k8s::{KubernetesExecutor, ManifestOptions};
use testkube_results::store::SqliteStore;

use crate::cluster::{self, logs, plan, step_status};

/// A port nobody listens on right now (pods of concurrent tests may share
/// pod IPs: each test's kube-sim numbers them from 127.0.0.2).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A workflow whose step `check` fetches `/health` from service `web`, an
/// HTTP server bound to its own pod IP with an httpGet probe.
fn web_workflow(name: &str, port: u16) -> String {
    format!(
        r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: {name}}}
spec:
  steps:
  - name: api
    services:
      web:
        description: "web on {{{{ index }}}}"
        env:
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        shell: |
          mkdir -p /tmp/www && echo ok > /tmp/www/health && cd /tmp/www
          echo "serving on $POD_IP"
          exec python3 -m http.server {port} --bind "$POD_IP"
        readinessProbe:
          httpGet: {{path: /health, port: "{{{{ {port} + index }}}}"}}
          periodSeconds: 1
        timeout: 60s
        logs: true
    steps:
    - name: check
      shell: |
        test "{{{{ services.web.0.description }}}}" = "web on 0"
        python3 -c "import urllib.request as u; b = u.urlopen('http://{{{{ services.web.0.ip }}}}:{port}/health', timeout=5).read(); assert b == b'ok\n', b; print('answered', b.decode().strip(), 'from {{{{ services.web.0.ip }}}}')"
  - name: after
    shell: echo after
"#
    )
}

/// Waits until nothing of `execution` is left in the namespace.
async fn assert_nothing_left(cluster: &cluster::Cluster, execution: &str) {
    let all = ListParams::default().labels(&format!("testkube.io/execution={execution}"));
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    assert!(jobs.list(&all).await.unwrap().items.is_empty(), "Jobs left");
    assert!(
        secrets.list(&all).await.unwrap().items.is_empty(),
        "Secrets left"
    );
    for _ in 0..100 {
        if pods.list(&all).await.unwrap().items.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<_> = pods
        .list(&all)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|pod| pod.metadata.name.unwrap_or_default())
        .collect();
    panic!("pods left after the run: {left:?}");
}

/// The service pods the run created (from the audit log).
fn service_pods_created(cluster: &cluster::Cluster) -> Vec<serde_json::Value> {
    cluster
        .audit()
        .into_iter()
        .filter(|line| {
            line["verb"] == "create"
                && line["objectRef"]["resource"] == "pods"
                && line["objectRef"]["subresource"].is_null()
        })
        .map(|line| line["requestObject"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_reaches_its_service_pod_at_its_ip_and_the_service_log_is_stored() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let port = free_port();
    let yaml = web_workflow("web", port);
    let file = testkube_core::load_file("wf.yaml", yaml.as_bytes(), &LoadOptions::default());
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow: {:?}", file.diagnostics)
    };
    let templates = TemplateSet::with_builtins().unwrap();
    let workflow =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .unwrap()
            .workflow()
            .clone();
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
    let mut run = service.start(RunRequest::new(workflow)).await.unwrap();
    let execution = run.id().to_owned();
    let mut events = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(event) = run.next_event().await {
            events.push(event);
        }
    })
    .await;
    assert!(ended.is_ok(), "the run ends: {events:#?}");
    let status = events.iter().find_map(|event| match event {
        Event::Finished(summary) => Some(summary.status),
        _ => None,
    });
    assert_eq!(status, Some(ExecutionStatus::Passed), "{events:#?}");
    assert_eq!(step_status(&events, "check"), Some(StepStatus::Passed));

    // The service is its own pod: the step reached it at its pod IP.
    let created = service_pods_created(&cluster);
    let services: Vec<_> = created
        .iter()
        .filter(|pod| pod["metadata"]["labels"]["testkube.io/resource"] == "service")
        .collect();
    assert_eq!(services.len(), 1, "one pod per instance: {created:#?}");
    let pod = services[0];
    assert_eq!(pod["metadata"]["labels"]["testkube.io/service"], "web");
    assert_eq!(pod["metadata"]["labels"]["testkube.io/service-index"], "0");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(
        pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"], port,
        "the probe's template is rendered and its port a number"
    );
    let check = logs(&events, "check");
    let ip = check
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        check.starts_with("answered ok from 127.0.0.") && ip != "127.0.0.1",
        "the service's own pod IP, not the worker's machine: {check}"
    );
    let api = logs(&events, "api");
    assert!(
        api.contains("service `web` instance 0 is ready") && api.contains(&ip),
        "{api}"
    );

    // `logs: true`: the instance's output is the pseudo-step's log, stored.
    let stored = store
        .logs(
            &execution,
            &LogFilter {
                step: Some("api.services.web.0".to_owned()),
                ..LogFilter::default()
            },
        )
        .await
        .unwrap();
    let text: String = stored
        .iter()
        .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
        .collect();
    assert!(text.contains(&format!("serving on {ip}")), "{text}");
    assert!(text.contains("GET /health"), "{text}");
    assert_nothing_left(&cluster, &execution).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_gets_ready_or_exits_fails_its_step_naming_it() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let port = free_port();
    let (summary, events) = cluster
        .run(
            plan(&format!(
                r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: unready}}
spec:
  steps:
  - name: never
    optional: true
    services:
      db:
        shell: echo "db is thinking"; sleep 60
        readinessProbe:
          tcpSocket: {{port: {port}}}
          periodSeconds: 1
        timeout: 3s
    shell: echo unreachable
  - name: crash
    services:
      cache:
        shell: echo "cache cannot start"; exit 3
        # A probe that never passes: the exit decides, whatever the timing.
        readinessProbe:
          exec: {{command: [test, -e, /nonexistent]}}
          periodSeconds: 1
    shell: echo unreachable
"#
            )),
            "unready-1",
        )
        .await;
    assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
    let message = |id: &str| {
        events
            .iter()
            .rev()
            .find_map(|event| match event {
                Event::Step {
                    step,
                    status,
                    detail,
                    ..
                } if step.id == id && status.is_finished() => detail.message.clone(),
                _ => None,
            })
            .unwrap_or_default()
    };
    assert_eq!(step_status(&events, "never"), Some(StepStatus::Failed));
    let never = message("never");
    assert!(
        never.contains("service `db` instance 0 was not ready within 3s")
            && never.contains("tcpSocket")
            && never.contains("db is thinking"),
        "{never}"
    );
    assert_eq!(step_status(&events, "crash"), Some(StepStatus::Failed));
    let crash = message("crash");
    assert!(
        crash.contains("service `cache` instance 0 exited with code 3 before it was ready")
            && crash.contains("cache cannot start"),
        "{crash}"
    );
    assert!(
        !logs(&events, "never").contains("unreachable"),
        "the step's command never ran"
    );
    assert_nothing_left(&cluster, "unready-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_while_a_service_runs_deletes_its_pod_too() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let mut run = cluster.start_run(
        plan(
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: aborted}
spec:
  steps:
  - name: work
    services:
      idle:
        shell: echo idling; sleep 300
    shell: |
      echo "started with {{ services.idle.0.ip }}"
      sleep 300
"#,
        ),
        "aborted-1",
    );
    run.until_log("work", "started with 127.0.0.").await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let services = ListParams::default().labels("testkube.io/resource=service");
    assert_eq!(pods.list(&services).await.unwrap().items.len(), 1);
    run.running.canceller().abort();
    let summary = run.finish().await;
    assert_eq!(summary.status, ExecutionStatus::Aborted, "{summary:#?}");
    assert_nothing_left(&cluster, "aborted-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_content_is_refused_before_anything_starts() {
    let cluster = cluster::start().await;
    let started = cluster.engine().start(
        plan(
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: content}
spec:
  steps:
  - name: api
    services:
      web:
        content:
          files: [{path: /data/index.html, content: hi}]
        shell: cat /data/index.html
    shell: echo hi
"#,
        ),
        testkube_core::engine::ExecutionRequest::new("content-1"),
    );
    let Err(err) = started else {
        panic!("a plan with service content starts")
    };
    let text = err.to_string();
    assert!(
        text.contains("services.web.content") && text.contains("`api`"),
        "{text}"
    );
    assert!(cluster.audit().iter().all(|line| line["verb"] != "create"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_pods_with_addresses_of_their_own() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let port = free_port();
    let (summary, events) = cluster
        .run(
            plan(&format!(
                r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: twins}}
spec:
  steps:
  - name: api
    services:
      web:
        count: 2
        env:
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        shell: exec python3 -m http.server {port} --bind "$POD_IP"
        readinessProbe:
          tcpSocket: {{port: {port}}}
          periodSeconds: 1
    shell: |
      test "{{{{ services.web.0.ip }}}}" != "{{{{ services.web.1.ip }}}}"
      for ip in {{{{ join(services.web.*.ip, " ") }}}}; do
        python3 -c "import socket; socket.create_connection(('$ip', {port}), 5)"
        echo "reached $ip"
      done
"#
            )),
            "twins-1",
        )
        .await;
    assert_eq!(summary.status, ExecutionStatus::Passed, "{events:#?}");
    let reached = logs(&events, "api");
    assert_eq!(reached.matches("reached 127.0.0.").count(), 2, "{reached}");
    assert_nothing_left(&cluster, "twins-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_while_waiting_for_a_service_stops_its_pod() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let port = free_port();
    let mut run = cluster.start_run(
        plan(&format!(
            r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: waiting}}
spec:
  steps:
  - name: api
    timeout: 3s
    services:
      slow:
        shell: sleep 300
        readinessProbe:
          tcpSocket: {{port: {port}}}
          periodSeconds: 1
        timeout: 5m
    shell: echo unreachable
  - name: after
    condition: always
    shell: echo waiting; sleep 5; echo after
"#
        )),
        "waiting-1",
    );
    run.until_log("after", "waiting").await;
    // Stopped with its step, not only when the worker ends.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let services = ListParams::default().labels("testkube.io/resource=service");
    for pod in pods.list(&services).await.unwrap().items {
        assert!(
            pod.metadata.deletion_timestamp.is_some(),
            "{:?} is still running",
            pod.metadata.name
        );
    }
    let summary = run.finish().await;
    assert_eq!(summary.status, ExecutionStatus::Failed, "{summary:#?}");
    assert_eq!(step_status(&run.events, "api"), Some(StepStatus::Timeout));
    assert_eq!(logs(&run.events, "after"), "waiting\nafter\n");
    assert_nothing_left(&cluster, "waiting-1").await;
}
