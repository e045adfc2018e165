//! Where the server keeps the TestWorkflows and TestWorkflowTemplates it
//! runs: the [`Definitions`] plugin, and [`FolderDefinitions`], its
//! implementation on this machine's disk.
//!
//! Why a trait: `testkube serve` keeps definitions in a folder (what the API
//! creates) and reads more from the user's files (`--workflows DIR`); the
//! agent in a cluster keeps them as custom resources. The routes only see
//! this trait.
//!
//! Documents are kept typed (a template has a workflow's fields, so both are
//! a [`TestWorkflow`] here, its `kind` telling them apart), so the API never
//! stores what it could not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[cfg(feature = "kubernetes")]
mod cluster;

use async_trait::async_trait;
use testkube_core::model::{Document, TestWorkflow};
use testkube_core::{LoadOptions, load_file};

#[cfg(feature = "kubernetes")]
pub use cluster::ClusterDefinitions;

/// Which definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `TestWorkflow`.
    Workflow,
    /// `TestWorkflowTemplate`.
    Template,
}

impl Kind {
    /// The document kind (`TestWorkflow`, `TestWorkflowTemplate`).
    #[must_use]
    pub fn document_kind(self) -> &'static str {
        match self {
            Kind::Workflow => "TestWorkflow",
            Kind::Template => "TestWorkflowTemplate",
        }
    }

    /// How messages name one (`workflow`, `template`).
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Workflow => "workflow",
            Kind::Template => "template",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Kind::Workflow => "workflows",
            Kind::Template => "templates",
        }
    }
}

/// How [`Definitions::save`] treats a definition that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// Refuse it ([`DefinitionsError::Exists`]): `POST`.
    Create,
    /// Replace it, and refuse a missing one ([`DefinitionsError::NotFound`]): `PUT`.
    Replace,
}

/// Why a definition could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionsError {
    /// No such definition.
    #[error("no {} `{name}`", kind.noun())]
    NotFound {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// One with this name exists.
    #[error("{} `{name}` exists already; replace it with PUT", kind.noun())]
    Exists {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// It comes from a file the server only reads.
    #[error("{} `{name}` comes from {} (--workflows), which the server only reads; change that file instead", kind.noun(), file.display())]
    ReadOnly {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
        /// The file.
        file: PathBuf,
    },
    /// It was changed by someone else while being replaced: read it again.
    #[error("{} `{name}` was changed meanwhile; read it again and retry", kind.noun())]
    Changed {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// The storage refused it (the cluster's schema of the kind).
    #[error("{} `{name}` was refused: {message}", kind.noun())]
    Refused {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
        /// Why.
        message: String,
    },
    /// The name cannot name a resource.
    #[error(
        "`{name}` is not a valid name: use lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters"
    )]
    InvalidName {
        /// The name.
        name: String,
    },
    /// The backing storage failed.
    #[error("{0}")]
    Storage(String),
}

/// Keeps workflows and templates.
#[async_trait]
pub trait Definitions: Send + Sync {
    /// Every definition of `kind`, by name.
    async fn list(&self, kind: Kind) -> Result<Vec<TestWorkflow>, DefinitionsError>;

    /// One definition.
    async fn get(&self, kind: Kind, name: &str) -> Result<TestWorkflow, DefinitionsError>;

    /// Creates or replaces a definition (its `metadata.name` names it).
    async fn save(
        &self,
        kind: Kind,
        definition: TestWorkflow,
        mode: Save,
    ) -> Result<(), DefinitionsError>;

    /// Deletes a definition.
    async fn delete(&self, kind: Kind, name: &str) -> Result<(), DefinitionsError>;
}

/// Whether `name` can name a definition (a Kubernetes object name, which
/// also keeps it a plain file name).
#[must_use]
pub fn valid_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name.chars().all(|c| edge(c) || c == '-' || c == '.')
        && !name.contains("..")
}

