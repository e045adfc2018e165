//! What every kube-sim test needs before a cluster starts: this build's
//! `testkube-init` (the init image) and bubblewrap (kube-sim runs pods with
//! it). Shared by testkube-k8s's and the agent's tests (`#[path]`), so both
//! skip and fail the same way.

use std::path::PathBuf;

/// `testkube-init` of this build: next to the test binary's folder
/// (`cargo test --workspace` builds it).
pub(crate) fn init_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = dir.join("testkube-init");
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p testkube-init`, or run `cargo test --workspace`)",
        binary.display()
    );
    binary
}

/// Whether bubblewrap can run pods here (the test is skipped, saying so,
/// when it cannot).
pub(crate) fn has_bwrap() -> bool {
    let ok = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !ok {
        eprintln!(
            "skipped: bubblewrap (bwrap) is not usable on this machine; kube-sim runs pods with it"
        );
    }
    ok
}
