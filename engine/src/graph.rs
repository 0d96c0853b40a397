//! The task graph on petgraph: task and group nodes, plain and loop edges, group membership,
//! start detection and loop-edge classification.
//!
//! Edges written with `>>` connect tasks and groups; members of a group are not connected to
//! it by edges but listed in the group node. A loop edge is one that closes a cycle as seen
//! from the start (a back edge of a depth-first walk); loop edges re-trigger their target
//! without waiting for its other predecessors.

use std::collections::HashMap;
use std::sync::Arc;

use petgraph::Direction;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use rustc_hash::FxHashSet;

use crate::error::BuildError;
use crate::group::GroupPolicy;

/// A node's index in the graph.
pub type NodeId = NodeIndex<u32>;

/// What a node is.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A task.
    Task,
    /// A parallel group with its members (each heads a branch) and its policy.
    Group {
        /// Member nodes, in the order written.
        members: Vec<NodeId>,
        /// How member outcomes decide the group's outcome.
        policy: GroupPolicy,
    },
}

/// A node of the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// Task or group id.
    pub id: Arc<str>,
    /// Task or group.
    pub kind: NodeKind,
    /// The group this node is a member of, if any.
    pub group: Option<NodeId>,
}

impl Node {
    /// Whether this node is a parallel group.
    pub fn is_group(&self) -> bool {
        matches!(self.kind, NodeKind::Group { .. })
    }
}

/// The kind of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// A forward edge: its target waits for all its forward predecessors.
    Plain,
    /// An edge that closes a cycle: it re-triggers its target at once.
    Loop,
}

/// An edge's weight: its kind and its position in writing order.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    /// Plain or loop.
    pub kind: EdgeKind,
    seq: u32,
}

/// A workflow's graph.
#[derive(Debug, Clone, Default)]
pub struct TaskGraph {
    graph: StableDiGraph<Node, Edge, u32>,
    index: HashMap<Arc<str>, NodeId>,
    edge_set: FxHashSet<(NodeId, NodeId)>,
    next_seq: u32,
}

impl TaskGraph {
    /// The underlying petgraph graph (for layout and algorithms).
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge, u32> {
        &self.graph
    }

    /// Number of nodes (tasks and groups).
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The node with this id.
    pub fn find(&self, id: &str) -> Option<NodeId> {
        self.index.get(id).copied()
    }

    /// The node at an index.
    pub fn node(&self, n: NodeId) -> &Node {
        &self.graph[n]
    }

