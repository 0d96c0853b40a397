//! Process-task benchmarks (DESIGN §10): one JSON line per workload with `workload`, `n`,
//! `seconds` (median of the runs) and `per_item_us`, then the ratio of the two.
//!
//! `cargo bench -p graflow-engine --bench process` — workloads: `sh_c_true` (N spawns of
//! `sh -c true` with tokio, awaited one by one: the floor) and `shell_task` (a chain of N
//! `Shell("true")` tasks through the engine: environment, context-server registration, piped
//! and streamed output, result rules). Target: `shell_task` ≤ 1.3 × `sh_c_true`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::handler::HandlerEnv;
use graflow_engine::handler::process::{ProcessHandler, ProcessSpec};
use graflow_engine::prelude::*;
use serde_json::json;
use support::report;

/// Timed runs per workload (after one untimed warm-up run).
const RUNS: usize = 7;
/// Processes per run.
const N: usize = 300;

fn sh_c_true(rt: &tokio::runtime::Runtime, n: usize) -> Vec<Duration> {
    (0..=RUNS)
        .map(|_| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..n {
                    let status = tokio::process::Command::new("/bin/sh")
                        .arg("-c")
                        .arg("true")
                        .status()
                        .await
                        .expect("sh runs");
                    assert!(status.success());
                }
                t0.elapsed()
            })
        })
        .skip(1)
        .collect()
}

fn shell_chain(n: usize) -> Arc<Workflow> {
    let env = HandlerEnv::default();
    let mut wf = Workflow::builder("shell_chain");
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let handler = ProcessHandler::new(ProcessSpec::shell("true"), &env);
            wf.add(TaskDef::new(format!("t{i}"), Arc::new(handler)))
        })
        .collect();
    let flow = handles
        .into_iter()
        .map(Flow::from)
        .reduce(|a, b| a.then(b))
        .expect("n > 0");
    wf.flow(flow).max_steps(n as u64 + 1);
    Arc::new(wf.build().expect("chain builds"))
}

fn shell_task(rt: &tokio::runtime::Runtime, n: usize) -> Vec<Duration> {
    let wf = shell_chain(n);
    let engine = Engine::new();
    (0..=RUNS)
        .map(|_| {
            let t0 = Instant::now();
            let out = rt.block_on(engine.run(wf.clone(), RunOptions::new()));
            let elapsed = t0.elapsed();
            assert!(out.succeeded(), "{:?}", out.error);
            elapsed
        })
        .skip(1)
        .collect()
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let base = wanted("sh_c_true").then(|| report("sh_c_true", N, &sh_c_true(&rt, N)));
    let task = wanted("shell_task").then(|| report("shell_task", N, &shell_task(&rt, N)));
    if let (Some(base), Some(task)) = (base, task) {
        println!(
            "{}",
            json!({
                "workload": "shell_task_over_sh_c_true",
                "n": N,
                "ratio": task / base,
                "target": 1.3,
            })
        );
    }
}
