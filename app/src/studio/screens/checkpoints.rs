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

    /// A fresh listing of the state dir's and these checkpoint folders (unless one is on
    /// its way).
    pub fn want_refresh(&mut self, mut dirs: Vec<PathBuf>) -> Option<Effect> {
        if self.refreshing {
            return None;
        }
        self.refreshing = true;
        dirs.sort();
        dirs.dedup();
        Some(Effect::RefreshCheckpoints(dirs))
    }

    /// Read the selected checkpoint's content when it is not shown yet (nor on its way).
    pub fn want_detail(&mut self) -> Option<Effect> {
        let path = self.selected_info()?.path.clone();
        let shown = self.detail.as_ref().is_some_and(|(p, _)| *p == path);
        if shown || self.detail_wanted.as_ref() == Some(&path) {
            return None;
        }
        self.detail_wanted = Some(path.clone());
        Some(Effect::LoadCheckpoint(path))
    }

    /// Move the selection by `delta` rows; returns the read of its content when needed.
    pub fn move_by(&mut self, delta: i64) -> Option<Effect> {
        let n = self.list.len();
        if n == 0 {
            return None;
        }
        self.selected = (self.selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
        self.want_detail()
    }

    /// A click on this row of a list showing `height` rows (the offset the drawing uses).
    pub fn click(&mut self, row: usize, height: usize) -> Option<Effect> {
        let offset = self.selected.saturating_sub(height.saturating_sub(1));
        if offset + row >= self.list.len() {
            return None;
        }
        self.selected = offset + row;
        self.want_detail()
    }

    /// A fresh listing; returns whether it changed anything. On the newest checkpoint, the
    /// cursor follows the newest as new ones arrive; on an older one, it stays on that
    /// checkpoint wherever it moves in the list.
    pub fn on_listing(&mut self, list: Vec<CheckpointInfo>) -> bool {
        self.refreshing = false;
        let first = !self.listed;
        self.listed = true;
        if !first && list == self.list {
            return false;
        }
        let on_newest = self.selected == 0;
        let path = self.selected_info().map(|i| i.path.clone());
        self.list = list;
        self.selected = path
            .filter(|_| !on_newest)
            .and_then(|p| self.list.iter().position(|i| i.path == p))
            .unwrap_or(0)
            .min(self.list.len().saturating_sub(1));
        true
    }

    /// A checkpoint's content was read.
    pub fn on_detail(&mut self, path: PathBuf, detail: Result<CheckpointDetail, String>) {
        if self.detail_wanted.as_ref() == Some(&path) {
            self.detail_wanted = None;
        }
        self.detail = Some((path, detail));
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
        let dirs = self
            .workflows
            .entries
            .iter()
            .filter_map(|e| e.setup.as_ref().map(|s| s.checkpoints.dir.clone()))
            .collect();
        let fx = self.checkpoints.want_refresh(dirs);
        self.effects.extend(fx);
    }

    /// Read the selected checkpoint's content when it is not shown yet.
    pub(crate) fn want_checkpoint_detail(&mut self) {
        let fx = self.checkpoints.want_detail();
        self.effects.extend(fx);
    }

    /// Move through the browser's list.
    pub(crate) fn checkpoints_move(&mut self, delta: i64) {
        let fx = self.checkpoints.move_by(delta);
        self.effects.extend(fx);
    }

    /// A fresh listing; returns whether anything changed.
    pub(crate) fn on_checkpoints(&mut self, list: Vec<CheckpointInfo>) -> bool {
        let changed = self.checkpoints.on_listing(list);
        if changed && self.showing == Screen::Checkpoints {
            self.want_checkpoint_detail();
        }
        changed
    }

    /// A checkpoint's content was read.
    pub(crate) fn on_checkpoint_detail(
        &mut self,
        path: PathBuf,
        detail: Result<CheckpointDetail, String>,
    ) {
        self.checkpoints.on_detail(path, detail);
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

#[cfg(test)]
mod tests {
    use super::*;
    use graflow_engine::checkpoint::Reason;

    fn info(seq: u32) -> CheckpointInfo {
        CheckpointInfo {
            schema_version: 1,
            path: format!("/state/checkpoints/w-r1-{seq:03}.ckpt").into(),
            run_id: "r1".into(),
            seq,
            created_at: "1970-01-01T00:00:10Z".into(),
            reason: Reason::Host,
            task: None,
            workflow: "w".into(),
            workflow_path: None,
            workflow_hash: None,
            steps: 0,
            size_bytes: 0,
            content_bytes: None,
            metadata: Default::default(),
        }
    }

    fn reads(fx: Option<Effect>) -> Option<PathBuf> {
        match fx {
            Some(Effect::LoadCheckpoint(p)) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn the_cursor_follows_the_newest_or_stays_on_an_older_one() {
        let mut b = CheckpointBrowser::default();
        assert!(b.on_listing(vec![info(2), info(1)]));
        assert!(!b.on_listing(vec![info(2), info(1)]), "the same listing");
        assert!(b.on_listing(vec![info(3), info(2), info(1)]));
        assert_eq!(b.selected_info().map(|i| i.seq), Some(3), "on the newest");
        b.move_by(1);
        assert!(b.on_listing(vec![info(4), info(3), info(2), info(1)]));
        assert_eq!(
            b.selected_info().map(|i| i.seq),
            Some(2),
            "stays on its checkpoint"
        );
        assert_eq!(b.selected, 2, "now the third row");
    }

    #[test]
    fn content_is_read_once_per_checkpoint() {
        let mut b = CheckpointBrowser::default();
        assert!(b.want_detail().is_none(), "nothing listed");
        b.on_listing(vec![info(2), info(1)]);
        let first = reads(b.want_detail());
        assert_eq!(first, Some(info(2).path));
        assert!(b.want_detail().is_none(), "on its way");
        b.on_detail(info(2).path, Err("unreadable".into()));
        assert!(b.want_detail().is_none(), "shown");
        assert!(matches!(b.selected_detail(), Some(Err(e)) if e == "unreadable"));
        assert_eq!(reads(b.move_by(5)), Some(info(1).path));
        assert_eq!(reads(b.click(0, 1)), None, "its content is on its way");
        assert!(b.click(3, 1).is_none(), "below the list");
    }

    #[test]
    fn listings_are_asked_once_with_each_folder_once() {
        let mut b = CheckpointBrowser::default();
        let dirs = vec![
            PathBuf::from("/b"),
            PathBuf::from("/a"),
            PathBuf::from("/b"),
        ];
        assert!(matches!(
            b.want_refresh(dirs.clone()),
            Some(Effect::RefreshCheckpoints(d)) if d == [PathBuf::from("/a"), PathBuf::from("/b")]
        ));
        assert!(b.want_refresh(dirs).is_none());
        b.on_listing(Vec::new());
        assert!(b.want_refresh(Vec::new()).is_some());
    }
}
