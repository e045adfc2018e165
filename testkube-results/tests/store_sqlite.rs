//! The SQLite result store against the `ResultStore` conformance suite, plus what only a file
//! on disk can show: reopening, crash recovery, the default location, the schema version.

use std::path::PathBuf;
use std::sync::Arc;

use testkube_core::store::{ResultStore, StoreError};
use testkube_results::store::{EventRecorder, SqliteStore, conformance};

async fn open(path: PathBuf) -> Arc<dyn ResultStore> {
    match SqliteStore::open(&path).await {
        Ok(store) => Arc::new(store),
        Err(err) => panic!("open {}: {err}", path.display()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(open(dir.path().join("results.db")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_left_running_by_a_crash_are_marked_aborted_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/home/results.db");
    // Nothing to wait for: the dropped store's rows carry this process's id, which a store opened
    // later takes for an earlier process's.
    conformance::abandoned_after_crash(|| open(path.clone()), || async {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    {
        let store = open(path.clone()).await;
        store
            .create_execution(conformance::new_execution("keep-1", "keep"))
            .await
            .unwrap();
    }
    let applied_before = applied_migrations(&path).await;
    let store = open(path.clone()).await;
    assert_eq!(applied_migrations(&path).await, applied_before);
    assert_eq!(store.get_execution("keep-1").await.unwrap().name, "keep-1");
    let next = store
        .create_execution(conformance::new_execution("keep-2", "keep"))
        .await
        .unwrap();
    assert_eq!(next.name, "keep-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    drop(store);
    // Simulate a newer program having migrated the file further.
    let pool = raw_pool(&path).await;
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'later')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("999"), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("newer testkube"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_value_names_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_execution(conformance::new_execution("bad-1", "bad"))
        .await
        .unwrap();
    let pool = raw_pool(&path).await;
    sqlx::query("UPDATE executions SET tags = 'not json' WHERE id = 'bad-1'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = store.get_execution("bad-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("`tags`"), "{err}");
}

async fn raw_pool(path: &std::path::Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// The rows of `schema_migrations`: a reopen that re-applied a migration would add one.
async fn applied_migrations(path: &std::path::Path) -> Vec<(i64, String)> {
    let pool = raw_pool(path).await;
    let rows = sqlx::query_as("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_uses_the_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = open(path.clone()).await;
    store
        .create_execution(conformance::new_execution("wal-1", "wal"))
        .await
        .unwrap();
    assert!(dir.path().join("results.db-wal").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_stores_an_execution_from_engine_events() {
    use std::time::{Duration, SystemTime};
    use testkube_core::engine::{Event, StepDetail, StepRef, WorkerId};
    use testkube_core::status::{ExecutionStatus, StepStatus};
    use testkube_core::store::LogFilter;

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("results.db")).await;
    let record = store
        .create_execution(conformance::new_execution("rec-1", "rec"))
        .await
        .unwrap();
    let mut recorder = EventRecorder::new(Arc::clone(&store), record.id.clone());
    let root = WorkerId {
        path: "root".to_owned(),
        number: 0,
    };
    let step = StepRef {
        id: "s1".to_owned(),
        name: Some("Run tests".to_owned()),
        depth: 1,
    };
    let start = SystemTime::now();
    let events = [
        Event::Execution {
            status: ExecutionStatus::Running,
            at: start,
        },
        Event::Step {
            worker: root.clone(),
            step: step.clone(),
            status: StepStatus::Running,
            at: start,
            detail: StepDetail {
                attempt: 1,
                ..StepDetail::default()
            },
        },
        Event::Log {
            worker: root.clone(),
            step: "s1".to_owned(),
            chunk: "hello\n".into(),
        },
        Event::Output {
            worker: root.clone(),
            step: "s1".to_owned(),
            key: "url".to_owned(),
            value: "http://x".to_owned(),
        },
        Event::Step {
            worker: root.clone(),
            step,
            status: StepStatus::Failed,
            at: start + Duration::from_millis(1500),
            detail: StepDetail {
                attempt: 1,
                exit_code: Some(2),
                message: Some("exit code 2".to_owned()),
            },
        },
        Event::Execution {
            status: ExecutionStatus::Failed,
            at: start + Duration::from_secs(2),
        },
    ];
    for event in &events {
        recorder.record(event).await.unwrap();
    }
    let execution = store.get_execution("rec-1").await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Failed);
    assert!(execution.started_at.is_some() && execution.finished_at.is_some());
    let steps = store.steps("rec-1").await.unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert_eq!(steps[0].exit_code, Some(2));
    let took = steps[0].finished_at.unwrap() - steps[0].started_at.unwrap();
    assert_eq!(took.num_milliseconds(), 1500);
    let logs = store.logs("rec-1", &LogFilter::default()).await.unwrap();
    assert_eq!(logs[0].data, b"hello\n");
    assert_eq!(store.outputs("rec-1").await.unwrap()[0].value, "http://x");
}

fn root_worker() -> testkube_core::engine::WorkerId {
    testkube_core::engine::WorkerId {
        path: "root".to_owned(),
        number: 0,
    }
}

fn log_event(
    worker: &testkube_core::engine::WorkerId,
    step: &str,
    text: &str,
) -> testkube_core::engine::Event {
    testkube_core::engine::Event::Log {
        worker: worker.clone(),
        step: step.to_owned(),
        chunk: text.to_owned().into(),
    }
}

/// 10 MB printed in ~100-byte chunks (many batches) reads back byte for byte, in order, joined
/// into rows of at most [`MAX_LOG_CHUNK`] bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_stores_a_10_mb_log_of_small_chunks_intact_and_in_order() {
    use testkube_core::store::{LogFilter, MAX_LOG_CHUNK};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("results.db")).await;
    store
        .create_execution(conformance::new_execution("big-1", "big"))
        .await
        .unwrap();
    let mut recorder = EventRecorder::new(Arc::clone(&store), "big-1");
    let root = root_worker();
    let mut expected = Vec::new();
    let mut line = 0_u64;
    while expected.len() < 10 * 1024 * 1024 {
        let text = format!("line {line:08} {}\n", "x".repeat(80));
        expected.extend_from_slice(text.as_bytes());
        recorder
            .record(&log_event(&root, "s1", &text))
            .await
            .unwrap();
        line += 1;
    }
    recorder.flush().await.unwrap();
    let chunks = store.logs("big-1", &LogFilter::default()).await.unwrap();
    assert!(
        chunks.iter().all(|c| c.data.len() <= MAX_LOG_CHUNK),
        "no stored chunk is longer than MAX_LOG_CHUNK"
    );
    assert!(
        (chunks.len() as u64) < line / 100,
        "a step's small chunks are joined: {} rows for {line} events",
        chunks.len()
    );
    let stored: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
    assert!(
        stored == expected,
        "the stored log differs from what was printed"
    );
}

/// Logs wait in memory only briefly, and never land after the step status that followed them;
/// artifacts and test cases from events are stored too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_writes_logs_before_later_events_and_in_the_background() {
    use std::time::{Duration, SystemTime};
    use testkube_core::engine::{Event, StepDetail, StepRef};
    use testkube_core::status::StepStatus;
    use testkube_core::store::{ArtifactRecord, LogFilter, TestCaseRecord, TestCaseStatus};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("results.db")).await;
    store
        .create_execution(conformance::new_execution("bg-1", "bg"))
        .await
        .unwrap();
    let mut recorder = EventRecorder::new(Arc::clone(&store), "bg-1");
    let root = root_worker();
    recorder
        .record(&log_event(&root, "s1", "waiting...\n"))
        .await
        .unwrap();
    // No further event: the background tick writes the line (what `logs -f` and a crash need).
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = store.logs("bg-1", &LogFilter::default()).await.unwrap();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.first().map(|c| c.data.as_slice()),
        Some(&b"waiting...\n"[..])
    );

    recorder
        .record(&log_event(&root, "s1", "done\n"))
        .await
        .unwrap();
    let step = Event::Step {
        worker: root.clone(),
        step: StepRef {
            id: "s1".to_owned(),
            name: None,
            depth: 1,
        },
        status: StepStatus::Passed,
        at: SystemTime::now(),
        detail: StepDetail::default(),
    };
    recorder.record(&step).await.unwrap();
    // Read at once: the step's status is in, so the output before it must be too.
    let logs = store.logs("bg-1", &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(
        store.steps("bg-1").await.unwrap()[0].status,
        StepStatus::Passed
    );

    recorder
        .record(&Event::Artifact {
            worker: root.clone(),
            step: "s1".to_owned(),
            path: "reports/junit.xml".to_owned(),
            location: "/kept/junit.xml".to_owned(),
            size: 42,
        })
        .await
        .unwrap();
    let case = TestCaseRecord {
        worker: "root".to_owned(),
        suite: "calc".to_owned(),
        class: None,
        name: "adds".to_owned(),
        file: None,
        status: TestCaseStatus::Failed,
        duration_secs: Some(0.25),
        message: Some("2 != 3".to_owned()),
    };
    recorder
        .record(&Event::TestCases {
            worker: root,
            step: "s1".to_owned(),
            report: "reports/junit.xml".to_owned(),
            cases: vec![case.clone()],
        })
        .await
        .unwrap();
    assert_eq!(
        store.artifacts("bg-1").await.unwrap(),
        [ArtifactRecord {
            worker: "root".to_owned(),
            step: "s1".to_owned(),
            path: "reports/junit.xml".to_owned(),
            location: "/kept/junit.xml".to_owned(),
            size: 42,
        }]
    );
    assert_eq!(store.test_cases("bg-1").await.unwrap(), [case]);
}

/// The recorder's buffered logs go to the store when it is finished without a summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_the_recorder_writes_its_pending_logs() {
    use testkube_core::status::ExecutionStatus;
    use testkube_core::store::LogFilter;

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("results.db")).await;
    store
        .create_execution(conformance::new_execution("fin-1", "fin"))
        .await
        .unwrap();
    let mut recorder = EventRecorder::new(Arc::clone(&store), "fin-1");
    recorder
        .record(&log_event(&root_worker(), "s1", "last words\n"))
        .await
        .unwrap();
    recorder
        .finish(ExecutionStatus::Aborted, Some("stopped".to_owned()))
        .await
        .unwrap();
    let logs = store.logs("fin-1", &LogFilter::default()).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(
        store.get_execution("fin-1").await.unwrap().status,
        ExecutionStatus::Aborted
    );
}

/// A store written before artifacts and initialization results existed (schema 1) is upgraded
/// in place on open: its executions are kept and the new tables, columns and indexes work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_schema_1_is_upgraded_keeping_its_data() {
    use testkube_core::store::ArtifactRecord;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_execution(conformance::new_execution("old-1", "old"))
        .await
        .unwrap();
    store.close().await;
    drop(store);
    // Take the file back to what version 1 left.
    let pool = raw_pool(&path).await;
    sqlx::raw_sql(
        "DROP TABLE artifacts; DROP INDEX executions_by_name;
         DROP INDEX executions_by_workflow_time; DROP INDEX test_cases_by_case;
         ALTER TABLE executions DROP COLUMN initialization;
         ALTER TABLE executions DROP COLUMN shard_durations;
         DELETE FROM schema_migrations WHERE version > 1;",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = open(path.clone()).await;
    let old = store.find_execution("old-1").await.unwrap();
    assert_eq!(old.id, "old-1");
    assert_eq!(old.result.initialization, None, "older runs have none");
    let init = testkube_core::model::StepResult::started(chrono::Utc::now());
    store.record_initialization("old-1", &init).await.unwrap();
    assert_eq!(
        store
            .get_execution("old-1")
            .await
            .unwrap()
            .result
            .initialization,
        Some(init)
    );
    let artifact = ArtifactRecord {
        worker: "root".to_owned(),
        step: "s1".to_owned(),
        path: "a.txt".to_owned(),
        location: "/kept/a.txt".to_owned(),
        size: 3,
    };
    store
        .record_artifacts("old-1", std::slice::from_ref(&artifact))
        .await
        .unwrap();
    assert_eq!(store.artifacts("old-1").await.unwrap(), [artifact]);
    let versions: Vec<i64> = applied_migrations(&path)
        .await
        .into_iter()
        .map(|(version, _)| version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
}

/// The history queries (an execution by name, a workflow over time, one test over time) are
/// answered from indexes, not by scanning every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_use_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let pool = raw_pool(&path).await;
    let plans = [
        (
            "SELECT id FROM executions WHERE name = 'wf-3'",
            "executions_by_name",
        ),
        (
            "SELECT id, status FROM executions WHERE workflow = 'wf' ORDER BY scheduled_at DESC",
            "executions_by_workflow_time",
        ),
        (
            "SELECT status, duration_secs FROM test_cases
             WHERE workflow = 'wf' AND suite = 's' AND class = 'c' AND name = 'n' ORDER BY id DESC",
            "test_cases_by_case",
        ),
        (
            "SELECT status, duration_secs FROM test_cases
             WHERE workflow = 'wf' AND file = 'f.py' AND class = 'c' AND name = 'n'
             ORDER BY id DESC",
            "test_cases_by_test",
        ),
    ];
    for (sql, index) in plans {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&pool)
                .await
                .unwrap();
        let plan: Vec<&str> = rows.iter().map(|row| row.3.as_str()).collect();
        assert!(
            plan.iter().any(|step| step.contains(index))
                && !plan.iter().any(|s| s.contains("TEMP B-TREE")),
            "{sql}: {plan:?}"
        );
    }
    pool.close().await;
}

/// A store from before schema v4 kept the durations a run was split with in its snapshot, under
/// `x-testkube-durations`: opening it moves them into the typed field (and out of the snapshot),
/// so `rerun --failed-only` of an old execution still plans the shards it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_kept_in_old_snapshots_become_the_typed_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_execution(conformance::new_execution("old-1", "old"))
        .await
        .unwrap();
    store
        .create_execution(conformance::new_execution("old-2", "old"))
        .await
        .unwrap();
    store.close().await;
    drop(store);
    // Back to a v3 file: no column, the durations in the snapshot (old-1 only).
    let pool = raw_pool(&path).await;
    for sql in [
        "DELETE FROM schema_migrations WHERE version = 4",
        "ALTER TABLE executions DROP COLUMN shard_durations",
        r#"UPDATE executions SET snapshot = json_set(snapshot, '$."x-testkube-durations"',
               json('{"tests/a.py": 2.5, "tests/b.py": 1}')) WHERE id = 'old-1'"#,
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = open(path.clone()).await;
    let old = store.get_execution("old-1").await.unwrap();
    assert_eq!(
        old.shard_durations,
        std::collections::BTreeMap::from([
            ("tests/a.py".to_owned(), 2.5),
            ("tests/b.py".to_owned(), 1.0)
        ])
    );
    assert_eq!(old.snapshot.get("x-testkube-durations"), None);
    assert_eq!(old.snapshot["metadata"]["name"], "old");
    let plain = store.get_execution("old-2").await.unwrap();
    assert!(plain.shard_durations.is_empty());
    assert_eq!(
        plain.snapshot,
        conformance::new_execution("x", "old").snapshot
    );
    assert_eq!(
        applied_migrations(&path).await.last().map(|row| row.0),
        Some(4)
    );
}

/// A resumed execution's events repeat what the workers reported before the restart (their
/// logs are read again from the start): the recorder of the resumed run stores only what the
/// first one had not, so every byte and test case is stored once, in order, even when the
/// first recorder stopped in the middle of a chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_recorder_stores_what_the_events_repeat_once() {
    use testkube_core::engine::Event;
    use testkube_core::store::{LogFilter, TestCaseRecord, TestCaseStatus};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("results.db")).await;
    store
        .create_execution(conformance::new_execution("again-1", "again"))
        .await
        .unwrap();
    let root = root_worker();
    let child = testkube_core::engine::WorkerId {
        path: "root/fan/0".to_owned(),
        number: 1,
    };
    let case = |name: &str| TestCaseRecord {
        worker: child.path.clone(),
        suite: "s".to_owned(),
        class: None,
        name: name.to_owned(),
        file: None,
        status: TestCaseStatus::Passed,
        duration_secs: None,
        message: None,
    };
    let cases = |names: &[&str]| Event::TestCases {
        worker: child.clone(),
        step: "test".to_owned(),
        report: "junit.xml".to_owned(),
        cases: names.iter().map(|name| case(name)).collect(),
    };
    // Everything the workers report, in order; the first process stored
    // up to the middle of "two" (a chunk cut short) and the first report.
    let events = vec![
        log_event(&root, "a", "one\n"),
        log_event(&child, "test", "w-one\n"),
        cases(&["first"]),
        log_event(&root, "a", "two\n"),
        log_event(&child, "test", "w-two\n"),
        cases(&["second", "third"]),
        log_event(&root, "b", "three\n"),
    ];
    let first = EventRecorder::new(Arc::clone(&store), "again-1");
    store
        .append_logs(
            "again-1",
            &[
                testkube_core::store::LogChunk {
                    worker: "root".to_owned(),
                    step: "a".to_owned(),
                    data: b"one\ntw".to_vec(),
                },
                testkube_core::store::LogChunk {
                    worker: child.path.clone(),
                    step: "test".to_owned(),
                    data: b"w-one\n".to_vec(),
                },
            ],
        )
        .await
        .unwrap();
    store
        .record_test_cases("again-1", &[case("first")])
        .await
        .unwrap();
    drop(first);

    let mut resumed = EventRecorder::resume(Arc::clone(&store), "again-1")
        .await
        .unwrap();
    for event in &events {
        resumed.record(event).await.unwrap();
    }
    resumed.flush().await.unwrap();
    let text = |worker: &str| {
        let store = Arc::clone(&store);
        let worker = worker.to_owned();
        async move {
            let filter = LogFilter {
                worker: Some(worker),
                ..LogFilter::default()
            };
            let chunks = store.logs("again-1", &filter).await.unwrap();
            chunks
                .iter()
                .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
                .collect::<String>()
        }
    };
    assert_eq!(text("root").await, "one\ntwo\nthree\n");
    assert_eq!(text("root/fan/0").await, "w-one\nw-two\n");
    let names: Vec<String> = store
        .test_cases("again-1")
        .await
        .unwrap()
        .into_iter()
        .map(|case| case.name)
        .collect();
    assert_eq!(names, ["first", "second", "third"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_left_running_by_a_crash_can_be_claimed_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    conformance::claimed_after_crash(|| open(path.clone()), || async {}).await;
}
