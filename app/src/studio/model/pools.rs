//! The pools of a workflow as a run uses them, folded from its events: slots in use (the slots
//! of its running tasks), the tasks waiting for each pool, and each bucket's rate. The same
//! fold serves live runs, recorded runs and runs followed on a fleet.

use std::sync::Arc;

use graflow_engine::Workflow;

use super::run::{RunView, TaskStatus};

/// One pool (or one rate-limited queue) of a workflow, in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolRow {
    /// `openai`, or `queue gpu` for a queue's bucket.
    pub name: String,
    /// Its slots (none for a queue).
    pub size: Option<u32>,
    /// Slots held by running tasks.
    pub in_use: u32,
    /// Tasks waiting for it, oldest first.
    pub waiting: Vec<Arc<str>>,
    /// Its bucket's rate, as written.
    pub rate: Option<String>,
}

/// A waiting task: its id, since when it waits, the pool its wait names.
type WaitingTask<'a> = (&'a Arc<str>, std::time::SystemTime, Option<&'a Arc<str>>);

/// The rows of `workflow`'s pools and rate-limited queues, with `run`'s state when given.
pub fn pool_rows(workflow: &Workflow, run: Option<&RunView>) -> Vec<PoolRow> {
    let mut rows: Vec<PoolRow> = workflow
        .pools()
        .iter()
        .map(|(name, def)| PoolRow {
            name: name.clone(),
            size: Some(def.slots),
            in_use: 0,
            waiting: Vec::new(),
            rate: def.rate_limit.map(|r| r.to_string()),
        })
        .collect();
    rows.extend(workflow.queues().iter().filter_map(|(name, def)| {
        def.rate_limit.map(|r| PoolRow {
            name: format!("queue {name}"),
            size: None,
            in_use: 0,
            waiting: Vec::new(),
            rate: Some(r.to_string()),
        })
    }));
    let Some(run) = run else {
        return rows;
    };
    // Waiting tasks: (id, since when, the pool named by the wait).
    let mut waiting: Vec<WaitingTask<'_>> = Vec::new();
    for (id, task) in &run.tasks {
        let options = workflow.task(id).map(|d| &d.options);
        let pool = options.and_then(|o| o.pool.as_deref());
        match task.status() {
            TaskStatus::Running => {
                if let (Some(pool), Some(o)) = (pool, options)
                    && let Some(row) = rows.iter_mut().find(|r| r.size.is_some() && r.name == pool)
                {
                    row.in_use += o.slots.unwrap_or(1);
                }
            }
            TaskStatus::Waiting => {
                if let Some(w) = &task.waiting {
                    waiting.push((id, w.since, w.pool.as_ref()));
                }
            }
            _ => {}
        }
    }
    waiting.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    for (id, _, pool) in waiting {
        let queue = workflow
            .task(id)
            .and_then(|d| d.options.queue.as_ref())
            .map(|q| format!("queue {q}"));
        let target = pool
            .map(|p| p.to_string())
            .or_else(|| workflow.task(id).and_then(|d| d.options.pool.clone()))
            .or(queue);
        if let Some(row) = target.and_then(|t| rows.iter_mut().find(|r| r.name == t)) {
            row.waiting.push(id.clone());
        }
    }
    rows
}
