//! The live view of `graflow run` on a terminal: log lines scroll above a status block that is
//! redrawn in place — one line per running or recently finished task, and the counts.
//! No raw mode and no alternate screen, so an interrupted run leaves an ordinary terminal.

use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::cursor::MoveUp;
use crossterm::queue;
use crossterm::terminal::{self, Clear, ClearType};
use graflow_engine::{EventKind, RunEvent};

use super::plain::line;
use super::{Printer, short, summary};
use crate::cli::style::Style;
use crate::text::{self, duration_ms};

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Ready, waiting for its pool's slots or a rate limit.
    Waiting {
        since: Instant,
        detail: String,
    },
    Running {
        since: Instant,
        cycle: u32,
        attempt: u32,
    },
    Succeeded {
        ms: f64,
        cycle: u32,
        result: String,
    },
    Failed {
        error: String,
        retrying: bool,
    },
}

struct Row {
    task: String,
    state: State,
    touched: Instant,
}

/// Redraws a status block under the scrolling log.
pub struct LivePrinter {
    style: Style,
    started: Instant,
    rows: Vec<Row>,
    pending: Vec<String>,
    drawn: u16,
    last_draw: Option<Instant>,
    header: String,
    counts: (u64, u64, u64),
    /// Tasks waiting for a pool or a rate limit now.
    waiting: u64,
    out: std::io::Stdout,
}

impl LivePrinter {
    /// Draw on standard output with `style`.
    pub fn new(style: Style) -> Self {
        LivePrinter {
            style,
            started: Instant::now(),
            rows: Vec::new(),
            pending: Vec::new(),
            drawn: 0,
            last_draw: None,
            header: String::new(),
            counts: (0, 0, 0),
            waiting: 0,
            out: std::io::stdout(),
        }
    }

    fn row(&mut self, task: &str) -> &mut Row {
        let i = match self.rows.iter().position(|r| r.task == task) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    task: task.to_string(),
                    state: State::Running {
                        since: Instant::now(),
                        cycle: 1,
                        attempt: 0,
                    },
                    touched: Instant::now(),
                });
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[i];
        row.touched = Instant::now();
        row
    }

    fn block(&self, width: usize, height: usize) -> Vec<String> {
        let (ok, failed, running) = self.counts;
        let elapsed = duration_ms(self.started.elapsed().as_secs_f64() * 1000.0);
        let waiting = match self.waiting {
            0 => String::new(),
            n => format!(", {n} waiting"),
        };
        let mut lines = vec![clip(
            &self.style.bold(&format!(
                "{} — {running} running{waiting}, {ok} done, {failed} failed — {elapsed}",
                self.header
            )),
            width,
        )];
        let room = height.saturating_sub(3).max(1);
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        // Running first, then waiting, then the most recently changed.
        rows.sort_by_key(|r| {
            let rank = match r.state {
                State::Running { .. } => 0,
                State::Waiting { .. } => 1,
                _ => 2,
            };
            (rank, std::cmp::Reverse(r.touched))
        });
        let hidden = rows.len().saturating_sub(room);
        for r in rows.into_iter().take(room) {
            let text = match &r.state {
                State::Waiting { since, detail } => self.style.warning(&format!(
                    "  ◷ {}  waiting {}  {}",
                    r.task,
                    duration_ms(since.elapsed().as_secs_f64() * 1000.0),
                    one_line(detail)
                )),
                State::Running {
                    since,
                    cycle,
                    attempt,
                } => {
                    let mut s = format!(
                        "  ⠿ {}  {}",
                        r.task,
                        duration_ms(since.elapsed().as_secs_f64() * 1000.0)
                    );
                    if *cycle > 1 {
                        s.push_str(&format!("  cycle {cycle}"));
                    }
                    if *attempt > 0 {
                        s.push_str(&format!("  attempt {attempt}"));
                    }
                    self.style.info(&s)
                }
                State::Succeeded { ms, cycle, result } => {
                    let cycles = if *cycle > 1 {
                        format!("  ×{cycle}")
                    } else {
                        String::new()
                    };
                    self.style.ok(&format!(
                        "  ✓ {}  {}{cycles}  {result}",
                        r.task,
                        duration_ms(*ms)
                    ))
                }
                State::Failed { error, retrying } => self.style.error(&format!(
                    "  ✗ {}  {}{}",
                    r.task,
                    one_line(error),
                    if *retrying { " (retrying)" } else { "" }
                )),
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
            EventKind::TaskWaiting { task, detail, .. } => {
                let row = self.row(task);
                let since = match &row.state {
                    State::Waiting { since, .. } => Some(*since),
                    _ => None,
                };
                row.state = State::Waiting {
                    since: since.unwrap_or_else(Instant::now),
                    detail: detail.clone(),
                };
                if since.is_none() {
                    self.waiting += 1;
                }
            }
            EventKind::TaskStarted {
                task,
                cycle,
                attempt,
            } => {
                self.counts.2 += 1;
                let row = self.row(task);
                let was_waiting = matches!(row.state, State::Waiting { .. });
                row.state = State::Running {
                    since: Instant::now(),
                    cycle: *cycle,
                    attempt: *attempt,
                };
                if was_waiting {
                    self.waiting = self.waiting.saturating_sub(1);
                }
            }
            EventKind::TaskSucceeded {
                task,
                duration_ms,
                cycle,
                result,
                ..
            } => {
                self.counts.0 += 1;
                self.counts.2 = self.counts.2.saturating_sub(1);
                self.row(task).state = State::Succeeded {
                    ms: *duration_ms,
                    cycle: *cycle,
                    result: short(result, 40),
                };
            }
            EventKind::TaskFailed {
                task,
                error,
                will_retry,
                ..
            } => {
                self.counts.1 += u64::from(!will_retry);
                self.counts.2 = self.counts.2.saturating_sub(1);
                self.row(task).state = State::Failed {
                    error: error.clone(),
                    retrying: *will_retry,
                };
                if let Some(l) = line(event, &self.style) {
                    self.pending.push(l);
                }
            }
            EventKind::RunFinished { .. } => {
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
            | EventKind::EventsDropped { .. } => {
                if let Some(l) = line(event, &self.style) {
                    self.pending.push(l);
                }
            }
            EventKind::GroupStarted { .. } => {}
        }
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
        p.row("bad").state = State::Failed {
            error: "first line\nsecond line\r\nthird line".into(),
            retrying: true,
        };
        p.row("ok").state = State::Running {
            since: Instant::now(),
            cycle: 3,
            attempt: 1,
        };
        p.row("データ取得").state = State::Failed {
            error: "変換できません: 入力が空です".into(),
            retrying: false,
        };
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
            ts: std::time::SystemTime::UNIX_EPOCH,
            kind,
        }
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
