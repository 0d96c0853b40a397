//! The approvals inbox: pending requests on one side, the selected one with its answer form
//! on the other.

use graflow_engine::hitl::{FeedbackKind, FeedbackRequest};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use super::{hard_wrap, placeholder, screen_block};
use crate::studio::action::{ActionId, Context};
use crate::studio::app::App;
use crate::studio::areas::screen_areas;
use crate::studio::screens::inbox::{AnswerForm, kind_words};
use crate::studio::theme::Theme;
use crate::text;

/// A short tag per kind.
pub fn kind_tag(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Approval => "approve?",
        FeedbackKind::Text => "text",
        FeedbackKind::Selection => "pick one",
        FeedbackKind::MultiSelection => "pick many",
        FeedbackKind::Custom => "json",
    }
}

/// How long ago an RFC 3339 time was, shortly (`850ms`, `12s`, `4m`, `2h`, `3d`).
pub fn ago(app: &App, rfc3339: &str) -> String {
    let Ok(t) = humantime::parse_rfc3339_weak(rfc3339) else {
        return String::new();
    };
    text::duration_coarse(app.now.duration_since(t).unwrap_or_default())
}

/// Seconds left, as `2m 05s` or `41s`.
pub fn countdown(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Draw the inbox.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let s = screen_areas(area.width, area.height, true);
    let editing = app.context() == Context::Answer;
    match (s.list, s.detail) {
        // Stacked, the form needs the room: the request takes the whole screen.
        (Some(l), Some(d)) if editing && l.x == d.x => {
            draw_detail(frame, l.union(d), app);
        }
        (Some(l), Some(d)) => {
            draw_list(frame, l, app);
            draw_detail(frame, d, app);
        }
        // Room for one: the form while answering, else the list.
        (Some(l), None) if editing => draw_detail(frame, l, app),
        (Some(l), None) => draw_list(frame, l, app),
        _ => {}
    }
}

