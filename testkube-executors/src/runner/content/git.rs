//! `content.git`: a checkout with the `git` command (the library crates lag
//! behind on sparse checkouts, shallow fetches and credential helpers).
//!
//! The checkout is `git init` + `git fetch --depth 1 origin <revision>` +
//! `git checkout`, which takes a branch, a tag or a commit alike and fetches
//! one commit only. Where the server cannot do that (the dumb HTTP
//! protocol, a server refusing unadvertised commits) it falls back to a
//! full fetch. `paths` make it a sparse checkout (`--no-cone` unless
//! `cone: true`, with blobs fetched on demand from servers that support
//! it).
//!
//! Credentials never reach a command line, a URL, a file of the workspace
//! or the log: a basic-auth user name and token are answered to git's
//! prompts by a `GIT_ASKPASS` script that reads them from the environment
//! of the git process; a header token is passed as `http.extraHeader` in
//! `GIT_CONFIG_*` variables; an SSH key is written to a private file that
//! is removed afterwards. Every line of git's output is scrubbed of them
//! before it is logged or reported.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use testkube_core::expr::Context;
use testkube_core::model::{GitAuthType, GitContent};
use testkube_core::plan::PlanStep;

use super::super::{OperationEnd, StepRunner, Stop, stopped};

/// Where content goes when `mountPath` is not set.
const DEFAULT_MOUNT_PATH: &str = "/data/repo";

/// What replaces a secret in logs and messages.
const MASK: &str = "********";

/// How many lines of git's error output a failure message quotes.
const ERROR_LINES: usize = 8;

/// A `content.git` with its templates rendered and credentials resolved.
struct Checkout {
    uri: String,
    /// The URI without user info, for messages.
    display: String,
    revision: Option<String>,
    username: Option<String>,
    token: Option<String>,
    header: bool,
    ssh_key: Option<String>,
    mount: String,
    host: PathBuf,
    paths: Vec<String>,
    cone: bool,
}

impl Checkout {
    /// The values to scrub from git's output.
    fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self.token.iter().cloned().collect();
        if let Some(password) = uri_password(&self.uri) {
            secrets.push(password);
        }
        if let Some(key) = &self.ssh_key {
            secrets.extend(
                key.lines()
                    .map(str::trim)
                    .filter(|line| line.len() >= 16 && !line.starts_with("-----"))
                    .map(str::to_owned),
            );
        }
        secrets.retain(|secret| !secret.is_empty());
        secrets
    }

    fn revision_label(&self) -> String {
        match &self.revision {
            Some(revision) => format!("revision `{revision}`"),
            None => "the default branch".to_owned(),
        }
    }
}

/// The environment and helper files of the git processes of one checkout;
/// the files are removed when it is dropped.
struct Session {
    env: Vec<(String, String)>,
    remove: Vec<String>,
    files: Option<PathBuf>,
    secrets: Vec<String>,
    uri_is_local: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(dir) = &self.files {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Session {
    /// Prepares the credentials of `checkout`; helper files go into a new
    /// private folder under `scratch`.
    fn new(checkout: &Checkout, scratch: &Path) -> std::io::Result<Self> {
        let mut session = Session {
            // English messages: failures are quoted to the user and
            // recognised (a shallow fetch refused, a missing ref).
            env: vec![
                ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
                ("LC_ALL".to_owned(), "C".to_owned()),
            ],
            remove: Vec::new(),
            files: None,
            secrets: checkout.secrets(),
            uri_is_local: checkout.uri.starts_with("file://") || checkout.uri.starts_with('/'),
        };
        let basic = !checkout.header && (checkout.username.is_some() || checkout.token.is_some());
        if basic || checkout.ssh_key.is_some() {
            session.files = Some(private_dir(scratch)?);
        }
        let files = session.files.clone().unwrap_or_default();
        if basic {
            let script = files.join("askpass.sh");
            write_private(&script, ASKPASS_SCRIPT, 0o700)?;
            // Git asks for the user name first, then the password; a token
            // without a user name is the user name (as Testkube does).
            let (username, password) = match (&checkout.username, &checkout.token) {
                (Some(username), token) => (username.clone(), token.clone().unwrap_or_default()),
                (None, token) => (token.clone().unwrap_or_default(), String::new()),
            };
            session.set("GIT_ASKPASS", script.display().to_string());
            session.set("TESTKUBE_GIT_USERNAME", username);
            session.set("TESTKUBE_GIT_PASSWORD", password);
        } else {
            session.unset("GIT_ASKPASS");
        }
        session.unset("SSH_ASKPASS");
        // No credential helper of the user's git config may store the
        // credentials.
        let mut config = vec![("credential.helper", String::new())];
        if checkout.header
            && let Some(token) = &checkout.token
        {
            config.push(("http.extraHeader", format!("Authorization: Bearer {token}")));
        }
        session.set("GIT_CONFIG_COUNT", config.len().to_string());
        for (index, (key, value)) in config.into_iter().enumerate() {
            session.set(&format!("GIT_CONFIG_KEY_{index}"), key.to_owned());
            session.set(&format!("GIT_CONFIG_VALUE_{index}"), value);
        }
        if let Some(key) = &checkout.ssh_key {
            let path = files.join("id");
            let mut key = key.clone();
            if !key.ends_with('\n') {
                key.push('\n');
            }
            write_private(&path, &key, 0o600)?;
            session.set(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new",
                    shell_quote(&path.display().to_string())
                ),
            );
        }
        Ok(session)
    }

    fn set(&mut self, name: &str, value: String) {
        self.env.push((name.to_owned(), value));
    }

    fn unset(&mut self, name: &str) {
        self.remove.push(name.to_owned());
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secrets)
    }
}

