//! Where collected artifacts go ([`ArtifactStorage`]): each file written to
//! an object store (local workers), or one archive per step handed to
//! [`ArtifactUploads`] (pods, which hold no credentials); and the file
//! plumbing both need (streamed uploads, packing into a scratch `.tar.gz`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

/// Files up to this size are stored in one request; larger ones are
/// streamed in parts.
const SINGLE_PUT_BYTES: u64 = 5 * 1024 * 1024;

/// How many parts of one file may be in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// Where a worker's artifacts go: an object store the runner writes to
/// (local workers), or signed upload URLs (pods, which hold no
/// credentials: see [`ArtifactUploads`]).
#[derive(Clone)]
pub struct ArtifactStorage {
    pub(super) target: Target,
}

#[derive(Clone)]
pub(super) enum Target {
    /// Each file (or the `compress` archive) written under `prefix`.
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        locate: Arc<dyn Fn(&ObjectPath) -> String + Send + Sync>,
    },
    /// One archive per step, sent through `uploads`.
    Uploads(Arc<dyn ArtifactUploads>),
}

/// Sends the archive of an artifacts step somewhere the runner cannot write
/// to directly; whoever receives it files the artifacts and reports them.
#[async_trait::async_trait]
pub trait ArtifactUploads: Send + Sync {
    /// Sends `archive` (a `.tar.gz` of `files` files, named by their
    /// artifact paths) collected by step `step`; with `compress`, the
    /// artifact is that archive under this name.
    ///
    /// # Errors
    /// Why the archive did not arrive, for the step's failure message.
    async fn upload(
        &self,
        step: &str,
        archive: &Path,
        files: u64,
        compress: Option<&str>,
    ) -> Result<(), String>;
}

impl fmt::Debug for ArtifactStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Store { store, prefix, .. } => f
                .debug_struct("ArtifactStorage")
                .field("store", &store.to_string())
                .field("prefix", prefix)
                .finish_non_exhaustive(),
            Target::Uploads(_) => f.write_str("ArtifactStorage(uploads)"),
        }
    }
}

impl ArtifactStorage {
    /// Artifacts in `store`, each under `prefix` + its path; events report
    /// `location_base` + the key as where it is (e.g. `s3://bucket/`).
    #[must_use]
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: impl Into<String>,
        location_base: impl Into<String>,
    ) -> Self {
        let base = location_base.into();
        ArtifactStorage {
            target: Target::Store {
                store,
                prefix: prefix.into(),
                locate: Arc::new(move |key: &ObjectPath| format!("{base}{key}")),
            },
        }
    }

    /// Artifacts in the local folder `dir` (created when missing), each
    /// under `prefix` + its path; events report absolute file paths.
    ///
    /// # Errors
    /// A message when the folder cannot be created or opened.
    pub fn local(dir: &Path, prefix: impl Into<String>) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|err| {
            format!(
                "cannot create the artifacts folder {}: {err}",
                dir.display()
            )
        })?;
        let store = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|err| {
                format!("cannot open the artifacts folder {}: {err}", dir.display())
            })?,
        );
        let local = Arc::clone(&store);
        Ok(ArtifactStorage {
            target: Target::Store {
                store,
                prefix: prefix.into(),
                locate: Arc::new(move |key: &ObjectPath| {
                    local
                        .path_to_filesystem(key)
                        .map_or_else(|_| key.to_string(), |path| path.display().to_string())
                }),
            },
        })
    }

    /// Artifacts sent as one archive per step through `uploads`, which
    /// reports them (no [`WorkerEvent::Artifact`] comes from the runner).
    #[must_use]
    pub fn uploads(uploads: Arc<dyn ArtifactUploads>) -> Self {
        ArtifactStorage {
            target: Target::Uploads(uploads),
        }
    }
}

/// The key of artifact `name` (a relative `/`-separated path) under `prefix`.
pub(super) fn key(prefix: &str, name: &str) -> Result<ObjectPath, String> {
    if name.split('/').all(str::is_empty) {
        return Err("an artifact needs a name (`compress.name` is empty)".to_owned());
    }
    let full = format!("{prefix}{name}");
    ObjectPath::parse(&full).or_else(|_| {
        let parts: Vec<&str> = full.split('/').filter(|p| !p.is_empty()).collect();
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(format!("`{name}` is not a valid artifact name"));
        }
        Ok(ObjectPath::from_iter(parts))
    })
}

/// Stores the file `host` under `key`, streaming large files; returns its
/// size.
pub(super) async fn upload(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    host: &Path,
) -> Result<u64, String> {
    let mut file = tokio::fs::File::open(host)
        .await
        .map_err(|err| err.to_string())?;
    let length = file.metadata().await.map_err(|err| err.to_string())?.len();
    if length <= SINGLE_PUT_BYTES {
        let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or_default());
        file.read_to_end(&mut bytes)
            .await
            .map_err(|err| err.to_string())?;
        let size = bytes.len() as u64;
        store
            .put(key, PutPayload::from(bytes))
            .await
            .map_err(|err| err.to_string())?;
        return Ok(size);
    }
    let upload = store
        .put_multipart(key)
        .await
        .map_err(|err| err.to_string())?;
    let mut writer = WriteMultipart::new(upload);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = match file.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) => {
                let _ = writer.abort().await;
                return Err(err.to_string());
            }
        };
        if let Err(err) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
            let _ = writer.abort().await;
            return Err(err.to_string());
        }
        writer.write(&buffer[..read]);
        size += read as u64;
    }
    writer.finish().await.map_err(|err| err.to_string())?;
    Ok(size)
}

/// Writes `files` (name, host path) into the tar.gz `archive`.
pub(super) fn pack(archive: &Path, files: &[(String, PathBuf)]) -> std::io::Result<()> {
    let out = std::fs::File::create(archive)?;
    let gzip =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::default());
    let mut builder = tar::Builder::new(gzip);
    builder.follow_symlinks(true);
    for (name, host) in files {
        builder.append_path_with_name(host, name)?;
    }
    let gzip = builder.into_inner()?;
    let mut out = gzip.finish()?;
    std::io::Write::flush(&mut out)
}

/// A scratch file, removed when dropped.
pub(super) struct Scratch(pub(super) PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
