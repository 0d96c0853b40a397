//! Workflow files in RON: parsing with positions, validation, and assembly into a
//! [`Workflow`] with the built-in task kinds.

#[cfg(feature = "script")]
mod excerpt;
mod explain;
mod kinds;
mod load;
mod locate;
mod nested;
pub mod spec;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ron::extensions::Extensions;
use sha2::{Digest, Sha256};

use crate::checkpoint::{CheckpointConfig, WorkflowSource};
use crate::error::BuildError;
use crate::handler::{HandlerEnv, Runtimes};
use crate::run::TaskFactory;
use crate::workflow::{TaskDef, Workflow};

use load::Reporter;
use locate::Locator;

pub use explain::{POLICIES, TASK_KINDS};
pub use spec::WorkflowSpec;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file cannot be run.
    Error,
    /// The file runs, but probably not as meant.
    Warning,
}

/// A problem found in a workflow file, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem has no single place).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column.max(1))?;
        }
        write!(f, ": {level}: {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// A file that could not be loaded: every error found.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The errors (and any warnings found before them).
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// A loaded, validated workflow file.
pub struct LoadedWorkflow {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub source: String,
    /// SHA-256 of the text, hex.
    pub hash: String,
    /// The parsed file.
    pub spec: WorkflowSpec,
    /// The runnable workflow.
    pub workflow: Arc<Workflow>,
    /// Warnings (unreachable tasks, loops with no exit, …).
    pub warnings: Vec<Diagnostic>,
}

impl LoadedWorkflow {
    /// The workflow as checkpoints record it: name, file, hash and text.
    pub fn source(&self) -> WorkflowSource {
        WorkflowSource {
            name: self.workflow.name().to_string(),
            path: Some(
                self.path
                    .canonicalize()
                    .unwrap_or_else(|_| self.path.clone())
                    .display()
                    .to_string(),
            ),
            hash: Some(self.hash.clone()),
            source: Some(self.source.clone()),
        }
    }

    /// A checkpoint configuration writing into `dir`, keeping `keep_last` (or the file's
    /// `keep_last`) and the file's `keep_for` (checked when the file was loaded).
    pub fn checkpoint_config(&self, dir: PathBuf, keep_last: Option<usize>) -> CheckpointConfig {
        CheckpointConfig {
            dir,
            workflow: self.source(),
            keep_last: keep_last.or(self.spec.keep_last),
            keep_for: self.keep_for(),
            compression: Default::default(),
            signing_key: None,
            mirror: None,
        }
    }

    /// The file's `keep_for` as a duration (`None` when absent; a bad one was refused when the
    /// file was loaded).
    pub fn keep_for(&self) -> Option<std::time::Duration> {
        let text = self.spec.keep_for.as_deref()?;
        crate::limits::parse_duration(text, "keep_for").ok()
    }

    /// The workflow's notifiers for human-feedback requests (`notify:`; the console when the
    /// file names none).
    pub fn notifiers(&self) -> Vec<Arc<dyn crate::hitl::Notifier>> {
        match &self.spec.notify {
            None => vec![Arc::new(crate::hitl::ConsoleNotifier)],
            Some(list) => {
                load::notifiers(list, self.path.parent().unwrap_or_else(|| Path::new("")))
                    .unwrap_or_default()
            }
        }
    }

    /// Rebuilds tasks added at run time (from their specs) when this workflow resumes.
    pub fn task_factory(&self, runtimes: &Runtimes) -> FileTaskFactory {
        FileTaskFactory {
            env: HandlerEnv::new(
                self.path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                runtimes.clone(),
            ),
            file: self.path.clone(),
            scripts_allowed: self
                .spec
                .tasks
                .values()
                .any(|t| matches!(t.run, spec::RunSpec::Script(_))),
        }
    }
}

/// Builds tasks added at run time again from the specs a checkpoint holds. A checkpoint is
/// data, not code: only what a run of this workflow can add at run time is rebuilt — a
/// sandboxed script, `{"run": {"Script": "<code>"}}`, and only when the workflow has Script
/// tasks (the only kind that adds tasks with code of their own). Any other spec (a `Shell`,
/// a `Docker`, a script file) is refused.
pub struct FileTaskFactory {
    env: HandlerEnv,
    file: PathBuf,
    scripts_allowed: bool,
}

/// The inline script of a spec of the one shape tasks added at run time have.
fn inline_script(spec: &serde_json::Value) -> Option<&str> {
    let obj = spec.as_object().filter(|o| o.len() == 1)?;
    let run = obj.get("run")?.as_object().filter(|o| o.len() == 1)?;
    run.get("Script")?.as_str()
}

impl TaskFactory for FileTaskFactory {
    fn build(&self, id: &str, spec: &serde_json::Value) -> Result<TaskDef, BuildError> {
        let invalid = |message: String| BuildError::InvalidTask {
            task: id.to_string(),
            message,
        };
        if inline_script(spec).is_none() {
            return Err(invalid(
                "only a script added by a Script task can be rebuilt from a checkpoint; this \
                 spec is something else (a checkpoint does not carry code to run)"
                    .into(),
            ));
        }
        if !self.scripts_allowed {
            return Err(invalid(
                "this workflow has no Script task, so no task of its runs adds scripts at run \
                 time"
                    .into(),
            ));
        }
        let task: spec::TaskSpec = serde_json::from_value(spec.clone())
            .map_err(|e| invalid(format!("bad task spec: {e}")))?;
        let mut rep = Reporter {
            file: self.file.clone(),
            loc: Locator::new(""),
            diagnostics: Vec::new(),
        };
        load::task_def(id, &task, &self.env, None, &mut rep)
            .map(|def| def.with_spec(spec.clone()))
            .ok_or_else(|| {
                invalid(
                    rep.diagnostics
                        .iter()
                        .map(|d| d.message.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
    }
}

/// Load and validate a workflow file.
pub fn load_file(path: &Path, runtimes: &Runtimes) -> Result<LoadedWorkflow, LoadError> {
    match std::fs::read_to_string(path) {
        Ok(source) => load_str(&source, path, runtimes),
        Err(e) => Err(LoadError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the file: {e}"),
                hint: None,
            }],
        }),
    }
}

/// Load and validate workflow text; `path` names it in diagnostics and anchors relative paths.
pub fn load_str(
    source: &str,
    path: &Path,
    runtimes: &Runtimes,
) -> Result<LoadedWorkflow, LoadError> {
    let mut rep = Reporter {
        file: path.to_path_buf(),
        loc: Locator::new(source),
        diagnostics: Vec::new(),
    };
    let _loading = nested::enter(path);
    let spec = match parse(source) {
        Ok(spec) => spec,
        Err(e) => {
            let x = explain::explain(source, &e);
            rep.diagnostics.push(Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: x.line,
                column: x.column,
                message: x.message,
                hint: Some(x.hint),
            });
            return Err(LoadError {
                diagnostics: rep.diagnostics,
            });
        }
    };
    let Some(workflow) = load::assemble(&spec, &mut rep, path, runtimes) else {
        return Err(LoadError {
            diagnostics: rep.diagnostics,
        });
    };
    validate::warn(&spec, &workflow, &mut rep);
    Ok(LoadedWorkflow {
        path: path.to_path_buf(),
        source: source.to_string(),
        hash: sha256_hex(source),
        spec,
        workflow: Arc::new(workflow),
        warnings: rep.diagnostics,
    })
}

/// Parse the text into a [`WorkflowSpec`] without building handlers.
pub fn parse(source: &str) -> Result<WorkflowSpec, ron::error::SpannedError> {
    ron::Options::default()
        .with_default_extension(Extensions::UNWRAP_VARIANT_NEWTYPES | Extensions::IMPLICIT_SOME)
        .with_recursion_limit(crate::limits::MAX_VALUE_DEPTH)
        .from_str(source)
}

/// SHA-256 of a text, as lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
