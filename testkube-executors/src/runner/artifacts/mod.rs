//! `artifacts`: files a step leaves behind, kept after the run, and the
//! test results found among them.
//!
//! The runner collects them itself, after the step's commands (also when
//! they failed: the operation's condition defaults to `always`), so that
//! the same code keeps artifacts of local workers and of pods. Where they
//! go is the executor's choice ([`ArtifactStorage`]): a local worker writes
//! each file to an [`object_store`] (a folder, or S3 and the like), files
//! streamed, never read whole; a pod, which holds no credentials, packs the
//! step's files into one archive and hands it to [`ArtifactUploads`] (a URL
//! the engine signed), and the engine files and reports the artifacts.
//!
//! `paths` are globs (`*` within a folder, `**` across folders) relative
//! to `workingDir` (default `/data`); a pattern naming a folder takes all
//! its files. Each file is stored under its path relative to `workingDir`
//! (or `compress: {name}` packs them all into one `.tar.gz`). Nothing
//! matching is a notice, not a failure, as in Testkube.
//!
//! JUnit reports among the collected files (the format's rule: `*.xml`
//! whose first 8 KB mention `<testsuite`) are parsed and reported as
//! [`WorkerEvent::TestCases`]; a report that cannot be read is a notice.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use object_store::path::Path as ObjectPath;
use testkube_core::engine::WorkerEvent;
use testkube_core::model::Artifacts;
use testkube_core::plan::PlanStep;

use super::{OperationEnd, StepRunner, Stop, stopped};

mod storage;

pub use storage::{ArtifactStorage, ArtifactUploads};
use storage::{Scratch, Target, key, pack, upload};

/// Where `paths` are relative to when the step sets no `workingDir`.
const DEFAULT_WORKING_DIR: &str = "/data";

/// How much of an `.xml` file is searched for `<testsuite`.
const JUNIT_SNIFF_BYTES: usize = 8 * 1024;

/// One file to collect.
struct Found {
    /// Its name among the artifacts (relative to the working directory).
    name: String,
    /// Where it is on this machine.
    host: PathBuf,
}

