//! A run's events in Redis: the stream holds the run's JSON lines in order and the index lists
//! the run; with Redis frozen (SIGSTOP) a run goes to its end anyway, the events that could
//! not wait are dropped and counted, and the stream says how many (`events_dropped`), with
//! `run_finished` last.

use crate::services::Service;

use std::sync::Arc;
use std::time::Duration;

use crate::redis_server::RedisServer;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::watch::{
    RedisEventSink, RunFollower, SinkConfig, list_runs, run_summary,
};
use graflow_engine::prelude::*;
use graflow_engine::{EventKind, RunEvent, TaskDef};

/// A task that iterates `n` times, logging each time.
fn looping(n: i64) -> Arc<Workflow> {
    let mut wf = Workflow::builder("looping");
    wf.add(
        TaskDef::from_fn("spin", move |ctx: TaskContext| async move {
            let i = ctx.data().as_i64().unwrap_or(0);
            ctx.log(format!("turn {i}"));
            if i + 1 < n {
                ctx.next_iteration(i + 1)?;
            }
            anyhow::Ok(i)
        })
        .max_cycles(n as u32 + 1),
    );
    wf.flow_str("spin");
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

async fn read_all(link: &Link, keys: &Keys, run: &str) -> Vec<RunEvent> {
    let mut follower = RunFollower::new(link.clone(), keys, run);
    let mut out = Vec::new();
    for _ in 0..200 {
        let batch = follower
            .next_events(Duration::from_millis(100))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        out.extend(batch);
        if follower.ended() {
            return out;
        }
    }
    panic!(
        "the stream never reached run_finished: {} events",
        out.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_holds_the_runs_events_in_order_and_the_index_lists_it() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let link = Link::connect(&server.url(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = Keys::new("t-ok");
    let sink = RedisEventSink::start(link.clone(), keys.clone(), SinkConfig::default());
    let mut handle = Engine::new().start(
        looping(50),
        RunOptions::new().with_events().sink(sink.clone()),
    );
    let mut local = Vec::new();
    let mut rx = handle.take_events().unwrap_or_else(|| panic!("no events"));
    while let Some(e) = rx.recv().await {
        local.push(e.to_json_line());
    }
    let run = handle.run_id().to_string();
    let outcome = handle.wait().await;
    assert!(outcome.succeeded());
    let stats = sink.finish(Duration::from_secs(10)).await;
    assert_eq!(stats.dropped, 0);
    let remote: Vec<String> = read_all(&link, &keys, &run)
        .await
        .iter()
        .map(RunEvent::to_json_line)
        .collect();
    assert_eq!(remote, local, "the stream holds the same lines, in order");
    let summary = run_summary(&link, &keys, &run)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no record"));
    assert_eq!(
        (summary.state.as_str(), summary.status.as_deref()),
        ("ended", Some("succeeded"))
    );
    assert_eq!(summary.workflow, "looping");
    assert_eq!(summary.events, local.len() as u64);
    let runs = list_runs(&link, &keys, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(runs.first().map(|r| r.run_id.as_str()), Some(run.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_does_not_hold_the_run_and_the_dropped_events_are_counted() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let link = Link::connect(&server.url(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = Keys::new("t-slow");
    let config = SinkConfig {
        buffer: 64,
        write_timeout: Duration::from_millis(300),
        ..SinkConfig::default()
    };
    let sink = RedisEventSink::start(link.clone(), keys.clone(), config);
    let pid = server.pid().unwrap_or_else(|| panic!("no redis pid")) as i32;
    // SAFETY: kill(2) on the redis-server this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let handle = Engine::new().start(looping(2_000), RunOptions::new().sink(sink.clone()));
    let run = handle.run_id().to_string();
    // The run ends while Redis is still frozen (bounded: the test fails, not hangs).
    let outcome = tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .unwrap_or_else(|_| panic!("the run waited for the frozen Redis"));
    assert!(outcome.succeeded());
    let during = sink.stats();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(
        during.dropped > 0,
        "a frozen Redis makes the sink drop: {during:?}"
    );
    let stats = sink.finish(Duration::from_secs(30)).await;
    let events = read_all(&link, &keys, &run).await;
    let reported: u64 = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::EventsDropped { count } => Some(count),
            _ => None,
        })
        .sum();
    assert!(reported > 0, "the stream says events were dropped");
    assert!(reported <= stats.dropped, "{reported} > {stats:?}");
    assert!(matches!(
        events.last().map(|e| &e.kind),
        Some(EventKind::RunFinished { .. })
    ));
    println!(
        "frozen Redis: {} events written, {} dropped, {reported} reported dropped",
        stats.written, stats.dropped
    );
}
