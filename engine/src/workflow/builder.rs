//! Assembles tasks, groups and flow statements into a validated [`Workflow`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;
use serde_json::Value;

use crate::context::TaskContext;
use crate::dispatch::Placement;
use crate::error::{BuildError, Span};
use crate::flow::{Flow, GroupHandle, Leaf, ParFlow, TaskHandle, parse_flow};
use crate::graph::{NodeId, TaskGraph};
use crate::group::GroupPolicy;
use crate::handler::TaskError;
use crate::pool::{PoolDef, QueueDef};

use super::{DEFAULT_MAX_CYCLES, DEFAULT_MAX_STEPS, Plan, TaskDef, Workflow};

static NEXT_BUILDER: AtomicU32 = AtomicU32::new(1);

/// A named group: its members (a flow such as `a | b | c`, each item possibly a chain) and
/// its policy.
#[derive(Debug, Clone)]
pub struct GroupDef {
    /// The group's id.
    pub id: String,
    /// Its members.
    pub members: Flow,
    /// Its policy.
    pub policy: GroupPolicy,
    /// Where its members run.
    pub placement: Placement,
}

impl GroupDef {
    /// A strict group.
    pub fn new(id: impl Into<String>, members: impl Into<Flow>) -> Self {
        GroupDef {
            id: id.into(),
            members: members.into(),
            policy: GroupPolicy::Strict,
            placement: Placement::Inherit,
        }
    }

    /// Set the policy.
    pub fn policy(mut self, policy: GroupPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Set where the members run (the local process or the worker fleet).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }
}

/// Builds a [`Workflow`]. Problems found while adding (a duplicate id, a flow string that does
/// not parse) are reported by [`build`](Self::build), so the adding calls can chain.
pub struct WorkflowBuilder {
    id: u32,
    name: String,
    description: String,
    tasks: Vec<TaskDef>,
    task_index: HashMap<String, usize>,
    groups: Vec<GroupDef>,
    group_index: HashMap<String, usize>,
    flows: Vec<Flow>,
    start: Option<String>,
    max_steps: u64,
    max_cycles: u32,
    params: BTreeMap<String, Value>,
    pools: BTreeMap<String, PoolDef>,
    queues: BTreeMap<String, QueueDef>,
    errors: Vec<BuildError>,
}

impl WorkflowBuilder {
    /// An empty workflow named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        WorkflowBuilder {
            id: NEXT_BUILDER.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            description: String::new(),
            tasks: Vec::new(),
            task_index: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            flows: Vec::new(),
            start: None,
            max_steps: DEFAULT_MAX_STEPS,
            max_cycles: DEFAULT_MAX_CYCLES,
            params: BTreeMap::new(),
            pools: BTreeMap::new(),
            queues: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// Define a pool that tasks can name (see [`TaskDef::pool`]).
    pub fn pool(&mut self, name: impl Into<String>, def: PoolDef) -> &mut Self {
        self.pools.insert(name.into(), def);
        self
    }

    /// Set the limits of a worker queue (tasks routed to it share its rate limit).
    pub fn queue(&mut self, name: impl Into<String>, def: QueueDef) -> &mut Self {
        self.queues.insert(name.into(), def);
        self
    }

    /// Set the description.
    pub fn description(&mut self, text: impl Into<String>) -> &mut Self {
        self.description = text.into();
        self
    }

    /// Define a task (it joins the graph when a flow names it).
    pub fn add(&mut self, def: TaskDef) -> TaskHandle {
        let index = self.tasks.len() as u32;
        if self.task_index.contains_key(def.id()) {
            self.errors
                .push(BuildError::DuplicateTask(def.id().to_string()));
        } else {
            self.task_index.insert(def.id().to_string(), index as usize);
        }
        self.tasks.push(def);
        TaskHandle {
            builder: self.id,
            index,
        }
    }

    /// Define a task whose body is an async closure.
    pub fn task<F, Fut, R, E>(&mut self, id: &str, body: F) -> TaskHandle
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + 'static,
        E: Into<TaskError> + 'static,
    {
        self.add(TaskDef::from_fn(id, body))
    }

