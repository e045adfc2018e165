//! Which executions are abandoned: an execution records the process id of
//! the process that runs it (`owner_pid`); one whose process is gone is
//! either ended `aborted` (the CLI, at its next command) or taken over (a
//! restarted agent that continues it).

use std::str::FromStr;

use chrono::Utc;
use sqlx::{Sqlite, Transaction};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::StoreError;

use super::super::rows::{backend, column};
use super::{SqliteStore, time};

/// [`ResultStore::recover_abandoned`]: the unfinished executions of
/// processes that are gone, marked `aborted` with their open steps.
pub(super) async fn recover(store: &SqliteStore) -> Result<Vec<String>, StoreError> {
    let mut tx = store.write().await?;
    let now = time(Utc::now());
    let mut recovered = Vec::new();
    for id in abandoned(&mut tx).await? {
        sqlx::query(
            "UPDATE executions SET status = 'aborted', finished_at = ?,
                 message = COALESCE(message, 'abandoned: the process running it stopped')
             WHERE id = ?",
        )
        .bind(&now)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(
            "UPDATE steps SET status = 'aborted', finished_at = COALESCE(finished_at, ?)
             WHERE execution_id = ? AND status IN ('queued', 'running', 'paused')",
        )
        .bind(&now)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        recovered.push(id);
    }
    tx.commit().await.map_err(backend)?;
    Ok(recovered)
}

/// [`ResultStore::claim_abandoned`]: the unfinished executions of
/// processes that are gone, made this process's.
pub(super) async fn claim(store: &SqliteStore) -> Result<Vec<String>, StoreError> {
    let mut tx = store.write().await?;
    let mut claimed = Vec::new();
    for id in abandoned(&mut tx).await? {
        sqlx::query("UPDATE executions SET owner_pid = ? WHERE id = ?")
            .bind(i64::from(std::process::id()))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        claimed.push(id);
    }
    tx.commit().await.map_err(backend)?;
    Ok(claimed)
}

/// The unfinished executions whose process is gone, oldest first.
async fn abandoned(tx: &mut Transaction<'_, Sqlite>) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, status, owner_pid FROM executions WHERE finished_at IS NULL
         ORDER BY scheduled_at, id",
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
    let mut ids = Vec::new();
    for row in &rows {
        let status: String = column(row, "status")?;
        let owner: Option<i64> = column(row, "owner_pid")?;
        let finished = ExecutionStatus::from_str(&status).is_ok_and(ExecutionStatus::is_finished);
        if !finished && !owner.is_some_and(another_live_process) {
            ids.push(column(row, "id")?);
        }
    }
    Ok(ids)
}

/// Whether `pid` is a running process other than this one. Another live process may still be
/// writing its execution (two `testkube run` in one folder); this process only recovers before
/// it creates executions, so its own pid on a row means an earlier process that had the same pid.
#[cfg(unix)]
fn another_live_process(pid: i64) -> bool {
    if pid == i64::from(std::process::id()) {
        return false;
    }
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(err) => err == rustix::io::Errno::PERM,
    }
}

#[cfg(not(unix))]
fn another_live_process(_pid: i64) -> bool {
    false
}
