//! The studio's shell: [`App`] holds what is shared (the settings, the focus, an overlay, the
//! status line, the screen, the clock, the runs going on) and the components that own the
//! rest — the panes ([`panes`](super::panes): workflows, run history, graph, inspector) and
//! the full screens ([`screens`](super::screens): inbox, checkpoint browser, fleet). It has
//! one way to change with what the user asked, [`App::update`] with an [`Action`], and one
//! with what the engine, the loader, the watcher or a layout job reported, [`App::on_msg`]
//! with a [`Msg`]; both route to the components and carry out what they return. Neither
//! does I/O: anything slow or outside becomes an [`Effect`] that the runtime carries out and
//! answers with a `Msg`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use graflow_engine::Workflow;

use super::action::{Action, ActionId, Context, infos, registry_id};
use super::areas::{Areas, areas};
use super::log_view::LogAction;
use super::model::WorkflowEntry;
use super::model::logbuf::LogLine;
use super::model::run::TaskRun;
use super::panes::graph::{self as graph_pane, GraphAction, GraphEffect, GraphPane, Room};
use super::panes::history::{HistoryAction, RunHistory};
use super::panes::inspector::{Inspector, InspectorAction, InspectorEffect, Shown};
use super::panes::workflows::{WorkflowList, WorkflowsAction, WorkflowsEffect};
use super::prompt::{Prompt, PromptAction, PromptEffect};
use super::screens::Screen;
use super::screens::checkpoints::CheckpointBrowser;
use super::screens::fleet::FleetView;
use super::screens::inbox::{Inbox, InboxAction};

pub use super::input::on_screens;
pub use super::live_runs::new_run_id;
pub use super::log_view::LogView;
pub use super::messages::{Effect, Failed, Loaded, Msg};
pub use super::panes::graph::GraphView;
pub use super::panes::inspector::Tab;
pub use super::state::{Level, Overlay, Pane, Question, Settings};

/// The whole state of the studio.
#[derive(Debug)]
pub struct App {
    /// Options.
    pub settings: Settings,
    /// Focused pane.
    pub focus: Pane,
    /// The focused pane has the whole screen.
    pub zoomed: bool,
    /// Overlay, if any.
    pub overlay: Option<Overlay>,
    /// The status line message.
    pub message: Option<(String, Level)>,
    /// Screen size (columns, rows).
    pub screen: (u16, u16),
    /// The time the view is drawn for (advanced by the runtime's heartbeat).
    pub now: SystemTime,
    /// Run id → entry index.
    pub runs: HashMap<String, usize>,
    /// Runs followed from the fleet's event streams (not run here).
    pub remote_runs: HashSet<String>,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Leave.
    pub quit: bool,
    /// Effects for the runtime.
    pub effects: Vec<Effect>,
    /// The last text copied.
    pub copied: Option<String>,
    /// The prompt `/` opens (the workflows' filter, the graph's find, the log's search).
    pub prompt: Prompt,
    /// What fills the screen: the workflows, the inbox or the checkpoint browser.
    pub showing: Screen,
    /// The workflows pane (and the workflows themselves).
    pub workflows: WorkflowList,
    /// The run history pane.
    pub history: RunHistory,
    /// The graph pane.
    pub graph: GraphPane,
    /// The inspector pane.
    pub inspector: Inspector,
    /// The approvals inbox.
    pub inbox: Inbox,
    /// The checkpoint browser.
    pub checkpoints: CheckpointBrowser,
    /// The fleet view (when attached to a fleet's Redis).
    pub fleet: FleetView,
}

impl App {
    /// A new studio with these settings.
    pub fn new(settings: Settings) -> App {
        let inspector = Inspector::new(settings.log_follow, settings.log_wrap);
        App {
            settings,
            // The first `j` moves through the workflows, the first list on screen.
            focus: Pane::Workflows,
            zoomed: false,
            overlay: None,
            message: None,
            screen: (80, 24),
            now: SystemTime::now(),
            runs: HashMap::new(),
            remote_runs: HashSet::new(),
            dirty: true,
            quit: false,
            effects: Vec::new(),
            copied: None,
            prompt: Prompt::default(),
            showing: Screen::Main,
            workflows: WorkflowList::default(),
            history: RunHistory::default(),
            graph: GraphPane::default(),
            inspector,
            inbox: Inbox::default(),
            checkpoints: CheckpointBrowser::default(),
            fleet: FleetView::default(),
        }
    }

    /// Add a workflow built in code; returns its index.
    pub fn add_workflow(&mut self, workflow: Arc<Workflow>) -> usize {
        self.workflows
            .entries
            .push(WorkflowEntry::from_workflow(workflow));
        self.dirty = true;
        self.want_layout();
        self.workflows.entries.len() - 1
    }