impl StepRunner {
    /// Collects a step's `artifacts` when `condition` holds.
    pub(super) async fn artifacts(
        &mut self,
        step: &PlanStep,
        condition: &str,
        artifacts: &Artifacts,
    ) -> OperationEnd {
        if let Some(stop @ Stop::Interrupted(_)) = self.stop_signal().check() {
            return stopped(stop);
        }
        let decided = {
            let scope = self.step_scope();
            scope.checked(self.status.should_run_in(&step.id, condition, &scope))
        };
        match decided {
            Ok(true) => {}
            Ok(false) => {
                self.log(
                    &step.id,
                    format!("artifacts: not collected (condition `{condition}` is false)\n"),
                )
                .await;
                return OperationEnd::passed();
            }
            Err(err) => {
                return OperationEnd::failed(format!("artifacts: condition `{condition}`: {err}"));
            }
        }
        let found = match self.find_artifacts(artifacts) {
            Ok(found) => found,
            Err(message) => return OperationEnd::failed(format!("artifacts: {message}")),
        };
        if found.is_empty() {
            self.notice(format!(
                "step `{}`: no artifacts matched {}",
                step.id,
                artifacts
                    .paths
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await;
            return OperationEnd::passed();
        }
        let compress = match &artifacts.compress {
            Some(compress) => match self.render(&compress.name) {
                Ok(name) => Some(name.trim_start_matches('/').to_owned()),
                Err(message) => {
                    return OperationEnd::failed(format!("artifacts: compress.name: {message}"));
                }
            },
            None => None,
        };
        let stored = match (&self.artifact_storage, compress) {
            (None, _) => Err(NO_STORAGE.to_owned()),
            (Some(storage), compress) => match &storage.target {
                Target::Uploads(uploads) => {
                    let uploads = Arc::clone(uploads);
                    self.upload_archive(step, &*uploads, compress.as_deref(), &found)
                        .await
                }
                Target::Store { .. } => match compress {
                    Some(name) => self.store_archive(step, storage, &name, &found).await,
                    None => self.store_files(step, storage, &found).await,
                },
            },
        };
        if let Err(message) = stored {
            return OperationEnd::failed(format!("artifacts: {message}"));
        }
        self.report_tests(step, &found).await;
        OperationEnd::passed()
    }

    /// The files matching the artifacts' `paths`, by name.
    fn find_artifacts(&self, artifacts: &Artifacts) -> Result<Vec<Found>, String> {
        let working_dir = match &artifacts.working_dir {
            Some(dir) => absolute(&self.render(dir)?, DEFAULT_WORKING_DIR),
            None => DEFAULT_WORKING_DIR.to_owned(),
        };
        let mut found = BTreeMap::new();
        for pattern in &artifacts.paths {
            let pattern = self.render(pattern)?;
            if pattern.trim().is_empty() {
                continue;
            }
            let pattern = if pattern.starts_with('/') {
                clean(&pattern)
            } else {
                clean(&format!(
                    "{}/{pattern}",
                    globset::escape(working_dir.trim_end_matches('/'))
                ))
            };
            self.find_matches(&pattern, &working_dir, &mut found)?;
        }
        Ok(found
            .into_iter()
            .map(|(name, host)| Found { name, host })
            .collect())
    }

    /// Adds the files matching the absolute glob `pattern` to `found`.
    fn find_matches(
        &self,
        pattern: &str,
        working_dir: &str,
        found: &mut BTreeMap<String, PathBuf>,
    ) -> Result<(), String> {
        let parts: Vec<&str> = pattern.split('/').collect();
        let first_glob = parts.iter().position(|part| has_glob(part));
        let (base, pattern) = match first_glob {
            Some(index) => (parts[..index].join("/"), pattern.to_owned()),
            None => {
                let literal = unescape(pattern);
                let host = self.workspace_path(&literal)?;
                match std::fs::metadata(&host) {
                    Ok(meta) if meta.is_file() => {
                        found.insert(artifact_name(&literal, working_dir), host);
                        return Ok(());
                    }
                    Ok(meta) if meta.is_dir() => (literal, format!("{pattern}/**")),
                    _ => return Ok(()),
                }
            }
        };
        let base = unescape(if base.is_empty() { "/" } else { &base });
        let base_host = self.workspace_path(&base)?;
        let matcher = glob(&pattern)?;
        let max_depth =
            (!pattern.contains("**")).then(|| parts.len() - first_glob.unwrap_or(parts.len()));
        for (visible, host) in super::workspace::files_under(&base_host, &base, max_depth) {
            if matcher.is_match(&visible) {
                found.insert(artifact_name(&visible, working_dir), host);
            }
        }
        Ok(())
    }

    /// The host path of a workspace path, or why it cannot be collected.
    fn workspace_path(&self, path: &str) -> Result<PathBuf, String> {
        self.paths.host(path).ok_or_else(|| {
            format!(
                "`{path}` is outside /data, /tmp and /testkube: only the worker's folders can \
                 be collected"
            )
        })
    }

    /// Stores each file as its own artifact.
    async fn store_files(
        &self,
        step: &PlanStep,
        storage: &ArtifactStorage,
        found: &[Found],
    ) -> Result<(), String> {
        let Target::Store { store, prefix, .. } = &storage.target else {
            return Err(NO_STORAGE.to_owned());
        };
        for file in found {
            let key = key(prefix, &file.name)?;
            let size = upload(store, &key, &file.host)
                .await
                .map_err(|err| format!("cannot store `{}`: {err}", file.name))?;
            self.emit_artifact(step, storage, &file.name, &key, size)
                .await;
        }
        self.log(
            &step.id,
            format!("artifacts: stored {} file(s)\n", found.len()),
        )
        .await;
        Ok(())
    }

    /// Packs the files into one `.tar.gz` artifact named `name`.
    async fn store_archive(
        &self,
        step: &PlanStep,
        storage: &ArtifactStorage,
        name: &str,
        found: &[Found],
    ) -> Result<(), String> {
        let Target::Store { store, prefix, .. } = &storage.target else {
            return Err(NO_STORAGE.to_owned());
        };
        let key = key(prefix, name)?;
        let archive = self.pack_found(name, found).await?;
        let size = upload(store, &key, &archive.0)
            .await
            .map_err(|err| format!("cannot store `{name}`: {err}"))?;
        self.emit_artifact(step, storage, name, &key, size).await;
        self.log(
            &step.id,
            format!("artifacts: packed {} file(s) into {name}\n", found.len()),
        )
        .await;
        Ok(())
    }

    /// Packs the files into one archive and sends it through `uploads`.
    async fn upload_archive(
        &self,
        step: &PlanStep,
        uploads: &dyn ArtifactUploads,
        compress: Option<&str>,
        found: &[Found],
    ) -> Result<(), String> {
        if let Some(name) = compress {
            // Refused here, where the step can still fail, not when filed.
            key("", name)?;
        }
        let archive = self
            .pack_found(compress.unwrap_or("artifacts.tar.gz"), found)
            .await?;
        uploads
            .upload(&step.id, &archive.0, found.len() as u64, compress)
            .await?;
        let what = match compress {
            Some(name) => format!("packed {} file(s) into {name}, uploaded", found.len()),
            None => format!("uploaded {} file(s)", found.len()),
        };
        self.log(&step.id, format!("artifacts: {what}\n")).await;
        Ok(())
    }

    /// Packs `found` into a scratch `.tar.gz` in the worker's `/tmp`
    /// (removed when the result is dropped); `name` is for messages.
    async fn pack_found(&self, name: &str, found: &[Found]) -> Result<Scratch, String> {
        let scratch = self
            .paths
            .host("/tmp")
            .ok_or("the worker has no /tmp folder")?;
        let archive = Scratch(scratch.join(format!(
            ".testkube-artifacts-{}-{}.tar.gz",
            std::process::id(),
            unique()
        )));
        let files: Vec<(String, PathBuf)> = found
            .iter()
            .map(|file| (file.name.clone(), file.host.clone()))
            .collect();
        let path = archive.0.clone();
        tokio::task::spawn_blocking(move || pack(&path, &files))
            .await
            .map_err(|err| format!("packing failed: {err}"))?
            .map_err(|err| format!("cannot pack `{name}`: {err}"))?;
        Ok(archive)
    }

    async fn emit_artifact(
        &self,
        step: &PlanStep,
        storage: &ArtifactStorage,
        name: &str,
        key: &ObjectPath,
        size: u64,
    ) {
        let Target::Store { locate, .. } = &storage.target else {
            return;
        };
        let _ = self
            .events
            .send(WorkerEvent::Artifact {
                step: step.id.clone(),
                path: name.to_owned(),
                location: locate(key),
                size,
            })
            .await;
    }

    /// Parses the JUnit reports among `found` into test-case events.
    async fn report_tests(&self, step: &PlanStep, found: &[Found]) {
        for file in found {
            if !file
                .name
                .rsplit('.')
                .next()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("xml"))
            {
                continue;
            }
            let host = file.host.clone();
            let name = file.name.clone();
            let parsed = tokio::task::spawn_blocking(move || parse_junit(&host, &name)).await;
            match parsed {
                Ok(Ok(Some(cases))) => {
                    let _ = self
                        .events
                        .send(WorkerEvent::TestCases {
                            step: step.id.clone(),
                            report: file.name.clone(),
                            cases,
                        })
                        .await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(message)) => {
                    self.notice(format!(
                        "step `{}`: the test report `{}` cannot be read: {message}",
                        step.id, file.name
                    ))
                    .await;
                }
                Err(err) => {
                    self.notice(format!(
                        "step `{}`: reading the test report `{}` failed: {err}",
                        step.id, file.name
                    ))
                    .await;
                }
            }
        }
    }
}

/// What the runner says when it was given nowhere to keep artifacts.
const NO_STORAGE: &str = "this runner has no artifact storage";

/// A JUnit report's test cases; `None` when the file is not one.
fn parse_junit(
    host: &Path,
    name: &str,
) -> Result<Option<Vec<testkube_core::store::TestCaseRecord>>, String> {
    let mut file = std::fs::File::open(host).map_err(|err| err.to_string())?;
    let mut head = Vec::with_capacity(JUNIT_SNIFF_BYTES);
    (&mut file)
        .take(JUNIT_SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|err| err.to_string())?;
    if !head
        .windows(b"<testsuite".len())
        .any(|w| w == b"<testsuite")
    {
        return Ok(None);
    }
    let file = std::fs::File::open(host).map_err(|err| err.to_string())?;
    let report = testkube_results::parse_reader(std::io::BufReader::new(file), name)
        .map_err(|err| err.to_string())?;
    Ok(Some(
        report
            .cases
            .iter()
            .map(|case| testkube_results::test_case_record("", case))
            .collect(),
    ))
}

/// A glob matcher where `*` stays within a folder and `**` crosses them.
fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|err| format!("`{pattern}` is not a valid glob: {err}"))
}

