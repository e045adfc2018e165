//! Embedding the REST API: mount testkube-server's router over a run
//! service of your own (here the local executor and a SQLite store), then
//! talk to it as a CI job or a dashboard would: store a workflow, start it,
//! follow its live notifications (server-sent events), read the verdict.
//!
//! Run it with `cargo run --example serve_api`. It listens on a free
//! loopback port without auth (`Auth::Tokens` for a real deployment) and
//! keeps everything in a temporary folder.

use std::sync::Arc;

use testkube_core::service::RunService;
use testkube_executors::{LocalExecutor, Sandbox};
use testkube_results::store::SqliteStore;
use testkube_server::api::{Execution, Notification};
use testkube_server::{Auth, FolderDefinitions, Server};

const WORKFLOW: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: api-demo
spec:
  steps:
  - name: Greet
    shell: echo "hello from a run started over HTTP"
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = std::env::temp_dir().join(format!("testkube-serve-example-{}", std::process::id()));

    // 1. The server: a run service (executor + store) and where workflows are kept.
    let store = SqliteStore::open(&home.join("results.db")).await?;
    let executor = LocalExecutor::new(home.join("runs")).with_sandbox(Sandbox::Off);
    let service = RunService::new(Arc::new(executor)).with_store(Arc::new(store));
    let definitions = Arc::new(FolderDefinitions::new(home.join("definitions")));
    let server = Server::new(service, definitions, Auth::Disabled)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    // `server.router()` mounts the same routes in a router of your own.
    tokio::spawn(server.serve(listener, std::future::pending()));
    println!("serving at {base} (home {})", home.display());

    // 2. A client: store the workflow (YAML, as kept on disk), start it.
    let http = reqwest::Client::new();
    http.post(format!("{base}/v1/test-workflows"))
        .header("content-type", "text/yaml")
        .body(WORKFLOW)
        .send()
        .await?
        .error_for_status()?;
    let started: Execution = http
        .post(format!("{base}/v1/test-workflows/api-demo/executions"))
        .json(&serde_json::json!({"tags": {"source": "example"}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("started {} ({})", started.name, started.id);

    // 3. Its live notifications: one `data:` line each, until the run ends.
    let stream = http
        .get(format!(
            "{base}/v1/test-workflow-executions/{}/notifications",
            started.id
        ))
        .send()
        .await?
        .text()
        .await?;
    for line in stream.lines() {
        if let Some(data) = line.strip_prefix("data:") {
            let notification: Notification = serde_json::from_str(data.trim())?;
            if let Some(log) = &notification.log {
                print!("  [{}] log: {log}", notification.seq_no);
            } else if let Some(result) = &notification.result {
                println!("  [{}] status: {}", notification.seq_no, result.status);
            }
        }
    }

    // 4. The verdict, as `GET /v1/test-workflow-executions/{id}` answers it.
    let done: Execution = http
        .get(format!("{base}/v1/test-workflow-executions/{}", started.id))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "{} {} in {}",
        done.name,
        done.result.status,
        done.result.duration.as_deref().unwrap_or("-")
    );
    std::fs::remove_dir_all(&home).ok();
    if done.result.status == "passed" {
        Ok(())
    } else {
        Err(format!("the run ended {}", done.result.status).into())
    }
}
