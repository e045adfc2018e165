//! A custom [`ResultStore`]: a decorator that keeps everything in the
//! SQLite store it wraps and, when an execution finishes, POSTs it as
//! JSON to a webhook (a chat bot, a dashboard, a CI status API).
//!
//! The engine and the recorder only know the trait, so the decorator
//! works with every frontend that stores runs (the CLI uses the same
//! recorder). This example starts a tiny HTTP receiver on localhost to
//! show the delivery.
//!
//! Run it with `cargo run --example webhook_store`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use async_trait::async_trait;
use testkube_core::engine::{Engine, ExecutionRequest};
use testkube_core::model::{Document, StepResult};
use testkube_core::plan::{PlanOptions, plan_workflow};
use testkube_core::resolve::{ResolveOptions, TemplateSet, resolve_workflow};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{
    ArtifactRecord, ExecutionFilter, ExecutionRecord, ItemDuration, LogChunk, LogFilter,
    NewExecution, OutputRecord, ResultStore, StatusUpdate, StepRecord, StoreError, TestCaseRecord,
};
use testkube_core::validate::load_file;
use testkube_core::yaml::LoadOptions;
use testkube_executors::LocalExecutor;
use testkube_results::store::{EventRecorder, SqliteStore};

const WORKFLOW: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: notified
spec:
  steps:
  - shell: echo "the tests would run here"
"#;

/// Keeps everything in `inner`; tells `url` about every finished execution.
struct WebhookStore<S> {
    inner: S,
    url: String,
    client: reqwest::Client,
}

impl<S: ResultStore> WebhookStore<S> {
    /// Sends the execution; a webhook that is down never fails the run.
    async fn notify(&self, id: &str) {
        let Ok(execution) = self.inner.get_execution(id).await else {
            return;
        };
        let sent = self.client.post(&self.url).json(&execution).send().await;
        if let Err(err) = sent.and_then(reqwest::Response::error_for_status) {
            eprintln!("webhook {}: {err}", self.url);
        }
    }
}

#[async_trait]
impl<S: ResultStore> ResultStore for WebhookStore<S> {
    async fn update_status(&self, id: &str, update: StatusUpdate) -> Result<(), StoreError> {
        // Notify on the change to a finished status, once (the recorder
        // writes the final status again with the summary's message).
        let was_finished = match self.inner.get_execution(id).await {
            Ok(execution) => execution.status.is_finished(),
            Err(_) => false,
        };
        let finished = update.status.is_finished();
        self.inner.update_status(id, update).await?;
        if finished && !was_finished {
            self.notify(id).await;
        }
        Ok(())
    }

