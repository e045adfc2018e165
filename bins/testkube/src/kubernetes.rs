//! `--on kubernetes`: the workers of a run become Jobs in the cluster the
//! kubeconfig names, while the engine, the live view and the results stay
//! on this machine. Nothing needs to be installed in the cluster: the
//! objects are plain Secrets and Jobs, and test pods get no API access.
//! Artifacts and `transfer`/`fetch` archives need S3-compatible storage
//! (`TESTKUBE_ARTIFACTS_URL=s3://...`): pods upload to URLs this machine
//! signs, since they cannot reach its disk.

use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use testkube_k8s::{KubernetesExecutor, KubernetesSecrets, ManifestOptions};
use testkube_results::artifacts::{ARTIFACTS_URL_VARIABLE, ArtifactStore, ArtifactsUrl};

use crate::cli::RunOptions;
use crate::commands::CliError;

/// What `--on kubernetes` runs with: the executor, and the namespace's
/// Secrets for `secret()` and `secretKeyRef` (after this machine's own).
pub(crate) struct Cluster {
    pub(crate) executor: KubernetesExecutor,
    pub(crate) secrets: KubernetesSecrets,
    pub(crate) namespace: String,
    /// Where pods' artifacts go (`s3://bucket/prefix/`), if anywhere.
    pub(crate) artifacts: Option<String>,
}

/// The cluster for `--on kubernetes`, or why it cannot be used.
pub(crate) async fn cluster(options: &RunOptions) -> Result<Cluster, CliError> {
    // rustls on aws-lc-rs for the API client (a second install is a no-op).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|err| {
                CliError::usage(format!("cannot read the kubeconfig {}: {err}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| {
                    CliError::usage(format!("cannot use the kubeconfig {}: {err}", path.display()))
                })?
        }
        None => kube::Config::infer().await.map_err(|err| {
            CliError::usage(format!("cannot find a Kubernetes cluster: {err}")).with_hint(
                "give one with --kubeconfig PATH or KUBECONFIG, or run `kube-sim --kubeconfig FILE` \
                 for a local stand-in",
            )
        })?,
    };
    let mut manifest = ManifestOptions {
        namespace: options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone()),
        ..ManifestOptions::default()
    };
    if let Some(image) = &options.init_image {
        manifest.init_image.clone_from(image);
    }
    if let Some(image) = &options.git_image {
        manifest.git_image.clone_from(image);
    }
    let client = kube::Client::try_from(config)
        .map_err(|err| CliError::usage(format!("cannot make a Kubernetes client: {err}")))?;
    let mut executor = KubernetesExecutor::new(client.clone(), manifest.clone());
    let store = signing_store()?;
    let artifacts = store.as_ref().map(ArtifactStore::location_base);
    if let Some(store) = store {
        executor = executor.with_storage(Arc::new(store));
    }
    Ok(Cluster {
        secrets: KubernetesSecrets::new(client, &manifest.namespace),
        namespace: manifest.namespace,
        executor,
        artifacts,
    })
}

/// The S3-compatible store `TESTKUBE_ARTIFACTS_URL` names, which signs the
/// URLs pods upload artifacts to; `None` without one (a folder cannot take
/// uploads from pods: the run refuses workflows that need it).
fn signing_store() -> Result<Option<ArtifactStore>, CliError> {
    let hint = format!(
        "{ARTIFACTS_URL_VARIABLE} takes s3://BUCKET[/PREFIX] for runs in Kubernetes (with the \
         AWS_* variables of its endpoint and credentials)"
    );
    match ArtifactsUrl::from_env() {
        Ok(Some(url @ ArtifactsUrl::S3 { .. })) => ArtifactStore::open(&url)
            .map(Some)
            .map_err(|err| CliError::usage(err.to_string()).with_hint(&hint)),
        Ok(_) => Ok(None),
        Err(err) => Err(CliError::usage(err.to_string()).with_hint(&hint)),
    }
}
