//! The main screen's panes as components: each owns its state, handles its own actions and
//! returns effects for the app to carry out, and is tested alone. The app lends them what
//! they look at but do not own (the selected workflow's entry, the room on screen).
//!
//! - [`workflows`]: the open workflows, the selection, the scroll and the filter;
//! - [`history`]: the state dir's recorded runs;
//! - [`graph`]: the graph's view and find, and the actions on the selected graph;
//! - [`inspector`]: the inspector's tab, scrolls and log (see [`crate::studio::log_view`]).

pub mod graph;
pub mod history;
pub mod inspector;
pub mod workflows;
