//! The checkpoint browser: the checkpoints of the state dir (and of the open workflows'
//! checkpoint folders), newest first; for the selected one its saved channel, pending tasks
//! and results; and resuming it into a live run of the embedded engine, choosing the workflow
//! by the same rule as `graflow resume` (a changed file only after a yes).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use graflow_engine::checkpoint::{CheckpointInfo, RunSnapshot};
use graflow_engine::file::FileTaskFactory;
use graflow_engine::{RunStatus, Value, Workflow};

use super::Screen;
use crate::runsetup::{ResumeNote, ResumeRefusal, WorkflowFile};
use crate::studio::app::{App, Effect, Level, Overlay, Question};
use crate::studio::model::{RunPhase, RunSetup, RunView, WorkflowEntry};

/// The browser's state.
#[derive(Debug, Default)]
pub struct CheckpointBrowser {
    /// The checkpoints, newest first.
    pub list: Vec<CheckpointInfo>,
    /// The selected row.
    pub selected: usize,
    /// A listing is on its way.
    pub refreshing: bool,
    /// Listed at least once.
    pub listed: bool,
    /// The selected checkpoint's content (or why it could not be read), once read.
    pub detail: Option<(PathBuf, Result<CheckpointDetail, String>)>,
    /// The checkpoint whose content is being read.
    pub detail_wanted: Option<PathBuf>,
    /// A checkpoint being prepared for resuming.
    pub resuming: Option<PathBuf>,
}

impl CheckpointBrowser {
    /// The selected checkpoint.
    pub fn selected_info(&self) -> Option<&CheckpointInfo> {
        self.list.get(self.selected)
    }

    /// The content of the selected checkpoint, when read.
    pub fn selected_detail(&self) -> Option<&Result<CheckpointDetail, String>> {
        let info = self.selected_info()?;
        self.detail
            .as_ref()
            .filter(|(p, _)| *p == info.path)
            .map(|(_, d)| d)
    }
}

/// What a checkpoint holds, for the browser.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointDetail {
    /// The saved channel.
    pub channel: BTreeMap<String, Value>,
    /// Tasks that run next on resume (a task that was running first).
    pub pending: Vec<String>,
    /// Each finished task's last result.
    pub results: BTreeMap<String, Value>,
    /// Executions per task.
    pub cycles: BTreeMap<String, u32>,
    /// Where the workflow would come from on resume.
    pub file: WorkflowFile,
    /// Human-feedback requests that were open.
    pub open_requests: usize,
}

/// A checkpoint read and its workflow chosen and loaded: ready to start as a live run.
pub struct PreparedResume {
    /// The `.ckpt`.
    pub checkpoint: PathBuf,
    /// The run (a resumed run keeps its id).
    pub run_id: String,
    /// The workflow it resumes with.
    pub workflow: Arc<Workflow>,
    /// The workflow's file (absolute; it may be gone when the saved copy is used).
    pub file: PathBuf,
    /// Whether that file exists.
    pub file_exists: bool,
    /// Checkpoints (next to this one) and notifiers of the resumed run.
    pub setup: RunSetup,
    /// Where the workflow came from, when worth telling.
    pub note: Option<ResumeNote>,
    /// Tasks and groups done before the checkpoint: (id, result, executions).
    pub done: Vec<(String, Value, u32)>,
    /// The state and the task factory, taken once when the run starts.
    pub parts: Mutex<Option<(RunSnapshot, FileTaskFactory)>>,
}

impl std::fmt::Debug for PreparedResume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedResume")
            .field("checkpoint", &self.checkpoint)
            .field("run_id", &self.run_id)
            .field("file", &self.file)
            .finish()
    }
}

impl App {
    /// Open the checkpoint browser, or go back to the workflows.
    pub(crate) fn toggle_checkpoints(&mut self) {
        if self.showing == Screen::Checkpoints {
            self.showing = Screen::Main;
        } else {
            self.showing = Screen::Checkpoints;
            self.want_checkpoints();
            self.want_checkpoint_detail();
        }
    }

