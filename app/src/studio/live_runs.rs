//! The studio's own runs, as the shell sees them: starting one in the selected workflow,
//! cancelling it or quitting while runs go on (after a yes), folding the engine's events into
//! the run views and telling how a run ended, and showing a recorded run opened from the
//! history. The runs map (run id → workflow) is the shell's; the runtime does the running.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use graflow_engine::{EventKind, RunEvent, RunStatus, Value};

use super::action::ActionId;
use super::app::{App, Effect, Level, Overlay, Pane, Question};
use super::model::run::{first_line, status_word};
use super::model::{LoadState, RunPhase, RunView};
use super::panes::history::replay;
use super::panes::inspector::InspectorAction;
use super::screens::Screen;
use crate::text::duration_ms;

impl App {
    /// `x`: cancel the selected workflow's run, after a yes.
    pub(crate) fn ask_to_cancel(&mut self) {
        match self
            .entry()
            .and_then(|e| e.run.as_ref())
            .filter(|r| r.is_active())
        {
            Some(r) => {
                self.overlay = Some(Overlay::Confirm(Question::CancelRun {
                    run_id: r.run_id.clone(),
                }))
            }
            None => self.message = Some(("no run is going on".into(), Level::Info)),
        }
    }

    /// A snapshot of a live run's channel.
    pub(crate) fn on_channel(&mut self, run_id: String, values: BTreeMap<String, Value>) {
        self.inspector.snapshot_pending = false;
        if let Some(&i) = self.runs.get(&run_id)
            && let Some(r) = self
                .workflows
                .entries
                .get_mut(i)
                .and_then(|e| e.run.as_mut())
            && r.run_id == run_id
            && r.is_active()
        {
            r.channel = values;
        }
    }

    /// Quit, after a yes when runs are going on: the studio's runs live in this process, so
    /// leaving cancels them (`graflow run` in another terminal is the way to keep one going).
    /// Runs followed from a fleet go on without the studio: they do not ask.
    pub(crate) fn ask_to_quit(&mut self) {
        let workflows: Vec<String> = self
            .workflows
            .entries
            .iter()
            .filter(|e| e.is_running())
            .filter(|e| {
                e.run
                    .as_ref()
                    .is_none_or(|r| !self.remote_runs.contains(&r.run_id))
            })
            .map(|e| e.name.clone())
            .collect();
        if workflows.is_empty() {
            self.quit = true;
        } else {
            self.overlay = Some(Overlay::Confirm(Question::QuitWhileRunning { workflows }));
        }
    }

    /// `r`: run the selected workflow.
    pub(crate) fn start_run(&mut self) {
        let now = self.now;
        let Some(e) = self.workflows.entries.get_mut(self.workflows.selected) else {
            self.message = Some(("no workflow to run".into(), Level::Info));
            return;
        };
        if e.is_running() {
            let key = self.key_name(ActionId::Cancel);
            self.message = Some((format!("already running ({key} cancels it)"), Level::Info));
            return;
        }
        if matches!(
            e.state,
            LoadState::Invalid | LoadState::Deleted | LoadState::Loading
        ) || e.workflow.is_none()
        {
            let why = e.first_error().unwrap_or_else(|| "it is not loaded".into());
            self.message = Some((format!("cannot run {}: {why}", e.label()), Level::Error));
            return;
        }
        let Some(wf) = e.workflow.clone() else {
            return;
        };
        let run_id = new_run_id(now);
        e.run = None;
        e.set_workflow(wf.clone());
        e.run = Some(RunView::new(run_id.clone(), now));
        let file = e.path.clone();
        let setup = e.setup.clone();
        self.runs.insert(run_id.clone(), self.workflows.selected);
        self.effects.push(Effect::StartRun {
            run_id,
            workflow: wf,
            file,
            setup,
        });
        self.inspector
            .handle(InspectorAction::RunStarted, Default::default());
        self.want_layout();
    }

