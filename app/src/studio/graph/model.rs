//! The graph model the three views share: the workflow's tasks and groups with their edges,
//! plus the tasks a run added at run time. Statuses are not stored here (the run has them),
//! so a status change never touches the model, and a structure change never loses a status.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use graflow_engine::{EdgeKind, NodeKind, Workflow};

/// A node of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct GNode {
    /// Task or group id.
    pub id: Arc<str>,
    /// Whether it is a parallel group.
    pub is_group: bool,
    /// A group's member heads (model indices), in writing order.
    pub members: Vec<usize>,
    /// A group's policy in the file's words (`AtLeast(2)`).
    pub policy: Option<String>,
    /// The group this node is a member head of.
    pub parent: Option<usize>,
    /// The handler kind (`shell`, `script`, `rust`, …), or `group`.
    pub kind: String,
    /// Added at run time.
    pub dynamic: bool,
}

/// An edge's kind in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GEdgeKind {
    /// `a >> b`.
    Plain,
    /// Closes a cycle (drawn dashed).
    Loop,
    /// A group to one of its member heads.
    Member,
    /// From a task to a task it added at run time.
    Dynamic,
}

/// The model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphModel {
    /// Nodes; the index is the node's model index.
    pub nodes: Vec<GNode>,
    /// Edges (from, to, kind) in writing order, member edges included.
    pub edges: Vec<(usize, usize, GEdgeKind)>,
    /// Id → model index.
    pub index: HashMap<Arc<str>, usize>,
    /// The start node.
    pub start: Option<usize>,
    /// Per node, the innermost group whose contents it is in.
    pub owner: Vec<Option<usize>>,
}

impl GraphModel {
    /// The model of a workflow's graph.
    pub fn from_workflow(wf: &Workflow) -> GraphModel {
        let g = wf.graph();
        let mut m = GraphModel::default();
        let mut local = HashMap::new();
        for (nid, node) in g.nodes() {
            let kind = if node.is_group() {
                "group".to_string()
            } else {
                wf.task(&node.id)
                    .map(|d| d.handler().kind().to_string())
                    .unwrap_or_else(|| "task".to_string())
            };
            let policy = match &node.kind {
                NodeKind::Group { policy, .. } => Some(policy.label()),
                NodeKind::Task => None,
            };
            let i = m.push(GNode {
                id: node.id.clone(),
                is_group: node.is_group(),
                members: Vec::new(),
                policy,
                parent: None,
                kind,
                dynamic: false,
            });
            local.insert(nid, i);
        }
        for (nid, node) in g.nodes() {
            if let NodeKind::Group { members, .. } = &node.kind {
                let gi = local[&nid];
                for mid in members {
                    if let Some(&mi) = local.get(mid) {
                        m.nodes[gi].members.push(mi);
                        m.nodes[mi].parent = Some(gi);
                        m.edges.push((gi, mi, GEdgeKind::Member));
                    }
                }
            }
        }
        for (a, b, kind) in g.edges() {
            if let (Some(&a), Some(&b)) = (local.get(&a), local.get(&b)) {
                let k = match kind {
                    EdgeKind::Plain => GEdgeKind::Plain,
                    EdgeKind::Loop => GEdgeKind::Loop,
                };
                m.edges.push((a, b, k));
            }
        }
        m.start = local.get(&wf.start()).copied();
        m.compute_owners();
        m
    }

    fn compute_owners(&mut self) {
        self.owner = vec![None; self.nodes.len()];
        let mut groups: Vec<(usize, Vec<usize>)> = (0..self.nodes.len())
            .filter(|&g| self.nodes[g].is_group)
            .map(|g| (g, self.group_contents(g)))
            .collect();
        groups.sort_by_key(|(_, c)| c.len());
        for (g, contents) in groups {
            for c in contents {
                if self.owner[c].is_none() {
                    self.owner[c] = Some(g);
                }
            }
        }
    }

    /// The innermost group whose contents hold `n` (a member head or a node of its chain).
    pub fn enclosing_group(&self, n: usize) -> Option<usize> {
        self.owner
            .get(n)
            .copied()
            .flatten()
            .or(self.nodes.get(n)?.parent)
    }

    fn push(&mut self, node: GNode) -> usize {
        let i = self.nodes.len();
        self.index.insert(node.id.clone(), i);
        self.nodes.push(node);
        i
    }

    /// Add a task created at run time by `by` (no-op when it exists). Returns whether the
    /// model changed.
    pub fn add_dynamic(&mut self, id: &Arc<str>, by: &str) -> bool {
        if self.index.contains_key(id) {
            return false;
        }
        let i = self.push(GNode {
            id: id.clone(),
            is_group: false,
            members: Vec::new(),
            policy: None,
            parent: None,
            kind: "task".into(),
            dynamic: true,
        });
        self.owner.push(None);
        if let Some(&from) = self.index.get(by) {
            self.edges.push((from, i, GEdgeKind::Dynamic));
        }
        true
    }

