//! `content.tarball`: archives downloaded (http, https) or read from this
//! machine (a path or a `file://` URL: a file of the workspace such as
//! `/data/tests.tgz` when there is one, else of the machine) and unpacked
//! into the workspace. Workflow validation takes only http(s) URLs written
//! as such, so local archives come in through templates
//! (`url: '{{ config.archive }}'`).
//!
//! A download goes to a file in the worker's `/tmp` first (never whole into
//! memory), then the archive is read in a blocking task: gzip is recognised
//! by its magic bytes (whatever the name says), anything else is read as a
//! plain tar. Entries that would land outside the target folder are
//! refused and fail the step: absolute paths, `..`, links pointing out of
//! it, and writes through a link (the `tar` crate's own check).
//!
//! `mount: true` asks a pod for a fresh volume at `path`; a worker's folder
//! needs none, so it is unpacked into the folder as it is.

use std::io::{BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flate2::read::GzDecoder;
use testkube_core::model::ContentTarball;
use testkube_core::plan::PlanStep;
use tokio::io::AsyncWriteExt;

use super::super::{OperationEnd, StepRunner, Stop, stopped};
use super::percent_decode;

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// gzip's magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why getting or unpacking a tarball did not succeed.
enum TarballError {
    Failed(String),
    Stopped(Stop),
}

impl From<String> for TarballError {
    fn from(message: String) -> Self {
        TarballError::Failed(message)
    }
}

impl StepRunner {
    /// Fetches one `content.tarball` entry and unpacks it into its `path`.
    pub(in crate::runner) async fn tarball(
        &mut self,
        step: &PlanStep,
        tarball: &ContentTarball,
    ) -> OperationEnd {
        let (url, path) = match (self.render(&tarball.url), self.render(&tarball.path)) {
            (Ok(url), Ok(path)) => (url, path),
            (Err(message), _) | (_, Err(message)) => {
                return OperationEnd::failed(format!("content.tarball: {message}"));
            }
        };
        let Some(target) = self.paths.host(&path) else {
            return OperationEnd::failed(format!(
                "content.tarball: path `{path}` is outside /data, /tmp and /testkube"
            ));
        };
        self.log(
            &step.id,
            format!("content.tarball: unpacking {url} into {path}\n"),
        )
        .await;
        match self.fetch_and_unpack(&url, &target).await {
            Ok(count) => {
                self.log(
                    &step.id,
                    format!("content.tarball: unpacked {count} entries into {path}\n"),
                )
                .await;
                OperationEnd::passed()
            }
            Err(TarballError::Stopped(stop)) => stopped(stop),
            Err(TarballError::Failed(message)) => {
                OperationEnd::failed(format!("content.tarball {url}: {message}"))
            }
        }
    }

    async fn fetch_and_unpack(&self, url: &str, target: &Path) -> Result<usize, TarballError> {
        let lower = url.to_ascii_lowercase();
        let mut downloaded = None;
        let source = if lower.starts_with("http://") || lower.starts_with("https://") {
            let scratch = self
                .paths
                .host("/tmp")
                .ok_or_else(|| "the worker has no /tmp folder".to_owned())?;
            let file = Download(scratch.join(format!(
                ".testkube-tarball-{}-{}",
                std::process::id(),
                unique()
            )));
            self.download(url, &file.0).await?;
            let path = file.0.clone();
            downloaded = Some(file);
            path
        } else if let Some(rest) = lower.strip_prefix("file://").map(|_| &url[7..]) {
            let rest = rest.strip_prefix("localhost").unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err(format!(
                    "`{url}` is not a file URL of this machine (file:///absolute/path)"
                )
                .into());
            }
            self.local_archive(&percent_decode(rest))
        } else if lower.contains("://") {
            return Err("only http, https and file URLs or local paths can be used"
                .to_owned()
                .into());
        } else {
            self.local_archive(url)
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let unpack = {
            let cancel = Arc::clone(&cancel);
            let target = target.to_path_buf();
            tokio::task::spawn_blocking(move || unpack(&source, &target, &cancel))
        };
        let mut stop = self.stop_signal();
        let result = tokio::select! {
            result = unpack => result.map_err(|err| format!("unpacking failed: {err}"))?,
            stop = stop.fired() => {
                cancel.store(true, Ordering::Relaxed);
                return Err(TarballError::Stopped(stop));
            }
        };
        drop(downloaded);
        Ok(result?)
    }

    /// The file of a local archive: a file of the workspace (`/data/...`,
    /// as the step sees it) when there is one, else a file of this machine
    /// (relative paths: to the runner's working directory).
    fn local_archive(&self, path: &str) -> PathBuf {
        self.paths
            .host(path)
            .filter(|host| host.is_file())
            .unwrap_or_else(|| PathBuf::from(path))
    }

    /// Downloads `url` into `file`, chunk by chunk.
    async fn download(&self, url: &str, file: &Path) -> Result<(), TarballError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| format!("cannot set up an HTTP client: {}", error_chain(&err)))?;
        let mut stop = self.stop_signal();
        let transfer = async {
            let mut response = client.get(url).send().await.map_err(|err| {
                format!(
                    "cannot download it: {} (check the URL and that this machine can reach \
                     the server)",
                    error_chain(&err)
                )
            })?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!(
                    "the server answered {status}{}",
                    if status == reqwest::StatusCode::NOT_FOUND {
                        ": check the URL"
                    } else {
                        ""
                    }
                ));
            }
            let mut out = tokio::fs::File::create(file)
                .await
                .map_err(|err| format!("cannot create {}: {err}", file.display()))?;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|err| format!("the download broke off: {}", error_chain(&err)))?
            {
                out.write_all(&chunk)
                    .await
                    .map_err(|err| format!("cannot write {}: {err}", file.display()))?;
            }
            out.flush()
                .await
                .map_err(|err| format!("cannot write {}: {err}", file.display()))
        };
        tokio::select! {
            result = transfer => result.map_err(TarballError::Failed),
            stop = stop.fired() => Err(TarballError::Stopped(stop)),
        }
    }
}

