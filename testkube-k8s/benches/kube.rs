//! Benchmarks of the Kubernetes executor against kube-sim (its pods are
//! local bubblewrap processes, so the numbers show the executor's and the
//! API's share, not a real cluster's scheduling).
//!
//! `cargo bench -p testkube-k8s --bench kube` runs them all; name some to
//! run only those (`... --bench kube -- requests`):
//!
//! - `requests`: Kubernetes API requests per worker lifecycle, counted from
//!   kube-sim's audit log for a run with 50 parallel workers (goal ≤ 6);
//! - `first-job`: from `Engine::start` to the first Job created (the audit
//!   log's receive time);
//! - `execution-start`: from a TestWorkflowExecution created (the
//!   agent's controller watching) to its first Job created, both receive
//!   times from the audit log (goal < 50 ms; Testkube polls every 1 s);
//! - `fanout`: a run of 200 parallel workers, wall time;
//! - `logs`: a step printing 100 MB, through `pods/log` into the engine;
//! - `barrier`: a `paused` block of 20 workers (`BARRIER_WORKERS=N`): the
//!   release spread, from the first to the last worker's first step start
//!   (the goal: within 1 s of each other).
//!
//! `testkube-init` must be built first (`cargo build -p testkube-init`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kube::{Client, Config};
use kube_sim::KubeSim;
use testkube_core::engine::{Engine, Event, ExecutionRequest};
use testkube_core::model::Document;
use testkube_core::status::ExecutionStatus;
use testkube_core::{LoadOptions, Plan, PlanOptions, ResolveOptions, TemplateSet};
use testkube_k8s::{KubernetesExecutor, ManifestOptions};

const LOG_MB: u64 = 100;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str()));
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("{:<52} {:>14}  detail", "benchmark", "result");
    if runs("requests") {
        runtime.block_on(requests(50));
    }
    if runs("first-job") {
        runtime.block_on(first_job());
    }
    if runs("execution-start") {
        runtime.block_on(execution_first_job());
    }
    if runs("fanout") {
        // `FANOUT_WORKERS=N` measures another size.
        let workers = std::env::var("FANOUT_WORKERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(200);
        runtime.block_on(fanout(workers));
    }
    if runs("logs") {
        runtime.block_on(logs());
    }
    if runs("barrier") {
        let workers = std::env::var("BARRIER_WORKERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20);
        runtime.block_on(barrier(workers));
    }
}

struct Sim {
    _handle: kube_sim::KubeSimHandle,
    client: Client,
    dir: tempfile::TempDir,
}

async fn sim() -> Sim {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("bench path");
    let init = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("testkube-init"))
        .filter(|path| path.exists())
        .or_else(|| {
            // `cargo bench` builds into target/release; a debug build will do.
            let debug = exe
                .parent()?
                .parent()?
                .parent()?
                .join("debug/testkube-init");
            debug.exists().then_some(debug)
        })
        .expect("testkube-init is built (cargo build -p testkube-init)");
    let image = dir.path().join("image");
    std::fs::create_dir_all(&image).expect("image folder");
    std::fs::copy(init, image.join("testkube-init")).expect("copy testkube-init");
    let handle = KubeSim::new()
        .state_dir(dir.path().join("state"))
        .audit_log(dir.path().join("audit.log"))
        .image(ManifestOptions::default().init_image, &image)
        .start()
        .await
        .expect("kube-sim starts");
    let client = Client::try_from(Config::new(handle.url().parse().expect("url"))).expect("client");
    Sim {
        _handle: handle,
        client,
        dir,
    }
}

impl Sim {
    fn engine(&self) -> Engine {
        Engine::new(Arc::new(KubernetesExecutor::new(
            self.client.clone(),
            ManifestOptions::default(),
        )))
    }

    async fn run(&self, plan: Plan, id: &str) -> (ExecutionStatus, Duration, u64) {
        let started = Instant::now();
        let mut running = self
            .engine()
            .start(plan, ExecutionRequest::new(id))
            .expect("starts");
        let mut log_bytes = 0u64;
        while let Some(event) = running.next_event().await {
            match event {
                Event::Log { chunk, .. } => log_bytes += chunk.len() as u64,
                Event::Finished(summary) => return (summary.status, started.elapsed(), log_bytes),
                _ => {}
            }
        }
        panic!("no summary")
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

fn plan(yaml: &str) -> Plan {
    let file = testkube_core::load_file("bench.yaml", yaml.as_bytes(), &LoadOptions::default());
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow: {:?}", file.diagnostics)
    };
    let templates = TemplateSet::with_builtins().expect("templates");
    let resolved =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .expect("resolves");
    testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).expect("plans")
}

fn parallel(workers: usize) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: fan}}
spec:
  steps:
  - name: fan
    parallel:
      count: {workers}
      parallelism: {workers}
      shell: echo worker {{{{ index }}}}
"
    )
}

fn row(name: &str, result: String, detail: String) {
    println!("{name:<52} {result:>14}  {detail}");
}

