//! Taking a checkpoint of a running run: close the gate (no task starts), wait until no task
//! is executing (tasks that asked for the checkpoint themselves are parked), snapshot the
//! state and the channel, write the files off the async threads, open the gate.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value};

use crate::checkpoint::snapshot::{
    BranchSnapshot, ChannelContent, DynamicTask, EntrySnapshot, FinishedMember, GroupSnapshot,
    RunSnapshot, Terminated,
};
use crate::checkpoint::{Checkpoint, CheckpointError, Reason, Saved, store};
use crate::events::EventKind;

use super::state::{Entry, RunShared, RunState};

/// The id of the top-level branch (the first one a run opens).
pub(crate) const TOP_BRANCH: u32 = 0;

impl RunShared {
    /// Write a checkpoint. `requester` is the task that asked (id and cycle), `parked` its
    /// slot when it is still executing (an immediate checkpoint: it will run again on
    /// resume). Any number of checkpoints of any kind may be asked for at once: they are
    /// taken one after the other.
    pub(crate) async fn checkpoint(
        &self,
        reason: Reason,
        requester: Option<(&str, u32)>,
        metadata: Value,
        parked: Option<u32>,
    ) -> Result<Saved, CheckpointError> {
        let config = self
            .checkpoints
            .clone()
            .ok_or(CheckpointError::NotConfigured)?;
        if self.finished.load(Ordering::Acquire) {
            return Err(CheckpointError::NotRunning);
        }
        // A task asking for a checkpoint parks *before* waiting for its turn: a checkpoint
        // taken meanwhile must not wait for it (it waits for us).
        if let Some(slot) = parked
            && !self.park_exec(slot)
        {
            return Err(CheckpointError::NotRunning);
        }
        let outcome = async {
            let _one_at_a_time = self.checkpoint_lock.lock().await;
            if let Some(slot) = parked
                && self.exec_ended(slot).is_none()
            {
                // The asking attempt ended (timeout, cancellation) while it waited its turn.
                return Err(CheckpointError::NotRunning);
            }
            self.checkpoint_paused(&config, reason, requester, metadata)
                .await
        }
        .await;
        if let Some(slot) = parked {
            // Goes on once no other checkpoint is being taken.
            self.unpark_exec(slot).await;
        }
        let saved = outcome?;
        if let Some(mirror) = &config.mirror {
            keep_in(mirror.as_ref(), &config, &saved).await;
        }
        self.emit(EventKind::CheckpointSaved {
            path: saved.path.display().to_string(),
            size_bytes: saved.size_bytes,
            content_bytes: saved.content_bytes,
        });
        Ok(saved)
    }

