//! The inspector pane as a component: which tab shows (the selected task with its log, the
//! run's channel, its event log, the workflow's pools), where each tab is scrolled, and
//! whether a channel snapshot is on its way. It owns that state and the log component; the app
//! hands it what the selected workflow shows (its run, the selected task) and carries out what
//! it returns.

use crate::studio::log_view::{LogAction, LogEffect, LogView};
use crate::studio::messages::Effect;
use crate::studio::model::RunView;
use crate::studio::model::logbuf::LogLine;
use crate::studio::model::run::TaskRun;

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

/// The inspector's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspector {
    /// The tab shown.
    pub tab: Tab,
    /// Event log: first row shown when not following.
    pub events_scroll: Option<usize>,
    /// Selected channel key (row).
    pub channel_selected: usize,
    /// The task tab's log.
    pub log: LogView,
    /// A channel snapshot is on its way.
    pub snapshot_pending: bool,
}

/// What the inspector shows now, lent by the app for one action.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shown<'a> {
    /// The run the selected workflow shows.
    pub run: Option<&'a RunView>,
    /// The selected task's state in that run.
    pub task: Option<&'a TaskRun>,
    /// Rows that one page of the pane holds.
    pub page: usize,
    /// The workflow has pools or rate-limited queues (the Pools tab shows).
    pub has_pools: bool,
}

/// What the inspector is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectorAction {
    /// The next tab (Pools only when the workflow has some).
    NextTab,
    /// Move through the tab shown by this many rows.
    Move(i64),
    /// To the end (or the start) of the tab shown.
    ToEnd(bool),
    /// Hand an action to the task tab's log.
    Log(LogAction),
    /// Show the selected task's detail, its log following.
    OpenTask,
    /// A run failed in the selected workflow: its failed task's whole log shows, following.
    ShowFailedTask,
    /// Another workflow was selected: its channel and events start at the top and the end.
    WorkflowChanged,
    /// A run starts in the selected workflow: its log and events follow.
    RunStarted,
}

/// What the app should do after the inspector handled an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectorEffect {
    /// Nothing beyond the inspector's own state.
    None,
    /// Tell the user (an info message).
    Notice(String),
}

impl Inspector {
    /// An inspector on its task tab, the log following its end or not and wrapping or not.
    pub fn new(follow: bool, wrap: bool) -> Self {
        Inspector {
            tab: Tab::Task,
            events_scroll: None,
            channel_selected: 0,
            log: LogView::new(follow, wrap),
            snapshot_pending: false,
        }
    }

