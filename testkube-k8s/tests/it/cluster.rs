//! A kube-sim cluster for one test, whose init image is this build's
//! `testkube-init`.

use std::path::PathBuf;
use std::sync::Arc;

use kube::{Client, Config};
use kube_sim::{KubeSim, KubeSimHandle};
use testkube_core::engine::{Engine, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::{Document, LoadOptions, Plan, PlanOptions, ResolveOptions, TemplateSet};
use testkube_k8s::{KubernetesExecutor, ManifestOptions};

pub(crate) struct Cluster {
    /// Kept running for the test.
    #[allow(dead_code)]
    pub(crate) sim: KubeSimHandle,
    pub(crate) client: Client,
    pub(crate) dir: tempfile::TempDir,
}

#[path = "../support/sim.rs"]
mod sim;
pub(crate) use sim::{has_bwrap, init_binary};

pub(crate) async fn start() -> Cluster {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("init-image");
    std::fs::create_dir_all(&image).expect("image folder");
    std::fs::copy(init_binary(), image.join("testkube-init")).expect("copy testkube-init");
    let sim = KubeSim::new()
        .state_dir(dir.path().join("state"))
        .audit_log(dir.path().join("audit.log"))
        .image(ManifestOptions::default().init_image, &image)
        .start()
        .await
        .expect("kube-sim starts");
    let config = Config::new(sim.url().parse().expect("url"));
    let client = Client::try_from(config).expect("client");
    Cluster { sim, client, dir }
}

impl Cluster {
    pub(crate) fn executor(&self) -> KubernetesExecutor {
        KubernetesExecutor::new(self.client.clone(), ManifestOptions::default())
    }

    pub(crate) fn engine(&self) -> Engine {
        Engine::new(Arc::new(self.executor()))
    }

    /// Runs `plan` to its end; returns the summary and every event.
    pub(crate) async fn run(&self, plan: Plan, id: &str) -> (ExecutionSummary, Vec<Event>) {
        self.run_on(self.executor(), plan, id).await
    }

    /// Runs `plan` to its end with `executor`.
    pub(crate) async fn run_on(
        &self,
        executor: KubernetesExecutor,
        plan: Plan,
        id: &str,
    ) -> (ExecutionSummary, Vec<Event>) {
        let mut running = Engine::new(Arc::new(executor))
            .start(plan, ExecutionRequest::new(id))
            .expect("the plan starts");
        let mut events = Vec::new();
        let collect = async {
            while let Some(event) = running.next_event().await {
                events.push(event);
            }
        };
        let ended = tokio::time::timeout(std::time::Duration::from_secs(60), collect).await;
        assert!(
            ended.is_ok(),
            "the run ends within a minute; events so far: {events:#?}"
        );
        let summary = events
            .iter()
            .find_map(|event| match event {
                Event::Finished(summary) => Some((**summary).clone()),
                _ => None,
            })
            .expect("a summary");
        (summary, events)
    }

    /// The audit log's lines as JSON.
    pub(crate) fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// An S3-compatible artifact store of its own for test `test` (a bucket
/// in moto), or `None` (printed) when no S3-compatible server is here.
pub(crate) fn s3_store(test: &str) -> Option<testkube_results::artifacts::ArtifactStore> {
    testkube_results::artifacts::install_tls_provider();
    let server = crate::s3server::server(test)?;
    let builder = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing");
    Some(
        testkube_results::artifacts::ArtifactStore::s3(&server.bucket(), "runs", builder)
            .expect("an S3 store"),
    )
}

pub(crate) fn plan(yaml: &str) -> Plan {
    let file = testkube_core::load_file("wf.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else {
        panic!("not a workflow")
    };
    let templates = TemplateSet::with_builtins().unwrap();
    let resolved =
        testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)
            .unwrap();
    testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).unwrap()
}

/// The output of step `step` (by name or id) over all workers.
pub(crate) fn logs(events: &[Event], step_id: &str) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Log { step, chunk, .. } if step == step_id => {
                Some(String::from_utf8_lossy(chunk).into_owned())
            }
            _ => None,
        })
        .collect()
}

/// A run in progress: its events so far.
pub(crate) struct Watching {
    pub(crate) running: testkube_core::engine::RunningExecution,
    pub(crate) events: Vec<Event>,
}

impl Cluster {
    pub(crate) fn start_run(&self, plan: Plan, id: &str) -> Watching {
        Watching {
            running: self
                .engine()
                .start(plan, ExecutionRequest::new(id))
                .expect("the plan starts"),
            events: Vec::new(),
        }
    }
}

impl Watching {
    /// Reads events until `step` wrote `text`.
    pub(crate) async fn until_log(&mut self, step_id: &str, text: &str) {
        let wait = async {
            while let Some(event) = self.running.next_event().await {
                self.events.push(event);
                if logs(&self.events, step_id).contains(text) {
                    return true;
                }
            }
            false
        };
        let seen = tokio::time::timeout(std::time::Duration::from_secs(30), wait).await;
        assert!(
            matches!(seen, Ok(true)),
            "step `{step_id}` never wrote {text:?}: {:#?}",
            self.events
        );
    }

    /// Reads the rest; returns the summary.
    pub(crate) async fn finish(&mut self) -> ExecutionSummary {
        let rest = async {
            while let Some(event) = self.running.next_event().await {
                self.events.push(event);
            }
        };
        let ended = tokio::time::timeout(std::time::Duration::from_secs(60), rest).await;
        assert!(
            ended.is_ok(),
            "the run ends within a minute: {:#?}",
            self.events
        );
        self.events
            .iter()
            .find_map(|event| match event {
                Event::Finished(summary) => Some((**summary).clone()),
                _ => None,
            })
            .expect("a summary")
    }
}

/// The last finished status reported for step `id`.
pub(crate) fn step_status(events: &[Event], id: &str) -> Option<testkube_core::status::StepStatus> {
    events.iter().rev().find_map(|event| match event {
        Event::Step { step, status, .. } if step.id == id && status.is_finished() => Some(*status),
        _ => None,
    })
}

/// With `TESTKUBE_AUDIT_OBJECTS_DIR` set (CI sets it), every object the
/// test created or replaced is written there, one JSON file each, for
/// `kubernetes-validate --strict` to check against the official schemas.
impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("TESTKUBE_AUDIT_OBJECTS_DIR") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let prefix = self
            .dir
            .path()
            .file_name()
            .map(|name| name.to_string_lossy().trim_start_matches('.').to_owned())
            .unwrap_or_default();
        for (index, line) in self.audit().into_iter().enumerate() {
            let full = matches!(line["verb"].as_str(), Some("create" | "update"));
            let object = &line["requestObject"];
            // Subresources (pods/exec, eviction) send no object of their own.
            if full && object.is_object() && line["objectRef"]["subresource"].is_null() {
                let _ = std::fs::write(
                    dir.join(format!("{prefix}-{index}.json")),
                    object.to_string(),
                );
            }
        }
    }
}
