//! `graflow completions SHELL`: print a completion script.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `graflow completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Print the script to standard output.
pub fn run(args: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "graflow", &mut script);
    super::out::write(&String::from_utf8_lossy(&script));
    super::exit::SUCCESS
}
