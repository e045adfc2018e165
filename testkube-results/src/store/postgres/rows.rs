//! Reading rows back into records, and the conversions every query shares: times to the
//! millisecond, JSON documents, text without NUL characters, and database errors as
//! [`StoreError`]s.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::PgRow;
use testkube_core::model::ExecutionResult;
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::{ExecutionRecord, StepRecord, StoreError};

pub(super) use crate::store::rows::{backend, column, corrupt};
use crate::store::rows::{from_json, optional_json};

/// The columns [`execution_record`] reads, JSON as text (as written).
pub(super) const SELECT_EXECUTION: &str = "SELECT id, workflow, number, name, status, message,
    scheduled_at, started_at, finished_at, snapshot::text AS snapshot, config::text AS config,
    tags::text AS tags, initialization::text AS initialization,
    shard_durations::text AS shard_durations
    FROM executions";

pub(super) fn execution_record(row: &PgRow) -> Result<ExecutionRecord, StoreError> {
    let number: i64 = column(row, "number")?;
    let status: String = column(row, "status")?;
    Ok(ExecutionRecord {
        id: column(row, "id")?,
        workflow: column(row, "workflow")?,
        number: u64::try_from(number).map_err(corrupt)?,
        name: column(row, "name")?,
        status: ExecutionStatus::from_str(&status).map_err(corrupt)?,
        message: column(row, "message")?,
        scheduled_at: column(row, "scheduled_at")?,
        started_at: column(row, "started_at")?,
        finished_at: column(row, "finished_at")?,
        snapshot: from_json(row, "snapshot")?,
        config: from_json::<_, BTreeMap<_, _>>(row, "config")?,
        tags: from_json::<_, BTreeMap<_, _>>(row, "tags")?,
        shard_durations: optional_json(row, "shard_durations")?.unwrap_or_default(),
        result: ExecutionResult {
            initialization: optional_json(row, "initialization")?,
        },
    })
}

pub(super) fn step_record(row: &PgRow) -> Result<StepRecord, StoreError> {
    let status: String = column(row, "status")?;
    let attempt: i64 = column(row, "attempt")?;
    Ok(StepRecord {
        worker: column(row, "worker")?,
        step: column(row, "step")?,
        name: column(row, "name")?,
        status: StepStatus::from_str(&status).map_err(corrupt)?,
        started_at: column(row, "started_at")?,
        finished_at: column(row, "finished_at")?,
        attempt: u32::try_from(attempt).map_err(corrupt)?,
        exit_code: column(row, "exit_code")?,
        message: column(row, "message")?,
    })
}

/// A time as stored: UTC, to the millisecond (as the trait says, and as the SQLite store keeps
/// it), though `TIMESTAMPTZ` could hold microseconds.
pub(super) fn time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(3)
}

/// `text` as PostgreSQL can store it: `TEXT` cannot hold the NUL character (SQLite can), so each
/// one becomes U+FFFD (�) instead of failing the whole write. Everything a store keeps as text
/// goes through here, lookups included, so a name with a NUL finds what it stored.
pub(super) fn text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// [`text`] of an optional value, owned (for binding).
pub(super) fn optional_text(value: Option<&str>) -> Option<String> {
    value.map(|value| text(value).into_owned())
}

/// A value as a JSON document. serde_json writes a NUL as the escape `\u0000`, which the `JSON`
/// type keeps as written, so documents need no [`text`].
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

/// `url` as it may be shown: without the password (`postgres://user:***@host/db`, and
/// `password=***` among the parameters).
#[must_use]
pub(super) fn redacted(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(start) = shown.find("://").map(|at| at + 3) {
        let authority_end = shown[start..]
            .find(['/', '?'])
            .map_or(shown.len(), |at| start + at);
        if let Some(at) = shown[start..authority_end].rfind('@').map(|at| start + at)
            && let Some(colon) = shown[start..at].find(':').map(|colon| start + colon)
        {
            shown.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(query) = shown.find('?') {
        let (head, params) = shown.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        shown = format!("{head}{}", params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::{redacted, text};

    #[test]
    fn passwords_are_not_shown() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db:5432/results",
                "postgres://app:***@db:5432/results",
            ),
            (
                "postgres://app:p@ss@db/results?sslmode=require",
                "postgres://app:***@db/results?sslmode=require",
            ),
            (
                "postgres://app@db/results?password=s3cret&sslmode=require",
                "postgres://app@db/results?password=***&sslmode=require",
            ),
            ("postgres://db/results", "postgres://db/results"),
            ("not a url", "not a url"),
            ("", ""),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("plain"), std::borrow::Cow::Borrowed("plain")));
    }
}