/// A downloaded file, removed when dropped.
struct Download(PathBuf);

impl Drop for Download {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Unpacks the (gzipped or plain) tar `source` into `target`; returns how
/// many entries it wrote.
fn unpack(source: &Path, target: &Path, cancel: &AtomicBool) -> Result<usize, String> {
    let mut file = std::fs::File::open(source)
        .map_err(|err| format!("cannot read {}: {err}", source.display()))?;
    let mut magic = [0u8; 2];
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(err) => return Err(format!("cannot read {}: {err}", source.display())),
        }
    }
    if read == 0 {
        return Err("it is empty, not a tarball".to_owned());
    }
    file.rewind()
        .map_err(|err| format!("cannot read {}: {err}", source.display()))?;
    let reader: Box<dyn Read> = if magic == GZIP_MAGIC {
        Box::new(GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    std::fs::create_dir_all(target)
        .map_err(|err| format!("cannot create {}: {err}", target.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_overwrite(true);
    let not_a_tarball =
        |err: std::io::Error| format!("it is not a tar archive (plain or gzip-compressed): {err}");
    let entries = archive.entries().map_err(not_a_tarball)?;
    let mut count = 0;
    for entry in entries {
        if cancel.load(Ordering::Relaxed) {
            return Err("stopped".to_owned());
        }
        let mut entry = entry.map_err(|err| {
            if count == 0 {
                not_a_tarball(err)
            } else {
                format!("the archive is damaged after {count} entries: {err}")
            }
        })?;
        let name = entry
            .path()
            .map_err(|err| format!("an entry has an unreadable name: {err}"))?
            .into_owned();
        let shown = name.display().to_string();
        if !stays_inside(Path::new(""), &name) {
            return Err(refused(&shown, "its path leaves the target folder"));
        }
        let kind = entry.header().entry_type();
        if (kind.is_symlink() || kind.is_hard_link())
            && let Some(link) = entry
                .link_name()
                .map_err(|err| format!("entry `{shown}` has an unreadable link: {err}"))?
        {
            let base = if kind.is_symlink() {
                name.parent().unwrap_or(Path::new("")).to_path_buf()
            } else {
                PathBuf::new()
            };
            if !stays_inside(&base, &link) {
                return Err(refused(
                    &shown,
                    &format!(
                        "it links to `{}`, outside the target folder",
                        link.display()
                    ),
                ));
            }
        }
        match entry.unpack_in(target) {
            Ok(true) => count += 1,
            Ok(false) => return Err(refused(&shown, "its path leaves the target folder")),
            Err(err) => return Err(format!("cannot unpack entry `{shown}`: {err}")),
        }
    }
    Ok(count)
}

fn refused(entry: &str, why: &str) -> String {
    format!("entry `{entry}` is refused: {why} (the archive is unsafe to unpack)")
}

/// Whether `path`, relative to the folder `base` (itself relative to the
/// target), stays inside the target.
fn stays_inside(base: &Path, path: &Path) -> bool {
    let mut depth: usize = base
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// An error with its causes, for messages.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A number that differs between calls (file names).
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_url_paths_are_decoded() {
        assert_eq!(percent_decode("/a%20b/c%2"), "/a b/c%2");
    }

    #[test]
    fn paths_that_leave_the_target_are_recognised() {
        assert!(stays_inside(Path::new(""), Path::new("a/b")));
        assert!(stays_inside(Path::new(""), Path::new("./a/../b")));
        assert!(!stays_inside(Path::new(""), Path::new("../x")));
        assert!(!stays_inside(Path::new(""), Path::new("a/../../x")));
        assert!(!stays_inside(Path::new(""), Path::new("/etc/passwd")));
        assert!(stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!stays_inside(Path::new("a"), Path::new("../../c")));
    }
}
