//! What can go wrong with artifact storage, each saying what, where and what to do.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// The artifact store cannot be chosen or opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ArtifactStoreError {
    /// The artifacts URL is unusable.
    #[error(
        "TESTKUBE_ARTIFACTS_URL=`{value}` is not an artifacts location: {reason}; use a folder \
         path, file:///folder or s3://BUCKET[/PREFIX]"
    )]
    BadUrl {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The artifacts folder cannot be created.
    #[error("cannot create the artifacts folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The artifacts folder cannot be opened.
    #[error("cannot open the artifacts folder {}: {source}", path.display())]
    OpenFolder {
        /// The folder.
        path: PathBuf,
        /// The store's error.
        source: object_store::Error,
    },
    /// The S3 settings are incomplete or invalid.
    #[error(
        "cannot set up S3 storage for bucket `{bucket}`: {source}; check the AWS_* variables \
         (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    )]
    S3 {
        /// The bucket.
        bucket: String,
        /// The store's error.
        source: object_store::Error,
    },
}

/// No upload URL can be signed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PresignError {
    /// The store is a local folder: a pod cannot upload to this machine's disk.
    #[error(
        "presigned uploads need an S3-compatible artifact store, but artifacts are kept in \
         {location}; set TESTKUBE_ARTIFACTS_URL=s3://BUCKET[/PREFIX] (with AWS_ENDPOINT_URL, \
         AWS_REGION and credentials in AWS_* variables) to run workers in pods"
    )]
    NeedsS3 {
        /// Where artifacts are kept now.
        location: String,
    },
    /// The lifetime asked for is zero or longer than S3 allows.
    #[error("a presigned URL lives between 1 second and 7 days, not {ttl:?}")]
    Ttl {
        /// The lifetime asked for.
        ttl: Duration,
    },
    /// Signing failed (no credentials, for example).
    #[error("cannot sign an upload URL for {location}: {source}; check the AWS_* credentials")]
    Sign {
        /// The object the URL was for.
        location: String,
        /// The store's error.
        source: object_store::Error,
    },
}

/// An uploaded archive cannot be filed into per-file artifacts. Nothing of it is kept as
/// artifacts then (files stored before the failure are removed again); the archive stays
/// where it was uploaded, for a look.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileArchiveError {
    /// The archive cannot be read from the store.
    #[error("cannot read the uploaded archive {archive}: {source}")]
    Read {
        /// The archive's location.
        archive: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The archive is not a (gzipped) tar file, or is cut short.
    #[error(
        "the uploaded archive {archive} is not a readable tar or tar.gz file: {source}; the \
         upload may have been cut short"
    )]
    Format {
        /// The archive's location.
        archive: String,
        /// What the reader said.
        source: std::io::Error,
    },
    /// An entry's name would leave the worker's prefix, or is not a plain relative path.
    #[error("refusing the uploaded archive {archive}: entry `{entry}` {reason}")]
    UnsafePath {
        /// The archive's location.
        archive: String,
        /// The entry's name, as written in the archive.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A link entry points outside the archive, or at nothing in it.
    #[error("refusing the uploaded archive {archive}: link `{entry}` -> `{target}` {reason}")]
    UnsafeLink {
        /// The archive's location.
        archive: String,
        /// The link's name.
        entry: String,
        /// What it points at.
        target: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An entry is neither a file, a folder nor a link (a device, a FIFO...).
    #[error(
        "refusing the uploaded archive {archive}: entry `{entry}` is a {kind}, not a file, \
         folder or link"
    )]
    UnsupportedEntry {
        /// The archive's location.
        archive: String,
        /// The entry's name.
        entry: String,
        /// Its kind.
        kind: String,
    },
    /// Storing one of its files failed.
    #[error("cannot store `{entry}` of the uploaded archive {archive}: {source}")]
    Store {
        /// The archive's location.
        archive: String,
        /// The entry's name.
        entry: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Deleting the archive after filing failed (its files are filed).
    #[error("filed the uploaded archive {archive} but cannot delete it: {source}")]
    Delete {
        /// The archive's location.
        archive: String,
        /// The store's error.
        source: object_store::Error,
        /// The files filed, to report anyway.
        files: Vec<super::FiledArtifact>,
    },
    /// The unpacking task died.
    #[error("unpacking the uploaded archive {archive} failed: {message}")]
    Task {
        /// The archive's location.
        archive: String,
        /// What happened.
        message: String,
    },
}

/// An artifact cannot be copied to this machine.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The location is neither a local path nor an `s3://` URL.
    #[error(
        "cannot download from {location}: only local files and s3:// locations can be read \
         here; fetch it with a tool that reaches that storage"
    )]
    Unsupported {
        /// The location.
        location: String,
    },
    /// The S3 client for the location's bucket cannot be set up.
    #[error(transparent)]
    Store(#[from] ArtifactStoreError),
    /// Reading the object failed.
    #[error(
        "cannot read {location}: {source}; check that the bucket is reachable with the AWS_* \
         settings of this shell (AWS_ENDPOINT_URL, AWS_REGION, credentials)"
    )]
    Read {
        /// The location.
        location: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Copying a local file failed.
    #[error(
        "cannot copy {location}: {source}; the run's files may have been deleted (artifacts \
         are kept under the home folder)"
    )]
    Copy {
        /// The location.
        location: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the copy failed.
    #[error("cannot write {}: {source}", target.display())]
    Write {
        /// The file being written.
        target: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
