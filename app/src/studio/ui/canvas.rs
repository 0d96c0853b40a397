//! The graph as a layered canvas: routed edges and node boxes, written cell by cell for the
//! visible part only.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::list::{header, title};
use super::{node_note, node_status, pane, placeholder};
use crate::studio::action::ActionId;
use crate::studio::app::{App, Pane};
use crate::studio::graph::lanes::{dashed_glyph, glyph};
use crate::studio::graph::layout::{Canvas, CellRect, Zoom};
use crate::studio::model::WorkflowEntry;
use crate::text::{self, truncate};

/// Draw the canvas view.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let Some(e) = app.entry() else {
        let inner = pane(frame, area, app, Pane::Graph, title(app, "canvas"));
        placeholder(
            frame,
            inner,
            theme,
            vec![Line::from("no workflow selected")],
        );
        return;
    };
    let zoom = e.graph.zoom;
    let inner = pane(
        frame,
        area,
        app,
        Pane::Graph,
        title(app, &format!("canvas ({})", zoom.word())),
    );
    if inner.height == 0 || super::draw_without_graph(frame, inner, theme, e) {
        return;
    }
    let stale = !e.graph.layout_is_current();
    let head = if stale && e.graph.layout.is_some() {
        "laying out… (showing the previous layout)".to_string()
    } else {
        let engine = e.graph.layout.as_ref().map_or("", |l| l.layered.engine);
        // What lies beyond the viewport comes first, so a narrow pane still says it.
        let more = e
            .graph
            .layout
            .as_ref()
            .and_then(|l| l.canvas(zoom))
            .map(|c| {
                beyond(
                    e,
                    c,
                    crate::studio::canvas_view::viewport(area.width, area.height),
                )
            })
            .unwrap_or_default();
        let key = |id| app.key_name(id);
        let pan = if more.is_empty() {
            String::new()
        } else {
            format!(
                "more {more}: {}{}{}{} pan · ",
                key(ActionId::PanLeft),
                key(ActionId::PanDown),
                key(ActionId::PanUp),
                key(ActionId::PanRight)
            )
        };
        format!(
            "{pan}{} · {engine} · {}/{} zoom · {} focus",
            text::plural(e.graph.canvas_view.nodes.len(), "node"),
            key(ActionId::ZoomIn),
            key(ActionId::ZoomOut),
            key(ActionId::ToggleFocusMode)
        )
    };
    let head = header(app, e, &head);
    let head_h = (head.len() as u16).min(inner.height);
    frame.render_widget(
        Paragraph::new(head),
        Rect {
            height: head_h,
            ..inner
        },
    );
    let view = Rect {
        y: inner.y + head_h,
        height: inner.height - head_h,
        ..inner
    };
    let Some(canvas) = e.graph.layout.as_ref().and_then(|l| l.canvas(zoom)) else {
        let text = if e.graph.model.is_empty() {
            "nothing to draw"
        } else {
            "laying out…"
        };
        placeholder(frame, view, theme, vec![Line::from(text)]);
        return;
    };
    render_canvas(frame.buffer_mut(), view, app, e, canvas, zoom);
}

/// Which way the drawing goes on beyond the viewport: `▲▼◀▶` (empty when it all fits).
fn beyond(e: &WorkflowEntry, canvas: &Canvas, (vw, vh): (u32, u32)) -> String {
    let (sx, sy) = crate::studio::canvas_view::clamp_scroll(e.graph.scroll, canvas, (vw, vh));
    [
        (sy > 0, '▲'),
        (sy + vh < canvas.height, '▼'),
        (sx > 0, '◀'),
        (sx + vw < canvas.width, '▶'),
    ]
    .iter()
    .filter(|(more, _)| *more)
    .map(|(_, c)| *c)
    .collect()
}

