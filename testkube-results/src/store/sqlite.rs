//! [`SqliteStore`]: the embedded result store, one SQLite file under `.testkube/`.
//!
//! WAL journal (readers never block the writer; a killed process loses nothing it committed),
//! `synchronous = NORMAL`, foreign keys on, and a long busy timeout so that several tasks and
//! processes can write at once. Writes that belong together run in one transaction that starts
//! with a write, so it takes the write lock at once and never deadlocks on a lock upgrade.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};
use testkube_core::model::{ExecutionResult, StepResult};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{
    ArtifactRecord, ExecutionFilter, ExecutionRecord, ItemDuration, LogChunk, LogFilter,
    MAX_LOG_CHUNK, NewExecution, OutputRecord, ResultStore, StatusUpdate, StepRecord, StoreError,
    TestCaseRecord,
};

use super::rows::{self as shared, backend, column};
use super::schema::MIGRATIONS;

mod history;
mod listing;
mod ownership;
mod rows;

use rows::{SELECT_EXECUTION, execution_record, json, missing, step_record, time};

/// Test cases per INSERT statement: 10 values each, well under SQLite's
/// limit of 32,766 bound values per statement.
const CASES_PER_INSERT: usize = 500;

/// The database's file name inside the home folder.
pub const DB_FILE: &str = "results.db";

/// Where the store lives by default: `$TESTKUBE_HOME/results.db`, else
/// `.testkube/results.db` in the current folder.
#[must_use]
pub fn default_path() -> PathBuf {
    std::env::var_os("TESTKUBE_HOME")
        .map_or_else(|| PathBuf::from(".testkube"), PathBuf::from)
        .join(DB_FILE)
}

