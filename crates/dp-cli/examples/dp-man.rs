//! Writes dp's man pages into a directory: `cargo run -p dp-cli --example dp-man -- DIR`. Used by
//! `cargo xtask dist`; the pages are generated, never committed.

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: dp-man DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("dp-man: {}: {e}", dir.display());
        std::process::exit(1);
    }
    for page in dp_cli::cli::man::pages() {
        let path = dir.join(&page.file_name);
        if let Err(e) = std::fs::write(&path, page.roff) {
            eprintln!("dp-man: {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