    /// Every node, in insertion order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.graph.node_indices().map(move |n| (n, &self.graph[n]))
    }

    /// Every edge as (from, to, kind), in writing order.
    pub fn edges(&self) -> Vec<(NodeId, NodeId, EdgeKind)> {
        let mut all: Vec<(u32, NodeId, NodeId, EdgeKind)> = (&self.graph)
            .edge_references()
            .map(|e| (e.weight().seq, e.source(), e.target(), e.weight().kind))
            .collect();
        all.sort_unstable_by_key(|e| e.0);
        all.into_iter().map(|(_, a, b, k)| (a, b, k)).collect()
    }

    /// Outgoing edges of `n` in writing order.
    pub fn successors(&self, n: NodeId) -> Vec<(NodeId, EdgeKind)> {
        self.ordered(n, Direction::Outgoing)
    }

    /// Incoming edges of `n` in writing order.
    pub fn predecessors(&self, n: NodeId) -> Vec<(NodeId, EdgeKind)> {
        self.ordered(n, Direction::Incoming)
    }

    fn ordered(&self, n: NodeId, dir: Direction) -> Vec<(NodeId, EdgeKind)> {
        let mut v: Vec<(u32, NodeId, EdgeKind)> = self
            .graph
            .edges_directed(n, dir)
            .map(|e| {
                let other = if dir == Direction::Outgoing {
                    e.target()
                } else {
                    e.source()
                };
                (e.weight().seq, other, e.weight().kind)
            })
            .collect();
        v.sort_unstable_by_key(|e| e.0);
        v.into_iter().map(|(_, n, k)| (n, k)).collect()
    }

    /// The task node `id`, added if missing.
    pub(crate) fn ensure_task(&mut self, id: &Arc<str>) -> NodeId {
        if let Some(n) = self.find(id) {
            return n;
        }
        let n = self.graph.add_node(Node {
            id: id.clone(),
            kind: NodeKind::Task,
            group: None,
        });
        self.index.insert(id.clone(), n);
        n
    }

    /// Add a group node with its members.
    pub(crate) fn add_group(
        &mut self,
        id: Arc<str>,
        members: Vec<NodeId>,
        policy: GroupPolicy,
    ) -> Result<NodeId, BuildError> {
        if self.index.contains_key(&id) {
            return Err(BuildError::DuplicateGroup(id.to_string()));
        }
        if members.is_empty() {
            return Err(BuildError::EmptyGroup(id.to_string()));
        }
        let names: Vec<&str> = members.iter().map(|m| &*self.graph[*m].id).collect();
        policy.validate(&id, &names)?;
        let g = self.graph.add_node(Node {
            id: id.clone(),
            kind: NodeKind::Group {
                members: members.clone(),
                policy,
            },
            group: None,
        });
        self.index.insert(id, g);
        for m in members {
            if let Some(other) = self.graph[m].group {
                return Err(BuildError::MemberOfTwoGroups {
                    member: self.graph[m].id.to_string(),
                    first: self.graph[other].id.to_string(),
                    second: self.graph[g].id.to_string(),
                });
            }
            self.graph[m].group = Some(g);
        }
        Ok(g)
    }

    /// Add the edge `a → b` once (writing it again is a no-op).
    pub(crate) fn add_edge(&mut self, a: NodeId, b: NodeId) -> Option<EdgeIndex<u32>> {
        if !self.edge_set.insert((a, b)) {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(self.graph.add_edge(
            a,
            b,
            Edge {
                kind: EdgeKind::Plain,
                seq,
            },
        ))
    }

    /// Members never have predecessors: they start when their group starts.
    pub(crate) fn check_members(&self) -> Result<(), BuildError> {
        for n in self.graph.node_indices() {
            let Some(g) = self.graph[n].group else {
                continue;
            };
            if let Some(e) = self.graph.edges_directed(n, Direction::Incoming).next() {
                return Err(BuildError::MemberWithPredecessor {
                    member: self.graph[n].id.to_string(),
                    group: self.graph[g].id.to_string(),
                    predecessor: self.graph[e.source()].id.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The start node: `explicit` when given (it must exist), else the one node without
    /// predecessors that is not a group member.
    pub fn find_start(&self, explicit: Option<&str>) -> Result<NodeId, BuildError> {
        if let Some(id) = explicit {
            return self
                .find(id)
                .ok_or_else(|| BuildError::UnknownStart(id.to_string()));
        }
        let roots: Vec<NodeId> = self
            .graph
            .node_indices()
            .filter(|&n| {
                self.graph[n].group.is_none()
                    && self
                        .graph
                        .edges_directed(n, Direction::Incoming)
                        .next()
                        .is_none()
            })
            .collect();
        match roots.as_slice() {
            [] => Err(BuildError::NoStart),
            [one] => Ok(*one),
            many => Err(BuildError::MultipleStarts(
                many.iter().map(|n| self.graph[*n].id.to_string()).collect(),
            )),
        }
    }

    /// Mark edges that close a cycle, walking depth-first from `start` (then from any node not
    /// yet reached), following edges in writing order and descending from groups into members.
    pub(crate) fn classify_loops(&mut self, start: NodeId) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let bound = self.graph.node_bound();
        let mut mark = vec![Mark::New; bound];
        let mut back_edges = Vec::new();
        let children = |g: &Self, n: NodeId| -> Vec<(NodeId, Option<EdgeIndex<u32>>)> {
            let mut out: Vec<(NodeId, Option<EdgeIndex<u32>>)> = Vec::new();
            if let NodeKind::Group { members, .. } = &g.graph[n].kind {
                out.extend(members.iter().map(|m| (*m, None)));
            }
            let mut edges: Vec<(u32, NodeId, EdgeIndex<u32>)> = g
                .graph
                .edges_directed(n, Direction::Outgoing)
                .map(|e| (e.weight().seq, e.target(), e.id()))
                .collect();
            edges.sort_unstable_by_key(|e| e.0);
            out.extend(edges.into_iter().map(|(_, t, e)| (t, Some(e))));
            out
        };
        let roots = std::iter::once(start).chain(self.graph.node_indices());
        let mut roots_vec: Vec<NodeId> = roots.collect();
        roots_vec.dedup();
        for root in roots_vec {
            if mark[root.index()] != Mark::New {
                continue;
            }
            // Iterative DFS: a stack of (node, its children, next child position).
            let mut stack = vec![(root, children(self, root), 0usize)];
            mark[root.index()] = Mark::OnStack;
            while let Some(top) = stack.last_mut() {
                if top.2 == top.1.len() {
                    mark[top.0.index()] = Mark::Done;
                    stack.pop();
                    continue;
                }
                let (child, edge) = top.1[top.2];
                top.2 += 1;
                match mark[child.index()] {
                    Mark::New => {
                        mark[child.index()] = Mark::OnStack;
                        let grandchildren = children(self, child);
                        stack.push((child, grandchildren, 0));
                    }
                    Mark::OnStack => back_edges.extend(edge),
                    Mark::Done => {}
                }
            }
        }
        for e in back_edges {
            self.graph[e].kind = EdgeKind::Loop;
        }
    }
}