async fn requests(workers: usize) {
    let sim = sim().await;
    let (status, took, _) = sim.run(plan(&parallel(workers)), "requests-1").await;
    assert_eq!(status, ExecutionStatus::Passed);
    let audit = sim.audit();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for line in &audit {
        let object = &line["objectRef"];
        let key = format!(
            "{} {}{}",
            line["verb"].as_str().unwrap_or("?"),
            object["resource"].as_str().unwrap_or("?"),
            object["subresource"]
                .as_str()
                .map(|s| format!("/{s}"))
                .unwrap_or_default()
        );
        *by_kind.entry(key).or_default() += 1;
    }
    let lifecycles = workers + 1;
    row(
        &format!("API requests per worker lifecycle ({lifecycles} workers)"),
        format!("{:.2}", audit.len() as f64 / lifecycles as f64),
        format!(
            "{} requests in {:.2}s: {by_kind:?}",
            audit.len(),
            took.as_secs_f64()
        ),
    );
}

async fn first_job() {
    let sim = sim().await;
    let mut best = Duration::MAX;
    for round in 0..5 {
        let asked = SystemTime::now();
        let id = format!("first-{round}");
        let (status, _, _) = sim.run(plan(&parallel(1)), &id).await;
        assert_eq!(status, ExecutionStatus::Passed);
        let created = sim
            .audit()
            .into_iter()
            .filter(|line| {
                line["verb"] == "create"
                    && line["objectRef"]["resource"] == "jobs"
                    && line["requestURI"].as_str().is_some()
                    && line["requestObject"]["metadata"]["labels"]["testkube.io/execution"]
                        == id.as_str()
            })
            .filter_map(|line| {
                line["requestReceivedTimestamp"]
                    .as_str()
                    .and_then(|text| text.parse::<chrono::DateTime<chrono::Utc>>().ok())
            })
            .min()
            .expect("a Job was created");
        let took = SystemTime::from(created)
            .duration_since(asked)
            .unwrap_or_default();
        best = best.min(took);
    }
    row(
        "run request to first Job created (best of 5)",
        format!("{:.1} ms", best.as_secs_f64() * 1e3),
        "Engine::start to the Job create's receive time".to_owned(),
    );
}

async fn execution_first_job() {
    use kube::api::{Api, ApiResource, DynamicObject, PostParams};
    let sim = sim().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(sim.client.clone());
    for crd in testkube_k8s::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD");
    }
    let resource = |kind: &str, plural: &str| ApiResource {
        group: "testworkflows.testkube.io".into(),
        version: "v1".into(),
        api_version: "testworkflows.testkube.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let workflows: Api<DynamicObject> = Api::namespaced_with(
        sim.client.clone(),
        "default",
        &resource("TestWorkflow", "testworkflows"),
    );
    let executions: Api<DynamicObject> = Api::namespaced_with(
        sim.client.clone(),
        "default",
        &resource("TestWorkflowExecution", "testworkflowexecutions"),
    );
    let object = |value: serde_json::Value| -> DynamicObject {
        serde_json::from_value(value).expect("an object")
    };
    workflows
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "testworkflows.testkube.io/v1", "kind": "TestWorkflow",
                "metadata": {"name": "quick"},
                "spec": {"steps": [{"name": "say", "shell": "echo hi"}]},
            })),
        )
        .await
        .expect("workflow");
    let store = testkube_results::store::SqliteStore::open(&sim.dir.path().join("testkube.db"))
        .await
        .expect("store");
    let service = testkube_core::service::RunService::new(Arc::new(KubernetesExecutor::new(
        sim.client.clone(),
        ManifestOptions::default(),
    )))
    .with_store(Arc::new(store));
    let controller = Arc::new(testkube_k8s::ExecutionController::new(
        sim.client.clone(),
        "default",
        Arc::new(service),
    ));
    tokio::spawn(controller.run(std::future::pending()));

    let mut took = Vec::new();
    for round in 0..10 {
        let name = format!("quick-{round}");
        executions
            .create(
                &PostParams::default(),
                &object(serde_json::json!({
                    "apiVersion": "testworkflows.testkube.io/v1", "kind": "TestWorkflowExecution",
                    "metadata": {"name": name},
                    "spec": {"testWorkflow": {"name": "quick"}},
                })),
            )
            .await
            .expect("execution");
        // Waits for the run to end, so rounds do not overlap.
        loop {
            let status = executions.get(&name).await.expect("document").data["status"].clone();
            let result = status["latestExecution"]["result"]["status"].as_str();
            if matches!(result, Some("passed" | "failed" | "aborted")) {
                assert_eq!(result, Some("passed"), "{status:#}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let audit = sim.audit();
        let received = |line: &serde_json::Value| {
            line["requestReceivedTimestamp"]
                .as_str()
                .and_then(|text| text.parse::<chrono::DateTime<chrono::Utc>>().ok())
        };
        let asked = audit
            .iter()
            .find(|line| {
                line["verb"] == "create"
                    && line["objectRef"]["resource"] == "testworkflowexecutions"
                    && line["objectRef"]["name"] == name.as_str()
            })
            .and_then(received)
            .or_else(|| {
                audit
                    .iter()
                    .filter(|line| {
                        line["verb"] == "create"
                            && line["objectRef"]["resource"] == "testworkflowexecutions"
                    })
                    .filter(|line| line["requestObject"]["metadata"]["name"] == name.as_str())
                    .find_map(received)
            })
            .expect("the execution's create is audited");
        let job = audit
            .iter()
            .filter(|line| line["verb"] == "create" && line["objectRef"]["resource"] == "jobs")
            .filter_map(received)
            .filter(|at| *at >= asked)
            .min()
            .expect("a Job was created");
        took.push((job - asked).to_std().unwrap_or_default());
    }
    took.sort();
    row(
        "TestWorkflowExecution created to first Job (10 runs)",
        format!("{:.1} ms", took[took.len() / 2].as_secs_f64() * 1e3),
        format!(
            "median; best {:.1} ms, worst {:.1} ms (audit receive times; controller watching)",
            took[0].as_secs_f64() * 1e3,
            took[took.len() - 1].as_secs_f64() * 1e3
        ),
    );
}

async fn fanout(workers: usize) {
    let sim = sim().await;
    let (status, took, _) = sim.run(plan(&parallel(workers)), "fanout-1").await;
    assert_eq!(status, ExecutionStatus::Passed);
    row(
        &format!("fan-out of {workers} workers (parallelism {workers})"),
        format!("{:.2} s", took.as_secs_f64()),
        format!(
            "{:.1} ms per worker",
            took.as_secs_f64() * 1e3 / workers as f64
        ),
    );
}

async fn logs() {
    let sim = sim().await;
    let yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: logs}}
spec:
  steps:
  - name: print
    shell: head -c {} /dev/zero | tr '\\\\0' 'x' | fold -w 99
",
        LOG_MB * 1_000_000
    );
    let (status, took, bytes) = sim.run(plan(&yaml), "logs-1").await;
    assert_eq!(status, ExecutionStatus::Passed);
    row(
        &format!("log throughput through pods/log ({LOG_MB} MB)"),
        format!("{:.0} MB/s", bytes as f64 / 1e6 / took.as_secs_f64()),
        format!(
            "{bytes} bytes in {:.2}s, lines of 100 bytes",
            took.as_secs_f64()
        ),
    );
}

