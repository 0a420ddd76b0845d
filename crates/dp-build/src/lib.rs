//! For build scripts only: records the commit a binary is built from, so every dp binary's `--version` can name
//! it.
//!
//! `DP_BUILD_COMMIT` in the environment wins (an archive build, or a packager who knows the commit); otherwise
//! `git rev-parse HEAD` in the source tree; otherwise `unknown` (a source tarball without git). The build script
//! reruns when HEAD or the branch it points to moves, and never fails the build. Each binary crate's `build.rs`
//! calls [`emit_build_commit`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// Sets `DP_BUILD_COMMIT` for the crate being built (`env!("DP_BUILD_COMMIT")`), and tells cargo when to rerun.
pub fn emit_build_commit() {
    println!("cargo:rerun-if-env-changed=DP_BUILD_COMMIT");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = std::env::var("DP_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git_commit(&manifest))
        .unwrap_or_else(|| {
            // In a checkout whose git could not answer (a transient failure), the HEAD file is still watched, so
            // the next build after HEAD moves asks again instead of keeping `unknown` for good.
            if let Some(head) = checkout_head(&manifest) {
                println!("cargo:rerun-if-changed={}", head.display());
                println!(
                    "cargo:warning=git could not name the commit of {}; --version says `unknown` in this build",
                    manifest.display()
                );
            }
            "unknown".to_string()
        });
    println!("cargo:rustc-env=DP_BUILD_COMMIT={}", commit.trim());
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// The `HEAD` file of the git checkout holding `dir`, found without git (a `.git` directory above it).
fn checkout_head(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(".git").join("HEAD"))
        .find(|head| head.is_file())
}

fn git_commit(dir: &Path) -> Option<String> {
    // Asked twice: a git that fails once (another git process busy in the same checkout) usually answers the
    // second time.
    let commit = git(dir, &["rev-parse", "--verify", "HEAD"]).or_else(|| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        git(dir, &["rev-parse", "--verify", "HEAD"])
    })?;
    // Rerun when HEAD moves: the HEAD file, the ref it names, and packed refs.
    if let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"]) {
        let git_dir = PathBuf::from(git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD"))
            && let Some(reference) = head.trim().strip_prefix("ref: ")
        {
            let common = git(dir, &["rev-parse", "--git-common-dir"])
                .map(|d| dir.join(d))
                .unwrap_or(git_dir.clone());
            // A missing file would make cargo rerun this script on every build.
            for file in [common.join(reference), common.join("packed-refs")] {
                if file.exists() {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
            }
        }
    }
    Some(commit)
}