    // Everything else is the wrapped store's.
    async fn create_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError> {
        self.inner.create_execution(new).await
    }
    async fn count_executions(
        &self,
        workflow: Option<&str>,
    ) -> Result<std::collections::BTreeMap<ExecutionStatus, u64>, StoreError> {
        self.inner.count_executions(workflow).await
    }
    async fn update_tags(
        &self,
        id: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.inner.update_tags(id, tags).await
    }
    async fn record_initialization(&self, id: &str, result: &StepResult) -> Result<(), StoreError> {
        self.inner.record_initialization(id, result).await
    }
    async fn upsert_step(&self, execution: &str, step: StepRecord) -> Result<(), StoreError> {
        self.inner.upsert_step(execution, step).await
    }
    async fn append_log(
        &self,
        execution: &str,
        worker: &str,
        step: &str,
        chunk: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.append_log(execution, worker, step, chunk).await
    }
    async fn append_logs(&self, execution: &str, chunks: &[LogChunk]) -> Result<(), StoreError> {
        self.inner.append_logs(execution, chunks).await
    }
    async fn record_outputs(
        &self,
        execution: &str,
        outputs: &[OutputRecord],
    ) -> Result<(), StoreError> {
        self.inner.record_outputs(execution, outputs).await
    }
    async fn record_test_cases(
        &self,
        execution: &str,
        cases: &[TestCaseRecord],
    ) -> Result<(), StoreError> {
        self.inner.record_test_cases(execution, cases).await
    }
    async fn record_artifacts(
        &self,
        execution: &str,
        artifacts: &[ArtifactRecord],
    ) -> Result<(), StoreError> {
        self.inner.record_artifacts(execution, artifacts).await
    }
    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError> {
        self.inner.get_execution(id).await
    }
    async fn find_execution(&self, id_or_name: &str) -> Result<ExecutionRecord, StoreError> {
        self.inner.find_execution(id_or_name).await
    }
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.inner.list_executions(filter).await
    }
    async fn steps(&self, execution: &str) -> Result<Vec<StepRecord>, StoreError> {
        self.inner.steps(execution).await
    }
    async fn logs(&self, execution: &str, filter: &LogFilter) -> Result<Vec<LogChunk>, StoreError> {
        self.inner.logs(execution, filter).await
    }
    async fn outputs(&self, execution: &str) -> Result<Vec<OutputRecord>, StoreError> {
        self.inner.outputs(execution).await
    }
    async fn test_cases(&self, execution: &str) -> Result<Vec<TestCaseRecord>, StoreError> {
        self.inner.test_cases(execution).await
    }
    async fn artifacts(&self, execution: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        self.inner.artifacts(execution).await
    }
    async fn item_durations(&self, workflow: &str) -> Result<Vec<ItemDuration>, StoreError> {
        self.inner.item_durations(workflow).await
    }
    async fn recover_abandoned(&self) -> Result<Vec<String>, StoreError> {
        self.inner.recover_abandoned().await
    }
    async fn claim_abandoned(&self) -> Result<Vec<String>, StoreError> {
        self.inner.claim_abandoned().await
    }
}

/// A one-request HTTP receiver: returns the body of the first POST.
fn receive_one(listener: TcpListener) -> std::io::Result<String> {
    let (stream, _) = listener.accept()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    (&stream).write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/executions", listener.local_addr()?);
    let receiver = std::thread::spawn(move || receive_one(listener));

    let home = std::env::temp_dir().join(format!("testkube-webhook-{}", std::process::id()));
    let store: Arc<dyn ResultStore> = Arc::new(WebhookStore {
        inner: SqliteStore::open(&home.join("results.db")).await?,
        url,
        client: reqwest::Client::new(),
    });

    let loaded = load_file(
        "notified.yaml",
        WORKFLOW.as_bytes(),
        &LoadOptions::default(),
    );
    let Some(Document::TestWorkflow(workflow)) = &loaded.documents[0].document else {
        return Err("expected a TestWorkflow".into());
    };
    let resolved = resolve_workflow(
        workflow,
        &TemplateSet::with_builtins()?,
        &ResolveOptions::new(),
        None,
    )?;
    let plan = plan_workflow(resolved.workflow(), &PlanOptions::new())?;
    let record = store
        .create_execution(NewExecution {
            id: format!("notified-{}", std::process::id()),
            workflow: plan.workflow.clone(),
            name: None,
            status: ExecutionStatus::Queued,
            scheduled_at: std::time::SystemTime::now().into(),
            snapshot: serde_json::Value::Null,
            config: Default::default(),
            tags: Default::default(),
            shard_durations: Default::default(),
        })
        .await?;

    let engine = Engine::new(Arc::new(LocalExecutor::new(home.join("runs"))));
    let request = ExecutionRequest {
        number: record.number,
        name: record.name.clone(),
        ..ExecutionRequest::new(record.id.clone())
    };
    let mut running = engine.start(plan, request)?;
    let mut recorder = EventRecorder::new(Arc::clone(&store), record.id);
    while let Some(event) = running.next_event().await {
        recorder.record(&event).await?;
    }

    let body = receiver.join().map_err(|_| "the receiver panicked")??;
    let delivered: ExecutionRecord = serde_json::from_str(&body)?;
    println!(
        "the webhook received {} ({})",
        delivered.name, delivered.status
    );
    Ok(())
}
