//! The workflows pane (files with their validation state) and the run history pane.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{entry_glyph, pane, placeholder};
use crate::studio::action::ActionId;
use crate::studio::app::{App, Pane};
use crate::studio::model::TaskStatus;
use crate::text::{self, truncate};

/// Draw the workflows list.
pub fn draw_workflows(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let rows = app.visible_workflows();
    let title = match &app.workflows.filter {
        Some(f) => format!(
            " Workflows ({}/{}) /{f} ",
            rows.len(),
            app.workflows.entries.len()
        ),
        None => format!(" Workflows ({}) ", app.workflows.entries.len()),
    };
    let inner = pane(frame, area, app, Pane::Workflows, Line::from(title));
    if rows.is_empty() && !app.workflows.entries.is_empty() {
        placeholder(
            frame,
            inner,
            theme,
            vec![
                Line::from("no workflow matches the filter"),
                Line::from(format!("{} shows them all", app.key_name(ActionId::Back))),
            ],
        );
        return;
    }
    if app.workflows.entries.is_empty() {
        placeholder(
            frame,
            inner,
            theme,
            vec![
                Line::from("no workflow files found"),
                Line::from("(*.ron with a flow)"),
            ],
        );
        return;
    }
    let w = inner.width as usize;
    let mut lines = Vec::new();
    for (i, e) in rows
        .iter()
        .map(|&i| (i, &app.workflows.entries[i]))
        .skip(app.workflows.offset)
        .take(inner.height as usize)
    {
        let (glyph, style) = entry_glyph(theme, e);
        let mut spans = vec![Span::styled(format!("{glyph} "), style)];
        let label = e.label();
        let note = match e.first_error() {
            Some(err) => err,
            None => {
                let n = e.graph.model.len();
                if n > 0 {
                    text::plural(n, "node")
                } else {
                    String::new()
                }
            }
        };
        let room = w.saturating_sub(2);
        let name = truncate(&label, room);
        let rest = room.saturating_sub(text::width(&name) + 1);
        spans.push(Span::raw(name));
        if rest > 3 && !note.is_empty() {
            let style = if e.first_error().is_some() {
                theme.error()
            } else {
                theme.muted()
            };
            spans.push(Span::styled(format!(" {}", truncate(&note, rest)), style));
        }
        let mut line = Line::from(spans);
        if i == app.workflows.selected {
            line = line.style(theme.selection());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Draw the run history.
pub fn draw_history(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let title = Line::from(format!(" Runs ({}) ", app.history.records.len()));
    let inner = pane(frame, area, app, Pane::History, title);
    if app.history.records.is_empty() {
        placeholder(
            frame,
            inner,
            theme,
            if app.settings.read_only {
                vec![Line::from("no runs yet")]
            } else {
                vec![
                    Line::from("no runs yet"),
                    Line::from(format!(
                        "{} runs the selected workflow",
                        app.key_name(ActionId::Run)
                    )),
                ]
            },
        );
        return;
    }
    let h = inner.height as usize;
    let offset = app.history.offset(h);
    let w = inner.width as usize;
    let mut lines = Vec::new();
    for (i, r) in app.history.records.iter().enumerate().skip(offset).take(h) {
        let (glyph, status) = match r.status {
            Some(graflow_engine::RunStatus::Succeeded) => ("✓", TaskStatus::Succeeded),
            Some(graflow_engine::RunStatus::Cancelled) => ("⊘", TaskStatus::Cancelled),
            Some(graflow_engine::RunStatus::Paused) => ("⏸", TaskStatus::Retrying),
            Some(graflow_engine::RunStatus::Failed) => ("✗", TaskStatus::Failed),
            None => ("?", TaskStatus::Pending),
        };
        // RFC 3339: keep "MM-DD HH:MM".
        let when = r.started.get(5..16).unwrap_or(&r.started).replace('T', " ");
        // A run resumed from a checkpoint: `↪` before its name.
        let resumed = if r.resumed_from.is_some() { "↪ " } else { "" };
        let text = truncate(
            &format!("{resumed}{} {when}", r.workflow),
            w.saturating_sub(2),
        );
        let mut line = Line::from(vec![
            Span::styled(format!("{glyph} "), theme.status(status)),
            Span::raw(text),
        ]);
        if i == app.history.selected && app.focus == Pane::History {
            line = line.style(theme.selection());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
