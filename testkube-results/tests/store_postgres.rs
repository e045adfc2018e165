//! The PostgreSQL result store against the `ResultStore` conformance suite, plus what only a
//! shared database shows: several stores (as several processes would) numbering one workflow,
//! appending to one log while a follower reads it, heartbeats and taking over abandoned runs,
//! migrations when stores connect at once, the schema version.
//!
//! The database is `TESTKUBE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in a schema of its own
//! (`test_<random>`, dropped at the end, also when the test fails), so runs never see each
//! other's rows. When PostgreSQL cannot be reached, each test prints `skipped: ...` and passes,
//! unless `CI` is set: then it fails, naming the URL.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{
    LogChunk, LogFilter, OutputRecord, ResultStore, StatusUpdate, StepRecord, StoreError,
    TestCaseRecord, TestCaseStatus,
};
use testkube_results::store::{PostgresOptions, PostgresStore, conformance};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The abandon timeout of the stores in the ownership tests: short, so the tests wait little,
/// and long enough that a loaded machine is unlikely to stall a live store past it between two
/// steps.
const SHORT: Duration = Duration::from_millis(1500);

fn database_url() -> String {
    std::env::var("TESTKUBE_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// A schema of the test's own in the test database, dropped (with everything in it) when this
/// value is, so also when the test panics.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// A new schema name, the schema created when `create` (else the first store creates it).
    /// `None`, after printing why, when PostgreSQL cannot be reached and `CI` is not set.
    async fn fresh(create: bool) -> Option<Schema> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let url = database_url();
        let connected =
            tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await;
        let mut connection = match connected {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => return unreachable(&url, &err.to_string()),
            Err(_) => return unreachable(&url, "no answer within 10 s"),
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!(
            "test_{}_{nanos:x}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        if create {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                .execute(&mut connection)
                .await
                .unwrap_or_else(|err| panic!("CREATE SCHEMA {name}: {err}"));
        }
        connection.close().await.ok();
        Some(Schema { url, name })
    }

    fn options(&self) -> PostgresOptions {
        PostgresOptions::new(self.url.clone()).schema(self.name.clone())
    }

    async fn store_with(&self, options: PostgresOptions) -> PostgresStore {
        PostgresStore::connect_with(options)
            .await
            .unwrap_or_else(|err| panic!("connect to schema {}: {err}", self.name))
    }

    async fn store(&self) -> PostgresStore {
        self.store_with(self.options()).await
    }

    /// A store whose executions others count as abandoned [`SHORT`] after its last heartbeat.
    async fn short_lived(&self) -> PostgresStore {
        self.store_with(self.options().abandon_after(SHORT)).await
    }

    /// A plain pool on the schema, for looking at or changing rows behind the store's back.
    async fn raw(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.name.as_str())]);
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be gone (or panicking): a thread with a
        // runtime of its own does it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&url)
                    .await
                    .map_err(|err| err.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(&mut connection)
                .await
                .map_err(|err| err.to_string())?;
                connection.close().await.map_err(|err| err.to_string())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop schema {}: {err}", self.name);
        }
    }
}

