//! The `shieldops` binary: everything lives in the library; this is the edge.

fn main() {
    std::process::exit(shieldops::cli::main());
}
