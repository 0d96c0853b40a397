//! The worker fleet on Redis: the same workflow file runs in one process or across many
//! machines. The process that runs the workflow (the coordinator) keeps every scheduling
//! decision and sends one task attempt at a time to a queue; `graflow worker` processes take
//! attempts from their queues, run them, and commit each outcome exactly once (fenced by a
//! lease epoch). Redis owns delivery: redelivery when a worker dies, a delivery cap, a
//! dead-letter stream. docs/distributed.md describes the design and its guarantees.
//!
//! Parts: [`keys`] (the layout), [`scripts`] (one Lua script per state change), [`conn`]
//! (connections, retries), [`channel`] (the run's channel), [`coordinator`] (the engine's
//! [`Fleet`](crate::Fleet)), [`worker`], [`registry`] (Rust handlers by name), [`metrics`],
//! [`wire`] (what travels), [`watch`] (event streams, the run index, control requests), [`feedback`] (feedback
//! requests in Redis), [`checkpoints`] (checkpoints in Redis, so any machine can resume a run).

pub mod channel;
pub mod checkpoints;
pub mod config;
pub mod conn;
pub mod coordinator;
pub mod feedback;
pub mod keys;
pub mod metrics;
pub mod pools;
pub mod registry;
pub mod scripts;
pub mod watch;
pub mod wire;
pub mod worker;

pub use channel::RedisChannel;
pub use checkpoints::RedisCheckpoints;
pub use config::{FleetConfig, is_redis_url};
pub use coordinator::RedisFleet;
pub use feedback::RedisFeedback;
pub use metrics::WorkerRecord;
pub use registry::TaskRegistry;
pub use worker::{Worker, WorkerConfig, WorkerReport};

/// The machine's host name (from the kernel; `localhost` when unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// An id for this process in role `role`, new on every start: host, process id and a random
/// part (a reused id would let a new process inherit a dead one's pending work).
pub fn process_id(role: &str) -> String {
    let noise: u64 = rand::random::<u64>() & 0xffff_ffff_ffff;
    format!("{role}-{}-{}-{noise:012x}", host_name(), std::process::id())
}
