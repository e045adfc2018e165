//! A container's filesystem view as a bubblewrap command line: the host's
//! root read-only (each top-level entry bound on its own, since binding `/`
//! whole cannot create new mount points), a fresh `/dev`, `/proc` and
//! `/tmp`, the image folder's entries when the image is mapped, the pod's
//! volumes at their mountPaths, the termination-message file, and its own
//! PID and UTS namespaces. Exec uses the same view.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What a container's processes see, without the command.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// `bwrap` and its options, up to (not including) `--`.
    pub(crate) argv: Vec<OsString>,
    /// The environment (also passed with `--setenv`, kept for exec).
    pub(crate) env: Vec<(String, String)>,
}

/// An image name without tag or digest (`ghcr.io/x/init:1.2` → `ghcr.io/x/init`).
pub(crate) fn image_base(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// The folder an image is mapped to, matched with or without tag.
pub(crate) fn image_dir<'a>(images: &'a [(String, PathBuf)], image: &str) -> Option<&'a Path> {
    images
        .iter()
        .find(|(name, _)| name == image)
        .or_else(|| images.iter().find(|(name, _)| image_base(name) == image_base(image) && !name.contains(':')))
        .or_else(|| images.iter().find(|(name, _)| image_base(name) == image_base(image)))
        .map(|(_, dir)| dir.as_path())
}

/// Builds the view of one container.
pub(crate) fn view(
    bwrap: &Path,
    container: &Value,
    hostname: &str,
    volumes: &[(String, PathBuf)],
    image: Option<&Path>,
    termination_log: &Path,
    env: Vec<(String, String)>,
) -> Result<View, String> {
    let mut argv: Vec<OsString> = vec![bwrap.into()];
    let mounts: Vec<(String, PathBuf, bool)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["name"].as_str().unwrap_or("");
            let path = m["mountPath"].as_str().unwrap_or("").to_string();
            let host = volumes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, h)| h.clone())
                .ok_or_else(|| format!("volumeMount {name:?} names no volume of the pod"))?;
            let host = match m["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let p = host.join(sub);
                    if !p.exists() {
                        std::fs::create_dir_all(&p).map_err(|e| format!("creating subPath {}: {e}", p.display()))?;
                    }
                    p
                }
                None => host,
            };
            Ok((path, host, m["readOnly"].as_bool() == Some(true)))
        })
        .collect::<Result<_, String>>()?;
    let entries = std::fs::read_dir("/").map_err(|e| format!("reading the host's root: {e}"))?;
    let mut names: Vec<_> = entries.flatten().collect();
    names.sort_by_key(std::fs::DirEntry::file_name);
    for entry in names {
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(name.as_str(), "dev" | "proc" | "tmp") {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_symlink() {
            if let Ok(target) = std::fs::read_link(format!("/{name}")) {
                argv.extend(["--symlink".into(), target.into_os_string(), format!("/{name}").into()]);
            }
        } else {
            argv.extend(["--ro-bind-try".into(), format!("/{name}").into(), format!("/{name}").into()]);
        }
    }
    argv.extend(["--dev", "/dev", "--proc", "/proc"].map(OsString::from));
    if !mounts.iter().any(|(p, _, _)| p == "/tmp") {
        argv.extend(["--tmpfs", "/tmp"].map(OsString::from));
    }
    if let Some(dir) = image {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("reading image folder {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            argv.extend(["--ro-bind".into(), entry.path().into_os_string(), format!("/{name}").into()]);
        }
    }
    for (path, host, read_only) in &mounts {
        let option = if *read_only { "--ro-bind" } else { "--bind" };
        argv.extend([option.into(), host.clone().into_os_string(), path.into()]);
    }
    let message_path = container["terminationMessagePath"].as_str().unwrap_or("/dev/termination-log");
    argv.extend(["--bind".into(), termination_log.as_os_str().to_owned(), message_path.into()]);
    // The command is PID 1 of its namespace, as a container's entrypoint is:
    // SIGTERM reaches it only if it handles SIGTERM.
    argv.extend(["--die-with-parent", "--unshare-pid", "--as-pid-1", "--unshare-uts", "--hostname"].map(OsString::from));
    argv.push(hostname.into());
    if let Some(dir) = container["workingDir"].as_str().filter(|d| !d.is_empty()) {
        argv.extend(["--chdir".into(), dir.into()]);
    }
    argv.push("--clearenv".into());
    for (k, v) in &env {
        argv.extend(["--setenv".into(), k.into(), v.into()]);
    }
    Ok(View { argv, env })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_match_with_or_without_tag() {
        let images = vec![("testkube/init".to_string(), PathBuf::from("/a")), ("busybox:1.36".to_string(), PathBuf::from("/b"))];
        assert_eq!(image_dir(&images, "testkube/init:0.1"), Some(Path::new("/a")));
        assert_eq!(image_dir(&images, "testkube/init"), Some(Path::new("/a")));
        assert_eq!(image_dir(&images, "busybox"), Some(Path::new("/b")));
        assert_eq!(image_dir(&images, "alpine"), None);
        assert_eq!(image_base("localhost:5000/x:1"), "localhost:5000/x");
        assert_eq!(image_base("localhost:5000/x"), "localhost:5000/x");
    }
}
