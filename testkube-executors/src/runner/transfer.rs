//! `parallel.transfer` and `parallel.fetch`: files that move between a
//! worker and the workers of its `parallel` blocks, as gzipped tar
//! archives.
//!
//! The engine only names the archives
//! ([`testkube_core::engine::WorkerFiles`]); where they live
//! is the executor's choice, behind [`ArchiveStore`]: a folder shared by
//! the execution's workers locally ([`FolderArchives`], under
//! `<runs>/<execution>/transfer/`), an object store for pods. The runner
//! does the rest, the same wherever it runs:
//!
//! 1. before asking the engine for a block, the parent packs each
//!    `transfer[i].files` (globs, default everything) found under
//!    `transfer[i].from` in its workspace;
//! 2. each worker unpacks those archives at `to` (default `from`) before
//!    its first step, then packs each `fetch[j].files` under
//!    `fetch[j].from` after its last step, whatever the verdict;
//! 3. once the block is over, the parent unpacks every worker's fetch
//!    archives, in worker order, at `fetch[j].to` (default `from`).
//!
//! Only regular files are packed (symbolic links are skipped: they could
//! point anywhere on the machine); unpacking refuses entries that are not
//! files or folders and paths that would land outside the target folder.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;
use testkube_core::engine::{PackArchive, WorkerFiles, WorkerId, WorkerSpec};
use testkube_core::expr::Expr;
use testkube_core::model::{DynamicList, Fetch, Transfer};
use testkube_core::plan::{PlanParallel, PlanStep};
use testkube_core::status::StepStatus;

use super::StepRunner;

/// Where a worker's archives are kept: shared by every worker of an
/// execution.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// A local folder to write archives into before [`put`](Self::put)
    /// (on the same filesystem as the store, so a put can be a rename).
    fn scratch(&self) -> PathBuf;

    /// Keeps the finished archive `file` (which the store may move) as
    /// `name`, replacing any archive of that name.
    ///
    /// # Errors
    /// The I/O error that prevented it.
    async fn put(&self, name: &str, file: &Path) -> io::Result<()>;

    /// A local file holding archive `name`, to read.
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] when there is no such archive; other
    /// I/O errors when it cannot be had.
    async fn get(&self, name: &str) -> io::Result<PathBuf>;
}

/// An [`ArchiveStore`] in a local folder (archive `a/b.tar.gz` is
/// `<folder>/a/b.tar.gz`).
#[derive(Debug, Clone)]
pub struct FolderArchives {
    root: PathBuf,
}

impl FolderArchives {
    /// Archives under `root` (created when needed).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderArchives { root: root.into() }
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        let relative = Path::new(name);
        let plain = relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
        if name.is_empty() || !plain {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid archive name `{name}`"),
            ));
        }
        Ok(self.root.join(relative))
    }
}

#[async_trait]
impl ArchiveStore for FolderArchives {
    fn scratch(&self) -> PathBuf {
        self.root.join(".partial")
    }

    async fn put(&self, name: &str, file: &Path) -> io::Result<()> {
        let target = self.path(name)?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(file, &target).await
    }

    async fn get(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.path(name)?;
        tokio::fs::metadata(&path).await?;
        Ok(path)
    }
}

/// How a worker meets the rest of its execution, beyond its steps: the
/// files it exchanges with its parent, whether it waits at its block's
/// start barrier, and where archives are kept. Build it from the
/// [`WorkerSpec`] with [`WorkerLink::from_spec`] and give it to the runner
/// with [`StepRunner::with_link`].
#[derive(Clone, Default)]
pub struct WorkerLink {
    /// The worker (names the archives of its own `parallel` blocks).
    pub worker: Option<WorkerId>,
    /// The archives to unpack before the first step and pack after the last.
    pub files: WorkerFiles,
    /// Whether to wait at the block's start barrier before the first step.
    pub barrier: bool,
    /// Where archives are kept; `transfer` and `fetch` fail without one.
    pub archives: Option<Arc<dyn ArchiveStore>>,
}

impl std::fmt::Debug for WorkerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLink")
            .field("worker", &self.worker)
            .field("files", &self.files)
            .field("barrier", &self.barrier)
            .field("archives", &self.archives.is_some())
            .finish()
    }
}

