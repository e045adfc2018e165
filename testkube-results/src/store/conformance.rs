//! The behaviour every [`ResultStore`] must have, as functions any implementation's tests call
//! with a fresh, empty store (the PostgreSQL store will run the same checks).
//!
//! Each check panics with a message on a violation (they are test helpers). Crash recovery needs
//! a store that can be reopened, so it is not in [`run_all`]; see [`abandoned_after_crash`].
#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use testkube_core::model::StepResult;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{
    ArtifactRecord, ExecutionFilter, ExecutionRecord, LogChunk, LogFilter, MAX_LOG_CHUNK,
    NewExecution, OutputRecord, ResultStore, StatusUpdate, StepRecord, StoreError, TestCaseRecord,
    TestCaseStatus,
};

/// Runs every check that needs only one store, in turn, on `store` (which must start empty).
pub async fn run_all(store: Arc<dyn ResultStore>) {
    numbering_per_workflow(store.as_ref()).await;
    status_updates_and_lookup(store.as_ref()).await;
    initialization_recorded(store.as_ref()).await;
    shard_durations_kept(store.as_ref()).await;
    list_order_and_filters(store.as_ref()).await;
    steps_upserted(store.as_ref()).await;
    logs_appended_in_order(store.as_ref()).await;
    logs_appended_in_batches(store.as_ref()).await;
    large_logs_read_back_in_pages(store.as_ref()).await;
    artifacts_recorded(store.as_ref()).await;
    found_by_id_or_name(store.as_ref()).await;
    outputs_and_test_cases(store.as_ref()).await;
    durations_latest_per_item(store.as_ref()).await;
    unknown_executions_are_not_found(store.as_ref()).await;
    concurrent_writers(store).await;
}

/// A new execution of `workflow`, queued now, with id `id`.
#[must_use]
pub fn new_execution(id: &str, workflow: &str) -> NewExecution {
    NewExecution {
        id: id.to_owned(),
        workflow: workflow.to_owned(),
        name: None,
        status: ExecutionStatus::Queued,
        scheduled_at: Utc::now(),
        snapshot: serde_json::json!({"kind": "TestWorkflow", "metadata": {"name": workflow}}),
        config: BTreeMap::from([("browser".to_owned(), serde_json::json!("chrome"))]),
        tags: BTreeMap::from([("team".to_owned(), "qa".to_owned())]),
        shard_durations: BTreeMap::new(),
    }
}

/// The durations a run's shards were split with read back as given, by every lookup, apart
/// from the snapshot; an execution without them reads back an empty map.
pub async fn shard_durations_kept(store: &dyn ResultStore) {
    let durations = BTreeMap::from([
        ("tests/a.py".to_owned(), 2.5),
        ("tests/b.py".to_owned(), 0.125),
    ]);
    let new = NewExecution {
        shard_durations: durations.clone(),
        ..new_execution("durations-1", "durations")
    };
    let snapshot = new.snapshot.clone();
    let created = store
        .create_execution(new)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(created.shard_durations, durations);
    for read in [
        store.get_execution("durations-1").await,
        store.find_execution("durations-1").await,
        store.find_execution(&created.name).await,
    ] {
        let read = read.unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(read.shard_durations, durations);
        assert_eq!(
            read.snapshot, snapshot,
            "the durations are not in the snapshot"
        );
    }
    let listed = store
        .list_executions(&ExecutionFilter {
            workflow: Some("durations".to_owned()),
            ..ExecutionFilter::default()
        })
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        listed.first().map(|record| &record.shard_durations),
        Some(&durations)
    );
    let plain = create(store, "durations-2", "durations").await;
    assert!(plain.shard_durations.is_empty());
    let read = store
        .get_execution("durations-2")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(read.shard_durations.is_empty(), "{read:?}");
}

async fn create(store: &dyn ResultStore, id: &str, workflow: &str) -> ExecutionRecord {
    match store.create_execution(new_execution(id, workflow)).await {
        Ok(record) => record,
        Err(err) => panic!("create {id}: {err}"),
    }
}

fn update(status: ExecutionStatus) -> StatusUpdate {
    StatusUpdate {
        status,
        at: Utc::now(),
        message: None,
    }
}

