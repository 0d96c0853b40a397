//! The studio's full screens besides the workflows: the approvals inbox and the checkpoint
//! browser, the fleet view. Each has its state and its part of the app's update here; `ui/`
//! draws them. The app hands them the actions and messages that are theirs through
//! `App::on_screen_action` and `App::on_screen_msg`, and its heartbeat through
//! `App::tick_screens`.

use super::action::Action;
use super::app::{App, Msg};
use inbox::InboxAction;

pub mod checkpoints;
pub mod fleet;
pub mod inbox;

/// What fills the screen above the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// Workflows, run history, graph and inspector.
    #[default]
    Main,
    /// The approvals inbox: pending human-feedback requests, answered inline.
    Inbox,
    /// The checkpoint browser: saved run states, looked at and resumed.
    Checkpoints,
    /// The fleet view: the fleet's runs, workers and queues.
    Fleet,
}

impl App {
    /// Carry out an action of the screens (opening them, answering, resuming, the fleet's);
    /// any other action comes back.
    pub(crate) fn on_screen_action(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::ToggleInbox => self.toggle_inbox(),
            Action::ToggleCheckpoints => self.toggle_checkpoints(),
            Action::ToggleFleet => self.toggle_fleet(),
            Action::AttachRun => self.attach_selected(),
            Action::SwitchFleetList => self.fleet.switch_list(),
            Action::RequeueDeadLetter => self.requeue_selected(),
            Action::CheckpointNow => self.checkpoint_now(),
            Action::AnswerRequest => self.on_inbox_action(InboxAction::Answer),
            Action::Approve => self.on_inbox_action(InboxAction::Decide(true)),
            Action::Reject => self.on_inbox_action(InboxAction::Decide(false)),
            Action::SubmitAnswer => self.on_inbox_action(InboxAction::Submit),
            Action::ToggleOption => self.on_inbox_action(InboxAction::ToggleOption),
            Action::ToggleDecision => self.on_inbox_action(InboxAction::ToggleDecision),
            Action::AnswerKey(key) => self.on_inbox_action(InboxAction::Key(key)),
            Action::AnswerPaste(text) => self.on_inbox_action(InboxAction::Paste(text)),
            Action::Resume => self.resume_selected(),
            other => return Some(other),
        }
        None
    }

    /// Take a message for the screens; any other message comes back (to be drawn: every
    /// message but a listing redraws).
    pub(crate) fn on_screen_msg(&mut self, msg: Msg) -> Option<Msg> {
        // Listings come from polls: they redraw only when something changed.
        match msg {
            Msg::Inbox(listed) => self.dirty |= self.on_inbox(listed),
            Msg::Checkpoints(list) => self.dirty |= self.on_checkpoints(list),
            Msg::Fleet(result) => self.dirty |= self.on_fleet(result),
            other => {
                self.dirty = true;
                match other {
                    Msg::Attached(result) => self.on_attached(*result),
                    Msg::Requeued(result) => self.on_requeued(result),
                    Msg::Responded { id, result } => self.on_responded(id, result),
                    Msg::CheckpointDetail { path, result } => {
                        self.on_checkpoint_detail(path, result)
                    }
                    Msg::ResumePrepared { checkpoint, result } => {
                        self.on_resume_prepared(checkpoint, result)
                    }
                    Msg::RunNotStarted { run_id, error } => self.on_run_not_started(run_id, error),
                    Msg::CheckpointTaken { run_id, result } => {
                        self.on_checkpoint_taken(run_id, result)
                    }
                    other => return Some(other),
                }
            }
        }
        None
    }

    /// The heartbeat for the screens: the inbox is polled while it is open or something
    /// waits for an answer (its requests' ages move on), the open browser and fleet view are
    /// read again.
    pub(crate) fn tick_screens(&mut self) {
        if self.wants_inbox_poll() {
            self.want_inbox();
        }
        if self.showing == Screen::Inbox {
            self.dirty = true;
        }
        if self.showing == Screen::Checkpoints {
            self.want_checkpoints();
        }
        if self.showing == Screen::Fleet {
            self.want_fleet(false);
        }
    }

    /// Whether the screens need the heartbeat: the inbox is polled (see
    /// [`App::wants_inbox_poll`]), or the checkpoint browser or the fleet view is open.
    pub fn screens_need_heartbeat(&self) -> bool {
        self.wants_inbox_poll() || matches!(self.showing, Screen::Checkpoints | Screen::Fleet)
    }
}
