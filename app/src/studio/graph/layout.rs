//! The layered canvas's layout: layers and order from rust-sugiyama (with a simple
//! longest-path layering as the fallback if it fails), mapped to terminal cells for each zoom
//! level, and edges routed through the gaps with box-drawing direction bits. Runs off the UI
//! task (see `runtime::jobs`); the result is plain data the canvas widget draws from.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use rust_sugiyama::configure::{Config, CrossingMinimization, RankingType};

use super::lanes::{E, N, S, W};
use super::model::{GEdgeKind, ViewGraph};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside a layout call whose panics are caught (the panic hook
/// then leaves the terminal alone).
pub fn in_guarded_section() -> bool {
    GUARDED.with(Cell::get)
}

/// Edge cells by (column, row).
pub type Cells = HashMap<(u32, u32), u8, BuildHasherDefault<FxHasher>>;

/// The zoom levels of the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Zoom {
    /// Three-row boxes with name, status, cycle, attempt and duration.
    #[default]
    Boxes,
    /// One-row pills: status glyph and name.
    Pills,
    /// One cell per node: everything at once.
    Dots,
}

impl Zoom {
    /// All levels, biggest first.
    pub const ALL: [Zoom; 3] = [Zoom::Boxes, Zoom::Pills, Zoom::Dots];

    /// Index into [`Zoom::ALL`].
    pub fn index(self) -> usize {
        match self {
            Zoom::Boxes => 0,
            Zoom::Pills => 1,
            Zoom::Dots => 2,
        }
    }

    /// (node width, node height, rows between layers, columns between nodes).
    pub fn geometry(self) -> (u32, u32, u32, u32) {
        match self {
            Zoom::Boxes => (22, 3, 3, 3),
            Zoom::Pills => (16, 1, 3, 2),
            Zoom::Dots => (1, 1, 2, 1),
        }
    }

    /// A word for the title bar.
    pub fn word(self) -> &'static str {
        match self {
            Zoom::Boxes => "boxes",
            Zoom::Pills => "pills",
            Zoom::Dots => "dots",
        }
    }
}

/// Layers and horizontal positions, independent of zoom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layered {
    /// Model index → (layer, x in node slots).
    pub pos: HashMap<usize, (u32, f64)>,
    /// Number of layers.
    pub layers: u32,
    /// Which algorithm produced it: `sugiyama` or `fallback`.
    pub engine: &'static str,
}

/// A node's cell rectangle on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellRect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// The canvas at one zoom level: node boxes and routed edge cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Canvas {
    /// Node boxes by model index.
    pub boxes: HashMap<usize, CellRect>,
    /// Per layer, its nodes left to right.
    pub by_layer: Vec<Vec<usize>>,
    /// Edge cells: low four bits solid N/E/S/W, high four bits the same for dashed edges.
    pub cells: Cells,
    /// Arrowheads.
    pub arrows: HashMap<(u32, u32), char>,
    /// Nodes with an edge to themselves.
    pub self_loops: HashSet<usize>,
    /// Canvas size in cells.
    pub width: u32,
    /// Canvas height.
    pub height: u32,
}

impl Canvas {
    /// The node whose box contains the cell.
    pub fn node_at(&self, x: u32, y: u32) -> Option<usize> {
        self.boxes
            .iter()
            .find(|(_, r)| x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h)
            .map(|(n, _)| *n)
    }
}

/// A finished layout for one view graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanvasLayout {
    /// The structure it was made for (see [`structure_key`]).
    pub key: u64,
    /// Layers and positions.
    pub layered: Layered,
    /// One canvas per zoom level ([`Zoom::index`]).
    pub canvases: Vec<Canvas>,
    /// Time taken, in milliseconds.
    pub millis: f64,
}

impl CanvasLayout {
    /// The canvas of a zoom level.
    pub fn canvas(&self, zoom: Zoom) -> Option<&Canvas> {
        self.canvases.get(zoom.index())
    }
}

/// A hash of a view graph's structure: equal keys need no new layout.
pub fn structure_key(view: &ViewGraph) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    view.nodes.hash(&mut h);
    view.edges.hash(&mut h);
    h.finish()
}

