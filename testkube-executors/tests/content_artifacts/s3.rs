//! Artifacts in S3-compatible storage (moto, see testkube-results' `tests/support/s3.rs`):
//! the local executor writing to it, a file sent to a presigned URL, and the upload's
//! retries and refusals against a small HTTP server of the test's own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use testkube_core::engine::Event;
use testkube_core::status::ExecutionStatus;
use testkube_executors::LocalExecutor;
use testkube_executors::upload::{UploadError, UploadPolicy, upload_file};
use testkube_results::artifacts::{ArtifactStore, install_tls_provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{artifacts, common::sandboxes, run, workflow};

#[path = "../../../testkube-results/tests/support/s3.rs"]
mod server;

fn s3_store(test: &str, prefix: &str) -> Option<ArtifactStore> {
    install_tls_provider();
    let server = server::server(test)?;
    let builder = AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing");
    Some(ArtifactStore::s3(&server.bucket(), prefix, builder).unwrap())
}

async fn object(store: &ArtifactStore, key: &str) -> Vec<u8> {
    store
        .object_store()
        .get(&ObjectPath::from(key))
        .await
        .unwrap_or_else(|err| panic!("{key}: {err}"))
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Bytes that do not repeat (so nothing can cheat on them).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn the_local_executor_keeps_artifacts_in_s3() {
    let Some(store) = s3_store("the_local_executor_keeps_artifacts_in_s3", "ci/arts") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxed) = sandboxes(dir.path()).into_iter().next() else {
        eprintln!("skipping the_local_executor_keeps_artifacts_in_s3: no sandbox here");
        return;
    };
    for executor in [
        sandboxed,
        LocalExecutor::new(dir.path().join("plain")).with_sandbox(testkube_executors::Sandbox::Off),
    ] {
        let executor = executor.with_artifact_store(store.object_store(), store.location_base());
        let yaml = workflow(
            "  steps:\n  \
             - id: make\n    shell: 'mkdir -p out/sub && echo a > out/a.txt && echo bb > out/sub/b.txt'\n    \
             artifacts: {workingDir: out, paths: ['**/*.txt']}\n  \
             - id: packed\n    artifacts: {paths: ['out/**'], compress: {name: out.tar.gz}}\n",
        );
        let id = if executor.is_sandboxed() {
            "s3-sandboxed"
        } else {
            "s3-plain"
        };
        let (summary, events) = run(&executor, id, &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let made = artifacts(&events, "make");
        let expected_base = format!("{}{id}/root/", store.location_base());
        assert_eq!(
            made,
            [
                ("a.txt".to_owned(), format!("{expected_base}a.txt"), 2),
                (
                    "sub/b.txt".to_owned(),
                    format!("{expected_base}sub/b.txt"),
                    3
                ),
            ]
        );
        assert!(expected_base.starts_with("s3://tk-"), "{expected_base}");
        assert_eq!(
            object(&store, &format!("{id}/root/sub/b.txt")).await,
            b"bb\n"
        );
        let packed = artifacts(&events, "packed");
        assert_eq!(packed.len(), 1);
        assert_eq!(
            object(&store, &format!("{id}/root/out.tar.gz")).await.len() as u64,
            packed[0].2
        );
        assert_eq!(
            executor.artifacts_location(id),
            format!("{}{id}/", store.location_base())
        );
        // Nothing landed in the local artifacts folder.
        assert!(!executor.artifacts_dir(id).exists());
        assert!(
            !events.iter().any(
                |e| matches!(e, Event::Notice { message, .. } if message.contains("artifact"))
            ),
            "{events:#?}"
        );
    }
}

#[tokio::test]
async fn a_file_sent_to_a_presigned_url_lands_in_the_bucket() {
    let Some(store) = s3_store("a_file_sent_to_a_presigned_url", "up") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("make.tar.gz");
    let bytes = pattern(3 * 1024 * 1024 + 17);
    std::fs::write(&file, &bytes).unwrap();
    let key = ObjectPath::from("run-3/uploads/make.tar.gz");
    let url = store
        .presign_put(&key, Duration::from_secs(600))
        .await
        .unwrap();
    let sent = upload_file(
        &reqwest::Client::new(),
        url.as_str(),
        &file,
        &UploadPolicy::default(),
    )
    .await
    .unwrap();
    assert_eq!(sent, bytes.len() as u64);
    assert_eq!(object(&store, "run-3/uploads/make.tar.gz").await, bytes);
}

/// One request the test server got: its head and its body.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Serves HTTP/1.1 on loopback, answering each request with the next status of `statuses`
/// (the last one repeats); returns its URL and what it got.
async fn server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut answered = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            let head_end = loop {
                if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => data.extend_from_slice(&buffer[..n]),
                }
            };
            let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < head_end + length {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buffer[..n]),
                }
            }
            let status = statuses[answered.min(statuses.len() - 1)];
            answered += 1;
            log.lock().unwrap().push(Seen {
                head,
                body: data[head_end..].to_vec(),
            });
            let body = if status >= 400 {
                "<Error><Code>Nope</Code></Error>"
            } else {
                ""
            };
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (
        format!("http://{address}/bucket/k.tar.gz?X-Amz-Signature=secret"),
        seen,
    )
}

fn quick(attempts: u32) -> UploadPolicy {
    UploadPolicy {
        attempts,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    }
}

#[tokio::test]
async fn an_upload_is_retried_after_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tar.gz");
    let bytes = pattern(300 * 1024);
    std::fs::write(&file, &bytes).unwrap();
    let (url, seen) = server(vec![503, 500, 200]).await;
    let sent = upload_file(&reqwest::Client::new(), &url, &file, &quick(5))
        .await
        .unwrap();
    assert_eq!(sent, bytes.len() as u64);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for request in &seen {
        assert!(
            request.head.starts_with("put /bucket/k.tar.gz?"),
            "{}",
            request.head
        );
        // The length up front, as S3 needs for a presigned PUT: never chunked.
        assert!(
            request
                .head
                .contains(&format!("content-length: {}", bytes.len())),
            "{}",
            request.head
        );
        assert!(
            !request.head.contains("transfer-encoding"),
            "{}",
            request.head
        );
        assert_eq!(
            request.body, bytes,
            "each attempt sends the whole file again"
        );
    }
}

#[tokio::test]
async fn an_upload_gives_up_after_its_attempts_and_a_refusal_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tar.gz");
    std::fs::write(&file, b"data").unwrap();

    let (url, seen) = server(vec![502]).await;
    let err = upload_file(&reqwest::Client::new(), &url, &file, &quick(3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, UploadError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
    let message = err.to_string();
    assert!(message.contains("502"), "{message}");
    assert!(
        !message.contains("secret"),
        "the signature stays out: {message}"
    );

    let (url, seen) = server(vec![403]).await;
    let err = upload_file(&reqwest::Client::new(), &url, &file, &quick(5))
        .await
        .unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 1, "a 403 is not retried");
    let message = err.to_string();
    assert!(matches!(err, UploadError::Refused { .. }), "{message}");
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("<Code>Nope</Code>"), "{message}");
    assert!(message.contains("expired"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    let err = upload_file(
        &reqwest::Client::new(),
        &url,
        &dir.path().join("missing.tar.gz"),
        &quick(5),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, UploadError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.tar.gz"), "{err}");

    // Nobody listens there: connection failures are retried, then reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = upload_file(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}/b/k?X-Amz-Signature=secret"),
        &file,
        &quick(2),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, UploadError::GaveUp { attempts: 2, .. }),
        "{message}"
    );
    assert!(message.contains("cannot connect"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}
