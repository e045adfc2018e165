//! The sample workflows end the same on kube-sim as on this machine: the
//! same verdict, the same status for every step.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use testkube_core::engine::{Engine, Event, ExecutionRequest, Executor, WorkflowSet};
use testkube_core::model::TestWorkflow;
use testkube_core::resolve::TemplateOrigin;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::{Document, LoadOptions, PlanOptions, ResolveOptions, TemplateSet};
use testkube_executors::{LocalExecutor, Sandbox};
use testkube_k8s::{KubernetesExecutor, ManifestOptions};

use crate::cluster;

/// Every workflow and template of `examples/workflows`.
fn samples() -> (Vec<TestWorkflow>, TemplateSet) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/workflows");
    let mut templates = TemplateSet::with_builtins().unwrap();
    let mut workflows = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let file = testkube_core::load_file(&name, &text, &LoadOptions::default());
        assert!(!file.has_errors(), "{name}: {:?}", file.diagnostics);
        let documents: Vec<Document> = file
            .documents
            .into_iter()
            .filter_map(|d| d.document)
            .collect();
        templates.insert_documents(&documents, &TemplateOrigin::File(name));
        for document in documents {
            if let Document::TestWorkflow(workflow) = document {
                workflows.push(*workflow);
            }
        }
    }
    (workflows, templates)
}

/// The run's verdict and each step's final status (by worker and step).
type Outcome = (ExecutionStatus, BTreeMap<(String, String), StepStatus>);

async fn run_on(
    executor: Arc<dyn Executor>,
    workflow: &TestWorkflow,
    templates: &TemplateSet,
    all: &[TestWorkflow],
    id: &str,
) -> Result<Outcome, String> {
    let resolved =
        testkube_core::resolve_workflow(workflow, templates, &ResolveOptions::new(), None)
            .map_err(|err| format!("{err:?}"))?;
    let plan = testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new())
        .map_err(|err| format!("{err:?}"))?;
    let mut children = WorkflowSet::new(templates.clone());
    for other in all {
        children.insert(other.clone()).unwrap();
    }
    let engine = Engine::new(executor).with_children(Arc::new(children));
    let mut running = engine
        .start(plan, ExecutionRequest::new(id))
        .map_err(|err| err.to_string())?;
    let mut steps = BTreeMap::new();
    let collect = async {
        while let Some(event) = running.next_event().await {
            match event {
                Event::Step {
                    worker,
                    step,
                    status,
                    detail,
                    ..
                } if status.is_finished() => {
                    // A child refused by the executor counts as the parent's.
                    if let Some(message) = detail
                        .message
                        .filter(|m| m.contains("with --on kubernetes"))
                    {
                        return Err(message);
                    }
                    steps.insert((worker.path, step.id), status);
                }
                Event::Finished(summary) => return Ok(summary.status),
                _ => {}
            }
        }
        Err("no summary".to_owned())
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(120), collect)
        .await
        .map_err(|_| "the run did not end within two minutes".to_owned())??;
    Ok((status, steps))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_workflows_end_the_same_on_kubernetes_as_locally() {
    if !cluster::has_bwrap() {
        return;
    }
    let cluster = cluster::start().await;
    let (workflows, templates) = samples();
    let mut kubernetes =
        KubernetesExecutor::new(cluster.client.clone(), ManifestOptions::default());
    // Artifacts and transfer/fetch leave pods through an S3-compatible store.
    let mut required = vec!["local-smoke", "templates", "service-with-probe"];
    if let Some(store) = cluster::s3_store("sample_workflows_end_the_same_on_kubernetes_as_locally")
    {
        kubernetes = kubernetes.with_storage(Arc::new(store));
        required.extend(["sharded-pytest", "matrix-browsers"]);
    }
    let kubernetes: Arc<dyn Executor> = Arc::new(kubernetes);
    let local: Arc<dyn Executor> =
        Arc::new(LocalExecutor::new(cluster.dir.path().join("local")).with_sandbox(Sandbox::Auto));
    let mut compared = Vec::new();
    for workflow in &workflows {
        let name = workflow.metadata.name.clone().unwrap_or_default();
        let id = format!("{name}-sample");
        let on_cluster = run_on(
            Arc::clone(&kubernetes),
            workflow,
            &templates,
            &workflows,
            &id,
        )
        .await;
        let on_cluster = match on_cluster {
            Ok(outcome) => outcome,
            // What the Kubernetes executor does not run yet is refused
            // before anything starts, naming the feature.
            Err(message) if message.contains("with --on kubernetes") => {
                eprintln!("{name}: not on Kubernetes yet: {message}");
                continue;
            }
            Err(message) => panic!("{name} on kube-sim: {message}"),
        };
        let here = run_on(Arc::clone(&local), workflow, &templates, &workflows, &id)
            .await
            .unwrap_or_else(|message| panic!("{name} locally: {message}"));
        assert_eq!(on_cluster, here, "{name}: kube-sim and local runs differ");
        assert!(!here.1.is_empty(), "{name}: steps ran");
        compared.push(name);
    }
    for required in required {
        assert!(
            compared.iter().any(|name| name == required),
            "{required} was compared: {compared:?}"
        );
    }
}
