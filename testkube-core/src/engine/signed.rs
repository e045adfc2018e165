//! Storage that workers elsewhere reach through short-lived signed URLs.
//!
//! A test pod gets no cloud credentials and no network path to the engine,
//! yet its artifacts and the archives of `parallel.transfer`/`fetch` must
//! reach the object store. So the engine, which holds the credentials,
//! signs one URL per object a worker will write or read when it creates the
//! worker (`PUT` for an artifacts step's archive, `GET`/`PUT` for transfer
//! and fetch archives) and puts them into the worker's task; the worker
//! sends bytes straight to the store; once told an upload is done, the
//! engine files it as artifacts.
//!
//! The trait is here, without I/O, so that executors (the Kubernetes one)
//! depend only on the core; `testkube-results` implements it for its
//! S3-compatible artifact store, which owns the key layout.

use std::time::Duration;

use async_trait::async_trait;

use super::WorkerId;

/// How long a signed URL lives when nothing else decides: long enough for a
/// Job that waits for a node, runs for hours, and uploads at its end.
pub const DEFAULT_URL_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether a signed URL reads or writes its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `GET`: download the object.
    Read,
    /// `PUT`: upload the object (replacing it).
    Write,
}

/// One artifact filed from a worker's upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    /// Its path relative to the artifacts' working directory
    /// (`reports/junit.xml`), or the archive's name with `compress`.
    pub path: String,
    /// Where it is kept (`s3://bucket/key`).
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Why the storage could not do what was asked; the message is for users
/// (it never holds a signed URL's query).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignedStorageError(pub String);

/// An object store that signs URLs for workers and files what they upload.
#[async_trait]
pub trait SignedStorage: Send + Sync {
    /// A URL through which `worker` of `execution` uploads (`PUT`) the
    /// archive of its artifacts step `step`, valid for `ttl`.
    ///
    /// # Errors
    /// When the URL cannot be signed (no credentials, a store that cannot sign).
    async fn artifacts_upload_url(
        &self,
        execution: &str,
        worker: &WorkerId,
        step: &str,
        ttl: Duration,
    ) -> Result<String, SignedStorageError>;

    /// Files what `worker` uploaded for step `step` as the worker's
    /// artifacts: one per file of the archive, or, with `compress`, the
    /// archive itself under that name. The upload is gone afterwards.
    ///
    /// # Errors
    /// When the upload is missing or refused (entries outside the
    /// worker's folder, links that lead out); nothing is filed then.
    async fn file_artifacts(
        &self,
        execution: &str,
        worker: &WorkerId,
        step: &str,
        compress: Option<&str>,
    ) -> Result<Vec<StoredArtifact>, SignedStorageError>;

    /// A URL to read or write the execution's exchange archive `name`
    /// (see [`WorkerFiles`](super::WorkerFiles)), valid for `ttl`.
    ///
    /// # Errors
    /// When the URL cannot be signed.
    async fn archive_url(
        &self,
        execution: &str,
        name: &str,
        access: Access,
        ttl: Duration,
    ) -> Result<String, SignedStorageError>;

    /// Deletes the execution's exchange archives (once it is over).
    ///
    /// # Errors
    /// When listing or deleting fails.
    async fn remove_archives(&self, execution: &str) -> Result<(), SignedStorageError>;
}
