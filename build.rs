//! Sets `MAILDRIFT_REVISION` (the `revision` label of `maildrift_build_info`): the variable
//! itself when the build sets it (the Dockerfile does, from a build argument), else the
//! commit checked out (`git rev-parse HEAD`) when git and the repository are there, else
//! "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// Asks cargo to run this again when `file` changes (only when it exists: a missing file
/// would count as changed on every build).
fn watch(file: Option<String>) {
    if let Some(file) = file.filter(|f| std::path::Path::new(f).exists()) {
        println!("cargo:rerun-if-changed={file}");
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=MAILDRIFT_REVISION");
    let from_env = std::env::var("MAILDRIFT_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let revision = from_env.or_else(|| {
        // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points at (a
        // commit) and packed refs. The paths are the worktree's own when in a worktree.
        for path in ["HEAD", "packed-refs"] {
            watch(git(&["rev-parse", "--git-path", path]));
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(git(&["rev-parse", "--git-path", &branch]));
        }
        git(&["rev-parse", "HEAD"])
    });
    let revision = revision.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MAILDRIFT_REVISION={revision}");
}
