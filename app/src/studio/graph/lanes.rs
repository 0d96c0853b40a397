//! The list view's lanes, like `git log --graph`: one row per node in a depth-first
//! topological order, and a gutter of lanes carrying edges down to their targets.
//!
//! A lane starts below a node and carries all its outgoing edges (a "bus"): a target that is
//! the lane's last one continues straight down the lane; an earlier target branches off to
//! the right (`├─●`). Lanes reaching the same node merge into it (`─╯`). Loop edges do not
//! take lanes; the row names their targets instead (`↺ fetch`). Rows are computed once per
//! structure change and drawn by looking up the visible ones.

use std::collections::HashMap;

use super::model::{GEdgeKind, ViewGraph};

/// Direction bits of a gutter cell.
pub const N: u8 = 1;
/// East.
pub const E: u8 = 2;
/// South.
pub const S: u8 = 4;
/// West.
pub const W: u8 = 8;
/// A horizontal line in the gap to the right of this column.
pub const GAP: u8 = 16;

/// Columns of the gutter that are drawn; rows with wider gutters are cut (and marked).
pub const MAX_COLUMNS: usize = 16;

/// One row of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneRow {
    /// The node (model index).
    pub node: usize,
    /// Its gutter column.
    pub col: usize,
    /// Direction bits per gutter column (the node's own column included).
    pub cells: Vec<u8>,
    /// Targets of loop edges leaving this node (model indices).
    pub loops: Vec<usize>,
    /// Nesting depth (0 outside groups; +1 per enclosing group).
    pub depth: u8,
}

/// The rows of a view graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lanes {
    /// Rows in display order.
    pub rows: Vec<LaneRow>,
    /// Model index → row.
    pub row_of: HashMap<usize, usize>,
    /// The widest gutter (in columns).
    pub width: usize,
}

/// The box-drawing glyph of a set of direction bits.
pub fn glyph(bits: u8) -> char {
    match bits & (N | E | S | W) {
        0 => ' ',
        b if b == N | S || b == N || b == S => '│',
        b if b == E | W || b == E || b == W => '─',
        b if b == S | E => '╭',
        b if b == S | W => '╮',
        b if b == N | E => '╰',
        b if b == N | W => '╯',
        b if b == N | S | E => '├',
        b if b == N | S | W => '┤',
        b if b == E | W | S => '┬',
        b if b == E | W | N => '┴',
        _ => '┼',
    }
}

/// A dashed glyph for loop edges.
pub fn dashed_glyph(bits: u8) -> char {
    match bits & (N | E | S | W) {
        b if b == N | S || b == N || b == S => '┆',
        b if b == E | W || b == E || b == W => '┄',
        b => glyph(b),
    }
}

/// Order the view graph depth-first and topologically: a node comes after its forward
/// predecessors, and a chain's nodes stay together. Nodes in a cycle of forward edges (which
/// a valid workflow never has) are placed where the cycle is first met.
pub fn order(view: &ViewGraph, model_len: usize) -> Vec<usize> {
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); model_len];
    let mut indeg = vec![0usize; model_len];
    let mut present = vec![false; model_len];
    for &n in &view.nodes {
        present[n] = true;
    }
    // Member edges first, so a group's members come before its successors.
    for pass in [true, false] {
        for &(a, b, k) in &view.edges {
            if (k == GEdgeKind::Member) != pass || k == GEdgeKind::Loop || a == b {
                continue;
            }
            out_edges[a].push(b);
            indeg[b] += 1;
        }
    }
    let mut emitted = vec![false; model_len];
    let mut order = Vec::with_capacity(view.nodes.len());
    let mut stack: Vec<usize> = view
        .nodes
        .iter()
        .rev()
        .copied()
        .filter(|&n| indeg[n] == 0)
        .collect();
    let mut next_unplaced = 0;
    loop {
        while let Some(n) = stack.pop() {
            if emitted[n] {
                continue;
            }
            emitted[n] = true;
            order.push(n);
            for &t in out_edges[n].iter().rev() {
                indeg[t] = indeg[t].saturating_sub(1);
                if indeg[t] == 0 && !emitted[t] {
                    stack.push(t);
                }
            }
        }
        // Anything left sits on a cycle: break it at the first such node.
        while next_unplaced < view.nodes.len() && emitted[view.nodes[next_unplaced]] {
            next_unplaced += 1;
        }
        match view.nodes.get(next_unplaced) {
            Some(&n) if present[n] => stack.push(n),
            _ => break,
        }
    }
    order
}

