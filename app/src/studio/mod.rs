//! The studio: a ratatui app that embeds the engine.
//!
//! (Placeholder: the studio lands with its own work.)

use std::path::PathBuf;

use clap::Args;

/// Arguments of `graflow studio`.
#[derive(Debug, Default, Args)]
pub struct StudioArgs {
    /// Workflow files or folders to open (default: sample-workflows/ when it exists, else .).
    pub paths: Vec<PathBuf>,
}

/// Open the studio; returns the exit code.
pub async fn run(args: StudioArgs) -> anyhow::Result<i32> {
    let _ = args;
    println!(
        "graflow {}: the studio is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    Ok(0)
}
