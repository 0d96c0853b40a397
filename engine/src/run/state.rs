//! The shared state of one run: queues of every branch, results, cycle counts, join progress,
//! step count, control flags and nodes added at run time. One mutex guards it; it is never
//! held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::channel::Channel;
use crate::context::RunAccess;
use crate::error::RunError;
use crate::events::{EventKind, LogStream, RunEvent};
use crate::workflow::{PlanKind, PlanNode, TaskDef, Workflow};

/// A queued execution: a node, the data of the iteration that queued it, the retry attempt.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub node: u32,
    pub data: Value,
    pub attempt: u32,
}

impl Entry {
    pub fn new(node: u32) -> Self {
        Entry {
            node,
            data: Value::Null,
            attempt: 0,
        }
    }
}

/// One branch: the top level of the run, or one member of a running group.
#[derive(Debug, Default)]
pub(crate) struct Branch {
    pub queue: VecDeque<Entry>,
}

/// A node of the plan, static (borrowed from the workflow) or added at run time.
pub(crate) enum NodeRef<'a> {
    Static(&'a PlanNode),
    Dynamic(Arc<PlanNode>),
}

impl Deref for NodeRef<'_> {
    type Target = PlanNode;
    fn deref(&self) -> &PlanNode {
        match self {
            NodeRef::Static(n) => n,
            NodeRef::Dynamic(n) => n,
        }
    }
}

/// The mutable part of a run.
#[derive(Default)]
pub(crate) struct RunState {
    pub branches: FxHashMap<u32, Branch>,
    next_branch: u32,
    pub dynamic: Vec<Arc<PlanNode>>,
    pub dynamic_index: HashMap<Arc<str>, u32>,
    pub results: Vec<Option<Value>>,
    pub cycles: Vec<u32>,
    /// Join progress: the forward predecessors that finished since the node last ran.
    pub arrivals: FxHashMap<u32, Vec<u32>>,
    pub steps: u64,
    /// Task, message and result of the `terminate_workflow` call that ends the run.
    pub terminated: Option<(Arc<str>, String, Value)>,
    pub cancelled: Option<RunError>,
}

impl RunState {
    pub fn open_branch(&mut self, first: Entry) -> u32 {
        let id = self.next_branch;
        self.next_branch += 1;
        let mut branch = Branch::default();
        branch.queue.push_back(first);
        self.branches.insert(id, branch);
        id
    }

    pub fn push(&mut self, branch: u32, entry: Entry) {
        if let Some(b) = self.branches.get_mut(&branch) {
            b.queue.push_back(entry);
        }
    }
}

/// Everything a run's tasks and branches share.
pub(crate) struct RunShared {
    pub run_id: Arc<str>,
    pub wf: Arc<Workflow>,
    pub channel: Channel,
    events: Option<UnboundedSender<RunEvent>>,
    pub state: Mutex<RunState>,
    /// Cancelled when the run is cancelled: running bodies are dropped.
    pub stop: CancellationToken,
    /// Set by `terminate_workflow`: nothing new starts.
    pub terminating: AtomicBool,
}

impl RunShared {
    pub fn new(
        run_id: Arc<str>,
        wf: Arc<Workflow>,
        channel: Channel,
        events: Option<UnboundedSender<RunEvent>>,
    ) -> Self {
        let n = wf.plan.nodes.len();
        let state = RunState {
            results: vec![None; n],
            cycles: vec![0; n],
            ..RunState::default()
        };
        RunShared {
            run_id,
            wf,
            channel,
            events,
            state: Mutex::new(state),
            stop: CancellationToken::new(),
            terminating: AtomicBool::new(false),
        }
    }

    /// Whether anyone listens to events (building them is skipped otherwise).
    pub fn emitting(&self) -> bool {
        self.events.is_some()
    }

    /// Send an event to the listener, if any.
    pub fn emit(&self, kind: EventKind) {
        if let Some(tx) = &self.events {
            let _ = tx.send(RunEvent {
                run_id: self.run_id.clone(),
                ts: SystemTime::now(),
                kind,
            });
        }
    }

