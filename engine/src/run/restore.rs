//! Rebuilding a run's state from a checkpoint's snapshot: tasks added at run time, results,
//! counters, join progress, and the branch tree with groups in progress.

use std::sync::Arc;

use serde_json::Value;

use crate::checkpoint::snapshot::{BranchSnapshot, RunSnapshot};
use crate::error::BuildError;
use crate::group::MemberOutcome;
use crate::workflow::TaskDef;

use super::state::{Entry, GroupResume, RunShared, RunState};

/// Most tasks added at run time a checkpoint may list.
pub const MAX_DYNAMIC_TASKS: usize = 100_000;

/// Whether an id read from a checkpoint can name a task: a name the flow language accepts
/// (letters, digits, `_`, `-`, `.`, `:`), at most 200 characters.
fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= 200
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Builds a task added at run time again from its spec (the workflow-file loader implements it).
pub trait TaskFactory: Send + Sync {
    /// Build task `id` from `spec`.
    fn build(&self, id: &str, spec: &Value) -> Result<TaskDef, BuildError>;
}

/// Load `snap` into the fresh state `st` of `shared`; returns an error naming what cannot be
/// restored (an unknown task, a task added at run time that cannot be rebuilt).
pub(crate) fn restore(
    shared: &RunShared,
    st: &mut RunState,
    snap: &RunSnapshot,
    factory: Option<&dyn TaskFactory>,
) -> Result<(), String> {
    if snap.dynamic.len() > MAX_DYNAMIC_TASKS {
        return Err(format!(
            "the checkpoint lists {} tasks added at run time (at most {MAX_DYNAMIC_TASKS})",
            snap.dynamic.len()
        ));
    }
    for task in &snap.dynamic {
        if !valid_task_id(&task.id) {
            return Err(format!(
                "the checkpoint names a task added at run time whose id '{}' is not a task name",
                task.id.chars().take(80).collect::<String>()
            ));
        }
        if shared.lookup(st, &task.id).is_some() {
            continue;
        }
        let def = match (&task.spec, shared.wf.tasks.get(task.id.as_str())) {
            (None, Some(def)) => def.clone(),
            (Some(spec), _) => {
                let factory = factory.ok_or_else(|| format!("task '{}' was added at run time and cannot be rebuilt without its workflow file", task.id))?;
                Arc::new(factory.build(&task.id, spec).map_err(|e| {
                    let why = match e {
                        BuildError::InvalidTask { message, .. } => message,
                        e => e.to_string(),
                    };
                    format!("task '{}' added at run time: {why}", task.id)
                })?)
            }
            (None, None) => {
                return Err(format!(
                    "task '{}' was added at run time by Rust code and is not a definition of this workflow",
                    task.id
                ));
            }
        };
        shared.add_dynamic(st, def, task.spec.clone());
    }
    let index = |st: &RunState, id: &str| {
        shared.lookup(st, id).ok_or_else(|| {
            format!("the checkpoint names task '{id}', which this workflow does not have")
        })
    };
    check_branch(shared, st, &snap.top)?;
    for (id, value) in &snap.results {
        let i = index(st, id)?;
        st.results[i as usize] = Some(value.clone());
    }
    for (id, count) in &snap.cycles {
        let i = index(st, id)?;
        st.cycles[i as usize] = *count;
    }
    for (id, preds) in &snap.arrivals {
        let i = index(st, id)?;
        let preds = preds
            .iter()
            .map(|p| index(st, p))
            .collect::<Result<Vec<u32>, String>>()?;
        st.arrivals.insert(i, preds);
    }
    st.steps = snap.steps;
    if let Some(t) = &snap.terminated {
        st.terminated = Some((
            Arc::from(t.task.as_str()),
            t.message.clone(),
            t.result.clone(),
        ));
    }
    let entries = branch_entries(shared, st, &snap.top);
    st.open_branch_with(entries, snap.top.last.clone(), false);
    Ok(())
}

fn check_branch(shared: &RunShared, st: &RunState, b: &BranchSnapshot) -> Result<(), String> {
    let known = |id: &str| {
        shared.lookup(st, id).map(|_| ()).ok_or_else(|| {
            format!("the checkpoint names task '{id}', which this workflow does not have")
        })
    };
    for e in &b.queue {
        known(&e.task)?;
    }
    if let Some(g) = &b.group {
        known(&g.group)?;
        for f in &g.finished {
            known(&f.member)?;
        }
        for (m, child) in &g.running {
            known(m)?;
            check_branch(shared, st, child)?;
        }
    }
    Ok(())
}

/// The queue of a saved branch: its group in progress first (as a resume entry), then its
/// entries. Ids were checked by `restore`.
pub(crate) fn branch_entries(shared: &RunShared, st: &RunState, b: &BranchSnapshot) -> Vec<Entry> {
    let mut out = Vec::with_capacity(b.queue.len() + 1);
    if let Some(g) = &b.group
        && let Some(node) = shared.lookup(st, &g.group)
    {
        let finished = g
            .finished
            .iter()
            .map(|f| {
                (
                    MemberOutcome {
                        id: f.member.clone(),
                        error: f.error.clone(),
                        duration_ms: f.duration_ms,
                    },
                    f.result.clone(),
                )
            })
            .collect();
        let running = g
            .running
            .iter()
            .filter_map(|(m, child)| shared.lookup(st, m).map(|i| (i, child.clone())))
            .collect();
        out.push(Entry {
            node,
            data: Value::Null,
            attempt: 0,
            resume: Some(Arc::new(GroupResume {
                finished,
                running,
                saved: g.clone(),
            })),
        });
    }
    out.extend(b.queue.iter().filter_map(|e| {
        shared.lookup(st, &e.task).map(|node| Entry {
            node,
            data: e.data.clone(),
            attempt: e.attempt,
            resume: None,
        })
    }));
    out
}