    /// Events of runs going on.
    pub(crate) fn on_engine(&mut self, events: Vec<RunEvent>) {
        let mut finished = Vec::new();
        let mut refresh_inbox = false;
        let mut refresh_checkpoints = false;
        let mut changed_entries = Vec::new();
        for ev in &events {
            let Some(&index) = self.runs.get(&*ev.run_id) else {
                continue;
            };
            let Some(e) = self.workflows.entries.get_mut(index) else {
                continue;
            };
            let Some(run) = e.run.as_mut().filter(|r| *r.run_id == *ev.run_id) else {
                continue;
            };
            let applied = run.apply(ev);
            for (id, by) in &applied.added {
                if e.graph.add_dynamic(id, by) {
                    changed_entries.push(index);
                }
            }
            if applied.finished {
                finished.push(index);
            }
            match &ev.kind {
                EventKind::FeedbackRequested { task, prompt, .. } => {
                    let text = if self.showing == Screen::Inbox {
                        format!("⚑ {task} asks: {prompt}")
                    } else {
                        let key = self.key_name(ActionId::ToggleInbox);
                        format!("⚑ {task} asks: {prompt} — {key} opens the inbox")
                    };
                    self.message = Some((text, Level::Info));
                    refresh_inbox = true;
                }
                EventKind::FeedbackAnswered { .. } => refresh_inbox = true,
                EventKind::CheckpointSaved { .. } => refresh_checkpoints = true,
                _ => {}
            }
        }
        let mut refresh_inbox_after = false;
        if refresh_inbox {
            self.want_inbox();
        }
        if refresh_checkpoints && (self.checkpoints.listed || self.showing == Screen::Checkpoints) {
            self.want_checkpoints();
        }
        for index in finished {
            let Some(e) = self.workflows.entries.get_mut(index) else {
                continue;
            };
            let Some(run) = &e.run else {
                continue;
            };
            let took = duration_ms(run.elapsed(self.now) * 1000.0);
            let (text, level) = match run.phase {
                RunPhase::Finished(s) => {
                    let mut t = format!("{}: run {} in {took}", e.name, status_word(s));
                    if let Some(err) = &run.error {
                        t.push_str(": ");
                        t.push_str(first_line(err));
                    }
                    if run.checkpoint.is_some() {
                        if self.showing == Screen::Inbox {
                            t.push_str(" — waiting for an answer here, then it resumes");
                        } else {
                            let key = self.settings.keymap.key_name(ActionId::ToggleInbox);
                            t.push_str(&format!(
                                " — waiting for an answer: {key} opens the inbox, then it resumes"
                            ));
                        }
                    }
                    let lvl = match s {
                        RunStatus::Succeeded | RunStatus::Paused => Level::Info,
                        _ => Level::Error,
                    };
                    (t, lvl)
                }
                _ => continue,
            };
            // Open the failed task's log, as a developer wants it.
            if let Some(failed) = run.failed_task.clone()
                && index == self.workflows.selected
            {
                e.graph.select_id(&failed);
                self.inspector
                    .handle(InspectorAction::ShowFailedTask, Default::default());
            }
            self.message = Some((text, level));
            self.effects.push(Effect::RefreshHistory);
            self.inspector.snapshot_pending = false;
            refresh_inbox_after = true;
        }
        if refresh_inbox_after {
            self.want_inbox();
        }
        if changed_entries.contains(&self.workflows.selected) {
            self.want_layout();
        }
        self.want_snapshot();
        if self.focus == Pane::Graph {
            self.keep_graph_list_visible();
        }
    }

    /// A recorded run's events were read: show it in its workflow.
    pub(crate) fn on_recorded(&mut self, key: String, events: Vec<Value>) {
        let Some(record) = self.history.record(&key).cloned() else {
            return;
        };
        let run_id = record.run_id.clone();
        let index = self
            .workflows
            .entries
            .iter()
            .position(|e| record.file.is_some() && e.path == record.file)
            .or_else(|| {
                self.workflows
                    .entries
                    .iter()
                    .position(|e| e.name == record.workflow)
            });
        let Some(index) = index else {
            self.message = Some((
                format!(
                    "run {run_id}: its workflow '{}' is not open here",
                    record.workflow
                ),
                Level::Error,
            ));
            return;
        };
        if self.workflows.entries[index].is_running() {
            self.message = Some((
                "that workflow is running; the recorded run shows once it ends".into(),
                Level::Info,
            ));
            return;
        }
        let e = &mut self.workflows.entries[index];
        let replayed = replay(&run_id, &events);
        if let Some(wf) = e.workflow.clone() {
            e.run = None;
            e.set_workflow(wf);
        }
        for (id, by) in &replayed.added {
            e.graph.add_dynamic(id, by);
        }
        e.run = Some(replayed.run);
        self.select_workflow(index);
        self.focus = Pane::Graph;
        self.message = Some((format!("showing recorded run {run_id}"), Level::Info));
    }
}

/// A time-ordered run id, like the engine's.
pub fn new_run_id(now: SystemTime) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{millis:011x}{:05x}",
        (std::process::id().wrapping_mul(31) ^ n) & 0xf_ffff
    )
}
