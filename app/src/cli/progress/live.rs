//! The live view of `graflow run` on a terminal: log lines scroll above a status block that is
//! redrawn in place — one line per running or recently finished task, and the counts.
//! No raw mode and no alternate screen, so an interrupted run leaves an ordinary terminal.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossterm::cursor::MoveUp;
use crossterm::queue;
use crossterm::terminal::{self, Clear, ClearType};
use graflow_engine::{EventKind, RunEvent};

use super::plain::line;
use super::{Printer, short, summary};
use crate::cli::style::Style;
use crate::studio::model::run::{RunView, TaskRun, TaskStatus};
use crate::text::{self, duration_ms};

/// Redraws a status block under the scrolling log. The run's state is the studio's run model
/// ([`RunView`]) folded from the same events; the printer only remembers when each task last
/// changed, to show the most recent first.
pub struct LivePrinter {
    style: Style,
    started: Instant,
    run: RunView,
    /// The tasks shown, with when their state last changed.
    touched: HashMap<Arc<str>, Instant>,
    pending: Vec<String>,
    drawn: u16,
    last_draw: Option<Instant>,
    header: String,
    out: std::io::Stdout,
}

impl LivePrinter {
    /// Draw on standard output with `style`.
    pub fn new(style: Style) -> Self {
        LivePrinter {
            style,
            started: Instant::now(),
            run: RunView::new("", SystemTime::now()),
            touched: HashMap::new(),
            pending: Vec::new(),
            drawn: 0,
            last_draw: None,
            header: String::new(),
            out: std::io::stdout(),
        }
    }

    fn block(&self, width: usize, height: usize) -> Vec<String> {
        let counts = self.run.counts(self.run.tasks.keys().map(|k| &**k));
        let elapsed = duration_ms(self.started.elapsed().as_secs_f64() * 1000.0);
        let waiting = match counts.waiting {
            0 => String::new(),
            n => format!(", {n} waiting"),
        };
        let mut lines = vec![clip(
            &self.style.bold(&format!(
                "{} — {} running{waiting}, {} done, {} failed — {elapsed}",
                self.header, counts.running, counts.succeeded, counts.failed
            )),
            width,
        )];
        let room = height.saturating_sub(3).max(1);
        let mut rows: Vec<(&Arc<str>, &TaskRun, Instant)> = self
            .touched
            .iter()
            .filter_map(|(id, at)| self.run.tasks.get(id).map(|t| (id, t, *at)))
            .collect();
        // Running first, then waiting, then the most recently changed.
        rows.sort_by_key(|(_, t, at)| {
            let rank = match t.status() {
                TaskStatus::Running => 0,
                TaskStatus::Waiting => 1,
                _ => 2,
            };
            (rank, std::cmp::Reverse(*at))
        });
        let hidden = rows.len().saturating_sub(room);
        let now = SystemTime::now();
        let since = |t: SystemTime| {
            duration_ms(now.duration_since(t).unwrap_or_default().as_secs_f64() * 1000.0)
        };
        for (task, t, _) in rows.into_iter().take(room) {
            let text = match t.status() {
                TaskStatus::Waiting => {
                    let (when, detail) = t
                        .waiting
                        .as_ref()
                        .map_or((now, ""), |w| (w.since, w.detail.as_str()));
                    self.style.warning(&format!(
                        "  ◷ {task}  waiting {}  {}",
                        since(when),
                        one_line(detail)
                    ))
                }
                TaskStatus::Succeeded => {
                    let cycles = if t.cycle > 1 {
                        format!("  ×{}", t.cycle)
                    } else {
                        String::new()
                    };
                    let result = t.result.as_ref().map(|r| short(r, 40)).unwrap_or_default();
                    self.style.ok(&format!(
                        "  ✓ {task}  {}{cycles}  {result}",
                        t.last_ms.map(duration_ms).unwrap_or_default()
                    ))
                }
                TaskStatus::Failed | TaskStatus::Retrying | TaskStatus::Cancelled => {
                    let error = t.errors.back().map_or("", |(_, e)| e.as_str());
                    self.style.error(&format!(
                        "  ✗ {task}  {}{}",
                        one_line(error),
                        if t.status() == TaskStatus::Retrying {
                            " (retrying)"
                        } else {
                            ""
                        }
                    ))
                }
                TaskStatus::Running | TaskStatus::Pending | TaskStatus::Skipped => {
                    let mut s = format!(
                        "  ⠿ {task}  {}",
                        t.running_since().map(since).unwrap_or_default()
                    );
                    if t.cycle > 1 {
                        s.push_str(&format!("  cycle {}", t.cycle));
                    }
                    if t.attempt > 0 {
                        s.push_str(&format!("  attempt {}", t.attempt));
                    }
                    self.style.info(&s)
                }
            };
            lines.push(clip(&text, width));
        }
        if hidden > 0 {
            lines.push(clip(
                &self
                    .style
                    .dim(&format!("  … {} more", text::plural(hidden, "task"))),
                width,
            ));
        }
        lines
    }

    fn redraw(&mut self, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .last_draw
                .is_some_and(|t| now - t < Duration::from_millis(50))
            && self.pending.is_empty()
        {
            return;
        }
        self.last_draw = Some(now);
        let (w, h) = terminal::size()
            .map(|(w, h)| (w as usize, h as usize))
            .unwrap_or((100, 30));
        let block = self.block(w, h);
        let mut out = self.out.lock();
        if self.drawn > 0 {
            let _ = queue!(out, MoveUp(self.drawn), Clear(ClearType::FromCursorDown));
        }
        for p in self.pending.drain(..) {
            let _ = writeln!(out, "\r{p}");
        }
        for l in &block {
            let _ = writeln!(out, "\r{l}");
        }
        let _ = out.flush();
        self.drawn = block.len() as u16;
    }
}