    /// Define a named group.
    pub fn add_group(&mut self, def: GroupDef) -> GroupHandle {
        let index = self.groups.len() as u32;
        if self.group_index.contains_key(&def.id) {
            self.errors.push(BuildError::DuplicateGroup(def.id.clone()));
        } else {
            self.group_index.insert(def.id.clone(), index as usize);
        }
        self.groups.push(def);
        GroupHandle {
            builder: self.id,
            index,
        }
    }

    /// Define a strict named group.
    pub fn group(&mut self, id: &str, members: impl Into<Flow>) -> GroupHandle {
        self.add_group(GroupDef::new(id, members))
    }

    /// Add a flow statement written with `>>` and `|`.
    pub fn flow(&mut self, flow: impl Into<Flow>) -> &mut Self {
        self.flows.push(flow.into());
        self
    }

    /// Add the statements of a flow string (DESIGN §4 grammar).
    pub fn flow_str(&mut self, src: &str) -> &mut Self {
        match parse_flow(src) {
            Ok(statements) => self.flows.extend(statements),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Start at this task instead of the single root.
    pub fn start(&mut self, id: impl Into<String>) -> &mut Self {
        self.start = Some(id.into());
        self
    }

    /// Set the step limit.
    pub fn max_steps(&mut self, n: u64) -> &mut Self {
        self.max_steps = n;
        self
    }

    /// Set the default cycle limit per task.
    pub fn max_cycles(&mut self, n: u32) -> &mut Self {
        self.max_cycles = n;
        self
    }

    /// Set an initial channel value.
    pub fn param(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Validate and assemble the workflow. Takes what was added (the builder is empty after),
    /// so a chain of calls ends with it:
    /// `Workflow::builder("x").flow_str("a >> b").build()`.
    pub fn build(&mut self) -> Result<Workflow, BuildError> {
        let empty = WorkflowBuilder::new(self.name.clone());
        std::mem::replace(self, empty).assemble()
    }

    fn assemble(self) -> Result<Workflow, BuildError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        if self.flows.is_empty() {
            return Err(BuildError::EmptyFlow);
        }
        if self.max_cycles == 0 {
            return Err(BuildError::InvalidTask {
                task: "<workflow>".into(),
                message: "max_cycles must be at least 1".into(),
            });
        }
        for (name, pool) in &self.pools {
            pool.check().map_err(|message| BuildError::InvalidPool {
                pool: name.clone(),
                message,
            })?;
        }
        for def in &self.tasks {
            def.check().map_err(|message| BuildError::InvalidTask {
                task: def.id().to_string(),
                message,
            })?;
            super::check_pool(&self.pools, &def.options).map_err(|misfit| {
                BuildError::InvalidTask {
                    task: def.id().to_string(),
                    message: misfit.to_string(),
                }
            })?;
            if self.group_index.contains_key(def.id()) {
                return Err(BuildError::NameClash(def.id().to_string()));
            }
        }
        let mut asm = Assembler {
            b: &self,
            graph: TaskGraph::default(),
            named: HashMap::new(),
            building: HashSet::new(),
            anon: 0,
        };
        for stmt in &self.flows {
            asm.add(stmt)?;
        }
        let mut graph = asm.graph;
        graph.check_members()?;
        let start = graph.find_start(self.start.as_deref())?;
        graph.classify_loops(start);

        let tasks: HashMap<Arc<str>, Arc<TaskDef>> = self
            .tasks
            .into_iter()
            .map(|d| (d.id_arc().clone(), Arc::new(d)))
            .collect();
        let placements: HashMap<String, Placement> = self
            .groups
            .iter()
            .map(|g| (g.id.clone(), g.placement))
            .collect();
        let plan = Plan::compile(&graph, &tasks, &placements, self.max_cycles);
        Ok(Workflow {
            name: self.name,
            description: self.description,
            graph,
            start,
            tasks,
            max_steps: self.max_steps,
            max_cycles: self.max_cycles,
            params: self.params,
            pools: self.pools,
            queues: self.queues,
            plan,
        })
    }
}

/// Entry and exit node of a flow fragment.
#[derive(Clone, Copy)]
struct Ends {
    entry: NodeId,
    exit: NodeId,
}

struct Assembler<'a> {
    b: &'a WorkflowBuilder,
    graph: TaskGraph,
    named: HashMap<String, NodeId>,
    building: HashSet<String>,
    anon: u32,
}

enum Resolved {
    Task(Arc<str>),
    Group(usize),
}

impl Assembler<'_> {
    fn resolve(&self, leaf: &Leaf) -> Result<Resolved, BuildError> {
        let b = self.b;
        let foreign = |what: &str| BuildError::ForeignHandle(what.to_string());
        match leaf {
            Leaf::Task(h) if h.builder != b.id => Err(foreign(&b.name)),
            Leaf::Task(h) => Ok(Resolved::Task(b.tasks[h.index as usize].id_arc().clone())),
            Leaf::Group(h) if h.builder != b.id => Err(foreign(&b.name)),
            Leaf::Group(h) => Ok(Resolved::Group(h.index as usize)),
            Leaf::Name { name, span } => {
                if let Some(&i) = b.task_index.get(name) {
                    Ok(Resolved::Task(b.tasks[i].id_arc().clone()))
                } else if let Some(&i) = b.group_index.get(name) {
                    Ok(Resolved::Group(i))
                } else {
                    Err(unknown(name, *span))
                }
            }
        }
    }

