//! Log chunks and test cases: the two things written in bulk, as arrays bound to one `INSERT`
//! per batch (`UNNEST ... WITH ORDINALITY`, so rows get their ids in slice order), under a
//! per-execution lock.
//!
//! Why the lock: ids come from a sequence, and two transactions appending to one execution at
//! once could take ids in one order and commit in the other; a follower reading with `skip` in
//! between would then miss a chunk or read one twice. A transaction-level advisory lock keyed by
//! the execution serializes its appends (the ids are taken and committed under it), while
//! other executions append in parallel.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Transaction};
use testkube_core::store::{LogChunk, LogFilter, MAX_LOG_CHUNK, StoreError, TestCaseRecord};

use super::rows::{backend, column, missing, optional_text, text};

/// The first argument of the advisory lock that orders an execution's log appends.
const LOG_LOCK: i32 = 0x746b_0002;
/// The first argument of the advisory lock that orders an execution's test-case batches.
const CASES_LOCK: i32 = 0x746b_0003;

/// At most this many bytes of log data per `INSERT`: a batch of a busy step's output is a few
/// statements, never one message of hundreds of megabytes.
const LOG_BYTES_PER_INSERT: usize = 8 * 1024 * 1024;

/// Test cases per `INSERT` (each is one element of eight arrays).
const CASES_PER_INSERT: usize = 5_000;

/// Starts a write to `execution`'s rows of one kind (`lock`): takes the lock and fails with
/// [`StoreError::NotFound`] unless the execution exists (so an empty batch for an unknown
/// execution is refused like a full one). Returns the execution's workflow.
async fn begin_append(
    pool: &PgPool,
    lock: i32,
    execution: &str,
) -> Result<(Transaction<'static, Postgres>, String), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(lock)
        .bind(text(execution))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let workflow: Option<String> =
        sqlx::query_scalar("SELECT workflow FROM executions WHERE id = $1")
            .bind(text(execution))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let workflow = workflow.ok_or_else(|| StoreError::NotFound(execution.to_owned()))?;
    Ok((tx, workflow))
}

/// Appends `chunks` to `execution`'s log, all or none, in order, each longer than
/// [`MAX_LOG_CHUNK`] as several rows (an empty one as none).
pub(super) async fn append(
    pool: &PgPool,
    execution: &str,
    chunks: &[LogChunk],
) -> Result<(), StoreError> {
    let (mut tx, _) = begin_append(pool, LOG_LOCK, execution).await?;
    let mut batch = LogBatch::default();
    for chunk in chunks {
        for piece in chunk.data.chunks(MAX_LOG_CHUNK) {
            if batch.bytes + piece.len() > LOG_BYTES_PER_INSERT && !batch.data.is_empty() {
                batch.insert(&mut tx, execution).await?;
            }
            batch.push(&chunk.worker, &chunk.step, piece);
        }
    }
    if !batch.data.is_empty() {
        batch.insert(&mut tx, execution).await?;
    }
    tx.commit().await.map_err(backend)
}

/// Rows waiting for one `INSERT`.
#[derive(Default)]
struct LogBatch<'a> {
    workers: Vec<String>,
    steps: Vec<String>,
    data: Vec<&'a [u8]>,
    bytes: usize,
}

impl<'a> LogBatch<'a> {
    fn push(&mut self, worker: &str, step: &str, piece: &'a [u8]) {
        self.workers.push(text(worker).into_owned());
        self.steps.push(text(step).into_owned());
        self.data.push(piece);
        self.bytes += piece.len();
    }

    async fn insert(
        &mut self,
        tx: &mut Transaction<'static, Postgres>,
        execution: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO logs (execution_id, worker, step, data)
             SELECT $1, piece.worker, piece.step, piece.data
             FROM UNNEST($2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY
                 AS piece (worker, step, data, position)
             ORDER BY piece.position",
        )
        .bind(text(execution))
        .bind(std::mem::take(&mut self.workers))
        .bind(std::mem::take(&mut self.steps))
        .bind(std::mem::take(&mut self.data))
        .execute(&mut **tx)
        .await
        .map_err(|err| missing(err, execution))?;
        self.bytes = 0;
        Ok(())
    }
}

/// The chunks of `execution`'s log that `filter` selects, in append order.
pub(super) async fn read(
    pool: &PgPool,
    execution: &str,
    filter: &LogFilter,
) -> Result<Vec<LogChunk>, StoreError> {
    let rows = sqlx::query(
        "SELECT worker, step, data FROM logs
         WHERE execution_id = $1 AND ($2::text IS NULL OR step = $2)
             AND ($3::text IS NULL OR worker = $3)
         ORDER BY id LIMIT $5 OFFSET $4",
    )
    .bind(text(execution))
    .bind(optional_text(filter.step.as_deref()))
    .bind(optional_text(filter.worker.as_deref()))
    .bind(i64::try_from(filter.skip).unwrap_or(i64::MAX))
    // No limit is `LIMIT NULL`, which PostgreSQL reads as `LIMIT ALL`.
    .bind(
        filter
            .limit
            .map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)),
    )
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    rows.iter().map(log_chunk).collect()
}

fn log_chunk(row: &PgRow) -> Result<LogChunk, StoreError> {
    Ok(LogChunk {
        worker: column(row, "worker")?,
        step: column(row, "step")?,
        data: column(row, "data")?,
    })
}

/// Records `cases` for `execution`, all or none, in order.
pub(super) async fn record_test_cases(
    pool: &PgPool,
    execution: &str,
    cases: &[TestCaseRecord],
) -> Result<(), StoreError> {
    let (mut tx, workflow) = begin_append(pool, CASES_LOCK, execution).await?;
    for batch in cases.chunks(CASES_PER_INSERT) {
        let texts = |field: fn(&TestCaseRecord) -> &str| -> Vec<String> {
            batch
                .iter()
                .map(|case| text(field(case)).into_owned())
                .collect()
        };
        let optional = |field: fn(&TestCaseRecord) -> Option<&str>| -> Vec<Option<String>> {
            batch
                .iter()
                .map(|case| optional_text(field(case)))
                .collect()
        };
        sqlx::query(
            "INSERT INTO test_cases (execution_id, workflow, worker, suite, class, name, file,
                 status, duration_secs, message)
             SELECT $1, $2, c.worker, c.suite, c.class, c.name, c.file, c.status, c.duration_secs,
                 c.message
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                 $9::float8[], $10::text[]) WITH ORDINALITY
                 AS c (worker, suite, class, name, file, status, duration_secs, message, position)
             ORDER BY c.position",
        )
        .bind(text(execution))
        .bind(&workflow)
        .bind(texts(|case| &case.worker))
        .bind(texts(|case| &case.suite))
        .bind(optional(|case| case.class.as_deref()))
        .bind(texts(|case| &case.name))
        .bind(optional(|case| case.file.as_deref()))
        .bind(texts(|case| case.status.as_str()))
        .bind(
            batch
                .iter()
                .map(|case| case.duration_secs)
                .collect::<Vec<_>>(),
        )
        .bind(optional(|case| case.message.as_deref()))
        .execute(&mut *tx)
        .await
        .map_err(|err| missing(err, execution))?;
    }
    tx.commit().await.map_err(backend)
}
