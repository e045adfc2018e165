//! The artifact store as the [`SignedStorage`] of executors whose workers
//! hold no credentials (pods): URLs signed for the keys of this module's
//! layout ([`upload_key`], [`exchange_key`]), uploads filed into
//! [`artifacts_prefix`]. Only S3-compatible storage signs URLs; a folder
//! store answers every call with [`PresignError::NeedsS3`]'s words.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use testkube_core::engine::{Access, SignedStorage, SignedStorageError, StoredArtifact, WorkerId};

use super::{ArtifactStore, FileArchiveError, artifacts_prefix, exchange_key, upload_key};

#[async_trait]
impl SignedStorage for ArtifactStore {
    async fn artifacts_upload_url(
        &self,
        execution: &str,
        worker: &WorkerId,
        step: &str,
        ttl: Duration,
    ) -> Result<String, SignedStorageError> {
        let key = upload_key(execution, &worker.folder(), step);
        self.presign_put(&key, ttl)
            .await
            .map(|url| url.to_string())
            .map_err(error)
    }

    async fn file_artifacts(
        &self,
        execution: &str,
        worker: &WorkerId,
        step: &str,
        compress: Option<&str>,
    ) -> Result<Vec<StoredArtifact>, SignedStorageError> {
        let upload = upload_key(execution, &worker.folder(), step);
        let into = artifacts_prefix(execution, &worker.folder());
        let Some(name) = compress else {
            let filed = match self.file_archive(&upload, &into).await {
                Ok(filed) | Err(FileArchiveError::Delete { files: filed, .. }) => filed,
                Err(err) => return Err(error(err)),
            };
            return Ok(filed
                .into_iter()
                .map(|file| StoredArtifact {
                    path: file.path,
                    location: file.location,
                    size: file.size,
                })
                .collect());
        };
        let parts: Vec<&str> = name.split('/').filter(|part| !part.is_empty()).collect();
        if parts.is_empty() || parts.iter().any(|part| *part == "." || *part == "..") {
            return Err(SignedStorageError(format!(
                "`{name}` is not a valid artifact name"
            )));
        }
        let key: ObjectPath = into
            .parts()
            .chain(parts.iter().map(|p| (*p).into()))
            .collect();
        self.store
            .rename(&upload, &key)
            .await
            .map_err(|err| SignedStorageError(format!("cannot keep `{name}`: {err}")))?;
        let size = self
            .store
            .head(&key)
            .await
            .map_err(|err| SignedStorageError(format!("cannot read `{name}` back: {err}")))?
            .size;
        Ok(vec![StoredArtifact {
            path: parts.join("/"),
            location: self.location(&key),
            size,
        }])
    }

    async fn archive_url(
        &self,
        execution: &str,
        name: &str,
        access: Access,
        ttl: Duration,
    ) -> Result<String, SignedStorageError> {
        let key = exchange_key(execution, name);
        let url = match access {
            Access::Read => self.presign_get(&key, ttl).await,
            Access::Write => self.presign_put(&key, ttl).await,
        };
        url.map(|url| url.to_string()).map_err(error)
    }

    async fn remove_archives(&self, execution: &str) -> Result<(), SignedStorageError> {
        let prefix = ObjectPath::from_iter([execution, ".transfer"]);
        let mut listed = self.store.list(Some(&prefix));
        while let Some(object) = listed.next().await {
            let object = object.map_err(|err| {
                SignedStorageError(format!("cannot list the transfer archives: {err}"))
            })?;
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => {
                    return Err(SignedStorageError(format!(
                        "cannot delete {}: {err}",
                        self.location(&object.location)
                    )));
                }
            }
        }
        Ok(())
    }
}

fn error(err: impl std::fmt::Display) -> SignedStorageError {
    SignedStorageError(err.to_string())
}
