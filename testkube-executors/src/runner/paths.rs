//! A worker's workspace: the folders a step sees as `/data`, `/tmp` and
//! `/testkube`, and how a path written in a workflow maps to them.
//!
//! In a sandbox (or a pod) the folders are mounted at those paths and a
//! path means what it says. Without a sandbox the step runs on the host,
//! so the runner maps paths under `/data`, `/tmp` and `/testkube` in the
//! fields it controls (working directories, content files, outputs) to the
//! workspace folders; paths inside scripts cannot be mapped, which is why
//! `TESTKUBE_OUTPUTS` and `TMPDIR` are set.

use std::path::{Path, PathBuf};

use testkube_core::status::DEFAULT_RESULTS_BASE;

/// Where `/testkube/outputs/<key>` files are written, relative to `/testkube`.
const OUTPUTS: &str = "outputs";

/// The workspace of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPaths {
    data: PathBuf,
    tmp: PathBuf,
    testkube: PathBuf,
    mounted: bool,
}

impl WorkerPaths {
    /// The workspace under `workspace` (`data/`, `tmp/`, `testkube/`);
    /// `mounted` when steps see the folders at `/data`, `/tmp`, `/testkube`.
    #[must_use]
    pub fn new(workspace: &Path, mounted: bool) -> Self {
        WorkerPaths {
            data: workspace.join("data"),
            tmp: workspace.join("tmp"),
            testkube: workspace.join("testkube"),
            mounted,
        }
    }

    /// Creates the folders.
    ///
    /// # Errors
    /// The I/O error of the first folder that cannot be created.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [&self.data, &self.tmp, &self.outputs_host()] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    /// The host folders mounted at `/data`, `/tmp` and `/testkube`.
    #[must_use]
    pub fn mounts(&self) -> [(&Path, &'static str); 3] {
        [
            (&self.data, "/data"),
            (&self.tmp, "/tmp"),
            (&self.testkube, "/testkube"),
        ]
    }

    /// The working directory of steps that set none.
    #[must_use]
    pub fn default_working_dir(&self) -> String {
        self.visible("/data")
    }

    /// A path as the step sees it: unchanged when mounted, else mapped to
    /// the workspace. Relative paths are relative to `/data`.
    #[must_use]
    pub fn visible(&self, path: &str) -> String {
        let absolute = absolute(path);
        if self.mounted {
            return absolute;
        }
        match self.host(&absolute) {
            Some(host) => host.display().to_string(),
            None => absolute,
        }
    }

    /// The host path of a workspace path (`/data/...`, `/tmp/...`,
    /// `/testkube/...`, or relative to `/data`); `None` outside them.
    #[must_use]
    pub fn host(&self, path: &str) -> Option<PathBuf> {
        let absolute = absolute(path);
        if !self.mounted {
            // Without a sandbox, paths the runner gave out (`step.results`,
            // `$TMPDIR`) are host paths already; mapping them again would
            // go wrong when the workspace is itself under `/tmp`.
            let path = Path::new(&absolute);
            if self.mounts().iter().any(|(host, _)| path.starts_with(host)) {
                return (!absolute.split('/').any(|part| part == "..")).then(|| path.to_path_buf());
            }
        }
        for (host, mount) in self.mounts() {
            if absolute == mount {
                return Some(host.to_path_buf());
            }
            if let Some(rest) = absolute
                .strip_prefix(mount)
                .and_then(|r| r.strip_prefix('/'))
            {
                if rest.split('/').any(|part| part == "..") {
                    return None;
                }
                return Some(host.join(rest));
            }
        }
        None
    }

    /// The host folder of `/testkube/outputs`.
    #[must_use]
    pub fn outputs_host(&self) -> PathBuf {
        self.testkube.join(OUTPUTS)
    }

    /// `/testkube/outputs` as the step sees it.
    #[must_use]
    pub fn outputs_visible(&self) -> String {
        self.visible("/testkube/outputs")
    }

    /// The folder of the steps' results folders (`/data/.steps`, where
    /// Testkube keeps them) as the steps see it: `step.<id>.results` is
    /// `<this>/<id>`.
    #[must_use]
    pub fn results_visible(&self) -> String {
        self.visible(DEFAULT_RESULTS_BASE)
    }

    /// The host folder of step `id`'s results folder; `None` for an id that
    /// would leave the workspace.
    #[must_use]
    pub fn results_host(&self, id: &str) -> Option<PathBuf> {
        if id.is_empty() || id.contains('/') {
            return None;
        }
        self.host(&format!("{DEFAULT_RESULTS_BASE}/{id}"))
    }

    /// `/tmp` as the step sees it.
    #[must_use]
    pub fn tmp_visible(&self) -> String {
        self.visible("/tmp")
    }
}

fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        match path.trim_end_matches('/') {
            "" => "/".to_owned(),
            trimmed => trimmed.to_owned(),
        }
    } else {
        let rest = path.trim_start_matches("./").trim_end_matches('/');
        if rest.is_empty() || rest == "." {
            "/data".to_owned()
        } else {
            format!("/data/{rest}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmounted_paths_map_to_the_workspace() {
        let paths = WorkerPaths::new(Path::new("/ws"), false);
        assert_eq!(paths.visible("/data/repo"), "/ws/data/repo");
        assert_eq!(paths.visible("repo/"), "/ws/data/repo");
        assert_eq!(paths.visible("/tmp"), "/ws/tmp");
        assert_eq!(paths.visible("/usr/bin"), "/usr/bin");
        assert_eq!(paths.host("/etc/passwd"), None);
        assert_eq!(paths.host("/data/../etc"), None);
        assert_eq!(paths.outputs_visible(), "/ws/testkube/outputs");
        assert_eq!(paths.results_visible(), "/ws/data/.steps");
        assert_eq!(
            paths.results_host("build"),
            Some(PathBuf::from("/ws/data/.steps/build"))
        );
        assert_eq!(paths.results_host(".."), None);
        assert_eq!(paths.results_host("a/b"), None);
        // Paths already in the workspace stay, even when it is under /tmp.
        let paths = WorkerPaths::new(Path::new("/tmp/ws"), false);
        assert_eq!(
            paths.visible("/tmp/ws/data/.steps/a"),
            "/tmp/ws/data/.steps/a"
        );
        assert_eq!(paths.visible("/tmp/x"), "/tmp/ws/tmp/x");
        assert_eq!(paths.host("/tmp/ws/data/../../etc"), None);
    }

    #[test]
    fn mounted_paths_stay_as_written() {
        let paths = WorkerPaths::new(Path::new("/ws"), true);
        assert_eq!(paths.visible("/data/repo"), "/data/repo");
        assert_eq!(paths.visible("x"), "/data/x");
        assert_eq!(paths.results_visible(), "/data/.steps");
        assert_eq!(
            paths.host("/testkube/outputs/a"),
            Some(PathBuf::from("/ws/testkube/outputs/a"))
        );
    }
}
