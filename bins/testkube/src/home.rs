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
