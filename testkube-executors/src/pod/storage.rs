//! How a pod's files reach the object store: through the signed URLs of its
//! task ([`ObjectLinks`]), never with credentials of its own.
//!
//! - Artifacts ([`SignedUploads`]): the runner packs an artifacts step's
//!   files into one archive; it is `PUT` to the step's URL, then a
//!   [`Frame::Uploaded`] tells the engine to file it and report each
//!   artifact. A step without a URL fails with what to configure.
//! - `transfer`/`fetch` archives ([`SignedArchives`]): written with `PUT`
//!   and read with `GET` through the URLs of the archive's name. The names
//!   of a block's fetch archives are known only once its workers exist, so
//!   their URLs arrive with the block's reply ([`Links::add`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use testkube_core::engine::protocol::{Frame, ObjectLinks};

use super::ProtocolWriter;
use crate::runner::ArtifactUploads;
use crate::runner::transfer::ArchiveStore;
use crate::upload::{UploadError, UploadPolicy, download_file, upload_file};

/// The worker's signed URLs: the task's, and those replies bring.
#[derive(Clone, Default)]
pub(super) struct Links(Arc<Mutex<ObjectLinks>>);

impl Links {
    pub(super) fn new(links: ObjectLinks) -> Self {
        Links(Arc::new(Mutex::new(links)))
    }

    /// Adds URLs that arrived later.
    pub(super) fn add(&self, more: ObjectLinks) {
        self.lock().extend(more);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ObjectLinks> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The HTTP client of the pod's transfers: reqwest's defaults, which read
/// `HTTPS_PROXY` and the like (a cluster's egress proxy is how many pods
/// reach S3).
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Artifacts sent to the step's signed URL and announced to the engine.
pub(super) struct SignedUploads {
    pub(super) links: Links,
    pub(super) client: reqwest::Client,
    pub(super) writer: Arc<ProtocolWriter>,
}

#[async_trait]
impl ArtifactUploads for SignedUploads {
    async fn upload(
        &self,
        step: &str,
        archive: &Path,
        files: u64,
        compress: Option<&str>,
    ) -> Result<(), String> {
        let url = self.links.lock().artifacts.get(step).cloned();
        let Some(url) = url else {
            return Err(format!(
                "no upload URL was issued for step `{step}`: the engine that started this \
                 worker keeps no artifacts for pods (give it an S3-compatible store, e.g. \
                 TESTKUBE_ARTIFACTS_URL=s3://BUCKET)"
            ));
        };
        upload_file(&self.client, &url, archive, &UploadPolicy::default())
            .await
            .map_err(|err| err.to_string())?;
        self.writer.frame(&Frame::Uploaded {
            step: step.to_owned(),
            files,
            compress: compress.map(str::to_owned),
        });
        Ok(())
    }
}

/// `transfer`/`fetch` archives behind signed URLs.
pub(super) struct SignedArchives {
    pub(super) links: Links,
    pub(super) client: reqwest::Client,
    /// Where archives are written before upload and after download (the
    /// pod's `/tmp`, an emptyDir).
    pub(super) scratch: PathBuf,
}

#[async_trait]
impl ArchiveStore for SignedArchives {
    fn scratch(&self) -> PathBuf {
        self.scratch.clone()
    }

    async fn put(&self, name: &str, file: &Path) -> io::Result<()> {
        let url = self.links.lock().put.get(name).cloned();
        let Some(url) = url else {
            return Err(io::Error::other(format!(
                "no upload URL was issued for the archive `{name}`: the engine that started \
                 this worker cannot exchange files with pods (give it an S3-compatible store, \
                 e.g. TESTKUBE_ARTIFACTS_URL=s3://BUCKET)"
            )));
        };
        let sent = upload_file(&self.client, &url, file, &UploadPolicy::default()).await;
        let _ = tokio::fs::remove_file(file).await;
        sent.map(|_| ()).map_err(io::Error::other)
    }

    async fn get(&self, name: &str) -> io::Result<PathBuf> {
        let url = self.links.lock().get.get(name).cloned();
        let Some(url) = url else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no download URL was issued for the archive `{name}`"),
            ));
        };
        tokio::fs::create_dir_all(&self.scratch).await?;
        let path = self.scratch.join(name.replace('/', "-"));
        match download_file(&self.client, &url, &path, &UploadPolicy::default()).await {
            Ok(_) => Ok(path),
            Err(err @ UploadError::Missing { .. }) => {
                Err(io::Error::new(io::ErrorKind::NotFound, err.to_string()))
            }
            Err(err) => Err(io::Error::other(err.to_string())),
        }
    }
}
