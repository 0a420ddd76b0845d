//! The `dp` binary. Not built yet.

fn main() {
    eprintln!("dp: not built yet; see dp-skeleton");
    std::process::exit(255);
}
