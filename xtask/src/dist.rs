//! `cargo xtask dist`: the release archive, and `cargo xtask dist --check ARCHIVE`: its verification.
//!
//! The archive `target/dist/dp-<version>-<target>.tar.gz` holds the release binaries of the workspace (dp,
//! dp-skeleton, dp-local and dp-task-runner, whichever exist), their man pages, dp's completion scripts for bash,
//! zsh, fish and powershell, README.md, LICENSE, example systemd units and a `SHA256SUMS` of its files; a
//! `SHA256SUMS` of the archive lies beside it. It is reproducible: entries are sorted, every entry has the
//! commit's time as mtime and root (0/0) as owner, gzip's header has no time or name, and the binaries are built
//! with the workspace and cargo home paths remapped, so two runs on one commit give the same bytes.
//!
//! dp's man pages come from clap_mangen through dp-cli's `dp-man` example (the same command tree that parses
//! dp's arguments); the other binaries' pages are made from their `--help` text. Nothing here is needed to build
//! or test the workspace.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::project_root;

/// The binaries an archive may hold, in this order; those the workspace does not build are left out.
const BINARIES: &[&str] = &["dp", "dp-skeleton", "dp-local", "dp-task-runner"];

/// The offline command `--check` runs.
const OFFLINE_COMMAND: &[&str] = &["report-task-progress", "--generate-cli-skeleton"];

/// One file of the archive: its bytes and whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub(crate) bytes: Vec<u8>,
    pub(crate) executable: bool,
}

/// `cargo xtask dist [--check ARCHIVE]`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    match args {
        [] => build(),
        [flag, archive] if flag == "--check" => check(Path::new(archive)),
        _ => bail!("usage: cargo xtask dist [--check ARCHIVE]"),
    }
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", out.status);
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(project_root())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit being packed: `DP_BUILD_COMMIT`, else git's HEAD, else `unknown`.
fn commit() -> String {
    std::env::var("DP_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--verify", "HEAD"]))
        .unwrap_or_else(|| "unknown".into())
}

