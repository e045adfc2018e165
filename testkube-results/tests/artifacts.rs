//! The artifact store against a real S3-compatible server (moto; see `support/s3.rs`) and a
//! local folder: presigned uploads, filing uploaded archives into per-file objects, refusing
//! unsafe archives, and reading artifacts back from their locations.

#[path = "support/s3.rs"]
mod s3;

use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use testkube_results::artifacts::{
    ArtifactReader, ArtifactStore, FileArchiveError, PresignError, install_tls_provider,
};

/// The shared server's settings, as a client in the engine would have them.
fn builder(server: &s3::S3Server) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
}

/// A store in a fresh bucket under `prefix`, or `None` (skipped) without a server.
fn s3_store(test: &str, prefix: &str) -> Option<(ArtifactStore, &'static s3::S3Server)> {
    install_tls_provider();
    let server = s3::server(test)?;
    let store = ArtifactStore::s3(&server.bucket(), prefix, builder(server)).unwrap();
    Some((store, server))
}

async fn read(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    store
        .get(&ObjectPath::from(key))
        .await
        .unwrap_or_else(|err| panic!("{key}: {err}"))
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

async fn exists(store: &dyn ObjectStore, key: &str) -> bool {
    match store.head(&ObjectPath::from(key)).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(err) => panic!("{key}: {err}"),
    }
}

/// A large file's bytes: not repetitive, so that it stays large compressed.
fn big(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// One archive entry to write.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Fifo(&'a str),
}