/// Answers git's prompts from the environment of the git process, so the
/// token is never written anywhere.
const ASKPASS_SCRIPT: &str = "#!/bin/sh\ncase \"$1\" in\n  Username*|username*) printf '%s\\n' \"$TESTKUBE_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$TESTKUBE_GIT_PASSWORD\" ;;\nesac\n";

/// Why a git command did not succeed.
enum GitError {
    /// It failed; its error output (scrubbed), or why it could not start.
    Failed(String),
    /// The step's timeout or an interruption stopped it.
    Stopped(Stop),
}

impl StepRunner {
    /// Checks out `content.git` into its `mountPath`.
    pub(in crate::runner) async fn git_checkout(
        &mut self,
        step: &PlanStep,
        git: &GitContent,
    ) -> OperationEnd {
        let checkout = match self.resolve_git(git) {
            Ok(checkout) => checkout,
            Err(message) => return OperationEnd::failed(message),
        };
        let scratch = self
            .paths
            .host("/tmp")
            .unwrap_or_else(|| checkout.host.clone());
        let session = match Session::new(&checkout, &scratch) {
            Ok(session) => session,
            Err(err) => {
                return OperationEnd::failed(format!(
                    "content.git: cannot prepare the credentials in {}: {err}",
                    scratch.display()
                ));
            }
        };
        self.log(
            &step.id,
            format!(
                "content.git: checking out {} ({}) into {}\n",
                checkout.display,
                checkout.revision_label(),
                checkout.mount
            ),
        )
        .await;
        match self.checkout(step, &checkout, &session).await {
            Ok(()) => OperationEnd::passed(),
            Err(GitError::Stopped(stop)) => stopped(stop),
            Err(GitError::Failed(error)) => OperationEnd::failed(format!(
                "content.git: cannot check out {} ({}) into {}: {}",
                checkout.display,
                checkout.revision_label(),
                checkout.mount,
                error.trim_end()
            )),
        }
    }