    fn add(&mut self, flow: &Flow) -> Result<Ends, BuildError> {
        match flow {
            Flow::Leaf(leaf) => {
                let n = match self.resolve(leaf)? {
                    Resolved::Task(id) => self.graph.ensure_task(&id),
                    Resolved::Group(i) => self.named_group(i)?,
                };
                Ok(Ends { entry: n, exit: n })
            }
            Flow::Seq(items) => {
                let mut ends: Option<Ends> = None;
                for item in items {
                    let next = self.add(item)?;
                    ends = Some(match ends {
                        None => next,
                        Some(prev) => {
                            self.graph.add_edge(prev.exit, next.entry);
                            Ends {
                                entry: prev.entry,
                                exit: next.exit,
                            }
                        }
                    });
                }
                ends.ok_or(BuildError::EmptyFlow)
            }
            Flow::Par(par) => {
                let id = match &par.name {
                    Some(name) => name.clone(),
                    None => self.anonymous_name(),
                };
                let policy = par.policy.clone().unwrap_or_default();
                let g = self.group_node(&id, par, policy)?;
                Ok(Ends { entry: g, exit: g })
            }
        }
    }

    fn anonymous_name(&mut self) -> String {
        loop {
            self.anon += 1;
            let name = format!("group_{}", self.anon);
            if !self.b.task_index.contains_key(&name)
                && !self.b.group_index.contains_key(&name)
                && self.graph.find(&name).is_none()
            {
                return name;
            }
        }
    }

    fn group_node(
        &mut self,
        id: &str,
        par: &ParFlow,
        policy: GroupPolicy,
    ) -> Result<NodeId, BuildError> {
        if self.graph.find(id).is_some() {
            return Err(BuildError::DuplicateGroup(id.to_string()));
        }
        let mut members = Vec::with_capacity(par.items.len());
        for item in &par.items {
            members.push(self.add(item)?.entry);
        }
        self.graph.add_group(Arc::from(id), members, policy)
    }

    fn named_group(&mut self, index: usize) -> Result<NodeId, BuildError> {
        let b = self.b;
        let def = &b.groups[index];
        if let Some(&n) = self.named.get(&def.id) {
            return Ok(n);
        }
        if !self.building.insert(def.id.clone()) {
            return Err(BuildError::GroupContainsItself(def.id.clone()));
        }
        let par = match &def.members {
            Flow::Par(p) => ParFlow {
                items: p.items.clone(),
                ..ParFlow::default()
            },
            single => ParFlow {
                items: vec![single.clone()],
                ..ParFlow::default()
            },
        };
        let n = self.group_node(&def.id, &par, def.policy.clone())?;
        self.building.remove(&def.id);
        self.named.insert(def.id.clone(), n);
        Ok(n)
    }
}

fn unknown(name: &str, span: Option<Span>) -> BuildError {
    BuildError::UnknownName {
        name: name.to_string(),
        span,
    }
}
