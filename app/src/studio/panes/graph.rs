//! The graph pane as a component: how the selected workflow's graph shows (list, canvas or
//! timeline), the node find, and the actions on the graph itself — moving the selection,
//! zoom, focus mode, collapsing groups, panning — with the scrolling that keeps the selection
//! on screen. The graph's own state (selection, scroll, layout) lives in the workflow's entry;
//! the app lends the selected entry and the pane's room, and carries out what this returns.

use ratatui::layout::Rect;

use crate::studio::action::Action;
use crate::studio::canvas_view;
use crate::studio::graph::layout::{CanvasLayout, Zoom, structure_key};
use crate::studio::messages::Effect;
use crate::studio::model::WorkflowEntry;
use crate::studio::ui::header_height;

/// How the graph pane shows the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphView {
    /// A list with lanes.
    List,
    /// A layered canvas.
    Canvas,
    /// A timeline of the run.
    Timeline,
}

/// The graph pane's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphPane {
    /// The view shown.
    pub view: GraphView,
    /// The find (lower case), when one was submitted.
    pub find: Option<String>,
}

impl Default for GraphPane {
    fn default() -> Self {
        GraphPane {
            view: GraphView::List,
            find: None,
        }
    }
}

/// The room the pane has on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Rows inside the pane (its header included).
    pub inside: usize,
    /// The canvas viewport (cells), when the pane is on screen.
    pub viewport: Option<(u32, u32)>,
}

impl Room {
    /// The room of a pane at `area` (`None`: not on screen).
    pub fn of(area: Option<Rect>) -> Room {
        Room {
            inside: area.map_or(12, |r| r.height.saturating_sub(2) as usize),
            viewport: area.map(|a| canvas_view::viewport(a.width, a.height)),
        }
    }
}

/// What the graph pane is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphAction {
    /// Move the selection this many rows (the canvas: one layer that way).
    Move(i64),
    /// The canvas: the next node left (negative) or right in its layer.
    Sideways(i32),
    /// The selection to the last row (or the first).
    ToEnd(bool),
    /// Show the graph this way.
    SetView(GraphView),
    /// Zoom the canvas in (closer) or out.
    Zoom {
        /// In, else out.
        closer: bool,
    },
    /// Focus mode on or off (`deeper`: one more level of neighbours).
    FocusMode {
        /// Cycle the depth rather than switch it.
        deeper: bool,
    },
    /// Leave focus mode.
    ClearFocusMode,
    /// Collapse or expand the selected group (or the group of the selected member).
    ToggleGroup,
    /// Pan the canvas by cells.
    Pan(i64, i64),
    /// Set the find and select its first match.
    SetFind(Option<String>),
    /// The next (or previous) node matching the find.
    FindNext {
        /// Forward, else backward.
        forward: bool,
    },
    /// Select a node by id.
    SelectNode(String),
    /// A click at a screen cell of the pane at `area`.
    Click {
        /// Column.
        x: u16,
        /// Row.
        y: u16,
        /// The pane's rectangle.
        area: Rect,
    },
}

/// What the app should do after the graph pane handled an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphEffect {
    /// The graph's structure or the view changed: ask for a canvas layout if out of date.
    WantLayout,
    /// Tell the user (an info message).
    Notice(String),
}

impl GraphAction {
    /// The graph pane's own action for a user action that is the graph's wherever the focus
    /// is (views, zoom, focus mode, groups, pans, a node picked).
    pub fn for_action(action: &Action) -> Option<GraphAction> {
        Some(match action {
            Action::ViewList => GraphAction::SetView(GraphView::List),
            Action::ViewCanvas => GraphAction::SetView(GraphView::Canvas),
            Action::ViewTimeline => GraphAction::SetView(GraphView::Timeline),
            Action::ZoomIn => GraphAction::Zoom { closer: true },
            Action::ZoomOut => GraphAction::Zoom { closer: false },
            Action::ToggleFocusMode => GraphAction::FocusMode { deeper: false },
            Action::FocusDepth => GraphAction::FocusMode { deeper: true },
            Action::ToggleGroup => GraphAction::ToggleGroup,
            Action::PanLeft => GraphAction::Pan(-8, 0),
            Action::PanRight => GraphAction::Pan(8, 0),
            Action::PanUp => GraphAction::Pan(0, -4),
            Action::PanDown => GraphAction::Pan(0, 4),
            Action::SelectNode(id) => GraphAction::SelectNode(id.clone()),
            _ => return None,
        })
    }
}

