//! [`PostgresStore`]: the result store of a shared deployment, in PostgreSQL.
//!
//! The same behaviour as the SQLite store (both pass the `conformance` suite), for many processes
//! on many machines at once:
//!
//! - one connection pool per store ([`PostgresOptions::max_connections`], [`MAX_CONNECTIONS`] by
//!   default);
//! - the schema is brought up to date when a store connects, by versioned migrations that run
//!   once however many processes connect at the same time (see `schema.rs`);
//! - numbers per workflow come from a counter row updated in the transaction that inserts the
//!   execution, so two processes creating executions of one workflow never share a number;
//! - writes that belong together run in one transaction, and an execution's log appends are
//!   ordered by a lock of their own (see `logs.rs`);
//! - which executions were abandoned is told by heartbeats, not process ids (see
//!   `ownership.rs` and [`PostgresStore::heartbeat`]).
//!
//! Text columns cannot hold the NUL character in PostgreSQL: a NUL in a name, message or output
//! is stored as U+FFFD (the bytes of logs and the JSON documents are kept exactly).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection};
use testkube_core::model::{ExecutionResult, StepResult};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{
    ArtifactRecord, ExecutionFilter, ExecutionRecord, ItemDuration, LogChunk, LogFilter,
    NewExecution, OutputRecord, ResultStore, StatusUpdate, StepRecord, StoreError, TestCaseRecord,
};

mod history;
mod logs;
mod options;
mod ownership;
mod rows;
mod schema;

use crate::store::rows as shared;
pub use options::{ABANDON_AFTER, CONNECT_TIMEOUT, MAX_CONNECTIONS, PostgresOptions};
use rows::{
    SELECT_EXECUTION, backend, corrupt, execution_record, json, missing, optional_text, redacted,
    step_record, text, time,
};

/// The PostgreSQL [`ResultStore`]. Cheap to clone: clones share the connection pool and the
/// owner identity (they are one store).
///
/// # Heartbeats
///
/// Executions this store creates or claims are its own, and stay so while it calls
/// [`heartbeat`](Self::heartbeat) more often than the abandon timeout
/// ([`PostgresOptions::abandon_after`]). The store starts no task of its own: whoever runs
/// executions through it (the embedding program, today; the agent and the CLI when they use
/// this store) calls `heartbeat` every [`heartbeat_interval`](Self::heartbeat_interval):
///
/// ```no_run
/// # async fn example() -> Result<(), testkube_core::store::StoreError> {
/// use testkube_results::store::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://testkube@db/testkube").await?;
/// let beating = store.clone();
/// tokio::spawn(async move {
///     let mut every = tokio::time::interval(beating.heartbeat_interval());
///     loop {
///         every.tick().await;
///         if let Err(err) = beating.heartbeat().await {
///             eprintln!("result store heartbeat: {err}");
///         }
///     }
/// });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    owner: Arc<str>,
    abandon_after: Duration,
}