/// Lay out a view graph and route it at every zoom level.
pub fn compute(view: &ViewGraph) -> CanvasLayout {
    let t0 = Instant::now();
    let layered = layer(view);
    let canvases = Zoom::ALL
        .iter()
        .map(|&z| place(&layered, view, z))
        .collect();
    CanvasLayout {
        key: structure_key(view),
        layered,
        canvases,
        millis: t0.elapsed().as_secs_f64() * 1000.0,
    }
}

fn forward_edges(view: &ViewGraph) -> Vec<(usize, usize)> {
    let mut seen = HashSet::new();
    view.edges
        .iter()
        .filter(|(a, b, k)| *k != GEdgeKind::Loop && a != b)
        .map(|&(a, b, _)| (a, b))
        .filter(|e| seen.insert(*e))
        .collect()
}

/// Layers and x positions: rust-sugiyama, or the fallback when it fails.
pub fn layer(view: &ViewGraph) -> Layered {
    if view.nodes.is_empty() {
        return Layered {
            engine: "sugiyama",
            ..Layered::default()
        };
    }
    let edges = forward_edges(view);
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| sugiyama(view, &edges)));
    GUARDED.with(|g| g.set(false));
    let mut layered = match result {
        Ok(Some(l)) => l,
        _ => fallback(view, &edges),
    };
    keep_written_order(&mut layered, view);
    layered
}

/// Siblings (nodes of one layer with the same first predecessor, like a group's members)
/// read left to right in the order their edges were written. The crossing minimisation may
/// hand them back mirrored; then the whole drawing is mirrored, which keeps it as uncrossed
/// as it was.
fn keep_written_order(layered: &mut Layered, view: &ViewGraph) {
    let mut first_pred: HashMap<usize, (usize, usize)> = HashMap::new();
    for (k, &(a, b, kind)) in view.edges.iter().enumerate() {
        if kind != GEdgeKind::Loop && a != b {
            first_pred.entry(b).or_insert((a, k));
        }
    }
    let mut siblings: HashMap<(u32, usize), Vec<(usize, f64)>> = HashMap::new();
    for (&n, &(layer, x)) in &layered.pos {
        if let Some(&(pred, k)) = first_pred.get(&n) {
            siblings.entry((layer, pred)).or_default().push((k, x));
        }
    }
    let (mut kept, mut mirrored) = (0usize, 0usize);
    for list in siblings.values_mut() {
        list.sort_by_key(|(k, _)| *k);
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                if a.1 < b.1 {
                    kept += 1;
                } else if a.1 > b.1 {
                    mirrored += 1;
                }
            }
        }
    }
    if mirrored > kept {
        let max = layered.pos.values().map(|p| p.1).fold(0.0f64, f64::max);
        for p in layered.pos.values_mut() {
            p.1 = max - p.1;
        }
    }
}

fn sugiyama(view: &ViewGraph, edges: &[(usize, usize)]) -> Option<Layered> {
    let mut g: StableDiGraph<usize, ()> = StableDiGraph::new();
    let mut idx = HashMap::with_capacity(view.nodes.len());
    for &n in &view.nodes {
        idx.insert(n, g.add_node(n));
    }
    for &(a, b) in edges {
        if let (Some(&x), Some(&y)) = (idx.get(&a), idx.get(&b)) {
            g.add_edge(x, y, ());
        }
    }
    let config = Config {
        minimum_length: 1,
        vertex_spacing: 1.0,
        dummy_vertices: true,
        dummy_size: 1.0,
        ranking_type: RankingType::Up,
        c_minimization: CrossingMinimization::Barycenter,
        transpose: false,
    };
    let comps = rust_sugiyama::from_graph(&g, &|_: NodeIndex, _: &usize| (1.0, 1.0), &config);
    let mut pos = HashMap::with_capacity(view.nodes.len());
    let mut offset = 0.0f64;
    let mut layers = 0u32;
    for (coords, _, _) in comps {
        let mut ys: Vec<f64> = coords.iter().map(|(_, (_, y))| *y).collect();
        ys.sort_by(f64::total_cmp);
        ys.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
        let mut max_x = 0.0f64;
        for (ni, (x, y)) in &coords {
            let layer = ys.iter().position(|v| (v - y).abs() < 1e-6)? as u32;
            let model = *g.node_weight(*ni)?;
            let xu = x / 2.0;
            max_x = max_x.max(xu);
            pos.insert(model, (layer, offset + xu));
            layers = layers.max(layer + 1);
        }
        offset += max_x + 1.5;
    }
    if pos.len() != view.nodes.len() {
        return None;
    }
    // rust-sugiyama puts the head of an edge below its tail; make sure of it.
    let upward = edges
        .iter()
        .filter(|(a, b)| matches!((pos.get(a), pos.get(b)), (Some(pa), Some(pb)) if pa.0 > pb.0))
        .count();
    if upward * 2 > edges.len() {
        let max = layers.saturating_sub(1);
        for p in pos.values_mut() {
            p.0 = max - p.0;
        }
    }
    Some(Layered {
        pos,
        layers,
        engine: "sugiyama",
    })
}