/// The archive's timestamp: `SOURCE_DATE_EPOCH`, else the commit's time, else 0.
fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .or_else(|| git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn host_target() -> Result<String> {
    let info = output(Command::new("rustc").arg("-vV"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

/// `(binary, package, description)` of each of [`BINARIES`] that the workspace builds.
fn workspace_binaries() -> Result<Vec<(String, String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = output(
        Command::new(cargo)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(project_root()),
    )?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)?;
    let mut found = Vec::new();
    for wanted in BINARIES {
        for package in metadata["packages"].as_array().into_iter().flatten() {
            let has_bin = package["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    t["name"] == *wanted
                        && t["kind"]
                            .as_array()
                            .is_some_and(|k| k.iter().any(|k| k == "bin"))
                });
            if has_bin {
                found.push((
                    wanted.to_string(),
                    package["name"].as_str().unwrap_or_default().to_string(),
                    package["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
    }
    Ok(found)
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent-cargo-home"))
}

/// Paths that must not appear in a release binary.
fn build_paths() -> Vec<String> {
    vec![
        project_root().display().to_string(),
        cargo_home().display().to_string(),
    ]
}

fn build() -> Result<()> {
    let started = Instant::now();
    let root = project_root();
    let version = env!("CARGO_PKG_VERSION");
    let target = host_target()?;
    let commit = commit();
    let epoch = source_date_epoch();
    let binaries = workspace_binaries()?;
    let name = format!("dp-{version}-{target}");
    if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
        eprintln!(
            "dist: warning: the working tree has uncommitted changes; the archive is built from them, not from \
             commit {commit} alone (build from a clean checkout for a release)"
        );
    }
    eprintln!(
        "dist: {name} from commit {commit}, binaries {}",
        binaries
            .iter()
            .map(|b| b.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // A target directory of its own: the remapping flags would otherwise rebuild target/release for everyone.
    let build_dir = root.join("target/dist-build");
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    for (from, to) in [(root.clone(), "/dp"), (cargo_home(), "/cargo")] {
        rustflags.push_str(&format!(" --remap-path-prefix={}={to}", from.display()));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--locked", "--target-dir"])
        .arg(&build_dir)
        .current_dir(&root)
        .env("RUSTFLAGS", rustflags.trim())
        .env("DP_BUILD_COMMIT", &commit)
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
    let mut packages: Vec<&str> = binaries.iter().map(|b| b.1.as_str()).collect();
    packages.dedup();
    for package in &packages {
        cmd.args(["-p", package]);
    }
    let status = cmd.status().context("running cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let built_in = started.elapsed();

    let mut files: BTreeMap<String, File> = BTreeMap::new();
    let release = build_dir.join("release");
    for (bin, _, description) in &binaries {
        let path = release.join(bin);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.insert(
            format!("bin/{bin}"),
            File {
                bytes,
                executable: true,
            },
        );
        if bin != "dp" {
            let help = run_binary(&path, &["--help"])?;
            files.insert(
                format!("share/man/man1/{bin}.1"),
                text_file(&help_to_roff(bin, version, description, &help)),
            );
        }
    }
    // dp's pages: clap_mangen over dp's own command tree (dp-cli's dp-man example, a debug build).
    let man_dir = build_dir.join("man");
    let _ = std::fs::remove_dir_all(&man_dir);
    let status = Command::new(&cargo)
        .args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "dp-cli",
            "--example",
            "dp-man",
            "--",
        ])
        .arg(&man_dir)
        .current_dir(&root)
        .status()
        .context("running the dp-man example")?;
    if !status.success() {
        bail!("generating dp's man pages failed");
    }
    for entry in std::fs::read_dir(&man_dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        files.insert(
            format!("share/man/man1/{file_name}"),
            File {
                bytes: std::fs::read(entry.path())?,
                executable: false,
            },
        );
    }
    let dp = release.join("dp");
    for (shell, file) in [
        ("bash", "dp.bash"),
        ("zsh", "_dp"),
        ("fish", "dp.fish"),
        ("powershell", "_dp.ps1"),
    ] {
        let script = run_binary(&dp, &["completion", shell])?;
        files.insert(format!("share/completions/{file}"), text_file(&script));
    }
    for (from, to) in [
        ("README.md", "README.md"),
        ("LICENSE", "LICENSE"),
        (
            "packaging/systemd/dp-local.service",
            "share/systemd/dp-local.service",
        ),
        (
            "packaging/systemd/dp-task-runner.service",
            "share/systemd/dp-task-runner.service",
        ),
    ] {
        let bytes = std::fs::read(root.join(from)).with_context(|| format!("reading {from}"))?;
        files.insert(
            to.to_string(),
            File {
                bytes,
                executable: false,
            },
        );
    }
    let sums = sha256sums(files.iter().map(|(p, f)| (p.as_str(), f.bytes.as_slice())));
    files.insert("SHA256SUMS".into(), text_file(&sums));

    let archive = pack(&name, &files, epoch)?;
    let dist = root.join("target/dist");
    std::fs::create_dir_all(&dist)?;
    let archive_name = format!("{name}.tar.gz");
    let archive_path = dist.join(&archive_name);
    std::fs::write(&archive_path, &archive)?;
    std::fs::write(
        dist.join("SHA256SUMS"),
        sha256sums([(archive_name.as_str(), archive.as_slice())]),
    )?;
    println!("{}", archive_path.display());
    eprintln!(
        "dist: {} files, {} bytes; release build {:.0?}, total {:.0?}",
        files.len(),
        archive.len(),
        built_in,
        started.elapsed()
    );
    Ok(())
}

fn text_file(text: &str) -> File {
    File {
        bytes: text.as_bytes().to_vec(),
        executable: false,
    }
}

fn run_binary(path: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(path)
        .args(args)
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} exited {}: {}",
            path.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `sha256sum` format: one `HASH  PATH` line per file, in the order given.
pub(crate) fn sha256sums<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    files
        .into_iter()
        .map(|(path, bytes)| format!("{}  {path}\n", hex::encode(Sha256::digest(bytes))))
        .collect()
}

/// Escapes text for roff: backslashes, leading control characters, and hyphens (as `\-`, so that option names
/// render as ASCII hyphen-minus).
fn roff_escape(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A man page from a binary's `--help` text: NAME from the package description, the help as written.
pub(crate) fn help_to_roff(bin: &str, version: &str, description: &str, help: &str) -> String {
    let mut page = format!(
        ".TH \"{}\" \"1\" \"\" \"{bin} {version}\" \"User Commands\"\n.SH NAME\n{} \\- {}\n.SH DESCRIPTION\n.nf\n",
        bin.to_uppercase(),
        roff_escape(bin),
        roff_escape(description.split_once(": ").map_or(description, |(_, d)| d))
    );
    for line in help.lines() {
        page.push_str(&roff_escape(line));
        page.push('\n');
    }
    page.push_str(".fi\n");
    page
}

/// The gzipped tar of `files` under the directory `name`, byte-for-byte the same for the same input: directory
/// entries and files in sorted order, mode 0755 or 0644, owner root (0/0), mtime `epoch`, no gzip time or name.
pub(crate) fn pack(name: &str, files: &BTreeMap<String, File>, epoch: u64) -> Result<Vec<u8>> {
    let mut entries: BTreeMap<String, Option<&File>> = BTreeMap::new();
    entries.insert(format!("{name}/"), None);
    for (path, file) in files {
        let full = format!("{name}/{path}");
        let mut dir = full.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            entries.insert(format!("{parent}/"), None);
            dir = parent;
        }
        entries.insert(full, Some(file));
    }
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, file) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root")?;
        header.set_groupname("root")?;
        header.set_mtime(epoch);
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, path, std::io::empty())?;
            }
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if file.executable { 0o755 } else { 0o644 });
                header.set_size(file.bytes.len() as u64);
                tar.append_data(&mut header, path, file.bytes.as_slice())?;
            }
        }
    }
    let gz = tar.into_inner()?;
    Ok(gz.finish()?)
}

