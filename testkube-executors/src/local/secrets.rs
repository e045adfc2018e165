//! [`LocalSecrets`]: where `secret(name, key)`, `secretKeyRef` and
//! `envFrom.secretRef` values come from on a laptop or a CI runner:
//! environment variables `TESTKUBE_SECRET_<NAME>_<KEY>` first, then a YAML
//! file of `name: {key: value}`. The environment wins so that CI systems,
//! which hand secrets over as variables, can override a developer's file.
//!
//! Why here and not in the core: reading the environment and files is I/O;
//! the core only knows the [`SecretSource`] trait (a Kubernetes source reads
//! Secret objects instead).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use testkube_core::LoadOptions;
use testkube_core::service::{SecretError, SecretSource};

/// The largest secrets file read.
const MAX_SECRETS_FILE: u64 = 16 << 20;

/// Secret values by secret name, then key.
type Secrets = BTreeMap<String, BTreeMap<String, String>>;

/// Secrets from the environment and, optionally, a YAML file.
#[derive(Clone, Default)]
pub struct LocalSecrets {
    /// The file read, if any, and its values.
    file: Option<(PathBuf, Secrets)>,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("LocalSecrets")
            .field("file", &self.file.as_ref().map(|(path, _)| path))
            .finish()
    }
}

/// Why the secrets file cannot be used. Its parse errors are never shown:
/// their snippets would quote secret values into terminals and CI logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsFileError {
    /// The file cannot be read.
    #[error("cannot read the secrets file {}: {reason}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not YAML of the shape `name: {key: value}`.
    #[error("the secrets file {} is not a map of secrets to keys and values", .path.display())]
    NotAMap {
        /// The file.
        path: PathBuf,
    },
    /// A value is a list or a map, not text.
    #[error("secret `{name}` key `{key}` in {} is not a text value", .path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// The secret.
        name: String,
        /// The key.
        key: String,
    },
}

impl LocalSecrets {
    /// Secrets from the environment only.
    #[must_use]
    pub fn from_env() -> Self {
        LocalSecrets::default()
    }

    /// Secrets from the environment and the file `path`.
    ///
    /// # Errors
    /// [`SecretsFileError`] when the file cannot be read or has another shape.
    pub fn with_file(path: &Path) -> Result<Self, SecretsFileError> {
        let values = read_secrets_file(path)?;
        Ok(LocalSecrets {
            file: Some((path.to_path_buf(), values)),
        })
    }

    /// Reads `explicit` (an error when it cannot be read), else
    /// `default_file` when it exists, else the environment only.
    ///
    /// # Errors
    /// As [`LocalSecrets::with_file`].
    pub fn load(explicit: Option<&Path>, default_file: &Path) -> Result<Self, SecretsFileError> {
        match explicit {
            Some(path) => Self::with_file(path),
            None if default_file.is_file() => Self::with_file(default_file),
            None => Ok(Self::from_env()),
        }
    }

    /// The file read, if any.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(|(path, _)| path.as_path())
    }

    /// The environment variable that holds `secret(name, key)`:
    /// `TESTKUBE_SECRET_<NAME>_<KEY>`, upper case, other characters `_`.
    #[must_use]
    pub fn env_var(name: &str, key: &str) -> String {
        let clean = |text: &str| -> String {
            text.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("TESTKUBE_SECRET_{}_{}", clean(name), clean(key))
    }

    /// The value of `secret(name, key)`, if set anywhere.
    #[must_use]
    pub fn value(&self, name: &str, key: &str) -> Option<String> {
        if let Ok(value) = std::env::var(Self::env_var(name, key)) {
            return Some(value);
        }
        self.file
            .as_ref()
            .and_then(|(_, values)| values.get(name))
            .and_then(|keys| keys.get(key))
            .cloned()
    }

    /// Every key of secret `name` with its value (for `envFrom`): the
    /// file's keys, and `TESTKUBE_SECRET_<NAME>_<KEY>` variables, which win;
    /// `None` when the secret is set nowhere.
    #[must_use]
    pub fn all_keys(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let mut keys = self
            .file
            .as_ref()
            .and_then(|(_, values)| values.get(name))
            .cloned();
        let prefix = Self::env_var(name, "");
        for (variable, value) in std::env::vars() {
            if let Some(key) = variable.strip_prefix(&prefix).filter(|k| !k.is_empty()) {
                keys.get_or_insert_with(BTreeMap::new)
                    .insert(key.to_owned(), value);
            }
        }
        keys
    }
}

