//! Engine benchmarks (DESIGN §10): one JSON line per workload with `workload`, `n`, `seconds`
//! (median of the runs) and `per_item_us`.
//!
//! `cargo bench -p graflow-engine --bench engine` — workloads: `chain` (1,000 / 10,000 /
//! 100,000 no-op tasks in sequence), `fanout` (start → group of 1,000 no-op members → join),
//! `loop` (one task iterating 10,000 times), `channel` (200,000 set+get pairs).

use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use graflow_engine::prelude::*;
use support::{report, time_runs};

/// Timed runs per workload (after one untimed warm-up run).
const RUNS: usize = 11;

fn noop(id: String) -> TaskDef {
    TaskDef::from_fn(id, |_ctx: TaskContext| async { anyhow::Ok(()) })
}

fn chain(n: usize) -> Arc<Workflow> {
    let mut wf = Workflow::builder("chain");
    let handles: Vec<_> = (0..n).map(|i| wf.add(noop(format!("t{i}")))).collect();
    let flow = handles
        .into_iter()
        .map(Flow::from)
        .reduce(|a, b| a.then(b))
        .expect("n > 0");
    wf.flow(flow).max_steps(n as u64 + 1);
    Arc::new(wf.build().expect("chain builds"))
}

fn fanout(n: usize) -> Arc<Workflow> {
    let mut wf = Workflow::builder("fanout");
    let start = wf.add(noop("start".into()));
    let join = wf.add(noop("join".into()));
    let members = (0..n).map(|i| Flow::from(wf.add(noop(format!("m{i}")))));
    let group = members.reduce(|a, b| a | b).expect("n > 0");
    wf.flow(start >> group >> join);
    Arc::new(wf.build().expect("fanout builds"))
}

fn looping(n: usize) -> Arc<Workflow> {
    let mut wf = Workflow::builder("loop");
    let limit = n as u64;
    let t = wf.add(
        TaskDef::from_fn("loop", move |ctx: TaskContext| async move {
            let i = ctx.data().as_u64().unwrap_or(0);
            if i + 1 < limit {
                ctx.next_iteration(i + 1)?;
            }
            anyhow::Ok(())
        })
        .max_cycles(n as u32 + 1),
    );
    wf.flow(t).max_steps(limit + 1);
    Arc::new(wf.build().expect("loop builds"))
}

fn channel_pairs(rt: &tokio::runtime::Runtime, n: usize) -> Vec<Duration> {
    let keys: Vec<String> = (0..1000).map(|i| format!("key{i}")).collect();
    (0..=RUNS)
        .map(|_| {
            let ch = Channel::memory();
            let keys = keys.clone();
            rt.block_on(async move {
                let t0 = Instant::now();
                for i in 0..n {
                    let key = &keys[i % keys.len()];
                    ch.set(key, i as u64).await.expect("set");
                    let v = ch.get(key).await.expect("get");
                    std::hint::black_box(v);
                }
                t0.elapsed()
            })
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
    if wanted("chain") {
        for n in [1_000, 10_000, 100_000] {
            report("chain", n, &time_runs(&rt, &chain(n), RUNS));
        }
    }
    if wanted("fanout") {
        report("fanout", 1_000, &time_runs(&rt, &fanout(1_000), RUNS));
    }
    if wanted("loop") {
        report("loop", 10_000, &time_runs(&rt, &looping(10_000), RUNS));
    }
    if wanted("channel") {
        report("channel", 200_000, &channel_pairs(&rt, 200_000));
    }
}
