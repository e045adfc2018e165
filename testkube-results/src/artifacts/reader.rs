//! Reading artifacts back from their recorded locations, whichever store a run used.
//!
//! An artifact record says where its bytes are (`/abs/path` or `s3://bucket/key`); a reader
//! needs no knowledge of the store that wrote it beyond the `AWS_*` settings to reach S3.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::{DownloadError, build_s3};

/// The bytes of one artifact, chunk by chunk ([`ArtifactReader::open`]).
pub type ArtifactStream =
    futures_util::stream::BoxStream<'static, Result<bytes::Bytes, DownloadError>>;

/// Reads artifacts from their locations; keeps one S3 client per bucket.
#[derive(Default)]
pub struct ArtifactReader {
    builder: Option<AmazonS3Builder>,
    buckets: HashMap<String, Arc<dyn ObjectStore>>,
}

impl std::fmt::Debug for ArtifactReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactReader")
            .field("buckets", &self.buckets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where a location points.
enum Source {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl ArtifactReader {
    /// A reader reaching S3 with the settings of the `AWS_*` variables.
    #[must_use]
    pub fn from_env() -> Self {
        ArtifactReader::default()
    }

    /// A reader reaching S3 with `builder`'s settings (endpoint, region, credentials).
    #[must_use]
    pub fn with_s3(builder: AmazonS3Builder) -> Self {
        ArtifactReader {
            builder: Some(builder),
            buckets: HashMap::new(),
        }
    }

    /// Whether this reader can fetch `location` (a local path or an `s3://` URL).
    #[must_use]
    pub fn can_read(location: &str) -> bool {
        source(location).is_some()
    }

    /// The bytes of the artifact at `location`, as a stream of chunks (what
    /// an HTTP server answers with, without holding the file in memory).
    ///
    /// # Errors
    /// When the location is of another kind or cannot be opened; a read that
    /// fails later is an error item of the stream.
    pub async fn open(&mut self, location: &str) -> Result<ArtifactStream, DownloadError> {
        match source(location) {
            None => Err(DownloadError::Unsupported {
                location: location.to_owned(),
            }),
            Some(Source::File(path)) => {
                let copy = |source| DownloadError::Copy {
                    location: location.to_owned(),
                    source,
                };
                let file = tokio::fs::File::open(&path).await.map_err(copy)?;
                let owned = location.to_owned();
                Ok(tokio_util::io::ReaderStream::new(file)
                    .map(move |chunk| {
                        chunk.map_err(|source| DownloadError::Copy {
                            location: owned.clone(),
                            source,
                        })
                    })
                    .boxed())
            }
            Some(Source::S3 { bucket, key }) => {
                let store = self.bucket(&bucket)?;
                let read = |source| DownloadError::Read {
                    location: location.to_owned(),
                    source,
                };
                let key = ObjectPath::parse(&key).map_err(|err| read(err.into()))?;
                let owned = location.to_owned();
                Ok(store
                    .get(&key)
                    .await
                    .map_err(read)?
                    .into_stream()
                    .map(move |chunk| {
                        chunk.map_err(|source| DownloadError::Read {
                            location: owned.clone(),
                            source,
                        })
                    })
                    .boxed())
            }
        }
    }

    /// Copies the artifact at `location` to the file `target` (its folder must exist),
    /// streaming; returns the bytes written.
    ///
    /// # Errors
    /// When the location is of another kind, cannot be read, or `target` cannot be written.
    pub async fn download(&mut self, location: &str, target: &Path) -> Result<u64, DownloadError> {
        if let Some(Source::File(path)) = source(location) {
            return tokio::fs::copy(&path, target)
                .await
                .map_err(|source| DownloadError::Copy {
                    location: location.to_owned(),
                    source,
                });
        }
        let mut stream = self.open(location).await?;
        let write = |source| DownloadError::Write {
            target: target.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(target).await.map_err(write)?;
        let mut size = 0u64;
        let copied = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                file.write_all(&chunk).await.map_err(write)?;
                size += chunk.len() as u64;
            }
            file.flush().await.map_err(write)
        }
        .await;
        if copied.is_err() {
            // No half copy left behind to be taken for the artifact.
            let _ = tokio::fs::remove_file(target).await;
        }
        copied.map(|()| size)
    }

    fn bucket(&mut self, bucket: &str) -> Result<Arc<dyn ObjectStore>, DownloadError> {
        if let Some(store) = self.buckets.get(bucket) {
            return Ok(Arc::clone(store));
        }
        let builder = self
            .builder
            .clone()
            .unwrap_or_else(AmazonS3Builder::from_env);
        let store: Arc<dyn ObjectStore> = Arc::new(build_s3(bucket, builder)?);
        self.buckets.insert(bucket.to_owned(), Arc::clone(&store));
        Ok(store)
    }
}

fn source(location: &str) -> Option<Source> {
    if let Some(rest) = location
        .strip_prefix("s3://")
        .or_else(|| location.strip_prefix("s3a://"))
    {
        let (bucket, key) = rest.split_once('/')?;
        return (!bucket.is_empty() && !key.is_empty()).then(|| Source::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        });
    }
    let path = Path::new(location.strip_prefix("file://").unwrap_or(location));
    path.is_absolute().then(|| Source::File(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_s3_urls_are_readable() {
        assert!(ArtifactReader::can_read("/home/a/x"));
        assert!(ArtifactReader::can_read("file:///home/a/x"));
        assert!(ArtifactReader::can_read("s3://bucket/a/b.txt"));
        assert!(!ArtifactReader::can_read("s3://bucket/"));
        assert!(!ArtifactReader::can_read("gs://bucket/x"));
        assert!(!ArtifactReader::can_read("relative/x"));
    }

    #[tokio::test]
    async fn local_files_are_copied() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.txt");
        std::fs::write(&from, "hello").unwrap();
        let to = dir.path().join("b.txt");
        let mut reader = ArtifactReader::from_env();
        let size = reader
            .download(&from.display().to_string(), &to)
            .await
            .unwrap();
        assert_eq!(size, 5);
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "hello");
        let err = reader
            .download("gs://b/x", &to)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("only local files and s3://"), "{err}");
    }
}
