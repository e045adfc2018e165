//! The control socket of a running `testkube run`: how `testkube resume`
//! in another terminal reaches the run's [`RunControl`].
//!
//! Why a socket: the run's controls live in the process that runs it, and
//! a push channel reaches them at once, with an answer, where a file to
//! poll costs a wake-up every few hundred milliseconds and says nothing
//! back. The socket is `<home>/runs/<execution id>/control.sock`, so it
//! needs no server and works for any run under the same home folder. One
//! line per request: `resume` or `abort`; the answer is `ok`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use testkube_core::service::RunControl;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// Where the run `execution_id` listens.
pub(crate) fn socket_path(execution_id: &str) -> PathBuf {
    crate::home::runs().join(execution_id).join("control.sock")
}

/// A listening socket; dropping it stops listening and removes the file.
pub(super) struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens for requests to the run `execution_id` and hands them to
/// `control`.
pub(super) fn listen(execution_id: &str, control: RunControl) -> Result<ControlSocket, String> {
    let path = socket_path(execution_id);
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(|err| format!("{}: {err}", folder.display()))?;
    }
    // Ids are unique: a file left here is from a process that died.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|err| {
        // Socket paths are limited to about 100 bytes.
        format!(
            "{}: {err} (a shorter --home lets it listen)",
            path.display()
        )
    })?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let control = control.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = match line.trim() {
                        "resume" => {
                            control.resume();
                            "ok\n"
                        }
                        "abort" => {
                            control.abort();
                            "ok\n"
                        }
                        _ => "unknown request: send `resume` or `abort`\n",
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(ControlSocket { path, task })
}

/// Sends `request` (`resume` or `abort`) to the run `execution_id` of this
/// home folder and waits for its answer.
pub(crate) fn send(execution_id: &str, request: &str) -> std::io::Result<()> {
    let path = socket_path(execution_id);
    let mut stream = std::os::unix::net::UnixStream::connect(&path)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    if answer.trim() == "ok" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "the run answered `{}`",
            answer.trim()
        )))
    }
}
