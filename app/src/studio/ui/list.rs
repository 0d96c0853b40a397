//! The graph as a list with lanes: one row per node, visible rows only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{error_banner, node_note, node_status, pane, placeholder};
use crate::studio::action::ActionId;
use crate::studio::app::{App, Pane};
use crate::studio::graph::lanes::gutter;
use crate::studio::model::{RunPhase, WorkflowEntry};
use crate::text::{self, truncate};

/// The graph pane's title: workflow, view, run state.
pub(crate) fn title<'a>(app: &App, view: &str) -> Line<'a> {
    let Some(e) = app.entry() else {
        return Line::from(format!(" Graph — {view} "));
    };
    let mut t = format!(" {} — {view}", e.name);
    if let Some(run) = &e.run {
        let state = match run.phase {
            RunPhase::Starting => "starting".to_string(),
            RunPhase::Running => format!("running {:.0}s", run.elapsed(app.now)),
            RunPhase::Finished(s) => format!(
                "{} in {}",
                crate::studio::model::run::status_word(s),
                crate::text::duration_ms(run.elapsed(app.now) * 1000.0)
            ),
        };
        t.push_str(&format!(" · run {state}"));
    }
    if let Some(d) = e.graph.focus {
        t.push_str(&format!(" · focus {d}"));
    }
    if let Some(f) = &app.graph.find {
        t.push_str(&format!(" · find /{f}"));
    }
    t.push(' ');
    Line::from(t)
}

/// The first inside lines: the error banner when the file is invalid, else a header line.
pub(crate) fn header<'a>(app: &App, e: &WorkflowEntry, text: &str) -> Vec<Line<'a>> {
    let theme = &app.settings.theme;
    error_banner(theme, e)
        .unwrap_or_else(|| vec![Line::from(Span::styled(text.to_string(), theme.muted()))])
}

/// Draw the list view.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let inner = pane(frame, area, app, Pane::Graph, title(app, "list"));
    let Some(e) = app.entry() else {
        placeholder(
            frame,
            inner,
            theme,
            vec![Line::from("no workflow selected")],
        );
        return;
    };
    let g = &e.graph;
    if super::draw_without_graph(frame, inner, theme, e) {
        return;
    }
    if inner.height == 0 {
        return;
    }
    let mut lines = header(
        app,
        e,
        &format!(
            "{} · {}: detail · {}: group · {}: focus",
            text::plural(g.model.len(), "node"),
            app.key_name(ActionId::Open),
            app.key_name(ActionId::ToggleGroup),
            app.key_name(ActionId::ToggleFocusMode)
        ),
    );
    let rows_h = (inner.height as usize).saturating_sub(lines.len());
    let selected = g.selected_index();
    let width = inner.width as usize;
    for row in g.lanes.rows.iter().skip(g.list_offset).take(rows_h) {
        let node = &g.model.nodes[row.node];
        let status = node_status(e, row.node);
        let mut spans: Vec<Span> = Vec::new();
        let mut used = 0;
        for (text, is_node) in gutter(row, g.lanes.width, status.glyph()) {
            used += 1;
            let style = if is_node {
                theme.status(status)
            } else {
                theme.edge(false)
            };
            spans.push(Span::styled(text, style));
        }
        spans.push(Span::raw(" "));
        used += 1;
        let name = if node.is_group {
            let hidden = g.list_view_hidden(row.node);
            format!("◆ {}{}", node.id, if hidden { " ▸" } else { " ▾" })
        } else if node.dynamic {
            format!("+{}", node.id)
        } else {
            node.id.to_string()
        };
        let room = width.saturating_sub(used);
        let name = truncate(&name, room.min(40));
        used += text::width(&name);
        let name_style = if node.is_group {
            theme.group()
        } else {
            theme.text()
        };
        spans.push(Span::styled(name, name_style));
        let mut note = node_note(app, e, row.node);
        if node.is_group {
            if let Some(p) = &node.policy {
                note = format!("{p} {note}");
            }
        } else {
            note = format!("{} {note}", node.kind);
        }
        if !row.loops.is_empty() {
            let targets: Vec<&str> = row.loops.iter().map(|&t| &*g.model.nodes[t].id).collect();
            note.push_str(&format!(" ↺ {}", targets.join(",")));
        }
        let room = width.saturating_sub(used + 2);
        if room > 2 {
            spans.push(Span::styled(
                format!("  {}", truncate(note.trim(), room)),
                theme.muted(),
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

impl crate::studio::graph::GraphState {
    /// Whether a group's contents are hidden in the list.
    pub fn list_view_hidden(&self, group: usize) -> bool {
        self.list_view.hidden.contains_key(&group)
    }
}