impl GraphPane {
    /// Do `action` on the selected workflow's entry `e`, in the pane's `room`.
    pub fn handle(
        &mut self,
        action: GraphAction,
        e: Option<&mut WorkflowEntry>,
        room: Room,
    ) -> Vec<GraphEffect> {
        let mut fx = Vec::new();
        match action {
            GraphAction::SetView(v) => {
                self.view = v;
                fx.push(GraphEffect::WantLayout);
                if let Some(e) = e {
                    self.keep_view_visible(e, room);
                }
            }
            GraphAction::Zoom { closer } => {
                let Some(e) = e else {
                    if self.view != GraphView::Canvas {
                        self.view = GraphView::Canvas;
                        fx.push(GraphEffect::WantLayout);
                    }
                    return fx;
                };
                let i = e.graph.zoom.index() as i64 + if closer { -1 } else { 1 };
                e.graph.zoom = Zoom::ALL[i.clamp(0, 2) as usize];
                // Scrolls are in the cells of a zoom level: never carry one over.
                e.graph.panned = false;
                if self.view != GraphView::Canvas {
                    self.view = GraphView::Canvas;
                    fx.push(GraphEffect::WantLayout);
                    keep_canvas_visible(e, room);
                }
                self.centre_on_active(e, room);
            }
            GraphAction::FocusMode { deeper } => {
                if let Some(e) = e {
                    e.graph.focus = match (deeper, e.graph.focus) {
                        (false, Some(_)) => None,
                        (false, None) => Some(1),
                        (true, Some(d)) => Some(d % 4 + 1),
                        (true, None) => Some(2),
                    };
                    e.graph.rebuild();
                }
                fx.push(GraphEffect::WantLayout);
            }
            GraphAction::ClearFocusMode => {
                if let Some(e) = e
                    && e.graph.focus.take().is_some()
                {
                    e.graph.rebuild();
                    fx.push(GraphEffect::WantLayout);
                }
            }
            GraphAction::SetFind(term) => {
                self.find = term;
                return self.find_node(e, room, true, true);
            }
            GraphAction::FindNext { forward } => return self.find_node(e, room, forward, false),
            GraphAction::ToggleGroup => {
                if let Some(e) = e {
                    return toggle_group(e, room);
                }
            }
            other => {
                if let Some(e) = e {
                    self.on_entry(other, e, room);
                }
            }
        }
        fx
    }

    /// The actions that only move or scroll within the entry.
    fn on_entry(&self, action: GraphAction, e: &mut WorkflowEntry, room: Room) {
        match action {
            GraphAction::Move(delta) if self.view == GraphView::Canvas => {
                e.graph.canvas_step(delta.signum() as i32, 0);
                keep_canvas_visible(e, room);
            }
            GraphAction::Move(delta) => {
                let row = e.graph.selected_row().unwrap_or(0) as i64;
                e.graph.select_row((row + delta).max(0) as usize);
                keep_list_visible(e, room);
            }
            GraphAction::Sideways(dx) if self.view == GraphView::Canvas => {
                e.graph.canvas_step(0, dx);
                keep_canvas_visible(e, room);
            }
            GraphAction::ToEnd(end) if self.view != GraphView::Canvas => {
                let big = if end { i64::MAX / 4 } else { -(i64::MAX / 4) };
                self.on_entry(GraphAction::Move(big), e, room);
            }
            GraphAction::ToEnd(end) => {
                let row = if end {
                    e.graph.lanes.rows.len().saturating_sub(1)
                } else {
                    0
                };
                e.graph.select_row(row);
                keep_canvas_visible(e, room);
            }
            GraphAction::Pan(dx, dy) => canvas_view::pan(e, room.viewport, dx, dy),
            GraphAction::SelectNode(id) if e.graph.select_id(&id) => keep_list_visible(e, room),
            GraphAction::Click { x, y, area } => self.click(e, x, y, area),
            _ => {}
        }
    }

    fn click(&self, e: &mut WorkflowEntry, x: u16, y: u16, r: Rect) {
        // The pane's first inside lines are its header (two with an error hint).
        let head = header_height(e) as u16;
        match self.view {
            GraphView::List | GraphView::Timeline => {
                if y > r.y + head {
                    e.graph
                        .select_row(e.graph.list_offset + (y - r.y - 1 - head) as usize);
                }
            }
            GraphView::Canvas => {
                let (sx, sy) = e.graph.scroll;
                let cx = sx + x.saturating_sub(r.x + 1) as u32;
                let cy = sy + y.saturating_sub(r.y + 1 + head) as u32;
                let hit = e
                    .graph
                    .layout
                    .as_ref()
                    .and_then(|l| l.canvas(e.graph.zoom))
                    .and_then(|c| c.node_at(cx, cy));
                if let Some(n) = hit {
                    e.graph.selected = Some(e.graph.model.nodes[n].id.clone());
                }
            }
        }
    }

