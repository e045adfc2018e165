//! Where artifacts are kept: a local folder (the default) or S3-compatible object storage.
//!
//! A run's artifacts outlive the workers that made them, and with Kubernetes they leave a pod
//! that may vanish a moment later. They go to an [`object_store`] chosen once per engine: an
//! [`ArtifactStore`] is that store plus what the rest of the system needs around it:
//!
//! - **where from a URL** ([`ArtifactsUrl`], usually `$TESTKUBE_ARTIFACTS_URL`): a folder path
//!   (or `file:///path`), or `s3://BUCKET[/PREFIX]`. S3 settings (endpoint, region,
//!   credentials, path-style or virtual-hosted requests, plain HTTP) come from the standard
//!   `AWS_*` variables as [`AmazonS3Builder::from_env`] reads them, so the same settings work
//!   for AWS, MinIO, Ceph, R2 or moto;
//! - **locations**: every artifact record names where its bytes are (`/abs/path/file` for a
//!   folder, `s3://bucket/key` for S3), so any reader ([`ArtifactReader`]) finds them again
//!   without knowing which store a past run used;
//! - **presigned uploads** ([`ArtifactStore::presign_put`]): test pods get no cloud
//!   credentials. The engine signs one short-lived PUT URL per artifacts step when it creates
//!   the Job; the pod uploads one archive of the step's files to it, nothing else;
//! - **for executors** (`impl SignedStorage for ArtifactStore`): signs the URLs of a worker's
//!   artifacts uploads and of the run's `transfer`/`fetch` archives ([`exchange_key`]), and
//!   files what pods uploaded;
//! - **filing** ([`ArtifactStore::file_archive`]): the engine unpacks that archive server-side,
//!   streaming, into one object per file under the worker's prefix (what
//!   [`WorkerEvent::Artifact`](testkube_core::engine::WorkerEvent::Artifact) reports), refusing
//!   entries that would land outside it, then deletes the archive.
//!
//! Binaries and test fixtures that talk to S3 call [`install_tls_provider`] first: the whole
//! workspace uses rustls on aws-lc-rs, never ring.

mod archive;
mod error;
mod reader;
mod signed;
mod url;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::signer::{Method, Signer, Url};

pub use archive::FiledArtifact;
pub use error::{ArtifactStoreError, DownloadError, FileArchiveError, PresignError};
pub use reader::{ArtifactReader, ArtifactStream};
pub use url::{ARTIFACTS_URL_VARIABLE, ArtifactsUrl};

/// The longest a presigned URL may live (S3's own limit for SigV4).
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The key prefix of a worker's artifacts: `<execution id>/<worker folder>` (the worker's
/// path with `-` for `/`, e.g. `root-tests-2`), the layout the local executor uses too.
#[must_use]
pub fn artifacts_prefix(execution_id: &str, worker_folder: &str) -> ObjectPath {
    ObjectPath::from_iter([execution_id, worker_folder])
}

/// Where a pod uploads the archive of one artifacts step, to be filed with
/// [`ArtifactStore::file_archive`] into [`artifacts_prefix`]: `<execution id>/.uploads/<worker
/// folder>/<step id>.tar.gz`. Outside every worker's prefix (worker folders never start with
/// `.`), so an archive never shadows an artifact.
#[must_use]
pub fn upload_key(execution_id: &str, worker_folder: &str, step_id: &str) -> ObjectPath {
    ObjectPath::from_iter([
        execution_id,
        ".uploads",
        worker_folder,
        &format!("{step_id}.tar.gz"),
    ])
}

/// Where the execution's `transfer`/`fetch` archive `name` (`0/step/transfer-0.tar.gz`) is
/// kept while the run lasts: `<execution id>/.transfer/<name>`, outside every worker's prefix.
#[must_use]
pub fn exchange_key(execution_id: &str, name: &str) -> ObjectPath {
    ObjectPath::from_iter(
        [execution_id, ".transfer"]
            .into_iter()
            .chain(name.split('/').filter(|part| !part.is_empty())),
    )
}

