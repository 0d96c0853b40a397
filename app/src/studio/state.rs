//! The shell's shared vocabulary: the panes that take the focus, the overlays over them (the
//! key help and yes/no questions), how serious a status message is, and the options fixed at
//! start. The app and its components speak it; [`super::app`] re-exports it.

use std::path::PathBuf;

use super::action::Context;
use super::keymap::Keymap;
use super::theme::Theme;

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

    /// The next pane in focus order (or the one before).
    pub fn step(self, forward: bool) -> Pane {
        let n = Pane::ALL.len();
        let i = Pane::ALL.iter().position(|p| *p == self).unwrap_or(0);
        Pane::ALL[(i + if forward { 1 } else { n - 1 }) % n]
    }

    /// The keymap context of the pane.
    pub fn context(self) -> Context {
        match self {
            Pane::Workflows | Pane::History => Context::Workflows,
            Pane::Graph => Context::Graph,
            Pane::Inspector => Context::Inspector,
        }
    }
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

impl Settings {
    /// Mouse capture on or off; returns the news for the status line.
    pub fn toggle_mouse(&mut self) -> String {
        self.mouse = !self.mouse;
        let state = if self.mouse {
            "on"
        } else {
            "off (terminal selection works)"
        };
        format!("mouse {state}")
    }

    /// The next built-in theme (none when NO_COLOR is set); returns the news for the status
    /// line.
    pub fn cycle_theme(&mut self) -> String {
        if self.theme.monochrome {
            return "NO_COLOR is set: the studio uses no colour".into();
        }
        self.theme = self.theme.next_built_in();
        format!("theme: {}", self.theme.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_goes_round_both_ways() {
        assert_eq!(Pane::Workflows.step(true), Pane::History);
        assert_eq!(Pane::Workflows.step(false), Pane::Inspector);
        assert_eq!(Pane::Inspector.step(true), Pane::Workflows);
    }

    #[test]
    fn settings_say_what_changed() {
        let mut s = Settings::default();
        assert_eq!(s.toggle_mouse(), "mouse off (terminal selection works)");
        assert!(!s.mouse);
        let first = s.theme.name.clone();
        assert!(s.cycle_theme().starts_with("theme: "));
        assert_ne!(s.theme.name, first);
        s.theme = Theme::monochrome();
        assert!(s.cycle_theme().starts_with("NO_COLOR is set"));
    }
}
