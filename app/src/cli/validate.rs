//! `graflow validate FILE…`: check workflow files and print every problem with line:col.

use std::path::PathBuf;

use clap::Args;
use graflow_engine::file;
use graflow_engine::handler::Runtimes;

use super::exit;
use super::out::outln;
use super::style::Style;
use crate::text::plural;

/// Arguments of `graflow validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Check each file; exit 2 when any has an error.
pub fn run(args: &ValidateArgs) -> i32 {
    let (out, err) = (Style::stdout(), Style::stderr());
    let runtimes = Runtimes::default();
    let mut failed = 0;
    for path in &args.files {
        match file::load_file(path, &runtimes) {
            Ok(wf) => {
                let graph = wf.workflow.graph();
                let groups = graph.nodes().filter(|(_, n)| n.is_group()).count();
                outln!(
                    "{} {}: workflow '{}', {}, {}{}",
                    out.ok("ok"),
                    path.display(),
                    wf.workflow.name(),
                    plural(graph.len() - groups, "task"),
                    plural(groups, "group"),
                    match wf.warnings.len() {
                        0 => String::new(),
                        n => format!(", {}", plural(n, "warning")),
                    }
                );
                for w in &wf.warnings {
                    eprintln!("{}", err.diagnostic(w));
                }
            }
            Err(e) => {
                failed += 1;
                for d in &e.diagnostics {
                    eprintln!("{}", err.diagnostic(d));
                }
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "{}",
            err.error(&format!(
                "{failed} of {} invalid",
                plural(args.files.len(), "file")
            ))
        );
        exit::BAD_INPUT
    } else {
        exit::SUCCESS
    }
}
