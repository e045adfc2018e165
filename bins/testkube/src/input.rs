//! Reading what the user points at: files and folders of workflows, `KEY=VALUE`
//! pairs, item lists on standard input, the local source of secrets.
//!
//! Every read is bounded and refuses what is not a regular file, so pointing
//! a command at `/dev/zero`, a FIFO or a folder gives an error, not a hang.

use std::collections::HashSet;
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
