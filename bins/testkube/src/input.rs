//! Reading what the user points at: files and folders of workflows, `KEY=VALUE`
//! pairs, item lists on standard input, the local source of secrets.
//!
//! Every read is bounded and refuses what is not a regular file, so pointing
//! a command at `/dev/zero`, a FIFO or a folder gives an error, not a hang.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use testkube_core::LoadOptions;

use crate::commands::CliError;

/// The largest report or timings file read (workflow files have their own,
/// smaller limit in the loader).
pub(crate) const MAX_INPUT_BYTES: u64 = 1 << 30;

/// A path the user named, expanded: a file to read, or why it cannot be.
pub(crate) enum Found {
    /// A file to read.
    File(PathBuf),
    /// A path that cannot be read, with the reason.
    Unreadable(PathBuf, String),
}

/// Files named by `paths`: files as given, folders searched (sorted,
/// recursively, following each folder once) for `*.yaml` / `*.yml`, skipping
/// hidden entries. Paths that cannot be read are returned as such, so a
/// command can report them and carry on with the rest.
pub(crate) fn find_workflow_files(paths: &[PathBuf]) -> Vec<Found> {
    find_files(paths, &["yaml", "yml"])
}

/// Files named by `paths`: files as given, folders searched (sorted,
/// recursively, following each folder once, skipping hidden entries) for
/// files with one of `extensions`.
pub(crate) fn find_files(paths: &[PathBuf], extensions: &[&str]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut visited = HashSet::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => collect(path, extensions, &mut visited, &mut found),
            Ok(_) => found.push(Found::File(path.clone())),
            Err(err) => found.push(Found::Unreadable(path.clone(), err.to_string())),
        }
    }
    found
}

/// Like [`find_workflow_files`], but the first unreadable path is an error.
pub(crate) fn workflow_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    find_workflow_files(paths)
        .into_iter()
        .map(|found| match found {
            Found::File(path) => Ok(path),
            Found::Unreadable(path, reason) => Err(CliError::input(format!(
                "cannot read {}: {reason}",
                path.display()
            ))
            .with_hint("check the path; folders are searched for *.yaml and *.yml files")),
        })
        .collect()
}

fn collect(dir: &Path, extensions: &[&str], visited: &mut HashSet<PathBuf>, out: &mut Vec<Found>) {
    // A symlink back up the tree would otherwise be walked forever (or until
    // the path gets too long): each real folder is searched once.
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !visited.insert(real) {
                return;
            }
        }
        Err(err) => {
            out.push(Found::Unreadable(dir.to_path_buf(), err.to_string()));
            return;
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            out.push(Found::Unreadable(dir.to_path_buf(), err.to_string()));
            return;
        }
    };
    let mut entries: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| !name.starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, extensions, visited, out);
        } else if path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| extensions.contains(&ext))
        {
            out.push(Found::File(path));
        }
    }
}

/// Reads a whole regular file of at most [`MAX_INPUT_BYTES`], with an error
/// that names it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    read_bounded(path, MAX_INPUT_BYTES)
        .map_err(|reason| CliError::input(format!("cannot read {}: {reason}", path.display())))
}

/// Reads a workflow file within the loader's size budget, so an oversized
/// file is refused before it is held in memory.
pub(crate) fn read_workflow(path: &Path, options: &LoadOptions) -> Result<Vec<u8>, String> {
    read_bounded(path, options.max_bytes as u64)
}

/// Reads at most `limit + 1` bytes of a regular file: one byte more than the
/// limit is enough for the caller to say "too large", and nothing more is
/// ever held in memory.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let meta = file.metadata().map_err(|err| err.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut bytes = Vec::with_capacity(meta.len().min(limit + 1) as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| err.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {} MiB", limit >> 20));
    }
    Ok(bytes)
}

/// Splits `KEY=VALUE` arguments, keeping their order.
pub(crate) fn key_values(pairs: &[String], flag: &str) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.to_string()))
            }
            _ => Err(CliError::usage(format!("{flag} `{pair}` is not KEY=VALUE"))
                .with_hint(format!("write it as {flag} name=value"))),
        })
        .collect()
}

