//! The engine's integration tests, in one test binary (linking one binary per file cost more
//! than running them): each module covers one area and is named after it.
//!
//! Modules needing a cargo feature are built only with it, so
//! `cargo test -p graflow-engine --no-default-features` runs the rest. Tests needing a real
//! Redis or Docker engine say `SKIPPED` where it is missing, unless
//! `GRAFLOW_REQUIRE_SERVICES=1` (see `services`).
//!
//! `https_roots` stays a binary of its own: it sets `SSL_CERT_FILE`, which the process reads
//! once for its shared HTTP client.

#[path = "../../../tests/support/services.rs"]
#[macro_use]
mod services;

mod common;
#[cfg(feature = "redis")]
#[path = "../../../tests/support/redis_server.rs"]
mod redis_server;
#[cfg(feature = "http")]
#[path = "../support/tls.rs"]
mod tls;

mod building;
mod channels;
mod checkpoint_decode;
#[cfg(feature = "redis")]
mod checkpoint_redis;
mod checkpoints;
mod concurrency;
mod control_flow;
mod ctx_protocol_props;
#[cfg(feature = "docker")]
mod docker_tasks;
#[cfg(feature = "redis")]
mod event_stream;
mod feedback;
#[cfg(feature = "redis")]
mod feedback_redis;
mod feedback_store;
#[cfg(feature = "redis")]
mod fleet;
mod fuzz_corpus;
mod group_policies;
mod hostile_files;
#[cfg(feature = "http")]
mod https;
mod pool_files;
mod pools;
mod process_tasks;
#[cfg(feature = "redis")]
mod redis_channel;
#[cfg(feature = "redis")]
mod redis_queue_model;
mod retries_and_timeouts;
#[cfg(feature = "http")]
mod retry_after;
mod scheduling;
#[cfg(feature = "script")]
mod script_limits;
#[cfg(feature = "script")]
mod script_tasks;
mod shared_state;
#[cfg(feature = "script")]
mod sub_workflows;
mod workflow_files;