/// Definitions in a folder (`workflows/NAME.yaml`, `templates/NAME.yaml`),
/// plus read-only ones from the user's files and folders.
#[derive(Debug)]
pub struct FolderDefinitions {
    root: PathBuf,
    read_only: Vec<PathBuf>,
    /// Serializes writes, so that "exists?" and "write" are one step.
    writing: tokio::sync::Mutex<()>,
}

impl FolderDefinitions {
    /// Keeps what the API creates under `root` (created when first written).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderDefinitions {
            root: root.into(),
            read_only: Vec::new(),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Also serves the workflows and templates of these YAML files and
    /// folders (searched for `.yaml`/`.yml`), read again at every request,
    /// never written. They win over the folder's on a name clash.
    #[must_use]
    pub fn with_read_only(mut self, paths: Vec<PathBuf>) -> Self {
        self.read_only = paths;
        self
    }

    fn path(&self, kind: Kind, name: &str) -> PathBuf {
        self.root.join(kind.folder()).join(format!("{name}.yaml"))
    }

    /// The read-only definitions of `kind`, with the file each came from.
    async fn read_only_files(
        &self,
        kind: Kind,
    ) -> Result<BTreeMap<String, (TestWorkflow, PathBuf)>, DefinitionsError> {
        if self.read_only.is_empty() {
            return Ok(BTreeMap::new());
        }
        let paths = self.read_only.clone();
        tokio::task::spawn_blocking(move || read_files(&paths, kind))
            .await
            .map_err(|err| DefinitionsError::Storage(err.to_string()))?
    }

    async fn own_files(&self, kind: Kind) -> Result<Vec<TestWorkflow>, DefinitionsError> {
        let folder = self.root.join(kind.folder());
        let mut entries = match tokio::fs::read_dir(&folder).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_error(&folder, &err)),
        };
        let mut found = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|err| io_error(&folder, &err))?
        {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "yaml") {
                found.push(read_one(&path, kind).await?);
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl Definitions for FolderDefinitions {
    async fn list(&self, kind: Kind) -> Result<Vec<TestWorkflow>, DefinitionsError> {
        let mut all: BTreeMap<String, TestWorkflow> = self
            .own_files(kind)
            .await?
            .into_iter()
            .map(|definition| (name_of(&definition), definition))
            .collect();
        for (name, (definition, _)) in self.read_only_files(kind).await? {
            all.insert(name, definition);
        }
        Ok(all.into_values().collect())
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<TestWorkflow, DefinitionsError> {
        let not_found = || DefinitionsError::NotFound {
            kind,
            name: name.to_owned(),
        };
        if !valid_name(name) {
            return Err(not_found());
        }
        if let Some((definition, _)) = self.read_only_files(kind).await?.remove(name) {
            return Ok(definition);
        }
        let path = self.path(kind, name);
        match tokio::fs::try_exists(&path).await {
            Ok(true) => read_one(&path, kind).await,
            Ok(false) => Err(not_found()),
            Err(err) => Err(io_error(&path, &err)),
        }
    }

    async fn save(
        &self,
        kind: Kind,
        definition: TestWorkflow,
        mode: Save,
    ) -> Result<(), DefinitionsError> {
        let name = name_of(&definition);
        if !valid_name(&name) {
            return Err(DefinitionsError::InvalidName { name });
        }
        let _writing = self.writing.lock().await;
        if let Some((_, file)) = self.read_only_files(kind).await?.remove(&name) {
            return Err(DefinitionsError::ReadOnly { kind, name, file });
        }
        let path = self.path(kind, &name);
        let exists = tokio::fs::try_exists(&path)
            .await
            .map_err(|err| io_error(&path, &err))?;
        match (mode, exists) {
            (Save::Create, true) => return Err(DefinitionsError::Exists { kind, name }),
            (Save::Replace, false) => return Err(DefinitionsError::NotFound { kind, name }),
            _ => {}
        }
        let text = serde_saphyr::to_string(&definition)
            .map_err(|err| DefinitionsError::Storage(format!("cannot write {name}: {err}")))?;
        let folder = self.root.join(kind.folder());
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(|err| io_error(&folder, &err))?;
        // Written aside, then renamed: a reader never sees half a file.
        let partial = folder.join(format!(".{name}.yaml.partial"));
        tokio::fs::write(&partial, text)
            .await
            .map_err(|err| io_error(&partial, &err))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|err| io_error(&path, &err))
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), DefinitionsError> {
        let _writing = self.writing.lock().await;
        if let Some((_, file)) = self.read_only_files(kind).await?.remove(name) {
            return Err(DefinitionsError::ReadOnly {
                kind,
                name: name.to_owned(),
                file,
            });
        }
        if !valid_name(name) {
            return Err(DefinitionsError::NotFound {
                kind,
                name: name.to_owned(),
            });
        }
        let path = self.path(kind, name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(DefinitionsError::NotFound {
                    kind,
                    name: name.to_owned(),
                })
            }
            Err(err) => Err(io_error(&path, &err)),
        }
    }
}

