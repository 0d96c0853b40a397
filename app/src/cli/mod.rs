//! The command line: argument types and dispatch to one module per command.

pub mod backend;
pub mod checkpoints;
pub mod completions;
pub mod ctx;
pub mod events;
pub mod exit;
pub mod feedback;
pub mod graph;
mod load;
pub mod logging;
pub mod out;
mod progress;
pub mod resume;
pub mod run;
pub mod serve;
mod signals;
pub mod style;
pub mod validate;
pub mod worker;

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
    /// Run a workflow file headless, with live progress (or `--json` events).
    Run(run::RunArgs),
    /// Check workflow files and print every problem with its line and column.
    Validate(validate::ValidateArgs),
    /// Print a workflow's graph as an ASCII tree, Mermaid or Graphviz DOT.
    Graph(graph::GraphArgs),
    /// Continue a run from a checkpoint.
    Resume(resume::ResumeArgs),
    /// List checkpoints with their metadata, newest first.
    Checkpoints(checkpoints::CheckpointsArgs),
    /// List, show, answer or cancel human-feedback requests.
    Feedback(feedback::FeedbackArgs),
    /// Serve the human-feedback REST API, its web form and /metrics.
    Serve(serve::ServeArgs),
    /// Run a worker of the Redis fleet: take task attempts from queues and run them.
    Worker(worker::WorkerArgs),
    /// Follow a run of the fleet as JSON lines, wherever it runs (or list the fleet's runs).
    Events(events::EventsArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Talk to the running engine from inside a Shell or Command task.
    Ctx(ctx::CtxArgs),
}

/// Run a parsed command line; returns the process exit code.
pub async fn dispatch(cli: Cli) -> i32 {
    let result = match cli.command {
        None => studio::run(studio::StudioArgs::default()).await,
        Some(Command::Studio(args)) => studio::run(args).await,
        Some(Command::Run(args)) => run::run(args).await,
        Some(Command::Validate(args)) => Ok(validate::run(&args)),
        Some(Command::Graph(args)) => Ok(graph::run(&args)),
        Some(Command::Resume(args)) => resume::run(args).await,
        Some(Command::Checkpoints(args)) => Ok(checkpoints::run(&args).await),
        Some(Command::Feedback(args)) => Ok(feedback::run(args).await),
        Some(Command::Serve(args)) => Ok(serve::run(args).await),
        Some(Command::Worker(args)) => worker::run(args).await,
        Some(Command::Events(args)) => events::run(args).await,
        Some(Command::Completions(args)) => Ok(completions::run(&args)),
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