    fn resolve_git(&self, git: &GitContent) -> Result<Checkout, String> {
        let render = |field: &str, value: &Option<String>| -> Result<Option<String>, String> {
            match value {
                None => Ok(None),
                Some(text) => self
                    .render(text)
                    .map(|value| Some(value).filter(|v| !v.trim().is_empty()))
                    .map_err(|err| format!("content.git.{field}: {err}")),
            }
        };
        let uri = render("uri", &git.uri)?
            .ok_or("content.git has no `uri`: set the repository to check out")?;
        let revision = render("revision", &git.revision)?;
        let secret_of = |field: &str,
                         literal: Option<String>,
                         secret: Option<(&str, &str)>,
                         other_source: bool|
         -> Result<Option<String>, String> {
            if literal.is_some() {
                return Ok(literal);
            }
            if let Some((name, key)) = secret {
                return match self.status.secret(name, key) {
                    Some(Ok(value)) => Ok(Some(value)),
                    Some(Err(err)) => Err(format!(
                        "content.git.{field}: cannot read key `{key}` of secret `{name}`: {err}"
                    )),
                    None => Err(format!(
                        "content.git.{field}: secret `{name}` is not available here: no local \
                         secret source holds it; set `{}` instead (e.g. from an environment \
                         variable with `{{{{ env.NAME }}}}`)",
                        field.trim_end_matches("From")
                    )),
                };
            }
            if other_source {
                return Err(format!(
                    "content.git.{field}: only `secretKeyRef` can be read here; set `{}` \
                     instead (e.g. from an environment variable with `{{{{ env.NAME }}}}`)",
                    field.trim_end_matches("From")
                ));
            }
            Ok(None)
        };
        // `*From` fields: a `secretKeyRef` (name, key), or another source.
        macro_rules! from {
            ($source:expr) => {
                match &$source {
                    None => (None, false),
                    Some(source) => match &source.secret_key_ref {
                        Some(secret) => (Some((secret.name.clone(), secret.key.clone())), false),
                        None => (None, true),
                    },
                }
            };
        }
        let (username_secret, username_other): (Option<(String, String)>, bool) =
            from!(git.username_from);
        let username = secret_of(
            "usernameFrom",
            render("username", &git.username)?,
            username_secret
                .as_ref()
                .map(|(n, k)| (n.as_str(), k.as_str())),
            username_other,
        )?;
        let (token_secret, token_other): (Option<(String, String)>, bool) = from!(git.token_from);
        let token = secret_of(
            "tokenFrom",
            render("token", &git.token)?,
            token_secret.as_ref().map(|(n, k)| (n.as_str(), k.as_str())),
            token_other,
        )?;
        let (key_secret, key_other): (Option<(String, String)>, bool) = from!(git.ssh_key_from);
        let ssh_key = secret_of(
            "sshKeyFrom",
            render("sshKey", &git.ssh_key)?,
            key_secret.as_ref().map(|(n, k)| (n.as_str(), k.as_str())),
            key_other,
        )?;
        // Credentials written into an http(s) URI are passed like the
        // others, so that they stay out of the checkout's `.git/config`.
        let (uri, uri_username, uri_password) = split_http_user_info(&uri);
        let username = username.or(uri_username);
        let token = token.or(uri_password);
        let mount =
            render("mountPath", &git.mount_path)?.unwrap_or_else(|| DEFAULT_MOUNT_PATH.to_owned());
        let host = self.paths.host(&mount).ok_or_else(|| {
            format!("content.git.mountPath `{mount}` is outside /data, /tmp and /testkube")
        })?;
        let mut paths = Vec::new();
        for path in &git.paths {
            if let Some(path) = render("paths", &Some(path.clone()))? {
                paths.push(path);
            }
        }
        Ok(Checkout {
            display: without_user_info(&uri),
            uri,
            revision,
            username,
            token,
            header: git.auth_type == Some(GitAuthType::Header),
            ssh_key,
            mount,
            host,
            paths,
            cone: git.cone.unwrap_or(false),
        })
    }

