//! What a task context can ask of its run ([`RunAccess`] for the local scheduler): results and
//! inputs, adding tasks at run time, log lines, and immediate checkpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::checkpoint::Reason;
use crate::context::{FeedbackAsk, PauseParent, RunAccess, SubRunParent};
use crate::events::{EventKind, LogStream, RunEvent};
use crate::hitl::{FeedbackError, FeedbackResponse};
use crate::sink::EventSink;
use crate::workflow::{PlanKind, PlanNode, TaskDef};

use super::state::{RunShared, RunState};
use crate::checkpoint::CheckpointError;

impl RunShared {
    /// Add a task node at run time (no event); returns its index.
    pub(crate) fn add_dynamic(
        &self,
        st: &mut RunState,
        def: Arc<TaskDef>,
        spec: Option<Value>,
    ) -> u32 {
        let node = Arc::new(PlanNode::detached(def, self.wf.max_cycles));
        let index = (self.wf.plan.nodes.len() + st.dynamic.len()) as u32;
        st.dynamic_index.insert(node.id.clone(), index);
        st.dynamic.push(node);
        st.dynamic_specs.push(spec);
        st.results.push(None);
        st.cycles.push(0);
        if let Some(run) = self.fleet_run.get() {
            run.task_added(&self.node(st, index).id);
        }
        index
    }
}

impl RunShared {
    /// Visit the results `task` reads as its inputs: each predecessor's, and for a group
    /// predecessor each member's too. A member without predecessors of its own reads its
    /// group's inputs.
    fn each_input(&self, st: &RunState, task: &str, mut visit: impl FnMut(&str, &Value)) {
        let Some(mut i) = self.lookup(st, task) else {
            return;
        };
        loop {
            let node = self.node(st, i);
            match (node.preds.is_empty(), node.group) {
                (true, Some(g)) => i = g,
                _ => break,
            }
        }
        let node = self.node(st, i);
        // A first task of the workflow reads the inputs given to the run (a sub-run's: its
        // `Workflow` task's inputs); tasks added at run time do not.
        if node.preds.is_empty() && (i as usize) < self.wf.plan.nodes.len() {
            for (id, value) in &self.inputs {
                visit(id, value);
            }
        }
        for &p in &node.preds {
            let pred = self.node(st, p);
            if let Some(v) = &st.results[p as usize] {
                visit(&pred.id, v);
            }
            if let PlanKind::Group { members, .. } = &pred.kind {
                for &m in members {
                    if let Some(v) = &st.results[m as usize] {
                        visit(&self.node(st, m).id, v);
                    }
                }
            }
        }
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
        self.each_input(&st, task, |id, value| {
            out.insert(id.to_string(), value.clone());
        });
        out
    }

    fn input_ids(&self, task: &str) -> Vec<String> {
        let st = self.state.lock();
        let mut out = Vec::new();
        self.each_input(&st, task, |id, _| out.push(id.to_string()));
        out.sort_unstable();
        out.dedup();
        out
    }

    fn shared_state(&self) -> &crate::shared_state::SharedState {
        &self.shared_state
    }

    fn has_node(&self, task: &str) -> bool {
        let st = self.state.lock();
        self.lookup(&st, task).is_some()
    }

    fn add_task(&self, id: &str, def: Option<TaskDef>, by: &str) -> bool {
        let (def, spec) = match def {
            Some(d) => {
                let spec = d.spec.clone();
                (Arc::new(d), spec)
            }
            None => match self.wf.tasks.get(id) {
                Some(d) => (d.clone(), None),
                None => return false,
            },
        };
        let added = {
            let mut st = self.state.lock();
            if self.lookup(&st, id).is_some() {
                return true;
            }
            let index = self.add_dynamic(&mut st, def, spec);
            self.node(&st, index).id.clone()
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
                worker: None,
            });
        }
    }

    fn started(&self, task: &str, cycle: u32, attempt: u32) {
        if self.emitting() {
            self.emit(EventKind::TaskStarted {
                task: Arc::from(task),
                cycle,
                attempt,
            });
        }
    }

    fn waiting(&self, task: &str, cycle: u32, attempt: u32, wait: crate::pool::Wait) {
        if self.emitting() {
            self.emit(EventKind::TaskWaiting {
                task: Arc::from(task),
                cycle,
                attempt,
                reason: wait.reason.name().to_string(),
                pool: wait.pool,
                detail: wait.detail,
            });
        }
    }

    fn log_from(&self, task: &str, stream: LogStream, line: String, worker: Arc<str>) {
        if self.emitting() {
            self.emit(EventKind::TaskLog {
                task: Arc::from(task),
                stream,
                line,
                worker: Some(worker),
            });
        }
    }

    fn checkpoint_now(
        &self,
        slot: u32,
        task: &str,
        metadata: Value,
    ) -> BoxFuture<'static, Result<String, CheckpointError>> {
        let Some(shared) = self.me.upgrade() else {
            return futures::future::ready(Err(CheckpointError::NotRunning)).boxed();
        };
        let task: Arc<str> = Arc::from(task);
        async move {
            let cycle = {
                let st = shared.state.lock();
                shared
                    .lookup(&st, &task)
                    .map(|i| st.cycles[i as usize])
                    .unwrap_or(0)
            };
            shared
                .checkpoint(
                    Reason::Immediate,
                    Some((&task, cycle)),
                    metadata,
                    Some(slot),
                )
                .await
                .map(|saved| saved.path.display().to_string())
        }
        .boxed()
    }

    fn request_feedback(
        &self,
        ask: FeedbackAsk,
    ) -> BoxFuture<'static, Result<FeedbackResponse, FeedbackError>> {
        self.ask_feedback(ask)
    }

    fn sub_run_parent(&self, task: &str, slot: u32) -> SubRunParent {
        let can_pause = self.checkpoints.is_some() || self.pause_parent.is_some();
        let pause = can_pause.then(|| {
            let me = self.me.clone();
            let task: Arc<str> = Arc::from(task);
            PauseParent::new(move |feedback_id| {
                let me = me.clone();
                let task = task.clone();
                async move {
                    let shared = me.upgrade().ok_or("the parent run has ended")?;
                    shared.pause_for_sub_run(slot, &task, feedback_id).await
                }
                .boxed()
            })
        });
        let events = self.emitting().then(|| {
            Arc::new(Forward {
                parent: self.me.clone(),
                task: Arc::from(task),
            }) as Arc<dyn EventSink>
        });
        SubRunParent {
            feedback: self.feedback.clone(),
            state: self.shared_state.clone(),
            events,
            pause,
        }
    }
}

/// Forwards a sub-run's events into its parent's stream, nested under the parent's task.
struct Forward {
    parent: std::sync::Weak<RunShared>,
    task: Arc<str>,
}

impl EventSink for Forward {
    fn accept(&self, event: &RunEvent) {
        let Some(parent) = self.parent.upgrade() else {
            return;
        };
        // A sub-run cancelled with its parent may still end after the parent's last event.
        if parent.finished.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        parent.emit_at(event.kind.clone().nested_in(self.task.clone()), event.ts);
    }
}
