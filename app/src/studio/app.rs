//! The studio's state and its one way to change: [`App::update`] with an [`Action`] (what the
//! user asked) and [`App::on_msg`] with a [`Msg`] (what the engine, the loader, the watcher
//! or a layout job reported). Both are synchronous and do no I/O: anything slow or outside
//! becomes an [`Effect`] that the runtime carries out and answers with a `Msg`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use graflow_engine::{RunEvent, Value, Workflow};
use serde::Deserialize;

use super::action::{Action, ActionId, Context, infos};
use super::areas::{Areas, areas};
use super::graph::layout::Zoom;
use super::keymap::Keymap;
pub use super::log_view::LogView;
use super::log_view::{LogAction, LogEffect};
use super::model::logbuf::LogLine;
use super::model::run::{TaskRun, first_line, status_word};
use super::model::{LoadState, RunPhase, RunView, WorkflowEntry};
use super::screens::Screen;
use super::screens::checkpoints::CheckpointBrowser;
use super::screens::inbox::Inbox;
use super::theme::Theme;
use crate::history::RunRecord;
use crate::text::duration_ms;

pub use super::input::on_screens;
pub use super::messages::{Effect, Failed, Loaded, Msg};

/// A pane that can have the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    /// The workflows found under the given paths.
    Workflows,
    /// The run history of the state dir.
    History,
    /// The graph.
    Graph,
    /// Task detail, channel, events.
    Inspector,
}

impl Pane {
    /// Focus order.
    pub const ALL: [Pane; 4] = [Pane::Workflows, Pane::History, Pane::Graph, Pane::Inspector];

    /// The keymap context of the pane.
    pub fn context(self) -> Context {
        match self {
            Pane::Workflows | Pane::History => Context::Workflows,
            Pane::Graph => Context::Graph,
            Pane::Inspector => Context::Inspector,
        }
    }
}

/// How the graph pane shows the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphView {
    /// A list with lanes.
    List,
    /// A layered canvas.
    Canvas,
    /// A timeline of the run.
    Timeline,
}

/// The inspector's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// The selected task: status, attempts, result, errors and its log.
    Task,
    /// The run's channel.
    Channel,
    /// The run's event log.
    Events,
    /// The workflow's pools and rate limits (shown when it has some).
    Pools,
}

/// A question waiting for yes or no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// Cancel this run?
    CancelRun {
        /// The run.
        run_id: String,
    },
    /// The workflow file changed since this checkpoint: resume with it as it is now?
    ResumeChanged {
        /// The checkpoint.
        checkpoint: PathBuf,
        /// The changed file.
        file: PathBuf,
    },
    /// Runs are going on: quit (which cancels them)?
    QuitWhileRunning {
        /// The workflows whose runs would be cancelled.
        workflows: Vec<String>,
    },
    /// An answer went to a paused run: resume it from its checkpoint now?
    ResumeAnswered {
        /// The checkpoint the run paused into.
        checkpoint: PathBuf,
        /// The workflow's name.
        workflow: String,
    },
}

/// An overlay over the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// The key help, scrolled this far.
    Help {
        /// First line shown.
        scroll: u16,
    },
    /// A yes/no question.
    Confirm(Question),
}

/// How serious a status message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// News.
    Info,
    /// Something went wrong.
    Error,
}

/// Options fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Colours.
    pub theme: Theme,
    /// Keys.
    pub keymap: Keymap,
    /// Watch only: no runs, no cancels.
    pub read_only: bool,
    /// Mouse capture on.
    pub mouse: bool,
    /// Logs follow their end.
    pub log_follow: bool,
    /// Logs wrap.
    pub log_wrap: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            theme: Theme::dark(),
            keymap: Keymap::default(),
            read_only: false,
            mouse: true,
            log_follow: true,
            log_wrap: false,
        }
    }
}

/// The whole state of the studio.
#[derive(Debug)]
pub struct App {
    /// Options.
    pub settings: Settings,
    /// Workflows.
    pub entries: Vec<WorkflowEntry>,
    /// The selected workflow.
    pub selected: usize,
    /// First workflow row shown.
    pub workflows_offset: usize,
    /// Runs of the state dir, newest first.
    pub history: Vec<RunRecord>,
    /// Selected history row.
    pub history_selected: usize,
    /// Focused pane.
    pub focus: Pane,
    /// The focused pane has the whole screen.
    pub zoomed: bool,
    /// Graph view.
    pub view: GraphView,
    /// Inspector tab.
    pub tab: Tab,
    /// Overlay, if any.
    pub overlay: Option<Overlay>,
    /// Log settings.
    pub log: LogView,
    /// Event log: first row shown when not following.
    pub events_scroll: Option<usize>,
    /// Selected channel key (row).
    pub channel_selected: usize,
    /// The status line message.
    pub message: Option<(String, Level)>,
    /// Screen size (columns, rows).
    pub screen: (u16, u16),
    /// The time the view is drawn for (advanced by the runtime's heartbeat).
    pub now: SystemTime,
    /// Run id → entry index.
    pub runs: HashMap<String, usize>,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Leave.
    pub quit: bool,
    /// Effects for the runtime.
    pub effects: Vec<Effect>,
    /// The last text copied.
    pub copied: Option<String>,
    /// A channel snapshot is on its way.
    pub snapshot_pending: bool,
    /// The graph's find (lower case), when one was submitted.
    pub find: Option<String>,
    /// Where the open prompt (`log.input`) goes: the graph's find or the log's search.
    pub prompt_for: Pane,
    /// What fills the screen: the workflows, the inbox or the checkpoint browser.
    pub showing: Screen,
    /// The approvals inbox.
    pub inbox: Inbox,
    /// The checkpoint browser.
    pub checkpoints: CheckpointBrowser,
    /// The fleet view (when attached to a fleet's Redis).
    pub fleet: super::screens::fleet::FleetView,
    /// Runs followed from the fleet's event streams (not run here).
    pub remote_runs: std::collections::HashSet<String>,
    /// The workflows pane's filter (lower case): only names containing it are listed.
    pub workflow_filter: Option<String>,
}

