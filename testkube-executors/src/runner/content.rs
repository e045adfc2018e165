//! `content`: what a step fetches into its workspace before it runs, in the
//! format's order: inline `files`, a `git` checkout, `tarball`s.
//!
//! The runner does this work itself rather than as a step process: it needs
//! no image, its credentials stay in the runner's own memory and in the
//! environment of the `git` processes it starts (never in a command line, a
//! file of the workspace or a log), and every error it reports can be
//! scrubbed of them first. Paths are the workflow's (`/data/repo`) and are
//! mapped to the worker's folders through [`WorkerPaths::host`], so the same
//! code serves plain processes, a sandbox, or a pod.
//!
//! [`WorkerPaths::host`]: super::WorkerPaths::host

mod git;
mod tarball;

use testkube_core::model::Content;
use testkube_core::plan::PlanStep;
use testkube_core::status::StepStatus;

use super::{OperationEnd, StepRunner};

impl StepRunner {
    /// Fetches a step's `content`: files, then the Git checkout, then the
    /// tarballs. The first failure fails the step.
    pub(super) async fn content(&mut self, step: &PlanStep, content: &Content) -> OperationEnd {
        let end = self.content_files(content);
        if end.status != StepStatus::Passed {
            return end;
        }
        if let Some(git) = &content.git {
            let end = self.git_checkout(step, git).await;
            if end.status != StepStatus::Passed {
                return end;
            }
        }
        for tarball in &content.tarball {
            let end = self.tarball(step, tarball).await;
            if end.status != StepStatus::Passed {
                return end;
            }
        }
        OperationEnd::passed()
    }

    /// Writes inline `content.files` (templates rendered, `mode` applied).
    fn content_files(&self, content: &Content) -> OperationEnd {
        for file in &content.files {
            let path = match self.render(&file.path) {
                Ok(path) => path,
                Err(message) => return OperationEnd::failed(message),
            };
            let Some(host) = self.paths.host(&path) else {
                return OperationEnd::failed(format!(
                    "content file `{path}` is outside /data, /tmp and /testkube"
                ));
            };
            let text = match file.content.as_deref().map(|t| self.render(t)) {
                Some(Ok(text)) => text,
                Some(Err(message)) => return OperationEnd::failed(message),
                None => String::new(),
            };
            if let Err(err) = write_file(&host, &text, file.mode) {
                return OperationEnd::failed(format!("cannot write content file `{path}`: {err}"));
            }
        }
        OperationEnd::passed()
    }
}

fn write_file(path: &std::path::Path, text: &str, mode: Option<i32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    if let Some(mode) = mode.and_then(|mode| u32::try_from(mode).ok()) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// `%XX` escapes of a part of a URL decoded (invalid ones kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(value) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
