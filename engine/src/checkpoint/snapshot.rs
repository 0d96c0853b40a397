//! The run state a checkpoint holds, as plain serde data: results, counters, join progress,
//! tasks added at run time, the channel, and the tree of branches — each with its queue (the
//! tasks to run, a task that was running first, to run again) and the group it is running
//! (members that finished, with their outcomes, and the branches of members still running).

use std::collections::BTreeMap;

use crate::checkpoint::CheckpointError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One queued execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntrySnapshot {
    /// Task (or group) id.
    pub task: String,
    /// Iteration data it was queued with.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// Retry attempt (0 for a first attempt).
    #[serde(default)]
    pub attempt: u32,
}

/// A member of a running group that had finished when the checkpoint was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedMember {
    /// Member id.
    pub member: String,
    /// `None` on success, the error message on failure.
    pub error: Option<String>,
    /// Wall time of its branch.
    pub duration_ms: u64,
    /// The last result of its branch.
    pub result: Value,
}

/// A group that was running in a branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The group's id.
    pub group: String,
    /// Members that had finished (they are not run again).
    pub finished: Vec<FinishedMember>,
    /// Members still running, each with its branch.
    pub running: Vec<(String, BranchSnapshot)>,
}

/// A branch: the top level of the run or one member of a running group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BranchSnapshot {
    /// A group in progress in this branch; it resumes before the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupSnapshot>,
    /// What runs next, in order (a task that was running comes first and runs again).
    pub queue: Vec<EntrySnapshot>,
    /// The last result produced in the branch (a group member's result is its branch's last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Value>,
}

/// A task added at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicTask {
    /// Its id.
    pub id: String,
    /// How to build it again (a task spec of the workflow format), when it was not a
    /// definition of the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
}

/// How the run had been ended by `terminate_workflow`, if it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terminated {
    /// The task that terminated.
    pub task: String,
    /// Its message.
    pub message: String,
    /// Its result.
    pub result: Value,
}

/// The whole state of a run at a checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// Completed task executions.
    pub steps: u64,
    /// Last result of every task and group that has one.
    pub results: BTreeMap<String, Value>,
    /// Executions per task (tasks that were running are not counted: they run again).
    pub cycles: BTreeMap<String, u32>,
    /// Join progress: forward predecessors that finished since the task last ran.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arrivals: BTreeMap<String, Vec<String>>,
    /// Tasks added at run time, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic: Vec<DynamicTask>,
    /// Set when a task had called `terminate_workflow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
    /// The top-level branch (and through it every running group).
    pub top: BranchSnapshot,
    /// The channel's content.
    pub channel: ChannelContent,
}

/// A channel's content in a snapshot: values, the JSON text of the map (a channel in
/// Redis), or — written by a run whose channel is in memory — the channel itself, serialized
/// straight into the checkpoint file while the run waits, without a copy.
#[derive(Debug, Clone)]
pub enum ChannelContent {
    /// Key → value.
    Values(BTreeMap<String, Value>),
    /// A JSON object, as text.
    Json(Box<serde_json::value::RawValue>),
    /// A paused run's in-memory channel (read when the snapshot is written or read).
    Live(std::sync::Arc<crate::channel::MemoryChannel>),
}

impl Default for ChannelContent {
    fn default() -> Self {
        ChannelContent::Values(BTreeMap::new())
    }
}

impl ChannelContent {
    /// The key → value map (parsing the JSON text when needed).
    pub fn into_values(self) -> Result<BTreeMap<String, Value>, CheckpointError> {
        match self {
            ChannelContent::Values(v) => Ok(v),
            ChannelContent::Json(raw) => serde_json::from_str(raw.get()).map_err(|e| {
                CheckpointError::Invalid(format!("the saved channel does not parse: {e}"))
            }),
            ChannelContent::Live(channel) => channel
                .snapshot()
                .map_err(|e| CheckpointError::Invalid(e.to_string())),
        }
    }

    /// A copy of the key → value map.
    pub fn values(&self) -> Result<BTreeMap<String, Value>, CheckpointError> {
        self.clone().into_values()
    }
}

impl PartialEq for ChannelContent {
    fn eq(&self, other: &Self) -> bool {
        matches!((self.values(), other.values()), (Ok(a), Ok(b)) if a == b)
    }
}

impl Serialize for ChannelContent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ChannelContent::Values(v) => v.serialize(serializer),
            ChannelContent::Json(raw) => raw.serialize(serializer),
            ChannelContent::Live(channel) => channel.serialize_live(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ChannelContent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, Value>::deserialize(deserializer).map(ChannelContent::Values)
    }
}

impl RunSnapshot {
    /// Ids of every queued task, top level first, depth first through running groups.
    pub fn pending(&self) -> Vec<String> {
        fn walk(b: &BranchSnapshot, out: &mut Vec<String>) {
            if let Some(g) = &b.group {
                for (_, member) in &g.running {
                    walk(member, out);
                }
                out.push(g.group.clone());
            }
            out.extend(b.queue.iter().map(|e| e.task.clone()));
        }
        let mut out = Vec::new();
        walk(&self.top, &mut out);
        out
    }
}
