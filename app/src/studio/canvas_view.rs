//! Where the canvas looks: its scroll is kept inside the drawing (a graph smaller than the
//! pane sits at its top-left, never half off screen), a new layout opens centred on the run's
//! active part (running tasks, else the selection), a zoom change keeps the selected node in
//! view instead of carrying the scroll over, and moving the selection scrolls to it.

use super::graph::layout::{Canvas, CellRect};
use super::model::{TaskStatus, WorkflowEntry};

/// The canvas viewport of a graph pane of `w`×`h` cells: the pane's inside without its
/// header line.
pub fn viewport(w: u16, h: u16) -> (u32, u32) {
    (w.saturating_sub(2) as u32, h.saturating_sub(3) as u32)
}

/// The largest scroll that still shows a canvas part in a viewport.
pub fn max_scroll(canvas: &Canvas, (vw, vh): (u32, u32)) -> (u32, u32) {
    (
        canvas.width.saturating_sub(vw),
        canvas.height.saturating_sub(vh),
    )
}

/// A scroll clamped into the canvas.
pub fn clamp_scroll(scroll: (u32, u32), canvas: &Canvas, view: (u32, u32)) -> (u32, u32) {
    let (mx, my) = max_scroll(canvas, view);
    (scroll.0.min(mx), scroll.1.min(my))
}

/// The scroll that puts `target`'s centre at the viewport's centre (clamped).
fn centred_on(target: CellRect, canvas: &Canvas, (vw, vh): (u32, u32)) -> (u32, u32) {
    let sx = (target.x + target.w / 2).saturating_sub(vw / 2);
    let sy = (target.y + target.h / 2).saturating_sub(vh / 2);
    clamp_scroll((sx, sy), canvas, (vw, vh))
}

/// The smallest rectangle holding every rectangle.
fn bounds(rects: &[CellRect]) -> Option<CellRect> {
    let x0 = rects.iter().map(|r| r.x).min()?;
    let y0 = rects.iter().map(|r| r.y).min()?;
    let x1 = rects.iter().map(|r| r.x + r.w).max()?;
    let y1 = rects.iter().map(|r| r.y + r.h).max()?;
    Some(CellRect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    })
}

/// Scroll the canvas of `e` so its selected node is on screen (and the scroll inside the
/// drawing), in a viewport of `view` cells.
pub fn keep_selection_visible(e: &mut WorkflowEntry, (vw, vh): (u32, u32)) {
    let Some(layout) = e.graph.layout.clone() else {
        return;
    };
    let Some(canvas) = layout.canvas(e.graph.zoom) else {
        return;
    };
    let (mut sx, mut sy) = clamp_scroll(e.graph.scroll, canvas, (vw, vh));
    if let Some(r) = e.graph.selected_index().and_then(|i| canvas.boxes.get(&i)) {
        if r.x < sx || r.x + r.w > sx + vw {
            sx = (r.x + r.w / 2).saturating_sub(vw / 2);
        }
        if r.y < sy || r.y + r.h > sy + vh {
            sy = (r.y + r.h / 2).saturating_sub(vh / 2);
        }
    }
    e.graph.scroll = clamp_scroll((sx, sy), canvas, (vw, vh));
}

/// Centre the canvas of `e` on its run's active part: its running tasks, else the selected
/// node.
pub fn centre_on_active(e: &mut WorkflowEntry, view: (u32, u32)) {
    let Some(layout) = e.graph.layout.clone() else {
        return;
    };
    let Some(canvas) = layout.canvas(e.graph.zoom) else {
        return;
    };
    let running: Vec<CellRect> = e
        .run
        .as_ref()
        .map(|run| {
            canvas
                .boxes
                .iter()
                .filter(|(n, _)| run.status_of(&e.graph.model.nodes[**n].id) == TaskStatus::Running)
                .map(|(_, r)| *r)
                .collect()
        })
        .unwrap_or_default();
    let target = bounds(&running).or_else(|| {
        e.graph
            .selected_index()
            .and_then(|i| canvas.boxes.get(&i).copied())
    });
    e.graph.scroll = match target {
        Some(t) => centred_on(t, canvas, view),
        None => (0, 0),
    };
}

/// Pan the canvas of `e` by whole cells; the scroll stays inside the drawing when the
/// viewport is known.
pub fn pan(e: &mut WorkflowEntry, view: Option<(u32, u32)>, dx: i64, dy: i64) {
    let (x, y) = e.graph.scroll;
    let moved = ((x as i64 + dx).max(0) as u32, (y as i64 + dy).max(0) as u32);
    e.graph.scroll = match (view, e.graph.layout.clone()) {
        (Some(v), Some(layout)) => layout
            .canvas(e.graph.zoom)
            .map_or(moved, |c| clamp_scroll(moved, c, v)),
        _ => moved,
    };
    e.graph.panned = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_canvas_never_scrolls() {
        let canvas = Canvas {
            width: 30,
            height: 10,
            ..Canvas::default()
        };
        assert_eq!(clamp_scroll((50, 40), &canvas, (80, 20)), (0, 0));
        assert_eq!(clamp_scroll((50, 40), &canvas, (20, 5)), (10, 5));
    }
}