/// Longest-path layering over the forward edges (edges closing a cycle ignored), then a few
/// barycenter sweeps to order each layer.
pub fn fallback(view: &ViewGraph, edges: &[(usize, usize)]) -> Layered {
    let mut local = HashMap::with_capacity(view.nodes.len());
    for (i, &n) in view.nodes.iter().enumerate() {
        local.insert(n, i);
    }
    let n = view.nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for &(a, b) in edges {
        if let (Some(&x), Some(&y)) = (local.get(&a), local.get(&b)) {
            out[x].push(y);
            indeg[y] += 1;
        }
    }
    let mut layer = vec![0u32; n];
    let mut queue: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut done = vec![false; n];
    let mut next = 0;
    loop {
        while let Some(x) = queue.pop() {
            done[x] = true;
            for &y in &out[x] {
                if done[y] {
                    continue;
                }
                layer[y] = layer[y].max(layer[x] + 1);
                indeg[y] = indeg[y].saturating_sub(1);
                if indeg[y] == 0 {
                    queue.push(y);
                }
            }
        }
        while next < n && done[next] {
            next += 1;
        }
        if next == n {
            break;
        }
        indeg[next] = 0;
        queue.push(next);
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers as usize];
    for i in 0..n {
        rows[layer[i] as usize].push(i);
    }
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (x, outs) in out.iter().enumerate() {
        for &y in outs {
            preds[y].push(x);
        }
    }
    let mut order = vec![0f64; n];
    for row in &rows {
        for (k, &i) in row.iter().enumerate() {
            order[i] = k as f64;
        }
    }
    for _ in 0..4 {
        for row in rows.iter_mut().skip(1) {
            for &i in row.iter() {
                if !preds[i].is_empty() {
                    order[i] =
                        preds[i].iter().map(|&p| order[p]).sum::<f64>() / preds[i].len() as f64;
                }
            }
            row.sort_by(|a, b| order[*a].total_cmp(&order[*b]));
            for (k, &i) in row.iter().enumerate() {
                order[i] = k as f64;
            }
        }
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let mut pos = HashMap::with_capacity(n);
    for (l, row) in rows.iter().enumerate() {
        let pad = (widest - row.len() as f64) / 2.0;
        for (k, &i) in row.iter().enumerate() {
            pos.insert(view.nodes[i], (l as u32, pad + k as f64));
        }
    }
    Layered {
        pos,
        layers,
        engine: "fallback",
    }
}

/// Place the nodes at one zoom level and route the edges.
pub fn place(layered: &Layered, view: &ViewGraph, zoom: Zoom) -> Canvas {
    let (w, h, gap, hgap) = zoom.geometry();
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layered.layers as usize];
    for (&n, &(l, _)) in &layered.pos {
        if let Some(row) = by_layer.get_mut(l as usize) {
            row.push(n);
        }
    }
    let mut boxes = HashMap::with_capacity(layered.pos.len());
    let slot = (w + hgap) as f64;
    for (l, row) in by_layer.iter_mut().enumerate() {
        row.sort_by(|a, b| {
            let xa = layered.pos.get(a).map_or(0.0, |p| p.1);
            let xb = layered.pos.get(b).map_or(0.0, |p| p.1);
            xa.total_cmp(&xb).then(a.cmp(b))
        });
        let mut next_free = 0u32;
        for &n in row.iter() {
            let want = (layered.pos.get(&n).map_or(0.0, |p| p.1) * slot)
                .round()
                .max(0.0) as u32;
            let x = want.max(next_free);
            next_free = x + w + hgap;
            boxes.insert(
                n,
                CellRect {
                    x,
                    y: l as u32 * (h + gap),
                    w,
                    h,
                },
            );
        }
    }
    let mut canvas = Canvas {
        boxes,
        by_layer,
        ..Canvas::default()
    };
    route(&mut canvas, layered, view, zoom);
    canvas
}

