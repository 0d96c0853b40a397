//! The shared state of one run: queues of every branch (with the task running in it and the
//! group it is running), results, cycle counts, join progress, step count, control flags,
//! nodes added at run time, and the gate that pauses the run while a checkpoint is taken.
//! One mutex guards it; it is never held across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::channel::Channel;
use crate::checkpoint::CheckpointConfig;
use crate::checkpoint::snapshot::BranchSnapshot;
use crate::dispatch::{Fleet, FleetRun};
use crate::error::RunError;
use crate::events::{EventKind, RunEvent};
use crate::group::MemberOutcome;
use crate::pool::Limiter;
use crate::workflow::{PlanKind, PlanNode, Workflow};

/// A queued execution: a node, the data of the iteration that queued it, the retry attempt,
/// and for a group restored from a checkpoint, its progress.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub node: u32,
    pub data: Value,
    pub attempt: u32,
    pub resume: Option<Arc<GroupResume>>,
}

impl Entry {
    pub fn new(node: u32) -> Self {
        Entry {
            node,
            data: Value::Null,
            attempt: 0,
            resume: None,
        }
    }
}

/// A group that was running when a checkpoint was taken: members already finished, and the
/// saved branches of the members still running.
#[derive(Debug)]
pub(crate) struct GroupResume {
    pub finished: Vec<(MemberOutcome, Value)>,
    pub running: Vec<(u32, BranchSnapshot)>,
    /// The saved group as read, to save again if a checkpoint comes before it starts.
    pub saved: crate::checkpoint::snapshot::GroupSnapshot,
}

/// Progress of a group running in a branch.
#[derive(Debug, Default)]
pub(crate) struct GroupProgress {
    pub node: u32,
    /// Finished members: outcome and the last result of the member's branch.
    pub finished: Vec<(u32, MemberOutcome, Value)>,
    /// Running members by branch (branch ids grow in start order, so this is start order).
    pub running: std::collections::BTreeMap<u32, u32>,
}

/// One branch: the top level of the run, or one member of a running group.
#[derive(Debug, Default)]
pub(crate) struct Branch {
    pub queue: VecDeque<Entry>,
    /// The task executing in this branch (it runs again if the run resumes from a snapshot
    /// taken now).
    pub current: Option<Entry>,
    /// A failed task waiting for its retry delay (boxed, like the group: both are rare, and
    /// a wide group keeps one branch per member).
    pub retry: Option<Box<Entry>>,
    /// The group executing in this branch.
    pub group: Option<Box<GroupProgress>>,
    /// The last result produced in this branch.
    pub last: Option<Value>,
    /// Whether this branch's tasks run on the worker fleet (a member branch of a group placed
    /// there).
    pub fleet: bool,
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
    /// For each dynamic node, the spec that builds it again (if it is not a workflow definition).
    pub dynamic_specs: Vec<Option<Value>>,
    pub dynamic_index: HashMap<Arc<str>, u32>,
    pub results: Vec<Option<Value>>,
    pub cycles: Vec<u32>,
    /// Join progress: the forward predecessors that finished since the node last ran.
    pub arrivals: FxHashMap<u32, Vec<u32>>,
    pub steps: u64,
    /// Task, message and result of the `terminate_workflow` call that ends the run.
    pub terminated: Option<(Arc<str>, String, Value)>,
    pub cancelled: Option<RunError>,
    /// No task may start while the gate is closed (a checkpoint is being taken).
    pub gate_closed: bool,
    /// Tasks executing their bodies right now (parked tasks excluded); kept by `exec.rs`.
    pub running: usize,
    /// Attempts in flight by slot (see `exec.rs`).
    pub execs: FxHashMap<u32, super::exec::Exec>,
    /// The next slot to hand out.
    pub next_exec: u32,
    /// Checkpoints written by this run.
    pub checkpoint_seq: u32,
    /// Set when the run paused for feedback: the checkpoint and the request.
    pub paused: Option<(String, String)>,
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

    /// A branch with these entries queued and this last result; `fleet` places its tasks on
    /// the worker fleet.
    pub fn open_branch_with(
        &mut self,
        entries: Vec<Entry>,
        last: Option<Value>,
        fleet: bool,
    ) -> u32 {
        let id = self.next_branch;
        self.next_branch += 1;
        self.branches.insert(
            id,
            Branch {
                queue: entries.into(),
                last,
                fleet,
                ..Branch::default()
            },
        );
        id
    }

    pub fn push(&mut self, branch: u32, entry: Entry) {
        if let Some(b) = self.branches.get_mut(&branch) {
            b.queue.push_back(entry);
        }
    }

    pub fn branch(&mut self, branch: u32) -> Option<&mut Branch> {
        self.branches.get_mut(&branch)
    }
}

