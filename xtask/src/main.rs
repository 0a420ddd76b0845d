//! Maintainer tasks for the dp workspace, run as `cargo xtask <task>`.
//!
//! This binary holds the work that is not part of any shipped crate: importing the service model from botocore,
//! generating `dp-model`'s Rust from it, demos, benchmarks and release archives (`dist`). It must stay light: its
//! dependencies are few so that `cargo xtask` starts quickly on a cold machine.

mod bench;
mod codegen;
mod definitions;
mod demo;
mod dist;
mod import_model;
mod test;
mod unicode;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  import-model [PATH]   read botocore's datapipeline service model (default: the installed botocore, found
                        through python3) and write crates/dp-model/model/datapipeline.json
  import-unicode [PYTHON]
                        write xtask/data/python-unicode.txt from the unicodedata of PYTHON (default python3,
                        the reference CLI's interpreter): the source of the Unicode tables
  codegen [--check]     generate crates/dp-model/src/generated.rs from the committed model, and the Unicode
                        tables (printable/table.rs, output/width/table.rs) from the committed Unicode data;
                        --check fails if a committed file is stale
  bench [cli [ROUNDS] | shorthand | wire | local]
                        whole-process timings of dp vs aws vs a floor (cli), or a crate's criterion benches
  dist [--check ARCHIVE]
                        build the release archive target/dist/dp-<version>-<target>.tar.gz (binaries, man
                        pages, completions, README, LICENSE, systemd units, SHA256SUMS); --check verifies one
  demo                  start dp-local and run a whole task life with dp against it (no AWS account needed)
  run-definitions DIR [SECONDS]
                        submit every definition file below DIR to a fresh dp-local as the AWS samples'
                        READMEs do (placeholder parameter values), follow each first run to its end and
                        print one line per file; fails if an accepted definition does not end in SECONDS
  test [ARGS]           prepare what the tests need (the pinned AWS CLI and moto in target/test-tools/venv;
                        Chromium, PostgreSQL and MariaDB from Debian's packages when run as root), then run
                        cargo test --workspace --locked --no-fail-fast [ARGS], print 'N passed, N failed'
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    let rest = &args[1..];
    match task.as_str() {
        "import-model" => import_model::run(rest.first().map(PathBuf::from)),
        "codegen" => {
            let check = match rest {
                [] => false,
                [flag] if flag == "--check" => true,
                _ => bail!("usage: cargo xtask codegen [--check]"),
            };
            codegen::run(check)
        }
        "import-unicode" => match rest {
            [] => unicode::import(None),
            [python] => unicode::import(Some(python)),
            _ => bail!("usage: cargo xtask import-unicode [PYTHON]"),
        },
        "demo" => demo::run(),
        "run-definitions" => definitions::run(rest),
        "dist" => dist::run(rest),
        "bench" => bench::run(rest),
        "test" => test::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("unknown task {other:?}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// The workspace root, found from this crate's manifest directory so that xtask works from any working directory.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Path of the committed, normalized service model.
pub(crate) fn model_path() -> PathBuf {
    project_root().join("crates/dp-model/model/datapipeline.json")
}

pub(crate) fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
