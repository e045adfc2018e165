//! The SQLite schema as versioned migrations, applied in order at open time.
//!
//! Each entry runs once, in its own transaction, and records its version in
//! `schema_migrations`; a store written by a newer version (a version we do not know) is
//! refused rather than misread. Never edit a released migration: add the next one.

/// `(version, SQL)`, in order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4)];

/// Executions, steps, logs, outputs and test cases, with the indexes history queries need.
const V1: &str = r"
CREATE TABLE workflow_counters (
    workflow    TEXT PRIMARY KEY,
    last_number INTEGER NOT NULL
);
CREATE TABLE executions (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    number       INTEGER NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    message      TEXT,
    scheduled_at TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    snapshot     TEXT NOT NULL,
    config       TEXT NOT NULL,
    tags         TEXT NOT NULL,
    owner_pid    INTEGER,
    UNIQUE (workflow, number)
);
-- per workflow over time (rowid is creation order)
CREATE INDEX executions_by_workflow ON executions (workflow);
CREATE INDEX executions_by_status ON executions (status);
CREATE INDEX executions_by_time ON executions (scheduled_at);
CREATE TABLE steps (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    name         TEXT,
    status       TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    attempt      INTEGER NOT NULL,
    exit_code    INTEGER,
    message      TEXT,
    PRIMARY KEY (execution_id, worker, step)
);
CREATE TABLE logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, id);
CREATE TABLE outputs (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (execution_id, worker, step, key)
);
CREATE TABLE test_cases (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id  TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    workflow      TEXT NOT NULL,
    worker        TEXT NOT NULL,
    suite         TEXT NOT NULL,
    class         TEXT,
    name          TEXT NOT NULL,
    file          TEXT,
    status        TEXT NOT NULL,
    duration_secs REAL,
    message       TEXT
);
CREATE INDEX test_cases_by_execution ON test_cases (execution_id, id);
-- per test over time (and the latest duration per item for balancing)
CREATE INDEX test_cases_by_test ON test_cases (workflow, file, class, name, id);
";

/// Artifacts, lookups by name, and the history indexes: one test over time (by suite, class and
/// name, the way reports without files identify a case) and one workflow over time.
const V2: &str = r"
CREATE TABLE artifacts (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    worker       TEXT NOT NULL,
    step         TEXT NOT NULL,
    path         TEXT NOT NULL,
    location     TEXT NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (execution_id, worker, step, path)
);
-- `testkube get execution local-smoke-3`
CREATE INDEX executions_by_name ON executions (name);
-- per workflow over time
CREATE INDEX executions_by_workflow_time ON executions (workflow, scheduled_at);
-- per test over time, for reports that name no file
CREATE INDEX test_cases_by_case ON test_cases (workflow, suite, class, name, id);
";

/// `result.initialization` of each execution, as JSON (`TestWorkflowStepResult`).
const V3: &str = r"
ALTER TABLE executions ADD COLUMN initialization TEXT;
";

/// The item durations a run's shards were split with, as a column of their own (JSON object
/// item → seconds). Earlier versions kept them in the snapshot under `x-testkube-durations`;
/// those rows move over here, and the key leaves the snapshot (which is the workflow again).
const V4: &str = r#"
ALTER TABLE executions ADD COLUMN shard_durations TEXT;
UPDATE executions
    SET shard_durations = json_extract(snapshot, '$."x-testkube-durations"'),
        snapshot = json_remove(snapshot, '$."x-testkube-durations"')
    WHERE json_valid(snapshot)
        AND json_type(snapshot, '$."x-testkube-durations"') = 'object';
"#;
