//! Runs through a Redis fleet give what local runs give: workers in this process (a real
//! Redis) run group members and tasks with a queue; the coordinator keeps scheduling. Rust
//! closures travel by registered name; one without a name stays in the coordinator.

use crate::services::Service;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::redis_server::RedisServer;
use graflow_engine::checkpoint::CheckpointError;
use graflow_engine::distributed::{FleetConfig, RedisFleet, TaskRegistry, Worker, WorkerConfig};
use graflow_engine::handler::Runtimes;
use graflow_engine::prelude::*;
use graflow_engine::{GroupPolicy, Placement, workflow::GroupDef};
use serde_json::{Value, json};
use tokio::sync::watch;

static PREFIX: AtomicU32 = AtomicU32::new(0);

/// A Redis, a key prefix of its own, and workers running in this process.
struct Fleet {
    server: RedisServer,
    prefix: String,
    stop: watch::Sender<bool>,
    workers: Vec<(
        Worker,
        tokio::task::JoinHandle<graflow_engine::distributed::WorkerReport>,
    )>,
}

impl Fleet {
    async fn start(registry: &TaskRegistry, queues: &[&[&str]]) -> Fleet {
        let server = RedisServer::start_with(&[]);
        let prefix = format!("t{}", PREFIX.fetch_add(1, Ordering::Relaxed));
        let (stop, _) = watch::channel(false);
        let mut fleet = Fleet {
            server,
            prefix,
            stop,
            workers: Vec::new(),
        };
        for q in queues {
            fleet.add_worker(registry, q).await;
        }
        fleet
    }

    fn config(&self) -> FleetConfig {
        FleetConfig::new(self.server.url())
            .prefix(self.prefix.clone())
            .lease(Duration::from_secs(2))
    }