/// Makes rustls use aws-lc-rs for this process, unless a provider is installed already.
///
/// Call it where a binary or a test fixture starts, before any S3 or Kubernetes client is
/// built: with more than one provider compiled in, rustls refuses to pick one at run time.
pub fn install_tls_provider() {
    // An error means a provider is installed already: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// An artifact store: an object store and how its keys become locations. Cheap to clone.
#[derive(Clone)]
pub struct ArtifactStore {
    /// Keys relative to the configured root (folder, or bucket + prefix).
    store: Arc<dyn ObjectStore>,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Folder {
        root: PathBuf,
    },
    S3 {
        client: Arc<AmazonS3>,
        bucket: String,
        /// The key prefix inside the bucket (no leading or trailing `/`), maybe empty.
        prefix: String,
    },
}

impl fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArtifactStore")
            .field(&self.location_base())
            .finish()
    }
}

impl ArtifactStore {
    /// The store `url` names; S3 settings come from the `AWS_*` environment variables.
    ///
    /// # Errors
    /// When the folder cannot be created, or the S3 settings are incomplete or invalid.
    pub fn open(url: &ArtifactsUrl) -> Result<Self, ArtifactStoreError> {
        match url {
            ArtifactsUrl::Folder(dir) => Self::folder(dir),
            ArtifactsUrl::S3 { bucket, prefix } => {
                Self::s3(bucket, prefix, s3_builder_from_env(bucket))
            }
        }
    }

    /// Artifacts in the local folder `dir` (created when missing).
    ///
    /// # Errors
    /// When the folder cannot be created or opened.
    pub fn folder(dir: &Path) -> Result<Self, ArtifactStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| ArtifactStoreError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let root = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let local = LocalFileSystem::new_with_prefix(&root).map_err(|source| {
            ArtifactStoreError::OpenFolder {
                path: root.clone(),
                source,
            }
        })?;
        Ok(ArtifactStore {
            store: Arc::new(local),
            backend: Backend::Folder { root },
        })
    }

    /// Artifacts in S3 bucket `bucket` under `prefix` (may be empty), with the connection
    /// settings of `builder` (endpoint, region, credentials...); its bucket is replaced.
    ///
    /// An `http://` endpoint is allowed without setting `allow_http` as well: naming one is
    /// the choice.
    ///
    /// # Errors
    /// When the settings are invalid (for example a malformed endpoint).
    pub fn s3(
        bucket: &str,
        prefix: &str,
        builder: AmazonS3Builder,
    ) -> Result<Self, ArtifactStoreError> {
        let client = Arc::new(build_s3(bucket, builder)?);
        let prefix = prefix.trim_matches('/').to_owned();
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            client.clone()
        } else {
            Arc::new(PrefixStore::new(
                Arc::clone(&client),
                ObjectPath::from(prefix.as_str()),
            ))
        };
        Ok(ArtifactStore {
            store,
            backend: Backend::S3 {
                client,
                bucket: bucket.to_owned(),
                prefix,
            },
        })
    }

    /// The object store; keys are relative to the folder, or to the bucket's prefix.
    #[must_use]
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Whether this is S3-compatible storage (and can sign upload URLs).
    #[must_use]
    pub fn is_s3(&self) -> bool {
        matches!(self.backend, Backend::S3 { .. })
    }

    /// What a key's location starts with: the folder's absolute path and `/`, or
    /// `s3://bucket/prefix/`.
    #[must_use]
    pub fn location_base(&self) -> String {
        match &self.backend {
            Backend::Folder { root } => format!("{}/", root.display()),
            Backend::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}/"),
            Backend::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}/"),
        }
    }

    /// Where the object `key` is, as artifact records say it (a file path, an `s3://` URL).
    #[must_use]
    pub fn location(&self, key: &ObjectPath) -> String {
        format!("{}{key}", self.location_base())
    }

    /// A URL that lets its holder PUT one object at `key` (relative to the store's root) for
    /// `ttl`, and nothing else: what a test pod gets instead of credentials.
    ///
    /// # Errors
    /// [`PresignError::NeedsS3`] for a folder store (a pod cannot reach this machine's disk),
    /// [`PresignError::Ttl`] for a zero TTL or one past [`MAX_PRESIGN_TTL`], and
    /// [`PresignError::Sign`] when signing fails (for example without credentials).
    pub async fn presign_put(&self, key: &ObjectPath, ttl: Duration) -> Result<Url, PresignError> {
        self.presign(Method::PUT, key, ttl).await
    }

    /// A URL that lets its holder GET the object at `key` for `ttl`, and nothing else.
    ///
    /// # Errors
    /// As [`ArtifactStore::presign_put`].
    pub async fn presign_get(&self, key: &ObjectPath, ttl: Duration) -> Result<Url, PresignError> {
        self.presign(Method::GET, key, ttl).await
    }

    async fn presign(
        &self,
        method: Method,
        key: &ObjectPath,
        ttl: Duration,
    ) -> Result<Url, PresignError> {
        let Backend::S3 { client, prefix, .. } = &self.backend else {
            return Err(PresignError::NeedsS3 {
                location: self.location_base(),
            });
        };
        if ttl.is_zero() || ttl > MAX_PRESIGN_TTL {
            return Err(PresignError::Ttl { ttl });
        }
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            ObjectPath::from(prefix.as_str())
                .parts()
                .chain(key.parts())
                .collect()
        };
        client
            .signed_url(method, &full, ttl)
            .await
            .map_err(|source| PresignError::Sign {
                location: self.location(key),
                source,
            })
    }
}