impl WorkerLink {
    /// The link of the worker `spec` describes, keeping archives in
    /// `archives`.
    #[must_use]
    pub fn from_spec(spec: &WorkerSpec, archives: Arc<dyn ArchiveStore>) -> Self {
        WorkerLink {
            worker: Some(spec.worker.clone()),
            files: spec.files.clone(),
            barrier: spec.barrier,
            archives: Some(archives),
        }
    }
}

/// A number for unique scratch file names within this process.
static SCRATCH: AtomicUsize = AtomicUsize::new(0);

impl StepRunner {
    /// Sets how the worker meets the rest of its execution (see
    /// [`WorkerLink`]); without it the worker has no files to exchange and
    /// no barrier, and its own `transfer`/`fetch` fail.
    #[must_use]
    pub fn with_link(mut self, link: WorkerLink) -> Self {
        self.link = link;
        self
    }

    /// Runs the worker's root: initializes it (the files it was given, its
    /// own `content`), waits at the start barrier, runs its steps, and packs
    /// the files its parent fetches.
    pub(super) async fn run_linked_root(&mut self, root: &PlanStep) -> StepStatus {
        // Only the first container of a pod waits at the barrier.
        let continued = self.relay.as_ref().is_some_and(super::Relay::initialized);
        let status = match self.initialize(root).await {
            Err(message) => {
                let status = self.initialization_failure();
                self.not_run(root, status, &message).await
            }
            Ok(root) if continued => self.run_decided(&root).await,
            Ok(root) => match self.wait_for_siblings().await {
                Some(stop) => {
                    let message = "the run was stopped before the workers started";
                    let status = super::stopped(stop).status;
                    self.not_run(&root, status, message).await
                }
                None => self.run_decided(&root).await,
            },
        };
        if !self.handing_off() {
            self.pack_fetched().await;
        }
        status
    }

    /// Unpacks the archives the worker was given (`transfer`).
    pub(super) async fn unpack_given(&mut self) -> Result<(), String> {
        let given = self.link.files.unpack.clone();
        for archive in &given {
            let target = self.host_dir(&archive.to, "transfer.to")?;
            let file = self.archive(&archive.archive).await.map_err(|err| {
                format!(
                    "cannot get the transferred files for `{}`: {err}",
                    archive.to
                )
            })?;
            blocking(move || unpack(&file, &target))
                .await
                .map_err(|err| format!("cannot unpack the transferred files: {err}"))?;
        }
        Ok(())
    }

    /// Packs what the parent fetches; problems become notices (the parent
    /// says which files it did not get).
    async fn pack_fetched(&mut self) {
        let fetched = self.link.files.pack.clone();
        for archive in &fetched {
            if let Err(message) = self.pack_one(archive).await {
                self.notice(format!("fetch from `{}`: {message}", archive.from))
                    .await;
            }
        }
    }

    async fn pack_one(&self, archive: &PackArchive) -> Result<(), String> {
        let source = self.host_dir(&archive.from, "fetch.from")?;
        let patterns = self.patterns(archive.files.as_ref())?;
        self.pack_to(&source, patterns, &archive.archive).await
    }

    /// Packs `transfer` of a block of step `step` before the block starts.
    pub(super) async fn pack_transfers(
        &self,
        step: &PlanStep,
        block: &PlanParallel,
    ) -> Result<(), String> {
        if block.transfer.is_empty() {
            return Ok(());
        }
        let worker = self.link_worker()?;
        for (index, transfer) in block.transfer.iter().enumerate() {
            let Transfer { from, files, .. } = transfer;
            let source = self.host_dir(from, "transfer.from")?;
            let patterns = self.patterns(files.as_ref())?;
            let name = WorkerFiles::transfer_archive(&worker, &step.id, index);
            self.pack_to(&source, patterns, &name)
                .await
                .map_err(|err| format!("transfer from `{from}`: {err}"))?;
        }
        Ok(())
    }

