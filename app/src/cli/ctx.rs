//! `graflow ctx …`: the task-context client that Shell and Command tasks call.
//!
//! (Placeholder: the client lands with the process-handler work.)

use clap::Args;

/// Arguments of `graflow ctx`.
#[derive(Debug, Args)]
pub struct CtxArgs {
    /// The operation and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Run the client; returns the exit code.
pub fn run(args: &CtxArgs) -> i32 {
    let _ = args;
    eprintln!("graflow ctx: not available yet");
    super::exit::BAD_INPUT
}
