//! The behaviour every [`ResultStore`] must have, as functions any implementation's tests call
//! with a fresh, empty store (the SQLite and PostgreSQL stores run them all). Needs only the
//! trait (feature `conformance`): no database driver comes with it.
//!
//! Each check panics with a message on a violation (they are test helpers). Crash recovery needs
//! a store that can be reopened, so it is not in [`run_all`]; see [`abandoned_after_crash`] and
//! [`claimed_after_crash`].
#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::sync::Arc;

mod logs;
mod results;

use logs::chunk;
use results::artifact;

pub use logs::{large_logs_read_back_in_pages, logs_appended_in_batches, logs_appended_in_order};
pub use results::{
    artifacts_recorded, durations_latest_per_item, found_by_id_or_name, outputs_and_test_cases,
};

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
    tags_replaced(store.as_ref()).await;
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

/// Tags replaced after the run was created read back by every lookup.
pub async fn tags_replaced(store: &dyn ResultStore) {
    create(store, "tags-1", "tags").await;
    let tags = BTreeMap::from([
        ("release".to_owned(), "2.1".to_owned()),
        ("team".to_owned(), "web".to_owned()),
    ]);
    store
        .update_tags("tags-1", &tags)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let found = store.find_execution("tags-1").await.ok();
    assert_eq!(found.map(|r| r.tags), Some(tags.clone()));
    let listed = store
        .list_executions(&ExecutionFilter {
            workflow: Some("tags".to_owned()),
            ..ExecutionFilter::default()
        })
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(listed[0].tags, tags);
    store
        .update_tags("tags-1", &BTreeMap::new())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let cleared = store.get_execution("tags-1").await.ok();
    assert_eq!(cleared.map(|r| r.tags.len()), Some(0));
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
    let second_page = ExecutionFilter {
        skip: 2,
        ..limited.clone()
    };
    let listed = store.list_executions(&second_page).await.map(ids);
    assert_eq!(listed.ok(), Some(vec!["list-1".into()]));
    let counts = store
        .count_executions(Some("list"))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let total: u64 = counts.values().sum();
    assert_eq!(total, 3, "{counts:?}");
    assert_eq!(counts.get(&ExecutionStatus::Passed), Some(&1));
    assert_eq!(counts.get(&ExecutionStatus::Queued), Some(&2));
    let everything = store
        .count_executions(None)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(everything.values().sum::<u64>() >= 4, "{everything:?}");
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
    not_found(store.update_tags("nope", &BTreeMap::new()).await);
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

/// Crash recovery across a reopen. `open` opens the same store each time (e.g. one file, or
/// one database and schema), as a new owner (a new process, or a new store instance); see
/// [`claimed_after_crash`] for `until_abandoned`. Creates a running execution with a step and a
/// log, drops the store without finishing (as a killed process would), waits
/// `until_abandoned`, reopens, recovers: the execution and its running step are `aborted`, its
/// log is kept, and a finished execution is left alone.
pub async fn abandoned_after_crash<F, Fut, W, WFut>(open: F, until_abandoned: W)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ResultStore>>,
    W: FnOnce() -> WFut,
    WFut: Future<Output = ()>,
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
    until_abandoned().await;
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

/// Taking over after a crash (for an engine that goes on with the runs). `open` opens the same
/// store each time, as a new owner. Creates a running and a queued execution and a finished
/// one, drops the store without finishing (as a killed process would), waits
/// `until_abandoned`, reopens and claims: the unfinished ones are returned with their status,
/// steps and logs as they were; the finished one is left alone.
///
/// `until_abandoned` is whatever makes the dropped store's executions count as abandoned to the
/// next one: nothing for a store that tells owners by process id (SQLite: the dropped store's
/// rows carry this process's id, which a store opened later takes for an earlier process's);
/// waiting out the heartbeat timeout for one that tells them by heartbeat (PostgreSQL: the
/// dropped store stopped beating, and the next one is another owner).
pub async fn claimed_after_crash<F, Fut, W, WFut>(open: F, until_abandoned: W)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ResultStore>>,
    W: FnOnce() -> WFut,
    WFut: Future<Output = ()>,
{
    {
        let store = open().await;
        create(store.as_ref(), "claim-done", "claim").await;
        store
            .update_status("claim-done", update(ExecutionStatus::Passed))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        create(store.as_ref(), "claim-running", "claim").await;
        create(store.as_ref(), "claim-queued", "claim").await;
        store
            .update_status("claim-running", update(ExecutionStatus::Running))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        store
            .append_log("claim-running", "root", "s1", b"so far")
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    until_abandoned().await;
    let store = open().await;
    let mut claimed = store
        .claim_abandoned()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    claimed.sort();
    assert_eq!(claimed, ["claim-queued", "claim-running"]);
    let status = |id: &'static str| {
        let store = Arc::clone(&store);
        async move { store.get_execution(id).await.ok().map(|r| r.status) }
    };
    assert_eq!(
        status("claim-running").await,
        Some(ExecutionStatus::Running)
    );
    assert_eq!(status("claim-queued").await, Some(ExecutionStatus::Queued));
    assert_eq!(status("claim-done").await, Some(ExecutionStatus::Passed));
    let logs = store
        .logs("claim-running", &LogFilter::default())
        .await
        .unwrap_or_default();
    assert_eq!(
        logs.first().map(|c| c.data.as_slice()),
        Some(&b"so far"[..])
    );
}
