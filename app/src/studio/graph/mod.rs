//! The graph: one model ([`model::GraphModel`]) and three views over it — a list with lanes
//! ([`lanes`]), a layered canvas ([`layout`]) and a timeline (drawn in `ui::timeline`). A
//! [`GraphState`] holds one workflow's model with the view state the user set.

pub mod lanes;
pub mod layout;
pub mod model;

use std::collections::HashSet;
use std::sync::Arc;

use lanes::Lanes;
use layout::{CanvasLayout, Zoom};
use model::{GraphModel, GroupShape, ViewGraph, derive};

/// In graphs larger than this, groups with more than [`BIG_GROUP`] nodes open collapsed.
pub const BIG_GRAPH: usize = 300;
/// See [`BIG_GRAPH`].
pub const BIG_GROUP: usize = 50;

/// One workflow's graph with its view state.
#[derive(Debug, Clone, Default)]
pub struct GraphState {
    /// The model.
    pub model: GraphModel,
    /// The list rows for the current collapse and focus.
    pub lanes: Lanes,
    /// The list's derived graph.
    pub list_view: ViewGraph,
    /// The canvas's derived graph (groups as fork and join).
    pub canvas_view: ViewGraph,
    /// The canvas layout, once computed for `canvas_view`.
    pub layout: Option<Arc<CanvasLayout>>,
    /// The layout asked for last (its structure key).
    pub layout_wanted: u64,
    /// The selected node (kept across reloads by id).
    pub selected: Option<Arc<str>>,
    /// First list row shown.
    pub list_offset: usize,
    /// Canvas scroll (top-left cell).
    pub scroll: (u32, u32),
    /// The user panned the canvas (a new layout then keeps the view rather than recentring).
    pub panned: bool,
    /// Canvas zoom level.
    pub zoom: Zoom,
    /// Focus mode: the neighbourhood depth, when on.
    pub focus: Option<u8>,
    /// Collapsed groups by id.
    pub collapsed: HashSet<Arc<str>>,
}

impl GraphState {
    /// The view state for a model; keeps `previous`'s choices (selection, collapse, zoom)
    /// where they still apply.
    pub fn new(model: GraphModel, previous: Option<&GraphState>) -> GraphState {
        let mut s = GraphState {
            model,
            ..GraphState::default()
        };
        if let Some(p) = previous {
            s.selected = p.selected.clone().filter(|id| s.model.find(id).is_some());
            s.collapsed = p
                .collapsed
                .iter()
                .filter(|id| s.model.find(id).is_some())
                .cloned()
                .collect();
            s.zoom = p.zoom;
            s.focus = p.focus;
            s.scroll = p.scroll;
            s.panned = p.panned;
            s.list_offset = p.list_offset;
            s.layout = p.layout.clone();
        } else if s.model.len() > BIG_GRAPH {
            let groups: Vec<Arc<str>> = (0..s.model.len())
                .filter(|&g| {
                    s.model.nodes[g].is_group && s.model.group_contents(g).len() > BIG_GROUP
                })
                .map(|g| s.model.nodes[g].id.clone())
                .collect();
            s.collapsed.extend(groups);
        }
        if s.selected.is_none() {
            s.selected = s
                .model
                .start
                .or(if s.model.is_empty() { None } else { Some(0) })
                .map(|i| s.model.nodes[i].id.clone());
        }
        s.rebuild();
        s
    }

    /// Recompute the derived graphs and the lanes (after a change of structure, collapse or
    /// focus). The canvas layout is asked for separately (it runs off the UI task).
    pub fn rebuild(&mut self) {
        let focus = self.focus.and_then(|d| Some((self.selected_index()?, d)));
        self.list_view = derive(&self.model, &self.collapsed, focus, GroupShape::Bus);
        self.canvas_view = derive(&self.model, &self.collapsed, focus, GroupShape::ForkJoin);
        let model = &self.model;
        self.lanes = lanes::compute(&self.list_view, model.len(), |n| {
            let mut d = 0u8;
            let mut cur = model.enclosing_group(n);
            while let Some(p) = cur {
                d = d.saturating_add(1);
                cur = model.enclosing_group(p);
                if d > 16 {
                    break;
                }
            }
            d
        });
        if self.selected.as_ref().is_none_or(|s| {
            !self
                .lanes
                .row_of
                .contains_key(&self.model.find(s).unwrap_or(usize::MAX))
        }) {
            self.selected = self
                .lanes
                .rows
                .first()
                .map(|r| self.model.nodes[r.node].id.clone());
        }
    }

    /// Whether the current layout fits the canvas view.
    pub fn layout_is_current(&self) -> bool {
        self.layout
            .as_ref()
            .is_some_and(|l| l.key == layout::structure_key(&self.canvas_view))
    }

    /// The selected node's model index.
    pub fn selected_index(&self) -> Option<usize> {
        self.selected.as_ref().and_then(|id| self.model.find(id))
    }

    /// The selected node's list row.
    pub fn selected_row(&self) -> Option<usize> {
        self.selected_index()
            .and_then(|i| self.lanes.row_of.get(&i).copied())
    }

    /// Select the node in list row `row` (clamped).
    pub fn select_row(&mut self, row: usize) {
        if let Some(r) = self
            .lanes
            .rows
            .get(row.min(self.lanes.rows.len().saturating_sub(1)))
        {
            self.selected = Some(self.model.nodes[r.node].id.clone());
        }
    }

    /// Select a node by id; false when it is not shown.
    pub fn select_id(&mut self, id: &str) -> bool {
        match self.model.find(id) {
            Some(i) if self.lanes.row_of.contains_key(&i) => {
                self.selected = Some(self.model.nodes[i].id.clone());
                true
            }
            _ => false,
        }
    }

    /// Add a task created at run time; returns whether the structure changed.
    pub fn add_dynamic(&mut self, id: &Arc<str>, by: &str) -> bool {
        let changed = self.model.add_dynamic(id, by);
        if changed {
            self.rebuild();
        }
        changed
    }

    /// Move the canvas selection: `dl` layers down (negative: up) or `dx` nodes right.
    pub fn canvas_step(&mut self, dl: i32, dx: i32) {
        let Some(layout) = self.layout.clone() else {
            return;
        };
        let Some(canvas) = layout.canvas(self.zoom) else {
            return;
        };
        let Some(cur) = self.selected_index() else {
            return;
        };
        let Some(&(layer, _)) = layout.layered.pos.get(&cur) else {
            return;
        };
        let Some(rect) = canvas.boxes.get(&cur) else {
            return;
        };
        let target = if dl != 0 {
            let mut l = layer as i64 + dl as i64;
            let mut found = None;
            while l >= 0 && (l as usize) < canvas.by_layer.len() {
                let row = &canvas.by_layer[l as usize];
                let center = rect.x + rect.w / 2;
                found = row
                    .iter()
                    .min_by_key(|n| {
                        canvas
                            .boxes
                            .get(n)
                            .map_or(u32::MAX, |r| (r.x + r.w / 2).abs_diff(center))
                    })
                    .copied();
                if found.is_some() {
                    break;
                }
                l += dl as i64;
            }
            found
        } else {
            canvas.by_layer.get(layer as usize).and_then(|row| {
                let pos = row.iter().position(|&n| n == cur)? as i64 + dx as i64;
                (pos >= 0).then(|| row.get(pos as usize).copied()).flatten()
            })
        };
        if let Some(t) = target {
            self.selected = Some(self.model.nodes[t].id.clone());
        }
    }
}