/// What a test does when PostgreSQL cannot be reached: fails under CI (where `.ci/run` started
/// or checked PostgreSQL, so this is a real failure), else says it skipped.
fn unreachable(url: &str, why: &str) -> Option<Schema> {
    let url = redacted(url);
    if std::env::var_os("CI").is_some_and(|ci| !ci.is_empty()) {
        panic!(
            "PostgreSQL is not reachable at {url}: {why}. CI is set, so the PostgreSQL store's \
             tests fail instead of skipping: start PostgreSQL there or point \
             TESTKUBE_TEST_DATABASE_URL at one"
        );
    }
    println!("skipped: PostgreSQL is not reachable at {url} (set TESTKUBE_TEST_DATABASE_URL)");
    None
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if scheme + 3 < at => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A fresh schema, or the end of the test when PostgreSQL cannot be reached (outside CI).
macro_rules! schema_or_skip {
    ($create:expr) => {
        match Schema::fresh($create).await {
            Some(schema) => schema,
            None => return,
        }
    };
}

fn shared(store: PostgresStore) -> Arc<dyn ResultStore> {
    Arc::new(store)
}

fn running() -> StatusUpdate {
    StatusUpdate {
        status: ExecutionStatus::Running,
        at: chrono::Utc::now(),
        message: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_passes_the_conformance_suite() {
    let schema = schema_or_skip!(true);
    conformance::run_all(shared(schema.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_left_running_by_a_crash_are_marked_aborted_once_their_heartbeat_is_old() {
    let schema = schema_or_skip!(true);
    conformance::abandoned_after_crash(
        || async { shared(schema.short_lived().await) },
        // The dropped store beats no more; the reopened one is another owner.
        || tokio::time::sleep(SHORT + Duration::from_millis(300)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_left_running_by_a_crash_can_be_claimed_to_go_on() {
    let schema = schema_or_skip!(true);
    conformance::claimed_after_crash(
        || async { shared(schema.short_lived().await) },
        || tokio::time::sleep(SHORT + Duration::from_millis(300)),
    )
    .await;
}

/// Two stores with pools of their own (as two processes, on one machine or two) create
/// executions of one workflow at once: every number is used once, 1 to N, none shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_creating_executions_of_one_workflow_concurrently_get_distinct_numbers() {
    const TASKS_PER_STORE: usize = 8;
    const EACH: usize = 6;
    let schema = schema_or_skip!(true);
    let stores = [shared(schema.store().await), shared(schema.store().await)];
    let mut tasks = Vec::new();
    for (which, store) in stores.iter().enumerate() {
        for task in 0..TASKS_PER_STORE {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                let mut numbers = Vec::new();
                for n in 0..EACH {
                    let id = format!("race-{which}-{task}-{n}");
                    let record = store
                        .create_execution(conformance::new_execution(&id, "race"))
                        .await
                        .unwrap_or_else(|err| panic!("create {id}: {err}"));
                    assert_eq!(record.name, format!("race-{}", record.number));
                    numbers.push(record.number);
                }
                numbers
            }));
        }
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.extend(task.await.unwrap());
    }
    numbers.sort_unstable();
    let total = (2 * TASKS_PER_STORE * EACH) as u64;
    assert_eq!(numbers, (1..=total).collect::<Vec<_>>());
    let next = stores[1]
        .create_execution(conformance::new_execution("race-next", "race"))
        .await
        .unwrap();
    assert_eq!(next.number, total + 1);
}

/// Two stores append to one execution's log at once while a follower reads it page by page with
/// `skip` (as `logs -f` does): the follower sees every chunk once, in the order a full read
/// gives, and each writer's chunks keep their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_sees_every_chunk_once_while_two_stores_append() {
    const LINES: usize = 150;
    let schema = schema_or_skip!(true);
    let stores = [shared(schema.store().await), shared(schema.store().await)];
    stores[0]
        .create_execution(conformance::new_execution("follow-1", "follow"))
        .await
        .unwrap();
    let mut writers = Vec::new();
    for (which, store) in stores.iter().enumerate() {
        let store = Arc::clone(store);
        writers.push(tokio::spawn(async move {
            for line in 0..LINES {
                let chunk = LogChunk {
                    worker: format!("root/w/{which}"),
                    step: "s".to_owned(),
                    data: format!("{which}:{line}\n").into_bytes(),
                };
                store
                    .append_logs("follow-1", std::slice::from_ref(&chunk))
                    .await
                    .unwrap();
            }
        }));
    }
    let reader = Arc::clone(&stores[0]);
    let mut followed: Vec<LogChunk> = Vec::new();
    while followed.len() < 2 * LINES {
        let filter = LogFilter {
            skip: followed.len() as u64,
            limit: Some(7),
            ..LogFilter::default()
        };
        followed.extend(reader.logs("follow-1", &filter).await.unwrap());
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let all = reader
        .logs("follow-1", &LogFilter::default())
        .await
        .unwrap();
    assert_eq!(followed, all, "the follower read what a full read gives");
    for which in 0..2 {
        let lines: Vec<String> = all
            .iter()
            .filter(|chunk| chunk.worker == format!("root/w/{which}"))
            .map(|chunk| String::from_utf8_lossy(&chunk.data).into_owned())
            .collect();
        let expected: Vec<String> = (0..LINES).map(|line| format!("{which}:{line}\n")).collect();
        assert_eq!(lines, expected);
    }
}

/// An owner that keeps beating keeps its executions: no other store recovers or claims them.
/// Once it stops, another store claims them (status kept), and they leave the first owner's
/// heartbeat. A store never counts its own executions as abandoned, however old their beat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_owners_executions_are_left_alone_until_its_heartbeat_stops() {
    let schema = schema_or_skip!(true);
    let first = schema.short_lived().await;
    let second = schema.short_lived().await;
    assert_ne!(first.owner(), second.owner());
    assert_eq!(first.heartbeat_interval(), SHORT / 3);
    first
        .create_execution(conformance::new_execution("live-1", "live"))
        .await
        .unwrap();
    first.update_status("live-1", running()).await.unwrap();
    assert_eq!(
        second.claim_abandoned().await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        second.recover_abandoned().await.unwrap(),
        Vec::<String>::new()
    );
    // Beating for twice the timeout keeps it alive.
    let beats = 2 * SHORT.as_millis() / first.heartbeat_interval().as_millis();
    for _ in 0..beats {
        tokio::time::sleep(first.heartbeat_interval()).await;
        assert_eq!(first.heartbeat().await.unwrap(), ["live-1"]);
    }
    assert_eq!(
        second.claim_abandoned().await.unwrap(),
        Vec::<String>::new()
    );

    // The first owner stops beating: its own view never counts it abandoned, the second's does.
    tokio::time::sleep(SHORT + Duration::from_millis(300)).await;
    assert_eq!(first.claim_abandoned().await.unwrap(), Vec::<String>::new());
    assert_eq!(
        first.recover_abandoned().await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(second.claim_abandoned().await.unwrap(), ["live-1"]);
    let claimed = second.get_execution("live-1").await.unwrap();
    assert_eq!(
        claimed.status,
        ExecutionStatus::Running,
        "claiming keeps it"
    );
    assert_eq!(
        first.heartbeat().await.unwrap(),
        Vec::<String>::new(),
        "the first owner's beat no longer covers it"
    );
    assert_eq!(second.heartbeat().await.unwrap(), ["live-1"]);
    // Freshly claimed, it is alive again for everyone else.
    let third = schema.short_lived().await;
    assert_eq!(third.claim_abandoned().await.unwrap(), Vec::<String>::new());

    let raw = schema.raw().await;
    let (owner, seen): (Option<String>, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT owner, owner_seen_at FROM executions WHERE id = 'live-1'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(owner.as_deref(), Some(second.owner()));
    assert!(seen.is_some());
    raw.close().await;
}

/// Rows without an owner (written by hand, or by a tool that knows no heartbeat) count as
/// abandoned at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_without_an_owner_are_abandoned() {
    let schema = schema_or_skip!(true);
    let store = schema.store().await;
    store
        .create_execution(conformance::new_execution("orphan-1", "orphan"))
        .await
        .unwrap();
    let raw = schema.raw().await;
    sqlx::query("UPDATE executions SET owner = NULL, owner_seen_at = NULL")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let other = schema.store().await;
    assert_eq!(other.recover_abandoned().await.unwrap(), ["orphan-1"]);
    let record = other.get_execution("orphan-1").await.unwrap();
    assert_eq!(record.status, ExecutionStatus::Aborted);
    assert!(record.finished_at.is_some());
    assert!(
        record
            .message
            .as_deref()
            .unwrap_or("")
            .contains("abandoned"),
        "{record:?}"
    );
}

/// Stores connecting at once to a schema that does not exist yet: one creates it and migrates,
/// the others wait and find it current; each migration is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_connecting_at_once_migrate_once() {
    let schema = schema_or_skip!(false);
    let connects: Vec<_> = (0..4)
        .map(|_| tokio::spawn(PostgresStore::connect_with(schema.options())))
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(connect.await.unwrap().unwrap());
    }
    let raw = schema.raw().await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM testkube_migrations ORDER BY version")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(versions, [1]);
    raw.close().await;
    stores[3]
        .create_execution(conformance::new_execution("m-1", "m"))
        .await
        .unwrap();
    let again = schema.store().await;
    assert_eq!(again.get_execution("m-1").await.unwrap().number, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_a_newer_version_is_refused() {
    let schema = schema_or_skip!(true);
    schema.store().await.close().await;
    let raw = schema.raw().await;
    sqlx::query("INSERT INTO testkube_migrations (version) VALUES (999)")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let err = PostgresStore::connect_with(schema.options())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("999"), "{message}");
    assert!(message.contains("newer testkube"), "{message}");
    assert!(message.contains(&schema.name), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_value_names_its_column() {
    let schema = schema_or_skip!(true);
    let store = schema.store().await;
    store
        .create_execution(conformance::new_execution("bad-1", "bad"))
        .await
        .unwrap();
    let raw = schema.raw().await;
    sqlx::query("UPDATE executions SET tags = '[1, 2]' WHERE id = 'bad-1'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let err = store.get_execution("bad-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("`tags`"), "{err}");
}

/// PostgreSQL's text cannot hold NUL: names, messages and outputs with one are stored with
/// U+FFFD instead of failing the write, and what was stored under such a name is found by it.
/// Log bytes and JSON documents keep their NULs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_nul_characters_is_stored() {
    let schema = schema_or_skip!(true);
    let store = schema.store().await;
    let mut new = conformance::new_execution("nul\0id", "nul\0flow");
    new.tags.insert("k".to_owned(), "v\0w".to_owned());
    let created = store.create_execution(new).await.unwrap();
    assert_eq!(created.number, 1);
    let read = store.get_execution("nul\0id").await.unwrap();
    assert_eq!(read.workflow, "nul\u{FFFD}flow");
    assert_eq!(read.tags["k"], "v\0w", "JSON keeps it");
    store
        .upsert_step(
            "nul\0id",
            StepRecord {
                worker: "root".to_owned(),
                step: "s\0".to_owned(),
                name: Some("a\0b".to_owned()),
                status: testkube_core::status::StepStatus::Passed,
                started_at: None,
                finished_at: None,
                attempt: u32::MAX,
                exit_code: Some(-1),
                message: Some("\0".to_owned()),
            },
        )
        .await
        .unwrap();
    let steps = store.steps("nul\0id").await.unwrap();
    assert_eq!(steps[0].name.as_deref(), Some("a\u{FFFD}b"));
    assert_eq!(steps[0].attempt, u32::MAX);
    store
        .record_outputs(
            "nul\0id",
            &[OutputRecord {
                worker: "root".to_owned(),
                step: "s".to_owned(),
                key: "k".to_owned(),
                value: "x\0y".to_owned(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        store.outputs("nul\0id").await.unwrap()[0].value,
        "x\u{FFFD}y"
    );
    let case = TestCaseRecord {
        worker: "root".to_owned(),
        suite: "s".to_owned(),
        class: None,
        name: "n\0".to_owned(),
        file: None,
        status: TestCaseStatus::Failed,
        duration_secs: Some(f64::MAX),
        message: Some("boom\0".to_owned()),
    };
    store.record_test_cases("nul\0id", &[case]).await.unwrap();
    let cases = store.test_cases("nul\0id").await.unwrap();
    assert_eq!(cases[0].message.as_deref(), Some("boom\u{FFFD}"));
    store
        .append_log("nul\0id", "root", "s", b"\0bytes\0")
        .await
        .unwrap();
    let logs = store.logs("nul\0id", &LogFilter::default()).await.unwrap();
    assert_eq!(logs[0].data, b"\0bytes\0");
}

/// Bad URLs, schema names and unreachable servers are errors that say where, never panics, and
/// never show the password. Needs no database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connections_are_open_errors_without_the_password() {
    let refused = PostgresStore::connect_with(
        PostgresOptions::new("postgres://app:hunter2@127.0.0.1:1/results").max_connections(0),
    )
    .await
    .unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, StoreError::Open { .. }), "{message}");
    assert!(message.contains("app:***@127.0.0.1:1/results"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let invalid = PostgresStore::connect("mysql://nope").await.unwrap_err();
    assert!(matches!(invalid, StoreError::Open { .. }), "{invalid}");

    for bad in ["Public", "a;drop table executions", "", "x y"] {
        let err = PostgresStore::connect_with(PostgresOptions::new(DEFAULT_URL).schema(bad))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid schema name"),
            "{bad}: {err}"
        );
    }
}