    /// The selected workflow.
    pub fn entry(&self) -> Option<&WorkflowEntry> {
        self.workflows.entry()
    }

    /// Whether the selected workflow has pools or rate-limited queues (its inspector then has
    /// a Pools tab).
    pub fn has_pools(&self) -> bool {
        self.entry()
            .and_then(|e| e.workflow.as_ref())
            .is_some_and(|w| {
                !w.pools().is_empty() || w.queues().values().any(|q| q.rate_limit.is_some())
            })
    }

    /// The pane rectangles for the current screen.
    pub fn areas(&self) -> Areas {
        areas(self.screen.0, self.screen.1, self.focus, self.zoomed)
    }

    /// The keymap context that gets keys now.
    pub fn context(&self) -> Context {
        match &self.overlay {
            Some(Overlay::Help { .. }) => Context::Help,
            Some(Overlay::Confirm(_)) => Context::Confirm,
            None => match self.showing {
                Screen::Main => self.focus.context(),
                Screen::Inbox if self.inbox.editing && self.inbox.form.is_some() => Context::Answer,
                Screen::Inbox => Context::Inbox,
                Screen::Checkpoints => Context::Checkpoints,
                Screen::Fleet => Context::Fleet,
            },
        }
    }

    /// Whether an action is allowed (read-only refuses mutating ones).
    pub fn allowed(&self, id: ActionId) -> bool {
        !(self.settings.read_only && infos(id).any(|i| i.mutating))
    }