    /// Unpacks every worker's `fetch` archives once the block is over.
    pub(super) async fn unpack_fetched(
        &mut self,
        block: &PlanParallel,
        workers: &[(WorkerId, StepStatus)],
    ) -> Result<(), String> {
        for (index, fetch) in block.fetch.iter().enumerate() {
            let Fetch { from, to, .. } = fetch;
            let to = to.clone().unwrap_or_else(|| from.clone());
            let target = self.host_dir(&to, "fetch.to")?;
            for (worker, _) in workers {
                let name = WorkerFiles::fetch_archive(worker, index);
                let file = match self.archive(&name).await {
                    Ok(file) => file,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        self.notice(format!(
                            "worker {worker} left no files to fetch from `{from}`"
                        ))
                        .await;
                        continue;
                    }
                    Err(err) => return Err(format!("cannot fetch from worker {worker}: {err}")),
                };
                let target = target.clone();
                blocking(move || unpack(&file, &target))
                    .await
                    .map_err(|err| format!("cannot unpack the files of worker {worker}: {err}"))?;
            }
        }
        Ok(())
    }

    async fn pack_to(
        &self,
        source: &Path,
        patterns: Vec<String>,
        name: &str,
    ) -> Result<(), String> {
        let store = self.archive_store()?;
        let scratch = store.scratch();
        let file = scratch.join(format!(
            "{}-{}.tar.gz",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        ));
        let source = source.to_path_buf();
        let written = file.clone();
        blocking(move || {
            std::fs::create_dir_all(&scratch)?;
            pack(&source, &patterns, &written)
        })
        .await
        .map_err(|err| format!("cannot pack: {err}"))?;
        let stored = store.put(name, &file).await;
        if stored.is_err() {
            let _ = tokio::fs::remove_file(&file).await;
        }
        stored.map_err(|err| format!("cannot store the archive: {err}"))
    }

    async fn archive(&self, name: &str) -> io::Result<PathBuf> {
        let store = self.archive_store().map_err(io::Error::other)?;
        store.get(name).await
    }

    fn archive_store(&self) -> Result<Arc<dyn ArchiveStore>, String> {
        self.link.archives.clone().ok_or_else(|| {
            "this worker has no place to keep archives: its executor does not support \
             transfer/fetch"
                .to_owned()
        })
    }

    fn link_worker(&self) -> Result<WorkerId, String> {
        self.link.worker.clone().ok_or_else(|| {
            "this worker does not know its place in the execution: its executor does not \
             support transfer/fetch"
                .to_owned()
        })
    }

    /// The host folder of a workspace path written in `field`.
    fn host_dir(&self, path: &str, field: &str) -> Result<PathBuf, String> {
        let rendered = self.render(path)?;
        self.paths.host(&rendered).ok_or_else(|| {
            format!("{field} `{rendered}` is outside /data, /tmp and /testkube: use a path there")
        })
    }

    /// The glob patterns of `files` (everything when absent).
    fn patterns(&self, files: Option<&DynamicList>) -> Result<Vec<String>, String> {
        let values = match files {
            None => return Ok(vec!["**/*".to_owned()]),
            Some(DynamicList::Static(values)) => values.clone(),
            Some(DynamicList::Expression(text)) => {
                let scope = self.step_scope();
                match scope.checked(Expr::parse(text).and_then(|expr| expr.resolve(&scope))) {
                    Ok(Value::Array(values)) => values,
                    Ok(other) => vec![other],
                    Err(err) => return Err(format!("cannot evaluate files `{text}`: {err}")),
                }
            }
        };
        values
            .into_iter()
            .map(|value| match value {
                Value::String(text) => self.render(&text),
                other => Ok(other.to_string()),
            })
            .collect()
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| io::Error::other(format!("the file task failed: {err}")))?
}