    /// Select the next (or previous) node whose id contains the find; from the start when
    /// `from_start`.
    fn find_node(
        &self,
        e: Option<&mut WorkflowEntry>,
        room: Room,
        forward: bool,
        from_start: bool,
    ) -> Vec<GraphEffect> {
        let (Some(needle), Some(e)) = (self.find.as_deref(), e) else {
            return Vec::new();
        };
        let rows = &e.graph.lanes.rows;
        let n = rows.len();
        if n == 0 {
            return Vec::new();
        }
        let cur = match (from_start, e.graph.selected_row()) {
            (true, _) | (_, None) if forward => n - 1,
            (true, _) | (_, None) => 0,
            (false, Some(r)) => r,
        };
        let found = (1..=n).find_map(|k| {
            let i = if forward {
                (cur + k) % n
            } else {
                (cur + n - k % n) % n
            };
            e.graph.model.nodes[rows[i].node]
                .id
                .to_lowercase()
                .contains(needle)
                .then_some(i)
        });
        match found {
            Some(i) => {
                e.graph.select_row(i);
                self.keep_view_visible(e, room);
                Vec::new()
            }
            None => vec![GraphEffect::Notice(format!("no node matches '{needle}'"))],
        }
    }

    /// Keep the selection on screen in the view shown.
    pub fn keep_view_visible(&self, e: &mut WorkflowEntry, room: Room) {
        if self.view == GraphView::Canvas {
            keep_canvas_visible(e, room);
        } else {
            keep_list_visible(e, room);
        }
    }

    /// Centre the canvas on the run's active part (when the pane is on screen).
    pub fn centre_on_active(&self, e: &mut WorkflowEntry, room: Room) {
        if let Some(view) = room.viewport {
            canvas_view::centre_on_active(e, view);
        }
    }

    /// A canvas layout of the entry at `index`, when the canvas shows and the entry's is out
    /// of date (and not asked for already).
    pub fn layout_request(&self, index: usize, e: Option<&mut WorkflowEntry>) -> Option<Effect> {
        if self.view != GraphView::Canvas {
            return None;
        }
        let e = e?;
        if e.graph.model.is_empty() || e.graph.layout_is_current() {
            return None;
        }
        let key = structure_key(&e.graph.canvas_view);
        if e.graph.layout_wanted == key {
            return None;
        }
        e.graph.layout_wanted = key;
        Some(Effect::Layout {
            index,
            view: e.graph.canvas_view.clone(),
        })
    }

    /// A layout arrived for `e` (`selected`: the entry shown): it is kept when it fits the
    /// graph as it is now.
    pub fn on_layout(
        &self,
        e: &mut WorkflowEntry,
        layout: std::sync::Arc<CanvasLayout>,
        selected: bool,
        room: Room,
    ) {
        if layout.key != structure_key(&e.graph.canvas_view) {
            return;
        }
        let first = e.graph.layout.is_none() || !e.graph.panned;
        e.graph.layout = Some(layout);
        if selected {
            // A fresh layout opens on the run's active part; after the user panned, only
            // the selection is kept in view.
            if first {
                self.centre_on_active(e, room);
            } else {
                keep_canvas_visible(e, room);
            }
        }
    }
}

/// Scroll the list (or timeline) so the selected row is on screen.
pub fn keep_list_visible(e: &mut WorkflowEntry, room: Room) {
    if let Some(row) = e.graph.selected_row() {
        let h = room.inside.saturating_sub(header_height(e)).max(1);
        if row < e.graph.list_offset {
            e.graph.list_offset = row;
        } else if row >= e.graph.list_offset + h {
            e.graph.list_offset = row + 1 - h;
        }
    }
}

/// Scroll the canvas so the selected node is on screen (when the pane is).
pub fn keep_canvas_visible(e: &mut WorkflowEntry, room: Room) {
    if let Some(view) = room.viewport {
        canvas_view::keep_selection_visible(e, view);
    }
}

fn toggle_group(e: &mut WorkflowEntry, room: Room) -> Vec<GraphEffect> {
    let Some(i) = e.graph.selected_index() else {
        return Vec::new();
    };
    // On a member (or a task of a member's chain), act on its group.
    let g = if e.graph.model.nodes[i].is_group {
        i
    } else {
        match e.graph.model.enclosing_group(i) {
            Some(g) => g,
            None => {
                return vec![GraphEffect::Notice(
                    "not a group (select a group or one of its members)".into(),
                )];
            }
        }
    };
    let id = e.graph.model.nodes[g].id.clone();
    if !e.graph.collapsed.remove(&id) {
        e.graph.collapsed.insert(id.clone());
    }
    e.graph.selected = Some(id);
    e.graph.rebuild();
    keep_list_visible(e, room);
    vec![GraphEffect::WantLayout]
}

