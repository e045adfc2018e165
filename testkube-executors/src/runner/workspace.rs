//! `file(path)` and `glob(patterns...)` in a worker's expressions: they
//! read the worker's workspace at the moment the expression is evaluated
//! (e.g. `shards: {file: 'glob("tests/**/test_*.py")'}` lists the files an
//! earlier step created), the way Testkube's toolkit does in the pod.
//!
//! As in Testkube, relative paths and patterns are relative to the working
//! directory (`/data`, the default working directory of steps here, or the
//! `workingDir` of the step that holds a `parallel` block), and
//! `glob` gives the matching files (not folders) as absolute paths as the
//! steps see them (`/data/tests/test_a.py`), in path order; patterns
//! starting with `!` exclude. [`WorkerPaths`] maps `/data`, `/tmp` and
//! `/testkube` to the worker's folders; other paths are read as they are.

use std::collections::BTreeSet;
use std::path::PathBuf;

use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;
use testkube_core::expr::Context;

use super::WorkerPaths;

/// The working directory `file()` and `glob()` resolve relative paths in.
const WORKING_DIR: &str = "/data";

/// A context that answers variables from `inner` and `file`/`glob` from
/// the worker's workspace, relative to `/data`.
pub(crate) struct WorkspaceFiles<C> {
    inner: C,
    paths: WorkerPaths,
}

impl<C: Context> WorkspaceFiles<C> {
    pub(crate) fn new(inner: C, paths: WorkerPaths) -> Self {
        WorkspaceFiles { inner, paths }
    }
}

impl<C: Context> Context for WorkspaceFiles<C> {
    fn variable(&self, name: &str) -> Option<Value> {
        self.inner.variable(name)
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        Some(read_file(&self.paths, WORKING_DIR, path))
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        Some(glob_files(&self.paths, WORKING_DIR, patterns))
    }

    fn working_dir(&self) -> Option<String> {
        Some(WORKING_DIR.to_owned())
    }

    fn parent(&self) -> Option<&dyn Context> {
        Some(&self.inner)
    }
}

/// A context over another one whose `file`/`glob` (and relative paths)
/// use `working_dir` instead: a step's own `workingDir`.
pub(crate) struct InFolder<'a> {
    pub(crate) inner: &'a dyn Context,
    pub(crate) paths: &'a WorkerPaths,
    /// Absolute, as the steps see it.
    pub(crate) working_dir: String,
}

impl Context for InFolder<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        self.inner.variable(name)
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        Some(read_file(self.paths, &self.working_dir, path))
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        Some(glob_files(self.paths, &self.working_dir, patterns))
    }

    fn working_dir(&self) -> Option<String> {
        Some(self.working_dir.clone())
    }

    fn parent(&self) -> Option<&dyn Context> {
        Some(self.inner)
    }
}

/// Where the file a step sees at `visible` (absolute) is.
fn host(paths: &WorkerPaths, visible: &str) -> PathBuf {
    paths
        .host(visible)
        .unwrap_or_else(|| PathBuf::from(visible))
}

/// `file(path)`: the contents of a file, `path` relative to `working_dir`.
fn read_file(paths: &WorkerPaths, working_dir: &str, path: &str) -> Result<String, String> {
    let visible = absolute(path, working_dir);
    std::fs::read_to_string(host(paths, &visible))
        .map_err(|err| format!("cannot read file `{visible}`: {err}"))
}

