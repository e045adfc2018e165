//! Lists of executions: a page of them, newest first, and how many there
//! are in each status (what the API's totals read without the executions).

use std::collections::BTreeMap;

use sqlx::AssertSqlSafe;
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{ExecutionFilter, ExecutionRecord, StoreError};

use super::SqliteStore;
use super::rows::{SELECT_EXECUTION, execution_record};
use crate::store::rows::{backend, status_counts};

/// [`ResultStore::list_executions`](testkube_core::store::ResultStore::list_executions).
pub(super) async fn list(
    store: &SqliteStore,
    filter: &ExecutionFilter,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT_EXECUTION} WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR status = ?2)
         ORDER BY rowid DESC LIMIT ?3 OFFSET ?4"
    )))
    .bind(&filter.workflow)
    .bind(filter.status.map(ExecutionStatus::as_str))
    .bind(filter.limit.map_or(-1, i64::from))
    .bind(i64::try_from(filter.skip).unwrap_or(i64::MAX))
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    rows.iter().map(execution_record).collect()
}

/// [`ResultStore::count_executions`](testkube_core::store::ResultStore::count_executions).
pub(super) async fn count(
    store: &SqliteStore,
    workflow: Option<&str>,
) -> Result<BTreeMap<ExecutionStatus, u64>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM executions WHERE (?1 IS NULL OR workflow = ?1)
         GROUP BY status",
    )
    .bind(workflow)
    .fetch_all(&store.pool)
    .await
    .map_err(backend)?;
    status_counts(rows)
}