/// A text on one row: line breaks become ` ⏎ `, so each line of the block is one terminal
/// row and the block can be redrawn in place.
fn one_line(text: &str) -> String {
    text.trim_end()
        .replace("\r\n", " ⏎ ")
        .replace(['\n', '\r'], " ⏎ ")
}

/// Cut a line to `width` visible cells (escape sequences do not count), on one row.
fn clip(text: &str, width: usize) -> String {
    text::truncate_ansi(&one_line(text), width)
}

impl Printer for LivePrinter {
    fn event(&mut self, event: &RunEvent) {
        match &event.kind {
            EventKind::RunStarted { workflow, .. } => {
                self.header = format!("{workflow} ({})", event.run_id)
            }
            EventKind::TaskWaiting { task, .. }
            | EventKind::TaskStarted { task, .. }
            | EventKind::TaskSucceeded { task, .. } => {
                self.touched.insert(task.clone(), Instant::now());
            }
            EventKind::TaskFailed { task, .. } => {
                self.touched.insert(task.clone(), Instant::now());
                if let Some(l) = line(event, &self.style) {
                    self.pending.push(l);
                }
            }
            EventKind::RunFinished { .. } => {
                // The last frame shows the tasks as they were when the run ended.
                let elapsed = self.started.elapsed().as_secs_f64() * 1000.0;
                self.redraw(true);
                if let Some(s) = summary(event, &self.style, elapsed) {
                    let _ = writeln!(self.out, "{s}");
                }
                self.drawn = 0;
            }
            EventKind::TaskLog { .. }
            | EventKind::GroupFinished { .. }
            | EventKind::GraphChanged { .. }
            | EventKind::CheckpointSaved { .. }
            | EventKind::FeedbackRequested { .. }
            | EventKind::FeedbackAnswered { .. }
            | EventKind::EventsDropped { .. }
            | EventKind::Nested { .. } => {
                if let Some(l) = line(event, &self.style) {
                    self.pending.push(l);
                }
            }
            EventKind::GroupStarted { .. } => {}
        }
        self.run.apply(event);
    }

    fn flush(&mut self) {
        if self.drawn > 0 || !self.header.is_empty() {
            self.redraw(false);
        }
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }

    fn wants_ticks(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_line_is_one_row() {
        let mut p = LivePrinter::new(Style::stdout());
        p.header = "a-very-long-workflow-name (0123456789abcdef)".into();
        for (task, error, will_retry) in [
            ("bad", "first line\nsecond line\r\nthird line", true),
            ("データ取得", "変換できません: 入力が空です", false),
        ] {
            p.event(&started(task, 1, 0));
            p.event(&event(EventKind::TaskFailed {
                worker: None,
                task: task.into(),
                error: error.into(),
                attempt: 0,
                will_retry,
            }));
        }
        p.event(&started("ok", 3, 1));
        for width in [7, 20, 21, 40, 100] {
            for line in p.block(width, 30) {
                assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
                let visible = line
                    .split('\x1b')
                    .enumerate()
                    .map(|(i, part)| {
                        let shown = if i == 0 {
                            part
                        } else {
                            part.split_once('m').map_or("", |(_, t)| t)
                        };
                        text::width(shown)
                    })
                    .sum::<usize>();
                assert!(visible <= width, "{width}: {line:?}");
            }
        }
    }

    fn event(kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            ts: SystemTime::now(),
            kind,
        }
    }

    fn started(task: &str, cycle: u32, attempt: u32) -> RunEvent {
        event(EventKind::TaskStarted {
            task: task.into(),
            cycle,
            attempt,
        })
    }

    #[test]
    fn rows_show_the_run_models_task_states() {
        let mut p = LivePrinter::new(Style::stdout());
        p.header = "wf (r)".into();
        for cycle in 1..=3 {
            p.event(&started("loop", cycle, 0));
            p.event(&event(EventKind::TaskSucceeded {
                worker: None,
                task: "loop".into(),
                result: graflow_engine::Value::from("東京"),
                duration_ms: 1234.0,
                cycle,
            }));
        }
        p.event(&started("next", 1, 2));
        let block = p.block(100, 30).join("\n");
        assert!(block.contains("1 running, 1 done, 0 failed"), "{block}");
        assert!(block.contains("✓ loop  1.2s  ×3  \"東京\""), "{block}");
        assert!(block.contains("⠿ next"), "{block}");
        assert!(block.contains("attempt 2"), "{block}");
        // Running rows come first.
        let next = block.find("⠿ next").unwrap_or(usize::MAX);
        let done = block.find("✓ loop").unwrap_or(0);
        assert!(next < done, "{block}");
    }

    #[test]
    fn waiting_tasks_show_with_their_reason_and_are_counted() {
        let mut p = LivePrinter::new(Style::stdout());
        p.header = "wf (r)".into();
        for task in ["a", "b"] {
            p.event(&event(EventKind::TaskWaiting {
                task: task.into(),
                cycle: 1,
                attempt: 0,
                reason: "pool_slots".into(),
                pool: Some("api".into()),
                detail: "pool 'api': 4 of 4 slots in use, 1 needed".into(),
            }));
        }
        let block = p.block(100, 30).join("\n");
        assert!(block.contains("0 running, 2 waiting"), "{block}");
        assert!(block.contains("◷ a  waiting"), "{block}");
        assert!(block.contains("pool 'api': 4 of 4 slots in use"), "{block}");
        p.event(&event(EventKind::TaskStarted {
            task: "a".into(),
            cycle: 1,
            attempt: 0,
        }));
        let block = p.block(100, 30).join("\n");
        assert!(block.contains("1 running, 1 waiting"), "{block}");
        assert!(block.contains("⠿ a"), "{block}");
    }
}