fn route(canvas: &mut Canvas, layered: &Layered, view: &ViewGraph, zoom: Zoom) {
    let (_, h, gap, _) = zoom.geometry();
    let layer_y = |l: u32| l * (h + gap);
    let layer_right: Vec<u32> = canvas
        .by_layer
        .iter()
        .map(|row| {
            row.last()
                .and_then(|n| canvas.boxes.get(n))
                .map_or(0, |r| r.x + r.w)
        })
        .collect();
    let mut width = layer_right.iter().copied().max().unwrap_or(0);
    let mut back_index = 0u32;
    let mut seen = HashSet::new();
    for &(a, b, kind) in &view.edges {
        if !seen.insert((a, b)) {
            continue;
        }
        let (Some(&ra), Some(&rb)) = (canvas.boxes.get(&a), canvas.boxes.get(&b)) else {
            continue;
        };
        if a == b {
            canvas.self_loops.insert(a);
            continue;
        }
        let la = layered.pos.get(&a).map_or(0, |p| p.0);
        let lb = layered.pos.get(&b).map_or(0, |p| p.0);
        if kind == GEdgeKind::Loop || lb <= la {
            // Back edge: out of the source's right side, up a channel right of every node in
            // between, into the target's right side.
            let top = lb.min(la) as usize;
            let bottom = lb.max(la) as usize;
            let right = layer_right[top..=bottom].iter().copied().max().unwrap_or(0);
            let rx = right + 2 + 2 * (back_index % 6);
            back_index += 1;
            let ya = ra.y + ra.h / 2;
            let yb = rb.y + rb.h / 2;
            let pts = [(ra.x + ra.w, ya), (rx, ya), (rx, yb), (rb.x + rb.w + 1, yb)];
            polyline(&mut canvas.cells, &pts, true);
            canvas.arrows.insert((rb.x + rb.w, yb), '◀');
            set(&mut canvas.cells, rb.x + rb.w, yb, E | W, true);
            width = width.max(rx + 1);
            continue;
        }
        let sx = ra.x + ra.w / 2;
        let exit_y = ra.y + ra.h;
        let track1 = exit_y + (gap - 1) / 2;
        let tx = rb.x + rb.w / 2;
        let arrow_y = rb.y.saturating_sub(1);
        let mut pts = vec![(sx, exit_y), (sx, track1)];
        if lb > la + 1 {
            let fx = free_column(canvas, la + 1, lb - 1, sx, tx, width);
            let track2 = layer_y(lb).saturating_sub(gap) + (gap - 1) / 2;
            pts.extend([(fx, track1), (fx, track2), (tx, track2)]);
            width = width.max(fx + 1);
        } else {
            pts.push((tx, track1));
        }
        pts.push((tx, arrow_y));
        set(&mut canvas.cells, sx, exit_y, N, false);
        polyline(&mut canvas.cells, &pts, false);
        canvas.arrows.insert((tx, arrow_y), '▼');
    }
    canvas.width = width + 1;
    canvas.height = layered.layers * (h + gap);
}

/// A column free of node boxes in layers `from..=to`, as close to `prefer` as possible.
fn free_column(canvas: &Canvas, from: u32, to: u32, prefer: u32, toward: u32, width: u32) -> u32 {
    let blocked = |x: u32| {
        (from..=to).any(|l| {
            canvas.by_layer.get(l as usize).is_some_and(|row| {
                // Rows are sorted by x: binary search the box that could cover x.
                let i = row.partition_point(|n| canvas.boxes.get(n).is_some_and(|r| r.x + r.w < x));
                row.get(i)
                    .and_then(|n| canvas.boxes.get(n))
                    .is_some_and(|r| x + 1 >= r.x && x <= r.x + r.w)
            })
        })
    };
    let step_toward: i64 = if toward >= prefer { 1 } else { -1 };
    for d in 0..400i64 {
        for cand in [
            prefer as i64 + d * step_toward,
            prefer as i64 - d * step_toward,
        ] {
            if cand >= 0 && !blocked(cand as u32) {
                return cand as u32;
            }
        }
    }
    width + 1
}

fn set(cells: &mut Cells, x: u32, y: u32, bits: u8, dashed: bool) {
    let v = cells.entry((x, y)).or_insert(0);
    *v |= if dashed { bits << 4 } else { bits };
}

