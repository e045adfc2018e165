//! How fast the PostgreSQL store takes test-case results: rows per second
//! through `ResultStore::record_test_cases`, in batches of several sizes,
//! into a schema of its own (dropped at the end).
//!
//! `cargo bench -p testkube-results --bench pg_ingest` (PostgreSQL at
//! `TESTKUBE_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `ROWS` sets the rows per batch size, default 200000; `BATCHES` the batch
//! sizes, default `100,1000,10000`). Prints one line per
//! batch size: rows, seconds, rows/s.

use std::time::Instant;

use sqlx::Connection;
use testkube_core::store::{ResultStore, TestCaseRecord, TestCaseStatus};
use testkube_results::store::{PostgresOptions, PostgresStore, conformance};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let url = std::env::var("TESTKUBE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(200_000);
    let schema = format!("bench_ingest_{}", std::process::id());
    let store =
        match PostgresStore::connect_with(PostgresOptions::new(url.clone()).schema(schema.clone()))
            .await
        {
            Ok(store) => store,
            Err(err) => {
                eprintln!("skipped: PostgreSQL at {url} cannot be used: {err}");
                return;
            }
        };
    println!(
        "{:>8} {:>10} {:>9} {:>12}",
        "batch", "rows", "seconds", "rows/s"
    );
    let batches: Vec<usize> = std::env::var("BATCHES")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    for (index, batch) in batches.into_iter().enumerate() {
        let id = format!("ingest-{index}");
        store
            .create_execution(conformance::new_execution(&id, "ingest"))
            .await
            .expect("an execution");
        let cases: Vec<TestCaseRecord> = (0..batch).map(case).collect();
        let started = Instant::now();
        let mut written = 0;
        while written < rows {
            store
                .record_test_cases(&id, &cases)
                .await
                .expect("recorded");
            written += cases.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{batch:>8} {written:>10} {seconds:>9.2} {:>12.0}",
            written as f64 / seconds
        );
    }
    drop(store);
    if let Ok(mut connection) = sqlx::PgConnection::connect(&url).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut connection)
            .await;
    }
}

/// A realistic case: a pytest-style file, class and name, some failing with a message.
fn case(index: usize) -> TestCaseRecord {
    let failed = index.is_multiple_of(50);
    TestCaseRecord {
        worker: format!("root/tests/{}", index % 8),
        suite: "pytest".to_owned(),
        class: Some(format!("tests.test_module_{}.TestClass", index % 40)),
        name: format!("test_case_{index}[param-{}]", index % 7),
        file: Some(format!("tests/test_module_{}.py", index % 40)),
        status: if failed {
            TestCaseStatus::Failed
        } else {
            TestCaseStatus::Passed
        },
        duration_secs: Some((index % 1000) as f64 / 1000.0),
        message: failed.then(|| format!("AssertionError: expected {index} got {}", index + 1)),
    }
}