#[cfg(test)]
mod tests {
    use super::*;
    use graflow_engine::{GroupDef, TaskDef, Value, Workflow, parse_flow};
    use std::sync::Arc;

    /// start >> pair(left | right) >> end
    fn entry() -> WorkflowEntry {
        let mut wf = Workflow::builder("g");
        for id in ["start", "left", "right", "end"] {
            wf.add(TaskDef::from_fn(id, |_ctx| async {
                anyhow::Ok(Value::Null)
            }));
        }
        let members = parse_flow("left | right").unwrap_or_default().remove(0);
        wf.add_group(GroupDef::new("pair", members));
        wf.flow_str("start >> pair >> end");
        let wf = wf.build().unwrap_or_else(|e| panic!("{e}"));
        WorkflowEntry::from_workflow(Arc::new(wf))
    }

    fn room() -> Room {
        Room::of(Some(Rect::new(0, 0, 60, 20)))
    }

    fn selected(e: &WorkflowEntry) -> Option<&str> {
        e.graph.selected.as_deref()
    }

    #[test]
    fn moves_and_finds_in_the_list() {
        let mut g = GraphPane::default();
        let mut e = entry();
        e.graph.select_row(0);
        g.handle(GraphAction::ToEnd(true), Some(&mut e), room());
        assert_eq!(selected(&e), Some("end"));
        g.handle(GraphAction::Move(-1), Some(&mut e), room());
        assert_ne!(selected(&e), Some("end"));
        let fx = g.handle(
            GraphAction::SetFind(Some("star".into())),
            Some(&mut e),
            room(),
        );
        assert!(fx.is_empty());
        assert_eq!(selected(&e), Some("start"));
        let fx = g.handle(
            GraphAction::SetFind(Some("zzz".into())),
            Some(&mut e),
            room(),
        );
        assert_eq!(fx, [GraphEffect::Notice("no node matches 'zzz'".into())]);
        assert_eq!(selected(&e), Some("start"), "the selection stays");
    }

    #[test]
    fn groups_collapse_from_a_member_and_ask_for_a_layout() {
        let mut g = GraphPane::default();
        let mut e = entry();
        assert!(e.graph.select_id("left"));
        let fx = g.handle(GraphAction::ToggleGroup, Some(&mut e), room());
        assert_eq!(fx, [GraphEffect::WantLayout]);
        assert_eq!(selected(&e), Some("pair"));
        assert!(e.graph.collapsed.contains("pair"));
        assert!(
            !e.graph.select_id("left"),
            "a collapsed member is not shown"
        );
        assert!(e.graph.select_id("start"));
        let fx = g.handle(GraphAction::ToggleGroup, Some(&mut e), room());
        assert!(matches!(&fx[..], [GraphEffect::Notice(m)] if m.starts_with("not a group")));
    }

    #[test]
    fn the_canvas_asks_for_a_layout_once() {
        let mut g = GraphPane::default();
        let mut e = entry();
        assert!(
            g.layout_request(0, Some(&mut e)).is_none(),
            "the list needs none"
        );
        let fx = g.handle(GraphAction::Zoom { closer: false }, Some(&mut e), room());
        assert_eq!(fx, [GraphEffect::WantLayout]);
        assert_eq!(g.view, GraphView::Canvas);
        assert!(matches!(
            g.layout_request(0, Some(&mut e)),
            Some(Effect::Layout { index: 0, .. })
        ));
        assert!(g.layout_request(0, Some(&mut e)).is_none(), "asked already");
        let fx = g.handle(
            GraphAction::FocusMode { deeper: false },
            Some(&mut e),
            room(),
        );
        assert_eq!(fx, [GraphEffect::WantLayout]);
        assert_eq!(e.graph.focus, Some(1));
        g.handle(GraphAction::ClearFocusMode, Some(&mut e), room());
        assert_eq!(e.graph.focus, None);
    }

    #[test]
    fn user_actions_map_to_the_pane_s_own() {
        assert_eq!(
            GraphAction::for_action(&Action::ZoomIn),
            Some(GraphAction::Zoom { closer: true })
        );
        assert_eq!(
            GraphAction::for_action(&Action::SelectNode("a".into())),
            Some(GraphAction::SelectNode("a".into()))
        );
        assert_eq!(
            GraphAction::for_action(&Action::Up),
            None,
            "moves follow the focus"
        );
    }

    #[test]
    fn nothing_happens_without_a_workflow() {
        let mut g = GraphPane {
            find: Some("a".into()),
            ..GraphPane::default()
        };
        for a in [
            GraphAction::Move(1),
            GraphAction::ToggleGroup,
            GraphAction::FindNext { forward: true },
            GraphAction::Pan(8, 0),
        ] {
            assert!(g.handle(a, None, room()).is_empty());
        }
    }
}