#[async_trait]
impl SecretSource for LocalSecrets {
    async fn get(&self, name: &str, key: &str) -> Result<Option<String>, SecretError> {
        Ok(self.value(name, key))
    }

    async fn keys(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, SecretError> {
        Ok(self.all_keys(name))
    }
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let meta = file.metadata().map_err(|err| err.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| err.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {} MiB", limit >> 20));
    }
    Ok(bytes)
}

fn read_secrets_file(path: &Path) -> Result<Secrets, SecretsFileError> {
    let bytes =
        read_bounded(path, MAX_SECRETS_FILE).map_err(|reason| SecretsFileError::Unreadable {
            path: path.to_path_buf(),
            reason,
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let not_a_map = || SecretsFileError::NotAMap {
        path: path.to_path_buf(),
    };
    let documents = testkube_core::yaml::load_documents(&text, &LoadOptions::default())
        .map_err(|_| not_a_map())?;
    let parsed: BTreeMap<String, BTreeMap<String, serde_json::Value>> = match documents.as_slice() {
        [] => BTreeMap::new(),
        [document] => serde_json::from_value(document.to_json()).map_err(|_| not_a_map())?,
        _ => return Err(not_a_map()),
    };
    let mut out = BTreeMap::new();
    for (name, keys) in parsed {
        let mut values = BTreeMap::new();
        for (key, value) in keys {
            let text = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => {
                    return Err(SecretsFileError::NotText {
                        path: path.to_path_buf(),
                        name,
                        key,
                    });
                }
            };
            values.insert(key, text);
        }
        out.insert(name, values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_gives_values_and_keys_and_refuses_other_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.yaml");
        std::fs::write(&file, "lsdb: {password: hunter2, port: 5432}\n").unwrap();
        let secrets = LocalSecrets::load(None, &file).unwrap();
        assert_eq!(secrets.file(), Some(file.as_path()));
        assert_eq!(
            secrets.value("lsdb", "password").as_deref(),
            Some("hunter2")
        );
        assert_eq!(secrets.value("lsdb", "port").as_deref(), Some("5432"));
        assert_eq!(secrets.value("lsdb", "user"), None);
        assert_eq!(secrets.all_keys("lsdb").map(|keys| keys.len()), Some(2));
        assert_eq!(secrets.all_keys("other"), None);
        assert_eq!(
            LocalSecrets::env_var("my-db", "pass.word"),
            "TESTKUBE_SECRET_MY_DB_PASS_WORD"
        );

        std::fs::write(&file, "lsdb: {password: [a, b]}\n").unwrap();
        let err = LocalSecrets::with_file(&file).unwrap_err();
        assert!(matches!(err, SecretsFileError::NotText { .. }), "{err}");
        std::fs::write(&file, "- just a list\n").unwrap();
        let err = LocalSecrets::with_file(&file).unwrap_err();
        assert!(matches!(err, SecretsFileError::NotAMap { .. }), "{err}");
        let missing = dir.path().join("missing.yaml");
        assert!(LocalSecrets::load(None, &missing).unwrap().file().is_none());
        let err = LocalSecrets::load(Some(&missing), &file).unwrap_err();
        assert!(matches!(err, SecretsFileError::Unreadable { .. }), "{err}");
    }
}