/// Packs the regular files under `source` whose paths (relative to it)
/// match `patterns` into a gzipped tar at `archive`. A missing `source`
/// gives an empty archive.
///
/// # Errors
/// An invalid pattern, or an I/O error reading or writing.
pub fn pack(source: &Path, patterns: &[String], archive: &Path) -> io::Result<()> {
    let matcher = glob_set(patterns)?;
    let file = std::fs::File::create(archive)?;
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    if source.is_dir() {
        for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
            let entry = entry.map_err(io::Error::other)?;
            let Ok(relative) = entry.path().strip_prefix(source) else {
                continue;
            };
            if relative.as_os_str().is_empty() || !matcher.is_match(relative) {
                continue;
            }
            // Folders too, so that an empty `reports/` a step prepared for
            // the workers' output arrives as well.
            if entry.file_type().is_dir() {
                builder.append_dir(relative, entry.path())?;
            } else if entry.file_type().is_file() {
                builder.append_path_with_name(entry.path(), relative)?;
            }
        }
    }
    builder.into_inner()?.finish()?.sync_all()
}

fn glob_set(patterns: &[String]) -> io::Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = pattern.trim_start_matches("./");
        let glob = Glob::new(pattern).map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid file pattern `{pattern}`: {err}"),
            )
        })?;
        set.add(glob);
    }
    set.build()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))
}

/// Unpacks the gzipped tar `archive` into `target` (created when missing).
///
/// # Errors
/// An entry that is neither a file nor a folder, or whose path would land
/// outside `target` (absolute, `..`, or through a link); I/O errors.
pub fn unpack(archive: &Path, target: &Path) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    let file = std::fs::File::open(archive)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let inside = path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(refused(&path, "its path leaves the target folder"));
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(refused(&path, "it is not a regular file or folder"));
        }
        if !entry.unpack_in(target)? {
            return Err(refused(&path, "its path leaves the target folder"));
        }
    }
    Ok(())
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("archive entry `{}` refused: {why}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_matching_files_and_unpacks_them_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        std::fs::create_dir_all(source.join("a/b")).unwrap();
        std::fs::write(source.join("a/b/report.xml"), "<testsuite/>").unwrap();
        std::fs::write(source.join("a/notes.txt"), "notes").unwrap();
        let archive = dir.path().join("x.tar.gz");
        pack(&source, &["**/*.xml".to_owned()], &archive).unwrap();
        let target = dir.path().join("out");
        unpack(&archive, &target).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("a/b/report.xml")).unwrap(),
            "<testsuite/>"
        );
        assert!(!target.join("a/notes.txt").exists());
    }

    #[test]
    fn empty_folders_are_transferred() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        std::fs::create_dir_all(source.join("reports")).unwrap();
        std::fs::write(source.join("run.py"), "print()").unwrap();
        let archive = dir.path().join("x.tar.gz");
        pack(&source, &["**/*".to_owned()], &archive).unwrap();
        let target = dir.path().join("out");
        unpack(&archive, &target).unwrap();
        assert!(target.join("reports").is_dir());
        assert!(target.join("run.py").is_file());
    }

    #[test]
    fn entries_leaving_the_target_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("evil.tar.gz");
        {
            let file = std::fs::File::create(&archive).unwrap();
            let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            let mut builder = tar::Builder::new(encoder);
            let mut header = tar::Header::new_gnu();
            header.set_size(4);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // `set_path` refuses `..`: write the name bytes directly.
            header.as_old_mut().name[..9].copy_from_slice(b"../escape");
            header.set_cksum();
            builder.append(&header, &b"evil"[..]).unwrap();
            builder.into_inner().unwrap().finish().unwrap();
        }
        let target = dir.path().join("in");
        let err = unpack(&archive, &target).unwrap_err();
        assert!(err.to_string().contains("leaves the target"), "{err}");
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("link.tar.gz");
        {
            let file = std::fs::File::create(&archive).unwrap();
            let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            let mut builder = tar::Builder::new(encoder);
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_entry_type(tar::EntryType::Symlink);
            builder
                .append_link(&mut header, "passwd", "/etc/passwd")
                .unwrap();
            builder.into_inner().unwrap().finish().unwrap();
        }
        let err = unpack(&archive, &dir.path().join("in")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn folder_archive_names_stay_in_the_folder() {
        let store = FolderArchives::new("/tmp/x");
        assert!(store.path("1/step/transfer-0.tar.gz").is_ok());
        assert!(store.path("../x").is_err());
        assert!(store.path("/etc/x").is_err());
        assert!(store.path("").is_err());
    }
}
