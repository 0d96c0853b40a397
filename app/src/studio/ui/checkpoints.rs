//! The checkpoint browser: a table of checkpoints, newest first, and what the selected one
//! holds (where its workflow comes from, pending tasks, the saved channel, the results).

use std::collections::BTreeMap;

use graflow_engine::Value;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{hard_wrap, human_bytes, placeholder, screen_block};
use crate::runsetup::WorkflowFile;
use crate::runsetup::checkpoint_why;
use crate::studio::action::ActionId;
use crate::studio::app::App;
use crate::studio::areas::screen_areas;
use crate::studio::theme::Theme;
use crate::text::{self, pad, pad_left, plural, truncate};

/// `MM-DD HH:MM:SS` of an RFC 3339 time.
fn when(rfc3339: &str) -> String {
    rfc3339.get(5..19).unwrap_or(rfc3339).replace('T', " ")
}

/// Draw the browser.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let s = screen_areas(area.width, area.height, false);
    if let Some(l) = s.list {
        draw_list(frame, l, app);
    }
    if let Some(d) = s.detail {
        draw_detail(frame, d, app);
    }
}

fn draw_list(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let b = &app.checkpoints;
    let title = format!(" Checkpoints ({}) ", b.list.len());
    let inner = screen_block(frame, area, app, title, true);
    if inner.height == 0 {
        return;
    }
    if b.list.is_empty() {
        placeholder(
            frame,
            inner,
            theme,
            vec![Line::from(if b.listed {
                "no checkpoints in this state dir"
            } else {
                "loading…"
            })],
        );
        return;
    }
    let w = inner.width as usize;
    // Columns that fit, in order of importance: time, workflow, why; then run, step, size,
    // metadata.
    let wide = w >= 90;
    let medium = w >= 64;
    let header = row_text(
        wide,
        medium,
        w,
        ["time", "workflow", "run", "step", "why", "size", "metadata"].map(String::from),
    );
    let mut lines = vec![Line::from(Span::styled(header, theme.muted()))];
    let h = (inner.height as usize).saturating_sub(1);
    let offset = b.selected.saturating_sub(h.saturating_sub(1));
    for (i, info) in b.list.iter().enumerate().skip(offset).take(h) {
        let meta = if info.metadata.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&info.metadata).unwrap_or_default()
        };
        let text = row_text(
            wide,
            medium,
            w,
            [
                when(&info.created_at),
                info.workflow.clone(),
                info.run_id.clone(),
                info.steps.to_string(),
                checkpoint_why(info),
                human_bytes(info.size_bytes),
                meta,
            ],
        );
        let mut line = Line::from(text);
        if i == b.selected {
            line = line.style(theme.selection());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One table row: [time, workflow, run, step, why, size, metadata].
fn row_text(wide: bool, medium: bool, w: usize, c: [String; 7]) -> String {
    let [time, workflow, run, step, why, size, meta] = c;
    let mut s = format!("{} {} ", pad(&time, 14), pad(&workflow, 16));
    if wide {
        s.push_str(&format!("{} ", pad(&run, 17)));
    }
    if medium {
        s.push_str(&format!("{} ", pad_left(&step, 4)));
    }
    s.push_str(&format!("{} ", pad(&why, 22)));
    if medium {
        s.push_str(&format!("{}  ", pad_left(&size, 9)));
    }
    if wide {
        s.push_str(&meta);
    }
    truncate(s.trim_end(), w)
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let b = &app.checkpoints;
    let inner = screen_block(frame, area, app, " Checkpoint ".into(), false);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let Some(info) = b.selected_info() else {
        placeholder(
            frame,
            inner,
            theme,
            vec![Line::from(
                "runs write checkpoints when a task asks, when they pause for an answer, or on C",
            )],
        );
        return;
    };
    let keys = |id: ActionId| app.settings.keymap.key_name(id);
    let mut head = vec![
        Line::from(Span::styled(
            info.path.display().to_string(),
            theme.accent(),
        )),
        Line::from(Span::styled(
            format!(
                "{} · run {} · checkpoint {} · {} steps · {}",
                info.workflow,
                info.run_id,
                info.seq,
                info.steps,
                checkpoint_why(info)
            ),
            theme.muted(),
        )),
    ];
    if let Some(note) = crate::runsetup::compression_note(info) {
        head.push(Line::from(Span::styled(
            format!("{} stored · {note}", human_bytes(info.size_bytes)),
            theme.muted(),
        )));
    }
    let Some(detail) = b.selected_detail() else {
        head.push(Line::from(Span::styled("reading…", theme.muted())));
        frame.render_widget(Paragraph::new(hard_wrap(head, inner.width)), inner);
        return;
    };
    let d = match detail {
        Ok(d) => d,
        Err(e) => {
            head.push(Line::from(Span::styled(format!("✗ {e}"), theme.error())));
            frame.render_widget(Paragraph::new(hard_wrap(head, inner.width)), inner);
            return;
        }
    };
    let file_style = match d.file {
        WorkflowFile::Unchanged(_) => theme.muted(),
        WorkflowFile::Changed(_) | WorkflowFile::Gone(_) => theme.warning(),
        WorkflowFile::Missing(_) => theme.error(),
    };
    head.push(Line::from(vec![
        Span::styled("workflow ", theme.muted()),
        Span::styled(d.file.describe(), file_style),
    ]));
    let mut next = vec![Span::styled("next ", theme.muted())];
    if d.pending.is_empty() {
        next.push(Span::styled("nothing (the run had ended)", theme.muted()));
    } else {
        next.push(Span::raw(d.pending.join(", ")));
    }
    if d.open_requests > 0 {
        next.push(Span::styled(
            format!(" · {}", plural(d.open_requests, "open question")),
            theme.warning(),
        ));
    }
    head.push(Line::from(next));
    if !app.settings.read_only {
        head.push(Line::from(Span::styled(
            format!("{} resumes it as a live run", keys(ActionId::Resume)),
            theme.key(),
        )));
    }
    let head = hard_wrap(head, inner.width);
    let head_h = (head.len() as u16).min(inner.height);
    frame.render_widget(
        Paragraph::new(head),
        Rect::new(inner.x, inner.y, inner.width, head_h),
    );
    let rest = Rect::new(
        inner.x,
        inner.y + head_h,
        inner.width,
        inner.height.saturating_sub(head_h),
    );
    if rest.height < 2 {
        return;
    }
    if rest.width >= 80 {
        let lw = rest.width / 2;
        values(
            frame,
            Rect::new(rest.x, rest.y, lw, rest.height),
            theme,
            "channel",
            &d.channel,
            &BTreeMap::new(),
        );
        values(
            frame,
            Rect::new(rest.x + lw + 1, rest.y, rest.width - lw - 1, rest.height),
            theme,
            "results",
            &d.results,
            &d.cycles,
        );
    } else {
        let top = rest.height / 2;
        values(
            frame,
            Rect::new(rest.x, rest.y, rest.width, top),
            theme,
            "channel",
            &d.channel,
            &BTreeMap::new(),
        );
        values(
            frame,
            Rect::new(rest.x, rest.y + top, rest.width, rest.height - top),
            theme,
            "results",
            &d.results,
            &d.cycles,
        );
    }
}

/// A heading and `key = value` lines (with the execution count when known).
fn values(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    name: &str,
    map: &BTreeMap<String, Value>,
    cycles: &BTreeMap<String, u32>,
) {
    if area.height == 0 {
        return;
    }
    let w = area.width as usize;
    let mut lines = vec![Line::from(Span::styled(
        truncate(&format!("── {name} ({}) ", map.len()), w),
        theme.muted(),
    ))];
    let room = (area.height as usize).saturating_sub(1);
    for (i, (k, v)) in map.iter().enumerate() {
        if i + 1 == room && map.len() > room {
            lines.push(Line::from(Span::styled(
                format!("… {} more", map.len() - i),
                theme.muted(),
            )));
            break;
        }
        if i >= room {
            break;
        }
        let times = match cycles.get(k) {
            Some(n) if *n > 1 => format!(" ×{n}"),
            _ => String::new(),
        };
        let value = serde_json::to_string(v).unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!("{k}{times}"), theme.accent()),
            Span::styled(" = ", theme.muted()),
            Span::raw(truncate(
                &value,
                w.saturating_sub(text::width(k) + text::width(&times) + 3),
            )),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