    /// The plan node at `index`.
    pub fn node<'a>(&'a self, st: &RunState, index: u32) -> NodeRef<'a> {
        let statics = &self.wf.plan.nodes;
        match statics.get(index as usize) {
            Some(n) => NodeRef::Static(n),
            None => NodeRef::Dynamic(st.dynamic[index as usize - statics.len()].clone()),
        }
    }

    /// The index of the node with this id.
    pub fn lookup(&self, st: &RunState, id: &str) -> Option<u32> {
        self.wf
            .graph
            .find(id)
            .map(|n| n.index() as u32)
            .or_else(|| st.dynamic_index.get(id).copied())
    }

    pub fn is_terminating(&self) -> bool {
        self.terminating.load(Ordering::Acquire)
    }

    /// Record a workflow-wide cancellation (the first one wins) and stop every running task.
    pub fn cancel(&self, task: Option<&str>, message: String) -> RunError {
        let err = {
            let mut st = self.state.lock();
            st.cancelled
                .get_or_insert_with(|| RunError::Cancelled {
                    task: task.map(str::to_string),
                    message,
                })
                .clone()
        };
        self.stop.cancel();
        err
    }

    /// The recorded cancellation.
    pub fn cancel_error(&self) -> RunError {
        self.state
            .lock()
            .cancelled
            .clone()
            .unwrap_or(RunError::Cancelled {
                task: None,
                message: "run cancelled".into(),
            })
    }

    /// Queue the successors of `node` that are ready in `branch`: loop edges at once, forward
    /// edges once every forward predecessor of the target has finished.
    pub fn schedule_successors(&self, st: &mut RunState, branch: u32, node: u32) {
        let Some(plan) = self.wf.plan.nodes.get(node as usize) else {
            return; // nodes added at run time have no edges
        };
        for &(succ, is_loop) in &plan.succ {
            let need = self.wf.plan.nodes[succ as usize].fwd_preds as usize;
            if is_loop || need <= 1 {
                st.push(branch, Entry::new(succ));
                continue;
            }
            let arrived = st.arrivals.entry(succ).or_default();
            if !arrived.contains(&node) {
                arrived.push(node);
            }
            if arrived.len() >= need {
                st.arrivals.remove(&succ);
                st.push(branch, Entry::new(succ));
            }
        }
    }

    /// Each finished task's last result, by id.
    pub fn task_results(&self) -> BTreeMap<String, Value> {
        let st = self.state.lock();
        st.results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let value = r.as_ref()?;
                let node = self.node(&st, i as u32);
                matches!(node.kind, PlanKind::Task(_)).then(|| (node.id.to_string(), value.clone()))
            })
            .collect()
    }
}

impl RunAccess for RunShared {
    fn result(&self, task: &str) -> Option<Value> {
        let st = self.state.lock();
        let i = self.lookup(&st, task)?;
        st.results[i as usize].clone()
    }

    fn inputs(&self, task: &str) -> BTreeMap<String, Value> {
        let st = self.state.lock();
        let mut out = BTreeMap::new();
        let Some(mut i) = self.lookup(&st, task) else {
            return out;
        };
        // A member without predecessors of its own reads its group's inputs.
        loop {
            let node = self.node(&st, i);
            match (node.preds.is_empty(), node.group) {
                (true, Some(g)) => i = g,
                _ => break,
            }
        }
        let node = self.node(&st, i);
        for &p in &node.preds {
            let pred = self.node(&st, p);
            if let Some(v) = &st.results[p as usize] {
                out.insert(pred.id.to_string(), v.clone());
            }
            if let PlanKind::Group { members, .. } = &pred.kind {
                for &m in members {
                    if let Some(v) = &st.results[m as usize] {
                        out.insert(self.node(&st, m).id.to_string(), v.clone());
                    }
                }
            }
        }
        out
    }

    fn has_node(&self, task: &str) -> bool {
        let st = self.state.lock();
        self.lookup(&st, task).is_some()
    }

    fn add_task(&self, id: &str, def: Option<TaskDef>, by: &str) -> bool {
        let def = match def {
            Some(d) => Arc::new(d),
            None => match self.wf.tasks.get(id) {
                Some(d) => d.clone(),
                None => return false,
            },
        };
        let node = Arc::new(PlanNode::detached(def, self.wf.max_cycles));
        let added = {
            let mut st = self.state.lock();
            if self.lookup(&st, id).is_some() {
                return true;
            }
            let index = (self.wf.plan.nodes.len() + st.dynamic.len()) as u32;
            st.dynamic_index.insert(node.id.clone(), index);
            st.dynamic.push(node.clone());
            st.results.push(None);
            st.cycles.push(0);
            node.id.clone()
        };
        self.emit(EventKind::GraphChanged {
            added: vec![added],
            by: Arc::from(by),
        });
        true
    }

    fn log(&self, task: &str, stream: LogStream, line: String) {
        if self.emitting() {
            self.emit(EventKind::TaskLog {
                task: Arc::from(task),
                stream,
                line,
            });
        }
    }
}
