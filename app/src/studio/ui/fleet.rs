//! The fleet view: the fleet's runs (selectable; Enter follows one), then its workers with
//! their state, slots, counts and heartbeat age, throughput and latency sparklines, and its
//! queues with depth, in-flight and dead-lettered entries, and the newest dead letters (Tab
//! selects them; a held one can be requeued). Only the visible rows are built.

use graflow_engine::distributed::watch::{DeadLetter, QueueView, RunSummary, WorkerView};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{placeholder, screen_block};
use crate::studio::app::App;
use crate::studio::areas::screen_areas;
use crate::studio::screens::fleet::FleetView;
use crate::studio::theme::Theme;
use crate::text::{duration_coarse, pad, truncate};

/// Draw the fleet view.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let s = screen_areas(area.width, area.height, false);
    if let Some(l) = s.list {
        draw_runs(frame, l, app);
    }
    if let Some(d) = s.detail {
        draw_fleet(frame, d, app);
    }
}

fn age(ms: u64) -> String {
    duration_coarse(std::time::Duration::from_millis(ms))
}

fn draw_runs(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let f = &app.fleet;
    let n = f.data.as_ref().map_or(0, |d| d.runs.len());
    let title = format!(
        " Fleet runs ({n}) — {} ",
        f.attached.as_deref().unwrap_or("not attached")
    );
    let inner = screen_block(frame, area, app, title, true);
    if inner.height == 0 {
        return;
    }
    let Some(data) = &f.data else {
        let text = f
            .error
            .clone()
            .unwrap_or_else(|| "reading the fleet…".into());
        placeholder(frame, inner, theme, vec![Line::from(text)]);
        return;
    };
    if data.runs.is_empty() {
        placeholder(
            frame,
            inner,
            theme,
            vec![Line::from(
                "no run on this fleet yet: `graflow run FILE --backend URL` starts one",
            )],
        );
        return;
    }
    let w = inner.width as usize;
    let mut lines = vec![Line::from(Span::styled(
        truncate(
            &format!(
                "{:<22} {:<7} {:<10} {:>7} {:>6}  {}",
                "run", "state", "status", "events", "age", "workflow (host)"
            ),
            w,
        ),
        theme.muted(),
    ))];
    let h = (inner.height as usize).saturating_sub(1);
    let offset = f.selected.saturating_sub(h.saturating_sub(1));
    for (i, r) in data.runs.iter().enumerate().skip(offset).take(h) {
        let style = if i == f.selected && !f.on_letters {
            theme.selection()
        } else {
            run_style(theme, r)
        };
        let text = format!(
            "{} {:<7} {:<10} {:>7} {:>6}  {} ({})",
            pad(&r.run_id, 22),
            r.state,
            r.status.as_deref().unwrap_or(""),
            r.events,
            age(data.fleet.at_ms.saturating_sub(r.started_ms)),
            r.workflow,
            r.host
        );
        lines.push(Line::from(Span::styled(truncate(&text, w), style)));
    }
    frame.render_widget(Paragraph::new(lines).style(theme.text()), inner);
}

fn run_style(theme: &Theme, r: &RunSummary) -> Style {
    match (r.state.as_str(), r.status.as_deref()) {
        ("live", _) => theme.accent(),
        ("stale", _) => theme.warning(),
        (_, Some("failed" | "cancelled")) => theme.error(),
        _ => theme.text(),
    }
}

/// A sparkline of the newest `width` samples, scaled to their maximum.
pub fn sparkline(
    samples: impl DoubleEndedIterator<Item = u64> + ExactSizeIterator,
    width: usize,
) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let skip = samples.len().saturating_sub(width);
    let shown: Vec<u64> = samples.skip(skip).collect();
    let max = shown.iter().copied().max().unwrap_or(0).max(1);
    shown
        .iter()
        .map(|&v| BARS[((v * 7 + max / 2) / max).min(7) as usize])
        .collect()
}

