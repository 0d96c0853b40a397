//! The compiled plan: the graph flattened into vectors the scheduler reads without hashing —
//! successors in writing order with their loop flag, predecessors, forward-predecessor counts
//! for joins, group members, and each task's definition and cycle limit.

use std::collections::HashMap;
use std::sync::Arc;

use crate::dispatch::Placement;
use crate::graph::{EdgeKind, NodeKind, TaskGraph};
use crate::group::GroupPolicy;

use super::TaskDef;

/// What the scheduler runs for a node.
#[derive(Clone)]
pub(crate) enum PlanKind {
    Task(Arc<TaskDef>),
    Group {
        members: Vec<u32>,
        policy: GroupPolicy,
        placement: Placement,
    },
}

/// One node of the plan.
#[derive(Clone)]
pub(crate) struct PlanNode {
    pub id: Arc<str>,
    pub kind: PlanKind,
    /// Successors in writing order; `true` marks a loop edge.
    pub succ: Vec<(u32, bool)>,
    /// Predecessors (all edges).
    pub preds: Vec<u32>,
    /// Number of forward (non-loop) predecessors: a join waits for all of them.
    pub fwd_preds: u32,
    /// The group this node is a member of.
    pub group: Option<u32>,
    pub max_cycles: u32,
}

impl PlanNode {
    /// A node added at run time: no edges.
    pub fn detached(def: Arc<TaskDef>, default_max_cycles: u32) -> Self {
        PlanNode {
            id: def.id_arc().clone(),
            max_cycles: def.options.max_cycles.unwrap_or(default_max_cycles),
            kind: PlanKind::Task(def),
            succ: Vec::new(),
            preds: Vec::new(),
            fwd_preds: 0,
            group: None,
        }
    }
}

/// The static part of a run's plan, indexed like the graph's nodes.
pub(crate) struct Plan {
    pub nodes: Vec<PlanNode>,
}

impl Plan {
    pub fn compile(
        graph: &TaskGraph,
        tasks: &HashMap<Arc<str>, Arc<TaskDef>>,
        placements: &HashMap<String, Placement>,
        default_max_cycles: u32,
    ) -> Plan {
        let mut nodes = Vec::with_capacity(graph.len());
        for (n, node) in graph.nodes() {
            debug_assert_eq!(n.index(), nodes.len());
            let kind = match &node.kind {
                NodeKind::Task => PlanKind::Task(tasks[&node.id].clone()),
                NodeKind::Group { members, policy } => PlanKind::Group {
                    members: members.iter().map(|m| m.index() as u32).collect(),
                    policy: policy.clone(),
                    placement: placements.get(&*node.id).copied().unwrap_or_default(),
                },
            };
            let max_cycles = match &kind {
                PlanKind::Task(def) => def.options.max_cycles.unwrap_or(default_max_cycles),
                PlanKind::Group { .. } => default_max_cycles,
            };
            nodes.push(PlanNode {
                id: node.id.clone(),
                kind,
                succ: Vec::new(),
                preds: Vec::new(),
                fwd_preds: 0,
                group: node.group.map(|g| g.index() as u32),
                max_cycles,
            });
        }
        for (a, b, kind) in graph.edges() {
            let (a, b) = (a.index(), b.index());
            let is_loop = kind == EdgeKind::Loop;
            nodes[a].succ.push((b as u32, is_loop));
            nodes[b].preds.push(a as u32);
            if !is_loop {
                nodes[b].fwd_preds += 1;
            }
        }
        Plan { nodes }
    }
}
