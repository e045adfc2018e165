//! What earlier runs of a workflow say about its items: the latest duration
//! of each test case, for balancing shards.

use testkube_core::store::{ItemDuration, StoreError};

use super::SqliteStore;
use crate::store::rows::item_duration;

/// [`ResultStore::item_durations`](testkube_core::store::ResultStore::item_durations).
pub(super) async fn item_durations(
    store: &SqliteStore,
    workflow: &str,
) -> Result<Vec<ItemDuration>, StoreError> {
    // Per case, the worker (of an execution) that recorded it last; every
    // row of the case from that worker counts, since a report that lists
    // a case twice ran it twice (parameterized cases sharing a name,
    // reruns written as cases of their own).
    let rows = store
        .rows_for(
            "SELECT cases.file, cases.class, cases.name,
                 SUM(cases.duration_secs) AS duration_secs, executions.name AS execution
             FROM (
                 SELECT file, class, name, duration_secs, execution_id, worker,
                     FIRST_VALUE(execution_id) OVER newest_first AS newest_execution,
                     FIRST_VALUE(worker) OVER newest_first AS newest_worker
                 FROM test_cases
                 WHERE workflow = ? AND duration_secs IS NOT NULL AND status <> 'skipped'
                 WINDOW newest_first AS (PARTITION BY file, class, name ORDER BY id DESC)
             ) AS cases
             JOIN executions ON executions.id = cases.execution_id
             WHERE cases.execution_id = cases.newest_execution
                 AND cases.worker = cases.newest_worker
             GROUP BY cases.file, cases.class, cases.name
             ORDER BY cases.file, cases.class, cases.name",
            workflow,
        )
        .await?;
    rows.iter().map(item_duration).collect()
}
