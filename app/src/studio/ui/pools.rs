//! The inspector's Pools tab: each pool's slots in use (a gauge), the tasks waiting for it,
//! and its bucket's rate; rate-limited queues below the pools.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::placeholder;
use crate::studio::app::App;
use crate::studio::model::pools::pool_rows;
use crate::text::{self, truncate};

/// The widest gauge drawn, in cells.
const GAUGE_MAX: u32 = 12;

/// Draw the Pools tab.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let Some(e) = app.entry() else {
        placeholder(frame, area, theme, vec![Line::from("no workflow selected")]);
        return;
    };
    let Some(wf) = e.workflow.as_ref() else {
        placeholder(
            frame,
            area,
            theme,
            vec![Line::from("the workflow is not loaded")],
        );
        return;
    };
    let rows = pool_rows(wf, e.run.as_ref());
    if rows.is_empty() {
        placeholder(
            frame,
            area,
            theme,
            vec![Line::from("this workflow has no pools or rate limits")],
        );
        return;
    }
    let w = area.width as usize;
    let name_w = rows
        .iter()
        .map(|r| text::width(&r.name))
        .max()
        .unwrap_or(4)
        .clamp(4, 20);
    let mut lines = vec![Line::from(Span::styled(
        truncate(
            &format!(
                "{} {:<22} {:>7}  rate",
                text::pad("pool", name_w),
                "slots in use",
                "waiting"
            ),
            w,
        ),
        theme.muted(),
    ))];
    for r in &rows {
        let slots = match r.size {
            Some(size) => {
                let cells = size.min(GAUGE_MAX);
                let full = (r.in_use * cells).div_ceil(size.max(1)).min(cells);
                format!(
                    "{}{} {}/{}",
                    "■".repeat(full as usize),
                    "□".repeat((cells - full) as usize),
                    r.in_use,
                    size
                )
            }
            None => "—".into(),
        };
        let waiting_style = if r.waiting.is_empty() {
            theme.muted()
        } else {
            theme.warning()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", text::pad(&r.name, name_w)), theme.accent()),
            Span::raw(format!("{} ", text::pad(&slots, 22))),
            Span::styled(format!("{:>7}", r.waiting.len()), waiting_style),
            Span::raw(format!("  {}", r.rate.as_deref().unwrap_or("—"))),
        ]));
    }
    let mut waiting: Vec<String> = Vec::new();
    for r in &rows {
        for t in &r.waiting {
            waiting.push(format!("◷ {t} ({})", r.name));
        }
    }
    if !waiting.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            truncate(&format!("waiting ({}, oldest first)", waiting.len()), w),
            theme.muted(),
        )));
        let room = (area.height as usize).saturating_sub(lines.len());
        let hidden = waiting.len().saturating_sub(room);
        let shown = if hidden > 0 {
            room.saturating_sub(1)
        } else {
            room
        };
        for t in waiting.iter().take(shown) {
            lines.push(Line::from(Span::styled(truncate(t, w), theme.warning())));
        }
        if hidden > 0 {
            lines.push(Line::from(Span::styled(
                truncate(&format!("… {} more", waiting.len() - shown), w),
                theme.muted(),
            )));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}