    /// The model index of an id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Nodes inside a group: its member heads and everything reachable from them through
    /// forward edges (their chains), recursively through nested groups.
    pub fn group_contents(&self, group: usize) -> Vec<usize> {
        let out_edges = self.out_edges();
        let mut seen: HashSet<usize> = HashSet::new();
        let mut queue: VecDeque<usize> = self.nodes[group].members.iter().copied().collect();
        let mut order = Vec::new();
        while let Some(n) = queue.pop_front() {
            if n == group || !seen.insert(n) {
                continue;
            }
            order.push(n);
            for &(t, k) in &out_edges[n] {
                if k != GEdgeKind::Loop {
                    queue.push_back(t);
                }
            }
        }
        order
    }

    /// Outgoing edges per node, in writing order (member edges first for groups).
    pub fn out_edges(&self) -> Vec<Vec<(usize, GEdgeKind)>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for &(a, b, k) in &self.edges {
            if k == GEdgeKind::Member {
                out[a].push((b, k));
            }
        }
        for &(a, b, k) in &self.edges {
            if k != GEdgeKind::Member {
                out[a].push((b, k));
            }
        }
        out
    }
}

/// The part of the model a view shows: some nodes, and edges between them. Built by
/// [`derive()`] from the model, the collapsed groups and the focus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewGraph {
    /// Model indices of the shown nodes, in model order.
    pub nodes: Vec<usize>,
    /// Edges between shown nodes (model indices).
    pub edges: Vec<(usize, usize, GEdgeKind)>,
    /// For a collapsed group, the model indices of the nodes hidden inside it.
    pub hidden: HashMap<usize, Vec<usize>>,
}

/// How groups are drawn in a derived graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupShape {
    /// The group heads its members and its successors (for the list: few lanes).
    Bus,
    /// The group forks to its members, whose chain ends join into its successors (canvas).
    ForkJoin,
}

/// Groups with at most this many member chains close their lanes into their successors in
/// the list; wider ones keep to their bus.
pub const JOINED_LANES: usize = 6;

/// The ends of a group's member chains: its contents with no forward edge out.
fn chain_ends(model: &GraphModel, out: &[Vec<(usize, GEdgeKind)>], group: usize) -> Vec<usize> {
    model
        .group_contents(group)
        .into_iter()
        .filter(|&c| out[c].iter().all(|&(_, k)| k == GEdgeKind::Loop))
        .collect()
}

