//! Filing an uploaded archive: one `tar.gz` a pod uploaded becomes one object per file.
//!
//! A pod uploads one archive per artifacts step to a presigned URL (one URL, one request, no
//! credentials). Readers of a run want files, so the engine unpacks the archive where it lies,
//! streaming: the archive is read from the store in chunks through the gzip and tar readers,
//! and each entry is written straight back as its own object (one request up to
//! [`SINGLE_PUT_BYTES`], else a multipart upload with a few parts in flight). Memory stays at
//! a few parts, whatever the archive's size; no temporary copy is made.
//!
//! The archive comes from a test pod, which runs whatever the test runs: entries are checked
//! like untrusted input. Absolute names, `..` and names that are not UTF-8 are refused; a
//! link is stored as a copy of what it points at, which must be a file or folder of the same
//! archive (a link that points outside it, at nothing, or in a loop is refused); devices and
//! FIFOs are refused. A refused archive files nothing (what was stored before is removed) and
//! stays where it was uploaded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::runtime::Handle;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{ArtifactStore, FileArchiveError};

/// Files up to this size are stored in one request; larger ones in parts.
const SINGLE_PUT_BYTES: u64 = 5 * 1024 * 1024;

/// How many parts of one file may be in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// How many links in a row are followed before a link is called a loop.
const MAX_LINK_HOPS: usize = 16;

/// One file filed from an archive: what [`WorkerEvent::Artifact`] reports.
///
/// [`WorkerEvent::Artifact`]: testkube_core::engine::WorkerEvent::Artifact
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledArtifact {
    /// Its path inside the archive (`reports/junit.xml`), `/`-separated.
    pub path: String,
    /// Its key in the store (relative to the store's root).
    pub key: ObjectPath,
    /// Where it is kept (`s3://bucket/prefix/...` or a file path).
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A file stored so far: its name and key, and its size.
#[derive(Debug, Clone)]
struct Stored {
    name: String,
    key: ObjectPath,
    size: u64,
}

/// What unpacking did: the files stored (also on failure, to remove them) and how it ended.
struct Unpacked {
    stored: Vec<Stored>,
    outcome: Result<(), FileArchiveError>,
}

impl ArtifactStore {
    /// Unpacks the tar (or tar.gz) archive at `archive` into one object per file under
    /// `into` (keys relative to the store's root, e.g. `run-7/root/`), then deletes the
    /// archive. Returns each file in archive order (a name written twice keeps its last
    /// copy).
    ///
    /// # Errors
    /// See [`FileArchiveError`]: on a refused or unreadable archive nothing is filed and the
    /// archive stays; [`FileArchiveError::Delete`] carries the filed files when only the
    /// archive's deletion failed.
    pub async fn file_archive(
        &self,
        archive: &ObjectPath,
        into: &ObjectPath,
    ) -> Result<Vec<FiledArtifact>, FileArchiveError> {
        let location = self.location(archive);
        let got = self
            .store
            .get(archive)
            .await
            .map_err(|source| FileArchiveError::Read {
                archive: location.clone(),
                source,
            })?;
        let chunks = got
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        let reader = SyncIoBridge::new(StreamReader::new(chunks));
        let unpacking = Unpacking {
            store: self.object_store(),
            handle: Handle::current(),
            into: into.clone(),
            archive: location.clone(),
        };
        let unpacked = tokio::task::spawn_blocking(move || unpacking.run(reader))
            .await
            .map_err(|err| FileArchiveError::Task {
                archive: location.clone(),
                message: err.to_string(),
            })?;
        if let Err(err) = unpacked.outcome {
            for stored in &unpacked.stored {
                // Best effort: the error says what went wrong, which matters more.
                let _ = self.store.delete(&stored.key).await;
            }
            return Err(err);
        }
        let files: Vec<FiledArtifact> = unpacked
            .stored
            .into_iter()
            .map(|stored| FiledArtifact {
                location: self.location(&stored.key),
                path: stored.name,
                key: stored.key,
                size: stored.size,
            })
            .collect();
        match self.store.delete(archive).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(files),
            Err(source) => Err(FileArchiveError::Delete {
                archive: location,
                source,
                files,
            }),
        }
    }
}

