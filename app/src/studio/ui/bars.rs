//! The status line (messages and run state) and the hint bar (keys for the focused pane,
//! taken from the action registry and the effective keymap).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::studio::action::{Context, REGISTRY};
use crate::studio::app::{App, Level};
use crate::studio::model::RunPhase;

/// Draw the status line.
pub fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    if let Some(input) = app
        .log
        .input
        .as_ref()
        .filter(|_| app.prompt_for == crate::studio::app::Pane::Graph)
    {
        let line = Line::from(vec![
            Span::styled(" find node: /", theme.key()),
            Span::raw(input.clone()),
            Span::styled("█", theme.accent()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let line = match &app.message {
        Some((text, Level::Error)) => Line::from(Span::styled(format!(" {text}"), theme.error())),
        Some((text, Level::Info)) => Line::from(Span::styled(format!(" {text}"), theme.accent())),
        None => {
            let running = app
                .entries
                .iter()
                .filter(|e| e.run.as_ref().is_some_and(|r| r.phase == RunPhase::Running))
                .count();
            let invalid = app
                .entries
                .iter()
                .filter(|e| e.first_error().is_some())
                .count();
            let mut parts = vec![format!(" graflow studio · {} workflows", app.entries.len())];
            if invalid > 0 {
                parts.push(format!("{invalid} with errors"));
            }
            if running > 0 {
                parts.push(format!("{running} running"));
            }
            if app.settings.read_only {
                parts.push("read-only".into());
            }
            if !app.settings.mouse {
                parts.push("mouse off".into());
            }
            Line::from(Span::styled(parts.join(" · "), theme.muted()))
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The hints for the current context: (keys, short description).
pub fn hints(app: &App) -> Vec<(String, &'static str)> {
    let ctx = app.context();
    let contexts: &[Context] = match ctx {
        Context::Help | Context::Confirm => &[],
        _ => &[Context::Global],
    };
    let mut out = Vec::new();
    for a in REGISTRY {
        if !a.hint || !(a.context == ctx || contexts.contains(&a.context)) {
            continue;
        }
        if app.settings.read_only && a.mutating {
            continue;
        }
        let keys = app.settings.keymap.key_names(a);
        let Some(first) = keys.first() else {
            continue;
        };
        out.push((first.clone(), a.short));
    }
    if ctx == Context::Help {
        out.push(("esc".into(), "close"));
    }
    out
}

/// Draw the hint bar.
pub fn draw_hints(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1usize;
    // Pane-specific hints first, then the global ones.
    let mut list = hints(app);
    let ctx = app.context();
    list.sort_by_key(|(k, _)| {
        let pane_specific = REGISTRY
            .iter()
            .any(|a| a.context == ctx && app.settings.keymap.key_names(a).first() == Some(k));
        !pane_specific
    });
    for (key, desc) in list {
        let len = key.chars().count() + desc.chars().count() + 3;
        if used + len > area.width as usize {
            break;
        }
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::styled(format!(" {desc}  "), theme.muted()));
        used += len;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
