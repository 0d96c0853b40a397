//! Running a parallel group: one branch per member, all concurrent on the tokio runtime; the
//! group is a barrier that waits for every member, then applies its policy.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::error::RunError;
use crate::events::EventKind;
use crate::group::MemberOutcome;
use crate::workflow::PlanKind;

use super::branch::run_branch;
use super::state::{Entry, RunShared};

/// Run group `node` from `branch`; on success its result maps each member to the last result
/// of the member's branch, and the group's successors are queued in `branch`.
pub(crate) async fn run_group(
    shared: &Arc<RunShared>,
    branch: u32,
    node: u32,
    id: Arc<str>,
    members: Vec<u32>,
) -> Result<Value, RunError> {
    let mut names = Vec::with_capacity(members.len());
    let mut set = JoinSet::new();
    {
        let mut st = shared.state.lock();
        for &m in &members {
            let name = shared.node(&st, m).id.clone();
            let member_branch = st.open_branch(Entry::new(m));
            let sh = shared.clone();
            let label = name.clone();
            set.spawn(async move {
                let t0 = Instant::now();
                let out = run_branch(sh, member_branch).await;
                (label, out, t0.elapsed())
            });
            names.push(name);
        }
    }
    if shared.emitting() {
        shared.emit(EventKind::GroupStarted {
            group: id.clone(),
            members: names,
        });
    }
    let mut outcomes = Vec::with_capacity(members.len());
    let mut results = Map::new();
    while let Some(joined) = set.join_next().await {
        let (member, out, elapsed) = joined.map_err(|e| RunError::Internal {
            message: format!("a branch of group '{id}' stopped abnormally: {e}"),
        })?;
        let error = match out {
            Ok(last) => {
                results.insert(member.to_string(), last.unwrap_or(Value::Null));
                None
            }
            Err(e) => Some(e.to_string()),
        };
        outcomes.push(MemberOutcome {
            id: member.to_string(),
            error,
            duration_ms: elapsed.as_millis() as u64,
        });
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
    let mut st = shared.state.lock();
    st.results[node as usize] = Some(value.clone());
    if !shared.is_terminating() {
        shared.schedule_successors(&mut st, branch, node);
    }
    Ok(value)
}