/// Items from the arguments, or from standard input (one per line, blank lines skipped).
pub(crate) fn items_or_stdin(items: &[String]) -> Result<Vec<String>, CliError> {
    if !items.is_empty() {
        return Ok(items.to_vec());
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::usage("no items to split")
            .with_hint("pass items after `--` or pipe them in, one per line"));
    }
    let mut out = Vec::new();
    for line in stdin.lock().lines() {
        let line =
            line.map_err(|err| CliError::input(format!("cannot read standard input: {err}")))?;
        let line = line.trim();
        if !line.is_empty() {
            out.push(line.to_string());
        }
    }
    if out.is_empty() {
        // Splitting nothing is a pipeline gone wrong (a `find` that matched
        // nothing, items left on the command line before `--`), not a split.
        return Err(
            CliError::usage("no items to split: standard input is empty")
                .with_hint("pass items after `--` or pipe them in, one per line"),
        );
    }
    Ok(out)
}

/// Secret values by secret name, then key.
type Secrets = BTreeMap<String, BTreeMap<String, String>>;

/// Where `secret(name, key)` values come from on this machine: environment
/// variables `TESTKUBE_SECRET_<NAME>_<KEY>` first, then a YAML file of
/// `name: {key: value}` (`--secrets FILE`, or `secrets.yaml` in the home
/// folder when it exists). The environment wins so that CI systems, which
/// hand secrets over as variables, can override a developer's file.
pub(crate) struct SecretSource {
    /// The file read, if any, and its values.
    file: Option<(PathBuf, Secrets)>,
    /// The file that would be read by default (named in error messages).
    default_file: PathBuf,
}

impl SecretSource {
    /// Reads `explicit` (an error when it cannot be read), else
    /// `default_file` when it exists.
    pub(crate) fn load(explicit: Option<&Path>, default_file: &Path) -> Result<Self, CliError> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None if default_file.is_file() => Some(default_file.to_path_buf()),
            None => None,
        };
        let file = match path {
            Some(path) => {
                let values = read_secrets_file(&path)?;
                Some((path, values))
            }
            None => None,
        };
        Ok(SecretSource {
            file,
            default_file: default_file.to_path_buf(),
        })
    }

    /// The environment variable that holds `secret(name, key)`.
    pub(crate) fn env_var(name: &str, key: &str) -> String {
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
    pub(crate) fn get(&self, name: &str, key: &str) -> Option<String> {
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
    pub(crate) fn keys(&self, name: &str) -> Option<BTreeMap<String, String>> {
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

    /// The error for a secret that is set nowhere: which secret, and the two
    /// ways to set it.
    pub(crate) fn missing(&self, name: &str, key: &str) -> CliError {
        let file = match &self.file {
            Some((path, _)) => path.display().to_string(),
            None => self.default_file.display().to_string(),
        };
        CliError::usage(format!(
            "the workflow uses secret(\"{name}\", \"{key}\"), which is not set"
        ))
        .with_hint(format!(
            "set the environment variable {} or add `{name}: {{{key}: VALUE}}` to {file} (or pass --secrets FILE)",
            Self::env_var(name, key)
        ))
    }
}

/// Reads a secrets file: YAML `name: {key: value}`; scalar values are taken
/// as text.
fn read_secrets_file(path: &Path) -> Result<Secrets, CliError> {
    let bytes = read_bounded(path, 16 << 20).map_err(|reason| {
        CliError::usage(format!(
            "cannot read the secrets file {}: {reason}",
            path.display()
        ))
        .with_hint("pass an existing file with --secrets FILE")
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let shape_hint = "write it as YAML: `secret-name: {key: value}`, one entry per secret";
    // Parse errors are not shown: their snippets would quote secret values
    // into terminals and CI logs.
    let not_a_map = || {
        CliError::usage(format!(
            "the secrets file {} is not a map of secrets to keys and values",
            path.display()
        ))
        .with_hint(shape_hint)
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
                    return Err(CliError::usage(format!(
                        "secret `{name}` key `{key}` in {} is not a text value",
                        path.display()
                    ))
                    .with_hint(shape_hint));
                }
            };
            values.insert(key, text);
        }
        out.insert(name, values);
    }
    Ok(out)
}