impl App {
    /// A new studio with these settings.
    pub fn new(settings: Settings) -> App {
        let log = LogView::new(settings.log_follow, settings.log_wrap);
        App {
            settings,
            entries: Vec::new(),
            selected: 0,
            workflows_offset: 0,
            history: Vec::new(),
            history_selected: 0,
            // The first `j` moves through the workflows, the first list on screen.
            focus: Pane::Workflows,
            zoomed: false,
            view: GraphView::List,
            tab: Tab::Task,
            overlay: None,
            log,
            events_scroll: None,
            channel_selected: 0,
            message: None,
            screen: (80, 24),
            now: SystemTime::now(),
            runs: HashMap::new(),
            dirty: true,
            quit: false,
            effects: Vec::new(),
            copied: None,
            snapshot_pending: false,
            find: None,
            prompt_for: Pane::Inspector,
            showing: Screen::Main,
            inbox: Inbox::default(),
            checkpoints: CheckpointBrowser::default(),
            fleet: Default::default(),
            remote_runs: Default::default(),
            workflow_filter: None,
        }
    }

    /// Add a workflow built in code; returns its index.
    pub fn add_workflow(&mut self, workflow: Arc<Workflow>) -> usize {
        self.entries.push(WorkflowEntry::from_workflow(workflow));
        self.dirty = true;
        self.want_layout();
        self.entries.len() - 1
    }

