//! The PostgreSQL schema as versioned migrations, applied in order when a store connects.
//!
//! All pending migrations run in one transaction that first takes a transaction-level advisory
//! lock on the schema, so two processes connecting at once apply each migration once (the second
//! waits, then finds the schema current) and a failed migration leaves nothing half-done
//! (PostgreSQL's DDL is transactional). Each applied version is a row of `testkube_migrations`
//! (not `schema_migrations`, which other tools sharing a database use); a schema written by a
//! newer version (one we do not know) is refused rather than misread. Never edit a released
//! migration: add the next one. The schema and the tables are created only when missing, so once
//! a schema is current, a user allowed only to use its tables can connect.
//!
//! The tables are those of the SQLite store (`super::super::schema`), in PostgreSQL's types:
//! `TIMESTAMPTZ` times (kept to the millisecond by the store), `JSON` documents (the text as
//! written, key order included, unlike `JSONB`), `BYTEA` log data, and an identity column where
//! SQLite's `rowid` gives the order things were first recorded in. Ownership differs: instead of
//! a process id, an execution has an `owner` (the identity of the store instance that created or
//! claimed it) and `owner_seen_at` (the database time of that owner's last heartbeat).

use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::rows::backend;
use testkube_core::store::StoreError;

/// `(version, SQL)`, in order.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(1, V1)];

/// The first argument of the advisory lock taken while migrating (the second is the schema's
/// hash): a class of its own, so it never waits on the store's other locks.
const MIGRATION_LOCK: i32 = 0x746b_0001;

/// Executions, steps, logs, outputs, test cases and artifacts, with the indexes lookups and
/// history queries need.
const V1: &str = r"
CREATE TABLE workflow_counters (
    workflow    TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL
);
CREATE TABLE executions (
    id              TEXT PRIMARY KEY,
    -- creation order: `newest first` and `the newest of a name`
    seq             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    workflow        TEXT NOT NULL,
    number          BIGINT NOT NULL,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    message         TEXT,
    scheduled_at    TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    snapshot        JSON NOT NULL,
    config          JSON NOT NULL,
    tags            JSON NOT NULL,
    shard_durations JSON,
    initialization  JSON,
    -- the store instance that created or claimed it, and the database time of its last heartbeat
    owner           TEXT,
    owner_seen_at   TIMESTAMPTZ,
    UNIQUE (workflow, number)
);
CREATE INDEX executions_by_workflow ON executions (workflow, seq);
CREATE INDEX executions_by_status ON executions (status, seq);
-- `testkube get execution local-smoke-3`
CREATE INDEX executions_by_name ON executions (name, seq);
-- per workflow over time
CREATE INDEX executions_by_workflow_time ON executions (workflow, scheduled_at);
-- the unfinished ones, for heartbeats and for finding the abandoned ones
CREATE INDEX executions_unfinished ON executions (owner, owner_seen_at) WHERE finished_at IS NULL;
CREATE TABLE steps (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    name         TEXT,
    status       TEXT NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    attempt      BIGINT NOT NULL,
    exit_code    INTEGER,
    message      TEXT,
    PRIMARY KEY (execution_id, worker, step)
);
CREATE INDEX steps_by_execution ON steps (execution_id, seq);
CREATE TABLE logs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    data         BYTEA NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, id);
CREATE TABLE outputs (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    key          TEXT NOT NULL,
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    value        TEXT NOT NULL,
    PRIMARY KEY (execution_id, worker, step, key)
);
CREATE INDEX outputs_by_execution ON outputs (execution_id, seq);
CREATE TABLE test_cases (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id  TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    workflow      TEXT NOT NULL,
    worker        TEXT NOT NULL,
    suite         TEXT NOT NULL,
    class         TEXT,
    name          TEXT NOT NULL,
    file          TEXT,
    status        TEXT NOT NULL,
    duration_secs DOUBLE PRECISION,
    message       TEXT
);
CREATE INDEX test_cases_by_execution ON test_cases (execution_id, id);
-- per test over time (and the latest duration per item for balancing)
CREATE INDEX test_cases_by_test ON test_cases (workflow, file, class, name, id);
-- per test over time, for reports that name no file
CREATE INDEX test_cases_by_case ON test_cases (workflow, suite, class, name, id);
CREATE TABLE artifacts (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    path         TEXT NOT NULL,
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    location     TEXT NOT NULL,
    size         BIGINT NOT NULL,
    PRIMARY KEY (execution_id, worker, step, path)
);
CREATE INDEX artifacts_by_execution ON artifacts (execution_id, seq);
";

/// Brings the schema up to date: creates `schema` first when one is given (the connections'
/// `search_path` names it), then applies every migration not yet recorded.
pub(super) async fn migrate(
    connection: &mut PgConnection,
    schema: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = connection.begin().await.map_err(backend)?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1,
             hashtext(COALESCE($2::text, current_schema()::text, '')))",
    )
    .bind(MIGRATION_LOCK)
    .bind(schema)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if let Some(schema) = schema {
        // Created only when missing: `CREATE SCHEMA IF NOT EXISTS` would need the right to create
        // schemas even when this one exists, and a store's user may have no more than the rights
        // to use it.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                .bind(schema)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if exists.is_none() {
            // The name was checked to be a plain lower-case identifier (see `valid_schema`).
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
    }
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('testkube_migrations')::text")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
    if exists.is_none() {
        sqlx::raw_sql(
            "CREATE TABLE testkube_migrations (
                version    BIGINT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    let known = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    let current = schema_version(&mut tx, known).await?;
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(|err| StoreError::Backend(format!("migration {version}: {err}")))?;
        sqlx::query("INSERT INTO testkube_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

/// The schema version recorded in the database, refused when newer than `known` (this
/// program's).
async fn schema_version(tx: &mut Transaction<'_, Postgres>, known: i64) -> Result<i64, StoreError> {
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM testkube_migrations")
            .fetch_one(&mut **tx)
            .await
            .map_err(backend)?;
    if current > known {
        return Err(StoreError::Corrupt(format!(
            "schema version {current} is newer than this program's {known}; \
             use a newer testkube, or another database or schema to start a new history"
        )));
    }
    Ok(current)
}

/// Whether `name` can be a schema name as is: a plain lower-case identifier (what PostgreSQL
/// folds an unquoted name to), so it needs no quoting in SQL or in `search_path`.
pub(super) fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["testkube", "test_1a2b", "_x"] {
            assert!(valid_schema(good), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "1abc",
            "Test",
            "a-b",
            "a b",
            "a;drop",
            "\"q\"",
            "é",
            long.as_str(),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