/// The blocking side of [`ArtifactStore::file_archive`]: reads the archive, writes objects
/// through the runtime's handle.
struct Unpacking {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    into: ObjectPath,
    archive: String,
}

/// A link entry, checked: its name and the name it points at, both inside the archive.
struct Link {
    name: String,
    raw: String,
    target_raw: String,
    target: String,
}

impl Unpacking {
    fn run(&self, reader: impl Read) -> Unpacked {
        let mut stored = Vec::new();
        let outcome = self.unpack(reader, &mut stored);
        Unpacked { stored, outcome }
    }

    fn format(&self, source: std::io::Error) -> FileArchiveError {
        FileArchiveError::Format {
            archive: self.archive.clone(),
            source,
        }
    }

    fn unpack(&self, reader: impl Read, stored: &mut Vec<Stored>) -> Result<(), FileArchiveError> {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let gzipped = reader
            .fill_buf()
            .map_err(|err| self.format(err))?
            .starts_with(&[0x1f, 0x8b]);
        let input: Box<dyn Read> = if gzipped {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        let mut tar = tar::Archive::new(input);
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut links = Vec::new();
        for entry in tar.entries().map_err(|err| self.format(err))? {
            let mut entry = entry.map_err(|err| self.format(err))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                continue;
            }
            let name = std::str::from_utf8(&entry.path_bytes())
                .map_err(|_| "is not UTF-8")
                .and_then(safe_name)
                .map_err(|reason| self.unsafe_path(&raw, reason))?;
            if kind.is_symlink() || kind.is_hard_link() {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                let base = if kind.is_symlink() {
                    name.rsplit_once('/').map_or("", |(parent, _)| parent)
                } else {
                    ""
                };
                let target = resolve(base, &target_raw)
                    .map_err(|reason| self.unsafe_link(&raw, &target_raw, reason))?;
                links.push(Link {
                    name,
                    raw,
                    target_raw,
                    target,
                });
                continue;
            }
            if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
                return Err(FileArchiveError::UnsupportedEntry {
                    archive: self.archive.clone(),
                    entry: raw,
                    kind: kind_name(kind).to_owned(),
                });
            }
            let key = self.key(&name);
            let declared = entry.header().size().ok();
            let size = self.store_entry(&mut entry, &key, declared, &raw)?;
            remember(stored, &mut index, Stored { name, key, size });
        }
        for link in &links {
            self.file_link(link, &links, stored, &mut index)?;
        }
        Ok(())
    }

    fn unsafe_path(&self, entry: &str, reason: &'static str) -> FileArchiveError {
        FileArchiveError::UnsafePath {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            reason,
        }
    }

    fn unsafe_link(&self, entry: &str, target: &str, reason: &'static str) -> FileArchiveError {
        FileArchiveError::UnsafeLink {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            target: target.to_owned(),
            reason,
        }
    }

    fn store_error(&self, entry: &str, source: object_store::Error) -> FileArchiveError {
        FileArchiveError::Store {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            source,
        }
    }

    /// The key of the archive's file `name` (checked by [`safe_name`]).
    fn key(&self, name: &str) -> ObjectPath {
        self.into
            .parts()
            .chain(name.split('/').map(Into::into))
            .collect()
    }

    /// Streams one entry into the object `key`; returns its size.
    fn store_entry(
        &self,
        entry: &mut impl Read,
        key: &ObjectPath,
        declared: Option<u64>,
        raw: &str,
    ) -> Result<u64, FileArchiveError> {
        if declared.is_some_and(|size| size <= SINGLE_PUT_BYTES) {
            let mut bytes = Vec::with_capacity(
                declared
                    .and_then(|size| usize::try_from(size).ok())
                    .unwrap_or_default(),
            );
            entry
                .take(SINGLE_PUT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| self.format(err))?;
            let size = bytes.len() as u64;
            self.handle
                .block_on(self.store.put(key, PutPayload::from(bytes)))
                .map_err(|source| self.store_error(raw, source))?;
            return Ok(size);
        }
        let upload = self
            .handle
            .block_on(self.store.put_multipart(key))
            .map_err(|source| self.store_error(raw, source))?;
        let mut writer = WriteMultipart::new(upload);
        let mut buffer = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let read = match entry.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    let _ = self.handle.block_on(writer.abort());
                    return Err(self.format(err));
                }
            };
            if let Err(source) = self
                .handle
                .block_on(writer.wait_for_capacity(UPLOAD_CONCURRENCY))
            {
                let _ = self.handle.block_on(writer.abort());
                return Err(self.store_error(raw, source));
            }
            writer.write(&buffer[..read]);
            size += read as u64;
        }
        self.handle
            .block_on(writer.finish())
            .map_err(|source| self.store_error(raw, source))?;
        Ok(size)
    }

    /// Stores `link` as a copy of the file, or the folder's files, it points at.
    fn file_link(
        &self,
        link: &Link,
        links: &[Link],
        stored: &mut Vec<Stored>,
        index: &mut HashMap<String, usize>,
    ) -> Result<(), FileArchiveError> {
        let mut target = link.target.clone();
        for _ in 0..MAX_LINK_HOPS {
            if let Some(&at) = index.get(&target) {
                let from = stored[at].clone();
                let key = self.key(&link.name);
                self.handle
                    .block_on(self.store.copy(&from.key, &key))
                    .map_err(|source| self.store_error(&link.raw, source))?;
                let copy = Stored {
                    name: link.name.clone(),
                    key,
                    size: from.size,
                };
                remember(stored, index, copy);
                return Ok(());
            }
            if let Some(next) = links.iter().find(|other| other.name == target) {
                target = next.target.clone();
                continue;
            }
            let folder = format!("{target}/");
            let under: Vec<Stored> = stored
                .iter()
                .filter(|file| file.name.starts_with(&folder))
                .cloned()
                .collect();
            if under.is_empty() {
                return Err(self.unsafe_link(
                    &link.raw,
                    &link.target_raw,
                    "points at nothing the archive holds",
                ));
            }
            for file in under {
                let name = format!("{}/{}", link.name, &file.name[folder.len()..]);
                let key = self.key(&name);
                self.handle
                    .block_on(self.store.copy(&file.key, &key))
                    .map_err(|source| self.store_error(&link.raw, source))?;
                remember(
                    stored,
                    index,
                    Stored {
                        name,
                        key,
                        size: file.size,
                    },
                );
            }
            return Ok(());
        }
        Err(self.unsafe_link(&link.raw, &link.target_raw, "is a loop of links"))
    }
}

