//! The inspector's log component: how the selected task's log is shown (follow, wrap, errors
//! only, the search and the cursor; the search is typed in [`super::prompt`]) and the actions that change it. It owns that state; the
//! app hands it the lines shown and carries out what it returns.

use super::model::logbuf::LogLine;
use super::model::run::{TaskRun, matches};

/// The log pane's settings and cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogView {
    /// Stick to the end.
    pub follow: bool,
    /// Wrap long lines.
    pub wrap: bool,
    /// Only error lines.
    pub errors_only: bool,
    /// The submitted search (lower case).
    pub search: Option<String>,
    /// Selected line (index into the shown lines) when not following.
    pub cursor: usize,
}

/// What the log component is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAction {
    /// Stick to the end, or stop at the last line.
    ToggleFollow,
    /// Wrap long lines or not.
    ToggleWrap,
    /// Show only error lines, or all (back to the end either way).
    ToggleErrorsOnly,
    /// Move the cursor by this many lines (following again past the end).
    Move(i64),
    /// To the last line (following) or the first.
    ToEnd(bool),
    /// The next (or previous) line matching the search; from the end when `from_start`.
    FindMatch {
        /// Forward, else backward.
        forward: bool,
        /// Start from the end of the log rather than the cursor.
        from_start: bool,
    },
}

/// What the app should do after the log handled an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEffect {
    /// Nothing beyond the log's own state.
    None,
    /// Tell the user (an info message).
    Notice(String),
}

impl LogView {
    /// A log view that follows the end or not, and wraps or not.
    pub fn new(follow: bool, wrap: bool) -> Self {
        LogView {
            follow,
            wrap,
            errors_only: false,
            search: None,
            cursor: 0,
        }
    }

    /// The lines shown of a task's log (after the errors-only filter).
    pub fn shown<'a>(&self, task: Option<&'a TaskRun>) -> Vec<&'a LogLine> {
        let Some(task) = task else {
            return Vec::new();
        };
        task.log
            .lines()
            .iter()
            .filter(|l| !self.errors_only || l.is_error())
            .collect()
    }

    /// The line under the cursor among `n` shown (the last while following).
    pub fn current(&self, n: usize) -> Option<usize> {
        match n {
            0 => None,
            _ if self.follow => Some(n - 1),
            _ => Some(self.cursor.min(n - 1)),
        }
    }

    /// Do `action` over the `lines` shown.
    pub fn handle(&mut self, action: LogAction, lines: &[&LogLine]) -> LogEffect {
        let n = lines.len();
        match action {
            LogAction::ToggleFollow => {
                self.follow = !self.follow;
                if !self.follow {
                    self.cursor = n.saturating_sub(1);
                }
            }
            LogAction::ToggleWrap => self.wrap = !self.wrap,
            LogAction::ToggleErrorsOnly => {
                self.errors_only = !self.errors_only;
                self.cursor = 0;
                self.follow = true;
            }
            LogAction::Move(delta) => {
                if let Some(cur) = self.current(n) {
                    let next = (cur as i64 + delta).clamp(0, n as i64 - 1) as usize;
                    self.follow = next == n - 1 && delta > 0;
                    self.cursor = next;
                }
            }
            LogAction::ToEnd(end) => {
                let big = if end { i64::MAX / 4 } else { -(i64::MAX / 4) };
                self.handle(LogAction::Move(big), lines);
                self.follow = end;
            }
            LogAction::FindMatch {
                forward,
                from_start,
            } => return self.find(lines, forward, from_start),
        }
        LogEffect::None
    }

    fn find(&mut self, lines: &[&LogLine], forward: bool, from_start: bool) -> LogEffect {
        let Some(needle) = &self.search else {
            return LogEffect::None;
        };
        let n = lines.len();
        let Some(current) = self.current(n) else {
            return LogEffect::None;
        };
        let cur = match (from_start, forward) {
            (true, true) => n - 1,
            (true, false) => 0,
            (false, _) => current,
        };
        let found = (1..=n).find_map(|k| {
            let i = if forward {
                (cur + k) % n
            } else {
                (cur + n - k % n) % n
            };
            matches(&lines[i].text, needle).then_some(i)
        });
        match found {
            Some(i) => {
                self.cursor = i;
                self.follow = false;
                LogEffect::None
            }
            None => LogEffect::Notice(format!("no line matches '{needle}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graflow_engine::LogStream;

    fn task(lines: &[(&str, LogStream)]) -> TaskRun {
        let mut t = TaskRun::default();
        for (text, stream) in lines {
            t.log.push(*stream, text);
        }
        t
    }

    #[test]
    fn moves_stop_following_until_the_end() {
        let t = task(&[
            ("a", LogStream::Stdout),
            ("b", LogStream::Stdout),
            ("c", LogStream::Stdout),
        ]);
        let mut v = LogView::new(true, false);
        let lines = v.shown(Some(&t));
        assert_eq!(v.current(lines.len()), Some(2));
        v.handle(LogAction::Move(-1), &lines);
        assert!(!v.follow);
        assert_eq!(v.current(lines.len()), Some(1));
        v.handle(LogAction::ToEnd(false), &lines);
        assert_eq!(v.current(lines.len()), Some(0));
        v.handle(LogAction::Move(5), &lines);
        assert!(v.follow);
        assert_eq!(v.handle(LogAction::Move(1), &[]), LogEffect::None);
    }

    #[test]
    fn errors_only_filters_and_follows() {
        let t = task(&[("fine", LogStream::Stdout), ("bad", LogStream::Stderr)]);
        let mut v = LogView::new(false, false);
        v.cursor = 1;
        v.handle(LogAction::ToggleErrorsOnly, &[]);
        let lines = v.shown(Some(&t));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "bad");
        assert!(v.follow);
        assert_eq!(v.cursor, 0);
    }

    #[test]
    fn finds_matches_both_ways_and_says_when_none() {
        let t = task(&[
            ("row 1", LogStream::Stdout),
            ("row 2 ok", LogStream::Stdout),
            ("row 3", LogStream::Stdout),
            ("row 2 again", LogStream::Stdout),
        ]);
        let mut v = LogView::new(true, false);
        v.search = Some("row 2".into());
        let lines = v.shown(Some(&t));
        let find = |forward, from_start| LogAction::FindMatch {
            forward,
            from_start,
        };
        assert_eq!(v.handle(find(true, true), &lines), LogEffect::None);
        assert_eq!((v.cursor, v.follow), (1, false));
        v.handle(find(true, false), &lines);
        assert_eq!(v.cursor, 3);
        v.handle(find(false, false), &lines);
        assert_eq!(v.cursor, 1);
        v.search = Some("nowhere".into());
        assert_eq!(
            v.handle(find(true, false), &lines),
            LogEffect::Notice("no line matches 'nowhere'".into())
        );
        assert_eq!(v.cursor, 1);
    }
}
