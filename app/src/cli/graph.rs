//! `graflow graph FILE --format ascii|mermaid|dot`: print a workflow's graph.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use graflow_engine::handler::Runtimes;
use graflow_engine::render;

use super::exit;
use super::load::load_or_report;
use super::style::Style;

/// Output formats.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    /// An indented tree for the terminal.
    #[default]
    Ascii,
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

/// Arguments of `graflow graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The workflow file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Ascii)]
    pub format: Format,
}

/// Print the graph; exit 2 when the file is invalid.
pub fn run(args: &GraphArgs) -> i32 {
    let Some(wf) = load_or_report(&args.file, &Runtimes::default(), &Style::stderr()) else {
        return exit::BAD_INPUT;
    };
    let text = match args.format {
        Format::Ascii => render::ascii(&wf.workflow),
        Format::Mermaid => render::mermaid(&wf.workflow),
        Format::Dot => render::dot(&wf.workflow),
    };
    super::out::write(&text);
    exit::SUCCESS
}
