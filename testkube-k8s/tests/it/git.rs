//! A local bare git repository for `content.git` tests (a `file://` URL:
//! kube-sim's containers see this machine's root read-only, except `/tmp`,
//! which is their own: so the repository lives under the target folder).

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct BareRepo {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl BareRepo {
    /// A bare repository whose `main` branch holds `files`.
    pub(crate) fn new(files: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let dir = temp.path();
        let work = dir.join("repo-work");
        let path = dir.join("repo.git");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "--quiet", "-b", "main"]);
        for (name, text) in files {
            let file = work.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        git(&work, &["add", "."]);
        git(&work, &["commit", "--quiet", "-m", "files"]);
        git(
            dir,
            &[
                "clone",
                "--quiet",
                "--bare",
                &work.display().to_string(),
                &path.display().to_string(),
            ],
        );
        BareRepo { path, _dir: temp }
    }

    pub(crate) fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}
