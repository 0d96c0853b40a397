//! The `graflow` binary's integration tests, in one test binary (linking one binary per file
//! cost more than running them): each module covers one area and is named after it. Shared
//! helpers are the `*_support` modules. Tests needing a real Redis or Docker engine say
//! `SKIPPED` where it is missing, unless `GRAFLOW_REQUIRE_SERVICES=1` (see `services`).

#[path = "../../../tests/support/services.rs"]
#[macro_use]
mod services;

#[path = "../../../tests/support/redis_cluster.rs"]
mod redis_cluster;
/// `redis_cluster` starts its nodes with the fleet tests' `redis_server`.
use fleet_support::redis_server;

mod deploy_support;
mod fleet_support;
mod pty_support;
mod serve_support;
mod studio_support;

mod checkpoint_trust;
mod cli_checkpoints;
mod cli_feedback;
mod cli_hardening;
mod cli_newcomer;
mod cli_pools;
mod cli_run;
mod cli_run_tty;
mod cli_serve;
mod cli_serve_sse;
mod cli_sub_workflows;
mod deploy_assets;
mod deploy_containers;
mod docs_examples;
mod fleet_checkpoints;
mod fleet_cli;
mod fleet_cluster;
mod fleet_faults;
mod fleet_pools;
mod fleet_watch;
mod metrics_promtool;
mod shell_ctx;
mod shell_hitl;
mod studio_docs;
mod studio_fleet;
mod studio_headless;
mod studio_pty;
mod studio_screenshot;
mod studio_snapshots;
mod studio_update;