    /// The selected workflow.
    pub fn entry(&self) -> Option<&WorkflowEntry> {
        self.entries.get(self.selected)
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

    fn entry_mut(&mut self) -> Option<&mut WorkflowEntry> {
        self.entries.get_mut(self.selected)
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
        let id = registry_id(&action);
        if let Some(id) = id
            && !self.allowed(id)
        {
            self.message = Some((
                "read-only: nothing can be run, cancelled, answered or resumed here".into(),
                Level::Error,
            ));
            return;
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
            Action::FocusNext | Action::FocusPrev => {
                let n = Pane::ALL.len();
                let i = Pane::ALL.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if action == Action::FocusNext {
                    1
                } else {
                    n - 1
                };
                self.focus = Pane::ALL[(i + step) % n];
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as i64)),
            Action::PageDown => self.move_by(self.page() as i64),
            Action::Home => self.move_to_end(false),
            Action::End => self.move_to_end(true),
            Action::Left | Action::Right => {
                let dx = if action == Action::Left { -1 } else { 1 };
                if self.overlay.is_none()
                    && self.focus == Pane::Graph
                    && self.view == GraphView::Canvas
                {
                    if let Some(e) = self.entry_mut() {
                        e.graph.canvas_step(0, dx);
                    }
                    self.keep_canvas_selection_visible();
                }
            }
            Action::Open => self.open(),
            Action::ViewList => self.set_view(GraphView::List),
            Action::ViewCanvas => self.set_view(GraphView::Canvas),
            Action::ViewTimeline => self.set_view(GraphView::Timeline),
            Action::NextTab => {
                self.tab = match self.tab {
                    Tab::Task => Tab::Channel,
                    Tab::Channel => Tab::Events,
                    Tab::Events if self.has_pools() => Tab::Pools,
                    Tab::Events | Tab::Pools => Tab::Task,
                };
                self.want_snapshot();
            }
            Action::Run => self.start_run(),
            Action::Cancel => match self
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
            },
            Action::Confirm => {
                if let Some(Overlay::Confirm(q)) = self.overlay.take() {
                    match q {
                        Question::CancelRun { run_id } => {
                            self.effects.push(Effect::CancelRun(run_id));
                            self.message = Some(("cancelling…".into(), Level::Info));
                        }
                        Question::ResumeChanged { checkpoint, .. } => {
                            self.prepare_resume(checkpoint, true)
                        }
                        Question::ResumeAnswered { checkpoint, .. } => {
                            self.prepare_resume(checkpoint, false)
                        }
                        Question::QuitWhileRunning { .. } => self.quit = true,
                    }
                }
            }
            Action::ToggleInbox => self.toggle_inbox(),
            Action::ToggleCheckpoints => self.toggle_checkpoints(),
            Action::ToggleFleet => self.toggle_fleet(),
            Action::AttachRun => self.attach_selected(),
            Action::SwitchFleetList => self.fleet.switch_list(),
            Action::RequeueDeadLetter => self.requeue_selected(),
            Action::CheckpointNow => self.checkpoint_now(),
            Action::AnswerRequest => self.answer_request(),
            Action::Approve => self.decide(true),
            Action::Reject => self.decide(false),
            Action::SubmitAnswer => self.submit_answer(),
            Action::ToggleOption => self.toggle_option(),
            Action::ToggleDecision => self.toggle_decision(),
            Action::Resume => self.resume_selected(),
            Action::AnswerKey(key) => self.answer_key(key),
            Action::AnswerPaste(text) => self.answer_paste(&text),
            Action::Deny => {
                if matches!(self.overlay, Some(Overlay::Confirm(_))) {
                    self.overlay = None;
                }
            }
            Action::ZoomIn | Action::ZoomOut => {
                if let Some(e) = self.entry_mut() {
                    let i =
                        e.graph.zoom.index() as i64 + if action == Action::ZoomIn { -1 } else { 1 };
                    e.graph.zoom = Zoom::ALL[i.clamp(0, 2) as usize];
                    // Scrolls are in the cells of a zoom level: never carry one over.
                    e.graph.panned = false;
                }
                if self.view != GraphView::Canvas {
                    self.set_view(GraphView::Canvas);
                }
                self.centre_canvas_on_active();
            }
            Action::ToggleFocusMode | Action::FocusDepth => {
                if let Some(e) = self.entry_mut() {
                    e.graph.focus = match (action == Action::FocusDepth, e.graph.focus) {
                        (false, Some(_)) => None,
                        (false, None) => Some(1),
                        (true, Some(d)) => Some(d % 4 + 1),
                        (true, None) => Some(2),
                    };
                    e.graph.rebuild();
                }
                self.want_layout();
            }
            Action::ToggleGroup => self.toggle_group(),
            Action::PanLeft => self.pan_canvas(-8, 0),
            Action::PanRight => self.pan_canvas(8, 0),
            Action::PanUp => self.pan_canvas(0, -4),
            Action::PanDown => self.pan_canvas(0, 4),
            Action::ToggleFollow => self.on_log(LogAction::ToggleFollow),
            Action::ToggleWrap => self.on_log(LogAction::ToggleWrap),
            Action::ToggleErrorsOnly => self.on_log(LogAction::ToggleErrorsOnly),
            Action::Search => {
                if matches!(self.focus, Pane::Workflows | Pane::History) {
                    self.focus = Pane::Workflows;
                    self.prompt_for = Pane::Workflows;
                } else if self.focus == Pane::Graph {
                    self.prompt_for = Pane::Graph;
                } else {
                    self.prompt_for = Pane::Inspector;
                    self.focus = Pane::Inspector;
                    self.tab = Tab::Task;
                }
                self.log.input = Some(String::new());
            }
            Action::InputChar(c) => {
                if let Some(i) = &mut self.log.input {
                    i.push(c);
                }
                self.filter_as_typed();
            }
            Action::InputBackspace => {
                if let Some(i) = &mut self.log.input {
                    i.pop();
                }
                self.filter_as_typed();
            }
            Action::InputSubmit => {
                if let Some(text) = self.log.input.take() {
                    let term = (!text.is_empty()).then(|| text.to_lowercase());
                    if self.prompt_for == Pane::Workflows {
                        self.set_workflow_filter(term);
                    } else if self.prompt_for == Pane::Graph {
                        self.find = term;
                        self.find_node(true, true);
                    } else {
                        self.log.search = term;
                        self.on_log_find(true, true);
                    }
                }
            }
            Action::SearchNext | Action::SearchPrev => {
                let forward = action == Action::SearchNext;
                if self.focus == Pane::Graph {
                    self.find_node(forward, false);
                } else {
                    self.on_log_find(forward, false);
                }
            }
            Action::Copy => self.copy(),
            Action::ToggleZoomPane => self.zoomed = !self.zoomed,
            Action::ToggleMouse => {
                self.settings.mouse = !self.settings.mouse;
                self.effects.push(Effect::SetMouse(self.settings.mouse));
                let state = if self.settings.mouse {
                    "on"
                } else {
                    "off (terminal selection works)"
                };
                self.message = Some((format!("mouse {state}"), Level::Info));
            }
            Action::CycleTheme => {
                if self.settings.theme.monochrome {
                    self.message = Some((
                        "NO_COLOR is set: the studio uses no colour".into(),
                        Level::Info,
                    ));
                } else {
                    self.settings.theme = self.settings.theme.next_built_in();
                    let name = self.settings.theme.name.clone();
                    self.message = Some((format!("theme: {name}"), Level::Info));
                }
            }
            Action::SelectWorkflow(i) => self.select_workflow(i),
            Action::SelectNode(id) => {
                if let Some(e) = self.entry_mut()
                    && e.graph.select_id(&id)
                {
                    self.keep_selection_visible();
                }
            }
            Action::Click(x, y) => self.click(x, y),
            Action::ScrollAt(_, _, d) if self.showing != Screen::Main => self.move_by(d as i64),
            Action::ScrollAt(x, y, d) => {
                if let Some(p) = self.areas().pane_at(x, y) {
                    let saved = self.focus;
                    self.focus = p;
                    self.move_by(d as i64);
                    if !self.zoomed {
                        self.focus = saved;
                    }
                }
            }
            Action::Resize(w, h) => {
                self.screen = (w, h);
                self.keep_selection_visible();
            }
        }
    }

    /// Quit, after a yes when runs are going on: the studio's runs live in this process, so
    /// leaving cancels them (`graflow run` in another terminal is the way to keep one going).
    /// Runs followed from a fleet go on without the studio: they do not ask.
    fn ask_to_quit(&mut self) {
        let workflows: Vec<String> = self
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

    fn back(&mut self) {
        if self.overlay.take().is_some() {
            return;
        }
        if self.showing == Screen::Inbox && self.inbox.editing {
            // The draft stays: enter on the same request brings it back.
            self.inbox.editing = false;
            return;
        }
        if self.showing != Screen::Main {
            self.showing = Screen::Main;
            return;
        }
        if self.log.input.take().is_some() {
            if self.prompt_for == Pane::Workflows {
                self.set_workflow_filter(None);
            }
            return;
        }
        if matches!(self.focus, Pane::Workflows | Pane::History) && self.workflow_filter.is_some() {
            self.set_workflow_filter(None);
            return;
        }
        if self.focus == Pane::Graph && self.find.take().is_some() {
            return;
        }
        if self.log.search.take().is_some() {
            return;
        }
        if self.zoomed {
            self.zoomed = false;
            return;
        }
        if let Some(e) = self.entry_mut()
            && e.graph.focus.take().is_some()
        {
            e.graph.rebuild();
            self.want_layout();
        }
    }

    /// The workflows filter follows the prompt as it is typed.
    fn filter_as_typed(&mut self) {
        if self.prompt_for == Pane::Workflows {
            let text = self.log.input.clone();
            self.set_workflow_filter(text);
        }
    }

    fn page(&self) -> usize {
        self.areas()
            .of(self.focus)
            .map_or(10, |r| r.height.saturating_sub(3).max(1) as usize)
    }

    fn move_by(&mut self, delta: i64) {
        if let Some(Overlay::Help { scroll }) = &mut self.overlay {
            *scroll = (*scroll as i64 + delta).clamp(0, 500) as u16;
            return;
        }
        match self.showing {
            Screen::Main => {}
            Screen::Inbox => return self.inbox_move(delta),
            Screen::Checkpoints => return self.checkpoints_move(delta),
            Screen::Fleet => return self.fleet_move(delta),
        }
        match self.focus {
            Pane::Workflows => self.move_workflows(delta),
            Pane::History => {
                let n = self.history.len();
                if n > 0 {
                    self.history_selected =
                        (self.history_selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
                }
            }
            Pane::Graph => {
                if self.view == GraphView::Canvas {
                    if let Some(e) = self.entry_mut() {
                        e.graph.canvas_step(delta.signum() as i32, 0);
                    }
                    self.keep_canvas_selection_visible();
                } else if let Some(e) = self.entry_mut() {
                    let row = e.graph.selected_row().unwrap_or(0) as i64;
                    e.graph.select_row((row + delta).max(0) as usize);
                    self.keep_selection_visible();
                }
            }
            Pane::Inspector => match self.tab {
                Tab::Task => self.on_log(LogAction::Move(delta)),
                Tab::Channel => {
                    let n = self.channel().map_or(0, |c| c.len());
                    self.channel_selected = (self.channel_selected as i64 + delta)
                        .clamp(0, n.saturating_sub(1) as i64)
                        as usize;
                }
                Tab::Events => {
                    let n = self
                        .entry()
                        .and_then(|e| e.run.as_ref())
                        .map_or(0, |r| r.events.len());
                    let page = self.page();
                    let last_top = n.saturating_sub(page);
                    let cur = self.events_scroll.unwrap_or(last_top) as i64;
                    let next = (cur + delta).clamp(0, last_top as i64) as usize;
                    self.events_scroll = (next < last_top).then_some(next);
                }
                // The pools tab fits its pane; nothing scrolls.
                Tab::Pools => {}
            },
        }
    }

    fn move_to_end(&mut self, end: bool) {
        let big = if end { i64::MAX / 4 } else { -(i64::MAX / 4) };
        if self.showing != Screen::Main || self.overlay.is_some() {
            self.move_by(big);
            return;
        }
        if self.focus == Pane::Graph && self.view == GraphView::Canvas {
            if let Some(e) = self.entry_mut() {
                let row = if end {
                    e.graph.lanes.rows.len().saturating_sub(1)
                } else {
                    0
                };
                e.graph.select_row(row);
            }
            self.keep_canvas_selection_visible();
            return;
        }
        if self.focus == Pane::Inspector && self.tab == Tab::Task {
            self.on_log(LogAction::ToEnd(end));
        } else {
            self.move_by(big);
        }
    }

    fn open(&mut self) {
        match self.focus {
            Pane::Workflows => self.focus = Pane::Graph,
            Pane::History => {
                if let Some(r) = self.history.get(self.history_selected) {
                    self.effects.push(Effect::LoadRecordedRun(r.key.clone()));
                }
            }
            Pane::Graph => {
                self.focus = Pane::Inspector;
                self.tab = Tab::Task;
                self.log.follow = true;
            }
            Pane::Inspector => {}
        }
    }

    fn set_view(&mut self, v: GraphView) {
        self.view = v;
        self.want_layout();
        if v == GraphView::Canvas {
            self.keep_canvas_selection_visible();
        } else {
            self.keep_selection_visible();
        }
    }

    pub(crate) fn select_workflow(&mut self, i: usize) {
        if i < self.entries.len() {
            if i != self.selected {
                // A log search or a node find belongs to the workflow it was made in.
                self.log.search = None;
                self.find = None;
                if self.prompt_for != Pane::Workflows {
                    self.log.input = None;
                }
            }
            self.selected = i;
            self.channel_selected = 0;
            self.events_scroll = None;
            self.log.follow = true;
            self.keep_workflow_visible();
            self.want_layout();
        }
    }

    fn toggle_group(&mut self) {
        let Some(e) = self.entry_mut() else {
            return;
        };
        let Some(i) = e.graph.selected_index() else {
            return;
        };
        // On a member (or a task of a member's chain), act on its group.
        let g = if e.graph.model.nodes[i].is_group {
            i
        } else {
            match e.graph.model.enclosing_group(i) {
                Some(g) => g,
                None => {
                    self.message = Some((
                        "not a group (select a group or one of its members)".into(),
                        Level::Info,
                    ));
                    return;
                }
            }
        };
        let id = e.graph.model.nodes[g].id.clone();
        if !e.graph.collapsed.remove(&id) {
            e.graph.collapsed.insert(id.clone());
        }
        e.graph.selected = Some(id);
        e.graph.rebuild();
        self.want_layout();
        self.keep_selection_visible();
    }

    /// Ask for a canvas layout of the selected workflow when the canvas shows and the
    /// current one is out of date.
    pub fn want_layout(&mut self) {
        if self.view != GraphView::Canvas {
            return;
        }
        let index = self.selected;
        let Some(e) = self.entries.get_mut(index) else {
            return;
        };
        if e.graph.model.is_empty() || e.graph.layout_is_current() {
            return;
        }
        let key = super::graph::layout::structure_key(&e.graph.canvas_view);
        if e.graph.layout_wanted == key {
            return;
        }
        e.graph.layout_wanted = key;
        self.effects.push(Effect::Layout {
            index,
            view: e.graph.canvas_view.clone(),
        });
    }

    fn want_snapshot(&mut self) {
        if self.tab != Tab::Channel || self.snapshot_pending {
            return;
        }
        if let Some(r) = self
            .entry()
            .and_then(|e| e.run.as_ref())
            .filter(|r| r.is_active())
        {
            let id = r.run_id.clone();
            self.snapshot_pending = true;
            self.effects.push(Effect::SnapshotChannel(id));
        }
    }

    fn keep_selection_visible(&mut self) {
        let inside = self
            .areas()
            .graph
            .map_or(12, |r| r.height.saturating_sub(2) as usize);
        if let Some(e) = self.entries.get_mut(self.selected)
            && let Some(row) = e.graph.selected_row()
        {
            let h = inside.saturating_sub(super::ui::header_height(e)).max(1);
            if row < e.graph.list_offset {
                e.graph.list_offset = row;
            } else if row >= e.graph.list_offset + h {
                e.graph.list_offset = row + 1 - h;
            }
        }
    }

    fn start_run(&mut self) {
        let now = self.now;
        let Some(e) = self.entries.get_mut(self.selected) else {
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
        self.runs.insert(run_id.clone(), self.selected);
        self.effects.push(Effect::StartRun {
            run_id,
            workflow: wf,
            file,
            setup,
        });
        self.log.follow = true;
        self.events_scroll = None;
        self.want_layout();
    }

    /// The lines the log pane shows for the selected task (after the errors-only filter).
    pub fn log_lines(&self) -> Vec<&LogLine> {
        self.log.shown(self.selected_task_run())
    }

    /// The selected task's state in the shown run.
    pub fn selected_task_run(&self) -> Option<&TaskRun> {
        selected_task(self.entry())
    }

    fn on_log_find(&mut self, forward: bool, from_start: bool) {
        self.on_log(LogAction::FindMatch {
            forward,
            from_start,
        });
    }

    /// Hand a log action to the log component, with the lines it shows.
    fn on_log(&mut self, action: LogAction) {
        let lines = self
            .log
            .shown(selected_task(self.entries.get(self.selected)));
        if let LogEffect::Notice(text) = self.log.handle(action, &lines) {
            self.message = Some((text, Level::Info));
        }
    }

    /// The shown run's channel.
    pub fn channel(&self) -> Option<&std::collections::BTreeMap<String, Value>> {
        self.entry()
            .and_then(|e| e.run.as_ref())
            .map(|r| &r.channel)
    }

    /// Select the next (or previous) node whose id contains the find; from the start when
    /// `from_start`.
    fn find_node(&mut self, forward: bool, from_start: bool) {
        let Some(needle) = self.find.clone() else {
            return;
        };
        let Some(e) = self.entries.get_mut(self.selected) else {
            return;
        };
        let rows = &e.graph.lanes.rows;
        let n = rows.len();
        if n == 0 {
            return;
        }
        let cur = match (from_start, e.graph.selected_row()) {
            (true, _) | (_, None) => {
                if forward {
                    n - 1
                } else {
                    0
                }
            }
            (false, Some(r)) => r,
        };
        let found = (1..=n).find_map(|k| {
            let i = if forward {
                (cur + k) % n
            } else {
                (cur + n - k % n) % n
            };
            e.graph.model.nodes[rows[i].node]
                .id
                .to_lowercase()
                .contains(&needle)
                .then_some(i)
        });
        match found {
            Some(i) => {
                e.graph.select_row(i);
                if self.view == GraphView::Canvas {
                    self.keep_canvas_selection_visible();
                } else {
                    self.keep_selection_visible();
                }
            }
            None => self.message = Some((format!("no node matches '{needle}'"), Level::Info)),
        }
    }

    fn copy(&mut self) {
        let text = match self.focus {
            Pane::Inspector if self.tab == Tab::Task => {
                let lines = self.log_lines();
                self.log
                    .current(lines.len())
                    .and_then(|i| lines.get(i))
                    .map(|l| l.text.clone())
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

    fn click(&mut self, x: u16, y: u16) {
        if self.showing != Screen::Main {
            return self.click_screen(x, y);
        }
        let areas = self.areas();
        let Some(pane) = areas.pane_at(x, y) else {
            return;
        };
        self.focus = pane;
        let Some(r) = areas.of(pane) else {
            return;
        };
        let row = y.saturating_sub(r.y + 1) as usize;
        match pane {
            Pane::Workflows => {
                let rows = self.visible_workflows();
                if y > r.y
                    && let Some(&i) = rows.get(self.workflows_offset + row)
                {
                    self.select_workflow(i);
                }
            }
            Pane::History => {
                // The same offset the history pane draws with.
                let h = r.height.saturating_sub(2) as usize;
                let offset = self.history_selected.saturating_sub(h.saturating_sub(1));
                if y > r.y && offset + row < self.history.len() {
                    self.history_selected = offset + row;
                }
            }
            Pane::Graph => {
                let view = self.view;
                if let Some(e) = self.entries.get_mut(self.selected) {
                    // The pane's first inside lines are its header (two with an error hint).
                    let head = super::ui::header_height(e) as u16;
                    match view {
                        GraphView::List | GraphView::Timeline => {
                            if y > r.y + head {
                                e.graph.select_row(
                                    e.graph.list_offset + (y - r.y - 1 - head) as usize,
                                );
                            }
                        }
                        GraphView::Canvas => {
                            let (sx, sy) = e.graph.scroll;
                            let cx = sx + x.saturating_sub(r.x + 1) as u32;
                            let cy = sy + y.saturating_sub(r.y + 1 + head) as u32;
                            let hit = e
                                .graph
                                .layout
                                .as_ref()
                                .and_then(|l| l.canvas(e.graph.zoom))
                                .and_then(|c| c.node_at(cx, cy));
                            if let Some(n) = hit {
                                e.graph.selected = Some(e.graph.model.nodes[n].id.clone());
                            }
                        }
                    }
                }
            }
            Pane::Inspector => {}
        }
    }

    /// A click on the inbox's or the browser's list selects the row under it (the same
    /// rows and offset the drawing uses).
    fn click_screen(&mut self, x: u16, y: u16) {
        let inbox = self.showing == Screen::Inbox;
        let s = super::areas::screen_areas(self.screen.0, self.screen.1, inbox);
        let Some(l) = s.list.filter(|l| l.contains((x, y).into())) else {
            return;
        };
        let header = if inbox { 0 } else { 1 };
        let rows = (l.height.saturating_sub(2) as usize).saturating_sub(header);
        let Some(row) = (y.saturating_sub(l.y + 1) as usize).checked_sub(header) else {
            return;
        };
        if y == l.y || row >= rows {
            return;
        }
        if inbox {
            if self.inbox.editing {
                return;
            }
            let offset = self.inbox.selected.saturating_sub(rows.saturating_sub(1));
            if offset + row < self.inbox.requests.len() {
                self.inbox.selected = offset + row;
            }
        } else {
            let offset = self
                .checkpoints
                .selected
                .saturating_sub(rows.saturating_sub(1));
            if offset + row < self.checkpoints.list.len() {
                self.checkpoints.selected = offset + row;
                self.want_checkpoint_detail();
            }
        }
    }

    /// Apply something the runtime reported.
    pub fn on_msg(&mut self, msg: Msg) {
        // Listings come from polls: they redraw only when something changed.
        let msg = match msg {
            Msg::Inbox(listed) => {
                self.dirty |= self.on_inbox(listed);
                return;
            }
            Msg::Checkpoints(list) => {
                self.dirty |= self.on_checkpoints(list);
                return;
            }
            Msg::Fleet(result) => {
                self.dirty |= self.on_fleet(result);
                return;
            }
            other => other,
        };
        self.dirty = true;
        match msg {
            Msg::Discovered(paths) => {
                let first_batch = self.entries.is_empty();
                let mut watch = Vec::new();
                for p in paths {
                    if self.entries.iter().any(|e| e.path.as_ref() == Some(&p)) {
                        continue;
                    }
                    let mut entry = WorkflowEntry::from_path(p.clone());
                    entry.generation = 1;
                    self.entries.push(entry);
                    self.effects.push(Effect::Load {
                        index: self.entries.len() - 1,
                        path: p.clone(),
                        generation: 1,
                    });
                    watch.push(p);
                }
                if !watch.is_empty() {
                    self.effects.push(Effect::Watch(watch));
                }
                if first_batch && let Some(&top) = self.visible_workflows().first() {
                    self.select_workflow(top);
                } else {
                    self.keep_workflow_visible();
                }
            }
            Msg::Loaded {
                index,
                generation,
                result,
            } => self.on_loaded(index, generation, result),
            Msg::FilesChanged(paths) => {
                let mut unknown = Vec::new();
                for p in paths {
                    let mut known = false;
                    for (index, e) in self.entries.iter_mut().enumerate() {
                        if e.depends_on(&p) {
                            known = true;
                            if let Some(path) = e.path.clone() {
                                e.generation += 1;
                                self.effects.push(Effect::Load {
                                    index,
                                    path,
                                    generation: e.generation,
                                });
                            }
                        }
                    }
                    if !known && p.extension().is_some_and(|x| x == "ron") {
                        unknown.push(p);
                    }
                }
                if !unknown.is_empty() {
                    self.effects.push(Effect::Discover(unknown));
                }
            }
            Msg::Engine(events) => self.on_engine(events),
            Msg::Layout { index, layout } => {
                if let Some(e) = self.entries.get_mut(index)
                    && layout.key == super::graph::layout::structure_key(&e.graph.canvas_view)
                {
                    let first = e.graph.layout.is_none() || !e.graph.panned;
                    e.graph.layout = Some(layout);
                    if index == self.selected {
                        // A fresh layout opens on the run's active part; after the user
                        // panned, only the selection is kept in view.
                        if first {
                            self.centre_canvas_on_active();
                        } else {
                            self.keep_canvas_selection_visible();
                        }
                    }
                }
            }
            Msg::Channel { run_id, values } => {
                self.snapshot_pending = false;
                if let Some(&i) = self.runs.get(&run_id)
                    && let Some(r) = self.entries.get_mut(i).and_then(|e| e.run.as_mut())
                    && r.run_id == run_id
                    && r.is_active()
                {
                    r.channel = values;
                }
            }
            Msg::History(records) => {
                self.history = records;
                self.history_selected = self
                    .history_selected
                    .min(self.history.len().saturating_sub(1));
            }
            Msg::RecordedRun { key, events } => self.on_recorded(key, events),
            Msg::RunEnded(run_id) => {
                self.runs.remove(&run_id);
            }
            Msg::Problem(text) => self.message = Some((text, Level::Error)),
            Msg::Inbox(_) | Msg::Checkpoints(_) | Msg::Fleet(_) => {}
            Msg::Attached(result) => self.on_attached(*result),
            Msg::Requeued(result) => self.on_requeued(result),
            Msg::Responded { id, result } => self.on_responded(id, result),
            Msg::CheckpointDetail { path, result } => self.on_checkpoint_detail(path, result),
            Msg::ResumePrepared { checkpoint, result } => {
                self.on_resume_prepared(checkpoint, result)
            }
            Msg::RunNotStarted { run_id, error } => self.on_run_not_started(run_id, error),
            Msg::CheckpointTaken { run_id, result } => self.on_checkpoint_taken(run_id, result),
        }
    }

    fn on_loaded(&mut self, index: usize, generation: u64, result: Result<Loaded, Failed>) {
        let Some(e) = self.entries.get_mut(index) else {
            return;
        };
        if generation != e.generation {
            return;
        }
        // An error on the status line about this file is stale once the file is read again
        // (fixed, or broken differently: the graph pane shows its current error).
        let label = e.label();
        if matches!(&self.message, Some((text, Level::Error)) if text.contains(&label)) {
            self.message = None;
        }
        let mut watch = Vec::new();
        match result {
            Ok(loaded) => {
                e.state = LoadState::Ready;
                e.diagnostics = loaded.warnings;
                e.setup = loaded.setup;
                if loaded.scripts != e.scripts {
                    watch.extend(loaded.scripts.iter().cloned());
                    e.scripts = loaded.scripts;
                }
                e.set_workflow(loaded.workflow);
            }
            Err(f) => {
                e.state = if f.missing {
                    LoadState::Deleted
                } else {
                    LoadState::Invalid
                };
                e.diagnostics = f.diagnostics;
            }
        }
        if !watch.is_empty() {
            self.effects.push(Effect::Watch(watch));
        }
        if index == self.selected {
            self.want_layout();
            self.keep_selection_visible();
        }
    }

    fn on_engine(&mut self, events: Vec<RunEvent>) {
        let mut finished = Vec::new();
        let mut refresh_inbox = false;
        let mut refresh_checkpoints = false;
        let mut changed_entries = Vec::new();
        for ev in &events {
            let Some(&index) = self.runs.get(&*ev.run_id) else {
                continue;
            };
            let Some(e) = self.entries.get_mut(index) else {
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
                graflow_engine::EventKind::FeedbackRequested { task, prompt, .. } => {
                    let text = if self.showing == Screen::Inbox {
                        format!("⚑ {task} asks: {prompt}")
                    } else {
                        let key = self.key_name(ActionId::ToggleInbox);
                        format!("⚑ {task} asks: {prompt} — {key} opens the inbox")
                    };
                    self.message = Some((text, Level::Info));
                    refresh_inbox = true;
                }
                graflow_engine::EventKind::FeedbackAnswered { .. } => refresh_inbox = true,
                graflow_engine::EventKind::CheckpointSaved { .. } => refresh_checkpoints = true,
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
            let Some(e) = self.entries.get_mut(index) else {
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
                        graflow_engine::RunStatus::Succeeded
                        | graflow_engine::RunStatus::Paused => Level::Info,
                        _ => Level::Error,
                    };
                    (t, lvl)
                }
                _ => continue,
            };
            // Open the failed task's log, as a developer wants it.
            if let Some(failed) = run.failed_task.clone()
                && index == self.selected
            {
                e.graph.select_id(&failed);
                self.tab = Tab::Task;
                self.log.follow = true;
                self.log.errors_only = false;
            }
            self.message = Some((text, level));
            self.effects.push(Effect::RefreshHistory);
            self.snapshot_pending = false;
            refresh_inbox_after = true;
        }
        if refresh_inbox_after {
            self.want_inbox();
        }
        if changed_entries.contains(&self.selected) {
            self.want_layout();
        }
        self.want_snapshot();
        if self.focus == Pane::Graph {
            self.keep_selection_visible();
        }
    }

    fn on_recorded(&mut self, key: String, events: Vec<Value>) {
        let Some(record) = self.history.iter().find(|r| r.key == key).cloned() else {
            return;
        };
        let run_id = record.run_id.clone();
        let index = self
            .entries
            .iter()
            .position(|e| record.file.is_some() && e.path == record.file)
            .or_else(|| self.entries.iter().position(|e| e.name == record.workflow));
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
        if self.entries[index].is_running() {
            self.message = Some((
                "that workflow is running; the recorded run shows once it ends".into(),
                Level::Info,
            ));
            return;
        }
        let e = &mut self.entries[index];
        let mut run = RunView::new(run_id.clone(), SystemTime::UNIX_EPOCH);
        let mut added = Vec::new();
        for v in &events {
            if let Ok(ev) = RunEvent::deserialize(v) {
                added.extend(run.apply(&ev).added);
            }
        }
        if let Some(wf) = e.workflow.clone() {
            e.run = None;
            e.set_workflow(wf);
        }
        for (id, by) in &added {
            e.graph.add_dynamic(id, by);
        }
        e.run = Some(run);
        self.select_workflow(index);
        self.focus = Pane::Graph;
        self.message = Some((format!("showing recorded run {run_id}"), Level::Info));
    }

    /// The heartbeat: time moved on (running clocks redraw; the channel tab re-reads a
    /// running run's channel).
    pub fn tick(&mut self, now: SystemTime) {
        self.now = now;
        if self.clocks_running() {
            self.dirty = true;
            self.want_snapshot();
        }
        if self.wants_inbox_poll() {
            self.want_inbox();
        }
        if self.showing == Screen::Inbox {
            // The requests' ages move on.
            self.dirty = true;
        }
        if self.showing == Screen::Checkpoints {
            self.want_checkpoints();
        }
        if self.showing == Screen::Fleet {
            self.want_fleet(false);
        }
    }

    /// Whether something on screen changes with time alone (a running task's clock).
    pub fn clocks_running(&self) -> bool {
        self.entries.iter().any(WorkflowEntry::is_running)
    }

    /// Whether the heartbeat should run: clocks, or a light poll of the inbox (open, or
    /// something waits for an answer) and of the open checkpoint browser. Idle with nothing
    /// pending, nothing wakes up.
    pub fn needs_heartbeat(&self) -> bool {
        self.clocks_running()
            || self.wants_inbox_poll()
            || matches!(self.showing, Screen::Checkpoints | Screen::Fleet)
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

/// The registry id of an action, for the read-only check.
fn registry_id(a: &Action) -> Option<ActionId> {
    match a {
        Action::Run => Some(ActionId::Run),
        Action::Cancel => Some(ActionId::Cancel),
        Action::CheckpointNow => Some(ActionId::CheckpointNow),
        Action::AnswerRequest => Some(ActionId::AnswerRequest),
        Action::Approve => Some(ActionId::Approve),
        Action::Reject => Some(ActionId::Reject),
        Action::SubmitAnswer | Action::AnswerKey(_) | Action::AnswerPaste(_) => {
            Some(ActionId::SubmitAnswer)
        }
        Action::Resume => Some(ActionId::Resume),
        Action::AttachRun => Some(ActionId::AttachRun),
        Action::RequeueDeadLetter => Some(ActionId::RequeueDeadLetter),
        _ => None,
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
