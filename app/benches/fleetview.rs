//! Benchmarks of watching the fleet; each prints one JSON line (`workload`, `n`, `seconds`,
//! `per_item_us`, plus its own figures):
//!
//! - `fleetview_frame_100_workers`: one frame of the fleet view with 100 workers, 20 queues
//!   (10,000 tasks queued) and 200 runs on a 200×60 `TestBackend` (median of 51). Target ≤ 5 ms.
//! - `event_sink_overhead_per_task`: a local run of 20,000 task executions with the Redis
//!   event sink against the same run without it (a real `redis-server`); the difference per
//!   execution. Target ≤ 2 µs.
//! - `attach_first_frame`: from asking to follow a running run (started by `graflow run
//!   --backend` in another process) to the studio's first frame showing it running. Target
//!   ≤ 200 ms.
//!
//! `cargo bench -p graflow --bench fleetview` (needs Debian's `redis-server`).

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow::studio::action::Action;
use graflow::studio::app::{App, Msg, Settings};
use graflow::studio::runtime::Driver;
use graflow::studio::runtime::fleet::FleetLink;
use graflow::studio::screens::fleet::FleetData;
use graflow::studio::ui;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::metrics::WorkerRecord;
use graflow_engine::distributed::watch::{
    FleetSnapshot, QueueView, RedisEventSink, RunSummary, SinkConfig, WorkerView,
};
use graflow_engine::{Engine, RunOptions, TaskContext, TaskDef, Workflow};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use redis_server::RedisServer;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(workload: &str, n: usize, seconds: f64, extra: &str) {
    println!(
        "{{\"workload\":\"{workload}\",\"n\":{n},\"seconds\":{seconds:.6},\"per_item_us\":{:.3}{extra}}}",
        seconds / n.max(1) as f64 * 1e6
    );
}

fn fleet_data(t: u64) -> FleetData {
    let workers = (0..100)
        .map(|i| WorkerView {
            id: format!("worker-host{}-{}-0000{i:04}", i % 7, 1000 + i),
            record: Some(WorkerRecord {
                id: format!("worker-{i}"),
                host: format!("host{}", i % 7),
                pid: 1000 + i,
                queues: vec!["default".into(), format!("q{}", i % 20)],
                concurrency: 8,
                busy: (i % 9) as usize,
                processed: t * 10 + i as u64,
                succeeded: t * 10,
                failed: i as u64,
                retried: 0,
                reclaimed: 0,
                dead_lettered: 0,
                uptime_secs: 100.0,
                beat_ms: t,
                state: if i % 3 == 0 { "idle" } else { "busy" }.into(),
                duration_sum_us: t * 1000,
                duration_count: t * 10 + i as u64,
            }),
            beat_age_ms: 300,
            state: if i == 99 { "lost" } else { "busy" }.into(),
        })
        .collect();
    let queues = (0..20)
        .map(|q| QueueView {
            name: format!("q{q}"),
            depth: 500,
            in_flight: 40,
            dead: 3,
            dead_letters: vec![],
        })
        .collect();
    let runs = (0..200)
        .map(|r| RunSummary {
            run_id: format!("0193{r:018}"),
            workflow: "etl".into(),
            state: if r < 20 { "live" } else { "ended" }.into(),
            status: (r >= 20).then(|| "succeeded".into()),
            host: "coord".into(),
            started_ms: t - r * 1000,
            updated_ms: t,
            events: 1234,
            ..RunSummary::default()
        })
        .collect();
    FleetData {
        runs,
        fleet: FleetSnapshot {
            at_ms: t,
            workers,
            queues,
        },
    }
}

fn bench_frame() {
    let mut app = App::new(Settings::default());
    app.update(Action::Resize(200, 60));
    app.fleet.attached = Some("redis://127.0.0.1:6379".into());
    app.update(Action::ToggleFleet);
    for i in 0..60u64 {
        app.on_msg(Msg::Fleet(Ok(fleet_data(1_800_000_000_000 + i * 500))));
    }
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let times: Vec<f64> = (0..51)
        .map(|_| {
            let t = Instant::now();
            term.draw(|f| ui::draw(f, &app))
                .unwrap_or_else(|e| panic!("{e}"));
            t.elapsed().as_secs_f64()
        })
        .collect();
    let t = median(times);
    report(
        "fleetview_frame_100_workers",
        100,
        t,
        &format!(",\"frame_ms\":{:.3},\"queued\":10000", t * 1000.0),
    );
}