/// Everything a run's tasks and branches share.
pub(crate) struct RunShared {
    pub run_id: Arc<str>,
    pub wf: Arc<Workflow>,
    pub channel: Channel,
    events: Mutex<Option<UnboundedSender<RunEvent>>>,
    has_events: bool,
    /// More places events go.
    sinks: crate::sink::Sinks,
    pub state: Mutex<RunState>,
    /// Cancelled when the run is cancelled: running bodies are dropped.
    pub stop: CancellationToken,
    /// Set by `terminate_workflow`: nothing new starts.
    pub terminating: AtomicBool,
    /// `true` while tasks may start.
    pub gate: watch::Sender<bool>,
    /// Signalled when the last running task stops while the gate is closed.
    pub quiet: Notify,
    /// One checkpoint at a time.
    pub checkpoint_lock: tokio::sync::Mutex<()>,
    /// Where checkpoints go, if anywhere.
    pub checkpoints: Option<CheckpointConfig>,
    /// Set once the run has ended.
    pub finished: AtomicBool,
    /// Checkpoint after every completed task.
    pub checkpoint_every_task: AtomicBool,
    /// Human feedback, if set up.
    pub feedback: Option<Arc<crate::hitl::FeedbackManager>>,
    /// The typed values its tasks read with `ctx.state::<T>()`.
    pub shared_state: crate::shared_state::SharedState,
    /// The inputs of the workflow's first tasks (a sub-run's: its task's inputs).
    pub inputs: BTreeMap<String, Value>,
    /// A sub-run pauses by pausing its parent.
    pub pause_parent: Option<crate::context::PauseParent>,
    /// This run itself, for work that outlives a borrow (immediate checkpoints).
    pub me: std::sync::Weak<RunShared>,
    /// The worker fleet, and whether groups go there unless they say otherwise.
    pub fleet: OnceLock<(Arc<dyn Fleet>, bool)>,
    /// The fleet's side of this run, once it took charge.
    pub fleet_run: OnceLock<Arc<dyn FleetRun>>,
    /// The run's pools and rate limits.
    pub limiter: Arc<Limiter>,
}

impl RunShared {
    pub fn new(
        run_id: Arc<str>,
        wf: Arc<Workflow>,
        channel: Channel,
        events: Option<UnboundedSender<RunEvent>>,
        options: &super::RunOptions,
    ) -> Arc<Self> {
        let sinks = options.sinks.clone();
        let n = wf.plan.nodes.len();
        let limiter = Arc::new(Limiter::new(&wf.pools, &wf.queues));
        let state = RunState {
            results: vec![None; n],
            cycles: vec![0; n],
            ..RunState::default()
        };
        Arc::new_cyclic(|me| RunShared {
            run_id,
            wf,
            channel,
            has_events: events.is_some() || !sinks.is_empty(),
            sinks,
            events: Mutex::new(events),
            state: Mutex::new(state),
            stop: CancellationToken::new(),
            terminating: AtomicBool::new(false),
            gate: watch::Sender::new(true),
            quiet: Notify::new(),
            checkpoint_lock: tokio::sync::Mutex::new(()),
            checkpoints: options.checkpoints.clone(),
            finished: AtomicBool::new(false),
            checkpoint_every_task: AtomicBool::new(options.checkpoint_every_task),
            feedback: options.feedback.clone(),
            shared_state: options.state.clone(),
            inputs: options.inputs.clone(),
            pause_parent: options.pause_parent.clone(),
            me: me.clone(),
            fleet: OnceLock::new(),
            fleet_run: OnceLock::new(),
            limiter,
        })
    }

    /// Whether anyone listens to events (building them is skipped otherwise).
    pub fn emitting(&self) -> bool {
        self.has_events
    }

    /// Send an event to the listener, if any.
    pub fn emit(&self, kind: EventKind) {
        self.emit_at(kind, SystemTime::now());
    }

    /// Send an event that happened at `ts` to the listener, if any.
    pub fn emit_at(&self, kind: EventKind, ts: SystemTime) {
        if !self.has_events {
            return;
        }
        let event = RunEvent {
            run_id: self.run_id.clone(),
            ts,
            kind,
        };
        // One lock for both, so every sink sees the events in the stream's order.
        let events = self.events.lock();
        self.sinks.accept(&event);
        if let Some(tx) = events.as_ref() {
            let _ = tx.send(event);
        }
    }

    /// Close the event stream (after `run_finished`): the receiver sees its end.
    pub fn close_events(&self) {
        self.events.lock().take();
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

    /// Tell the fleet (if any) that `node`'s result is now `value`.
    pub fn result_recorded(&self, id: &str, value: &Value) {
        if let Some(run) = self.fleet_run.get() {
            run.result_recorded(id, value);
        }
    }

    /// Whether groups placed with [`Placement::Inherit`](crate::dispatch::Placement) at the
    /// top level go to the fleet.
    pub fn groups_on_fleet(&self) -> bool {
        self.fleet.get().is_some_and(|(_, groups)| *groups)
    }

    /// The handler that runs `def` on the fleet, when it goes there: the run has a fleet, the
    /// task is in a branch placed there or names a queue, and the task can travel.
    pub fn fleet_handler(
        &self,
        branch_on_fleet: bool,
        def: &Arc<crate::workflow::TaskDef>,
    ) -> Option<Arc<dyn crate::handler::TaskHandler>> {
        let run = self.fleet_run.get()?;
        // A sub-workflow runs where its run is driven (see `nested.rs`).
        if def.handler().kind() == super::nested::KIND {
            return None;
        }
        if !branch_on_fleet && def.options.queue.is_none() {
            return None;
        }
        run.remote_handler(def)
    }

    /// Each finished task's last result, by id, moved out of the run's state (for its
    /// outcome, once it has ended).
    pub fn take_task_results(&self) -> BTreeMap<String, Value> {
        let mut st = self.state.lock();
        let results = std::mem::take(&mut st.results);
        results
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let value = r?;
                let node = self.node(&st, i as u32);
                matches!(node.kind, PlanKind::Task(_)).then(|| (String::from(&*node.id), value))
            })
            .collect()
    }
}
