//! `secret(name, key)`, `secretKeyRef` and `envFrom.secretRef` answered from
//! the cluster's Secret objects, for runs whose workers run there: the
//! engine reads them once before planning (the run service masks every
//! value it used), so test pods still need no API permission.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use testkube_core::service::{SecretError, SecretSource};

/// The Secrets of one namespace.
#[derive(Clone)]
pub struct KubernetesSecrets {
    api: Api<Secret>,
    namespace: String,
}

impl std::fmt::Debug for KubernetesSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSecrets")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl KubernetesSecrets {
    /// The Secrets of `namespace`, read through `client`.
    #[must_use]
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        KubernetesSecrets {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    async fn secret(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError> {
        let error = |message: String| SecretError {
            name: name.to_owned(),
            message,
        };
        let Some(secret) = self.api.get_opt(name).await.map_err(|err| {
            error(format!(
                "cannot read Secret {}/{name}: {err} (the engine needs `get` on secrets there)",
                self.namespace
            ))
        })?
        else {
            return Ok(None);
        };
        let mut values = BTreeMap::new();
        for (key, bytes) in secret.data.unwrap_or_default() {
            let text = String::from_utf8(bytes.0).map_err(|_| {
                error(format!(
                    "key `{key}` of Secret {}/{name} is not UTF-8 text",
                    self.namespace
                ))
            })?;
            values.insert(key, text);
        }
        Ok(Some(values))
    }
}

#[async_trait]
impl SecretSource for KubernetesSecrets {
    async fn get(&self, name: &str, key: &str) -> Result<Option<String>, SecretError> {
        Ok(self
            .secret(name)
            .await?
            .and_then(|mut values| values.remove(key)))
    }

    async fn keys(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError> {
        self.secret(name).await
    }
}
