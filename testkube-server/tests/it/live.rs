//! Live notifications (server-sent events): many followers see the same
//! events in the same order, resume where they left off, and a finished
//! run replays from the store.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::TestServer;

/// Reads an SSE stream to its end: `(id, data)` of every event.
async fn events(response: reqwest::Response) -> Vec<(u64, Value)> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut found = Vec::new();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().parse::<u64>().unwrap());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(value.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                assert_eq!(data["seqNo"], id, "the SSE id is the seqNo");
                found.push((id, data));
            }
        }
    }
    found
}

fn log_text(events: &[(u64, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, data)| data["log"].as_str())
        .collect()
}

const BUSY: &str = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: busy}\nspec:\n  steps:\n  - name: Count\n    id: count\n    shell: 'for i in $(seq 1 40); do echo line $i; sleep 0.02; done'\n  - name: Shards\n    id: shards\n    parallel:\n      count: 2\n      shell: 'echo worker {{ index }} here'\n";

#[tokio::test]
async fn every_follower_gets_every_notification_in_order_and_can_resume() {
    let server = TestServer::open().await;
    server.create_yaml(BUSY).await;
    let execution = server.run("busy", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/test-workflow-executions/{id}/notifications");

    let followers: Vec<_> = (0..20)
        .map(|_| {
            let request = server.call(reqwest::Method::GET, &path);
            tokio::spawn(async move { events(request.send().await.unwrap()).await })
        })
        .collect();
    let mut all = Vec::new();
    for follower in followers {
        all.push(follower.await.unwrap());
    }
    let first = &all[0];
    for other in &all[1..] {
        let ids = |events: &[(u64, Value)]| events.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(other), ids(first), "followers saw different events");
        assert_eq!(log_text(other), log_text(first));
    }
    assert!(
        first.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "seqNos rise"
    );
    let text = log_text(first);
    let expected: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    assert!(text.contains(&expected), "{text}");
    assert!(
        !text.contains("worker 1 here"),
        "a worker's logs stay on its own stream"
    );
    let (_, last) = first.last().unwrap();
    assert_eq!(last["result"]["status"], "passed", "{last}");
    assert_eq!(
        last["result"]["steps"]["count"]["status"], "passed",
        "{last}"
    );

    // Resuming after the 10th event gives exactly what followed.
    let resumed = events(
        server
            .call(reqwest::Method::GET, &path)
            .header("last-event-id", first[9].0.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resumed, first[10..].to_vec());
    let by_query = events(
        server
            .call(
                reqwest::Method::GET,
                &format!("{path}?resumeAfterSeqNo={}", first[9].0),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_query, resumed);

    // A parallel worker's own stream.
    let worker = events(
        server
            .call(
                reqwest::Method::GET,
                &format!("{path}/parallel-steps/shards/1"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let text = log_text(&worker);
    assert!(text.contains("worker 1 here"), "{text}");
    assert!(
        !text.contains("worker 0 here") && !text.contains("line 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_finished_run_replays_from_the_store_the_same_every_time() {
    let server = TestServer::open().await;
    server.create_yaml(BUSY).await;
    let execution = server.run("busy", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    server.finished(&id).await;
    // Another server over the same store did not run it: it replays.
    let other = server.reopened().await;
    let path = format!("/v1/test-workflow-executions/{id}/notifications");
    let once = events(
        other
            .call(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let twice = events(
        other
            .call(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let strip = |events: &[(u64, Value)]| {
        events
            .iter()
            .map(|(id, data)| {
                let mut data = data.clone();
                data.as_object_mut().unwrap().remove("ts");
                (*id, data)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&once), strip(&twice));
    let expected: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    assert!(log_text(&once).contains(&expected));
    assert_eq!(once.last().unwrap().1["result"]["status"], "passed");
    let tail = events(
        other
            .call(reqwest::Method::GET, &format!("{path}?resumeAfterSeqNo=3"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(strip(&tail), strip(&once)[3..].to_vec());
    let worker = events(
        other
            .call(
                reqwest::Method::GET,
                &format!("{path}/parallel-steps/shards/0"),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(log_text(&worker).contains("worker 0 here"));
    let missing = other
        .call(
            reqwest::Method::GET,
            &format!("{path}/parallel-steps/shards/7"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_service_instance_has_a_stream_of_its_own() {
    let server = TestServer::open().await;
    server
        .create_yaml("apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: svc}\nspec:\n  steps:\n  - name: Use it\n    id: use\n    services:\n      echo:\n        shell: 'echo service-says-hi; sleep 30'\n        logs: always\n    shell: 'sleep 0.5; echo main-step-here'\n")
        .await;
    let execution = server.run("svc", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/test-workflow-executions/{id}/notifications/services/echo/0");
    let live = events(
        server
            .call(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let done = server.finished(&id).await;
    assert_eq!(done["result"]["status"], "passed", "{done}");
    let text = log_text(&live);
    assert!(text.contains("service-says-hi"), "{text}");
    assert!(!text.contains("main-step-here"), "{text}");
    // Replayed from the store by a server that did not run it.
    let other = server.reopened().await;
    let stored = events(
        other
            .call(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(log_text(&stored).contains("service-says-hi"));
    assert!(!log_text(&stored).contains("main-step-here"));
}

#[tokio::test]
async fn a_run_of_another_process_is_followed_from_the_store_to_its_end() {
    let server = TestServer::open().await;
    server
        .create_yaml("apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: slow}\nspec:\n  steps:\n  - name: Count\n    shell: 'for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.2; done'\n")
        .await;
    let execution = server.run("slow", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    // Another server over the same store, as the agent's API is for the
    // runs its controller starts.
    let other = server.reopened().await;
    let path = format!("/v1/test-workflow-executions/{id}/notifications");
    let followed = events(
        other
            .call(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let text = log_text(&followed);
    let expected: String = (1..=6).map(|i| format!("tick {i}\n")).collect();
    assert!(text.contains(&expected), "{text}");
    assert_eq!(followed.last().unwrap().1["result"]["status"], "passed");
    // The same numbers as a replay of the finished run.
    let replayed = events(
        other
            .call(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids = |events: &[(u64, Value)]| events.iter().map(|(id, _)| *id).collect::<Vec<_>>();
    assert_eq!(ids(&followed), ids(&replayed));
    assert_eq!(log_text(&followed), log_text(&replayed));
}
