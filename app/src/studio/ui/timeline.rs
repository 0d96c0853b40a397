//! The run as a timeline: one row per task in list order, one bar per attempt, drawn with
//! eighth blocks for sub-cell precision and coloured by outcome.

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::list::{header, title};
use super::{pane, placeholder};
use crate::studio::action::ActionId;
use crate::studio::app::{App, Pane};
use crate::studio::model::TaskStatus;
use crate::studio::model::run::Attempt;
use crate::text::{duration_ms, pad};

const LEFT_EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// The cells of one bar from `fs` to `fe` (in cell units): (cell, glyph).
pub fn bar_cells(fs: f64, fe: f64) -> Vec<(usize, char)> {
    let fs = fs.max(0.0);
    let fe = fe.max(fs);
    let first = fs.floor() as usize;
    let last = (fe.ceil() as usize).max(first + 1);
    let mut out = Vec::with_capacity(last - first);
    for i in first..last {
        let lo = (i as f64).max(fs);
        let hi = ((i + 1) as f64).min(fe);
        let cover = (hi - lo).max(0.0);
        let starts_inside = fs > i as f64 + 1e-9;
        let ch = if cover >= 0.999 {
            '█'
        } else if starts_inside && hi >= (i + 1) as f64 - 1e-9 {
            if cover >= 0.5 { '▐' } else { '▕' }
        } else {
            let k = ((cover * 8.0).round() as usize).clamp(1, 8);
            LEFT_EIGHTHS[k - 1]
        };
        out.push((i, ch));
    }
    out
}

fn secs(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Draw the timeline view.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let inner = pane(frame, area, app, Pane::Graph, title(app, "timeline"));
    let Some(e) = app.entry() else {
        placeholder(
            frame,
            inner,
            theme,
            vec![Line::from("no workflow selected")],
        );
        return;
    };
    if inner.height == 0 {
        return;
    }
    if super::draw_without_graph(frame, inner, theme, e) {
        return;
    }
    let Some(run) = &e.run else {
        let mut lines = header(app, e, "");
        let text = if app.settings.read_only {
            "no run yet: its timeline shows here once it runs".to_string()
        } else {
            format!(
                "no run yet: {} runs the workflow, then its timeline shows here",
                app.key_name(ActionId::Run)
            )
        };
        lines.push(Line::from(Span::styled(text, theme.muted())));
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    let total = run.elapsed(app.now).max(0.001);
    let name_w = (inner.width as usize / 3).clamp(6, 24);
    let bar_w = (inner.width as usize).saturating_sub(name_w + 1).max(1);
    let axis = format!(
        "0 … {}  ({} per cell)",
        duration_ms(total * 1000.0),
        duration_ms(total * 1000.0 / bar_w as f64)
    );
    let mut lines = header(app, e, &axis);
    let rows_h = (inner.height as usize).saturating_sub(lines.len());
    let g = &e.graph;
    let selected = g.selected_index();
    let end_of = |a: &Attempt| a.end.unwrap_or(app.now);
    for row in g.lanes.rows.iter().skip(g.list_offset).take(rows_h) {
        let node = &g.model.nodes[row.node];
        let mut cells: Vec<(char, TaskStatus)> = vec![(' ', TaskStatus::Pending); bar_w];
        if let Some(t) = run.task(&node.id) {
            for a in &t.attempts {
                let fs = secs(run.started, a.start) / total * bar_w as f64;
                let fe = secs(run.started, end_of(a)) / total * bar_w as f64;
                let status = match &a.outcome {
                    None => TaskStatus::Running,
                    Some(Ok(())) => TaskStatus::Succeeded,
                    Some(Err(_)) if a.end.is_some() && t.attempts.back() != Some(a) => {
                        TaskStatus::Retrying
                    }
                    Some(Err(_)) => TaskStatus::Failed,
                };
                for (i, ch) in bar_cells(fs, fe) {
                    if let Some(c) = cells.get_mut(i) {
                        *c = (ch, status);
                    }
                }
            }
        }
        let label = format!(
            "{}{}",
            "  ".repeat(row.depth as usize),
            if node.is_group {
                format!("◆ {}", node.id)
            } else {
                node.id.to_string()
            }
        );
        let mut spans = vec![Span::styled(
            format!("{} ", pad(&label, name_w)),
            if node.is_group {
                theme.group()
            } else {
                theme.text()
            },
        )];
        // Merge runs of equal style into one span.
        let mut cur = String::new();
        let mut cur_status = None;
        for (ch, st) in cells {
            if cur_status != Some(st) && !cur.is_empty() {
                spans.push(Span::styled(
                    std::mem::take(&mut cur),
                    theme.status(cur_status.unwrap_or(TaskStatus::Pending)),
                ));
            }
            cur_status = Some(st);
            cur.push(ch);
        }
        if !cur.is_empty() {
            spans.push(Span::styled(
                cur,
                theme.status(cur_status.unwrap_or(TaskStatus::Pending)),
            ));
        }
        let mut line = Line::from(spans);
        if Some(row.node) == selected {
            line = line.style(theme.selection());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_use_eighths_at_their_edges() {
        assert_eq!(bar_cells(0.0, 2.0), vec![(0, '█'), (1, '█')]);
        assert_eq!(bar_cells(0.0, 1.5), vec![(0, '█'), (1, '▌')]);
        assert_eq!(bar_cells(0.5, 2.0), vec![(0, '▐'), (1, '█')]);
        assert_eq!(bar_cells(3.0, 3.0), vec![(3, '▏')]);
    }
}