/// The files of an archive (paths without the top directory) and the top directory's name, checking that every
/// entry has the same mtime, root ownership and a sorted place.
pub(crate) fn unpack(archive: &[u8]) -> Result<(String, BTreeMap<String, File>)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut files = BTreeMap::new();
    let mut top: Option<String> = None;
    let mut previous = String::new();
    let mut mtime = None;
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let header = entry.header();
        let (uid, gid, time) = (header.uid()?, header.gid()?, header.mtime()?);
        if uid != 0 || gid != 0 {
            bail!("{path}: owner {uid}:{gid}, not 0:0");
        }
        if *mtime.get_or_insert(time) != time {
            bail!("{path}: mtime {time} differs from the first entry's");
        }
        if path <= previous {
            bail!("{path} comes after {previous}: entries are not sorted");
        }
        previous = path.clone();
        let (first, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
        match &top {
            None => top = Some(first.to_string()),
            Some(t) if t != first => bail!("{path} is outside the top directory {t}"),
            Some(_) => {}
        }
        if header.entry_type() == tar::EntryType::Regular {
            let executable = header.mode()? & 0o111 != 0;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            files.insert(rest.to_string(), File { bytes, executable });
        }
    }
    Ok((top.context("the archive is empty")?, files))
}

/// Renders a man page as plain ASCII (groff, else `man -l`), 200 columns, no hyphenation. `None` without either.
fn render_man(path: &Path) -> Result<Option<String>> {
    let attempts: [(&str, &[&str]); 2] = [
        (
            "groff",
            &["-man", "-Tascii", "-rHY=0", "-rLL=200n", "-P-cbou", "-ww"],
        ),
        ("man", &["-l", "-Tascii", "-P", "cat"]),
    ];
    for (program, args) in attempts {
        let Ok(out) = Command::new(program)
            .args(args)
            .arg(path)
            .env("MANWIDTH", "200")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        let warnings = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || warnings.contains("warning") {
            bail!("{program} cannot render {}: {warnings}", path.display());
        }
        return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    Ok(None)
}

/// The options a roff page names (`\-\-name`), as they read once rendered (`--name`).
fn options_in_roff(roff: &str) -> Vec<String> {
    let text = roff.replace("\\-", "-");
    let mut options: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2 && w.as_bytes()[2].is_ascii_alphabetic())
        .map(|w| w.trim_end_matches('-').to_string())
        .collect();
    options.sort();
    options.dedup();
    options
}

