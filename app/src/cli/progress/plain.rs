//! Plain lines, one per event that matters: for logs, pipes and CI.

use std::io::Write;
use std::time::Instant;

use graflow_engine::{EventKind, RunEvent};

use super::{Printer, short, summary};
use crate::cli::style::Style;
use crate::runsetup::{checkpoint_warn_bytes, human_bytes};
use crate::text;

/// Prints a line per event.
pub struct PlainPrinter {
    style: Style,
    started: Instant,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl PlainPrinter {
    /// Print to standard output with `style`.
    pub fn new(style: Style) -> Self {
        PlainPrinter {
            style,
            started: Instant::now(),
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }
}

/// The line an event prints as, if any (shared with the live view's scroll area).
pub fn line(event: &RunEvent, style: &Style) -> Option<String> {
    Some(match &event.kind {
        EventKind::RunStarted {
            workflow,
            start,
            resumed_from,
        } => style.bold(&match resumed_from {
            Some(from) => format!("run {} of '{workflow}' resumed from {from}", event.run_id),
            None => format!("run {} of '{workflow}' started at '{start}'", event.run_id),
        }),
        EventKind::TaskStarted {
            task,
            cycle,
            attempt,
        } => {
            let mut s = format!("[{task}] started");
            if *cycle > 1 {
                s.push_str(&format!(" (cycle {cycle})"));
            }
            if *attempt > 0 {
                s.push_str(&format!(" (attempt {attempt})"));
            }
            style.dim(&s)
        }
        EventKind::TaskWaiting { task, detail, .. } => {
            style.dim(&format!("[{task}] waiting: {detail}"))
        }
        EventKind::TaskLog {
            task, line, stream, ..
        } => {
            let text = format!("[{task}] | {line}");
            if matches!(stream, graflow_engine::LogStream::Stderr) {
                style.warning(&text)
            } else {
                text
            }
        }
        EventKind::TaskSucceeded {
            task,
            result,
            duration_ms,
            ..
        } => style.ok(&format!(
            "[{task}] succeeded in {} -> {}",
            text::duration_ms(*duration_ms),
            short(result, 80)
        )),
        EventKind::TaskFailed {
            task,
            error,
            attempt,
            will_retry,
            ..
        } => style.error(&format!(
            "[{task}] failed on attempt {attempt}: {error}{}",
            if *will_retry {
                format!("; retrying as attempt {}", attempt + 1)
            } else {
                String::new()
            }
        )),
        EventKind::GroupStarted { group, members } => style.dim(&format!(
            "group {group} started: {}",
            text::plural(members.len(), "member")
        )),
        EventKind::GroupFinished {
            group,
            policy,
            succeeded,
            failed,
            ok,
        } => {
            let mut s = format!(
                "group {group} ({}): {} succeeded, {} failed",
                graflow_engine::group::label_of_name(policy),
                succeeded.len(),
                failed.len()
            );
            for (id, msg) in failed {
                s.push_str(&format!("\n  {id}: {msg}"));
            }
            if *ok { style.ok(&s) } else { style.error(&s) }
        }
        EventKind::EventsDropped { count } => style.warning(&format!(
            "{count} events were dropped by a slow event stream"
        )),
        EventKind::GraphChanged { added, by } => {
            let ids: Vec<&str> = added.iter().map(|a| &**a).collect();
            style.info(&format!("+ {by} added {}", ids.join(", ")))
        }
        EventKind::CheckpointSaved {
            path,
            size_bytes,
            content_bytes,
        } => {
            let text = match content_bytes {
                Some(json) => format!(
                    "checkpoint saved: {path} ({}, zstd: {} of JSON)",
                    human_bytes(*size_bytes),
                    human_bytes(*json)
                ),
                None => format!("checkpoint saved: {path} ({})", human_bytes(*size_bytes)),
            };
            // The warning is about what the run holds, so a compressed checkpoint counts its JSON.
            if content_bytes.unwrap_or(*size_bytes).max(*size_bytes) > checkpoint_warn_bytes() {
                style.warning(&format!(
                    "{text}; this is large: keep big data outside the channel (files, object stores) and pass references"
                ))
            } else {
                style.info(&text)
            }
        }
        EventKind::FeedbackRequested {
            id,
            task,
            kind,
            prompt,
        } => style.warning(&format!(
            "[{task}] waits for {kind} feedback {id}: {prompt}"
        )),
        EventKind::FeedbackAnswered { id } => style.info(&format!("feedback {id} answered")),
        EventKind::RunFinished { .. } => return None,
        EventKind::Nested { path, event: inner } => {
            let at = path.iter().map(|p| &**p).collect::<Vec<_>>().join(" › ");
            match inner.as_ref() {
                EventKind::RunStarted { workflow, .. } => {
                    style.bold(&format!("{at} ▸ sub-run of '{workflow}' started"))
                }
                EventKind::RunFinished { status, error, .. } => {
                    let mut text = format!(
                        "{at} ▸ sub-run {}",
                        crate::studio::model::run::status_word(*status)
                    );
                    if let Some(e) = error {
                        text.push_str(&format!(": {e}"));
                    }
                    match status {
                        graflow_engine::RunStatus::Succeeded => style.ok(&text),
                        _ => style.error(&text),
                    }
                }
                other => {
                    let inner_event = RunEvent {
                        run_id: event.run_id.clone(),
                        ts: event.ts,
                        kind: other.clone(),
                    };
                    format!("{at} ▸ {}", line(&inner_event, style)?)
                }
            }
        }
    })
}

impl Printer for PlainPrinter {
    fn event(&mut self, event: &RunEvent) {
        let text = line(event, &self.style).or_else(|| {
            summary(
                event,
                &self.style,
                self.started.elapsed().as_secs_f64() * 1000.0,
            )
        });
        if let Some(text) = text {
            let _ = writeln!(self.out, "{text}");
        }
    }
    fn flush(&mut self) {
        let _ = self.out.flush();
    }
    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}
