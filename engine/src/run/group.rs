//! Running a parallel group: one branch per member, all concurrent on the tokio runtime; the
//! group is a barrier that waits for every member, then applies its policy. Progress (members
//! finished, branches of members running) is kept in the parent branch so a checkpoint can
//! save it; a group restored from a checkpoint starts with its finished members and re-opens
//! the saved branches of the others.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::dispatch::Placement;
use crate::error::RunError;
use crate::events::EventKind;
use crate::group::MemberOutcome;
use crate::workflow::PlanKind;

use super::branch::run_branch;
use super::checkpoint::TOP_BRANCH;
use super::restore::branch_entries;
use super::state::{Entry, GroupProgress, RunShared};

/// Run the group of `entry` from `branch`; on success its result maps each member to the
/// last result of the member's branch, and the group's successors are queued in `branch`.
pub(crate) async fn run_group(
    shared: &Arc<RunShared>,
    branch: u32,
    entry: Entry,
    id: Arc<str>,
    members: Vec<u32>,
    placement: Placement,
) -> Result<Value, RunError> {
    let node = entry.node;
    let mut set = JoinSet::new();
    let mut outcomes: Vec<MemberOutcome> = Vec::with_capacity(members.len());
    let mut results = Map::new();
    let mut names = Vec::with_capacity(members.len());
    {
        let mut st = shared.state.lock();
        let mut progress = GroupProgress {
            node,
            ..GroupProgress::default()
        };
        // Which members start fresh, which resume a saved branch, which had finished.
        let mut starts: Vec<(u32, Vec<Entry>, Option<Value>)> = Vec::new();
        match &entry.resume {
            None => starts.extend(members.iter().map(|&m| (m, vec![Entry::new(m)], None))),
            Some(resume) => {
                for (outcome, value) in &resume.finished {
                    if outcome.succeeded() {
                        results.insert(outcome.id.clone(), value.clone());
                    }
                    let m = shared.lookup(&st, &outcome.id).unwrap_or(node);
                    progress.finished.push((m, outcome.clone(), value.clone()));
                    outcomes.push(outcome.clone());
                }
                for (m, saved) in &resume.running {
                    starts.push((*m, branch_entries(shared, &st, saved), saved.last.clone()));
                }
            }
        }
        let on_fleet = match placement {
            Placement::Fleet => true,
            Placement::Local => false,
            Placement::Inherit if branch == TOP_BRANCH => shared.groups_on_fleet(),
            Placement::Inherit => st.branch(branch).is_some_and(|b| b.fleet),
        };
        for (m, entries, last) in starts {
            let name = shared.node(&st, m).id.clone();
            let member_branch = st.open_branch_with(entries, last, on_fleet);
            progress.running.push((m, member_branch));
            let sh = shared.clone();
            let label = name.clone();
            set.spawn(async move {
                let t0 = Instant::now();
                let out = run_branch(sh.clone(), member_branch).await;
                let elapsed = t0.elapsed();
                // Record the outcome and drop the branch in one step, so a checkpoint sees the
                // member either running or finished.
                let outcome = MemberOutcome {
                    id: label.to_string(),
                    error: out.as_ref().err().map(ToString::to_string),
                    duration_ms: elapsed.as_millis() as u64,
                };
                let value = out.as_ref().ok().cloned().flatten().unwrap_or(Value::Null);
                finish_member(&sh, branch, member_branch, m, &outcome, value.clone());
                (label, outcome, value)
            });
            names.push(name);
        }
        if let Some(b) = st.branch(branch) {
            b.group = Some(progress);
        }
    }
    if shared.emitting() {
        shared.emit(EventKind::GroupStarted {
            group: id.clone(),
            members: names,
        });
    }
    while let Some(joined) = set.join_next().await {
        let (member, outcome, value) = joined.map_err(|e| RunError::Internal {
            message: format!("a branch of group '{id}' stopped abnormally: {e}"),
        })?;
        if outcome.succeeded() {
            results.insert(member.to_string(), value);
        }
        outcomes.push(outcome);
    }
    if shared.stop.is_cancelled() {
        return Err(shared.cancel_error());
    }
    let policy = {
        let st = shared.state.lock();
        match &shared.node(&st, node).kind {
            PlanKind::Group { policy, .. } => policy.clone(),
            PlanKind::Task(_) => {
                return Err(RunError::Internal {
                    message: format!("'{id}' was run as a group but is a task"),
                });
            }
        }
    };
    let verdict = policy.evaluate(&id, &outcomes);
    shared.emit(EventKind::GroupFinished {
        group: id.clone(),
        policy: policy.name(),
        succeeded: outcomes
            .iter()
            .filter(|o| o.succeeded())
            .map(|o| o.id.clone())
            .collect(),
        failed: outcomes
            .iter()
            .filter_map(|o| o.error.clone().map(|e| (o.id.clone(), e)))
            .collect(),
        ok: verdict.is_ok(),
    });
    verdict.map_err(RunError::GroupFailed)?;
    let value = Value::Object(results);
    // Finishing the group is one step: a checkpoint sees it either running or done.
    let mut st = shared.state.lock();
    st.results[node as usize] = Some(value.clone());
    shared.result_recorded(&id, &value);
    if let Some(b) = st.branch(branch) {
        b.group = None;
        b.last = Some(value.clone());
    }
    if !shared.is_terminating() {
        shared.schedule_successors(&mut st, branch, node);
    }
    Ok(value)
}

/// Member `m` of the group running in `parent` finished: drop its branch and move it from
/// running to finished, under one lock.
fn finish_member(
    shared: &RunShared,
    parent: u32,
    member_branch: u32,
    m: u32,
    outcome: &MemberOutcome,
    value: Value,
) {
    let mut st = shared.state.lock();
    st.branches.remove(&member_branch);
    if let Some(progress) = st.branch(parent).and_then(|b| b.group.as_mut()) {
        progress.running.retain(|(member, _)| *member != m);
        progress.finished.push((m, outcome.clone(), value));
    }
}
