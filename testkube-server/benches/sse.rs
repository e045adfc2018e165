//! Live notifications under fan-out: `FOLLOWERS` clients (default 100)
//! follow one busy run (`LINES` log lines, default 20000, printed as fast as
//! the shell can) over real HTTP; every follower must get every
//! notification, in order, exactly once.
//!
//! `cargo bench -p testkube-server --bench sse`. Prints the run's
//! notifications, the time until the last follower had them all, and the
//! notifications delivered per second (all followers together).

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use testkube_core::service::RunService;
use testkube_executors::{LocalExecutor, Sandbox};
use testkube_results::store::SqliteStore;
use testkube_server::{Auth, FolderDefinitions, Server};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn run() {
    let followers = setting("FOLLOWERS", 100);
    let lines = setting("LINES", 20_000);
    let dir = tempfile::tempdir().expect("a folder");
    let store = SqliteStore::open(&dir.path().join("results.db"))
        .await
        .expect("a store");
    let executor = LocalExecutor::new(dir.path().join("runs")).with_sandbox(Sandbox::Off);
    let service = RunService::new(Arc::new(executor)).with_store(Arc::new(store));
    let definitions = FolderDefinitions::new(dir.path().join("definitions"));
    let server = Server::new(service, Arc::new(definitions), Auth::Disabled).expect("a server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(server.serve(listener, std::future::pending()));

    let client = reqwest::Client::new();
    let workflow = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: busy}}\nspec:\n  steps:\n  - name: Print\n    shell: 'i=0; while [ $i -lt {lines} ]; do echo line $i; i=$((i+1)); done'\n"
    );
    let created = client
        .post(format!("{base}/v1/test-workflows"))
        .header("content-type", "text/yaml")
        .body(workflow)
        .send()
        .await
        .expect("created");
    assert!(created.status().is_success());
    let started = Instant::now();
    let execution: serde_json::Value = client
        .post(format!("{base}/v1/test-workflows/busy/executions"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("started")
        .json()
        .await
        .expect("an execution");
    let id = execution["id"].as_str().expect("an id").to_owned();
    let url = format!("{base}/v1/test-workflow-executions/{id}/notifications");
    let tasks: Vec<_> = (0..followers)
        .map(|_| {
            let request = client.get(&url);
            tokio::spawn(async move { follow(request).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("a follower"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (ids, text) = &results[0];
    for (other_ids, other_text) in &results[1..] {
        assert_eq!(other_ids, ids, "a follower saw other notifications");
        assert_eq!(other_text, text, "a follower saw other logs");
    }
    assert!(
        ids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "seqNos without gaps"
    );
    let printed = text
        .lines()
        .filter(|line| line.starts_with("line "))
        .count();
    assert_eq!(printed, lines, "every line arrived");
    let delivered = (ids.len() * followers) as f64;
    println!(
        "{followers} followers, {lines} lines: {} notifications each, all delivered in {elapsed:.2} s ({:.0} notifications/s in all); none lost or reordered",
        ids.len(),
        delivered / elapsed
    );
}

/// Every notification's seqNo and the log text, to the end of the stream.
async fn follow(request: reqwest::RequestBuilder) -> (Vec<u64>, String) {
    let response = request.send().await.expect("a stream");
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut ids = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        buffer.extend_from_slice(&chunk.expect("bytes"));
        while let Some(end) = buffer.windows(2).position(|pair| pair == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            for line in String::from_utf8_lossy(&block).lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    let value: serde_json::Value = serde_json::from_str(data.trim()).expect("JSON");
                    ids.push(value["seqNo"].as_u64().expect("a seqNo"));
                    if let Some(log) = value["log"].as_str() {
                        text.push_str(log);
                    }
                }
            }
        }
    }
    (ids, text)
}
