//! Watching runs on the fleet from anywhere: every run's events go to a capped stream of its
//! own ([`RedisEventSink`]), an index lists live and recent runs ([`list_runs`]), anyone can
//! follow a run's stream ([`RunFollower`]) and ask its coordinator to cancel or checkpoint it
//! through a control key it watches ([`send_control`], [`watch_control`]), and read the
//! workers and queues ([`fleet_snapshot`]), and requeue a dead letter its run still holds
//! ([`requeue_dead_letter`]).

mod control;
mod fleet;
mod follow;
mod requeue;
mod runs;
mod sink;

pub use control::{ControlRequest, send_control, watch_control};
pub use fleet::{
    DeadLetter, FleetSnapshot, LOST_AFTER, QueueView, WorkerView, carry_records, fleet_snapshot,
};
pub use follow::RunFollower;
pub use requeue::requeue_dead_letter;
pub use runs::{RunSummary, events_kept, list_runs, run_summary, workflow_text};
pub use sink::{RedisEventSink, SinkConfig, SinkStats};
