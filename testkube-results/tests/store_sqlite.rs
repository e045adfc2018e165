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
    conformance::abandoned_after_crash(|| open(path.clone())).await;
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