/// `glob(patterns...)`: the matching files, patterns relative to
/// `working_dir`, as absolute paths in path order.
fn glob_files(
    paths: &WorkerPaths,
    working_dir: &str,
    patterns: &[String],
) -> Result<Vec<String>, String> {
    let (exclude, include): (Vec<&String>, Vec<&String>) =
        patterns.iter().partition(|p| p.starts_with('!'));
    if include.is_empty() {
        return Err("glob() needs at least one pattern that does not start with `!`".into());
    }
    let exclude = exclude
        .iter()
        .map(|pattern| matcher(&absolute(&pattern[1..], working_dir)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut found = BTreeSet::new();
    for pattern in include {
        let pattern = absolute(pattern, working_dir);
        let include = matcher(&pattern)?;
        let base = search_root(&pattern);
        let base_host = host(paths, &base);
        for (visible, _) in files_under(&base_host, &base, None) {
            if include.is_match(&visible) && !exclude.iter().any(|m| m.is_match(&visible)) {
                found.insert(visible);
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// The regular files (and links to regular files) under the host folder
/// `base_host`, which steps see at `base`: each as the path a step sees and
/// the host path, at most `max_depth` levels down. Links are not followed
/// into folders, so a link cannot pull in files outside the workspace.
pub(super) fn files_under<'a>(
    base_host: &'a std::path::Path,
    base: &'a str,
    max_depth: Option<usize>,
) -> impl Iterator<Item = (String, PathBuf)> + 'a {
    let mut walk = walkdir::WalkDir::new(base_host).follow_links(false);
    if let Some(depth) = max_depth {
        walk = walk.max_depth(depth);
    }
    walk.into_iter()
        .filter_map(Result::ok)
        .filter_map(move |entry| {
            let is_file = entry.file_type().is_file()
                || (entry.file_type().is_symlink()
                    && std::fs::metadata(entry.path()).is_ok_and(|meta| meta.is_file()));
            if !is_file {
                return None;
            }
            let relative = entry.path().strip_prefix(base_host).ok()?.to_str()?;
            let visible = if relative.is_empty() {
                base.to_owned()
            } else {
                format!("{}/{relative}", base.trim_end_matches('/'))
            };
            Some((visible, entry.into_path()))
        })
}

/// `path` as an absolute, normalized path (relative to `working_dir`).
pub(crate) fn absolute(path: &str, working_dir: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", working_dir.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The folder to walk for `pattern`: its segments before the first one
/// with a glob character.
fn search_root(pattern: &str) -> String {
    let literal: Vec<&str> = pattern
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[', '{']))
        .collect();
    match literal.join("/") {
        root if root.is_empty() => "/".to_owned(),
        root => root,
    }
}

fn matcher(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|err| format!("invalid glob pattern `{pattern}`: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkube_core::expr::{Expr, MapContext};

    #[test]
    fn paths_are_relative_to_data() {
        assert_eq!(absolute("tests/a.py", "/data"), "/data/tests/a.py");
        assert_eq!(absolute("./x/../y", "/data/"), "/data/y");
        assert_eq!(absolute("/tmp/z/", "/data"), "/tmp/z");
        assert_eq!(absolute("t", "/data/repo"), "/data/repo/t");
        assert_eq!(search_root("/data/tests/**/*.py"), "/data/tests");
        assert_eq!(search_root("/data/a.py"), "/data/a.py");
    }

    #[test]
    fn glob_and_file_read_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let paths = WorkerPaths::new(dir.path(), false);
        paths.create().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("tests/deep")).unwrap();
        for file in [
            "tests/b.py",
            "tests/a.py",
            "tests/deep/c.py",
            "tests/skip.py",
        ] {
            std::fs::write(data.join(file), file).unwrap();
        }
        std::fs::write(data.join("tests/notes.txt"), "n").unwrap();
        let ctx = WorkspaceFiles::new(MapContext::new(), paths);
        let eval = |text: &str| Expr::parse(text).unwrap().resolve(&ctx);
        assert_eq!(
            eval(r#"glob("tests/*.py", "!**/skip.py")"#).unwrap(),
            serde_json::json!(["/data/tests/a.py", "/data/tests/b.py"])
        );
        assert_eq!(
            eval(r#"glob("/data/tests/**/*.py")"#).unwrap(),
            serde_json::json!([
                "/data/tests/a.py",
                "/data/tests/b.py",
                "/data/tests/deep/c.py",
                "/data/tests/skip.py"
            ])
        );
        assert_eq!(
            eval(r#"glob("missing/*.py")"#).unwrap(),
            serde_json::json!([])
        );
        assert_eq!(
            eval(r#"file("tests/a.py")"#).unwrap(),
            serde_json::json!("tests/a.py")
        );
        let missing = eval(r#"file("nope.txt")"#).unwrap_err().to_string();
        assert!(missing.contains("/data/nope.txt"), "{missing}");
        let inner = MapContext::new();
        let paths = WorkerPaths::new(dir.path(), false);
        let in_tests = InFolder {
            inner: &inner,
            paths: &paths,
            working_dir: "/data/tests".to_owned(),
        };
        assert_eq!(
            Expr::parse(r#"glob("deep/*.py")"#)
                .unwrap()
                .resolve(&in_tests)
                .unwrap(),
            serde_json::json!(["/data/tests/deep/c.py"])
        );
    }
}