/// S3 settings from the `AWS_*` variables for `bucket`.
fn s3_builder_from_env(bucket: &str) -> AmazonS3Builder {
    AmazonS3Builder::from_env().with_bucket_name(bucket)
}

/// The S3 client for `bucket`, allowing plain HTTP when the endpoint asks for it.
fn build_s3(bucket: &str, builder: AmazonS3Builder) -> Result<AmazonS3, ArtifactStoreError> {
    let builder = builder.with_bucket_name(bucket);
    let http_endpoint = [AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint]
        .iter()
        .filter_map(|key| builder.get_config_value(key))
        .any(|endpoint| endpoint.starts_with("http://"));
    // Naming an http:// endpoint is the choice: no separate AWS_ALLOW_HTTP needed.
    let builder = if http_endpoint {
        builder.with_allow_http(true)
    } else {
        builder
    };
    builder.build().map_err(|source| ArtifactStoreError::S3 {
        bucket: bucket.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moto_like(bucket: &str, prefix: &str) -> ArtifactStore {
        let builder = AmazonS3Builder::new()
            .with_endpoint("http://127.0.0.1:1")
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test");
        ArtifactStore::s3(bucket, prefix, builder).unwrap()
    }

    #[test]
    fn locations_name_the_bucket_and_prefix() {
        let store = moto_like("arts", "/team/a/");
        assert_eq!(store.location_base(), "s3://arts/team/a/");
        assert_eq!(
            store.location(&ObjectPath::from("run-1/root/out.txt")),
            "s3://arts/team/a/run-1/root/out.txt"
        );
        assert_eq!(moto_like("arts", "").location_base(), "s3://arts/");
    }

    #[test]
    fn uploads_stay_outside_the_artifact_prefixes() {
        assert_eq!(
            artifacts_prefix("wf-1", "root-tests-2").as_ref(),
            "wf-1/root-tests-2"
        );
        let key = upload_key("wf-1", "root-tests-2", "rj8x0");
        assert_eq!(key.as_ref(), "wf-1/.uploads/root-tests-2/rj8x0.tar.gz");
        assert!(!key.prefix_matches(&artifacts_prefix("wf-1", "root-tests-2")));
    }

    #[test]
    fn folder_locations_are_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::folder(&dir.path().join("a")).unwrap();
        assert!(!store.is_s3());
        assert_eq!(
            store.location(&ObjectPath::from("x/y.txt")),
            format!("{}/a/x/y.txt", dir.path().display())
        );
    }

    #[tokio::test]
    async fn folder_stores_refuse_to_presign() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::folder(dir.path()).unwrap();
        let err = store
            .presign_put(&ObjectPath::from("a.tar.gz"), Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(matches!(err, PresignError::NeedsS3 { .. }), "{err}");
        assert!(err.to_string().contains("s3://"), "{err}");
    }

    #[tokio::test]
    async fn presigned_urls_carry_the_prefix_and_expiry() {
        let store = moto_like("arts", "team");
        let url = store
            .presign_put(
                &ObjectPath::from("run-1/step.tar.gz"),
                Duration::from_secs(90),
            )
            .await
            .unwrap();
        assert_eq!(url.path(), "/arts/team/run-1/step.tar.gz");
        assert!(
            url.query_pairs()
                .any(|(k, v)| k == "X-Amz-Expires" && v == "90"),
            "{url}"
        );
        let err = store
            .presign_put(&ObjectPath::from("x"), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, PresignError::Ttl { .. }), "{err}");
    }
}
