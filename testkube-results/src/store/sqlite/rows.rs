//! SQLite rows into records and values into what SQLite stores: times as
//! RFC 3339 text to the millisecond, JSON documents as text.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::SqliteRow;
use testkube_core::model::ExecutionResult;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{ExecutionRecord, StepRecord, StoreError};

use super::super::rows::{backend, column, corrupt, from_json, optional_json};

pub(super) const SELECT_EXECUTION: &str =
    "SELECT id, workflow, number, name, status, message, scheduled_at,
    started_at, finished_at, snapshot, config, tags, initialization, shard_durations
    FROM executions";

pub(super) fn execution_record(row: &SqliteRow) -> Result<ExecutionRecord, StoreError> {
    let number: i64 = column(row, "number")?;
    let status: String = column(row, "status")?;
    Ok(ExecutionRecord {
        id: column(row, "id")?,
        workflow: column(row, "workflow")?,
        number: u64::try_from(number).map_err(corrupt)?,
        name: column(row, "name")?,
        status: ExecutionStatus::from_str(&status).map_err(corrupt)?,
        message: column(row, "message")?,
        scheduled_at: parse_time(column(row, "scheduled_at")?)?,
        started_at: optional_time(row, "started_at")?,
        finished_at: optional_time(row, "finished_at")?,
        snapshot: from_json(row, "snapshot")?,
        config: from_json::<_, BTreeMap<_, _>>(row, "config")?,
        tags: from_json::<_, BTreeMap<_, _>>(row, "tags")?,
        shard_durations: optional_json(row, "shard_durations")?.unwrap_or_default(),
        result: ExecutionResult {
            initialization: optional_json(row, "initialization")?,
        },
    })
}

pub(super) fn step_record(row: &SqliteRow) -> Result<StepRecord, StoreError> {
    let status: String = column(row, "status")?;
    Ok(StepRecord {
        worker: column(row, "worker")?,
        step: column(row, "step")?,
        name: column(row, "name")?,
        status: StepStatus::from_str(&status).map_err(corrupt)?,
        started_at: optional_time(row, "started_at")?,
        finished_at: optional_time(row, "finished_at")?,
        attempt: column(row, "attempt")?,
        exit_code: column(row, "exit_code")?,
        message: column(row, "message")?,
    })
}

/// Fixed-width UTC with milliseconds, so text order is time order.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: String) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(&text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|err| StoreError::Corrupt(format!("time `{text}`: {err}")))
}

fn optional_time(row: &SqliteRow, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let text: Option<String> = column(row, name)?;
    text.map(parse_time).transpose()
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Backend(err.to_string()))
}

/// A write that names an unknown execution breaks a foreign key.
pub(super) fn missing(err: sqlx::Error, execution: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(execution.to_owned())
        }
        _ => backend(err),
    }
}
