//! The studio's read model: the workflows it knows ([`WorkflowEntry`]), their runs
//! ([`run::RunView`]) and task logs ([`logbuf::LogBuffer`]). No terminal code here.

pub mod logbuf;
pub mod pools;
pub mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graflow_engine::Workflow;
use graflow_engine::checkpoint::CheckpointConfig;
use graflow_engine::file::Diagnostic;
use graflow_engine::hitl::Notifier;

pub use run::{RunPhase, RunView, StatusCounts, TaskStatus};

use super::graph::GraphState;
use super::graph::model::GraphModel;

/// How runs of a workflow file are set up, as `graflow run` sets them up: where its
/// checkpoints go and who hears of its human-feedback requests.
#[derive(Clone)]
pub struct RunSetup {
    /// Checkpoints (the file's `checkpoint_dir`, else `<state dir>/checkpoints`).
    pub checkpoints: CheckpointConfig,
    /// The file's notifiers (`notify:`).
    pub notifiers: Vec<Arc<dyn Notifier>>,
}

impl std::fmt::Debug for RunSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSetup")
            .field("checkpoints", &self.checkpoints.dir)
            .field("notifiers", &self.notifiers.len())
            .finish()
    }
}

/// Whether a workflow's file loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadState {
    /// Being loaded.
    Loading,
    /// Loaded and valid.
    Ready,
    /// The last load failed (the last good workflow, if any, is still shown).
    Invalid,
    /// The file is gone (the last good workflow, if any, is still shown).
    Deleted,
}

/// A workflow the studio shows: from a file, or built in code (tests, embedding).
#[derive(Debug)]
pub struct WorkflowEntry {
    /// Its file, if it came from one.
    pub path: Option<PathBuf>,
    /// Display name: the workflow's name, or the file name until it loads.
    pub name: String,
    /// Load state.
    pub state: LoadState,
    /// The last good workflow.
    pub workflow: Option<Arc<Workflow>>,
    /// Problems of the latest load (errors when invalid, warnings otherwise).
    pub diagnostics: Vec<Diagnostic>,
    /// Script files the workflow names (watched too).
    pub scripts: Vec<PathBuf>,
    /// How its runs are set up (files only).
    pub setup: Option<RunSetup>,
    /// The load asked for last; older results are dropped.
    pub generation: u64,
    /// The graph and its view state.
    pub graph: GraphState,
    /// The current or last run started in this studio.
    pub run: Option<RunView>,
}

impl WorkflowEntry {
    /// An entry for a file, not loaded yet.
    pub fn from_path(path: PathBuf) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string());
        WorkflowEntry {
            path: Some(path),
            name,
            state: LoadState::Loading,
            workflow: None,
            diagnostics: Vec::new(),
            scripts: Vec::new(),
            setup: None,
            generation: 0,
            graph: GraphState::default(),
            run: None,
        }
    }

    /// An entry for a workflow built in code.
    pub fn from_workflow(workflow: Arc<Workflow>) -> Self {
        let mut e = WorkflowEntry {
            path: None,
            name: workflow.name().to_string(),
            state: LoadState::Ready,
            workflow: None,
            diagnostics: Vec::new(),
            scripts: Vec::new(),
            setup: None,
            generation: 0,
            graph: GraphState::default(),
            run: None,
        };
        e.set_workflow(workflow);
        e
    }

    /// Take a newly loaded workflow: a new graph model that keeps the view state, and the
    /// current run's run-time additions.
    pub fn set_workflow(&mut self, workflow: Arc<Workflow>) {
        let mut model = GraphModel::from_workflow(&workflow);
        if let Some(run) = &self.run {
            for (id, by) in &run.added {
                model.add_dynamic(id, by);
            }
        }
        let previous = self.workflow.is_some().then_some(&self.graph);
        self.graph = GraphState::new(model, previous);
        self.name = workflow.name().to_string();
        self.workflow = Some(workflow);
    }

    /// The file name (or the workflow name) for lists.
    pub fn label(&self) -> String {
        match &self.path {
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| p.display().to_string()),
            None => self.name.clone(),
        }
    }

    /// Whether this entry's file is `path` or names `path` as a script.
    pub fn depends_on(&self, path: &Path) -> bool {
        self.path.as_deref() == Some(path) || self.scripts.iter().any(|s| s == path)
    }

    /// Whether a run is going on.
    pub fn is_running(&self) -> bool {
        self.run.as_ref().is_some_and(RunView::is_active)
    }

    /// The first error, as `line:col: message`.
    pub fn first_error(&self) -> Option<String> {
        if !matches!(self.state, LoadState::Invalid | LoadState::Deleted) {
            return None;
        }
        self.diagnostics.first().map(|d| {
            if d.line > 0 {
                format!("{}:{}: {}", d.line, d.column.max(1), d.message)
            } else {
                d.message.clone()
            }
        })
    }
}