fn draw_fleet(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let f = &app.fleet;
    let Some(data) = &f.data else {
        return;
    };
    let workers = &data.fleet.workers;
    let lost = workers.iter().filter(|w| w.state == "lost").count();
    let busy: usize = workers
        .iter()
        .filter(|w| w.state != "lost")
        .filter_map(|w| w.record.as_ref())
        .map(|r| r.busy)
        .sum();
    let slots: usize = workers
        .iter()
        .filter(|w| w.state != "lost")
        .filter_map(|w| w.record.as_ref())
        .map(|r| r.concurrency)
        .sum();
    let title = format!(
        " Workers ({}; {lost} lost; {busy}/{slots} slots busy) ",
        workers.len()
    );
    let inner = screen_block(frame, area, app, title, false);
    if inner.height == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines = Vec::new();
    lines.push(spark_line(theme, f, w));
    lines.push(Line::from(Span::styled(
        truncate(
            &format!(
                "{:<40} {:<9} {:>9} {:>9} {:>7} {:>6}  {:<14} {}",
                "worker", "state", "busy", "processed", "failed", "beat", "queues", "host"
            ),
            w,
        ),
        theme.muted(),
    )));
    let letters = f.dead_letters();
    let queue_rows = data.fleet.queues.len()
        + 2
        + if letters.is_empty() {
            0
        } else {
            letters.len() + 2
        };
    let room = (inner.height as usize)
        .saturating_sub(lines.len() + queue_rows.min(14))
        .max(1);
    // The line that says how many more there are takes one row.
    let shown = if workers.len() > room {
        (room - 1).max(1)
    } else {
        room
    };
    for wk in workers.iter().take(shown) {
        lines.push(worker_line(theme, wk, w));
    }
    if workers.len() > shown {
        lines.push(Line::from(Span::styled(
            format!("… and {} more workers", workers.len() - shown),
            theme.muted(),
        )));
    }
    if workers.is_empty() {
        lines.push(Line::from(Span::styled(
            "no worker: `graflow worker --redis URL` starts one",
            theme.muted(),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        truncate(
            &format!(
                "{:<20} {:>9} {:>9} {:>6}  newest dead letter",
                "queue", "depth", "in flight", "dead"
            ),
            w,
        ),
        theme.muted(),
    )));
    for q in &data.fleet.queues {
        lines.extend(queue_lines(theme, q, w));
    }
    if !letters.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            truncate(
                &format!(
                    "{:<12} {:<24} {:<22} {:<13} error",
                    "dead letter", "attempt", "run", "hold"
                ),
                w,
            ),
            theme.muted(),
        )));
        let h = inner.height as usize;
        // Keep the selected letter on screen.
        let room = h.saturating_sub(lines.len()).max(1);
        let offset = if f.on_letters {
            f.letter.saturating_sub(room - 1)
        } else {
            0
        };
        for (i, (queue, letter)) in letters.iter().enumerate().skip(offset).take(room) {
            let selected = f.on_letters && i == f.letter;
            lines.push(letter_line(
                theme,
                queue,
                letter,
                data.fleet.at_ms,
                selected,
                w,
            ));
        }
    }
    let h = inner.height as usize;
    lines.truncate(h);
    frame.render_widget(Paragraph::new(lines).style(theme.text()), inner);
}

fn spark_line(theme: &Theme, f: &FleetView, w: usize) -> Line<'static> {
    let width = (w.saturating_sub(40) / 2).clamp(4, 60);
    let rate = f.throughput.back().copied().unwrap_or(0);
    let lat = f.latency.back().copied().unwrap_or(0);
    Line::from(vec![
        Span::styled("throughput ", theme.muted()),
        Span::styled(
            sparkline(f.throughput.iter().copied(), width),
            theme.accent(),
        ),
        Span::raw(format!(" {rate}/s  ")),
        Span::styled("latency ", theme.muted()),
        Span::styled(sparkline(f.latency.iter().copied(), width), theme.accent()),
        Span::raw(format!(" {lat}ms")),
    ])
}

fn worker_line(theme: &Theme, wk: &WorkerView, w: usize) -> Line<'static> {
    let (busy, processed, failed, queues, host) = match &wk.record {
        Some(r) => (
            format!("{}/{}", r.busy, r.concurrency),
            r.processed.to_string(),
            r.failed.to_string(),
            r.queues.join(","),
            r.host.clone(),
        ),
        None => ("?".into(), "?".into(), "?".into(), "?".into(), "?".into()),
    };
    let text = format!(
        "{} {:<9} {:>9} {:>9} {:>7} {:>6}  {} {}",
        pad(&wk.id, 40),
        wk.state,
        busy,
        processed,
        failed,
        age(wk.beat_age_ms),
        pad(&queues, 14),
        host
    );
    let style = match wk.state.as_str() {
        "lost" => theme.error(),
        "draining" => theme.warning(),
        "busy" => theme.accent(),
        _ => theme.text(),
    };
    Line::from(Span::styled(truncate(&text, w), style))
}

fn letter_line(
    theme: &Theme,
    queue: &str,
    letter: &DeadLetter,
    now_ms: u64,
    selected: bool,
    w: usize,
) -> Line<'static> {
    let hold = match letter.held_until_ms {
        Some(until) => format!("held {} left", age(until.saturating_sub(now_ms))),
        None => "failed".into(),
    };
    let text = format!(
        "{} {} {} {:<13} {}",
        pad(queue, 12),
        pad(&letter.attempt, 24),
        pad(&letter.run, 22),
        hold,
        letter.error
    );
    let style = if selected {
        theme.selection()
    } else if letter.held_until_ms.is_some() {
        theme.warning()
    } else {
        theme.muted()
    };
    Line::from(Span::styled(truncate(&text, w), style))
}

fn queue_lines(theme: &Theme, q: &QueueView, w: usize) -> Vec<Line<'static>> {
    let newest = q
        .dead_letters
        .first()
        .map(|d| format!("{} of run {}: {}", d.attempt, d.run, d.error))
        .unwrap_or_default();
    let text = format!(
        "{} {:>9} {:>9} {:>6}  {}",
        pad(&q.name, 20),
        q.depth,
        q.in_flight,
        q.dead,
        newest
    );
    let style = if q.dead > 0 {
        theme.warning()
    } else {
        theme.text()
    };
    vec![Line::from(Span::styled(truncate(&text, w), style))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_their_maximum_and_keep_the_newest() {
        assert_eq!(sparkline([0u64, 4, 8].into_iter(), 10), "▁▅█");
        assert_eq!(sparkline([9u64, 0, 0].into_iter(), 2), "▁▁");
        assert_eq!(sparkline(std::iter::empty(), 5), "");
    }
}