    /// Ask for a fresh listing (unless one is on its way): the state dir's checkpoints and
    /// those of the open workflows' own checkpoint folders.
    pub(crate) fn want_checkpoints(&mut self) {
        if self.checkpoints.refreshing {
            return;
        }
        self.checkpoints.refreshing = true;
        let mut dirs: Vec<PathBuf> = self
            .workflows
            .entries
            .iter()
            .filter_map(|e| e.setup.as_ref().map(|s| s.checkpoints.dir.clone()))
            .collect();
        dirs.sort();
        dirs.dedup();
        self.effects.push(Effect::RefreshCheckpoints(dirs));
    }

    /// Read the selected checkpoint's content when it is not shown yet.
    pub(crate) fn want_checkpoint_detail(&mut self) {
        let Some(path) = self.checkpoints.selected_info().map(|i| i.path.clone()) else {
            return;
        };
        let shown = self
            .checkpoints
            .detail
            .as_ref()
            .is_some_and(|(p, _)| *p == path);
        if shown || self.checkpoints.detail_wanted.as_ref() == Some(&path) {
            return;
        }
        self.checkpoints.detail_wanted = Some(path.clone());
        self.effects.push(Effect::LoadCheckpoint(path));
    }

    pub(crate) fn checkpoints_move(&mut self, delta: i64) {
        let n = self.checkpoints.list.len();
        if n > 0 {
            self.checkpoints.selected =
                (self.checkpoints.selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
            self.want_checkpoint_detail();
        }
    }

    /// A fresh listing.
    pub(crate) fn on_checkpoints(&mut self, list: Vec<CheckpointInfo>) -> bool {
        self.checkpoints.refreshing = false;
        let first = !self.checkpoints.listed;
        self.checkpoints.listed = true;
        if !first && list == self.checkpoints.list {
            return false;
        }
        // On the newest checkpoint, the cursor follows the newest as new ones arrive; on an
        // older one, it stays on that checkpoint wherever it moves in the list.
        let on_newest = self.checkpoints.selected == 0;
        let path = self.checkpoints.selected_info().map(|i| i.path.clone());
        self.checkpoints.list = list;
        self.checkpoints.selected = path
            .filter(|_| !on_newest)
            .and_then(|p| self.checkpoints.list.iter().position(|i| i.path == p))
            .unwrap_or(0)
            .min(self.checkpoints.list.len().saturating_sub(1));
        if self.showing == Screen::Checkpoints {
            self.want_checkpoint_detail();
        }
        true
    }

    /// A checkpoint's content was read.
    pub(crate) fn on_checkpoint_detail(
        &mut self,
        path: PathBuf,
        detail: Result<CheckpointDetail, String>,
    ) {
        if self.checkpoints.detail_wanted.as_ref() == Some(&path) {
            self.checkpoints.detail_wanted = None;
        }
        self.checkpoints.detail = Some((path, detail));
        // The selection may have moved on meanwhile.
        if self.showing == Screen::Checkpoints {
            self.want_checkpoint_detail();
        }
    }

    /// `enter` in the browser: resume the selected checkpoint.
    pub(crate) fn resume_selected(&mut self) {
        let Some(info) = self.checkpoints.selected_info() else {
            self.message = Some(("no checkpoint to resume".into(), Level::Info));
            return;
        };
        let path = info.path.clone();
        if self.runs.contains_key(&info.run_id) {
            self.message = Some((
                format!("run {} is going on in the studio", info.run_id),
                Level::Info,
            ));
            return;
        }
        self.prepare_resume(path, false);
    }

    /// Read the checkpoint and choose its workflow (`force`: a changed file is fine).
    pub(crate) fn prepare_resume(&mut self, checkpoint: PathBuf, force: bool) {
        if self.checkpoints.resuming.is_some() {
            self.message = Some(("a resume is being prepared".into(), Level::Info));
            return;
        }
        self.checkpoints.resuming = Some(checkpoint.clone());
        self.message = Some((format!("resuming {}…", file_name(&checkpoint)), Level::Info));
        self.effects
            .push(Effect::PrepareResume { checkpoint, force });
    }

    /// The checkpoint was read and its workflow chosen, or it cannot resume.
    pub(crate) fn on_resume_prepared(
        &mut self,
        checkpoint: PathBuf,
        result: Result<Arc<PreparedResume>, ResumeRefusal>,
    ) {
        self.checkpoints.resuming = None;
        let p = match result {
            Ok(p) => p,
            Err(ResumeRefusal::Changed(file)) => {
                self.message = None;
                self.overlay = Some(Overlay::Confirm(Question::ResumeChanged {
                    checkpoint,
                    file,
                }));
                return;
            }
            Err(e) => {
                let text = format!("cannot resume {}: {e}", file_name(&checkpoint));
                self.message = Some((text, Level::Error));
                return;
            }
        };
        let index = match self
            .workflows
            .entries
            .iter()
            .position(|e| e.path.as_ref() == Some(&p.file))
        {
            Some(i) => i,
            None => {
                let mut entry = if p.file_exists {
                    self.effects.push(Effect::Watch(vec![p.file.clone()]));
                    let mut e = WorkflowEntry::from_path(p.file.clone());
                    e.state = crate::studio::model::LoadState::Ready;
                    e
                } else {
                    WorkflowEntry::from_workflow(p.workflow.clone())
                };
                entry.setup = Some(p.setup.clone());
                self.workflows.entries.push(entry);
                self.workflows.entries.len() - 1
            }
        };
        let now = self.now;
        let e = &mut self.workflows.entries[index];
        if e.is_running() {
            self.message = Some((
                format!("{} is running; resume it once that run ends", e.name),
                Level::Info,
            ));
            return;
        }
        e.run = None;
        e.set_workflow(p.workflow.clone());
        let mut run = RunView::new(p.run_id.clone(), now);
        let model = &e.graph.model;
        run.seed(&p.done, |id| {
            model.find(id).is_some_and(|n| model.nodes[n].is_group)
        });
        e.run = Some(run);
        let mut text = format!("resumed run {} from {}", p.run_id, file_name(&p.checkpoint));
        match &p.note {
            Some(ResumeNote::UsingChanged(f)) => {
                text.push_str(&format!(" with {} as it is now", file_name(f)))
            }
            Some(ResumeNote::UsingSavedCopy(f)) => {
                text.push_str(&format!(" ({} is gone: the saved copy runs)", file_name(f)))
            }
            None => {}
        }
        self.runs.insert(p.run_id.clone(), index);
        self.showing = Screen::Main;
        self.select_workflow(index);
        self.focus = crate::studio::app::Pane::Graph;
        self.inspector.handle(
            crate::studio::panes::inspector::InspectorAction::RunStarted,
            Default::default(),
        );
        self.message = Some((text, Level::Info));
        self.effects.push(Effect::StartResume(p));
        self.want_layout();
    }

    /// A run could not start (the engine refused the resumed state).
    pub(crate) fn on_run_not_started(&mut self, run_id: String, error: String) {
        if let Some(index) = self.runs.remove(&run_id)
            && let Some(r) = self
                .workflows
                .entries
                .get_mut(index)
                .and_then(|e| e.run.as_mut())
                .filter(|r| r.run_id == run_id)
        {
            r.phase = RunPhase::Finished(RunStatus::Failed);
            r.finished = Some(self.now);
            r.error = Some(error.clone());
        }
        self.message = Some((format!("run {run_id} did not start: {error}"), Level::Error));
    }

    /// `C`: checkpoint the selected workflow's running run.
    pub(crate) fn checkpoint_now(&mut self) {
        match self
            .entry()
            .and_then(|e| e.run.as_ref())
            .filter(|r| r.is_active())
        {
            Some(r) => {
                let id = r.run_id.clone();
                self.message = Some((format!("checkpointing run {id}…"), Level::Info));
                self.effects.push(Effect::CheckpointRun(id));
            }
            None => self.message = Some(("no run is going on".into(), Level::Info)),
        }
    }

    /// A host checkpoint was written, or not.
    pub(crate) fn on_checkpoint_taken(&mut self, run_id: String, result: Result<PathBuf, String>) {
        self.message = Some(match result {
            Ok(path) => (
                format!(
                    "checkpoint of run {run_id} saved: {} ({} browses)",
                    file_name(&path),
                    self.key_name(crate::studio::action::ActionId::ToggleCheckpoints)
                ),
                Level::Info,
            ),
            Err(e) => (format!("no checkpoint of run {run_id}: {e}"), Level::Error),
        });
        self.want_checkpoints();
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| p.display().to_string())
}
