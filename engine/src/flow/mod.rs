//! The flow language: `>>` (sequence) and `|` (parallel group), as Rust operators on task
//! handles and as strings (`"a >> (b | c) >> d"`). Both produce the same [`Flow`] tree, which
//! the workflow builder turns into graph nodes and edges.

mod ops;
mod parser;
mod print;

pub use parser::parse_flow;

use crate::error::Span;
use crate::group::GroupPolicy;

/// A handle to a task defined on a [`WorkflowBuilder`](crate::WorkflowBuilder); cheap to copy,
/// combined with `>>` and `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskHandle {
    pub(crate) builder: u32,
    pub(crate) index: u32,
}

/// A handle to a named group defined on a [`WorkflowBuilder`](crate::WorkflowBuilder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupHandle {
    pub(crate) builder: u32,
    pub(crate) index: u32,
}

/// A leaf of a flow: a task or group, by handle or by name.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// A task handle.
    Task(TaskHandle),
    /// A named group's handle.
    Group(GroupHandle),
    /// A name to resolve against the builder's tasks and groups.
    Name {
        /// The name.
        name: String,
        /// Where it was written, for string flows.
        span: Option<Span>,
    },
}

/// A parallel group written inline with `|`, optionally named and given a policy.
#[derive(Debug, Clone, Default)]
pub struct ParFlow {
    /// The members; each may be a chain (its first node is the member).
    pub items: Vec<Flow>,
    /// The group's id; anonymous groups get `group_1`, `group_2`, ….
    pub name: Option<String>,
    /// The group's policy; strict when not given.
    pub policy: Option<GroupPolicy>,
}

impl ParFlow {
    fn is_plain(&self) -> bool {
        self.name.is_none() && self.policy.is_none()
    }
}

/// A flow expression: what `>>` and `|` build.
#[derive(Debug, Clone)]
pub enum Flow {
    /// One task or group.
    Leaf(Leaf),
    /// Each element runs after the previous one.
    Seq(Vec<Flow>),
    /// A parallel group.
    Par(ParFlow),
}

impl Flow {
    /// A leaf naming a task or group by id.
    pub fn name(name: impl Into<String>) -> Flow {
        Flow::Leaf(Leaf::Name {
            name: name.into(),
            span: None,
        })
    }

    /// `self >> next`.
    pub fn then(self, next: impl Into<Flow>) -> Flow {
        let mut items = match self {
            Flow::Seq(items) => items,
            other => vec![other],
        };
        match next.into() {
            Flow::Seq(more) => items.extend(more),
            other => items.push(other),
        }
        Flow::Seq(items)
    }

    /// `self | other`: plain (unnamed, policy-less) groups on either side are merged.
    pub fn par(self, other: impl Into<Flow>) -> Flow {
        let mut items = match self {
            Flow::Par(p) if p.is_plain() => p.items,
            other => vec![other],
        };
        match other.into() {
            Flow::Par(p) if p.is_plain() => items.extend(p.items),
            other => items.push(other),
        }
        Flow::Par(ParFlow {
            items,
            ..ParFlow::default()
        })
    }

    fn into_par(self) -> ParFlow {
        match self {
            Flow::Par(p) => p,
            other => ParFlow {
                items: vec![other],
                ..ParFlow::default()
            },
        }
    }

    /// Give this group an id (a non-group flow becomes a one-member group).
    pub fn named(self, name: impl Into<String>) -> Flow {
        let mut p = self.into_par();
        p.name = Some(name.into());
        Flow::Par(p)
    }

    /// Give this group a policy (a non-group flow becomes a one-member group).
    pub fn policy(self, policy: GroupPolicy) -> Flow {
        let mut p = self.into_par();
        p.policy = Some(policy);
        Flow::Par(p)
    }
}

impl From<TaskHandle> for Flow {
    fn from(h: TaskHandle) -> Flow {
        Flow::Leaf(Leaf::Task(h))
    }
}

impl From<GroupHandle> for Flow {
    fn from(h: GroupHandle) -> Flow {
        Flow::Leaf(Leaf::Group(h))
    }
}

impl From<&TaskHandle> for Flow {
    fn from(h: &TaskHandle) -> Flow {
        Flow::from(*h)
    }
}

impl From<&GroupHandle> for Flow {
    fn from(h: &GroupHandle) -> Flow {
        Flow::from(*h)
    }
}