    /// The log lines shown for `task` (after the errors-only filter).
    pub fn log_lines<'a>(&self, task: Option<&'a TaskRun>) -> Vec<&'a LogLine> {
        self.log.shown(task)
    }

    /// The log line under the cursor of `task`'s log, when there is one.
    pub fn current_line(&self, task: Option<&TaskRun>) -> Option<String> {
        let lines = self.log_lines(task);
        self.log
            .current(lines.len())
            .and_then(|i| lines.get(i))
            .map(|l| l.text.clone())
    }

    /// Do `action` over what is `shown`.
    pub fn handle(&mut self, action: InspectorAction, shown: Shown<'_>) -> InspectorEffect {
        match action {
            InspectorAction::NextTab => {
                self.tab = match self.tab {
                    Tab::Task => Tab::Channel,
                    Tab::Channel => Tab::Events,
                    Tab::Events if shown.has_pools => Tab::Pools,
                    Tab::Events | Tab::Pools => Tab::Task,
                };
            }
            InspectorAction::Move(delta) => return self.move_by(delta, shown),
            InspectorAction::ToEnd(end) => {
                if self.tab == Tab::Task {
                    return self.log_action(LogAction::ToEnd(end), shown.task);
                }
                let big = if end { i64::MAX / 4 } else { -(i64::MAX / 4) };
                return self.move_by(big, shown);
            }
            InspectorAction::Log(a) => return self.log_action(a, shown.task),
            InspectorAction::OpenTask => {
                self.tab = Tab::Task;
                self.log.follow = true;
            }
            InspectorAction::ShowFailedTask => {
                self.tab = Tab::Task;
                self.log.follow = true;
                self.log.errors_only = false;
            }
            InspectorAction::WorkflowChanged => {
                self.channel_selected = 0;
                self.events_scroll = None;
                self.log.follow = true;
            }
            InspectorAction::RunStarted => {
                self.log.follow = true;
                self.events_scroll = None;
            }
        }
        InspectorEffect::None
    }

    fn move_by(&mut self, delta: i64, shown: Shown<'_>) -> InspectorEffect {
        match self.tab {
            Tab::Task => return self.log_action(LogAction::Move(delta), shown.task),
            Tab::Channel => {
                let n = shown.run.map_or(0, |r| r.channel.len());
                self.channel_selected = (self.channel_selected as i64 + delta)
                    .clamp(0, n.saturating_sub(1) as i64)
                    as usize;
            }
            Tab::Events => {
                let n = shown.run.map_or(0, |r| r.events.len());
                let last_top = n.saturating_sub(shown.page);
                let cur = self.events_scroll.unwrap_or(last_top) as i64;
                let next = (cur + delta).clamp(0, last_top as i64) as usize;
                self.events_scroll = (next < last_top).then_some(next);
            }
            // The pools tab fits its pane; nothing scrolls.
            Tab::Pools => {}
        }
        InspectorEffect::None
    }

    fn log_action(&mut self, action: LogAction, task: Option<&TaskRun>) -> InspectorEffect {
        let lines = self.log.shown(task);
        match self.log.handle(action, &lines) {
            LogEffect::None => InspectorEffect::None,
            LogEffect::Notice(text) => InspectorEffect::Notice(text),
        }
    }

    /// A snapshot of `run`'s channel, when the channel tab shows a live run and none is on
    /// its way.
    pub fn want_snapshot(&mut self, run: Option<&RunView>) -> Option<Effect> {
        if self.tab != Tab::Channel || self.snapshot_pending {
            return None;
        }
        let run = run.filter(|r| r.is_active())?;
        self.snapshot_pending = true;
        Some(Effect::SnapshotChannel(run.run_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graflow_engine::{LogStream, Value};
    use std::time::SystemTime;

    fn run_with_channel(keys: usize) -> RunView {
        let mut r = RunView::new("r1", SystemTime::UNIX_EPOCH);
        for k in 0..keys {
            r.channel.insert(format!("k{k}"), Value::Null);
        }
        r
    }

    #[test]
    fn tabs_cycle_and_show_pools_only_when_there_are_some() {
        let mut i = Inspector::new(true, false);
        let mut seen = Vec::new();
        for _ in 0..4 {
            i.handle(InspectorAction::NextTab, Shown::default());
            seen.push(i.tab);
        }
        assert_eq!(seen, [Tab::Channel, Tab::Events, Tab::Task, Tab::Channel]);
        i.tab = Tab::Events;
        let pools = Shown {
            has_pools: true,
            ..Shown::default()
        };
        i.handle(InspectorAction::NextTab, pools);
        assert_eq!(i.tab, Tab::Pools);
    }

    #[test]
    fn channel_rows_stay_inside_the_channel() {
        let run = run_with_channel(3);
        let shown = Shown {
            run: Some(&run),
            ..Shown::default()
        };
        let mut i = Inspector::new(true, false);
        i.tab = Tab::Channel;
        i.handle(InspectorAction::Move(10), shown);
        assert_eq!(i.channel_selected, 2);
        i.handle(InspectorAction::ToEnd(false), shown);
        assert_eq!(i.channel_selected, 0);
        i.channel_selected = 2;
        i.handle(InspectorAction::WorkflowChanged, shown);
        assert_eq!(i.channel_selected, 0);
    }

    #[test]
    fn the_task_tab_moves_its_log_and_says_when_a_search_finds_nothing() {
        let mut task = TaskRun::default();
        for l in ["one", "two", "three"] {
            task.log.push(LogStream::Stdout, l);
        }
        let shown = Shown {
            task: Some(&task),
            ..Shown::default()
        };
        let mut i = Inspector::new(true, false);
        i.handle(InspectorAction::Move(-1), shown);
        assert_eq!(i.current_line(Some(&task)).as_deref(), Some("two"));
        i.handle(InspectorAction::ToEnd(false), shown);
        assert_eq!(i.current_line(Some(&task)).as_deref(), Some("one"));
        i.log.search = Some("nowhere".into());
        let find = LogAction::FindMatch {
            forward: true,
            from_start: false,
        };
        assert_eq!(
            i.handle(InspectorAction::Log(find), shown),
            InspectorEffect::Notice("no line matches 'nowhere'".into())
        );
        i.handle(InspectorAction::OpenTask, shown);
        assert!(i.log.follow);
        i.tab = Tab::Events;
        i.log.errors_only = true;
        i.handle(InspectorAction::ShowFailedTask, shown);
        assert!(i.tab == Tab::Task && !i.log.errors_only);
    }

    #[test]
    fn snapshots_are_asked_once_for_a_live_run_on_the_channel_tab() {
        let run = run_with_channel(1);
        let mut i = Inspector::new(true, false);
        assert!(
            i.want_snapshot(Some(&run)).is_none(),
            "not on the channel tab"
        );
        i.tab = Tab::Channel;
        assert!(matches!(
            i.want_snapshot(Some(&run)),
            Some(Effect::SnapshotChannel(id)) if id == "r1"
        ));
        assert!(i.want_snapshot(Some(&run)).is_none(), "one is on its way");
        assert!(i.snapshot_pending);
    }
}