    /// Apply a user action.
    pub fn update(&mut self, action: Action) {
        self.dirty = true;
        if !matches!(action, Action::Resize(..) | Action::ScrollAt(..)) {
            self.message = None;
        }
        if let Some(id) = registry_id(&action)
            && !self.allowed(id)
        {
            self.message = Some((
                "read-only: nothing can be run, cancelled, answered or resumed here".into(),
                Level::Error,
            ));
            return;
        }
        let Some(action) = self.on_screen_action(action) else {
            return;
        };
        if let Some(a) = GraphAction::for_action(&action) {
            return self.on_graph(a);
        }
        match action {
            Action::Quit => self.ask_to_quit(),
            Action::ToggleHelp => {
                self.overlay = match self.overlay {
                    Some(Overlay::Help { .. }) => None,
                    _ => Some(Overlay::Help { scroll: 0 }),
                }
            }
            Action::Back => self.back(),
            Action::FocusNext => self.focus = self.focus.step(true),
            Action::FocusPrev => self.focus = self.focus.step(false),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as i64)),
            Action::PageDown => self.move_by(self.page() as i64),
            Action::Home => self.move_to_end(false),
            Action::End => self.move_to_end(true),
            Action::Left | Action::Right => {
                let dx = if action == Action::Left { -1 } else { 1 };
                if self.overlay.is_none() && self.focus == Pane::Graph {
                    self.on_graph(GraphAction::Sideways(dx));
                }
            }
            Action::Open => self.open(),
            Action::NextTab => {
                self.on_inspector(InspectorAction::NextTab);
                self.want_snapshot();
            }
            Action::Run => self.start_run(),
            Action::Cancel => self.ask_to_cancel(),
            Action::Confirm => self.confirm(),
            Action::Deny => {
                if matches!(self.overlay, Some(Overlay::Confirm(_))) {
                    self.overlay = None;
                }
            }
            Action::ToggleFollow => self.on_log(LogAction::ToggleFollow),
            Action::ToggleWrap => self.on_log(LogAction::ToggleWrap),
            Action::ToggleErrorsOnly => self.on_log(LogAction::ToggleErrorsOnly),
            Action::Search => self.open_prompt(),
            Action::InputChar(c) => self.on_prompt(PromptAction::Char(c)),
            Action::InputBackspace => self.on_prompt(PromptAction::Backspace),
            Action::InputSubmit => self.on_prompt(PromptAction::Submit),
            Action::SearchNext | Action::SearchPrev => {
                let forward = action == Action::SearchNext;
                if self.focus == Pane::Graph {
                    self.on_graph(GraphAction::FindNext { forward });
                } else {
                    self.on_log(LogAction::FindMatch {
                        forward,
                        from_start: false,
                    });
                }
            }
            Action::Copy => self.copy(),
            Action::ToggleZoomPane => self.zoomed = !self.zoomed,
            Action::ToggleMouse => {
                let news = self.settings.toggle_mouse();
                self.effects.push(Effect::SetMouse(self.settings.mouse));
                self.message = Some((news, Level::Info));
            }
            Action::CycleTheme => self.message = Some((self.settings.cycle_theme(), Level::Info)),
            Action::SelectWorkflow(i) => self.select_workflow(i),
            Action::Click(x, y) => self.click(x, y),
            Action::ScrollAt(x, y, d) => self.scroll_at(x, y, d),
            Action::Resize(w, h) => {
                self.screen = (w, h);
                self.keep_graph_list_visible();
            }
            // The screens' actions and the graph's own went to them above.
            _ => {}
        }
    }

    /// `y` on the question shown.
    fn confirm(&mut self) {
        let Some(Overlay::Confirm(q)) = self.overlay.take() else {
            return;
        };
        match q {
            Question::CancelRun { run_id } => {
                self.effects.push(Effect::CancelRun(run_id));
                self.message = Some(("cancelling…".into(), Level::Info));
            }
            Question::ResumeChanged { checkpoint, .. } => self.prepare_resume(checkpoint, true),
            Question::ResumeAnswered { checkpoint, .. } => self.prepare_resume(checkpoint, false),
            Question::QuitWhileRunning { .. } => self.quit = true,
        }
    }

    fn back(&mut self) {
        if self.overlay.take().is_some() {
            return;
        }
        if self.showing == Screen::Inbox && self.inbox.editing {
            // The draft stays: enter on the same request brings it back.
            return self.on_inbox_action(InboxAction::StopEditing);
        }
        if self.showing != Screen::Main {
            self.showing = Screen::Main;
            return;
        }
        if self.prompt.is_open() {
            return self.on_prompt(PromptAction::Cancel);
        }
        if matches!(self.focus, Pane::Workflows | Pane::History) && self.workflows.filter.is_some()
        {
            self.set_workflow_filter(None);
            return;
        }
        if self.focus == Pane::Graph && self.graph.find.take().is_some() {
            return;
        }
        if self.inspector.log.search.take().is_some() {
            return;
        }
        if self.zoomed {
            self.zoomed = false;
            return;
        }
        self.on_graph(GraphAction::ClearFocusMode);
    }

    /// `/`: a prompt for the focused pane — the workflows' filter, the graph's find or the
    /// log's search.
    fn open_prompt(&mut self) {
        let target = match self.focus {
            Pane::Workflows | Pane::History => Pane::Workflows,
            Pane::Graph => Pane::Graph,
            Pane::Inspector => {
                self.inspector.tab = Tab::Task;
                Pane::Inspector
            }
        };
        if target != Pane::Graph {
            self.focus = target;
        }
        self.prompt.handle(PromptAction::Open(target));
    }

    /// Hand an action to the prompt and its text to the pane it is for.
    fn on_prompt(&mut self, action: PromptAction) {
        match self.prompt.handle(action) {
            // The workflows filter follows the prompt as it is typed.
            PromptEffect::Typed {
                target: Pane::Workflows,
                text,
            } => self.set_workflow_filter(text),
            PromptEffect::Cancelled {
                target: Pane::Workflows,
            } => self.set_workflow_filter(None),
            PromptEffect::Submitted { target, term } => match target {
                Pane::Workflows => self.set_workflow_filter(term),
                Pane::Graph => self.on_graph(GraphAction::SetFind(term)),
                Pane::History | Pane::Inspector => {
                    self.inspector.log.search = term;
                    self.on_log(LogAction::FindMatch {
                        forward: true,
                        from_start: true,
                    });
                }
            },
            PromptEffect::Typed { .. } | PromptEffect::Cancelled { .. } | PromptEffect::None => {}
        }
    }

    /// Filter the workflows pane (or show them all).
    pub(crate) fn set_workflow_filter(&mut self, text: Option<String>) {
        self.on_workflows(WorkflowsAction::Filter(text));
        let rows = self.workflow_rows();
        self.workflows.keep_visible(rows);
    }

    /// Rows one page of the focused pane holds.
    pub(crate) fn page(&self) -> usize {
        self.areas()
            .of(self.focus)
            .map_or(10, |r| r.height.saturating_sub(3).max(1) as usize)
    }

    /// Rows the workflows pane shows.
    fn workflow_rows(&self) -> usize {
        self.areas()
            .workflows
            .map_or(5, |r| r.height.saturating_sub(2).max(1) as usize)
    }

    pub(crate) fn move_by(&mut self, delta: i64) {
        if let Some(Overlay::Help { scroll }) = &mut self.overlay {
            *scroll = (*scroll as i64 + delta).clamp(0, 500) as u16;
            return;
        }
        match self.showing {
            Screen::Main => {}
            Screen::Inbox => return self.on_inbox_action(InboxAction::Move(delta)),
            Screen::Checkpoints => return self.checkpoints_move(delta),
            Screen::Fleet => return self.fleet.move_by(delta),
        }
        match self.focus {
            Pane::Workflows => self.on_workflows(WorkflowsAction::Move(delta)),
            Pane::History => {
                self.history.handle(HistoryAction::Move(delta));
            }
            Pane::Graph => self.on_graph(GraphAction::Move(delta)),
            Pane::Inspector => self.on_inspector(InspectorAction::Move(delta)),
        }
    }

    fn move_to_end(&mut self, end: bool) {
        if self.showing == Screen::Main && self.overlay.is_none() {
            match self.focus {
                Pane::Graph => return self.on_graph(GraphAction::ToEnd(end)),
                Pane::Inspector => return self.on_inspector(InspectorAction::ToEnd(end)),
                Pane::Workflows | Pane::History => {}
            }
        }
        self.move_by(if end { i64::MAX / 4 } else { -(i64::MAX / 4) });
    }

    fn open(&mut self) {
        match self.focus {
            Pane::Workflows => self.focus = Pane::Graph,
            Pane::History => {
                let fx = self.history.handle(HistoryAction::Open);
                self.effects.extend(fx);
            }
            Pane::Graph => {
                self.focus = Pane::Inspector;
                self.on_inspector(InspectorAction::OpenTask);
            }
            Pane::Inspector => {}
        }
    }

    /// Select workflow `i`: what belonged to the one selected before (a log search, a node
    /// find, the inspector's scrolls) goes.
    pub(crate) fn select_workflow(&mut self, i: usize) {
        let rows = self.workflow_rows();
        let Some(changed) = self.workflows.select(i, rows) else {
            return;
        };
        if changed {
            // A log search or a node find belongs to the workflow it was made in.
            self.inspector.log.search = None;
            self.graph.find = None;
            self.prompt.close_unless(Pane::Workflows);
        }
        self.on_inspector(InspectorAction::WorkflowChanged);
        self.want_layout();
    }

    /// Hand an action to the workflows pane and carry out what it returns.
    pub(crate) fn on_workflows(&mut self, action: WorkflowsAction) {
        let fx = self.workflows.handle(action);
        self.apply_workflows(fx);
    }

    fn apply_workflows(&mut self, fx: Vec<WorkflowsEffect>) {
        for f in fx {
            match f {
                WorkflowsEffect::Select(i) => self.select_workflow(i),
                WorkflowsEffect::Run(e) => self.effects.push(*e),
            }
        }
    }

    /// The graph pane's room on the current screen.
    pub(crate) fn graph_room(&self) -> Room {
        Room::of(self.areas().graph)
    }

    /// Hand an action to the graph pane (with the selected workflow) and carry out what it
    /// returns.
    pub(crate) fn on_graph(&mut self, action: GraphAction) {
        let room = self.graph_room();
        let e = self.workflows.entries.get_mut(self.workflows.selected);
        for f in self.graph.handle(action, e, room) {
            match f {
                GraphEffect::WantLayout => self.want_layout(),
                GraphEffect::Notice(text) => self.message = Some((text, Level::Info)),
            }
        }
    }

    /// Keep the selected node on screen in the graph's list.
    pub(crate) fn keep_graph_list_visible(&mut self) {
        let room = self.graph_room();
        if let Some(e) = self.workflows.entry_mut() {
            graph_pane::keep_list_visible(e, room);
        }
    }

    /// Hand an action to the inspector (with what it shows) and carry out what it returns.
    pub(crate) fn on_inspector(&mut self, action: InspectorAction) {
        let (page, has_pools) = (self.page(), self.has_pools());
        let e = self.workflows.entry();
        let shown = Shown {
            run: e.and_then(|e| e.run.as_ref()),
            task: selected_task(e),
            page,
            has_pools,
        };
        if let InspectorEffect::Notice(text) = self.inspector.handle(action, shown) {
            self.message = Some((text, Level::Info));
        }
    }

    fn on_log(&mut self, action: LogAction) {
        self.on_inspector(InspectorAction::Log(action));
    }

    /// Ask for a canvas layout of the selected workflow when the canvas shows and the
    /// current one is out of date.
    pub fn want_layout(&mut self) {
        let index = self.workflows.selected;
        let e = self.workflows.entries.get_mut(index);
        if let Some(fx) = self.graph.layout_request(index, e) {
            self.effects.push(fx);
        }
    }

    /// Ask for a snapshot of the shown run's channel when the channel tab shows it.
    pub(crate) fn want_snapshot(&mut self) {
        let run = self.workflows.entry().and_then(|e| e.run.as_ref());
        if let Some(fx) = self.inspector.want_snapshot(run) {
            self.effects.push(fx);
        }
    }

    /// The lines the log pane shows for the selected task (after the errors-only filter).
    pub fn log_lines(&self) -> Vec<&LogLine> {
        self.inspector.log_lines(self.selected_task_run())
    }

    /// The selected task's state in the shown run.
    pub fn selected_task_run(&self) -> Option<&TaskRun> {
        selected_task(self.entry())
    }

    /// The entries shown in the workflows pane, in display order (indices into the entries).
    pub fn visible_workflows(&self) -> Vec<usize> {
        self.workflows.visible()
    }

    fn copy(&mut self) {
        let text = match self.focus {
            Pane::Inspector if self.inspector.tab == Tab::Task => {
                self.inspector.current_line(self.selected_task_run())
            }
            _ => self
                .entry()
                .and_then(|e| e.graph.selected.as_ref())
                .map(|s| s.to_string()),
        };
        match text {
            Some(t) => {
                let shown = crate::text::truncate(&t, 40);
                self.message = Some((format!("copied: {shown}"), Level::Info));
                self.copied = Some(t.clone());
                self.effects.push(Effect::Copy(t));
            }
            None => self.message = Some(("nothing to copy".into(), Level::Info)),
        }
    }

    /// Apply something the runtime reported.
    pub fn on_msg(&mut self, msg: Msg) {
        let Some(msg) = self.on_screen_msg(msg) else {
            return;
        };
        self.dirty = true;
        match msg {
            Msg::Discovered(paths) => {
                let rows = self.workflow_rows();
                let fx = self.workflows.discovered(paths, rows);
                self.apply_workflows(fx);
            }
            Msg::Loaded {
                index,
                generation,
                result,
            } => self.on_loaded(index, generation, result),
            Msg::FilesChanged(paths) => {
                let fx = self.workflows.files_changed(paths);
                self.effects.extend(fx);
            }
            Msg::Engine(events) => self.on_engine(events),
            Msg::Layout { index, layout } => {
                let room = self.graph_room();
                let selected = index == self.workflows.selected;
                if let Some(e) = self.workflows.entries.get_mut(index) {
                    self.graph.on_layout(e, layout, selected, room);
                }
            }
            Msg::Channel { run_id, values } => self.on_channel(run_id, values),
            Msg::History(records) => self.history.set(records),
            Msg::RecordedRun { key, events } => self.on_recorded(key, events),
            Msg::RunEnded(run_id) => {
                self.runs.remove(&run_id);
            }
            Msg::Problem(text) => self.message = Some((text, Level::Error)),
            // The screens' messages went to them above.
            _ => {}
        }
    }

    fn on_loaded(&mut self, index: usize, generation: u64, result: Result<Loaded, Failed>) {
        let Some(r) = self.workflows.loaded(index, generation, result) else {
            return;
        };
        // An error on the status line about this file is stale once the file is read again
        // (fixed, or broken differently: the graph pane shows its current error).
        if matches!(&self.message, Some((text, Level::Error)) if text.contains(&r.label)) {
            self.message = None;
        }
        if !r.watch.is_empty() {
            self.effects.push(Effect::Watch(r.watch));
        }
        if r.selected {
            self.want_layout();
            self.keep_graph_list_visible();
        }
    }

    /// The heartbeat: time moved on (running clocks redraw; the channel tab re-reads a
    /// running run's channel).
    pub fn tick(&mut self, now: SystemTime) {
        self.now = now;
        if self.clocks_running() {
            self.dirty = true;
            self.want_snapshot();
        }
        self.tick_screens();
    }

    /// Whether something on screen changes with time alone (a running task's clock).
    pub fn clocks_running(&self) -> bool {
        self.workflows.entries.iter().any(WorkflowEntry::is_running)
    }

    /// Whether the heartbeat should run: clocks, or a light poll of the inbox (open, or
    /// something waits for an answer) and of the open checkpoint browser. Idle with nothing
    /// pending, nothing wakes up.
    pub fn needs_heartbeat(&self) -> bool {
        self.clocks_running() || self.screens_need_heartbeat()
    }

    /// The first key bound to an action (for messages and hints), or its name in brackets.
    pub fn key_name(&self, id: ActionId) -> String {
        self.settings.keymap.key_name(id)
    }
}

/// The selected task's state in the run an entry shows.
fn selected_task(entry: Option<&WorkflowEntry>) -> Option<&TaskRun> {
    let e = entry?;
    let id = e.graph.selected.as_ref()?;
    e.run.as_ref()?.task(id)
}
