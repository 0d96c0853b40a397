//! Studio benchmarks; each prints one JSON line: `workload`, `n`, `seconds` (median of the
//! runs), `per_item_us`, and extra fields.
//!
//! - `layout_layers_random_dag`: rust-sugiyama layering and ordering of a random 1,000-node DAG;
//! - `layout_full_random_dag`: the same plus cell placement and edge routing at all 3 zooms;
//! - `lanes_random_dag` / `lanes_fan_out_5000`: the list view's lanes;
//! - `draw_canvas_frame` / `draw_list_frame`: one frame of the canvas (1,000 nodes) and of the
//!   list (5,000 nodes) on a 200×60 `TestBackend`;
//! - `studio_rss_1000`: resident memory of the real binary with a 1,000-task workflow loaded
//!   and laid out;
//! - `studio_idle_10s`: frames drawn (synchronized-update sequences written) and CPU time used
//!   by the real binary over 10 idle seconds;
//! - `studio_inbox_open_10s`: the same with the inbox open (it polls the feedback files once a
//!   second and redraws the requests' ages);
//! - `inbox_list_200`: listing 200 pending feedback requests from the files (one poll);
//! - `draw_inbox_frame`: one frame of the inbox with 200 requests and a text answer open;
//! - `checkpoint_list_200` / `checkpoint_detail`: listing 200 checkpoints and reading one.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graflow::studio::action::Action;
use graflow::studio::app::{App, Msg, Settings};
use graflow::studio::graph::lanes;
use graflow::studio::graph::layout;
use graflow::studio::graph::model::{GEdgeKind, ViewGraph};
use graflow::studio::ui;
use graflow_engine::{TaskDef, Value, Workflow};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// A deterministic random DAG: node i > 0 gets one or two parents among the earlier nodes.
fn random_dag(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let mut edges = Vec::new();
    for i in 1..n {
        let lo = i.saturating_sub(40);
        let a = lo + next() % (i - lo);
        edges.push((a, i));
        if next() % 2 == 0 {
            let b = lo + next() % (i - lo);
            if b != a {
                edges.push((b, i));
            }
        }
    }
    edges
}

fn view(n: usize, edges: &[(usize, usize)]) -> ViewGraph {
    ViewGraph {
        nodes: (0..n).collect(),
        edges: edges
            .iter()
            .map(|&(a, b)| (a, b, GEdgeKind::Plain))
            .collect(),
        hidden: Default::default(),
    }
}