/// Numbers count per workflow from 1; names are `WORKFLOW-N`; ids are unique.
pub async fn numbering_per_workflow(store: &dyn ResultStore) {
    let a1 = create(store, "num-a1", "num-a").await;
    let b1 = create(store, "num-b1", "num-b").await;
    let a2 = create(store, "num-a2", "num-a").await;
    assert_eq!((a1.number, b1.number, a2.number), (1, 1, 2));
    assert_eq!(a2.name, "num-a-2");
    let again = store
        .create_execution(new_execution("num-a1", "num-a"))
        .await;
    assert!(
        matches!(again, Err(StoreError::Duplicate(ref id)) if id == "num-a1"),
        "{again:?}"
    );
    assert_eq!(create(store, "num-a3", "num-a").await.number, 3);
}

/// The record reads back as created; `running` sets the start, a final status the finish.
pub async fn status_updates_and_lookup(store: &dyn ResultStore) {
    let created = create(store, "status-1", "status").await;
    let read = store.get_execution("status-1").await;
    assert_eq!(read.as_ref().ok(), Some(&created), "{read:?}");
    store
        .update_status("status-1", update(ExecutionStatus::Running))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let running = store.get_execution("status-1").await.ok();
    let started = running.as_ref().and_then(|r| r.started_at);
    assert!(started.is_some(), "{running:?}");
    assert_eq!(running.and_then(|r| r.finished_at), None);
    let failed = StatusUpdate {
        message: Some("deadline exceeded".to_owned()),
        ..update(ExecutionStatus::Failed)
    };
    store
        .update_status("status-1", failed)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let Ok(done) = store.get_execution("status-1").await else {
        panic!("status-1 vanished")
    };
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.started_at, started, "the start time is kept");
    assert!(done.finished_at.is_some());
    assert_eq!(done.message.as_deref(), Some("deadline exceeded"));
    assert_eq!(done.config, created.config);
    assert_eq!(done.tags, created.tags);
    assert_eq!(done.snapshot, created.snapshot);
}

/// `result.initialization` is absent until recorded, then replaced as it
/// changes, with its times (to the millisecond) and error message, and read
/// back by every lookup.
pub async fn initialization_recorded(store: &dyn ResultStore) {
    let created = create(store, "init-1", "init").await;
    assert_eq!(created.result.initialization, None);
    let started = Utc::now().trunc_subsecs(3);
    let mut init = StepResult::started(started);
    store
        .record_initialization("init-1", &init)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let running = store.get_execution("init-1").await.ok();
    assert_eq!(
        running.and_then(|r| r.result.initialization),
        Some(init.clone())
    );
    init.change(
        StepStatus::Failed,
        started + chrono::TimeDelta::milliseconds(1500),
        Some("cannot clone `https://example.com/x.git`: not found".to_owned()),
    );
    store
        .record_initialization("init-1", &init)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let by_name = store.find_execution("init-1").await.ok();
    assert_eq!(
        by_name.and_then(|r| r.result.initialization),
        Some(init.clone())
    );
    let listed = store
        .list_executions(&ExecutionFilter {
            workflow: Some("init".to_owned()),
            ..ExecutionFilter::default()
        })
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].result.initialization.as_ref(), Some(&init));
}

/// Newest first, filtered by workflow and status, limited.
pub async fn list_order_and_filters(store: &dyn ResultStore) {
    for id in ["list-1", "list-2", "list-3"] {
        create(store, id, "list").await;
    }
    create(store, "list-other", "list-other").await;
    store
        .update_status("list-2", update(ExecutionStatus::Passed))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let ids = |records: Vec<ExecutionRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id).collect()
    };
    let by_workflow = ExecutionFilter {
        workflow: Some("list".to_owned()),
        ..ExecutionFilter::default()
    };
    let listed = store.list_executions(&by_workflow).await.map(ids);
    assert_eq!(
        listed.ok(),
        Some(vec!["list-3".into(), "list-2".into(), "list-1".into()])
    );
    let limited = ExecutionFilter {
        limit: Some(2),
        ..by_workflow.clone()
    };
    let listed = store.list_executions(&limited).await.map(ids);
    assert_eq!(listed.ok(), Some(vec!["list-3".into(), "list-2".into()]));
    let passed = ExecutionFilter {
        status: Some(ExecutionStatus::Passed),
        ..by_workflow
    };
    let listed = store.list_executions(&passed).await.map(ids);
    assert_eq!(listed.ok(), Some(vec!["list-2".into()]));
    let all = store.list_executions(&ExecutionFilter::default()).await;
    let newest = all.ok().and_then(|all| all.first().map(|r| r.id.clone()));
    assert_eq!(newest.as_deref(), Some("list-other"));
}

