//! Loading a workflow file for a command: diagnostics go to standard error.

use std::path::Path;

use graflow_engine::file::{self, LoadedWorkflow};
use graflow_engine::handler::Runtimes;

use super::style::Style;

/// Load `path`; print warnings; on errors print them and return `None`.
pub fn load_or_report(path: &Path, runtimes: &Runtimes, style: &Style) -> Option<LoadedWorkflow> {
    match file::load_file(path, runtimes) {
        Ok(wf) => {
            for w in &wf.warnings {
                eprintln!("{}", style.warning(&w.to_string()));
            }
            Some(wf)
        }
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{}", style.diagnostic(d));
            }
            None
        }
    }
}