/// The nodes and edges to show: collapsed groups hide their contents; `focus` keeps the
/// nodes within `depth` steps of a node (edges taken both ways).
pub fn derive(
    model: &GraphModel,
    collapsed: &HashSet<Arc<str>>,
    focus: Option<(usize, u8)>,
    shape: GroupShape,
) -> ViewGraph {
    let n = model.len();
    let mut shown = vec![true; n];
    let mut hidden: HashMap<usize, Vec<usize>> = HashMap::new();
    for (gi, node) in model.nodes.iter().enumerate() {
        if node.is_group && collapsed.contains(&node.id) {
            let contents = model.group_contents(gi);
            for &c in &contents {
                shown[c] = false;
            }
            hidden.insert(gi, contents);
        }
    }
    // A collapsed group hidden inside another collapsed group hides nothing of its own.
    hidden.retain(|g, _| shown[*g]);

    let mut edges: Vec<(usize, usize, GEdgeKind)> = Vec::new();
    match shape {
        GroupShape::Bus => {
            let out = model.out_edges();
            for &(a, b, k) in &model.edges {
                if shown[a] && shown[b] {
                    edges.push((a, b, k));
                }
            }
            // The lanes of the member chains close into the group's successors (`─╯`); a
            // wide group keeps to its bus, so the gutter stays narrow.
            for &(a, b, k) in &model.edges {
                let expanded_group = model.nodes[a].is_group && !hidden.contains_key(&a);
                if !(expanded_group && k == GEdgeKind::Plain && shown[a] && shown[b]) {
                    continue;
                }
                let ends = chain_ends(model, &out, a);
                if ends.len() > JOINED_LANES {
                    continue;
                }
                for end in ends {
                    if shown[end] && !edges.contains(&(end, b, GEdgeKind::Plain)) {
                        edges.push((end, b, GEdgeKind::Plain));
                    }
                }
            }
        }
        GroupShape::ForkJoin => {
            let out = model.out_edges();
            for &(a, b, k) in &model.edges {
                if !(shown[a] && shown[b]) {
                    continue;
                }
                let expanded_group = model.nodes[a].is_group && !hidden.contains_key(&a);
                if expanded_group && k == GEdgeKind::Plain {
                    // Join: the ends of the member chains lead to the group's successor.
                    let ends = chain_ends(model, &out, a);
                    if ends.is_empty() {
                        edges.push((a, b, k));
                    }
                    for e in ends {
                        if shown[e] {
                            edges.push((e, b, GEdgeKind::Plain));
                        }
                    }
                } else {
                    edges.push((a, b, k));
                }
            }
            edges.dedup();
        }
    }

    if let Some((center, depth)) = focus.filter(|(c, _)| *c < n && shown[*c]) {
        let mut adj = vec![Vec::new(); n];
        for &(a, b, _) in &edges {
            adj[a].push(b);
            adj[b].push(a);
        }
        let mut dist = vec![u8::MAX; n];
        dist[center] = 0;
        let mut q = VecDeque::from([center]);
        while let Some(x) = q.pop_front() {
            if dist[x] >= depth {
                continue;
            }
            for &y in &adj[x] {
                if dist[y] == u8::MAX {
                    dist[y] = dist[x] + 1;
                    q.push_back(y);
                }
            }
        }
        for (i, s) in shown.iter_mut().enumerate() {
            *s = *s && dist[i] != u8::MAX;
        }
        edges.retain(|&(a, b, _)| shown[a] && shown[b]);
        hidden.retain(|g, _| shown[*g]);
    }

    ViewGraph {
        nodes: (0..n).filter(|&i| shown[i]).collect(),
        edges,
        hidden,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use graflow_engine::{GroupDef, TaskDef, handler::builtin::NoopHandler};

    pub(crate) fn etl() -> GraphModel {
        let mut wf = Workflow::builder("etl");
        for id in ["fetch", "a", "a2", "b", "merge"] {
            wf.add(TaskDef::new(id, Arc::new(NoopHandler)));
        }
        wf.add_group(GroupDef::new(
            "cleaners",
            graflow_engine::parse_flow("a >> a2 | b")
                .unwrap_or_default()
                .remove(0),
        ));
        wf.flow_str("fetch >> cleaners >> merge");
        let wf = wf.build().unwrap_or_else(|e| panic!("{e}"));
        GraphModel::from_workflow(&wf)
    }

    #[test]
    fn builds_nodes_groups_and_edges() {
        let m = etl();
        let g = m.find("cleaners").unwrap_or(usize::MAX);
        assert!(m.nodes[g].is_group);
        let members: Vec<&str> = m.nodes[g]
            .members
            .iter()
            .map(|&i| &*m.nodes[i].id)
            .collect();
        assert_eq!(members, ["a", "b"]);
        let mut contents: Vec<&str> = m
            .group_contents(g)
            .iter()
            .map(|&i| &*m.nodes[i].id)
            .collect();
        contents.sort_unstable();
        assert_eq!(contents, ["a", "a2", "b"]);
        assert_eq!(m.start, m.find("fetch"));
        assert_eq!(m.nodes[m.find("fetch").unwrap_or(0)].kind, "noop");
    }

    #[test]
    fn collapse_focus_and_fork_join() {
        let m = etl();
        let g = m.find("cleaners").unwrap_or(usize::MAX);
        let collapsed: HashSet<Arc<str>> = [Arc::from("cleaners")].into();
        let v = derive(&m, &collapsed, None, GroupShape::Bus);
        assert_eq!(v.nodes.len(), 3);
        assert_eq!(v.hidden[&g].len(), 3);

        let v = derive(&m, &HashSet::new(), None, GroupShape::ForkJoin);
        let merge = m.find("merge").unwrap_or(0);
        let mut into_merge: Vec<&str> = v
            .edges
            .iter()
            .filter(|e| e.1 == merge)
            .map(|e| &*m.nodes[e.0].id)
            .collect();
        into_merge.sort_unstable();
        assert_eq!(into_merge, ["a2", "b"]);

        let fetch = m.find("fetch").unwrap_or(0);
        let v = derive(&m, &HashSet::new(), Some((fetch, 1)), GroupShape::Bus);
        let ids: Vec<&str> = v.nodes.iter().map(|&i| &*m.nodes[i].id).collect();
        assert_eq!(ids, ["fetch", "cleaners"]);
    }

    #[test]
    fn dynamic_tasks_join_once() {
        let mut m = etl();
        let id: Arc<str> = "extra".into();
        assert!(m.add_dynamic(&id, "merge"));
        assert!(!m.add_dynamic(&id, "merge"));
        assert!(m.edges.contains(&(
            m.find("merge").unwrap_or(0),
            m.find("extra").unwrap_or(0),
            GEdgeKind::Dynamic
        )));
    }
}
