//! Reading test results back: one execution's test cases, and the latest duration of every test
//! item of a workflow (what the shard planner balances by).

use sqlx::PgPool;
use sqlx::postgres::PgRow;
use testkube_core::store::{ItemDuration, StoreError, TestCaseRecord};

use super::rows::{backend, text};

async fn rows_for(pool: &PgPool, sql: &'static str, key: &str) -> Result<Vec<PgRow>, StoreError> {
    sqlx::query(sql)
        .bind(text(key))
        .fetch_all(pool)
        .await
        .map_err(backend)
}

/// The test cases of `execution`, in the order they were recorded.
pub(super) async fn test_cases(
    pool: &PgPool,
    execution: &str,
) -> Result<Vec<TestCaseRecord>, StoreError> {
    let rows = rows_for(
        pool,
        "SELECT worker, suite, class, name, file, status, duration_secs, message
         FROM test_cases WHERE execution_id = $1 ORDER BY id",
        execution,
    )
    .await?;
    rows.iter().map(crate::store::rows::test_case).collect()
}

/// As the SQLite store: per case, the worker (of an execution) that recorded it last, every row
/// of the case from that worker summed (a report that lists a case twice ran it twice). Items
/// sort as SQLite sorts them (no file or class first, text in byte order, whatever the
/// database's collation), so shard plans agree across stores.
pub(super) async fn item_durations(
    pool: &PgPool,
    workflow: &str,
) -> Result<Vec<ItemDuration>, StoreError> {
    let rows = rows_for(
        pool,
        "SELECT cases.file, cases.class, cases.name,
             SUM(cases.duration_secs) AS duration_secs, executions.name AS execution
         FROM (
             SELECT file, class, name, duration_secs, execution_id, worker,
                 FIRST_VALUE(execution_id) OVER newest_first AS newest_execution,
                 FIRST_VALUE(worker) OVER newest_first AS newest_worker
             FROM test_cases
             WHERE workflow = $1 AND duration_secs IS NOT NULL AND status <> 'skipped'
             WINDOW newest_first AS (PARTITION BY file, class, name ORDER BY id DESC)
         ) AS cases
         JOIN executions ON executions.id = cases.execution_id
         WHERE cases.execution_id = cases.newest_execution
             AND cases.worker = cases.newest_worker
         GROUP BY cases.file, cases.class, cases.name, executions.name
         ORDER BY cases.file COLLATE \"C\" NULLS FIRST, cases.class COLLATE \"C\" NULLS FIRST,
             cases.name COLLATE \"C\"",
        workflow,
    )
    .await?;
    rows.iter().map(crate::store::rows::item_duration).collect()
}
