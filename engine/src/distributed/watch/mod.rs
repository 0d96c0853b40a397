//! Watching runs on the fleet from anywhere: every run's events go to a capped stream of its
//! own ([`RedisEventSink`]), an index lists live and recent runs ([`list_runs`]), anyone can
//! follow a run's stream ([`RunFollower`]) and ask its coordinator to cancel or checkpoint it
//! through a control key it watches ([`send_control`], [`watch_control`]).

mod control;
mod follow;
mod runs;
mod sink;

pub use control::{ControlRequest, send_control, watch_control};
pub use follow::RunFollower;
pub use runs::{RunSummary, list_runs, run_summary};
pub use sink::{RedisEventSink, SinkConfig, SinkStats};
