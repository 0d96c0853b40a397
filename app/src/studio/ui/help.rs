//! Overlays: the `?` help (every action of the registry with its effective keys, by
//! context) and the yes/no question.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};

use crate::studio::action::{Context, REGISTRY};
use crate::studio::app::{App, Overlay, Question};

/// The help text: one heading per context, one line per action.
pub fn help_lines(app: &App) -> Vec<Line<'static>> {
    let theme = &app.settings.theme;
    let mut lines = Vec::new();
    for ctx in Context::ALL {
        let entries: Vec<_> = REGISTRY
            .iter()
            .filter(|a| a.context == ctx && !(app.settings.read_only && a.mutating))
            .collect();
        if entries.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::from(Span::styled(
            ctx.name().to_string(),
            theme.accent(),
        )));
        for a in entries {
            let keys = app.settings.keymap.key_names(a).join(" ");
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<18}"), theme.key()),
                Span::raw(a.description.to_string()),
            ]));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Keys can be changed in config.ron in your config folder (~/.config/graflow/ on Linux): keys: {\"run\": [\"ctrl-r\"]}.",
        theme.muted(),
    )));
    lines
}

/// Draw the overlay, if one is open.
pub fn draw_overlay(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    match &app.overlay {
        None => {}
        Some(Overlay::Help { scroll }) => {
            let w = area.width.saturating_sub(4).min(78);
            let h = area.height.saturating_sub(2);
            if w < 10 || h < 3 {
                return;
            }
            let r = Rect::new(
                area.x + (area.width - w) / 2,
                area.y + (area.height - h) / 2,
                w,
                h,
            );
            frame.render_widget(Clear, r);
            let block = Block::new()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .border_style(theme.border(true))
                .title(Line::from(" Keys — esc closes, ↑↓ scroll ").style(theme.title(true)))
                .style(theme.text());
            let lines = help_lines(app);
            let max_scroll = (lines.len() as u16).saturating_sub(h.saturating_sub(2));
            frame.render_widget(
                Paragraph::new(lines)
                    .block(block)
                    .scroll(((*scroll).min(max_scroll), 0)),
                r,
            );
        }
        Some(Overlay::Confirm(q)) => {
            let text = match q {
                Question::CancelRun { run_id } => format!("Cancel run {run_id}?"),
                Question::ResumeChanged { file, .. } => format!(
                    "{} changed since the checkpoint. Resume with it as it is now?",
                    file.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_else(|| file.display().to_string())
                ),
                Question::ResumeAnswered { workflow, .. } => {
                    format!("Its run paused. Resume {workflow} from its checkpoint now?")
                }
                Question::QuitWhileRunning { workflows } => format!(
                    "{} running. Quit and cancel {}?",
                    workflows.join(", "),
                    if workflows.len() == 1 { "it" } else { "them" }
                ),
            };
            let w = (crate::text::width(&text) as u16 + 6)
                .max(20)
                .min(area.width);
            let h = 4.min(area.height);
            if h < 3 {
                return;
            }
            let r = Rect::new(
                area.x + area.width.saturating_sub(w) / 2,
                area.y + area.height.saturating_sub(h) / 2,
                w.min(area.width),
                h,
            );
            frame.render_widget(Clear, r);
            let block = Block::new()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .border_style(theme.error())
                .style(theme.text());
            let lines = vec![
                Line::from(text),
                Line::from(vec![
                    Span::styled("y", theme.key()),
                    Span::raw(" yes   "),
                    Span::styled("n", theme.key()),
                    Span::raw(" no"),
                ]),
            ];
            frame.render_widget(Paragraph::new(lines).block(block).centered(), r);
        }
    }
}