fn has_glob(part: &str) -> bool {
    part.contains(['*', '?', '[', '{'])
}

/// A glob without the escapes of a literal part.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else if c == '[' {
            // globset::escape writes `[*]` for a literal `*`.
            let rest: String = chars.clone().take(2).collect();
            if rest.len() == 2 && rest.ends_with(']') {
                out.extend(rest.chars().next());
                chars.nth(1);
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The artifact name of the file `visible`: its path relative to the
/// working directory, else its absolute path without the leading `/`.
fn artifact_name(visible: &str, working_dir: &str) -> String {
    let dir = working_dir.trim_end_matches('/');
    visible
        .strip_prefix(dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or_else(|| visible.trim_start_matches('/'))
        .to_owned()
}

/// `path` made absolute against `base`.
fn absolute(path: &str, base: &str) -> String {
    if path.starts_with('/') {
        clean(path)
    } else {
        clean(&format!("{base}/{path}"))
    }
}

/// Drops empty and `.` segments (`..` is kept: the workspace mapping
/// refuses it).
fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// A number that differs between calls (file names).
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_stay_inside_the_prefix() {
        assert_eq!(
            key("run/root/", "a/b.tar.gz").unwrap().as_ref(),
            "run/root/a/b.tar.gz"
        );
        assert!(key("", "../x.tar.gz").unwrap_err().contains("not a valid"));
        assert!(key("", "a/./b").unwrap_err().contains("not a valid"));
        assert!(key("", "/").unwrap_err().contains("needs a name"));
    }

    #[test]
    fn names_are_relative_to_the_working_directory() {
        assert_eq!(artifact_name("/data/r/a.xml", "/data"), "r/a.xml");
        assert_eq!(artifact_name("/data/r/a.xml", "/data/r/"), "a.xml");
        assert_eq!(artifact_name("/tmp/x.log", "/data"), "tmp/x.log");
        assert_eq!(artifact_name("/data2/x", "/data"), "data2/x");
    }

    #[test]
    fn globs_keep_stars_within_folders() {
        let matcher = glob("/data/**/*.xml").unwrap();
        assert!(matcher.is_match("/data/a.xml"));
        assert!(matcher.is_match("/data/x/y/a.xml"));
        let matcher = glob("/data/*.xml").unwrap();
        assert!(!matcher.is_match("/data/x/a.xml"));
    }

    #[test]
    fn escaped_working_directories_stay_literal() {
        let escaped = globset::escape("/data/a*b");
        assert_eq!(unescape(&escaped), "/data/a*b");
        assert!(
            glob(&format!("{escaped}/*.txt"))
                .unwrap()
                .is_match("/data/a*b/x.txt")
        );
        assert_eq!(clean("/data/./x//y/"), "/data/x/y");
        assert_eq!(absolute("out", "/data"), "/data/out");
    }
}