async fn barrier(workers: usize) {
    let sim = sim().await;
    let yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {{name: barrier}}
spec:
  steps:
  - name: fan
    parallel:
      count: {workers}
      parallelism: {workers}
      paused: true
      steps:
      - name: go
        shell: echo go
"
    );
    let mut spreads = Vec::new();
    let mut replies = Vec::new();
    for round in 0..3 {
        let mut running = sim
            .engine()
            .start(
                plan(&yaml),
                ExecutionRequest::new(format!("barrier-{round}")),
            )
            .expect("starts");
        // Each worker's first step start, as its pod reported it.
        let mut starts: BTreeMap<String, SystemTime> = BTreeMap::new();
        while let Some(event) = running.next_event().await {
            match event {
                Event::Step {
                    worker,
                    step,
                    status,
                    at,
                    ..
                } if status == testkube_core::status::StepStatus::Running
                    && step.id != "root"
                    && worker.path.starts_with("root/fan/") =>
                {
                    starts.entry(worker.path).or_insert(at);
                }
                Event::Finished(summary) => {
                    assert_eq!(summary.status, ExecutionStatus::Passed);
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(starts.len(), workers, "every worker ran its step");
        let first = starts.values().min().copied().expect("starts");
        let last = starts.values().max().copied().expect("starts");
        spreads.push(last.duration_since(first).unwrap_or_default());
        // When the replies (one `pods/exec` per worker) reached the API server.
        let received: Vec<chrono::DateTime<chrono::Utc>> = sim
            .audit()
            .into_iter()
            .filter(|line| {
                line["objectRef"]["subresource"] == "exec"
                    && line["requestURI"].as_str().is_some_and(|uri| {
                        // The workers' pods, not the root's (w0).
                        uri.contains(&format!("barrier-{round}-w"))
                            && !uri.contains(&format!("barrier-{round}-w0-"))
                    })
            })
            .filter_map(|line| {
                line["requestReceivedTimestamp"]
                    .as_str()
                    .and_then(|text| text.parse::<chrono::DateTime<chrono::Utc>>().ok())
            })
            .collect();
        if let (Some(first), Some(last)) = (received.iter().min(), received.iter().max()) {
            replies.push(format!("{} ms", (*last - *first).num_milliseconds()));
        }
    }
    spreads.sort();
    row(
        &format!("paused barrier release spread ({workers} workers)"),
        format!("{:.0} ms", spreads[spreads.len() / 2].as_secs_f64() * 1e3),
        format!(
            "median of 3 runs (all: {}), first to last worker's first step start; \
             the replies (`pods/exec`) reached the API server within {} of each other",
            spreads
                .iter()
                .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", "),
            replies.join(", ")
        ),
    );
}