/// Adds `file` to `stored`, replacing an earlier file of the same name.
fn remember(stored: &mut Vec<Stored>, index: &mut HashMap<String, usize>, file: Stored) {
    match index.get(&file.name) {
        Some(&at) => stored[at] = file,
        None => {
            index.insert(file.name.clone(), stored.len());
            stored.push(file);
        }
    }
}

/// An entry's name as a clean relative path (`a/b.txt`), or why it is refused.
fn safe_name(raw: &str) -> Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("is an absolute path");
    }
    if raw.contains('\\') {
        return Err("holds a backslash");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("climbs out of its folder with `..`"),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("has no name");
    }
    Ok(parts.join("/"))
}

/// Where a link in folder `base` pointing at `target` lands, inside the archive.
fn resolve(base: &str, target: &str) -> Result<String, &'static str> {
    if target.is_empty() {
        return Err("points at nothing");
    }
    if target.starts_with('/') {
        return Err("points outside the archive (an absolute path)");
    }
    let mut parts: Vec<&str> = base.split('/').filter(|part| !part.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("points outside the archive");
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("points at the archive's root");
    }
    Ok(parts.join("/"))
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_relative_and_inside() {
        assert_eq!(safe_name("./a//b.txt"), Ok("a/b.txt".to_owned()));
        assert!(safe_name("/etc/passwd").is_err());
        assert!(safe_name("a/../../x").is_err());
        assert!(safe_name("a/..").is_err());
        assert!(safe_name("./").is_err());
        assert!(safe_name("a\\b").is_err());
    }

    #[test]
    fn links_resolve_inside_the_archive() {
        assert_eq!(resolve("a/b", "../c.txt"), Ok("a/c.txt".to_owned()));
        assert_eq!(resolve("", "x/./y"), Ok("x/y".to_owned()));
        assert!(resolve("a", "../../etc/passwd").is_err());
        assert!(resolve("a", "/etc/passwd").is_err());
        assert!(resolve("a", "..").is_err());
        assert!(resolve("a", "").is_err());
    }
}
