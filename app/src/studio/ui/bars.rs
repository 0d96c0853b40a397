//! The status line (messages and run state) and the hint bar (keys for the focused pane,
//! taken from the action registry and the effective keymap).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use graflow_engine::hitl::FeedbackKind;

use crate::studio::action::{ActionId, Context, REGISTRY};
use crate::studio::app::{App, Level, Pane, on_screens};
use crate::studio::model::RunPhase;
use crate::text;

/// The pending-requests badge: its text and whether something waits.
pub fn badge(app: &App) -> (String, bool) {
    match app.pending_requests() {
        0 => ("⚑ 0".into(), false),
        n => (format!("⚑ {n} waiting"), true),
    }
}

fn badge_span(app: &App) -> Span<'static> {
    let theme = &app.settings.theme;
    let (text, waiting) = badge(app);
    let style = if waiting {
        theme.warning().add_modifier(Modifier::BOLD)
    } else {
        theme.muted()
    };
    Span::styled(format!(" {text} "), style)
}

/// Without a status line (tiny terminals), the badge sits in the top right corner.
pub fn draw_badge_corner(frame: &mut Frame, area: Rect, app: &App) {
    let span = badge_span(app);
    let w = (span.width() as u16).min(area.width);
    if w == 0 || area.height == 0 {
        return;
    }
    let r = Rect::new(area.x + area.width - w, area.y, w, 1);
    frame.render_widget(Paragraph::new(Line::from(span)), r);
}

/// Draw the status line, with the badge at its right end.
pub fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let span = badge_span(app);
    let w = (span.width() as u16).min(area.width);
    let badge_area = Rect::new(area.x + area.width - w, area.y, w, 1);
    frame.render_widget(Paragraph::new(Line::from(span)), badge_area);
    let area = Rect::new(area.x, area.y, area.width - w, 1);
    draw_status_text(frame, area, app);
}

fn draw_status_text(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let prompt = [
        (Pane::Workflows, " filter workflows: /"),
        (Pane::Graph, " find node: /"),
    ]
    .into_iter()
    .find_map(|(pane, what)| app.prompt.text_for(pane).map(|t| (what, t)));
    if let Some((what, input)) = prompt {
        let line = Line::from(vec![
            Span::styled(what, theme.key()),
            Span::raw(input.to_string()),
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
                .workflows
                .entries
                .iter()
                .filter(|e| e.run.as_ref().is_some_and(|r| r.phase == RunPhase::Running))
                .count();
            let invalid = app
                .workflows
                .entries
                .iter()
                .filter(|e| e.first_error().is_some())
                .count();
            let n = app.workflows.entries.len();
            let mut parts = vec![format!(" graflow studio · {}", text::plural(n, "workflow"))];
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
    let global = match ctx {
        Context::Help | Context::Confirm | Context::Answer => |_: ActionId| false,
        Context::Inbox | Context::Checkpoints | Context::Fleet => on_screens,
        _ => |_: ActionId| true,
    };
    let form = app.inbox.form.as_ref();
    let mut out = Vec::new();
    for a in REGISTRY {
        let shown = if a.context == ctx {
            // In an answer, only the keys that fit its kind; nothing to answer or resume
            // without requests or checkpoints.
            match a.id {
                ActionId::AnswerRequest => !app.inbox.requests.is_empty(),
                // Approve and reject only where there is a yes/no question.
                ActionId::Approve | ActionId::Reject => app
                    .inbox
                    .selected_request()
                    .is_some_and(|r| r.spec.kind == FeedbackKind::Approval),
                ActionId::Resume => !app.checkpoints.list.is_empty(),
                ActionId::ToggleOption => {
                    form.is_some_and(|f| f.kind == FeedbackKind::MultiSelection)
                }
                ActionId::ToggleDecision => form.is_some_and(|f| f.kind == FeedbackKind::Approval),
                _ => true,
            }
        } else {
            a.context == Context::Global && global(a.id)
        };
        if !a.hint || !shown {
            continue;
        }
        if app.settings.read_only && a.mutating {
            continue;
        }
        let keys = app.settings.keymap.key_names(a);
        let Some(first) = keys.first() else {
            continue;
        };
        // A global key the context binds to something else does that here.
        let overridden = a.context != ctx
            && crate::studio::keymap::KeySpec::parse(first)
                .ok()
                .and_then(|k| app.settings.keymap.lookup(ctx, k))
                .is_some();
        if overridden {
            continue;
        }
        out.push((first.clone(), a.short));
    }
    if ctx == Context::Help {
        out.push((app.key_name(ActionId::Back), "close"));
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
        let len = text::width(&key) + text::width(desc) + 3;
        if used + len > area.width as usize {
            break;
        }
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::styled(format!(" {desc}  "), theme.muted()));
        used += len;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