/// Compute the rows. `depth_of` gives each node's group nesting depth.
pub fn compute(view: &ViewGraph, model_len: usize, depth_of: impl Fn(usize) -> u8) -> Lanes {
    let order = order(view, model_len);
    let mut position = vec![usize::MAX; model_len];
    for (i, &n) in order.iter().enumerate() {
        position[n] = i;
    }
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); model_len];
    let mut loops: Vec<Vec<usize>> = vec![Vec::new(); model_len];
    for pass in [true, false] {
        for &(a, b, k) in &view.edges {
            if (k == GEdgeKind::Member) != pass {
                continue;
            }
            if k == GEdgeKind::Loop || position[b] <= position[a] {
                loops[a].push(b);
            } else {
                succ[a].push(b);
            }
        }
    }

    // lanes[c] = Some(remaining target count) for an active lane in column c.
    let mut lanes: Vec<Option<usize>> = Vec::new();
    // target → lanes carrying an edge to it.
    let mut waiting: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut rows = Vec::with_capacity(order.len());
    let mut row_of = HashMap::with_capacity(order.len());
    let mut width = 0;

    for &n in &order {
        let hits = waiting.remove(&n).unwrap_or_default();
        let mut ended = Vec::new();
        let mut continuing = Vec::new();
        for &c in &hits {
            if let Some(Some(rem)) = lanes.get_mut(c) {
                *rem = rem.saturating_sub(1);
                if *rem == 0 {
                    ended.push(c);
                } else {
                    continuing.push(c);
                }
            }
        }
        ended.sort_unstable();
        ended.dedup();
        let col = match ended.first() {
            Some(&c) => c,
            None => {
                let after = continuing.iter().copied().min().map_or(0, |c| c + 1);
                (after..)
                    .find(|&c| lanes.get(c).is_none_or(|l| l.is_none()))
                    .unwrap_or(lanes.len())
            }
        };
        let ncols = lanes.len().max(col + 1);
        let mut cells = vec![0u8; ncols];
        for (c, lane) in lanes.iter().enumerate() {
            if lane.is_some() && !hits.contains(&c) {
                cells[c] |= N | S;
            }
        }
        for &c in &ended {
            if c != col {
                cells[c] |= N | if c > col { W } else { E };
                link(&mut cells, c, col);
            }
        }
        for &c in &continuing {
            cells[c] |= N | S | if c > col { W } else { E };
            link(&mut cells, c, col);
        }
        if !ended.is_empty() {
            cells[col] |= N;
        }
        for &c in &ended {
            lanes[c] = None;
        }
        let targets = &succ[n];
        if !targets.is_empty() {
            if lanes.len() <= col {
                lanes.resize(col + 1, None);
            }
            lanes[col] = Some(targets.len());
            cells[col] |= S;
            for &t in targets {
                waiting.entry(t).or_default().push(col);
            }
        }
        while lanes.last().is_some_and(Option::is_none) {
            lanes.pop();
        }
        width = width.max(cells.len());
        row_of.insert(n, rows.len());
        rows.push(LaneRow {
            node: n,
            col,
            cells,
            loops: loops[n].clone(),
            depth: depth_of(n),
        });
    }
    Lanes {
        rows,
        row_of,
        width,
    }
}

