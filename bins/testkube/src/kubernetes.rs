//! `--on kubernetes`: the workers of a run become Jobs in the cluster the
//! kubeconfig names, while the engine, the live view and the results stay
//! on this machine. Nothing needs to be installed in the cluster: the
//! objects are plain Secrets and Jobs, and test pods get no API access.

use kube::config::{KubeConfigOptions, Kubeconfig};
use testkube_k8s::{KubernetesExecutor, KubernetesSecrets, ManifestOptions};

use crate::cli::RunOptions;
use crate::commands::CliError;

/// What `--on kubernetes` runs with: the executor, and the namespace's
/// Secrets for `secret()` and `secretKeyRef` (after this machine's own).
pub(crate) struct Cluster {
    pub(crate) executor: KubernetesExecutor,
    pub(crate) secrets: KubernetesSecrets,
    pub(crate) namespace: String,
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
    Ok(Cluster {
        secrets: KubernetesSecrets::new(client.clone(), &manifest.namespace),
        namespace: manifest.namespace.clone(),
        executor: KubernetesExecutor::new(client, manifest),
    })
}
