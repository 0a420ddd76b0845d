//! Records the commit this binary is built from, for `--version` (see the dp-build crate).

fn main() {
    dp_build::emit_build_commit();
}