    async fn checkpoint_paused(
        &self,
        config: &crate::checkpoint::CheckpointConfig,
        reason: Reason,
        requester: Option<(&str, u32)>,
        metadata: Value,
    ) -> Result<Saved, CheckpointError> {
        {
            let mut st = self.state.lock();
            st.gate_closed = true;
        }
        self.gate.send_replace(false);
        let result = async {
            loop {
                if self.state.lock().running == 0 {
                    break;
                }
                tokio::select! {
                    _ = self.quiet.notified() => {}
                    _ = self.stop.cancelled() => return Err(CheckpointError::NotRunning),
                }
            }
            let (mut snapshot, mut seq) = {
                let mut st = self.state.lock();
                st.checkpoint_seq += 1;
                (self.snapshot(&st), st.checkpoint_seq)
            };
            // A resumed run goes on numbering after the checkpoints already in the folder,
            // and after those of the run kept in the mirror (written on another machine).
            if let Some(mirror) = &config.mirror {
                match tokio::time::timeout(MIRROR_WAIT, mirror.highest_seq(&self.run_id)).await {
                    Ok(Ok(top)) => seq = seq.max(top.saturating_add(1)),
                    Ok(Err(e)) => {
                        tracing::warn!("checkpoint numbers in {}: {e}", mirror.describe())
                    }
                    Err(_) => tracing::warn!(
                        "checkpoint numbers in {}: no answer within {} s",
                        mirror.describe(),
                        MIRROR_WAIT.as_secs()
                    ),
                }
            }
            while store::path_for_parts(&config.dir, &config.workflow.name, &self.run_id, seq)
                .exists()
            {
                seq += 1;
            }
            self.state.lock().checkpoint_seq = seq;
            snapshot.channel = match self.channel.memory_store() {
                // Nothing runs until the file is written: the channel goes straight into it.
                Some(live) => ChannelContent::Live(live),
                None => ChannelContent::Json(self.channel.snapshot_json().await.map_err(|e| {
                    CheckpointError::Invalid(format!("cannot read the channel: {e}"))
                })?),
            };
            let feedback = match &self.feedback {
                Some(manager) => manager
                    .backend
                    .list(Some(&self.run_id), true)
                    .await
                    .map(|open| {
                        open.iter()
                            .filter_map(|r| serde_json::to_value(r).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let ckpt = Checkpoint {
                run_id: self.run_id.to_string(),
                seq,
                created_at: humantime::format_rfc3339_micros(std::time::SystemTime::now())
                    .to_string(),
                reason,
                task: requester.map(|(t, _)| t.to_string()),
                workflow: config.workflow.clone(),
                metadata: enrich(metadata, reason, requester),
                snapshot,
                feedback,
            };
            let dir = config.dir.clone();
            let (keep, keep_for) = (config.keep_last, config.keep_for);
            let (key, compression) = (config.signing_key.clone(), config.compression);
            tokio::task::spawn_blocking(move || {
                let saved = store::save_with(&dir, &ckpt, key.as_deref(), compression);
                if saved.is_ok() {
                    if let Some(keep) = keep {
                        store::prune(&dir, &ckpt.workflow.name, keep.max(1));
                    }
                    if let Some(age) = keep_for {
                        store::prune_older_than(
                            &dir,
                            &ckpt.workflow.name,
                            age,
                            std::time::SystemTime::now(),
                        );
                    }
                }
                // Freeing a large state takes a while: do it off the run's path.
                std::thread::spawn(move || drop(ckpt));
                saved
            })
            .await
            .map_err(|e| CheckpointError::Invalid(format!("the writer stopped: {e}")))?
        }
        .await;
        {
            let mut st = self.state.lock();
            st.gate_closed = false;
        }
        self.gate.send_replace(true);
        result
    }

    /// The run's state, without the channel (the caller adds it). Tasks that are executing or
    /// parked are queued first in their branch with their cycle not counted: they run again.
    pub(crate) fn snapshot(&self, st: &RunState) -> RunSnapshot {
        let id = |i: u32| self.node(st, i).id.to_string();
        let mut cycles: BTreeMap<String, u32> = BTreeMap::new();
        for (i, &c) in st.cycles.iter().enumerate() {
            if c > 0 {
                cycles.insert(id(i as u32), c);
            }
        }
        for b in st.branches.values() {
            if let Some(cur) = b
                .current
                .as_ref()
                .filter(|e| e.attempt == 0 && e.resume.is_none())
                && let Some(c) = cycles.get_mut(&id(cur.node))
            {
                *c = c.saturating_sub(1);
            }
        }
        cycles.retain(|_, c| *c > 0);
        RunSnapshot {
            steps: st.steps,
            results: st
                .results
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.as_ref().map(|v| (id(i as u32), v.clone())))
                .collect(),
            cycles,
            arrivals: st
                .arrivals
                .iter()
                .map(|(n, preds)| (id(*n), preds.iter().map(|p| id(*p)).collect()))
                .collect(),
            dynamic: st
                .dynamic
                .iter()
                .zip(&st.dynamic_specs)
                .map(|(node, spec)| DynamicTask {
                    id: node.id.to_string(),
                    spec: spec.clone(),
                })
                .collect(),
            terminated: st
                .terminated
                .as_ref()
                .map(|(task, message, result)| Terminated {
                    task: task.to_string(),
                    message: message.clone(),
                    result: result.clone(),
                }),
            top: self.branch_snapshot(st, TOP_BRANCH),
            channel: ChannelContent::default(),
        }
    }

    fn branch_snapshot(&self, st: &RunState, branch: u32) -> BranchSnapshot {
        let Some(b) = st.branches.get(&branch) else {
            return BranchSnapshot::default();
        };
        let entry = |e: &Entry| EntrySnapshot {
            task: self.node(st, e.node).id.to_string(),
            data: e.data.clone(),
            attempt: e.attempt,
        };
        let mut snap = BranchSnapshot {
            last: b.last.clone(),
            ..BranchSnapshot::default()
        };
        // A group restored but not yet started sits at the front of the queue.
        let mut queued = b.queue.iter().peekable();
        if let Some(resume) = queued.peek().and_then(|e| e.resume.clone()) {
            snap.group = Some(resume.saved.clone());
            queued.next();
        }
        if let Some(g) = &b.group {
            snap.group = Some(GroupSnapshot {
                group: self.node(st, g.node).id.to_string(),
                finished: g
                    .finished
                    .iter()
                    .map(|(_, outcome, value)| FinishedMember {
                        member: outcome.id.clone(),
                        error: outcome.error.clone(),
                        duration_ms: outcome.duration_ms,
                        result: value.clone(),
                    })
                    .collect(),
                running: g
                    .running
                    .iter()
                    .map(|(child, m)| {
                        (
                            self.node(st, *m).id.to_string(),
                            self.branch_snapshot(st, *child),
                        )
                    })
                    .collect(),
            });
        }
        snap.queue.extend(b.current.iter().map(entry));
        snap.queue.extend(queued.map(entry));
        snap.queue.extend(b.retry.iter().map(|r| entry(r)));
        snap
    }
}

/// How long a checkpoint waits for its mirror (Redis) before going on without it.
const MIRROR_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Keep the checkpoint just written to `saved.path` in `mirror` too (the same bytes), then
/// apply the run's retention there. The local file is the checkpoint: a mirror that is away,
/// slow or refuses gets a warning, never a failed checkpoint.
async fn keep_in(
    mirror: &dyn crate::checkpoint::CheckpointStore,
    config: &crate::checkpoint::CheckpointConfig,
    saved: &Saved,
) {
    let path = saved.path.clone();
    let read = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path);
        (store::info(&path), bytes)
    })
    .await;
    let (info, bytes) = match read {
        Ok((Some(info), Ok(bytes))) => (info, bytes),
        Ok((_, Err(e))) => {
            tracing::warn!(
                "checkpoint {} was not kept in {}: cannot read it back: {e}",
                saved.path.display(),
                mirror.describe()
            );
            return;
        }
        _ => {
            tracing::warn!(
                "checkpoint {} was not kept in {}: cannot read it back",
                saved.path.display(),
                mirror.describe()
            );
            return;
        }
    };
    let workflow = info.workflow.clone();
    let kept = tokio::time::timeout(MIRROR_WAIT, mirror.put(&info, bytes)).await;
    let failure = match kept {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", MIRROR_WAIT.as_secs())),
    };
    if let Some(why) = failure {
        tracing::warn!(
            "checkpoint {} was written on this machine but not kept in {} ({why}); it resumes \
             from this machine only",
            saved.path.display(),
            mirror.describe()
        );
        return;
    }
    let pruned = tokio::time::timeout(
        MIRROR_WAIT,
        mirror.prune(
            &workflow,
            config.keep_last,
            config.keep_for,
            std::time::SystemTime::now(),
        ),
    )
    .await;
    match pruned {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("retention in {}: {e}", mirror.describe()),
        Err(_) => tracing::warn!(
            "retention in {}: no answer within {} s",
            mirror.describe(),
            MIRROR_WAIT.as_secs()
        ),
    }
}

/// User metadata plus `task_id`, `cycle` and `mode` (user keys win).
fn enrich(metadata: Value, reason: Reason, requester: Option<(&str, u32)>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some((task, cycle)) = requester {
        out.insert("task_id".into(), Value::from(task));
        out.insert("cycle".into(), Value::from(cycle));
    }
    out.insert(
        "mode".into(),
        Value::from(match reason {
            Reason::Deferred => "deferred",
            Reason::Immediate => "immediate",
            Reason::Host => "host",
            Reason::Feedback => "feedback",
        }),
    );
    match metadata {
        Value::Object(user) => out.extend(user),
        Value::Null => {}
        other => {
            out.insert("value".into(), other);
        }
    }
    out
}
