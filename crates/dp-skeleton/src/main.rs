//! `dp-skeleton OPERATION [input|output|yaml-input]`: prints an operation's skeleton.
//!
//! A thin wrapper over the `dp_skeleton` library; exit codes follow dp's table (252 for a bad command line).

use std::io::Write as _;
use std::process::ExitCode;

const USAGE: &str = "usage: dp-skeleton OPERATION [input|output|yaml-input]\n       dp-skeleton --help | --version\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-V" | "--version")) {
        println!(
            "dp-skeleton {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            env!("DP_BUILD_COMMIT")
        );
        return ExitCode::SUCCESS;
    }
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        print!("{USAGE}\noperations:\n");
        for op in dp_model::operations() {
            println!("  {}", op.cli_name);
        }
        return ExitCode::SUCCESS;
    }
    let (name, kind) = match args.as_slice() {
        [name] => (name, "input"),
        [name, kind] => (name, kind.as_str()),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(252);
        }
    };
    let Some(op) = dp_model::operation_by_cli_name(name) else {
        let names: Vec<&str> = dp_model::operations().iter().map(|o| o.cli_name).collect();
        eprintln!(
            "dp-skeleton: unknown operation {name:?}; valid operations: {}",
            names.join(", ")
        );
        return ExitCode::from(252);
    };
    let Some(kind) = dp_skeleton::Kind::parse(kind) else {
        eprintln!(
            "dp-skeleton: invalid skeleton kind {kind:?}; valid kinds: input, output, yaml-input"
        );
        return ExitCode::from(252);
    };
    // An operation without output prints nothing, as `--generate-cli-skeleton output` does.
    let text = dp_skeleton::render(op, kind).unwrap_or_default();
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("dp-skeleton: {e}");
            ExitCode::from(255)
        }
        _ => ExitCode::SUCCESS,
    }
}
