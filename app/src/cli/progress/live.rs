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
use super::{Printer, millis, short, summary};
use crate::cli::style::Style;

#[derive(Debug, Clone, PartialEq)]
enum State {
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
        let elapsed = millis(self.started.elapsed().as_secs_f64() * 1000.0);
        let mut lines = vec![self.style.bold(&format!(
            "{} — {running} running, {ok} done, {failed} failed — {elapsed}",
            self.header
        ))];
        let room = height.saturating_sub(3).max(1);
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        // Running first, then the most recently changed.
        rows.sort_by_key(|r| {
            (
                !matches!(r.state, State::Running { .. }),
                std::cmp::Reverse(r.touched),
            )
        });
        let hidden = rows.len().saturating_sub(room);
        for r in rows.into_iter().take(room) {
            let text = match &r.state {
                State::Running {
                    since,
                    cycle,
                    attempt,
                } => {
                    let mut s = format!(
                        "  ⠿ {}  {}",
                        r.task,
                        millis(since.elapsed().as_secs_f64() * 1000.0)
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
                        millis(*ms)
                    ))
                }
                State::Failed { error, retrying } => self.style.error(&format!(
                    "  ✗ {}  {error}{}",
                    r.task,
                    if *retrying { " (retrying)" } else { "" }
                )),
            };
            lines.push(clip(&text, width));
        }
        if hidden > 0 {
            lines.push(self.style.dim(&format!("  … {hidden} more task(s)")));
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

/// Cut a line to `width` visible characters (escape sequences do not count).
fn clip(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut visible = 0;
    let mut in_escape = false;
    for c in text.chars() {
        if c == '\x1b' {
            in_escape = true;
        }
        if in_escape {
            out.push(c);
            if c == 'm' {
                in_escape = false;
            }
            continue;
        }
        if visible + 1 >= width {
            out.push('…');
            out.push_str("\x1b[0m");
            break;
        }
        out.push(c);
        visible += 1;
    }
    out
}

impl Printer for LivePrinter {
    fn event(&mut self, event: &RunEvent) {
        match &event.kind {
            EventKind::RunStarted { workflow, .. } => {
                self.header = format!("{workflow} ({})", event.run_id)
            }
            EventKind::TaskStarted {
                task,
                cycle,
                attempt,
            } => {
                self.counts.2 += 1;
                self.row(task).state = State::Running {
                    since: Instant::now(),
                    cycle: *cycle,
                    attempt: *attempt,
                };
            }
            EventKind::TaskSucceeded {
                task,
                duration_ms,
                cycle,
                result,
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
            | EventKind::FeedbackAnswered { .. } => {
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
