//! The studio's full screens besides the workflows: the approvals inbox and the checkpoint
//! browser. Each has its state and its part of the app's update here; `ui/` draws them. A
//! worker-fleet view joins [`Screen`] the same way.

pub mod checkpoints;
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
}