/// Draw axis-aligned segments between consecutive points: one cell update per cell.
fn polyline(cells: &mut Cells, pts: &[(u32, u32)], dashed: bool) {
    for pair in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if y0 == y1 && x0 != x1 {
            let (lo, hi) = (x0.min(x1), x0.max(x1));
            set(cells, lo, y0, E, dashed);
            for x in lo + 1..hi {
                set(cells, x, y0, E | W, dashed);
            }
            set(cells, hi, y0, W, dashed);
        } else if x0 == x1 && y0 != y1 {
            let (lo, hi) = (y0.min(y1), y0.max(y1));
            set(cells, x0, lo, S, dashed);
            for y in lo + 1..hi {
                set(cells, x0, y, N | S, dashed);
            }
            set(cells, x0, hi, N, dashed);
        } else if x0 != x1 {
            // Not axis-aligned (never produced by the router): go across, then down.
            polyline(cells, &[(x0, y0), (x1, y0), (x1, y1)], dashed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: usize, edges: &[(usize, usize, GEdgeKind)]) -> ViewGraph {
        ViewGraph {
            nodes: (0..n).collect(),
            edges: edges.to_vec(),
            hidden: Default::default(),
        }
    }

    #[test]
    fn a_chain_goes_down() {
        let v = view(3, &[(0, 1, GEdgeKind::Plain), (1, 2, GEdgeKind::Plain)]);
        let l = compute(&v);
        assert_eq!(l.layered.engine, "sugiyama");
        assert_eq!(l.layered.pos[&0].0, 0);
        assert_eq!(l.layered.pos[&1].0, 1);
        assert_eq!(l.layered.pos[&2].0, 2);
        let c = l.canvas(Zoom::Boxes).unwrap_or_else(|| panic!("no canvas"));
        let (a, b) = (c.boxes[&0], c.boxes[&1]);
        assert!(a.y + a.h < b.y);
        assert_eq!(c.arrows.get(&(b.x + b.w / 2, b.y - 1)), Some(&'▼'));
    }

    #[test]
    fn boxes_never_overlap_and_loops_are_dashed() {
        let mut edges: Vec<(usize, usize, GEdgeKind)> =
            (1..30).map(|i| (0, i, GEdgeKind::Plain)).collect();
        edges.extend((1..30).map(|i| (i, 30, GEdgeKind::Plain)));
        edges.push((30, 0, GEdgeKind::Loop));
        edges.push((0, 30, GEdgeKind::Plain));
        let v = view(31, &edges);
        let l = compute(&v);
        for z in Zoom::ALL {
            let c = l.canvas(z).unwrap_or_else(|| panic!("no canvas"));
            for row in &c.by_layer {
                for pair in row.windows(2) {
                    let (a, b) = (c.boxes[&pair[0]], c.boxes[&pair[1]]);
                    assert!(a.x + a.w <= b.x, "{z:?}: overlap");
                }
            }
            assert!(
                c.cells.values().any(|v| v >> 4 != 0),
                "{z:?}: no dashed cell"
            );
        }
    }

    #[test]
    fn members_read_in_written_order() {
        // A group (0) with members 1, 2, 3 written in that order, joining into 4.
        let v = view(
            5,
            &[
                (0, 1, GEdgeKind::Member),
                (0, 2, GEdgeKind::Member),
                (0, 3, GEdgeKind::Member),
                (1, 4, GEdgeKind::Plain),
                (2, 4, GEdgeKind::Plain),
                (3, 4, GEdgeKind::Plain),
            ],
        );
        let l = compute(&v);
        let c = l.canvas(Zoom::Boxes).unwrap_or_else(|| panic!("no canvas"));
        assert!(c.boxes[&1].x < c.boxes[&2].x && c.boxes[&2].x < c.boxes[&3].x);
    }

    #[test]
    fn fallback_layers_a_dag() {
        let v = view(
            4,
            &[
                (0, 1, GEdgeKind::Plain),
                (1, 3, GEdgeKind::Plain),
                (0, 2, GEdgeKind::Plain),
                (2, 3, GEdgeKind::Plain),
            ],
        );
        let l = fallback(&v, &forward_edges(&v));
        assert_eq!(l.layers, 3);
        assert_eq!(l.pos[&3].0, 2);
        assert_ne!(l.pos[&1].1, l.pos[&2].1);
    }
}