    async fn add_worker(&mut self, registry: &TaskRegistry, queues: &[&str]) {
        let mut config = WorkerConfig::new(self.config()).state(Host("worker"));
        config.queues = queues.iter().map(|q| q.to_string()).collect();
        config.lease = Duration::from_secs(2);
        let worker = Worker::start(config, registry.clone(), Runtimes::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stop = self.stop.subscribe();
        let w = worker.clone();
        let task = tokio::spawn(async move {
            w.run(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
        self.workers.push((worker, task));
    }

    async fn coordinator(&self) -> Arc<RedisFleet> {
        Arc::new(
            RedisFleet::connect(self.config())
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    async fn stop(self) -> u64 {
        self.stop.send_replace(true);
        let mut processed = 0;
        for (_, t) in self.workers {
            processed += t.await.map(|r| r.processed).unwrap_or(0);
        }
        processed
    }
}

/// The handlers the coordinator and its workers share.
/// Typed state: each process says which it is.
struct Host(&'static str);

fn registry() -> TaskRegistry {
    let mut r = TaskRegistry::new();
    r.register_fn("host", |ctx: TaskContext| async move {
        anyhow::Ok(ctx.state::<Host>()?.0)
    });
    r.register_fn("fetch", |_ctx: TaskContext| async {
        anyhow::Ok(json!([3, 1, 2]))
    });
    r.register_fn("double", |ctx: TaskContext| async move {
        let rows: Vec<i64> = serde_json::from_value(ctx.input("fetch").unwrap_or_default())?;
        ctx.log(format!("doubling {} rows", rows.len()));
        ctx.channel().append("seen", "double").await?;
        anyhow::Ok(rows.iter().map(|r| r * 2).collect::<Vec<_>>())
    });
    r.register_fn("count", |ctx: TaskContext| async move {
        ctx.channel().append("seen", "count").await?;
        ctx.channel().atomic_add("counted", 1.0).await?;
        anyhow::Ok(ctx.input("fetch").and_then(|v| v.as_array().map(Vec::len)))
    });
    r.register_fn("report", |ctx: TaskContext| async move {
        anyhow::Ok(json!({"inputs": ctx.inputs(), "fetch": ctx.result("fetch")}))
    });
    r.register_fn("loop3", |ctx: TaskContext| async move {
        let n = ctx.data().as_u64().unwrap_or(0);
        if n < 3 {
            ctx.next_iteration(n + 1)?;
        }
        anyhow::Ok(json!(n))
    });
    r.register_fn("flaky", |ctx: TaskContext| async move {
        let tries = ctx.channel().atomic_add("flaky_tries", 1.0).await?;
        if ctx.attempt() == 0 {
            anyhow::bail!("transient failure (try {tries})");
        }
        anyhow::Ok(json!("recovered"))
    });
    r.register_fn("slow", |_ctx: TaskContext| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        anyhow::Ok(json!("slow"))
    });
    r.register_fn("boom", |_ctx: TaskContext| async {
        anyhow::bail!("boom on purpose");
        #[allow(unreachable_code)]
        anyhow::Ok(Value::Null)
    });
    r.register_fn("cancel", |ctx: TaskContext| async move {
        ctx.cancel_workflow("stop everything");
        anyhow::Ok(Value::Null)
    });
    r.register_fn("checkpoint_now", |ctx: TaskContext| async move {
        match ctx.checkpoint_now(json!({})).await {
            Ok(path) => anyhow::bail!("a worker wrote checkpoint {path}"),
            Err(e @ CheckpointError::Unsupported(_)) => anyhow::Ok(json!(e.to_string())),
            Err(e) => anyhow::bail!("not the refusal expected: {e}"),
        }
    });
    r.register_fn("where", |ctx: TaskContext| async move {
        anyhow::Ok(json!(ctx.run_id().len()))
    });
    r
}

fn task(reg: &TaskRegistry, id: &str, name: &str) -> TaskDef {
    reg.task(id, name)
        .unwrap_or_else(|| panic!("no handler '{name}'"))
}

fn diamond(reg: &TaskRegistry) -> Arc<Workflow> {
    let mut wf = Workflow::builder("fleet-diamond");
    let fetch = wf.add(task(reg, "fetch", "fetch"));
    let double = wf.add(task(reg, "double", "double"));
    let count = wf.add(task(reg, "count", "count"));
    let report = wf.add(task(reg, "report", "report"));
    wf.flow(fetch >> (double | count) >> report);
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

async fn run_with(
    wf: Arc<Workflow>,
    fleet: Option<Arc<RedisFleet>>,
) -> (RunOutcome, Vec<RunEvent>) {
    let mut options = RunOptions::new().with_events();
    if let Some(f) = fleet {
        options = options.fleet(f);
    }
    let mut handle = Engine::new().start(wf, options);
    let mut events = handle.take_events().unwrap_or_else(|| panic!("no events"));
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(e) = events.recv().await {
            all.push(e);
        }
        all
    });
    let out = tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .unwrap_or_else(|_| panic!("the run did not end within 60 s"));
    (out, collect.await.unwrap_or_default())
}

/// Event names and tasks, in order, without times (completion order within a group may
/// differ between runs, so members are compared as sets by the callers that need it).
fn shape(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).unwrap_or_default();
            format!(
                "{} {}",
                v["event"].as_str().unwrap_or(""),
                v.get("task").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `message` with the names inside each `[…]` sorted: a group lists its members in the order
/// they ended, which two runs need not share.
fn names_sorted(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let mut names: Vec<&str> = rest[open + 1..close].split(", ").collect();
        names.sort_unstable();
        out.push_str(&rest[..=open]);
        out.push_str(&names.join(", "));
        rest = &rest[close..];
    }
    out + rest
}

fn sort_lists(mut channel: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    for v in channel.values_mut() {
        if let Value::Array(items) = v {
            items.sort_by_key(|i| i.to_string());
        }
    }
    channel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_the_fleet_gives_the_local_result_events_and_channel() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"], &["default"]]).await;
    let coordinator = fleet.coordinator().await;
    let (local, local_events) = run_with(diamond(&reg), None).await;
    let (remote, remote_events) = run_with(diamond(&reg), Some(coordinator)).await;
    assert!(local.succeeded(), "{:?}", local.error);
    assert!(remote.succeeded(), "{:?}", remote.error);
    assert_eq!(remote.results, local.results);
    assert_eq!(remote.result, local.result);
    assert_eq!(sort_lists(remote.channel), sort_lists(local.channel));
    assert_eq!(sorted(shape(&remote_events)), sorted(shape(&local_events)));
    let log = remote_events.iter().find_map(|e| match &e.kind {
        EventKind::TaskLog { task, line, .. } => Some((task.to_string(), line.clone())),
        _ => None,
    });
    assert_eq!(log, Some(("double".into(), "doubling 3 rows".into())));
    assert!(fleet.stop().await >= 2, "the workers ran the members");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_read_the_state_of_the_process_they_run_in() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"]]).await;
    let coordinator = fleet.coordinator().await;
    let mut wf = Workflow::builder("state");
    let here = wf.add(task(&reg, "here", "host"));
    let a = wf.add(task(&reg, "a", "host"));
    let b = wf.add(task(&reg, "b", "host"));
    wf.flow(here >> (a | b));
    let options = RunOptions::new()
        .fleet(coordinator)
        .state(Host("coordinator"));
    let out = Engine::new()
        .run(
            Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}"))),
            options,
        )
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["here"], json!("coordinator"));
    assert_eq!(out.results["a"], json!("worker"));
    assert_eq!(out.results["b"], json!("worker"));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_retries_and_failures_of_members_behave_as_locally() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"]]).await;
    let coordinator = fleet.coordinator().await;
    let build = |with_boom: bool| {
        let mut wf = Workflow::builder("members");
        let start = wf.add(task(&reg, "start", "fetch"));
        let l = wf.add(task(&reg, "loop3", "loop3"));
        let f = wf.add(
            task(&reg, "flaky", "flaky")
                .retry(RetryPolicy::retries(2).backoff(Duration::from_millis(20))),
        );
        let end = wf.add(task(&reg, "end", "where"));
        if with_boom {
            let b = wf.add(task(&reg, "boom", "boom"));
            wf.flow(start >> (l | f | b) >> end);
        } else {
            wf.flow(start >> (l | f) >> end);
        }
        Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
    };
    for with_boom in [false, true] {
        let (local, le) = run_with(build(with_boom), None).await;
        let (remote, re) = run_with(build(with_boom), Some(coordinator.clone())).await;
        assert_eq!(remote.status, local.status, "boom: {with_boom}");
        assert_eq!(
            remote.error.as_ref().map(|e| names_sorted(&e.to_string())),
            local.error.as_ref().map(|e| names_sorted(&e.to_string()))
        );
        assert_eq!(remote.results, local.results);
        assert_eq!(sorted(shape(&re)), sorted(shape(&le)));
        let failures = |events: &[RunEvent]| {
            events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::TaskFailed {
                        task,
                        error,
                        attempt,
                        will_retry,
                        ..
                    } => Some(format!("{task} {attempt} {will_retry} {error}")),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(sorted(failures(&re)), sorted(failures(&le)));
    }
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_a_member_and_from_the_host_stop_remote_tasks() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"]]).await;
    let coordinator = fleet.coordinator().await;
    // cancel_workflow on a worker cancels the run; the slow sibling is stopped.
    let mut wf = Workflow::builder("cancel");
    let s = wf.add(task(&reg, "s", "fetch"));
    let slow = wf.add(task(&reg, "slow", "slow"));
    let c = wf.add(task(&reg, "cancel", "cancel"));
    wf.flow(s >> (slow | c));
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let t0 = Instant::now();
    let (out, _) = run_with(wf.clone(), Some(coordinator.clone())).await;
    assert_eq!(out.status, RunStatus::Cancelled);
    assert!(
        out.error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("stop everything"))
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the slow member was not waited for"
    );
    // The worker notices the cancellation at its next heartbeat and frees the slot.
    let worker = fleet.workers[0].0.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker.record().busy > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(worker.record().busy, 0, "the remote task is still running");
    assert!(
        worker
            .prometheus()
            .contains("graflow_worker_cancelled_total")
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_without_a_name_runs_in_the_coordinator_and_queues_route() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["gpu"]]).await;
    let coordinator = fleet.coordinator().await;
    let pid = std::process::id();
    let mut wf = Workflow::builder("placement");
    let s = wf.add(task(&reg, "s", "fetch"));
    // Unnamed: stays in the coordinator even inside a group placed on the fleet.
    let here = wf.task("here", move |_ctx| async move { anyhow::Ok(json!(pid)) });
    // Named and routed to the gpu queue, which the only worker reads.
    let gpu = wf.add(task(&reg, "gpu_task", "where").queue("gpu"));
    wf.flow(s >> (here | gpu));
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let (out, _) = run_with(wf, Some(coordinator)).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["here"], json!(pid));
    assert!(out.results.contains_key("gpu_task"));
    assert_eq!(
        fleet.workers[0].0.record().processed,
        1,
        "only gpu_task ran on the worker"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_placed_local_stays_in_the_coordinator() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"]]).await;
    let coordinator = fleet.coordinator().await;
    let mut wf = Workflow::builder("kept");
    let s = wf.add(task(&reg, "s", "fetch"));
    let a = wf.add(task(&reg, "a", "where"));
    let b = wf.add(task(&reg, "b", "where"));
    let c = wf.add(task(&reg, "c", "where"));
    let d = wf.add(task(&reg, "d", "where"));
    let kept = wf.add_group(GroupDef::new("kept", a | b).placement(Placement::Local));
    let fleet_group = wf.add_group(GroupDef::new("sent", c | d).policy(GroupPolicy::BestEffort));
    wf.flow(s >> kept >> fleet_group);
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let (out, _) = run_with(wf, Some(coordinator)).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        fleet.workers[0].0.record().processed,
        2,
        "c and d ran on the worker, a and b here"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_file_runs_on_the_fleet_with_dynamic_tasks_and_goto() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"], &["default"]]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("dyn.ron");
    let text = r##"Workflow(
        name: "dyn",
        flow: "plan >> (fan | jump) >> collect",
        tasks: {
            "plan": Task(run: Value(["x", "y", "z"])),
            "fan": Task(run: Script(r#" for j in ctx.input("plan") { ctx.next_task(`work_${j}`, #{ run: `ctx.append("done", "${j}"); "${j} ok"` }); } ctx.next_task("extra"); "planned" "#)),
            "jump": Task(run: Script(r#" if ctx.cycle < 3 { ctx.next_iteration(ctx.cycle) } ctx.cycle "#)),
            "extra": Task(run: Script(r#" ctx.log("extra ran"); ctx.get("done").len() "#)),
            "collect": Task(run: Script(r#" #{ done: ctx.get("done"), fan: ctx.result("fan"), extra: ctx.result("extra") } "#)),
        },
    )"##;
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let runtimes = Runtimes::default();
    let loaded =
        graflow_engine::file::load_file(&path, &runtimes).unwrap_or_else(|e| panic!("{e}"));
    let coordinator = Arc::new(
        RedisFleet::connect(fleet.config())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .with_workflow(loaded.source(), Arc::new(loaded.task_factory(&runtimes))),
    );
    let (local, le) = run_with(loaded.workflow.clone(), None).await;
    let (remote, re) = run_with(loaded.workflow.clone(), Some(coordinator)).await;
    assert!(local.succeeded(), "{:?}", local.error);
    assert!(remote.succeeded(), "{:?}", remote.error);
    assert_eq!(remote.results, local.results);
    assert_eq!(sort_lists(remote.channel), sort_lists(local.channel));
    assert_eq!(sorted(shape(&re)), sorted(shape(&le)));
    assert!(Path::new(&path).exists());
    assert!(fleet.stop().await >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_now_is_refused_on_a_worker_with_a_clear_error() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["default"]]).await;
    let coordinator = fleet.coordinator().await;
    let mut wf = Workflow::builder("now");
    let s = wf.add(task(&reg, "s", "fetch"));
    let a = wf.add(task(&reg, "a", "checkpoint_now"));
    let b = wf.add(task(&reg, "b", "where"));
    wf.flow(s >> (a | b));
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let (out, _) = run_with(wf, Some(coordinator)).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let said = out.results["a"].as_str().unwrap_or_default().to_string();
    assert!(
        said.contains("runs on a worker of the fleet and cannot checkpoint the run now")
            && said.contains("ctx.checkpoint()"),
        "{said}"
    );
    fleet.stop().await;
}

/// A pool is the fleet's: tasks on the workers and tasks the coordinator runs itself (a Rust
/// closure without a registered name) take slots of the same pool in Redis, so a 1-slot pool
/// runs one of them at a time, wherever it runs (the tasks count themselves in the channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_is_shared_by_the_workers_and_the_coordinator() {
    needs!(Service::Redis);
    async fn noting(ctx: TaskContext) -> anyhow::Result<Value> {
        ctx.channel().append("log", 1).await?;
        tokio::time::sleep(Duration::from_millis(30)).await;
        ctx.channel().append("log", -1).await?;
        Ok(json!(ctx.task_id()))
    }
    let mut reg = registry();
    reg.register_fn("noting", noting);
    let fleet = Fleet::start(&reg, &[&["default"], &["default"]]).await;
    let mut wf = Workflow::builder("fleet-pool");
    wf.pool("one", graflow_engine::PoolDef::new(1));
    let mut members = Vec::new();
    for i in 0..4 {
        wf.add(task(&reg, &format!("w{i}"), "noting").pool("one", 1));
        wf.add(TaskDef::from_fn(format!("c{i}"), noting).pool("one", 1));
        members.push(format!("w{i} | c{i}"));
    }
    wf.add(task(&reg, "fetch", "fetch"));
    wf.flow_str(&format!("fetch >> ({})", members.join(" | ")));
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let (out, events) = run_with(wf, Some(fleet.coordinator().await)).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let (mut open, mut max) = (0i64, 0i64);
    for v in out.channel["log"].as_array().into_iter().flatten() {
        open += v.as_i64().unwrap_or(0);
        max = max.max(open);
    }
    assert_eq!((open, max), (0, 1), "one task at a time on a 1-slot pool");
    let on_workers = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::TaskSucceeded { task, worker: Some(_), .. } if task.starts_with('w')))
        .count();
    assert_eq!(on_workers, 4, "the w tasks ran on the workers");
    let waited: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskWaiting { task, .. } => Some(&**task),
            _ => None,
        })
        .collect();
    assert!(waited.iter().any(|t| t.starts_with('c')), "{waited:?}");
    assert!(waited.iter().any(|t| t.starts_with('w')), "{waited:?}");
    fleet.stop().await;
}

/// A queue's rate limit and a task's own are buckets in Redis, shared by the workers: four
/// tasks on queue `io` limited to 5/s start 200 ms apart (0.6 s from first to last), and a
/// task limited to 2/s iterating three times starts 500 ms apart (1.5 s). The starts are seen
/// through the coordinator's events, which add delivery jitter: the lower bounds leave room
/// for it and still tell a limit from none (a few milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_task_rate_limits_are_shared_through_redis() {
    needs!(Service::Redis);
    let reg = registry();
    let fleet = Fleet::start(&reg, &[&["io", "default"], &["io", "default"]]).await;
    let mut wf = Workflow::builder("fleet-rates");
    wf.queue(
        "io",
        graflow_engine::QueueDef::rate_limited("5/s".parse().unwrap_or_else(|e| panic!("{e}"))),
    );
    let mut members = Vec::new();
    for i in 0..4 {
        wf.add(task(&reg, &format!("q{i}"), "where").queue("io"));
        members.push(format!("q{i}"));
    }
    wf.add(task(&reg, "fetch", "fetch"));
    wf.add(
        task(&reg, "looping", "loop3")
            .rate_limit("2/s".parse().unwrap_or_else(|e| panic!("{e}")))
            .queue("default"),
    );
    wf.flow_str(&format!("fetch >> ({}) >> looping", members.join(" | ")));
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let (out, events) = run_with(wf, Some(fleet.coordinator().await)).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let starts = |prefix: &str| -> Vec<std::time::SystemTime> {
        let mut v: Vec<_> = events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::TaskStarted { task, .. } if task.starts_with(prefix)))
            .map(|e| e.ts)
            .collect();
        v.sort();
        v
    };
    let span = |v: &[std::time::SystemTime]| {
        v.last()
            .and_then(|l| l.duration_since(v[0]).ok())
            .unwrap_or_default()
    };
    let queue = starts("q");
    assert_eq!(queue.len(), 4);
    let took = span(&queue);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "4 starts at 5/s spanned {took:?}"
    );
    let looping = starts("looping");
    assert_eq!(looping.len(), 4, "loop3 runs 4 times");
    let took = span(&looping);
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(8),
        "4 starts at 2/s spanned {took:?}"
    );
    fleet.stop().await;
}
