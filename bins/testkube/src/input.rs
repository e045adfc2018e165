//! Reading what the user points at: files and folders of workflows, `KEY=VALUE`
//! pairs, item lists on standard input.

use std::io::{self, BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use crate::commands::CliError;

/// Files named by `paths`: files as given, folders searched (sorted, recursively)
/// for `*.yaml` / `*.yml`, skipping hidden entries.
pub(crate) fn workflow_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|err| {
            CliError::input(format!("cannot read {}: {err}", path.display()))
                .with_hint("check the path; folders are searched for *.yaml and *.yml files")
        })?;
        if meta.is_dir() {
            collect_yaml(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CliError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|err| CliError::input(format!("cannot read folder {}: {err}", dir.display())))?
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
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|ext| ext.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a whole file, with an error that names it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|err| CliError::input(format!("cannot read {}: {err}", path.display())))
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
            .with_hint("pass items as arguments or pipe them in, one per line"));
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
    Ok(out)
}