    /// The git commands of a checkout.
    async fn checkout(
        &mut self,
        step: &PlanStep,
        checkout: &Checkout,
        session: &Session,
    ) -> Result<(), GitError> {
        let dir = &checkout.host;
        if dir.join(".git").exists() {
            self.log(
                &step.id,
                format!(
                    "content.git: {} already holds a checkout (an earlier attempt): updating it\n",
                    checkout.mount
                ),
            )
            .await;
        } else if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(GitError::Failed(format!(
                "{} is not empty: set `mountPath` to an empty or new folder",
                checkout.mount
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|err| GitError::Failed(format!("cannot create {}: {err}", checkout.mount)))?;
        let git = |args: &[&str]| -> Vec<String> {
            let mut argv = vec!["-C".to_owned(), dir.display().to_string()];
            argv.extend(args.iter().map(|arg| (*arg).to_owned()));
            argv
        };
        let run = Run { step, session };
        self.git(
            &run,
            &git(&["-c", "init.defaultBranch=main", "init", "--quiet"]),
            true,
        )
        .await?;
        self.git(
            &run,
            &git(&["config", "remote.origin.url", &checkout.uri]),
            false,
        )
        .await?;
        self.git(
            &run,
            &git(&[
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/remotes/origin/*",
            ]),
            false,
        )
        .await?;
        if !checkout.paths.is_empty() {
            let mut args = vec![
                "sparse-checkout",
                "set",
                if checkout.cone { "--cone" } else { "--no-cone" },
            ];
            args.extend(checkout.paths.iter().map(String::as_str));
            self.git(&run, &git(&args), true).await?;
        }
        let wanted = checkout.revision.as_deref().unwrap_or("HEAD");
        let mut shallow = vec!["fetch", "--depth", "1"];
        if !checkout.paths.is_empty() && !session.uri_is_local {
            shallow.push("--filter=blob:none");
        }
        shallow.extend(["origin", wanted]);
        let target = match self.git(&run, &git(&shallow), true).await {
            Ok(_) => "FETCH_HEAD".to_owned(),
            Err(GitError::Failed(error)) if needs_full_fetch(&error, wanted) => {
                self.log(
                    &step.id,
                    "content.git: a shallow fetch is not possible here: fetching the whole \
                     history\n"
                        .to_owned(),
                )
                .await;
                // A commit id the server did not find by name is not
                // fetched by name again.
                self.full_fetch(&run, &git, wanted, !not_found(&error))
                    .await?
            }
            Err(err) => return Err(err),
        };
        self.git(
            &run,
            &git(&[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--force",
                "--detach",
                &target,
            ]),
            true,
        )
        .await?;
        let head = self
            .git(&run, &git(&["rev-parse", "HEAD"]), false)
            .await
            .unwrap_or_default();
        self.log(
            &step.id,
            format!(
                "content.git: checked out {} at {}\n",
                checkout.display,
                head.trim()
            ),
        )
        .await;
        Ok(())
    }

    /// Fetches without `--depth`: the revision by name (when `by_name`),
    /// else everything (for commits the server would not hand out by id).
    /// Returns what to check out.
    async fn full_fetch(
        &mut self,
        run: &Run<'_>,
        git: &impl Fn(&[&str]) -> Vec<String>,
        wanted: &str,
        by_name: bool,
    ) -> Result<String, GitError> {
        if by_name {
            match self
                .git(run, &git(&["fetch", "--tags", "origin", wanted]), true)
                .await
            {
                Ok(_) => return Ok("FETCH_HEAD".to_owned()),
                Err(GitError::Failed(error)) if looks_like_commit(wanted) && not_found(&error) => {}
                Err(err) => return Err(err),
            }
        }
        self.git(run, &git(&["fetch", "--tags", "origin"]), true)
            .await?;
        let spec = format!("{wanted}^{{commit}}");
        match self
            .git(
                run,
                &git(&["rev-parse", "--verify", "--quiet", &spec]),
                false,
            )
            .await
        {
            Ok(commit) if !commit.trim().is_empty() => Ok(commit.trim().to_owned()),
            _ => Err(GitError::Failed(format!(
                "`{wanted}` is not a branch, tag or commit of the repository"
            ))),
        }
    }

    /// Runs `git ARGS` with the session's environment, stopped by the
    /// step's timeout or an interruption. Its output goes to the step's log
    /// when `log` (scrubbed); returns its standard output.
    async fn git(&self, run: &Run<'_>, args: &[String], log: bool) -> Result<String, GitError> {
        let mut command = tokio::process::Command::new("git");
        command
            .args(args)
            .envs(run.session.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in &run.session.remove {
            command.env_remove(name);
        }
        let child = command.spawn().map_err(|err| {
            GitError::Failed(if err.kind() == std::io::ErrorKind::NotFound {
                "the `git` command is not installed: install git to use content.git".to_owned()
            } else {
                format!("cannot start git: {err}")
            })
        })?;
        let pgid = child.id();
        let mut stop = self.stop_signal();
        let output = tokio::select! {
            output = child.wait_with_output() => output,
            stop = stop.fired() => {
                if let Some(pid) = pgid
                    .and_then(|pgid| i32::try_from(pgid).ok())
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                return Err(GitError::Stopped(stop));
            }
        };
        let output = output.map_err(|err| GitError::Failed(format!("git failed to run: {err}")))?;
        let stdout = run.session.scrub(&String::from_utf8_lossy(&output.stdout));
        let stderr = run.session.scrub(&String::from_utf8_lossy(&output.stderr));
        if log {
            let text = format!("{stdout}{stderr}");
            if !text.is_empty() {
                self.log(&run.step.id, text).await;
            }
        }
        if output.status.success() {
            Ok(stdout)
        } else {
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(ERROR_LINES)..].join("\n");
            Err(GitError::Failed(if tail.is_empty() {
                format!("git exited with {}", output.status)
            } else {
                tail
            }))
        }
    }
}

/// One checkout's step and session, for [`StepRunner::git`].
struct Run<'a> {
    step: &'a PlanStep,
    session: &'a Session,
}

/// Whether a failed shallow fetch is worth a full one: the protocol cannot
/// do shallow fetches, or the server does not hand out commits by id.
fn needs_full_fetch(error: &str, wanted: &str) -> bool {
    let error = error.to_ascii_lowercase();
    error.contains("shallow")
        || error.contains("filter")
        || (looks_like_commit(wanted)
            && (not_found(&error)
                || error.contains("not our ref")
                || error.contains("unadvertised")))
}

fn not_found(error: &str) -> bool {
    error
        .to_ascii_lowercase()
        .contains("couldn't find remote ref")
}

/// A (possibly abbreviated) commit id.
fn looks_like_commit(revision: &str) -> bool {
    (4..=64).contains(&revision.len()) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Replaces every secret in `text` with a mask.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if !secret.is_empty() && text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), MASK);
        }
    }
    text
}

/// `scheme://user:password@host/...` without `user:password@`.
fn without_user_info(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => uri.to_owned(),
    }
}

/// An http(s) URI without its user info, and the user name and password
/// written there (percent-decoded); other URIs (`ssh://git@host/...`) as
/// they are.
fn split_http_user_info(uri: &str) -> (String, Option<String>, Option<String>) {
    let lower = uri.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return (uri.to_owned(), None, None);
    }
    let Some((_, rest)) = uri.split_once("://") else {
        return (uri.to_owned(), None, None);
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return (uri.to_owned(), None, None);
    };
    let user_info = &authority[..at];
    let (user, password) = match user_info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (user_info, None),
    };
    let decode = |text: &str| Some(super::percent_decode(text)).filter(|t| !t.is_empty());
    (
        without_user_info(uri),
        decode(user),
        password.and_then(decode),
    )
}

/// The password written in a URI's user info, if any.
fn uri_password(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let user_info = &authority[..authority.rfind('@')?];
    let (_, password) = user_info.split_once(':')?;
    Some(password.to_owned()).filter(|p| !p.is_empty())
}

/// A new folder only this user can read, under `parent`.
fn private_dir(parent: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::create_dir_all(parent)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    for attempt in 0..100u32 {
        let dir = parent.join(format!(
            ".testkube-git-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other("no free name for a private folder"))
}

fn write_private(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_dropped_from_displayed_uris() {
        assert_eq!(
            without_user_info("https://me:tok@example.com/r.git"),
            "https://example.com/r.git"
        );
        assert_eq!(
            without_user_info("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert_eq!(without_user_info("git@host:r.git"), "git@host:r.git");
        assert_eq!(
            uri_password("https://me:tok@example.com/r.git").as_deref(),
            Some("tok")
        );
        assert_eq!(uri_password("https://me@example.com/r.git"), None);
        assert_eq!(
            split_http_user_info("https://me:t%40k@example.com/r.git"),
            (
                "https://example.com/r.git".to_owned(),
                Some("me".to_owned()),
                Some("t@k".to_owned())
            )
        );
        assert_eq!(
            split_http_user_info("ssh://git@example.com/r.git").0,
            "ssh://git@example.com/r.git"
        );
    }

    #[test]
    fn secrets_are_scrubbed() {
        let secrets = vec!["s3cr3t".to_owned()];
        assert_eq!(
            scrub("fatal: bad s3cr3t and s3cr3t", &secrets),
            "fatal: bad ******** and ********"
        );
    }

    #[test]
    fn commits_and_shallow_errors_are_recognised() {
        assert!(looks_like_commit("4dbd2ae"));
        assert!(!looks_like_commit("main"));
        assert!(needs_full_fetch(
            "fatal: dumb http transport does not support shallow capabilities",
            "v1"
        ));
        assert!(needs_full_fetch(
            "fatal: couldn't find remote ref 4dbd2ae",
            "4dbd2ae"
        ));
        assert!(!needs_full_fetch(
            "fatal: couldn't find remote ref nope",
            "nope"
        ));
        assert!(!needs_full_fetch("fatal: Authentication failed", "main"));
    }
}
