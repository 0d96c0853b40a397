//! The studio's full screens besides the workflows: the approvals inbox and the checkpoint
//! browser, the fleet view. Each has its state and its part of the app's update here; `ui/`
//! draws them.

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