impl PostgresStore {
    /// Connects to `url` with the default [`PostgresOptions`] and brings the schema up to date.
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect_with`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects as `options` say and brings the schema up to date. One connection is opened at
    /// once (so an unreachable server fails here, within
    /// [`PostgresOptions::connect_timeout`]); the pool opens the others as they are needed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] (naming the URL without its password) when the URL or schema name
    /// is invalid, the server cannot be reached or refuses the login, a migration fails, or the
    /// schema was written by a newer version.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let location = match &options.schema {
            Some(schema) => format!("{} (schema {schema})", redacted(&options.url)),
            None => redacted(&options.url),
        };
        let open_error = |message: String| StoreError::Open {
            location: location.clone(),
            message,
        };
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|err| open_error(format!("invalid URL: {err}")))?
            .application_name("testkube");
        if let Some(schema) = &options.schema {
            if !schema::valid_schema(schema) {
                return Err(open_error(format!(
                    "invalid schema name `{schema}`: use lower-case letters, digits and `_`, \
                     not starting with a digit, at most 63 bytes"
                )));
            }
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // One connection first, directly: an unreachable server or a refused login fails here,
        // with its own message (the pool would retry a refused connection until its timeout);
        // the migrations run on it.
        let mut first = tokio::time::timeout(
            options.connect_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .map_err(|_| {
            open_error(format!(
                "no answer within {} s",
                options.connect_timeout.as_secs_f64()
            ))
        })?
        .map_err(|err| open_error(err.to_string()))?;
        let migrated = schema::migrate(&mut first, options.schema.as_deref()).await;
        first.close().await.ok();
        migrated.map_err(|err| match err {
            StoreError::Backend(message) | StoreError::Corrupt(message) => open_error(message),
            other => other,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(connect);
        let owner = options
            .owner
            .as_deref()
            .map_or_else(ownership::new_owner, |owner| text(owner).into_owned());
        Ok(PostgresStore {
            pool,
            owner: owner.into(),
            abandon_after: options.abandon_after,
        })
    }

    /// This store's owner identity, as written on the executions it creates or claims.
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How often to call [`heartbeat`](Self::heartbeat): a third of the abandon timeout (at
    /// least a millisecond), so one late or lost beat never makes a live store's executions look
    /// abandoned.
    #[must_use]
    pub fn heartbeat_interval(&self) -> Duration {
        (self.abandon_after / 3).max(Duration::from_millis(1))
    }

    /// Tells the other stores that this one is alive: refreshes the heartbeat (`owner_seen_at`,
    /// the database's `now()`) of every unfinished execution this store owns. Returns their ids,
    /// sorted; an execution this store created that is missing from them was finished, or taken
    /// over by another store after this one missed its heartbeats (stop running it).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the database cannot be reached.
    pub async fn heartbeat(&self) -> Result<Vec<String>, StoreError> {
        ownership::heartbeat(&self.pool, &self.owner).await
    }

    /// Closes every connection (writes already returned are committed).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The rows `sql` (one parameter, `$1`) returns for `key`.
    async fn rows_for(&self, sql: &'static str, key: &str) -> Result<Vec<PgRow>, StoreError> {
        sqlx::query(sql)
            .bind(text(key))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    /// Fails with [`StoreError::NotFound`] unless an execution has id `id`.
    async fn require_execution(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        id: &str,
    ) -> Result<(), StoreError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM executions WHERE id = $1")
            .bind(text(id))
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }
}

#[async_trait]
impl ResultStore for PostgresStore {
    async fn create_execution(&self, new: NewExecution) -> Result<ExecutionRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The counter row stays locked until commit: concurrent creations of one workflow (from
        // any process) take their numbers one after another.
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO workflow_counters (workflow, last_number) VALUES ($1, 1)
             ON CONFLICT (workflow) DO UPDATE SET last_number = workflow_counters.last_number + 1
             RETURNING last_number",
        )
        .bind(text(&new.workflow))
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let name = new
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{number}", new.workflow));
        sqlx::query(
            "INSERT INTO executions (id, workflow, number, name, status, scheduled_at, snapshot,
                 config, tags, shard_durations, owner, owner_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8::json, $9::json, $10::json, $11, now())",
        )
        .bind(text(&new.id))
        .bind(text(&new.workflow))
        .bind(number)
        .bind(text(&name))
        .bind(new.status.as_str())
        .bind(time(new.scheduled_at))
        .bind(json(&new.snapshot)?)
        .bind(json(&new.config)?)
        .bind(json(&new.tags)?)
        .bind(
            (!new.shard_durations.is_empty())
                .then(|| json(&new.shard_durations))
                .transpose()?,
        )
        .bind(&*self.owner)
        .execute(&mut *tx)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db)
                if db.is_unique_violation() && db.constraint() == Some("executions_pkey") =>
            {
                StoreError::Duplicate(new.id.clone())
            }
            _ => backend(err),
        })?;
        tx.commit().await.map_err(backend)?;
        Ok(ExecutionRecord {
            id: new.id,
            workflow: new.workflow,
            number: u64::try_from(number).map_err(corrupt)?,
            name,
            status: new.status,
            message: None,
            scheduled_at: time(new.scheduled_at),
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
        let started = (update.status == ExecutionStatus::Running).then_some(at);
        let finished = update.status.is_finished().then_some(at);
        let result = sqlx::query(
            "UPDATE executions SET status = $1, message = COALESCE($2, message),
                 started_at = COALESCE(started_at, $3), finished_at = COALESCE($4, finished_at)
             WHERE id = $5",
        )
        .bind(update.status.as_str())
        .bind(optional_text(update.message.as_deref()))
        .bind(started)
        .bind(finished)
        .bind(text(id))
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
        let updated = sqlx::query("UPDATE executions SET tags = $1::json WHERE id = $2")
            .bind(json(tags)?)
            .bind(text(id))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn record_initialization(&self, id: &str, result: &StepResult) -> Result<(), StoreError> {
        let updated = sqlx::query("UPDATE executions SET initialization = $1::json WHERE id = $2")
            .bind(json(result)?)
            .bind(text(id))
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (execution_id, worker, step) DO UPDATE SET
                 name = excluded.name, status = excluded.status,
                 started_at = COALESCE(steps.started_at, excluded.started_at),
                 finished_at = excluded.finished_at, attempt = excluded.attempt,
                 exit_code = excluded.exit_code, message = excluded.message",
        )
        .bind(text(execution))
        .bind(text(&step.worker))
        .bind(text(&step.step))
        .bind(optional_text(step.name.as_deref()))
        .bind(step.status.as_str())
        .bind(step.started_at.map(time))
        .bind(step.finished_at.map(time))
        .bind(i64::from(step.attempt))
        .bind(step.exit_code)
        .bind(optional_text(step.message.as_deref()))
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
        let chunk = LogChunk {
            worker: worker.to_owned(),
            step: step.to_owned(),
            data: chunk.to_vec(),
        };
        logs::append(&self.pool, execution, std::slice::from_ref(&chunk)).await
    }

    async fn append_logs(&self, execution: &str, chunks: &[LogChunk]) -> Result<(), StoreError> {
        logs::append(&self.pool, execution, chunks).await
    }

    async fn record_outputs(
        &self,
        execution: &str,
        outputs: &[OutputRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One row at a time: a key written twice in one batch replaces its value, as a later
        // batch would (one `INSERT ... ON CONFLICT` cannot touch a row twice).
        for output in outputs {
            sqlx::query(
                "INSERT INTO outputs (execution_id, worker, step, key, value)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (execution_id, worker, step, key)
                     DO UPDATE SET value = excluded.value",
            )
            .bind(text(execution))
            .bind(text(&output.worker))
            .bind(text(&output.step))
            .bind(text(&output.key))
            .bind(text(&output.value))
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
        logs::record_test_cases(&self.pool, execution, cases).await
    }

    async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("{SELECT_EXECUTION} WHERE id = $1")))
            .bind(text(id))
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
            "{SELECT_EXECUTION} WHERE id = $1 OR name = $1
             ORDER BY (id = $1) DESC, seq DESC LIMIT 1"
        )))
        .bind(text(id_or_name))
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
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_EXECUTION}
             WHERE ($1::text IS NULL OR workflow = $1) AND ($2::text IS NULL OR status = $2)
             ORDER BY seq DESC LIMIT $3 OFFSET $4"
        )))
        .bind(optional_text(filter.workflow.as_deref()))
        .bind(filter.status.map(ExecutionStatus::as_str))
        .bind(filter.limit.map(i64::from))
        .bind(i64::try_from(filter.skip).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(execution_record).collect()
    }

    async fn count_executions(
        &self,
        workflow: Option<&str>,
    ) -> Result<BTreeMap<ExecutionStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM executions WHERE ($1::text IS NULL OR workflow = $1)
             GROUP BY status",
        )
        .bind(optional_text(workflow))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        super::rows::status_counts(rows)
    }

    async fn steps(&self, execution: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = self
            .rows_for(
                "SELECT worker, step, name, status, started_at, finished_at, attempt, exit_code,
                     message
                 FROM steps WHERE execution_id = $1 ORDER BY seq",
                execution,
            )
            .await?;
        rows.iter().map(step_record).collect()
    }

    async fn logs(&self, execution: &str, filter: &LogFilter) -> Result<Vec<LogChunk>, StoreError> {
        logs::read(&self.pool, execution, filter).await
    }

    async fn outputs(&self, execution: &str) -> Result<Vec<OutputRecord>, StoreError> {
        let rows = self
            .rows_for(
                "SELECT worker, step, key, value FROM outputs WHERE execution_id = $1 ORDER BY seq",
                execution,
            )
            .await?;
        rows.iter().map(shared::output).collect()
    }

    async fn test_cases(&self, execution: &str) -> Result<Vec<TestCaseRecord>, StoreError> {
        history::test_cases(&self.pool, execution).await
    }

    async fn record_artifacts(
        &self,
        execution: &str,
        artifacts: &[ArtifactRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        Self::require_execution(&mut tx, execution).await?;
        for artifact in artifacts {
            sqlx::query(
                "INSERT INTO artifacts (execution_id, worker, step, path, location, size)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (execution_id, worker, step, path) DO UPDATE SET
                     location = excluded.location, size = excluded.size",
            )
            .bind(text(execution))
            .bind(text(&artifact.worker))
            .bind(text(&artifact.step))
            .bind(text(&artifact.path))
            .bind(text(&artifact.location))
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
                 WHERE execution_id = $1 ORDER BY seq",
                execution,
            )
            .await?;
        rows.iter().map(shared::artifact).collect()
    }

    async fn item_durations(&self, workflow: &str) -> Result<Vec<ItemDuration>, StoreError> {
        history::item_durations(&self.pool, workflow).await
    }

    async fn recover_abandoned(&self) -> Result<Vec<String>, StoreError> {
        ownership::recover(&self.pool, &self.owner, self.abandon_after).await
    }

    async fn claim_abandoned(&self) -> Result<Vec<String>, StoreError> {
        ownership::claim(&self.pool, &self.owner, self.abandon_after).await
    }
}
