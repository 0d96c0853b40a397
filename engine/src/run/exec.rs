//! Executions in flight: each attempt of a task gets a slot when it starts and gives it back
//! exactly once when it ends (completed, failed, timed out, retried or dropped). A slot is
//! *running* or *parked* (waiting for an answer or for a checkpoint it asked for); the run's
//! running count is the number of running slots, so a checkpoint waits for exactly those.
//! Ending a slot ends every wait of its attempt: a wait that outlives its attempt (in a child
//! process or a script thread) finds its slot gone and stops instead of unparking a dead task.

use tokio_util::sync::CancellationToken;

use super::state::{RunShared, RunState};

/// One attempt in flight.
#[derive(Debug)]
pub(crate) struct Exec {
    /// The branch it runs in.
    pub branch: u32,
    /// Waiting (not counted as running).
    pub parked: bool,
    /// Cancelled when the attempt ends; made when somebody first waits for that (most
    /// attempts end without anybody waiting).
    pub ended: Option<CancellationToken>,
}

impl RunShared {
    /// A new attempt starts in `branch`: a fresh slot, counted as running.
    pub(crate) fn begin_exec(&self, st: &mut RunState, branch: u32) -> u32 {
        let mut slot = st.next_exec;
        while st.execs.contains_key(&slot) {
            slot = slot.wrapping_add(1);
        }
        st.next_exec = slot.wrapping_add(1);
        st.execs.insert(
            slot,
            Exec {
                branch,
                parked: false,
                ended: None,
            },
        );
        st.running += 1;
        slot
    }

    /// The attempt in `slot` ended: it no longer counts, its waits end, and its branch no
    /// longer has a current task. A second call does nothing.
    pub(crate) fn end_exec(&self, st: &mut RunState, slot: u32) {
        let Some(exec) = st.execs.remove(&slot) else {
            return;
        };
        if !exec.parked {
            st.running = st.running.saturating_sub(1);
        }
        if let Some(ended) = exec.ended {
            ended.cancel();
        }
        if let Some(b) = st.branch(exec.branch) {
            b.current = None;
        }
        self.notify_if_quiet(st);
    }

    /// The attempt in `slot` waits: it stops counting as running (it stays its branch's
    /// current task, to run again if a checkpoint is taken now). False when it has ended.
    pub(crate) fn park_exec(&self, slot: u32) -> bool {
        let mut st = self.state.lock();
        let Some(exec) = st.execs.get_mut(&slot) else {
            return false;
        };
        if !exec.parked {
            exec.parked = true;
            st.running = st.running.saturating_sub(1);
        }
        self.notify_if_quiet(&st);
        true
    }

    /// The attempt in `slot` goes on, once no checkpoint is being taken. False when it has
    /// ended meanwhile (its wait belongs to nobody).
    pub(crate) async fn unpark_exec(&self, slot: u32) -> bool {
        loop {
            {
                let mut st = self.state.lock();
                let gate_closed = st.gate_closed;
                let Some(exec) = st.execs.get_mut(&slot) else {
                    return false;
                };
                if !exec.parked {
                    return true;
                }
                if !gate_closed {
                    exec.parked = false;
                    st.running += 1;
                    return true;
                }
            }
            let mut open = self.gate.subscribe();
            let Some(ended) = self.exec_ended(slot) else {
                return false;
            };
            tokio::select! {
                _ = open.wait_for(|open| *open) => {}
                _ = ended.cancelled() => return false,
            }
        }
    }

    /// A token cancelled when the attempt in `slot` ends; `None` when it has ended already.
    pub(crate) fn exec_ended(&self, slot: u32) -> Option<CancellationToken> {
        self.state
            .lock()
            .execs
            .get_mut(&slot)
            .map(|e| e.ended.get_or_insert_with(CancellationToken::new).clone())
    }

    /// Wake a checkpoint waiting for the running tasks to stop, when none runs.
    fn notify_if_quiet(&self, st: &RunState) {
        if st.gate_closed && st.running == 0 {
            self.quiet.notify_one();
        }
    }
}
