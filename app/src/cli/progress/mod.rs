//! How `graflow run` shows a run: JSON lines (`--json`), a live view when standard output is a
//! terminal, plain lines otherwise. All three consume the same run events.

mod live;
mod plain;

use std::io::IsTerminal;
use std::io::Write;

use graflow_engine::{EventKind, RunEvent, RunStatus, Value};

pub use live::LivePrinter;
pub use plain::PlainPrinter;

use super::style::Style;
use crate::text::{self, duration_ms};

/// Shows run events.
pub trait Printer {
    /// Take one event.
    fn event(&mut self, event: &RunEvent);
    /// Take one event whose JSON line is already made (`line` is empty when it was not).
    fn event_line(&mut self, event: &RunEvent, line: &str) {
        let _ = line;
        self.event(event);
    }
    /// A batch of events was taken: a good moment to flush or redraw.
    fn flush(&mut self) {}
    /// The run ended; leave the terminal clean.
    fn finish(&mut self) {}
    /// Whether the view shows clocks that need a redraw while no event arrives.
    fn wants_ticks(&self) -> bool {
        false
    }
}

/// One JSON object per line.
pub struct JsonPrinter {
    out: std::io::BufWriter<std::io::Stdout>,
}

impl JsonPrinter {
    /// Print to standard output.
    pub fn new() -> Self {
        JsonPrinter {
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }
}

impl Printer for JsonPrinter {
    fn event(&mut self, event: &RunEvent) {
        let _ = writeln!(self.out, "{}", event.to_json_line());
    }
    fn event_line(&mut self, event: &RunEvent, line: &str) {
        if line.is_empty() {
            self.event(event);
        } else {
            let _ = writeln!(self.out, "{line}");
        }
    }
    fn flush(&mut self) {
        let _ = self.out.flush();
    }
    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// The printer for this invocation.
pub fn for_output(json: bool) -> Box<dyn Printer> {
    if json {
        Box::new(JsonPrinter::new())
    } else if std::io::stdout().is_terminal() {
        Box::new(LivePrinter::new(Style::stdout()))
    } else {
        Box::new(PlainPrinter::new(Style::stdout()))
    }
}

/// A value shortened to one line of at most `max` cells.
pub fn short(value: &Value, max: usize) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let line = text.lines().next().unwrap_or("");
    if text.contains('\n') {
        format!(
            "{}{}",
            text::cut(line, max.saturating_sub(1)),
            text::ELLIPSIS
        )
    } else {
        text::truncate(line, max)
    }
}

/// The closing line of a run: status, error and result.
pub fn summary(event: &RunEvent, style: &Style, elapsed_ms: f64) -> Option<String> {
    let EventKind::RunFinished {
        status,
        error,
        result,
        ..
    } = &event.kind
    else {
        return None;
    };
    let mut line = match status {
        RunStatus::Succeeded => style.ok(&format!("run succeeded in {}", duration_ms(elapsed_ms))),
        RunStatus::Failed => style.error(&format!("run failed after {}", duration_ms(elapsed_ms))),
        RunStatus::Cancelled => {
            style.warning(&format!("run cancelled after {}", duration_ms(elapsed_ms)))
        }
        RunStatus::Paused => {
            style.warning(&format!("run paused after {}", duration_ms(elapsed_ms)))
        }
    };
    if let Some(e) = error {
        line.push_str(&format!(": {e}"));
    }
    if let Some(r) = result {
        line.push_str(&format!("\nresult: {}", short(r, 200)));
    }
    Some(line)
}