/// A step written again replaces its state but keeps its first start and its place.
pub async fn steps_upserted(store: &dyn ResultStore) {
    create(store, "steps-1", "steps").await;
    let now = Utc::now();
    let step = |id: &str, status: StepStatus| StepRecord {
        worker: "root".to_owned(),
        step: id.to_owned(),
        name: Some(format!("Step {id}")),
        status,
        started_at: Some(now),
        finished_at: None,
        attempt: 1,
        exit_code: None,
        message: None,
    };
    for record in [
        step("a", StepStatus::Running),
        step("b", StepStatus::Queued),
        StepRecord {
            started_at: None,
            finished_at: Some(now),
            exit_code: Some(3),
            attempt: 2,
            message: Some("exit code 3".to_owned()),
            ..step("a", StepStatus::Failed)
        },
    ] {
        store
            .upsert_step("steps-1", record)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let steps = store.steps("steps-1").await.unwrap_or_default();
    let order: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(order, ["a", "b"]);
    let a = &steps[0];
    assert_eq!(a.status, StepStatus::Failed);
    assert_eq!((a.attempt, a.exit_code), (2, Some(3)));
    assert_eq!(
        a.started_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    assert_eq!(a.message.as_deref(), Some("exit code 3"));
}

/// Chunks read back in append order, whole or by step and worker.
pub async fn logs_appended_in_order(store: &dyn ResultStore) {
    create(store, "logs-1", "logs").await;
    let writes = [
        ("root", "s1", "one\n"),
        ("root/w/1", "s2", "two\n"),
        ("root", "s1", "three\n"),
        ("root", "s3", "four\n"),
        ("root/w/1", "s2", "five\n"),
    ];
    for (worker, step, text) in writes {
        store
            .append_log("logs-1", worker, step, text.as_bytes())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let text = |filter: LogFilter| async move {
        let chunks = store.logs("logs-1", &filter).await.unwrap_or_default();
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect::<String>()
    };
    assert_eq!(
        text(LogFilter::default()).await,
        "one\ntwo\nthree\nfour\nfive\n"
    );
    let s1 = LogFilter {
        step: Some("s1".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(text(s1).await, "one\nthree\n");
    let worker = LogFilter {
        worker: Some("root/w/1".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(text(worker).await, "two\nfive\n");
    let binary = [0_u8, 159, 146, 150, 255];
    store
        .append_log("logs-1", "root", "bin", &binary)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let bin = LogFilter {
        step: Some("bin".to_owned()),
        ..LogFilter::default()
    };
    let chunks = store.logs("logs-1", &bin).await.unwrap_or_default();
    assert_eq!(chunks.first().map(|c| c.data.as_slice()), Some(&binary[..]));
}

fn chunk(worker: &str, step: &str, text: &str) -> LogChunk {
    LogChunk {
        worker: worker.to_owned(),
        step: step.to_owned(),
        data: text.as_bytes().to_vec(),
    }
}

fn log_text(chunks: &[LogChunk]) -> String {
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect()
}

/// A batch lands whole and in slice order, between single appends, with its workers and steps.
pub async fn logs_appended_in_batches(store: &dyn ResultStore) {
    create(store, "batch-1", "batch").await;
    store
        .append_log("batch-1", "root", "s1", b"first\n")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let batch = [
        chunk("root", "s1", "a\n"),
        chunk("root/w/0", "s2", "b\n"),
        chunk("root", "s1", "c\n"),
        chunk("root/w/1", "s2", "d\n"),
    ];
    store
        .append_logs("batch-1", &batch)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    store
        .append_logs("batch-1", &[])
        .await
        .unwrap_or_else(|err| panic!("an empty batch is fine: {err}"));
    store
        .append_log("batch-1", "root", "s1", b"last\n")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let all = store
        .logs("batch-1", &LogFilter::default())
        .await
        .unwrap_or_default();
    assert_eq!(log_text(&all), "first\na\nb\nc\nd\nlast\n");
    assert_eq!(all.get(2), Some(&batch[1]), "worker and step are kept");
    let s1 = LogFilter {
        step: Some("s1".to_owned()),
        worker: Some("root".to_owned()),
        ..LogFilter::default()
    };
    let read = store.logs("batch-1", &s1).await.unwrap_or_default();
    assert_eq!(log_text(&read), "first\na\nc\nlast\n");
    let rest = LogFilter { skip: 3, ..s1 };
    let read = store.logs("batch-1", &rest).await.unwrap_or_default();
    assert_eq!(log_text(&read), "last\n", "skip counts matching chunks");
    let none = LogFilter {
        skip: 100,
        ..LogFilter::default()
    };
    assert!(
        store
            .logs("batch-1", &none)
            .await
            .unwrap_or_default()
            .is_empty()
    );
    let large: Vec<LogChunk> = (0..2000)
        .map(|n| chunk("root", "big", &format!("{n}\n")))
        .collect();
    store
        .append_logs("batch-1", &large)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let big_filter = LogFilter {
        step: Some("big".to_owned()),
        ..LogFilter::default()
    };
    let big = store.logs("batch-1", &big_filter).await.unwrap_or_default();
    assert_eq!(log_text(&big), log_text(&large));
    let page = LogFilter {
        skip: 10,
        limit: Some(3),
        ..big_filter
    };
    let page = store.logs("batch-1", &page).await.unwrap_or_default();
    assert_eq!(log_text(&page), "10\n11\n12\n", "a page: skip, then limit");
}

/// A log of several MiB written in batches of chunks of every size (some longer than
/// [`MAX_LOG_CHUNK`]) reads back page by page byte for byte, in order, each chunk at most
/// [`MAX_LOG_CHUNK`] bytes: what lets a reader stream a log of any size in bounded memory.
pub async fn large_logs_read_back_in_pages(store: &dyn ResultStore) {
    create(store, "large-1", "large").await;
    // Bytes that differ from chunk to chunk and are not text, so a reordered, lost or repeated
    // piece shows.
    let bytes = |seed: usize, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 31 + seed * 7 + i / 251) % 256).unwrap_or(0))
            .collect()
    };
    let sizes = [
        1,
        17,
        4096,
        MAX_LOG_CHUNK - 1,
        MAX_LOG_CHUNK,
        MAX_LOG_CHUNK + 1,
        300_000,
    ];
    let mut written: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut everything = Vec::new();
    for round in 0..6 {
        let batch: Vec<LogChunk> = sizes
            .iter()
            .enumerate()
            .map(|(n, &len)| {
                let step = if n % 3 == 0 { "noisy" } else { "main" };
                LogChunk {
                    worker: "root".to_owned(),
                    step: step.to_owned(),
                    data: bytes(round * 10 + n, len),
                }
            })
            .collect();
        for chunk in &batch {
            written
                .entry(if chunk.step == "noisy" {
                    "noisy"
                } else {
                    "main"
                })
                .or_default()
                .extend_from_slice(&chunk.data);
            everything.extend_from_slice(&chunk.data);
        }
        store
            .append_logs("large-1", &batch)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let big = bytes(99, 3 * MAX_LOG_CHUNK + 5);
    store
        .append_log("large-1", "root", "main", &big)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    written.entry("main").or_default().extend_from_slice(&big);
    everything.extend_from_slice(&big);
    assert!(everything.len() > 3_000_000, "a log of several MiB");

    let read_in_pages = |step: Option<&str>, page: u64| {
        let step = step.map(str::to_owned);
        async move {
            let mut read = Vec::new();
            let mut skip = 0;
            loop {
                let filter = LogFilter {
                    step: step.clone(),
                    skip,
                    limit: Some(page),
                    ..LogFilter::default()
                };
                let chunks = store
                    .logs("large-1", &filter)
                    .await
                    .unwrap_or_else(|err| panic!("{err}"));
                assert!(
                    chunks.len() as u64 <= page,
                    "a page holds at most `limit` chunks"
                );
                for chunk in &chunks {
                    assert!(
                        !chunk.data.is_empty() && chunk.data.len() <= MAX_LOG_CHUNK,
                        "a stored chunk holds 1 to MAX_LOG_CHUNK bytes, not {}",
                        chunk.data.len()
                    );
                    read.extend_from_slice(&chunk.data);
                }
                skip += chunks.len() as u64;
                if (chunks.len() as u64) < page {
                    return read;
                }
            }
        }
    };
    assert!(
        read_in_pages(None, 7).await == everything,
        "the whole log, read 7 chunks at a time, is what was written"
    );
    for step in ["main", "noisy"] {
        assert!(
            read_in_pages(Some(step), 3).await == written[step],
            "step {step}'s log, read 3 chunks at a time, is what it wrote"
        );
    }
}

fn artifact(worker: &str, path: &str, size: u64) -> ArtifactRecord {
    ArtifactRecord {
        worker: worker.to_owned(),
        step: "collect".to_owned(),
        path: path.to_owned(),
        location: format!("/kept/{worker}/{path}"),
        size,
    }
}

/// Artifacts read back in recording order; the same file recorded again is replaced in place.
pub async fn artifacts_recorded(store: &dyn ResultStore) {
    create(store, "art-1", "art").await;
    create(store, "art-2", "art").await;
    let first = [
        artifact("root", "reports/junit.xml", 1200),
        artifact("root/w/0", "reports/junit.xml", 800),
        artifact("root", "video.mp4", 5_000_000_000),
    ];
    store
        .record_artifacts("art-1", &first)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    store
        .record_artifacts("art-2", &[artifact("root", "other.txt", 1)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let replaced = ArtifactRecord {
        location: "https://bucket.example/art-1/junit.xml".to_owned(),
        ..artifact("root", "reports/junit.xml", 1300)
    };
    store
        .record_artifacts("art-1", &[replaced.clone(), artifact("root", "log.txt", 0)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let read = store.artifacts("art-1").await.unwrap_or_default();
    assert_eq!(
        read,
        [
            replaced,
            first[1].clone(),
            first[2].clone(),
            artifact("root", "log.txt", 0)
        ]
    );
    assert_eq!(
        store.artifacts("art-2").await.map(|a| a.len()).ok(),
        Some(1),
        "artifacts are per execution"
    );
    assert!(
        store
            .artifacts("no-such-execution")
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// An execution is found by id, else by name (the newest of that name); ids win over names.
pub async fn found_by_id_or_name(store: &dyn ResultStore) {
    let first = create(store, "find-id-1", "find").await;
    let second = create(store, "find-id-2", "find").await;
    let found = |key: &'static str| async move {
        store
            .find_execution(key)
            .await
            .map(|r| r.id)
            .unwrap_or_else(|err| panic!("{key}: {err}"))
    };
    assert_eq!(found("find-id-1").await, first.id);
    assert_eq!(found("find-2").await, second.id, "by name `WORKFLOW-N`");
    assert_eq!(found("find-1").await, first.id);
    for id in ["named-old", "named-new"] {
        let named = NewExecution {
            name: Some("nightly".to_owned()),
            ..new_execution(id, "find-named")
        };
        store
            .create_execution(named)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    assert_eq!(found("nightly").await, "named-new", "the newest of a name");
    // An execution named like another's id: the id wins.
    let confusing = NewExecution {
        name: Some("find-id-1".to_owned()),
        ..new_execution("find-confusing", "find")
    };
    store
        .create_execution(confusing)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(found("find-id-1").await, first.id);
    let missing = store.find_execution("find-99").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(ref key)) if key == "find-99"),
        "{missing:?}"
    );
}

fn case(name: &str, file: &str, status: TestCaseStatus, duration: f64) -> TestCaseRecord {
    TestCaseRecord {
        worker: "root".to_owned(),
        suite: "suite".to_owned(),
        class: Some("Class".to_owned()),
        name: name.to_owned(),
        file: Some(file.to_owned()),
        status,
        duration_secs: Some(duration),
        message: (status == TestCaseStatus::Failed).then(|| "boom".to_owned()),
    }
}

/// Outputs (a key written again is replaced) and test cases read back as recorded.
pub async fn outputs_and_test_cases(store: &dyn ResultStore) {
    create(store, "out-1", "out").await;
    let output = |key: &str, value: &str| OutputRecord {
        worker: "root".to_owned(),
        step: "s1".to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
    };
    store
        .record_outputs("out-1", &[output("url", "a"), output("n", "1")])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    store
        .record_outputs("out-1", &[output("url", "b")])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let outputs = store.outputs("out-1").await.unwrap_or_default();
    assert_eq!(outputs, [output("url", "b"), output("n", "1")]);
    let cases = [
        case("adds", "calc.py", TestCaseStatus::Passed, 0.5),
        case("divides", "calc.py", TestCaseStatus::Failed, 1.25),
    ];
    store
        .record_test_cases("out-1", &cases)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(store.test_cases("out-1").await.ok(), Some(cases.to_vec()));
    // A big batch (stores may split it into several statements) keeps its order.
    let many: Vec<TestCaseRecord> = (0..1234)
        .map(|i| case(&format!("t{i}"), "many.py", TestCaseStatus::Passed, 0.1))
        .collect();
    store
        .record_test_cases("out-1", &many)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let stored = store.test_cases("out-1").await.unwrap_or_default();
    assert_eq!(stored.len(), cases.len() + many.len());
    assert_eq!(stored[cases.len()..], many[..]);
}

/// The latest duration of each item of a workflow, from its earlier executions only: a case
/// the newest worker listed several times is the sum of those runs; skipped runs do not count.
pub async fn durations_latest_per_item(store: &dyn ResultStore) {
    create(store, "dur-1", "dur").await;
    let newest = create(store, "dur-2", "dur").await;
    create(store, "dur-other", "dur-other").await;
    let record = |id: &'static str, cases: Vec<TestCaseRecord>| async move {
        store
            .record_test_cases(id, &cases)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    };
    let on = |worker: &str, case: TestCaseRecord| TestCaseRecord {
        worker: worker.to_owned(),
        ..case
    };
    record(
        "dur-1",
        vec![
            case("slow", "a.py", TestCaseStatus::Passed, 10.0),
            case("fast", "b.py", TestCaseStatus::Passed, 1.0),
            case("param", "c.py", TestCaseStatus::Passed, 100.0),
        ],
    )
    .await;
    record(
        "dur-2",
        vec![
            case("slow", "a.py", TestCaseStatus::Failed, 12.5),
            // One name, three runs (a parameterized case): 0.5 + 1.25 + 2.
            case("param", "c.py", TestCaseStatus::Passed, 0.5),
            case("param", "c.py", TestCaseStatus::Failed, 1.25),
            case("param", "c.py", TestCaseStatus::Passed, 2.0),
            // Skipped now: the last real run (1.0 above) still counts.
            case("fast", "b.py", TestCaseStatus::Skipped, 0.0),
        ],
    )
    .await;
    // Two workers of one execution ran the same case (a matrix): the one
    // that recorded it last counts, not both.
    record(
        "dur-2",
        vec![
            on(
                "root/matrix/0",
                case("twice", "d.py", TestCaseStatus::Passed, 3.0),
            ),
            on(
                "root/matrix/1",
                case("twice", "d.py", TestCaseStatus::Passed, 4.0),
            ),
            on(
                "root/matrix/1",
                case("twice", "d.py", TestCaseStatus::Passed, 4.5),
            ),
        ],
    )
    .await;
    record(
        "dur-other",
        vec![case("slow", "a.py", TestCaseStatus::Passed, 99.0)],
    )
    .await;
    let durations = store.item_durations("dur").await.unwrap_or_default();
    let seen: Vec<(Option<&str>, &str, f64)> = durations
        .iter()
        .map(|d| (d.file.as_deref(), d.name.as_str(), d.duration_secs))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("a.py"), "slow", 12.5),
            (Some("b.py"), "fast", 1.0),
            (Some("c.py"), "param", 3.75),
            (Some("d.py"), "twice", 8.5),
        ]
    );
    let from: Vec<&str> = durations.iter().map(|d| d.execution.as_str()).collect();
    let oldest = durations[1].execution.clone();
    assert_ne!(oldest, newest.name);
    assert_eq!(
        from,
        [
            newest.name.as_str(),
            oldest.as_str(),
            newest.name.as_str(),
            newest.name.as_str()
        ]
    );
    assert!(
        store
            .item_durations("never")
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// Reads and writes that name an unknown execution say so.
pub async fn unknown_executions_are_not_found(store: &dyn ResultStore) {
    let not_found = |result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::NotFound(ref id)) if id == "nope"),
            "{result:?}"
        );
    };
    not_found(store.get_execution("nope").await.map(|_| ()));
    not_found(
        store
            .update_status("nope", update(ExecutionStatus::Passed))
            .await,
    );
    not_found(store.append_log("nope", "root", "s", b"x").await);
    not_found(store.record_test_cases("nope", &[]).await);
    not_found(store.append_logs("nope", &[]).await);
    not_found(store.append_logs("nope", &[chunk("root", "s", "x")]).await);
    not_found(store.record_artifacts("nope", &[]).await);
    not_found(
        store
            .record_artifacts("nope", &[artifact("root", "a.txt", 1)])
            .await,
    );
    not_found(store.find_execution("nope").await.map(|_| ()));
    not_found(
        store
            .record_initialization("nope", &StepResult::started(Utc::now()))
            .await,
    );
}

/// Several tasks creating executions and appending logs at once: numbers stay unique and
/// gapless, and no write is lost.
pub async fn concurrent_writers(store: Arc<dyn ResultStore>) {
    const TASKS: usize = 8;
    const CHUNKS: usize = 20;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let id = format!("conc-{task}");
            let record = create(store.as_ref(), &id, "conc").await;
            for chunk in 0..CHUNKS {
                store
                    .append_log(&id, "root", "s", format!("{chunk}\n").as_bytes())
                    .await
                    .unwrap_or_else(|err| panic!("{err}"));
            }
            record.number
        }));
    }
    let mut numbers = Vec::new();
    for handle in handles {
        numbers.push(handle.await.unwrap_or_else(|err| panic!("{err}")));
    }
    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=TASKS as u64).collect();
    assert_eq!(numbers, expected);
    for task in 0..TASKS {
        let chunks = store
            .logs(&format!("conc-{task}"), &LogFilter::default())
            .await
            .unwrap_or_default();
        let text: String = chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect();
        let expected: String = (0..CHUNKS).map(|n| format!("{n}\n")).collect();
        assert_eq!(text, expected, "task {task}");
    }
}

