//! `Workflow(file: …)` tasks: the sub-file is loaded and validated with its parent, its errors
//! reported with its own path and lines, and a file that includes itself (directly or through
//! others) is refused with the chain of files.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::load::Reporter;
use super::spec::WorkflowTaskSpec;
use super::{Diagnostic, Severity};
use crate::handler::{HandlerEnv, TaskHandler};
use crate::run::nested::SubWorkflowHandler;

/// How a `Workflow` task is written, for hints.
const HINT: &str = "Workflow(file: \"sub.ron\", set: {\"key\": \"{{input.task}}\"}, channel: Own)";

thread_local! {
    /// The files being loaded on this thread, outermost first: (identity, as named).
    static LOADING: RefCell<Vec<(PathBuf, PathBuf)>> = const { RefCell::new(Vec::new()) };
}

/// A file's identity: its canonical path, else its absolute path.
fn identity(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Marks a file as being loaded until dropped.
pub(super) struct Loading(());

impl Drop for Loading {
    fn drop(&mut self) {
        LOADING.with(|l| l.borrow_mut().pop());
    }
}

/// Mark `path` as being loaded (its sub-files see it as an includer).
pub(super) fn enter(path: &Path) -> Loading {
    LOADING.with(|l| l.borrow_mut().push((identity(path), path.to_path_buf())));
    Loading(())
}

/// The chain `a.ron → b.ron → a.ron` when loading `path` now would include a file in itself.
fn cycle(path: &Path) -> Option<String> {
    let id = identity(path);
    LOADING.with(|l| {
        let l = l.borrow();
        let from = l.iter().position(|(i, _)| *i == id)?;
        let mut chain: Vec<String> = l[from..]
            .iter()
            .map(|(_, shown)| shown.display().to_string())
            .collect();
        chain.push(path.display().to_string());
        Some(chain.join(" → "))
    })
}

/// The handler of a `Workflow(…)` task: the sub-file loaded and checked; `None` when it
/// cannot be (reported: at this task, and the sub-file's own errors at their places).
pub(super) fn workflow_task(
    name: &str,
    spec: &WorkflowTaskSpec,
    env: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<Arc<dyn TaskHandler>> {
    let at = {
        let run = rep.loc.entry_field("tasks", name, "run");
        run.and_then(|r| rep.loc.field(r, "file")).or(run)
    };
    if spec.file.trim().is_empty() {
        rep.error(
            at,
            format!("task '{name}': Workflow needs a file"),
            Some(HINT),
        );
        return None;
    }
    let path = env.resolve(&spec.file);
    if let Some(chain) = cycle(&path) {
        rep.error(
            at,
            format!("task '{name}': the workflow includes itself: {chain}"),
            Some("a sub-workflow cannot run the file that runs it, directly or through others"),
        );
        return None;
    }
    // Only a regular file is read (not a device or a pipe that never ends).
    if path.exists() && !path.is_file() {
        rep.error(
            at,
            format!(
                "task '{name}': '{}' is not a workflow file (not a regular file)",
                spec.file
            ),
            Some(HINT),
        );
        return None;
    }
    let loaded = match super::load_file(&path, &env.runtimes) {
        Ok(loaded) => loaded,
        Err(e) => {
            let errors: Vec<Diagnostic> = e
                .diagnostics
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            rep.error(
                at,
                format!(
                    "task '{name}': the sub-workflow '{}' has {} error{}",
                    spec.file,
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
                Some("its errors follow, each at its place in that file"),
            );
            rep.diagnostics.extend(errors);
            return None;
        }
    };
    match SubWorkflowHandler::new(
        loaded.workflow.clone(),
        &spec.file,
        spec.set.iter().map(|(k, v)| (k.clone(), v.clone())),
        spec.channel,
        &env.runtimes,
    ) {
        Ok(h) => Some(Arc::new(h)),
        Err(e) => {
            let at = rep.loc.entry_field("tasks", name, "run");
            let at = at.and_then(|r| rep.loc.field(r, "set")).or(at);
            rep.error(at, format!("task '{name}': Workflow {e}"), Some(HINT));
            None
        }
    }
}
