//! The command line: argument types and dispatch to one module per command.

pub mod ctx;
pub mod exit;
pub mod logging;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::studio;

/// Graflow: run workflows written with `>>` and `|`, and watch them in a terminal studio.
#[derive(Debug, Parser)]
#[command(name = "graflow", version, about, long_about = None)]
pub struct Cli {
    /// More log output (repeat for more); `RUST_LOG` also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do; without a command, the studio opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the studio on workflow files or folders (default: sample-workflows/ or .).
    Studio(studio::StudioArgs),
    /// Talk to the running engine from inside a Shell or Command task.
    Ctx(ctx::CtxArgs),
}

/// Run a parsed command line; returns the process exit code.
pub async fn dispatch(cli: Cli) -> i32 {
    let result = match cli.command {
        None => studio::run(studio::StudioArgs::default()).await,
        Some(Command::Studio(args)) => studio::run(args).await,
        Some(Command::Ctx(_)) => Ok(exit::BAD_INPUT),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("graflow: {e:#}");
            exit::FAILURE
        }
    }
}

/// Paths given on the command line, or a default.
pub fn paths_or(paths: &[PathBuf], default: impl FnOnce() -> PathBuf) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![default()]
    } else {
        paths.to_vec()
    }
}
