//! Retries (exhausted, then success, backoff timing on a paused clock, jitter bounds) and
//! per-task timeouts.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Trace, recs, run};
use graflow_engine::prelude::*;
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;

/// A task failing its first `failures` attempts, recording each attempt's (virtual) time.
fn flaky(
    id: &str,
    failures: u32,
    trace: &Trace,
    times: &Arc<Mutex<Vec<Duration>>>,
    t0: Instant,
) -> TaskDef {
    let calls = Arc::new(AtomicU32::new(0));
    let (trace, times) = (trace.clone(), times.clone());
    TaskDef::from_fn(id, move |ctx: TaskContext| {
        let (calls, trace, times) = (calls.clone(), trace.clone(), times.clone());
        async move {
            trace.push(ctx.task_id());
            times.lock().push(t0.elapsed());
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < failures {
                anyhow::bail!("attempt {} failed", ctx.attempt());
            }
            anyhow::Ok(json!({"attempt": ctx.attempt(), "cycle": ctx.cycle()}))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_retried_task_goes_to_the_back_of_the_queue_then_succeeds() {
    let trace = Trace::default();
    let times = Arc::default();
    let mut wf = Workflow::builder("retry");
    let [s, z, b] = recs(&mut wf, &trace, ["s", "z", "b"]);
    let a = wf.add(
        flaky("a", 2, &trace, &times, Instant::now())
            .retry(RetryPolicy::retries(3).backoff(Duration::from_millis(10))),
    );
    wf.flow(s >> a >> b).flow(s >> z);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(trace.get(), ["s", "a", "z", "a", "a", "b"]);
    assert_eq!(
        out.results["a"],
        json!({"attempt": 2, "cycle": 1}),
        "retries are attempts, not cycles"
    );
    let retries: Vec<(u32, bool)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskFailed {
                attempt,
                will_retry,
                ..
            } => Some((*attempt, *will_retry)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(0, true), (1, true)]);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_with_the_last_error() {
    let trace = Trace::default();
    let times = Arc::default();
    let mut wf = Workflow::builder("exhausted");
    let a = wf.add(
        flaky("a", 99, &trace, &times, Instant::now())
            .retry(RetryPolicy::retries(2).backoff(Duration::from_millis(5))),
    );
    wf.flow(a);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::RetryLimitExceeded {
            task: "a".into(),
            attempts: 3,
            max_retries: 2,
            last_error: "attempt 2 failed".into()
        })
    );
    assert_eq!(trace.count("a"), 3);
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_by_its_factor_up_to_the_cap() {
    let trace = Trace::default();
    let times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut wf = Workflow::builder("backoff");
    let policy = RetryPolicy::retries(5)
        .backoff(Duration::from_secs(1))
        .factor(2.0)
        .max_backoff(Duration::from_secs(5));
    let a = wf.add(flaky("a", 5, &trace, &times, Instant::now()).retry(policy));
    wf.flow(a);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let at: Vec<u64> = times.lock().iter().map(|d| d.as_millis() as u64).collect();
    // Delays 1, 2, 4, 5, 5 seconds (capped at 5).
    assert_eq!(at, [0, 1_000, 3_000, 7_000, 12_000, 17_000]);
}

#[test]
fn jitter_stays_within_half_and_one_and_a_half_times_then_caps() {
    let p = RetryPolicy::retries(3)
        .backoff(Duration::from_secs(2))
        .factor(3.0)
        .max_backoff(Duration::from_secs(10))
        .jitter(true);
    assert_eq!(p.delay(0, 0.0), Duration::from_secs(1));
    assert_eq!(p.delay(0, 1.0), Duration::from_secs(3));
    assert_eq!(p.delay(1, 1.0), Duration::from_secs(9));
    assert_eq!(
        p.delay(2, 1.0),
        Duration::from_secs(10),
        "capped after jitter"
    );
    assert_eq!(p.delay(2, 0.0), Duration::from_secs(5));
    let plain = RetryPolicy::retries(3).backoff(Duration::from_millis(500));
    assert_eq!(plain.delay(0, 0.9), Duration::from_millis(500));
    assert_eq!(plain.delay(3, 0.9), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fails_the_attempt_and_counts_for_retries() {
    let attempts = Arc::new(AtomicU32::new(0));
    let a2 = attempts.clone();
    let mut wf = Workflow::builder("timeout");
    let slow = wf.add(
        TaskDef::from_fn("slow", move |ctx: TaskContext| {
            let a2 = a2.clone();
            async move {
                a2.fetch_add(1, Ordering::SeqCst);
                if ctx.attempt() == 0 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                anyhow::Ok("fast enough")
            }
        })
        .timeout(Duration::from_millis(250))
        .retry(RetryPolicy::retries(1).backoff(Duration::from_millis(1))),
    );
    wf.flow(slow);
    let t0 = Instant::now();
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(t0.elapsed() < Duration::from_secs(1));
    let error = events.iter().find_map(|e| match &e.kind {
        EventKind::TaskFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(error.as_deref(), Some("timed out after 250ms"));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_without_retries_fails_the_run() {
    let mut wf = Workflow::builder("timeout");
    let slow = wf.add(
        TaskDef::from_fn("slow", |_c: TaskContext| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            anyhow::Ok(())
        })
        .timeout(Duration::from_secs(2)),
    );
    wf.flow(slow);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::TaskFailed {
            task: "slow".into(),
            message: "timed out after 2s".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_retried_iteration_keeps_its_data() {
    let failed_once = Arc::new(AtomicU32::new(0));
    let mut wf = Workflow::builder("iter-retry");
    let f = failed_once.clone();
    let t = wf.add(
        TaskDef::from_fn("t", move |ctx: TaskContext| {
            let f = f.clone();
            async move {
                let n = ctx.data().as_i64().unwrap_or(0);
                if n == 1 && f.fetch_add(1, Ordering::SeqCst) == 0 {
                    anyhow::bail!("transient");
                }
                if n < 2 {
                    ctx.next_iteration(n + 1)?;
                }
                anyhow::Ok(json!([n, ctx.cycle(), ctx.attempt()]))
            }
        })
        .retry(RetryPolicy::retries(1).backoff(Duration::from_millis(1))),
    );
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert_eq!(out.result, Some(json!([2, 3, 0])));
}
