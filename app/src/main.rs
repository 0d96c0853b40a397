//! `graflow`: the terminal workflow studio and the headless commands.

use clap::Parser;

/// Graflow: run workflows written with `>>` and `|`, watch them in a terminal studio.
#[derive(Debug, Parser)]
#[command(name = "graflow", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "graflow {}: the studio and the headless commands are not built yet; see README.md",
        env!("CARGO_PKG_VERSION")
    );
}
