//! Script benchmarks (DESIGN §10): one JSON line per workload with `workload`, `n`, `seconds`
//! (median of the runs) and `per_item_us`.
//!
//! `cargo bench -p graflow-engine --bench script` — workloads:
//! - `script_task`: a chain of N trivial `Script` tasks (`ctx.cycle + 1`) through the engine
//!   (straight-line, so they run inline; target ≤ 20 µs per task);
//! - `script_task_blocking`: the same chain with a script that must run on the blocking pool
//!   (it contains a loop that runs zero times), to show what the inline path saves;
//! - `script_channel`: a chain of N tasks doing `ctx.set` then `ctx.get`;
//! - `script_op_limit`: how long a summing loop runs before the default operation limit
//!   (5,000,000) stops it; `per_item_us` is the cost of one operation;
//! - `script_eval`: raw evaluation of a compiled trivial AST (`x + 1` with `x` in scope) on a
//!   plain Rhai engine, the floor under everything above.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::handler::HandlerEnv;
use graflow_engine::handler::script::{ScriptHandler, ScriptSource};
mod support;

use graflow_engine::prelude::*;
use support::{report, time_runs};

/// Timed runs per workload (after one untimed warm-up run).
const RUNS: usize = 7;

/// A chain of `n` tasks all running `code` (compiled once per task, as a file load would).
fn chain(env: &HandlerEnv, n: usize, code: &str) -> Arc<Workflow> {
    let mut wf = Workflow::builder("script-chain");
    let handler = Arc::new(
        ScriptHandler::new(ScriptSource::Inline(code.into()), env).expect("script compiles"),
    );
    let handles: Vec<_> = (0..n)
        .map(|i| wf.add(TaskDef::new(format!("t{i}"), handler.clone())))
        .collect();
    let flow = handles
        .into_iter()
        .map(Flow::from)
        .reduce(|a, b| a.then(b))
        .expect("n > 0");
    wf.flow(flow).max_steps(n as u64 + 1);
    Arc::new(wf.build().expect("chain builds"))
}

/// Run one task that loops until the operation limit fails it.
fn op_limit_runs(rt: &tokio::runtime::Runtime, env: &HandlerEnv) -> Vec<Duration> {
    let handler = Arc::new(
        ScriptHandler::new(
            ScriptSource::Inline("let i = 0; let s = 0; loop { s += i * 2; i += 1; }".into()),
            env,
        )
        .expect("compiles"),
    );
    let mut wf = Workflow::builder("op-limit");
    let t = wf.add(TaskDef::new("spin", handler));
    wf.flow(t);
    let wf = Arc::new(wf.build().expect("builds"));
    let engine = Engine::new();
    (0..=RUNS)
        .map(|_| {
            let t0 = Instant::now();
            let out = rt.block_on(engine.run(wf.clone(), RunOptions::new()));
            let elapsed = t0.elapsed();
            assert!(
                format!("{:?}", out.error).contains("operation limit exceeded"),
                "{:?}",
                out.error
            );
            elapsed
        })
        .skip(1)
        .collect()
}

fn raw_eval(n: usize) -> Vec<Duration> {
    let engine = rhai::Engine::new();
    let ast = engine.compile("x + 1").expect("compiles");
    (0..=RUNS)
        .map(|_| {
            let t0 = Instant::now();
            for i in 0..n {
                let mut scope = rhai::Scope::new();
                scope.push("x", i as i64);
                let v: i64 = engine
                    .eval_ast_with_scope(&mut scope, &ast)
                    .expect("evaluates");
                std::hint::black_box(v);
            }
            t0.elapsed()
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
    let env = HandlerEnv::default();
    if wanted("script_task") {
        for n in [1_000, 10_000] {
            report(
                "script_task",
                n,
                &time_runs(&rt, &chain(&env, n, "ctx.cycle + 1"), RUNS),
            );
        }
        let blocking = "for i in 0..0 { } ctx.cycle + 1";
        report(
            "script_task_blocking",
            1_000,
            &time_runs(&rt, &chain(&env, 1_000, blocking), RUNS),
        );
    }
    if wanted("script_channel") {
        let code = r#"ctx.set("k", ctx.cycle); ctx.get("k")"#;
        report(
            "script_channel",
            10_000,
            &time_runs(&rt, &chain(&env, 10_000, code), RUNS),
        );
    }
    if wanted("script_op_limit") {
        let limit = env.runtimes.script.limits().max_operations as usize;
        report("script_op_limit", limit, &op_limit_runs(&rt, &env));
    }
    if wanted("script_eval") {
        report("script_eval", 100_000, &raw_eval(100_000));
    }
}