/// Crash recovery across a reopen. `open` opens the same store each time (e.g. one file).
/// Creates a running execution with a step and a log, drops the store without finishing (as a
/// killed process would), reopens, recovers: the execution and its running step are `aborted`,
/// its log is kept, and a finished execution is left alone.
pub async fn abandoned_after_crash<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ResultStore>>,
{
    {
        let store = open().await;
        create(store.as_ref(), "crash-done", "crash").await;
        store
            .update_status("crash-done", update(ExecutionStatus::Passed))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        create(store.as_ref(), "crash-running", "crash").await;
        create(store.as_ref(), "crash-queued", "crash").await;
        store
            .update_status("crash-running", update(ExecutionStatus::Running))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        let step = StepRecord {
            worker: "root".to_owned(),
            step: "s1".to_owned(),
            name: None,
            status: StepStatus::Running,
            started_at: Some(Utc::now()),
            finished_at: None,
            attempt: 1,
            exit_code: None,
            message: None,
        };
        store
            .upsert_step("crash-running", step)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        store
            .append_log("crash-running", "root", "s1", b"half a line")
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let store = open().await;
    let mut recovered = store
        .recover_abandoned()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    recovered.sort();
    assert_eq!(recovered, ["crash-queued", "crash-running"]);
    for id in ["crash-running", "crash-queued"] {
        let record = store.get_execution(id).await.ok();
        assert_eq!(
            record.as_ref().map(|r| r.status),
            Some(ExecutionStatus::Aborted)
        );
        assert!(record.and_then(|r| r.finished_at).is_some(), "{id}");
    }
    let done = store.get_execution("crash-done").await.ok();
    assert_eq!(done.map(|r| r.status), Some(ExecutionStatus::Passed));
    let steps = store.steps("crash-running").await.unwrap_or_default();
    assert_eq!(steps.first().map(|s| s.status), Some(StepStatus::Aborted));
    let logs = store
        .logs("crash-running", &LogFilter::default())
        .await
        .unwrap_or_default();
    assert_eq!(
        logs.first().map(|c| c.data.as_slice()),
        Some(&b"half a line"[..])
    );
    let again = store.recover_abandoned().await.unwrap_or_default();
    assert!(
        again.is_empty(),
        "recovering twice changes nothing: {again:?}"
    );
    let next = create(store.as_ref(), "crash-next", "crash").await;
    assert_eq!(next.number, 4, "numbers continue after a crash");
}