/// A tar.gz of `entries`, names written as they are (even unsafe ones: the tar crate's
/// own checks are bypassed on purpose).
fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match entry {
            Entry::File(name, data) => (name, tar::EntryType::Regular, data, None),
            Entry::Dir(name) => (name, tar::EntryType::Directory, &[], None),
            Entry::Symlink(name, target) => (name, tar::EntryType::Symlink, &[], Some(target)),
            Entry::Fifo(name) => (name, tar::EntryType::Fifo, &[], None),
        };
        let raw = &mut header.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(target) = link {
            let raw = &mut header.as_old_mut().linkname;
            raw.fill(0);
            raw[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn a_presigned_url_takes_one_put_without_credentials() {
    let Some((store, _)) = s3_store("a_presigned_url_takes_one_put", "team/a") else {
        return;
    };
    let key = ObjectPath::from("run-1/root/make.tar.gz");
    let url = store
        .presign_put(&key, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(
        url.query_pairs().any(|(k, _)| k == "X-Amz-Signature"),
        "{url}"
    );
    // A plain HTTP client, no AWS settings: what a test pod has.
    let response = reqwest::Client::new()
        .put(url.as_str())
        .body("uploaded from a pod")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let objects = store.object_store();
    assert_eq!(
        read(objects.as_ref(), "run-1/root/make.tar.gz").await,
        b"uploaded from a pod"
    );
    assert_eq!(
        store.location(&key),
        format!("{}run-1/root/make.tar.gz", store.location_base())
    );
    assert!(store.location_base().ends_with("/team/a/"));
}

#[tokio::test]
async fn a_folder_store_says_presigned_uploads_need_s3() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::folder(dir.path()).unwrap();
    let err = store
        .presign_put(&ObjectPath::from("x.tar.gz"), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(err, PresignError::NeedsS3 { .. }));
    let message = err.to_string();
    assert!(message.contains("S3-compatible"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

/// Files an archive with a large file, folders, a link and a rewritten name; checks the
/// objects, sizes, locations and that the archive is gone.
async fn files_an_archive(store: &ArtifactStore) {
    let large = big(6 * 1024 * 1024 + 123);
    let archive = tar_gz(&[
        Entry::Dir("reports/"),
        Entry::File("reports/junit.xml", b"<testsuite/>"),
        Entry::File("./logs/app.log", b"first"),
        Entry::File("data/large.bin", &large),
        Entry::Symlink("reports/latest.xml", "junit.xml"),
        Entry::Symlink("all-logs", "logs"),
        Entry::File("logs/app.log", b"second copy"),
        Entry::File("empty.txt", b""),
    ]);
    let objects = store.object_store();
    let key = ObjectPath::from("uploads/run-7/make.tar.gz");
    objects.put(&key, PutPayload::from(archive)).await.unwrap();

    let filed = store
        .file_archive(&key, &ObjectPath::from("run-7/root"))
        .await
        .unwrap();
    let listed: Vec<(&str, u64)> = filed.iter().map(|f| (f.path.as_str(), f.size)).collect();
    assert_eq!(
        listed,
        [
            ("reports/junit.xml", 12),
            ("logs/app.log", 11),
            ("data/large.bin", large.len() as u64),
            ("empty.txt", 0),
            ("reports/latest.xml", 12),
            ("all-logs/app.log", 11),
        ]
    );
    for file in &filed {
        assert_eq!(file.key.as_ref(), format!("run-7/root/{}", file.path));
        assert_eq!(file.location, store.location(&file.key));
    }
    assert_eq!(
        read(objects.as_ref(), "run-7/root/data/large.bin").await,
        large
    );
    assert_eq!(
        read(objects.as_ref(), "run-7/root/logs/app.log").await,
        b"second copy"
    );
    assert_eq!(
        read(objects.as_ref(), "run-7/root/reports/latest.xml").await,
        b"<testsuite/>"
    );
    assert!(!exists(objects.as_ref(), "uploads/run-7/make.tar.gz").await);
}

#[tokio::test]
async fn an_uploaded_archive_is_filed_one_object_per_file_in_s3() {
    let Some((store, _)) = s3_store("an_uploaded_archive_is_filed_in_s3", "pre") else {
        return;
    };
    files_an_archive(&store).await;
}

#[tokio::test]
async fn an_uploaded_archive_is_filed_one_object_per_file_in_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::folder(dir.path()).unwrap();
    files_an_archive(&store).await;
    assert!(dir.path().join("run-7/root/all-logs/app.log").is_file());
}

/// Each unsafe archive is refused with `expected`'s variant, its good file is removed again
/// and the archive stays.
async fn refuses_unsafe_archives(store: &ArtifactStore) {
    let cases: [(&str, Vec<Entry<'_>>, &str); 7] = [
        ("dotdot", vec![Entry::File("../escape.txt", b"x")], "`..`"),
        (
            "absolute",
            vec![Entry::File("/etc/cron.d/x", b"x")],
            "absolute",
        ),
        (
            "link-out",
            vec![Entry::Symlink("out/link", "../../../etc/passwd")],
            "outside the archive",
        ),
        (
            "link-abs",
            vec![Entry::Symlink("link", "/etc/passwd")],
            "absolute",
        ),
        (
            "link-nothing",
            vec![Entry::Symlink("link", "missing.txt")],
            "nothing",
        ),
        (
            "link-loop",
            vec![Entry::Symlink("a", "b"), Entry::Symlink("b", "a")],
            "loop",
        ),
        ("fifo", vec![Entry::Fifo("pipe")], "FIFO"),
    ];
    let objects = store.object_store();
    for (name, bad, reason) in cases {
        let mut entries = vec![Entry::File("good.txt", b"fine")];
        entries.extend(bad);
        let key = ObjectPath::from(format!("uploads/{name}.tar.gz"));
        objects
            .put(&key, PutPayload::from(tar_gz(&entries)))
            .await
            .unwrap();
        let err = store
            .file_archive(&key, &ObjectPath::from(format!("run/{name}")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                FileArchiveError::UnsafePath { .. }
                    | FileArchiveError::UnsafeLink { .. }
                    | FileArchiveError::UnsupportedEntry { .. }
            ),
            "{name}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains(reason), "{name}: {message}");
        assert!(message.contains(&store.location(&key)), "{name}: {message}");
        assert!(
            !exists(objects.as_ref(), &format!("run/{name}/good.txt")).await,
            "{name}: a refused archive files nothing"
        );
        assert!(exists(objects.as_ref(), key.as_ref()).await, "{name}");
    }
    assert!(!exists(objects.as_ref(), "escape.txt").await);

    let key = ObjectPath::from("uploads/garbage.tar.gz");
    objects
        .put(&key, PutPayload::from(&b"\x1f\x8b not really gzip"[..]))
        .await
        .unwrap();
    let err = store
        .file_archive(&key, &ObjectPath::from("run/garbage"))
        .await
        .unwrap_err();
    assert!(matches!(err, FileArchiveError::Format { .. }), "{err}");
    let err = store
        .file_archive(
            &ObjectPath::from("uploads/none.tar.gz"),
            &ObjectPath::from("run/x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FileArchiveError::Read { .. }), "{err}");
}

#[tokio::test]
async fn unsafe_archive_entries_are_refused_in_s3() {
    let Some((store, _)) = s3_store("unsafe_archive_entries_are_refused_in_s3", "") else {
        return;
    };
    refuses_unsafe_archives(&store).await;
}

#[tokio::test]
async fn unsafe_archive_entries_are_refused_in_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::folder(&dir.path().join("store")).unwrap();
    refuses_unsafe_archives(&store).await;
    assert!(!dir.path().join("escape.txt").exists());
}

#[tokio::test]
async fn artifacts_are_read_back_from_their_s3_locations() {
    let Some((store, server)) = s3_store("artifacts_are_read_back", "p") else {
        return;
    };
    let large = big(3 * 1024 * 1024);
    let key = ObjectPath::from("run-1/root/big file.bin");
    store
        .object_store()
        .put(&key, PutPayload::from(large.clone()))
        .await
        .unwrap();
    let location = store.location(&key);
    assert!(location.starts_with("s3://"), "{location}");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.bin");
    let mut reader = ArtifactReader::with_s3(builder(server));
    let size = reader.download(&location, &target).await.unwrap();
    assert_eq!(size, large.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), large);
    let missing = format!("{}run-1/root/missing", store.location_base());
    let err = reader.download(&missing, &target).await.unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
}
