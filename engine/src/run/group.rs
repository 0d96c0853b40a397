//! Running a parallel group: one branch per member, all concurrent on the tokio runtime; the
//! group is a barrier that waits for every member, then applies its policy. Progress (members
//! finished, branches of members running) is kept in the parent branch so a checkpoint can
//! save it; a group restored from a checkpoint starts with its finished members and re-opens
//! the saved branches of the others.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

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

/// Run the group of `entry` from `branch`; on success its result (recorded as the group's)
/// maps each member to the last result of the member's branch, and the group's successors
/// are queued in `branch`.
pub(crate) async fn run_group(
    shared: &Arc<RunShared>,
    branch: u32,
    entry: Entry,
    id: Arc<str>,
    members: Vec<u32>,
    placement: Placement,
) -> Result<(), RunError> {
    let node = entry.node;
    let mut names = Vec::with_capacity(members.len());
    let mut member_runs = Vec::with_capacity(members.len());
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
                    let m = shared.lookup(&st, &outcome.id).unwrap_or(node);
                    progress.finished.push((m, outcome.clone(), value.clone()));
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
            progress.running.insert(member_branch, m);
            member_runs.push(run_member(
                shared.clone(),
                branch,
                member_branch,
                m,
                String::from(&*name),
            ));
            names.push(name);
        }
        if let Some(b) = st.branch(branch) {
            b.group = Some(Box::new(progress));
        }
    }
    if shared.emitting() {
        shared.emit(EventKind::GroupStarted {
            group: id.clone(),
            members: names,
        });
    }
    let mut lanes = spawn_lanes(member_runs);
    while let Some(joined) = lanes.join_next().await {
        joined.map_err(|e| RunError::Internal {
            message: format!("a branch of group '{id}' stopped abnormally: {e}"),
        })?;
    }
    if shared.stop.is_cancelled() {
        return Err(shared.cancel_error());
    }
    let (policy, outcomes) = {
        let mut st = shared.state.lock();
        let policy = match &shared.node(&st, node).kind {
            PlanKind::Group { policy, .. } => policy.clone(),
            PlanKind::Task(_) => {
                return Err(RunError::Internal {
                    message: format!("'{id}' was run as a group but is a task"),
                });
            }
        };
        let outcomes: Vec<MemberOutcome> = st
            .branch(branch)
            .and_then(|b| b.group.as_ref())
            .map(|g| g.finished.iter().map(|(_, o, _)| o.clone()).collect())
            .unwrap_or_default();
        (policy, outcomes)
    };
    let verdict = policy.evaluate(&id, &outcomes);
    if shared.emitting() {
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
    }
    verdict.map_err(RunError::GroupFailed)?;
    // Finishing the group is one step: a checkpoint sees it either running or done.
    let mut st = shared.state.lock();
    let finished = st
        .branch(branch)
        .and_then(|b| b.group.take())
        .map(|g| g.finished)
        .unwrap_or_default();
    let mut results = Map::with_capacity(finished.len());
    for (_, outcome, value) in finished {
        if outcome.succeeded() {
            results.insert(outcome.id, value);
        }
    }
    let value = Value::Object(results);
    shared.result_recorded(&id, &value);
    if let Some(b) = st.branch(branch) {
        b.last = Some(value.clone());
    }
    st.results[node as usize] = Some(value);
    if !shared.is_terminating() {
        shared.schedule_successors(&mut st, branch, node);
    }
    Ok(())
}

/// Run member `m` of the group running in `parent`, in its own branch, and record how it
/// ended.
async fn run_member(sh: Arc<RunShared>, parent: u32, member_branch: u32, m: u32, id: String) {
    let t0 = Instant::now();
    let out = run_branch(sh.clone(), member_branch).await;
    let duration_ms = t0.elapsed().as_millis() as u64;
    let (error, value) = match out {
        Ok(last) => (None, last.unwrap_or(Value::Null)),
        Err(e) => (Some(e.to_string()), Value::Null),
    };
    let outcome = MemberOutcome {
        id,
        error,
        duration_ms,
    };
    finish_member(&sh, parent, member_branch, m, outcome, value);
}

/// Spawn the members' runs on a few tokio tasks ("lanes"), each driving its share of the
/// members concurrently: every member makes progress on its own, the lanes spread them over
/// the runtime's threads, and a group of thousands costs a handful of spawns.
fn spawn_lanes<F>(runs: Vec<F>) -> JoinSet<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    let count = runs.len().min(threads * LANES_PER_THREAD).max(1);
    let lanes: Vec<FuturesUnordered<F>> = (0..count).map(|_| FuturesUnordered::new()).collect();
    for (i, run) in runs.into_iter().enumerate() {
        lanes[i % count].push(run);
    }
    let mut set = JoinSet::new();
    for mut lane in lanes {
        set.spawn(async move { while lane.next().await.is_some() {} });
    }
    set
}

/// Lanes per runtime thread: enough for work stealing to balance uneven members.
const LANES_PER_THREAD: usize = 4;

/// Member `m` of the group running in `parent` finished: drop its branch and move it from
/// running to finished, under one lock.
fn finish_member(
    shared: &RunShared,
    parent: u32,
    member_branch: u32,
    m: u32,
    outcome: MemberOutcome,
    value: Value,
) {
    let mut st = shared.state.lock();
    st.branches.remove(&member_branch);
    if let Some(progress) = st.branch(parent).and_then(|b| b.group.as_mut()) {
        progress.running.remove(&member_branch);
        progress.finished.push((m, outcome, value));
    }
}