fn workflow(n: usize, edges: &[(usize, usize)]) -> Arc<Workflow> {
    let mut wf = Workflow::builder("bench");
    for i in 0..n {
        wf.add(TaskDef::from_fn(
            format!("t{i:04}").as_str(),
            |_ctx| async { anyhow::Ok(Value::Null) },
        ));
    }
    let mut flow = String::new();
    for &(a, b) in edges {
        let _ = writeln!(flow, "t{a:04} >> t{b:04}");
    }
    wf.flow_str(&flow);
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn report(workload: &str, n: usize, seconds: f64, extra: &str) {
    println!(
        "{{\"workload\":\"{workload}\",\"n\":{n},\"seconds\":{seconds:.6},\"per_item_us\":{:.3}{extra}}}",
        seconds / n.max(1) as f64 * 1e6
    );
}

fn bench_layout() {
    let n = 1000;
    let edges = random_dag(n, 7);
    let v = view(n, &edges);
    let mut engine = "";
    let layers = time(7, || {
        let l = layout::layer(&v);
        engine = l.engine;
    });
    report(
        "layout_layers_random_dag",
        n,
        layers,
        &format!(",\"edges\":{},\"engine\":\"{engine}\"", edges.len()),
    );
    let full = time(7, || {
        std::hint::black_box(layout::compute(&v));
    });
    report(
        "layout_full_random_dag",
        n,
        full,
        &format!(",\"edges\":{},\"zooms\":3", edges.len()),
    );
    let fallback = time(7, || {
        let fwd: Vec<(usize, usize)> = edges.clone();
        std::hint::black_box(layout::fallback(&v, &fwd));
    });
    report(
        "layout_fallback_random_dag",
        n,
        fallback,
        &format!(",\"edges\":{}", edges.len()),
    );
    let big = 5000;
    let big_edges = random_dag(big, 11);
    let bv = view(big, &big_edges);
    let big_t = time(5, || {
        std::hint::black_box(layout::compute(&bv));
    });
    report(
        "layout_full_random_dag",
        big,
        big_t,
        &format!(",\"edges\":{},\"zooms\":3", big_edges.len()),
    );
    let lanes_t = time(7, || {
        std::hint::black_box(lanes::compute(&v, n, |_| 0));
    });
    report("lanes_random_dag", n, lanes_t, "");
    let m = 5000;
    let fan = view(m, &(1..m).map(|i| (0, i)).collect::<Vec<_>>());
    let fan_t = time(7, || {
        std::hint::black_box(lanes::compute(&fan, m, |_| 0));
    });
    report("lanes_fan_out_5000", m, fan_t, "");
}

fn bench_frames() {
    let n = 1000;
    let edges = random_dag(n, 7);
    let wf = workflow(n, &edges);
    let mut app = App::new(Settings::default());
    app.add_workflow(wf);
    app.update(Action::Resize(200, 60));
    app.update(Action::ViewCanvas);
    let cv = app
        .entry()
        .map(|e| e.graph.canvas_view.clone())
        .unwrap_or_default();
    app.on_msg(Msg::Layout {
        index: 0,
        layout: Arc::new(layout::compute(&cv)),
    });
    app.update(Action::ZoomOut);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let t = time(51, || {
        term.draw(|f| ui::draw(f, &app))
            .unwrap_or_else(|e| panic!("{e}"));
    });
    report(
        "draw_canvas_frame",
        n,
        t,
        ",\"width\":200,\"height\":60,\"zoom\":\"pills\"",
    );

    let m = 5000;
    let chain: Vec<(usize, usize)> = (1..m).map(|i| (i - 1, i)).collect();
    let mut app = App::new(Settings::default());
    app.add_workflow(workflow(m, &chain));
    app.update(Action::Resize(200, 60));
    app.update(Action::End);
    let t = time(51, || {
        term.draw(|f| ui::draw(f, &app))
            .unwrap_or_else(|e| panic!("{e}"));
    });
    report("draw_list_frame", m, t, ",\"width\":200,\"height\":60");
}

fn bench_inbox() {
    use graflow_engine::hitl::{
        FeedbackBackend, FeedbackKind, FeedbackRequest, FeedbackSpec, FeedbackStatus,
    };
    let dir = std::env::temp_dir().join(format!("graflow-inbox-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let backend = graflow::runsetup::feedback_backend(&dir);
    let n = 200;
    let requests: Vec<FeedbackRequest> = (0..n)
        .map(|i| FeedbackRequest {
            id: format!("run{:03}-task-1-0-0", i),
            run_id: format!("run{i:03}"),
            task: format!("task{i}"),
            workflow: "bench".into(),
            spec: FeedbackSpec::new(FeedbackKind::Text, format!("Question {i}?")).timeout(180.0),
            status: FeedbackStatus::Pending,
            created_at: format!("2026-11-28T14:{:02}:00Z", i % 60),
            timed_out_at: None,
            checkpoint: None,
        })
        .collect();
    for r in &requests {
        if futures::executor::block_on(backend.create(r.clone())).is_err() {
            println!("{{\"workload\":\"inbox_list_200\",\"skipped\":\"cannot write requests\"}}");
            return;
        }
    }
    let t = time(7, || {
        let listed = graflow::studio::runtime::inbox::list(&dir);
        assert_eq!(listed.map(|l| l.len()).unwrap_or(0), n);
    });
    report("inbox_list_200", n, t, "");
    let mut app = App::new(Settings::default());
    app.update(Action::Resize(200, 60));
    app.update(Action::ToggleInbox);
    app.on_msg(Msg::Inbox(Ok(requests)));
    app.update(Action::AnswerRequest);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let t = time(51, || {
        term.draw(|f| ui::draw(f, &app))
            .unwrap_or_else(|e| panic!("{e}"));
    });
    report("draw_inbox_frame", n, t, ",\"width\":200,\"height\":60");

    // Checkpoints: 200 written by real runs would take long; write them with the store.
    use graflow_engine::checkpoint::{Checkpoint, Reason, RunSnapshot, WorkflowSource, store};
    let ckdir = dir.join("checkpoints");
    let mut first = None;
    for i in 0..n {
        let mut snapshot = RunSnapshot::default();
        for k in 0..20 {
            snapshot.results.insert(
                format!("t{k}"),
                Value::from(format!("result {k} of run {i}")),
            );
        }
        let ckpt = Checkpoint {
            run_id: format!("run{i:03}"),
            seq: 1,
            created_at: format!("2026-11-28T14:{:02}:00Z", i % 60),
            reason: Reason::Host,
            task: None,
            workflow: WorkflowSource {
                name: "bench".into(),
                ..WorkflowSource::default()
            },
            metadata: Default::default(),
            snapshot,
            feedback: Vec::new(),
        };
        match store::save(&ckdir, &ckpt) {
            Ok(saved) => {
                first.get_or_insert(saved.path);
            }
            Err(e) => {
                println!("{{\"workload\":\"checkpoint_list_200\",\"skipped\":\"{e}\"}}");
                return;
            }
        }
    }
    let t = time(7, || {
        let l = graflow::studio::runtime::checkpoints::list(&dir, &[]);
        assert_eq!(l.len(), n);
    });
    report("checkpoint_list_200", n, t, "");
    if let Some(path) = first {
        let t = time(7, || {
            std::hint::black_box(graflow::studio::runtime::checkpoints::detail(&path).ok());
        });
        report("checkpoint_detail", 1, t, ",\"results\":20");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn bench_real_binary() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let n = 1000;
    let edges = random_dag(n, 7);
    let dir = std::env::temp_dir().join(format!("graflow-studio-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut ron = String::from("Workflow(\n    name: \"big\",\n    flow: \"");
    for (k, &(a, b)) in edges.iter().enumerate() {
        if k > 0 {
            ron.push_str("; ");
        }
        let _ = write!(ron, "t{a:04} >> t{b:04}");
    }
    ron.push_str("\",\n    tasks: {\n");
    for i in 0..n {
        let _ = writeln!(ron, "        \"t{i:04}\": Task(run: Noop),");
    }
    ron.push_str("    },\n)\n");
    let file = dir.join("big.ron");
    if std::fs::write(&file, ron).is_err() {
        return;
    }
    let Ok(pair) = native_pty_system().openpty(PtySize {
        rows: 60,
        cols: 200,
        pixel_width: 0,
        pixel_height: 0,
    }) else {
        println!("{{\"workload\":\"studio_rss_1000\",\"skipped\":\"no pty\"}}");
        return;
    };
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_graflow"));
    cmd.args(["studio", &file.to_string_lossy()]);
    cmd.cwd(&dir);
    cmd.env("TERM", "xterm-256color");
    cmd.env("GRAFLOW_STATE_DIR", dir.join("state"));
    cmd.env("XDG_CONFIG_HOME", dir.join("config"));
    cmd.env("GRAFLOW_STUDIO_LOG", dir.join("studio.log"));
    let Ok(mut child) = pair.slave.spawn_command(cmd) else {
        return;
    };
    drop(pair.slave);
    let pid = child.process_id().unwrap_or(0);
    let Ok(mut reader) = pair.master.try_clone_reader() else {
        return;
    };
    let Ok(mut writer) = pair.master.take_writer() else {
        return;
    };
    let out: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(k) = reader.read(&mut buf) {
            if k == 0 {
                break;
            }
            if let Ok(mut o) = sink.lock() {
                o.extend_from_slice(&buf[..k]);
            }
        }
    });
    let contains = |needle: &[u8]| {
        out.lock()
            .map(|o| o.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !contains(b"t0001") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The canvas, so the layout is computed and held too.
    let _ = writer.write_all(b"2");
    let _ = writer.flush();
    while !contains(b"sugiyama") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_kb = proc_field(pid, "status", "VmRSS:").unwrap_or(0.0);
    let hwm_kb = proc_field(pid, "status", "VmHWM:").unwrap_or(0.0);
    println!(
        "{{\"workload\":\"studio_rss_1000\",\"n\":{n},\"seconds\":0,\"per_item_us\":0,\"rss_mb\":{:.1},\"peak_rss_mb\":{:.1}}}",
        rss_kb / 1024.0,
        hwm_kb / 1024.0
    );

    // Idle: count frames (each is wrapped in a synchronized update) and CPU time over 10 s.
    std::thread::sleep(Duration::from_millis(500));
    let frame_mark: &[u8] = b"\x1b[?2026h";
    let count = |o: &[u8]| {
        o.windows(frame_mark.len())
            .filter(|w| *w == frame_mark)
            .count()
    };
    let frames0 = out.lock().map(|o| count(&o)).unwrap_or(0);
    let bytes0 = out.lock().map(|o| o.len()).unwrap_or(0);
    let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
    let idle = Duration::from_secs(10);
    std::thread::sleep(idle);
    let cpu1 = cpu_seconds(pid).unwrap_or(0.0);
    let frames1 = out.lock().map(|o| count(&o)).unwrap_or(0);
    let bytes1 = out.lock().map(|o| o.len()).unwrap_or(0);
    println!(
        "{{\"workload\":\"studio_idle_10s\",\"n\":1,\"seconds\":{:.1},\"per_item_us\":0,\"frames\":{},\"bytes_written\":{},\"cpu_seconds\":{:.3},\"cpu_percent\":{:.3}}}",
        idle.as_secs_f64(),
        frames1 - frames0,
        bytes1 - bytes0,
        cpu1 - cpu0,
        (cpu1 - cpu0) / idle.as_secs_f64() * 100.0
    );
    // The inbox open: one listing a second and a redraw for the ages.
    let _ = writer.write_all(b"a");
    let _ = writer.flush();
    std::thread::sleep(Duration::from_millis(500));
    let frames0 = out.lock().map(|o| count(&o)).unwrap_or(0);
    let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
    std::thread::sleep(idle);
    let cpu1 = cpu_seconds(pid).unwrap_or(0.0);
    let frames1 = out.lock().map(|o| count(&o)).unwrap_or(0);
    println!(
        "{{\"workload\":\"studio_inbox_open_10s\",\"n\":1,\"seconds\":{:.1},\"per_item_us\":0,\"frames\":{},\"cpu_seconds\":{:.3},\"cpu_percent\":{:.3}}}",
        idle.as_secs_f64(),
        frames1 - frames0,
        cpu1 - cpu0,
        (cpu1 - cpu0) / idle.as_secs_f64() * 100.0
    );
    let _ = writer.write_all(b"q");
    let _ = writer.flush();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Path::new(&dir);
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (cargo test's listing) runs nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    bench_layout();
    bench_frames();
    bench_inbox();
    bench_real_binary();
}