fn name_of(definition: &TestWorkflow) -> String {
    definition.metadata.name.clone().unwrap_or_default()
}

fn io_error(path: &Path, err: &std::io::Error) -> DefinitionsError {
    DefinitionsError::Storage(format!("{}: {err}", path.display()))
}

/// One definition the server wrote.
async fn read_one(path: &Path, kind: Kind) -> Result<TestWorkflow, DefinitionsError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|err| io_error(path, &err))?;
    let file = load_file(&path.display().to_string(), &bytes, &LoadOptions::default());
    documents(&file, kind).next().ok_or_else(|| {
        DefinitionsError::Storage(format!(
            "{} holds no {}",
            path.display(),
            kind.document_kind()
        ))
    })
}

/// The definitions of `kind` in a loaded file.
fn documents(
    file: &testkube_core::LoadedFile,
    kind: Kind,
) -> impl Iterator<Item = TestWorkflow> + '_ {
    file.typed_documents()
        .filter_map(move |document| match (document, kind) {
            (Document::TestWorkflow(workflow), Kind::Workflow) => Some((**workflow).clone()),
            (Document::TestWorkflowTemplate(template), Kind::Template) => {
                serde_json::to_value(template)
                    .and_then(serde_json::from_value)
                    .ok()
            }
            _ => None,
        })
}

/// The definitions of `kind` in the user's files; a file that does not
/// load is left out (with a warning), so one broken file does not hide
/// every other workflow.
fn read_files(
    paths: &[PathBuf],
    kind: Kind,
) -> Result<BTreeMap<String, (TestWorkflow, PathBuf)>, DefinitionsError> {
    let mut found = BTreeMap::new();
    for path in paths {
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut files: Vec<PathBuf> = walkdir::WalkDir::new(path)
                .follow_links(true)
                .into_iter()
                .filter_map(Result::ok)
                .map(walkdir::DirEntry::into_path)
                .filter(|file| {
                    file.extension()
                        .is_some_and(|ext| ext == "yaml" || ext == "yml")
                })
                .collect();
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            // An unreadable file (an editor saving it by rename) hides only
            // its own definitions.
            let bytes = match std::fs::read(&file) {
                Ok(bytes) => bytes,
                Err(err) => {
                    tracing::warn!(file = %file.display(), "left out: {err}");
                    continue;
                }
            };
            let loaded = load_file(&file.display().to_string(), &bytes, &LoadOptions::default());
            if loaded.has_errors() {
                tracing::warn!(file = %file.display(), "left out: it has errors (`testkube validate` shows them)");
                continue;
            }
            for definition in documents(&loaded, kind) {
                found
                    .entry(name_of(&definition))
                    .or_insert((definition, file.clone()));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_are_object_names_and_never_paths() {
        for good in ["smoke", "api-tests", "k6.load", "a", "v2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "", "../etc", "a/b", "Smoke", "-x", "x-", "a..b", ".hidden", "a b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
