//! The home folder: where runs, the result store and artifacts live
//! (`--home`, else `$TESTKUBE_HOME`, else `.testkube` in the current folder).
//! Set once at start-up, read by every command that keeps or reads history.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static HOME: OnceLock<PathBuf> = OnceLock::new();

/// Records the home folder chosen on the command line (or by the
/// environment); later calls change nothing.
pub(crate) fn init(home: Option<PathBuf>) {
    let _ = HOME.set(home.unwrap_or_else(|| PathBuf::from(".testkube")));
}

/// The home folder.
pub(crate) fn dir() -> &'static Path {
    HOME.get_or_init(|| PathBuf::from(".testkube"))
}

/// The result store's database file.
pub(crate) fn database() -> PathBuf {
    dir().join(testkube_results::store::DB_FILE)
}

/// Where workers' workspaces are kept.
pub(crate) fn runs() -> PathBuf {
    dir().join("runs")
}

/// A `testkube` command line to suggest to the user, naming the home folder when it is not
/// the default: a hint printed after `run --home /tmp/x` must work when pasted as it is.
pub(crate) fn command(args: &str) -> String {
    let home = dir();
    if home == Path::new(".testkube") {
        format!("testkube {args}")
    } else {
        format!(
            "testkube --home {} {args}",
            shell_word(&home.to_string_lossy())
        )
    }
}

/// `word` quoted for a POSIX shell when it holds anything but plain path characters.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn hints_quote_home_folders_a_shell_would_split() {
        assert_eq!(shell_word("/tmp/runs-1"), "/tmp/runs-1");
        assert_eq!(shell_word("/tmp/my runs"), "'/tmp/my runs'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