fn check(archive_path: &Path) -> Result<()> {
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut report = |ok: bool, what: String| {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failures.push(what);
        }
    };
    let archive = std::fs::read(archive_path)
        .with_context(|| format!("reading {}", archive_path.display()))?;
    let archive_name = archive_path
        .file_name()
        .context("no file name")?
        .to_string_lossy()
        .into_owned();

    // The checksum beside the archive.
    let beside = archive_path.with_file_name("SHA256SUMS");
    match std::fs::read_to_string(&beside) {
        Ok(sums) => {
            let expected = sha256sums([(archive_name.as_str(), archive.as_slice())]);
            report(
                sums.lines().any(|l| format!("{l}\n") == expected),
                format!("{} lists {archive_name} with its hash", beside.display()),
            );
        }
        Err(_) => report(false, format!("no {} beside the archive", beside.display())),
    }

    let (top, files) = match unpack(&archive) {
        Ok(x) => x,
        Err(e) => {
            report(false, format!("unpacking: {e:#}"));
            bail!("{} check(s) failed", failures.len());
        }
    };
    report(
        true,
        format!(
            "{top}/: {} files, sorted, owner 0:0, one mtime",
            files.len()
        ),
    );

    // The checksums inside.
    match files.get("SHA256SUMS") {
        Some(sums) => {
            let listed = String::from_utf8_lossy(&sums.bytes).into_owned();
            let expected = sha256sums(
                files
                    .iter()
                    .filter(|(p, _)| *p != "SHA256SUMS")
                    .map(|(p, f)| (p.as_str(), f.bytes.as_slice())),
            );
            report(listed == expected, "SHA256SUMS matches every file".into());
        }
        None => report(false, "no SHA256SUMS in the archive".into()),
    }
    for required in [
        "README.md",
        "LICENSE",
        "share/systemd/dp-local.service",
        "share/systemd/dp-task-runner.service",
        "share/completions/dp.bash",
        "share/completions/_dp",
        "share/completions/dp.fish",
        "share/completions/_dp.ps1",
        "share/man/man1/dp.1",
    ] {
        report(files.contains_key(required), format!("{required} present"));
    }

    let dir = std::env::temp_dir().join(format!("dp-dist-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = check_unpacked(&dir, &top, &files, &mut report);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!("checked in {:.1?}", started.elapsed());
    if !failures.is_empty() {
        bail!(
            "{} check(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

fn check_unpacked(
    dir: &Path,
    top: &str,
    files: &BTreeMap<String, File>,
    report: &mut dyn FnMut(bool, String),
) -> Result<()> {
    let root = dir.join(top);
    for (path, file) in files {
        let target = root.join(path);
        std::fs::create_dir_all(target.parent().context("a file has a parent")?)?;
        std::fs::write(&target, &file.bytes)?;
        if file.executable {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let version = top.split('-').nth(1).unwrap_or_default().to_string();
    let bins: Vec<&String> = files.keys().filter(|p| p.starts_with("bin/")).collect();
    report(files.contains_key("bin/dp"), "bin/dp present".into());

    // The commit: dp's, which every other binary must name too.
    let dp_version = run_binary(&root.join("bin/dp"), &["--version"]).unwrap_or_default();
    let commit = dp_version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("commit/"))
        .unwrap_or_default()
        .to_string();
    report(
        commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        format!("dp --version names a commit: {}", dp_version.trim()),
    );
    for bin in &bins {
        let path = root.join(bin);
        match run_binary(&path, &["--version"]) {
            Ok(out) => report(
                out.contains(&version) && !commit.is_empty() && out.contains(&commit),
                format!(
                    "{bin} --version names {version} and commit {commit}: {}",
                    out.trim()
                ),
            ),
            Err(e) => report(false, format!("{bin} --version: {e:#}")),
        }
        let bytes = &files[*bin].bytes;
        for path in build_paths() {
            let found = bytes.windows(path.len()).any(|w| w == path.as_bytes());
            report(!found, format!("{bin} holds no build path {path}"));
        }
    }
    match run_binary(&root.join("bin/dp"), OFFLINE_COMMAND) {
        Ok(out) => {
            let value: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            report(
                value.get("taskId").is_some(),
                format!("dp {} prints the skeleton", OFFLINE_COMMAND.join(" ")),
            );
        }
        Err(e) => report(false, format!("dp {}: {e:#}", OFFLINE_COMMAND.join(" "))),
    }

    let pages: Vec<&String> = files
        .keys()
        .filter(|p| p.starts_with("share/man/man1/"))
        .collect();
    for bin in &bins {
        let page = format!("share/man/man1/{}.1", bin.trim_start_matches("bin/"));
        report(files.contains_key(&page), format!("{page} present"));
    }
    for page in pages {
        let roff = String::from_utf8_lossy(&files[page].bytes).into_owned();
        match render_man(&root.join(page)) {
            Ok(Some(text)) => {
                let missing: Vec<String> = options_in_roff(&roff)
                    .into_iter()
                    .filter(|o| !text.contains(o.as_str()))
                    .collect();
                report(
                    !text.trim().is_empty() && missing.is_empty(),
                    format!(
                        "{page} renders with every option it names{}",
                        if missing.is_empty() {
                            String::new()
                        } else {
                            format!(" (missing {missing:?})")
                        }
                    ),
                );
            }
            Ok(None) => report(false, format!("{page}: neither groff nor man is installed")),
            Err(e) => report(false, format!("{e:#}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, File> {
        let mut files = BTreeMap::new();
        files.insert(
            "bin/dp".to_string(),
            File {
                bytes: b"\x7fELF binary".to_vec(),
                executable: true,
            },
        );
        files.insert(
            "share/man/man1/dp.1".to_string(),
            File {
                bytes: b".TH DP 1\n".to_vec(),
                executable: false,
            },
        );
        files.insert(
            "README.md".to_string(),
            File {
                bytes: b"# dp\n".to_vec(),
                executable: false,
            },
        );
        files
    }

    #[test]
    fn packing_is_reproducible_and_round_trips() {
        let files = sample();
        let a = pack("dp-0.1.0-x", &files, 1_700_000_000).unwrap();
        // Built in another insertion order: the same bytes.
        let mut reversed = BTreeMap::new();
        for (k, v) in files.iter().rev() {
            reversed.insert(k.clone(), v.clone());
        }
        let b = pack("dp-0.1.0-x", &reversed, 1_700_000_000).unwrap();
        assert_eq!(a, b);
        let (top, unpacked) = unpack(&a).unwrap();
        assert_eq!(top, "dp-0.1.0-x");
        assert_eq!(unpacked, files);
        // The time is part of the bytes, and nothing else varies.
        assert_ne!(a, pack("dp-0.1.0-x", &files, 1).unwrap());
    }

    #[test]
    fn sums_are_in_sha256sum_format() {
        assert_eq!(
            sha256sums([("a", b"abc".as_slice())]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a\n"
        );
    }

    #[test]
    fn help_pages_escape_roff() {
        let page = help_to_roff(
            "dp-local",
            "0.1.0",
            "dp-local: a local endpoint",
            ".hidden\n  --port PORT  a \\ b\n",
        );
        assert!(page.contains("dp\\-local \\- a local endpoint"), "{page}");
        assert!(page.contains("\\&.hidden\n"), "{page}");
        assert!(page.contains("  \\-\\-port PORT  a \\e b\n"), "{page}");
        assert_eq!(options_in_roff(&page), vec!["--port".to_string()]);
    }
}
