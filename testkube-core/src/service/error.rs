//! Why the run service refused a run, and what it warns about while a run
//! goes on.
//!
//! Errors are typed so each frontend says them its own way (the CLI adds
//! the flags and files to fix them with; an API maps them to status codes);
//! their `Display` is a complete sentence for everyone else.

use crate::diagnostic::Diagnostic;
use crate::engine::EngineError;
use crate::status::ExecutionStatus;
use crate::store::StoreError;

use super::secrets::SecretError;

/// Why a run, or a rerun, cannot start. Nothing was recorded for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A `secret(name, key)` call or a `secretKeyRef` names a secret the
    /// source does not have.
    #[error("the workflow uses secret(\"{name}\", \"{key}\"), which is not set")]
    MissingSecret {
        /// The secret's name.
        name: String,
        /// The key in it.
        key: String,
    },
    /// An `envFrom[].secretRef` names a secret the source does not have.
    #[error("envFrom uses secret `{name}`, which is not set")]
    MissingEnvFromSecret {
        /// The secret's name.
        name: String,
    },
    /// `secret(...)` was called the wrong way.
    #[error("cannot use a secret: {message}")]
    SecretCall {
        /// What the expression language said.
        message: String,
    },
    /// The secret source failed.
    #[error(transparent)]
    Secrets(#[from] SecretError),
    /// The workflow cannot be planned.
    #[error("cannot plan workflow `{workflow}`: {}", first_message(.diagnostics))]
    Plan {
        /// The workflow's name.
        workflow: String,
        /// The problems, each with a field path.
        diagnostics: Vec<Diagnostic>,
    },
    /// The engine refuses the plan (features that cannot run with this
    /// executor), or could not start it.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `rerun` of an execution the store does not have.
    #[error("no execution `{0}` is recorded")]
    NotFound(String),
    /// `rerun` of an execution that has not ended.
    #[error("execution {name} is still {status}")]
    StillRunning {
        /// The execution's name.
        name: String,
        /// Its status now.
        status: ExecutionStatus,
    },
    /// `rerun` of an execution whose stored workflow cannot be read back.
    #[error("execution {name} has no usable stored workflow: {reason}")]
    UnusableSnapshot {
        /// The execution's name.
        name: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// `rerun` of an execution whose sensitive config values were never
    /// stored.
    #[error(
        "execution {name} used sensitive config ({}), whose values are never stored",
        .parameters.join(", ")
    )]
    SensitiveConfig {
        /// The execution's name.
        name: String,
        /// The sensitive parameters.
        parameters: Vec<String>,
    },
    /// `rerun` (or another lookup) needs the store, and none is configured.
    #[error("no result store is configured: {0}")]
    NoStore(&'static str),
    /// The store failed where it is needed (`rerun` reads from it).
    #[error(transparent)]
    Store(StoreError),
    /// A bug: a value that must serialize did not.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
        ServiceError::Internal(err.to_string())
    }
}

fn first_message(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .first()
        .map(|d| d.message().to_owned())
        .unwrap_or_default()
}

/// Something went wrong with recording, which never stops a run: the run
/// goes on, with less of it in the store. Given to the sink set with
/// [`RunService::with_warnings`](super::RunService::with_warnings).
#[derive(Debug)]
#[non_exhaustive]
pub enum RunWarning {
    /// The workflow's recorded durations cannot be read: shards are split
    /// without them.
    HistoryUnreadable(StoreError),
    /// The execution could not be created in the store: nothing of this run
    /// is recorded.
    NotRecorded(StoreError),
    /// Recording failed mid-run: the rest of this run is not recorded.
    RecordingStopped(StoreError),
    /// The last log chunks could not be written.
    LogsNotRecorded(StoreError),
}

impl std::fmt::Display for RunWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunWarning::HistoryUnreadable(err) => write!(
                f,
                "cannot read recorded durations: {err}; shards are split without them"
            ),
            RunWarning::NotRecorded(err) => write!(f, "{err}; this run is not recorded"),
            RunWarning::RecordingStopped(err) => {
                write!(f, "{err}; the rest of this run is not recorded")
            }
            RunWarning::LogsNotRecorded(err) => {
                write!(f, "{err}; some logs of this run are not recorded")
            }
        }
    }
}
