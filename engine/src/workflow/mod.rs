//! Workflow definitions: [`TaskDef`]s, the [`WorkflowBuilder`] that assembles tasks, groups and
//! flows into a validated [`Workflow`], and the compiled plan the scheduler runs.

mod builder;
mod plan;
mod task;

pub use builder::{GroupDef, WorkflowBuilder};
pub(crate) use plan::{Plan, PlanKind, PlanNode};
pub use task::{RetryPolicy, TaskDef, TaskOptions};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::graph::{NodeId, TaskGraph};
use crate::pool::{PoolDef, QueueDef};

/// Default step limit of a run.
pub const DEFAULT_MAX_STEPS: u64 = 10_000;
/// Default cycle limit of a task.
pub const DEFAULT_MAX_CYCLES: u32 = 100;

/// A validated workflow: its graph, task definitions (including detached ones that
/// `next_task` can add at run time), limits and initial channel values.
pub struct Workflow {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) graph: TaskGraph,
    pub(crate) start: NodeId,
    pub(crate) tasks: HashMap<Arc<str>, Arc<TaskDef>>,
    pub(crate) max_steps: u64,
    pub(crate) max_cycles: u32,
    pub(crate) params: BTreeMap<String, Value>,
    pub(crate) pools: BTreeMap<String, PoolDef>,
    pub(crate) queues: BTreeMap<String, QueueDef>,
    pub(crate) plan: Plan,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.name)
            .field("nodes", &self.graph.len())
            .field("start", &self.graph.node(self.start).id)
            .finish()
    }
}

impl Workflow {
    /// Start building a workflow.
    pub fn builder(name: impl Into<String>) -> WorkflowBuilder {
        WorkflowBuilder::new(name)
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Its graph.
    pub fn graph(&self) -> &TaskGraph {
        &self.graph
    }

    /// The start node.
    pub fn start(&self) -> NodeId {
        self.start
    }

    /// The start node's id.
    pub fn start_id(&self) -> &str {
        &self.graph.node(self.start).id
    }

    /// A task definition by id (in the graph or detached).
    pub fn task(&self, id: &str) -> Option<&Arc<TaskDef>> {
        self.tasks.get(id)
    }

    /// Ids of tasks defined but not in the graph (available to `next_task`).
    pub fn detached_tasks(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .tasks
            .keys()
            .map(|k| &**k)
            .filter(|k| self.graph.find(k).is_none())
            .collect();
        v.sort_unstable();
        v
    }

    /// The run's step limit.
    pub fn max_steps(&self) -> u64 {
        self.max_steps
    }

    /// The default cycle limit per task.
    pub fn max_cycles(&self) -> u32 {
        self.max_cycles
    }

    /// Initial channel values.
    pub fn params(&self) -> &BTreeMap<String, Value> {
        &self.params
    }

    /// The pools its tasks may use, by name.
    pub fn pools(&self) -> &BTreeMap<String, PoolDef> {
        &self.pools
    }

    /// The limits of worker queues, by queue name.
    pub fn queues(&self) -> &BTreeMap<String, QueueDef> {
        &self.queues
    }

    /// Whether a task with these options fits the workflow's pools: the pool exists and has
    /// the slots asked for.
    pub fn check_pool(&self, options: &TaskOptions) -> Result<(), PoolMisfit> {
        check_pool(&self.pools, options)
    }
}

/// A task's pool settings do not fit the workflow's pools.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolMisfit {
    /// The task names a pool the workflow does not define.
    #[error("unknown pool '{pool}'{}", .suggestion.as_ref().map(|g| format!("; {g}")).unwrap_or_default())]
    UnknownPool {
        /// The name as written.
        pool: String,
        /// A "did you mean" for a close name, when there is one.
        suggestion: Option<String>,
    },
    /// The task asks for more slots than the pool has.
    #[error("asks for {want} slots of pool '{pool}', which has {has}")]
    TooManySlots {
        /// The pool.
        pool: String,
        /// Slots asked for.
        want: u32,
        /// Slots the pool has.
        has: u32,
    },
}

/// Whether `options` names a pool of `pools` with enough slots.
pub(crate) fn check_pool(
    pools: &BTreeMap<String, PoolDef>,
    options: &TaskOptions,
) -> Result<(), PoolMisfit> {
    let Some(name) = &options.pool else {
        return Ok(());
    };
    let Some(pool) = pools.get(name) else {
        let known: Vec<&str> = pools.keys().map(String::as_str).collect();
        return Err(PoolMisfit::UnknownPool {
            pool: name.clone(),
            suggestion: crate::suggest::did_you_mean(name, known.iter().copied()),
        });
    };
    let want = options.slots.unwrap_or(1);
    if want > pool.slots {
        return Err(PoolMisfit::TooManySlots {
            pool: name.clone(),
            want,
            has: pool.slots,
        });
    }
    Ok(())
}