/// The embedded SQLite [`ResultStore`]. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the store at `path` and brings its schema up
    /// to date.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] when the folder or file cannot be created or opened, or the file was
    /// written by a newer version.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            location: path.display().to_string(),
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| open_error(err.to_string()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|err| open_error(err.to_string()))?;
        migrate(&pool).await.map_err(|err| match err {
            StoreError::Backend(message) | StoreError::Corrupt(message) => open_error(message),
            other => other,
        })?;
        Ok(SqliteStore { pool })
    }

    /// Opens the store at [`default_path`].
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`].
    pub async fn open_default() -> Result<Self, StoreError> {
        Self::open(&default_path()).await
    }

    /// Closes every connection (pending writes are already committed).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The rows `sql` (one `?` parameter) returns for `key`.
    async fn rows_for(&self, sql: &'static str, key: &str) -> Result<Vec<SqliteRow>, StoreError> {
        sqlx::query(sql)
            .bind(key)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }
}

/// Stores `data` as rows of at most [`MAX_LOG_CHUNK`] bytes, in order: a reader pages through a
/// long log in bounded pieces, and no single row (or read of one) holds a whole step's output.
async fn insert_log(
    tx: &mut Transaction<'static, Sqlite>,
    execution: &str,
    worker: &str,
    step: &str,
    data: &[u8],
) -> Result<(), StoreError> {
    for piece in data.chunks(MAX_LOG_CHUNK) {
        sqlx::query("INSERT INTO logs (execution_id, worker, step, data) VALUES (?, ?, ?, ?)")
            .bind(execution)
            .bind(worker)
            .bind(step)
            .bind(piece)
            .execute(&mut **tx)
            .await
            .map_err(|err| missing(err, execution))?;
    }
    Ok(())
}

/// Fails with [`StoreError::NotFound`] unless `execution` exists: batch writes check first, so
/// an empty batch for an unknown execution is refused like a full one.
async fn require_execution(
    tx: &mut Transaction<'static, Sqlite>,
    execution: &str,
) -> Result<(), StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM executions WHERE id = ?")
        .bind(execution)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(execution.to_owned()))
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await
    .map_err(backend)?;
    let known = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    // The usual open finds the schema current: a plain read, no write lock per migration.
    if schema_version(pool, known).await? == known {
        return Ok(());
    }
    for (version, sql) in MIGRATIONS {
        // Checked again inside the write transaction: another process may be migrating too.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        if schema_version(&mut *tx, known).await? >= *version {
            continue;
        }
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(time(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
    }
    Ok(())
}

/// The schema version recorded in the file, refused when newer than `known` (this program's).
async fn schema_version<'c>(
    executor: impl sqlx::SqliteExecutor<'c>,
    known: i64,
) -> Result<i64, StoreError> {
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(executor)
            .await
            .map_err(backend)?;
    if current > known {
        return Err(StoreError::Corrupt(format!(
            "schema version {current} is newer than this program's {known}; \
             use a newer testkube, or move the file aside to start a new history"
        )));
    }
    Ok(current)
}

#[async_trait]
impl ResultStore for SqliteStore {
    async fn create_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError> {
        let mut tx = self.write().await?;
        let number: i64 = sqlx::query(
            "INSERT INTO workflow_counters (workflow, last_number) VALUES (?, 1)
             ON CONFLICT (workflow) DO UPDATE SET last_number = last_number + 1
             RETURNING last_number",
        )
        .bind(&new.workflow)
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(backend)?;
        let name = new
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{number}", new.workflow));
        sqlx::query(
            "INSERT INTO executions (id, workflow, number, name, status, scheduled_at, snapshot,
                 config, tags, owner_pid, shard_durations)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(&new.workflow)
        .bind(number)
        .bind(&name)
        .bind(new.status.as_str())
        .bind(time(new.scheduled_at))
        .bind(json(&new.snapshot)?)
        .bind(json(&new.config)?)
        .bind(json(&new.tags)?)
        .bind(i64::from(std::process::id()))
        .bind(
            (!new.shard_durations.is_empty())
                .then(|| json(&new.shard_durations))
                .transpose()?,
        )
        .execute(&mut *tx)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(new.id.clone())
            }
            _ => backend(err),
        })?;
        tx.commit().await.map_err(backend)?;
        Ok(ExecutionRecord {
            id: new.id,
            workflow: new.workflow,
            number: u64::try_from(number).unwrap_or_default(),
            name,
            status: new.status,
            message: None,
            scheduled_at: new.scheduled_at.trunc_subsecs(3),
            started_at: None,
            finished_at: None,
            snapshot: new.snapshot,
            config: new.config,
            tags: new.tags,
            shard_durations: new.shard_durations,
            result: ExecutionResult::default(),
        })
    }

    async fn update_status(&self, id: &str, update: StatusUpdate) -> Result<(), StoreError> {
        let at = time(update.at);
        let started = (update.status == ExecutionStatus::Running).then(|| at.clone());
        let finished = update.status.is_finished().then_some(at);
        let result = sqlx::query(
            "UPDATE executions SET status = ?, message = COALESCE(?, message),
                 started_at = COALESCE(started_at, ?), finished_at = COALESCE(?, finished_at)
             WHERE id = ?",
        )
        .bind(update.status.as_str())
        .bind(update.message)
        .bind(started)
        .bind(finished)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn update_tags(
        &self,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE executions SET tags = ? WHERE id = ?")
            .bind(json(tags)?)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn record_initialization(&self, id: &str, result: &StepResult) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE executions SET initialization = ? WHERE id = ?")
            .bind(json(result)?)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn upsert_step(&self, execution: &str, step: StepRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO steps (execution_id, worker, step, name, status, started_at, finished_at,
                 attempt, exit_code, message)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (execution_id, worker, step) DO UPDATE SET
                 name = excluded.name, status = excluded.status,
                 started_at = COALESCE(steps.started_at, excluded.started_at),
                 finished_at = excluded.finished_at, attempt = excluded.attempt,
                 exit_code = excluded.exit_code, message = excluded.message",
        )
        .bind(execution)
        .bind(&step.worker)
        .bind(&step.step)
        .bind(&step.name)
        .bind(step.status.as_str())
        .bind(step.started_at.map(time))
        .bind(step.finished_at.map(time))
        .bind(step.attempt)
        .bind(step.exit_code)
        .bind(&step.message)
        .execute(&self.pool)
        .await
        .map_err(|err| missing(err, execution))?;
        Ok(())
    }

    async fn append_log(
        &self,
        execution: &str,
        worker: &str,
        step: &str,
        chunk: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        require_execution(&mut tx, execution).await?;
        insert_log(&mut tx, execution, worker, step, chunk).await?;
        tx.commit().await.map_err(backend)
    }

    async fn append_logs(&self, execution: &str, chunks: &[LogChunk]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        require_execution(&mut tx, execution).await?;
        for chunk in chunks {
            insert_log(&mut tx, execution, &chunk.worker, &chunk.step, &chunk.data).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn record_artifacts(
        &self,
        execution: &str,
        artifacts: &[ArtifactRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        require_execution(&mut tx, execution).await?;
        for artifact in artifacts {
            sqlx::query(
                "INSERT INTO artifacts (execution_id, worker, step, path, location, size)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (execution_id, worker, step, path) DO UPDATE SET
                     location = excluded.location, size = excluded.size",
            )
            .bind(execution)
            .bind(&artifact.worker)
            .bind(&artifact.step)
            .bind(&artifact.path)
            .bind(&artifact.location)
            .bind(i64::try_from(artifact.size).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(|err| missing(err, execution))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn artifacts(&self, execution: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows = self
            .rows_for(
                "SELECT worker, step, path, location, size FROM artifacts
             WHERE execution_id = ? ORDER BY rowid",
                execution,
            )
            .await?;
        rows.iter().map(shared::artifact).collect()
    }

    async fn record_outputs(
        &self,
        execution: &str,
        outputs: &[OutputRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for output in outputs {
            sqlx::query(
                "INSERT INTO outputs (execution_id, worker, step, key, value) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (execution_id, worker, step, key) DO UPDATE SET value = excluded.value",
            )
            .bind(execution)
            .bind(&output.worker)
            .bind(&output.step)
            .bind(&output.key)
            .bind(&output.value)
            .execute(&mut *tx)
            .await
            .map_err(|err| missing(err, execution))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn record_test_cases(
        &self,
        execution: &str,
        cases: &[TestCaseRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let workflow: Option<String> =
            sqlx::query_scalar("SELECT workflow FROM executions WHERE id = ?")
                .bind(execution)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let workflow = workflow.ok_or_else(|| StoreError::NotFound(execution.to_owned()))?;
        // Many rows per statement: each statement is a round trip to
        // SQLite's worker thread, which cost more than the insert itself.
        for chunk in cases.chunks(CASES_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO test_cases (execution_id, workflow, worker, suite, class, name, file,
                     status, duration_secs, message) ",
            );
            insert.push_values(chunk, |mut row, case| {
                row.push_bind(execution.to_owned())
                    .push_bind(workflow.clone())
                    .push_bind(case.worker.clone())
                    .push_bind(case.suite.clone())
                    .push_bind(case.class.clone())
                    .push_bind(case.name.clone())
                    .push_bind(case.file.clone())
                    .push_bind(case.status.as_str())
                    .push_bind(case.duration_secs)
                    .push_bind(case.message.clone());
            });
            insert.build().execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("{SELECT_EXECUTION} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map_or_else(
            || Err(StoreError::NotFound(id.to_owned())),
            |row| execution_record(&row),
        )
    }

    async fn find_execution(&self, id_or_name: &str) -> Result<ExecutionRecord, StoreError> {
        // An id wins over a name; among executions sharing a name, the newest.
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_EXECUTION} WHERE id = ?1 OR name = ?1
             ORDER BY (id = ?1) DESC, rowid DESC LIMIT 1"
        )))
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map_or_else(
            || Err(StoreError::NotFound(id_or_name.to_owned())),
            |row| execution_record(&row),
        )
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        listing::list(self, filter).await
    }

    async fn count_executions(
        &self,
        workflow: Option<&str>,
    ) -> Result<BTreeMap<ExecutionStatus, u64>, StoreError> {
        listing::count(self, workflow).await
    }

    async fn steps(&self, execution: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = self
            .rows_for(
                "SELECT worker, step, name, status, started_at, finished_at, attempt, exit_code,
                 message
             FROM steps WHERE execution_id = ? ORDER BY rowid",
                execution,
            )
            .await?;
        rows.iter().map(step_record).collect()
    }

    async fn logs(&self, execution: &str, filter: &LogFilter) -> Result<Vec<LogChunk>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker, step, data FROM logs
             WHERE execution_id = ?1 AND (?2 IS NULL OR step = ?2) AND (?3 IS NULL OR worker = ?3)
             ORDER BY id LIMIT ?5 OFFSET ?4",
        )
        .bind(execution)
        .bind(&filter.step)
        .bind(&filter.worker)
        .bind(i64::try_from(filter.skip).unwrap_or(i64::MAX))
        .bind(
            filter
                .limit
                .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX)),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(LogChunk {
                    worker: column(row, "worker")?,
                    step: column(row, "step")?,
                    data: column(row, "data")?,
                })
            })
            .collect()
    }

    async fn outputs(&self, execution: &str) -> Result<Vec<OutputRecord>, StoreError> {
        let rows = self
            .rows_for(
            "SELECT worker, step, key, value FROM outputs WHERE execution_id = ? ORDER BY rowid",
                execution,
            )
            .await?;
        rows.iter().map(shared::output).collect()
    }

    async fn test_cases(&self, execution: &str) -> Result<Vec<TestCaseRecord>, StoreError> {
        let rows = self
            .rows_for(
                "SELECT worker, suite, class, name, file, status, duration_secs, message
             FROM test_cases WHERE execution_id = ? ORDER BY id",
                execution,
            )
            .await?;
        rows.iter().map(shared::test_case).collect()
    }

    async fn item_durations(&self, workflow: &str) -> Result<Vec<ItemDuration>, StoreError> {
        history::item_durations(self, workflow).await
    }

    async fn recover_abandoned(&self) -> Result<Vec<String>, StoreError> {
        ownership::recover(self).await
    }

    async fn claim_abandoned(&self) -> Result<Vec<String>, StoreError> {
        ownership::claim(self).await
    }
}
