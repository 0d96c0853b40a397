//! `graflow`: the terminal workflow studio and the headless commands. A thin binary over
//! `graflow-engine`: `cli/` has one module per command, `studio/` the terminal app.

mod cli;

pub use graflow::{history, runsetup, studio, text};

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// mimalloc: a run allocates and frees small objects at a high rate from several threads
/// (each member of a wide group has its branch, context and futures), which it does faster
/// than the system allocator (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::out::quiet_on_closed_pipes();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                cli::exit::BAD_INPUT
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    cli::logging::init(cli.verbose);
    // `graflow ctx` is a short-lived client called from task processes: no runtime needed.
    if let Some(Command::Ctx(args)) = &cli.command {
        return ExitCode::from(cli::ctx::run(args) as u8);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("graflow: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cli::dispatch(cli));
    ExitCode::from(code.clamp(0, 255) as u8)
}