/// Write the visible part of a canvas into `buf` at `view`.
pub fn render_canvas(
    buf: &mut Buffer,
    view: Rect,
    app: &App,
    e: &WorkflowEntry,
    canvas: &Canvas,
    zoom: Zoom,
) {
    let theme = &app.settings.theme;
    let (sx, sy) = crate::studio::canvas_view::clamp_scroll(
        e.graph.scroll,
        canvas,
        (view.width as u32, view.height as u32),
    );
    let solid = theme.edge(false);
    let dashed = theme.edge(true);
    for vy in 0..view.height as u32 {
        for vx in 0..view.width as u32 {
            let key = (sx + vx, sy + vy);
            let (ch, style) = if let Some(&a) = canvas.arrows.get(&key) {
                let bits = canvas.cells.get(&key).copied().unwrap_or(0);
                (a, if bits & 0x0f != 0 { solid } else { dashed })
            } else if let Some(&bits) = canvas.cells.get(&key) {
                if bits & 0x0f != 0 {
                    (glyph(bits & 0x0f | bits >> 4), solid)
                } else {
                    (dashed_glyph(bits >> 4), dashed)
                }
            } else {
                continue;
            };
            if let Some(c) = buf.cell_mut((view.x + vx as u16, view.y + vy as u16)) {
                c.set_char(ch).set_style(style);
            }
        }
    }
    let vis = CellRect {
        x: sx,
        y: sy,
        w: view.width as u32,
        h: view.height as u32,
    };
    let selected = e.graph.selected_index();
    for (&n, r) in &canvas.boxes {
        if r.x >= vis.x + vis.w || r.x + r.w <= vis.x || r.y >= vis.y + vis.h || r.y + r.h <= vis.y
        {
            continue;
        }
        let node = &e.graph.model.nodes[n];
        let status = node_status(e, n);
        let st = theme.status(status);
        let is_sel = selected == Some(n);
        let border = if is_sel {
            theme.selection().add_modifier(Modifier::BOLD)
        } else {
            st
        };
        let name_style = if node.is_group {
            theme.group()
        } else {
            theme.text()
        };
        let name_style = if is_sel {
            theme.selection().add_modifier(Modifier::BOLD)
        } else {
            name_style
        };
        let hidden = e.graph.canvas_view.hidden.contains_key(&n);
        let label = if node.is_group {
            format!("◆ {}{}", node.id, if hidden { " ▸" } else { "" })
        } else if node.dynamic {
            // Added at run time.
            format!("+{}", node.id)
        } else {
            node.id.to_string()
        };
        let loop_mark = if canvas.self_loops.contains(&n) {
            "↻"
        } else {
            ""
        };
        // Text from canvas cell (x, y) on, one character a cell or two (a wide character
        // shows only when both its cells do; the cell it covers is cleared).
        let mut put = |x: u32, y: u32, line: &str, style: Style| {
            let mut cx = x;
            for (g, w) in text::cells(line) {
                let w = w as u32;
                let shown =
                    cx >= vis.x && cx + w <= vis.x + vis.w && y >= vis.y && y < vis.y + vis.h;
                if w > 0 && shown {
                    let at = |cx: u32| (view.x + (cx - vis.x) as u16, view.y + (y - vis.y) as u16);
                    if let Some(c) = buf.cell_mut(at(cx)) {
                        c.set_symbol(g).set_style(style);
                    }
                    for covered in cx + 1..cx + w {
                        if let Some(c) = buf.cell_mut(at(covered)) {
                            c.reset();
                        }
                    }
                }
                cx += w;
            }
        };
        match zoom {
            Zoom::Boxes => {
                let inner_w = r.w.saturating_sub(2) as usize;
                let (tl, tr, bl, br, hz, vt) = if is_sel {
                    ('┏', '┓', '┗', '┛', '━', '┃')
                } else {
                    ('╭', '╮', '╰', '╯', '─', '│')
                };
                // `╭─ name ─…─↻╮`: exactly the box's width, with at least one `─` after the
                // name, however long the name.
                let loop_w = text::width(loop_mark);
                let name = truncate(&label, (r.w as usize).saturating_sub(6 + loop_w));
                let fill = (r.w as usize).saturating_sub(5 + text::width(&name) + loop_w);
                let top = format!(
                    "{tl}{hz} {name} {}{loop_mark}{tr}",
                    hz.to_string().repeat(fill)
                );
                put(r.x, r.y, &top, border);
                put(r.x + 2, r.y, &format!(" {name} "), name_style);
                let note = node_note(app, e, n);
                let body = truncate(
                    &format!("{} {note}", status.glyph()),
                    inner_w.saturating_sub(1),
                );
                put(r.x, r.y + 1, &vt.to_string(), border);
                put(
                    r.x + 1,
                    r.y + 1,
                    &format!(" {body:<w$}", w = inner_w.saturating_sub(1)),
                    st,
                );
                put(r.x + r.w - 1, r.y + 1, &vt.to_string(), border);
                put(
                    r.x,
                    r.y + 2,
                    &format!("{bl}{}{br}", hz.to_string().repeat(inner_w)),
                    border,
                );
            }
            Zoom::Pills => {
                let name = truncate(
                    &format!("{label}{loop_mark}"),
                    r.w.saturating_sub(4) as usize,
                );
                put(r.x, r.y, &format!("[{} ", status.glyph()), border);
                put(
                    r.x + 3,
                    r.y,
                    &format!("{name:<w$}", w = r.w.saturating_sub(4) as usize),
                    name_style,
                );
                put(r.x + r.w - 1, r.y, "]", border);
            }
            Zoom::Dots => {
                let g = if node.is_group { "◆" } else { status.glyph() };
                put(r.x, r.y, g, if is_sel { theme.selection() } else { st });
            }
        }
    }
}
