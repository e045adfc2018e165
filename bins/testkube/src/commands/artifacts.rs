//! `testkube artifacts ID [--download DIR]`: the files an execution kept, and copies of them.
//!
//! Downloads land at `DIR/<worker path>/<path>` so that workers' files with the same name never
//! overwrite each other. Paths come from the store, which any process can write: a worker or
//! path that would leave `DIR` (absolute, or with `..`) is refused, not followed.
//!
//! Each artifact is read from where its record says it is, whatever the store of the run that
//! kept it: a local file is copied; an `s3://bucket/key` location is streamed from S3 with the
//! `AWS_*` settings of this shell (`testkube_results::artifacts::ArtifactReader`), so
//! `TESTKUBE_ARTIFACTS_URL` need not match the one the run had.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use testkube_core::store::{ArtifactRecord, ResultStore};
use testkube_results::artifacts::ArtifactReader;

use super::get::{block_on, find, format_size, open_store, store_error};
use super::{CliError, print_json};
use crate::cli::{ArtifactsArgs, TextOutput};
use crate::style::{self, outln, paint};

pub(crate) fn run(args: ArtifactsArgs) -> Result<ExitCode, CliError> {
    let (name, artifacts) = block_on(async {
        let store = open_store().await?;
        let record = find(&store, &args.id).await?;
        let artifacts = store.artifacts(&record.id).await.map_err(store_error)?;
        Ok((record.name, artifacts))
    })?;
    let Some(dir) = &args.download else {
        match args.output {
            TextOutput::Json => print_json(&artifacts)?,
            TextOutput::Pretty if artifacts.is_empty() => anstream::eprintln!(
                "{}",
                paint(style::DIM, format!("execution {name} kept no artifacts"))
            ),
            TextOutput::Pretty => print_table(&artifacts),
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut saved = Vec::new();
    let mut failures = Vec::new();
    let mut remote = Remote::default();
    for artifact in &artifacts {
        match download(artifact, dir, &mut remote) {
            Ok(path) => {
                if args.output == TextOutput::Pretty {
                    outln!(
                        "{}  {}",
                        path.display(),
                        paint(style::DIM, format_size(artifact.size))
                    );
                }
                saved.push(Saved {
                    artifact,
                    saved_to: Some(path),
                    error: None,
                });
            }
            Err(err) => {
                saved.push(Saved {
                    artifact,
                    saved_to: None,
                    error: Some(err.message().to_owned()),
                });
                failures.push(err);
            }
        }
    }
    if args.output == TextOutput::Json {
        print_json(&saved)?;
    } else if artifacts.is_empty() {
        anstream::eprintln!(
            "{}",
            paint(style::DIM, format!("execution {name} kept no artifacts"))
        );
    }
    for err in &failures {
        style::print_error(err);
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One artifact in `--download -o json`: the record, and where it was saved or why not.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Saved<'a> {
    #[serde(flatten)]
    artifact: &'a ArtifactRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    saved_to: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn print_table(artifacts: &[ArtifactRecord]) {
    let sizes: Vec<String> = artifacts.iter().map(|a| format_size(a.size)).collect();
    let path_width = artifacts
        .iter()
        .map(|a| a.path.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let size_width = sizes.iter().map(String::len).max().unwrap_or(0).max(4);
    let worker_width = artifacts
        .iter()
        .map(|a| a.worker.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    outln!(
        "{}",
        paint(
            style::BOLD,
            format!(
                "{:<path_width$}  {:>size_width$}  {:<worker_width$}  STEP",
                "PATH", "SIZE", "WORKER"
            )
        )
    );
    for (artifact, size) in artifacts.iter().zip(&sizes) {
        outln!(
            "{:<path_width$}  {size:>size_width$}  {:<worker_width$}  {}",
            artifact.path,
            artifact.worker,
            artifact.step
        );
    }
}

/// Reads artifacts kept in object storage: a runtime and a reader, made on first use.
#[derive(Default)]
struct Remote {
    reader: Option<(tokio::runtime::Runtime, ArtifactReader)>,
}

impl Remote {
    /// Streams the object at `location` to `target`.
    fn download(&mut self, location: &str, target: &Path) -> Result<(), CliError> {
        let (runtime, reader) = match &mut self.reader {
            Some(pair) => pair,
            empty => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?;
                empty.insert((runtime, ArtifactReader::from_env()))
            }
        };
        runtime
            .block_on(reader.download(location, target))
            .map(drop)
            .map_err(|err| CliError::input(err.to_string()))
    }
}

/// Copies `artifact` to `dir/<worker>/<path>`; returns where.
fn download(
    artifact: &ArtifactRecord,
    dir: &Path,
    remote: &mut Remote,
) -> Result<PathBuf, CliError> {
    let relative = inside(&artifact.worker)
        .and_then(|worker| Some(worker.join(inside(&artifact.path)?)))
        .ok_or_else(|| {
            CliError::input(format!(
                "refusing to save `{}` of worker `{}`: the path would leave {}",
                artifact.path,
                artifact.worker,
                dir.display()
            ))
        })?;
    let target = dir.join(relative);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| CliError::input(format!("cannot create {}: {err}", parent.display())))?;
    }
    let Some(source) = local_file(&artifact.location) else {
        if !ArtifactReader::can_read(&artifact.location) {
            return Err(CliError::input(format!(
                "cannot download `{}`: it is kept at {}, which is neither a local file nor an \
                 s3:// object",
                artifact.path, artifact.location
            ))
            .with_hint("fetch it from there with a tool that reaches that storage"));
        }
        remote
            .download(&artifact.location, &target)
            .map_err(|err| {
                CliError::input(format!(
                    "cannot download `{}`: {}",
                    artifact.path,
                    err.message()
                ))
            })?;
        return Ok(target);
    };
    std::fs::copy(&source, &target).map_err(|err| {
        CliError::input(format!(
            "cannot copy {} to {}: {err}",
            source.display(),
            target.display()
        ))
        .with_hint(
            "the run's files may have been deleted; artifacts are kept under the home folder",
        )
    })?;
    Ok(target)
}

/// `text` as a relative path that stays inside the folder it is joined to: only plain names
/// (and `.`), never absolute, never `..`; `None` otherwise or when empty.
fn inside(text: &str) -> Option<PathBuf> {
    let path = Path::new(text);
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!clean.as_os_str().is_empty()).then_some(clean)
}

/// Where a location on this machine is: an absolute path or a `file://` URL.
fn local_file(location: &str) -> Option<PathBuf> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    let path = Path::new(path);
    path.is_absolute().then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        assert_eq!(
            inside("reports/junit.xml"),
            Some(PathBuf::from("reports/junit.xml"))
        );
        assert_eq!(inside("./a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(inside("root/tests/2"), Some(PathBuf::from("root/tests/2")));
        for bad in ["../x", "a/../../x", "/etc/passwd", "", ".", "a/.."] {
            assert_eq!(inside(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_local_locations_are_copied() {
        assert_eq!(local_file("/home/a/x"), Some(PathBuf::from("/home/a/x")));
        assert_eq!(
            local_file("file:///home/a/x"),
            Some(PathBuf::from("/home/a/x"))
        );
        assert_eq!(local_file("s3://bucket/x"), None);
        assert_eq!(local_file("relative/x"), None);
    }
}