fn looping(n: i64) -> Arc<Workflow> {
    let mut wf = Workflow::builder("looping");
    wf.add(
        TaskDef::from_fn("spin", move |ctx: TaskContext| async move {
            let i = ctx.data().as_i64().unwrap_or(0);
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

async fn bench_sink(server: &RedisServer) {
    let n = 20_000;
    let link = Link::connect(&server.url(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let wf = looping(n as i64);
    let mut plain = Vec::new();
    let mut sunk = Vec::new();
    let mut dropped = 0;
    for round in 0..5 {
        // Without a sink the run still builds its events (a listener is there).
        let t = Instant::now();
        let mut h = Engine::new().start(wf.clone(), RunOptions::new().with_events());
        let mut rx = h.take_events().unwrap_or_else(|| panic!("no events"));
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let _ = h.wait().await;
        let _ = drain.await;
        plain.push(t.elapsed().as_secs_f64());

        let sink = RedisEventSink::start(
            link.clone(),
            Keys::new(format!("bench{round}")),
            SinkConfig::default(),
        );
        let t = Instant::now();
        let mut h = Engine::new().start(
            wf.clone(),
            RunOptions::new().with_events().sink(sink.clone()),
        );
        let mut rx = h.take_events().unwrap_or_else(|| panic!("no events"));
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let _ = h.wait().await;
        let _ = drain.await;
        sunk.push(t.elapsed().as_secs_f64());
        dropped += sink.finish(Duration::from_secs(30)).await.dropped;
    }
    let (p, s) = (median(plain), median(sunk));
    let per_task = (s - p) / n as f64 * 1e6;
    report(
        "event_sink_overhead_per_task",
        n,
        s - p,
        &format!(
            ",\"without_s\":{p:.6},\"with_s\":{s:.6},\"overhead_us_per_task\":{per_task:.3},\"dropped\":{dropped}"
        ),
    );
}

async fn bench_attach(server: &RedisServer) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("slow.ron");
    std::fs::write(
        &file,
        r#"Workflow(name: "slow", flow: "a >> b", tasks: {"a": Task(run: Value(1)), "b": Task(run: Sleep("20s"))})"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_graflow"))
        .arg("run")
        .arg(&file)
        .arg("--json")
        .arg("--backend")
        .arg(server.url())
        .env("GRAFLOW_STATE_DIR", dir.path().join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let fleet = FleetLink::connect(&server.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut driver = Driver::new(App::new(Settings::default()), dir.path().join("studio"));
    driver.dispatch(Action::Resize(200, 60));
    driver.attach_fleet(fleet);
    // The studio's heartbeat asks for a refresh once a second; here, as often as one ends.
    let live = |a: &App| {
        a.fleet
            .data
            .as_ref()
            .is_some_and(|d| d.runs.iter().any(|r| r.workflow == "slow" && r.is_live()))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listed = false;
    while !listed && Instant::now() < deadline {
        driver.app.fleet.asked = None;
        driver.app.tick(std::time::SystemTime::now());
        driver.run_effects();
        listed = driver.run_until(Duration::from_millis(300), live).await;
    }
    if !listed {
        println!("{{\"workload\":\"attach_first_frame\",\"skipped\":\"the run did not show\"}}");
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    driver.dispatch(Action::AttachRun);
    let shown = driver
        .run_until(Duration::from_secs(20), |a| {
            a.entry()
                .and_then(|e| e.run.as_ref())
                .is_some_and(|r| r.tasks.values().any(|t| t.status.is_some()))
        })
        .await;
    term.draw(|f| ui::draw(f, &driver.app))
        .unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    if shown {
        report(
            "attach_first_frame",
            1,
            took,
            &format!(",\"ms\":{:.1}", took * 1000.0),
        );
    } else {
        println!("{{\"workload\":\"attach_first_frame\",\"skipped\":\"no event arrived\"}}");
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    bench_frame();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let server = RedisServer::start_with(&[]);
    rt.block_on(bench_sink(&server));
    rt.block_on(bench_attach(&server));
}