/// Draw the horizontal link between columns `a` and `b` (exclusive of both ends' own bits).
fn link(cells: &mut [u8], a: usize, b: usize) {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    for (k, cell) in cells[lo..hi].iter_mut().enumerate() {
        *cell |= GAP;
        if k > 0 {
            *cell |= E | W;
        }
    }
}

/// The gutter of a row as text: two characters per column, the node's column showing
/// `node_glyph`. Cut to [`MAX_COLUMNS`] columns (the last one then shows `»`).
pub fn gutter(row: &LaneRow, width: usize, node_glyph: &str) -> Vec<(String, bool)> {
    let cols = width.clamp(1, MAX_COLUMNS);
    let mut out = Vec::with_capacity(cols * 2);
    for c in 0..cols {
        let bits = row.cells.get(c).copied().unwrap_or(0);
        if c == row.col || (row.col >= cols && c == cols - 1) {
            let g = if row.col >= cols { "»" } else { node_glyph };
            out.push((g.to_string(), true));
        } else {
            out.push((glyph(bits).to_string(), false));
        }
        out.push((if bits & GAP != 0 { "─" } else { " " }.to_string(), false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::{GroupShape, derive};
    use super::*;
    use std::collections::HashSet;

    fn text(l: &Lanes, names: &[&str]) -> String {
        l.rows
            .iter()
            .map(|r| {
                let g: String = gutter(r, l.width, "●")
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect();
                format!("{} {}", g.trim_end(), names[r.node])
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn view(n: usize, edges: &[(usize, usize)]) -> ViewGraph {
        ViewGraph {
            nodes: (0..n).collect(),
            edges: edges
                .iter()
                .map(|&(a, b)| (a, b, GEdgeKind::Plain))
                .collect(),
            hidden: Default::default(),
        }
    }

    #[test]
    fn a_chain_is_one_lane() {
        let v = view(3, &[(0, 1), (1, 2)]);
        let l = compute(&v, 3, |_| 0);
        assert_eq!(text(&l, &["a", "b", "c"]), "● a\n● b\n● c");
    }

    #[test]
    fn a_diamond_branches_and_merges() {
        // a >> b >> d; a >> c >> d
        let v = view(4, &[(0, 1), (1, 3), (0, 2), (2, 3)]);
        let l = compute(&v, 4, |_| 0);
        assert_eq!(text(&l, &["a", "b", "c", "d"]), "● a\n├─● b\n● │ c\n●─╯ d");
    }

    #[test]
    fn a_group_uses_a_bus() {
        let m = super::super::model::tests::etl();
        let v = derive(&m, &HashSet::new(), None, GroupShape::Bus);
        let l = compute(&v, m.len(), |_| 0);
        let names: Vec<&str> = m.nodes.iter().map(|n| &*n.id).collect();
        let t = text(&l, &names);
        // The members' lanes close into the group's successor.
        assert_eq!(
            t, "● fetch\n● cleaners\n├─● a\n│ ● a2\n├─┼─● b\n●─┴─╯ merge",
            "\n{t}"
        );
        assert!(l.width <= 3);
    }

    #[test]
    fn huge_fan_out_keeps_the_gutter_narrow() {
        let n = 5001;
        let edges: Vec<(usize, usize)> = (1..n).map(|i| (0, i)).collect();
        let l = compute(&view(n, &edges), n, |_| 0);
        assert_eq!(l.rows.len(), n);
        assert!(l.width <= 2, "width {}", l.width);
    }

    #[test]
    fn loops_and_cycles_do_not_hang() {
        let v = ViewGraph {
            nodes: vec![0, 1, 2],
            edges: vec![
                (0, 1, GEdgeKind::Plain),
                (1, 2, GEdgeKind::Plain),
                (2, 1, GEdgeKind::Plain),
                (2, 0, GEdgeKind::Loop),
            ],
            hidden: Default::default(),
        };
        let l = compute(&v, 3, |_| 0);
        assert_eq!(l.rows.len(), 3);
        assert_eq!(l.rows[2].loops, vec![1, 0]);
    }
}
