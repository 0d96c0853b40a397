//! Engine benchmarks (DESIGN §10): one JSON line per workload with `workload`, `n`, `seconds`
//! (median of the runs) and `per_item_us`.
//!
//! `cargo bench -p graflow-engine --bench engine [FILTER]` — workloads: `chain` (1,000 /
//! 10,000 / 100,000 no-op tasks in sequence), `chain_1m` (one run of 1,000,000, with the
//! peak memory it adds per task: `rss_bytes_per_task`), `events_unread` (a 100,000-task
//! chain whose events nobody reads until it ends: the memory they hold,
//! `rss_bytes_per_event`), `fanout` (start → group of 1,000 / 10,000 / 100,000 no-op members
//! → join), `fanout_at_least` and `fanout_custom` (1,000 and
//! 10,000 members under `AtLeast` and a Rhai `Custom` policy), `dynamic_fanout` (one task
//! adding 10,000 tasks with `next_task`), `loop` (one task iterating 10,000 times), `channel`
//! (200,000 set+get pairs).
//!
//! `GRAFLOW_BENCH_RUNS=N` times N runs per workload instead of 11, `GRAFLOW_BENCH_N=1000`
//! keeps only the workloads of that size (for a profiler: `valgrind --tool=callgrind`).

use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use graflow_engine::handler::script::{ScriptPolicy, ScriptRuntime};
use graflow_engine::prelude::*;
use serde_json::json;
use support::{memory, report, report_with, reset_peak, time_runs};

/// Timed runs per workload (after one untimed warm-up run), unless `GRAFLOW_BENCH_RUNS` says.
const RUNS: usize = 11;

/// A number from the environment variable `name`.
fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|n| n.parse().ok())
}

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
    fanout_with(n, None)
}

/// start → a group of `n` no-op members (under `policy`, else `Strict`) → join.
fn fanout_with(n: usize, policy: Option<GroupPolicy>) -> Arc<Workflow> {
    let mut wf = Workflow::builder("fanout");
    let start = wf.add(noop("start".into()));
    let join = wf.add(noop("join".into()));
    let members = (0..n).map(|i| Flow::from(wf.add(noop(format!("m{i}")))));
    let members = members.reduce(|a, b| a | b).expect("n > 0");
    match policy {
        None => wf.flow(start >> members >> join),
        Some(policy) => {
            let group = wf.add_group(graflow_engine::GroupDef::new("g", members).policy(policy));
            wf.flow(start >> group >> join)
        }
    };
    wf.max_steps(n as u64 + 3);
    Arc::new(wf.build().expect("fanout builds"))
}

/// One task adding `n` no-op tasks at run time with `next_task`.
fn dynamic_fanout(n: usize) -> Arc<Workflow> {
    let mut wf = Workflow::builder("dynamic");
    let spawner = wf.add(TaskDef::from_fn(
        "spawner",
        move |ctx: TaskContext| async move {
            for i in 0..n {
                ctx.next_task_def(noop(format!("d{i}")))?;
            }
            anyhow::Ok(())
        },
    ));
    wf.flow(spawner).max_steps(n as u64 + 2);
    Arc::new(wf.build().expect("dynamic builds"))
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

fn channel_pairs(rt: &tokio::runtime::Runtime, n: usize, runs: usize) -> Vec<Duration> {
    let keys: Vec<String> = (0..1000).map(|i| format!("key{i}")).collect();
    (0..=runs)
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
    let only_n = env_number("GRAFLOW_BENCH_N");
    let sized = |n: &usize| only_n.is_none_or(|only| only == *n);
    let runs = env_number("GRAFLOW_BENCH_RUNS").unwrap_or(RUNS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if wanted("chain") {
        for n in [1_000, 10_000, 100_000].into_iter().filter(sized) {
            report("chain", n, &time_runs(&rt, &chain(n), runs));
        }
    }
    if wanted("chain_1m") {
        let n = 1_000_000;
        let wf = chain(n);
        reset_peak();
        let (before, _) = memory();
        let t0 = Instant::now();
        let out = rt.block_on(Engine::new().run(wf.clone(), RunOptions::new()));
        let elapsed = t0.elapsed();
        assert!(out.succeeded(), "{:?}", out.error);
        let (_, peak) = memory();
        drop(out);
        report_with(
            "chain_1m",
            n,
            &[elapsed],
            json!({"rss_bytes_per_task": peak.saturating_sub(before) / n as u64}),
        );
    }
    if wanted("events_unread") {
        // The event stream is unbounded: a reader that does not keep up holds every event it
        // has not read. A 100,000-task chain whose events nobody reads until the run ends.
        let n = 100_000;
        let wf = chain(n);
        reset_peak();
        let (before, _) = memory();
        let t0 = Instant::now();
        let mut handle = {
            let _inside = rt.enter();
            Engine::new().start(wf.clone(), RunOptions::new().with_events())
        };
        let mut events = handle.take_events().expect("asked for events");
        let out = rt.block_on(handle.wait());
        let elapsed = t0.elapsed();
        assert!(out.succeeded(), "{:?}", out.error);
        let (_, peak) = memory();
        let mut held = 0u64;
        while events.try_recv().is_ok() {
            held += 1;
        }
        report_with(
            "events_unread",
            n,
            &[elapsed],
            json!({
                "events_held": held,
                "rss_bytes_per_event": peak.saturating_sub(before) / held.max(1),
            }),
        );
    }
    if wanted("fanout") {
        for n in [1_000, 10_000, 100_000].into_iter().filter(sized) {
            report("fanout", n, &time_runs(&rt, &fanout(n), runs));
        }
        for n in [1_000, 10_000].into_iter().filter(sized) {
            let wf = fanout_with(n, Some(GroupPolicy::AtLeast(n / 2)));
            report("fanout_at_least", n, &time_runs(&rt, &wf, runs));
            let runtime = ScriptRuntime::default();
            let policy = ScriptPolicy::new("succeeded * 2 > total", &runtime).expect("compiles");
            let wf = fanout_with(n, Some(GroupPolicy::Custom(Arc::new(policy))));
            report("fanout_custom", n, &time_runs(&rt, &wf, runs));
        }
    }
    if wanted("dynamic_fanout") {
        let n = 10_000;
        report(
            "dynamic_fanout",
            n,
            &time_runs(&rt, &dynamic_fanout(n), runs),
        );
    }
    if wanted("loop") {
        report("loop", 10_000, &time_runs(&rt, &looping(10_000), runs));
    }
    if wanted("channel") {
        report("channel", 200_000, &channel_pairs(&rt, 200_000, runs));
    }
}
