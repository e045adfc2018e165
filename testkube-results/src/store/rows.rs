//! Rows into records, for every SQL store: what a column holds is the same in SQLite and
//! PostgreSQL for outputs, test cases and artifacts, so both read them here (times and JSON
//! differ by database and stay with each store).

use sqlx::{ColumnIndex, Decode, Row, Type};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::{
    ArtifactRecord, ItemDuration, OutputRecord, StoreError, TestCaseRecord, TestCaseStatus,
};

/// `(status, count)` rows of a `GROUP BY status` as counts by status.
pub(super) fn status_counts(
    rows: Vec<(String, i64)>,
) -> Result<std::collections::BTreeMap<ExecutionStatus, u64>, StoreError> {
    rows.into_iter()
        .map(|(name, count)| {
            let status = name
                .parse::<ExecutionStatus>()
                .map_err(|err| StoreError::Corrupt(err.to_string()))?;
            Ok((status, u64::try_from(count).unwrap_or(0)))
        })
        .collect()
}

/// Reads `name` from `row`; a missing column or a value of the wrong type means the schema was
/// changed by something else, so the error names the column.
pub(super) fn column<'r, R, T>(row: &'r R, name: &'r str) -> Result<T, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name)
        .map_err(|err| StoreError::Corrupt(format!("column `{name}`: {err}")))
}

/// A JSON document stored as text in column `name`.
pub(super) fn from_json<'r, R, T>(row: &'r R, name: &'r str) -> Result<T, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    T: serde::de::DeserializeOwned,
{
    let text: String = column(row, name)?;
    serde_json::from_str(&text)
        .map_err(|err| StoreError::Corrupt(format!("column `{name}`: {err}")))
}

/// [`from_json`] of a column that may be `NULL`.
pub(super) fn optional_json<'r, R, T>(row: &'r R, name: &'r str) -> Result<Option<T>, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    T: serde::de::DeserializeOwned,
{
    let text: Option<String> = column(row, name)?;
    text.map(|text| {
        serde_json::from_str(&text)
            .map_err(|err| StoreError::Corrupt(format!("column `{name}`: {err}")))
    })
    .transpose()
}

/// A database error.
pub(super) fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A stored value that cannot be what it should.
pub(super) fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

/// A row of `worker, step, key, value`.
pub(super) fn output<'r, R>(row: &'r R) -> Result<OutputRecord, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(OutputRecord {
        worker: column(row, "worker")?,
        step: column(row, "step")?,
        key: column(row, "key")?,
        value: column(row, "value")?,
    })
}

/// A row of `worker, suite, class, name, file, status, duration_secs, message`.
pub(super) fn test_case<'r, R>(row: &'r R) -> Result<TestCaseRecord, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: String = column(row, "status")?;
    Ok(TestCaseRecord {
        worker: column(row, "worker")?,
        suite: column(row, "suite")?,
        class: column(row, "class")?,
        name: column(row, "name")?,
        file: column(row, "file")?,
        status: TestCaseStatus::from_name(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown test status `{status}`")))?,
        duration_secs: column(row, "duration_secs")?,
        message: column(row, "message")?,
    })
}

/// A row of `worker, step, path, location, size`.
pub(super) fn artifact<'r, R>(row: &'r R) -> Result<ArtifactRecord, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let size: i64 = column(row, "size")?;
    Ok(ArtifactRecord {
        worker: column(row, "worker")?,
        step: column(row, "step")?,
        path: column(row, "path")?,
        location: column(row, "location")?,
        size: u64::try_from(size).map_err(corrupt)?,
    })
}

/// A row of `file, class, name, duration_secs, execution` (an item's latest duration).
pub(super) fn item_duration<'r, R>(row: &'r R) -> Result<ItemDuration, StoreError>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ItemDuration {
        file: column(row, "file")?,
        class: column(row, "class")?,
        name: column(row, "name")?,
        duration_secs: column(row, "duration_secs")?,
        execution: column(row, "execution")?,
    })
}
