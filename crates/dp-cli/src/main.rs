//! The `dp` binary: hands the arguments to the library and exits with its code.

fn main() {
    std::process::exit(dp_cli::run(std::env::args_os().collect()));
}