fn draw_list(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let inbox = &app.inbox;
    let title = format!(" Inbox — {} waiting ", inbox.requests.len());
    let inner = screen_block(frame, area, app, title, app.context() == Context::Inbox);
    if inner.height == 0 {
        return;
    }
    if inbox.requests.is_empty() {
        let mut lines = vec![Line::from(if inbox.listed {
            "no question is waiting for an answer"
        } else {
            "loading…"
        })];
        if let Some(e) = &inbox.error {
            lines.push(Line::from(Span::styled(e.clone(), theme.error())));
        }
        placeholder(frame, inner, theme, lines);
        return;
    }
    let h = inner.height as usize;
    let w = inner.width as usize;
    let offset = inbox.selected.saturating_sub(h.saturating_sub(1));
    let mut lines = Vec::new();
    for (i, r) in inbox.requests.iter().enumerate().skip(offset).take(h) {
        let right = match &r.checkpoint {
            Some(_) => format!("⏸ {}", ago(app, &r.created_at)),
            None => ago(app, &r.created_at),
        };
        let tag = format!("{} ", text::pad(kind_tag(r.spec.kind), 9));
        let room = w.saturating_sub(text::width(&tag) + text::width(&right) + 3);
        let what = text::pad(&format!("{}: {}", r.task, r.spec.prompt), room);
        let mut line = Line::from(vec![
            Span::styled("⚑ ", theme.warning()),
            Span::styled(tag, theme.muted()),
            Span::raw(what),
            Span::raw(" "),
            Span::styled(right, theme.muted()),
        ]);
        if i == inbox.selected {
            line = line.style(theme.selection());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let editing = app.context() == Context::Answer;
    let inner = screen_block(frame, area, app, " Request ".into(), editing);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let Some(r) = app.inbox.selected_request() else {
        placeholder(
            frame,
            inner,
            theme,
            vec![
                Line::from("Questions land here when a run asks a person:"),
                Line::from("an Approval or Feedback task, ctx.request_… in a script,"),
                Line::from("graflow ctx request-… in a shell task."),
                Line::from(""),
                Line::from("Answer them here, with graflow feedback respond,"),
                Line::from("or through graflow serve."),
            ],
        );
        return;
    };
    let mut lines = about(app, r);
    let form = app.inbox.form_for_selected();
    let keys = |id: ActionId| app.settings.keymap.key_name(id);
    if app.settings.read_only {
        lines.push(Line::from(Span::styled(
            format!("read-only: answer with graflow feedback respond {}", r.id),
            theme.muted(),
        )));
    } else if form.is_none() {
        let how = match r.spec.kind {
            FeedbackKind::Approval => format!(
                "{} approve · {} reject with a reason · {} answer",
                keys(ActionId::Approve),
                keys(ActionId::Reject),
                keys(ActionId::AnswerRequest)
            ),
            kind => format!(
                "{} answer ({})",
                keys(ActionId::AnswerRequest),
                kind_words(kind)
            ),
        };
        lines.push(Line::from(Span::styled(how, theme.key())));
    }
    let lines = hard_wrap(lines, inner.width);
    let head_h = (lines.len() as u16).min(inner.height);
    frame.render_widget(
        Paragraph::new(lines),
        Rect::new(inner.x, inner.y, inner.width, head_h),
    );
    if let Some(f) = form.filter(|_| !app.settings.read_only) {
        let rest = Rect::new(
            inner.x,
            inner.y + head_h,
            inner.width,
            inner.height.saturating_sub(head_h),
        );
        draw_form(frame, rest, app, f, editing);
    }
}

/// The request's prompt and facts.
fn about<'a>(app: &App, r: &FeedbackRequest) -> Vec<Line<'a>> {
    let theme = &app.settings.theme;
    let mut lines = vec![
        Line::from(Span::styled(r.spec.prompt.clone(), theme.accent())),
        Line::from(Span::styled(
            format!(
                "{} · {} / {} · run {} · asked {} ago",
                kind_words(r.spec.kind),
                r.workflow,
                r.task,
                r.run_id,
                ago(app, &r.created_at)
            ),
            theme.muted(),
        )),
    ];
    if let Some(c) = &r.checkpoint {
        lines.push(Line::from(Span::styled(
            format!("⏸ its run paused into {c}; answering offers to resume it"),
            theme.warning(),
        )));
    }
    if let Some(t) = r.spec.timeout_secs.filter(|_| r.checkpoint.is_none()) {
        // The wait counts down with the heartbeat (the inbox redraws once a second).
        let waited = humantime::parse_rfc3339_weak(&r.created_at)
            .ok()
            .and_then(|asked| app.now.duration_since(asked).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        let left = (t - waited).max(0.0).floor();
        let total = crate::text::duration_ms(t * 1000.0);
        let text = if left > 0.0 {
            format!(
                "the run pauses in {} unless answered (it waits {total}) · id {}",
                countdown(left),
                r.id
            )
        } else {
            format!("its {total} wait is over: the run pauses · id {}", r.id)
        };
        lines.push(Line::from(Span::styled(text, theme.muted())));
    } else {
        lines.push(Line::from(Span::styled(
            format!("id {}", r.id),
            theme.muted(),
        )));
    }
    if let Some(k) = &r.spec.channel_key {
        lines.push(Line::from(Span::styled(
            format!("the answer goes to the channel key '{k}'"),
            theme.muted(),
        )));
    }
    lines
}

fn draw_form(frame: &mut Frame, area: Rect, app: &App, f: &AnswerForm, editing: bool) {
    let theme = &app.settings.theme;
    if area.height == 0 {
        return;
    }
    let keys = |id: ActionId| app.settings.keymap.key_name(id);
    let mut top: Vec<Line> = vec![Line::from("")];
    let mut bottom: Vec<Line> = Vec::new();
    if let Some(e) = &f.error {
        bottom.push(Line::from(Span::styled(format!("✗ {e}"), theme.error())));
    }
    if f.sending {
        bottom.push(Line::from(Span::styled("sending…", theme.muted())));
    } else if editing {
        let send = keys(ActionId::SubmitAnswer);
        let stop = app
            .settings
            .keymap
            .key_name_in(Context::Answer, ActionId::Back);
        let hint = match f.kind {
            FeedbackKind::Approval => format!(
                "{} switches · {send} sends · {stop} stops (the draft stays)",
                keys(ActionId::ToggleDecision)
            ),
            FeedbackKind::Text | FeedbackKind::Custom => {
                format!("enter: new line · {send} sends · {stop} stops (the draft stays)")
            }
            FeedbackKind::Selection => format!("↑↓ pick · {send} or enter sends · {stop} stops"),
            FeedbackKind::MultiSelection => format!(
                "↑↓ move · {} checks · {send} or enter sends · {stop} stops",
                keys(ActionId::ToggleOption)
            ),
        };
        bottom.push(Line::from(Span::styled(hint, theme.muted())));
    } else {
        bottom.push(Line::from(Span::styled(
            format!("{} goes on with this answer", keys(ActionId::AnswerRequest)),
            theme.muted(),
        )));
    }
    let mut editor_rows = 0u16;
    match f.kind {
        FeedbackKind::Approval => {
            let mark = |on: bool| if on { "(●)" } else { "( )" };
            top.push(Line::from(vec![
                Span::styled(
                    format!("{} approve", mark(f.approve)),
                    decision(theme, f.approve),
                ),
                Span::raw("   "),
                Span::styled(
                    format!("{} reject", mark(!f.approve)),
                    decision(theme, !f.approve),
                ),
            ]));
            top.push(Line::from(Span::styled("reason", theme.muted())));
            editor_rows = 3;
        }
        FeedbackKind::Text | FeedbackKind::Custom => {
            let label = if f.kind == FeedbackKind::Text {
                "answer"
            } else {
                "JSON"
            };
            top.push(Line::from(Span::styled(label, theme.muted())));
            editor_rows = u16::MAX;
        }
        FeedbackKind::Selection | FeedbackKind::MultiSelection => {
            let room = area.height.saturating_sub(1 + bottom.len() as u16).max(1) as usize;
            let offset = f.cursor.saturating_sub(room.saturating_sub(1));
            for (i, o) in f.options.iter().enumerate().skip(offset).take(room) {
                let mark = match f.kind {
                    FeedbackKind::Selection if i == f.cursor => "(●)",
                    FeedbackKind::Selection => "( )",
                    _ if f.checked.get(i).copied().unwrap_or(false) => "[x]",
                    _ => "[ ]",
                };
                let cursor = if i == f.cursor { "›" } else { " " };
                let mut line = Line::from(format!("{cursor} {mark} {o}"));
                if i == f.cursor && editing {
                    line = line.style(theme.selection());
                }
                top.push(line);
            }
        }
    }
    let top_h = (top.len() as u16).min(area.height);
    frame.render_widget(
        Paragraph::new(top),
        Rect::new(area.x, area.y, area.width, top_h),
    );
    let bottom = hard_wrap(bottom, area.width);
    let bottom_h = (bottom.len() as u16).min(area.height.saturating_sub(top_h));
    let free = area.height.saturating_sub(top_h + bottom_h);
    let box_h = editor_rows.min(free);
    if box_h >= 3 {
        let r = Rect::new(area.x, area.y + top_h, area.width, box_h);
        let block = Block::new()
            .borders(Borders::ALL)
            .border_type(BorderType::Rounded)
            .border_style(theme.border(editing));
        let inside = block.inner(r);
        frame.render_widget(block, r);
        frame.render_widget(&f.editor, inside);
    }
    let by = area.y + top_h + box_h;
    frame.render_widget(
        Paragraph::new(bottom),
        Rect::new(area.x, by, area.width, bottom_h),
    );
}

fn decision(theme: &Theme, on: bool) -> ratatui::style::Style {
    if on { theme.accent() } else { theme.muted() }
}
