//! Who runs an execution, when PostgreSQL is shared by processes on many machines.
//!
//! A process id means nothing on another machine, so an execution records its `owner`: the
//! identity of the [`PostgresStore`](super::PostgresStore) that created or claimed it (unique
//! per store instance: host, process id and a random part), and `owner_seen_at`: the database
//! time of that owner's last heartbeat ([`heartbeat`]). An unfinished execution is abandoned when
//! its owner's heartbeat is older than the store's timeout (by the database's clock, so the
//! machines' clocks never matter), or when it has no owner or heartbeat at all. A store never
//! counts its own executions as abandoned: it is alive.
//!
//! Taking over is safe when several processes do it at once: the rows are locked as they are
//! taken (`FOR UPDATE SKIP LOCKED`), so each abandoned execution goes to one of them, and a row
//! whose owner is writing its heartbeat at that moment is skipped (it is alive).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use testkube_core::status::ExecutionStatus;
use testkube_core::store::StoreError;

use super::rows::{backend, column, time};

/// The unfinished executions abandoned by their owners (not `me`), oldest first, locked for the
/// rest of the transaction. `$1` is `me`, `$2` the timeout, `$3` the finished statuses.
const ABANDONED: &str = "SELECT id FROM executions
    WHERE finished_at IS NULL AND status <> ALL($3)
        AND owner IS DISTINCT FROM $1
        AND (owner_seen_at IS NULL OR owner IS NULL OR owner_seen_at < now() - $2::interval)
    ORDER BY scheduled_at, id COLLATE \"C\"
    FOR UPDATE SKIP LOCKED";

/// A new owner identity: `HOST/PID/RANDOM`, unique per call (so per store instance) even for
/// stores of one process; the host and process id are there for people reading the table.
pub(super) fn new_owner() -> String {
    static INSTANCES: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    // std's hasher keys are random per process; the time and a counter make each call differ.
    let mut random = std::hash::RandomState::new().build_hasher();
    random.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    random.write_u64(INSTANCES.fetch_add(1, Ordering::Relaxed));
    random.write_u32(std::process::id());
    format!("{host}/{}/{:016x}", std::process::id(), random.finish())
}

fn finished_statuses() -> Vec<&'static str> {
    ExecutionStatus::ALL
        .into_iter()
        .filter(|status| status.is_finished())
        .map(ExecutionStatus::as_str)
        .collect()
}

/// Refreshes the heartbeat of `owner`'s unfinished executions; returns their ids.
pub(super) async fn heartbeat(pool: &PgPool, owner: &str) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = sqlx::query_scalar(
        "UPDATE executions SET owner_seen_at = now()
         WHERE owner = $1 AND finished_at IS NULL
         RETURNING id",
    )
    .bind(owner)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    ids.sort_unstable();
    Ok(ids)
}

/// Marks the abandoned executions `aborted` (and their unfinished steps); returns their ids.
pub(super) async fn recover(
    pool: &PgPool,
    owner: &str,
    timeout: Duration,
) -> Result<Vec<String>, StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let now = time(Utc::now());
    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH abandoned AS ({ABANDONED})
         UPDATE executions SET status = 'aborted', finished_at = $4,
             message = COALESCE(message,
                 'abandoned: the process running it stopped (no heartbeat from '
                     || COALESCE(owner, 'any owner') || ')')
         FROM abandoned WHERE executions.id = abandoned.id
         RETURNING executions.id"
    )))
    .bind(owner)
    .bind(timeout)
    .bind(finished_statuses())
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    sqlx::query(
        "UPDATE steps SET status = 'aborted', finished_at = COALESCE(finished_at, $2)
         WHERE execution_id = ANY($1) AND status IN ('queued', 'running', 'paused')",
    )
    .bind(&ids)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(ids)
}

/// Makes the abandoned executions `owner`'s, with a fresh heartbeat and their status kept;
/// returns their ids, oldest first.
pub(super) async fn claim(
    pool: &PgPool,
    owner: &str,
    timeout: Duration,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH abandoned AS ({ABANDONED})
         UPDATE executions SET owner = $1, owner_seen_at = now()
         FROM abandoned WHERE executions.id = abandoned.id
         RETURNING executions.id, executions.scheduled_at"
    )))
    .bind(owner)
    .bind(timeout)
    .bind(finished_statuses())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            let scheduled: DateTime<Utc> = column(row, "scheduled_at")?;
            Ok((scheduled, column::<_, String>(row, "id")?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // `RETURNING` keeps no order: oldest first, ids in byte order (as `COLLATE "C"`).
    claimed.sort();
    Ok(claimed.into_iter().map(|(_, id)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::new_owner;

    #[test]
    fn owners_differ_per_store_and_name_the_process() {
        let (a, b) = (new_owner(), new_owner());
        assert_ne!(a, b);
        assert!(a.contains(&format!("/{}/", std::process::id())), "{a}");
    }
}
