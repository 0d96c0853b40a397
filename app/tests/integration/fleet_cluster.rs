//! The fleet on a Redis Cluster (three masters with a replica each, `redis-server` processes
//! on loopback): `graflow run --backend redis+cluster://…` with real `graflow worker`s runs a
//! workflow unchanged — the results of a local run; a run's keys in one slot; queues spread
//! over the masters — and a master failover (`CLUSTER FAILOVER` on its replica) in the middle
//! of a run loses nothing: every task committed exactly once.

use crate::services::Service;

use crate::fleet_support;

use crate::redis_cluster;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet_support::{bin, finished, normalized, run_bounded, successes};
use redis_cluster::RedisCluster;
use serde_json::Value;

const QUEUES: [&str; 6] = ["default", "q0", "q1", "q2", "q3", "q4"];

/// Workers on the cluster, ended on drop.
struct Workers(Vec<Child>);

impl Workers {
    fn start(url: &str, n: usize, dir: &Path) -> Workers {
        let mut out = Vec::new();
        for i in 0..n {
            let log = std::fs::File::create(dir.join(format!("worker-{i}.log")))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut cmd = Command::new(bin());
            cmd.args(["worker", "--redis", url, "--lease", "2s"]);
            for q in QUEUES {
                cmd.args(["--queue", q]);
            }
            let child = cmd
                .current_dir(dir)
                .env("NO_COLOR", "1")
                .env("RUST_LOG", "warn,graflow_engine::distributed=info")
                .env_remove("GRAFLOW_BACKEND")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start a worker: {e}"));
            out.push(child);
        }
        Workers(out)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn logs(dir: &Path) -> String {
    (0..4)
        .map(|i| std::fs::read_to_string(dir.join(format!("worker-{i}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn wait_for_workers(cluster: &RedisCluster, n: usize, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster
        .cli(&["ZCARD", "graflow:workers"])
        .trim()
        .parse::<usize>()
        .unwrap_or(0)
        < n
    {
        assert!(
            Instant::now() < deadline,
            "workers did not register:\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A group of `n` chains: a `Sleep(sleep)` on the default queue, then a script giving twice
/// its number on one of the other queues; `done` counts its inputs.
fn group_file(dir: &Path, n: usize, sleep: &str) -> std::path::PathBuf {
    let tasks: String = (0..n)
        .map(|i| {
            format!(
                "\"m{i}\": Task(run: Script(\"{i} * 2\"), queue: \"{}\"),\n\"w{i}\": Task(run: Sleep(\"{sleep}\")),\n",
                QUEUES[i % QUEUES.len()]
            )
        })
        .collect();
    let chains: Vec<String> = (0..n).map(|i| format!("w{i} >> m{i}")).collect();
    let text = format!(
        "Workflow(name: \"cluster\", flow: \"start >> g >> done\", max_steps: {}, \
         groups: {{\"g\": Group(members: \"{}\")}}, tasks: {{\"start\": Task(run: Value(0)), \
         \"done\": Task(run: Script(\"ctx.inputs.len()\")),\n{tasks}}})",
        3 * n + 10,
        chains.join(" | ")
    );
    let path = dir.join(format!("cluster-{n}.ron"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", dir.join("state"))
        .env_remove("GRAFLOW_BACKEND");
    cmd
}

fn assert_like_local(dir: &Path, file: &Path, remote: &[Value]) {
    let file = file.to_string_lossy().to_string();
    let (code, local, err) = run_bounded(command(dir, &["run", &file, "--json"]));
    assert_eq!(code, Some(0), "the local run: {err}");
    let (l, r) = (finished(&local), finished(remote));
    assert_eq!(r["status"], l["status"]);
    assert_eq!(r["results"], l["results"]);
    assert_eq!(normalized(remote), normalized(&local), "the events differ");
}

#[test]
fn a_workflow_runs_unchanged_on_a_three_master_cluster_with_a_run_in_one_slot() {
    needs!(Service::Redis);
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let _workers = Workers::start(&url, 2, dir.path());
    wait_for_workers(&cluster, 2, dir.path());

    let file = group_file(dir.path(), 30, "10ms");
    let f = file.to_string_lossy().to_string();
    let (code, events, err) = run_bounded(command(
        dir.path(),
        &["run", &f, "--json", "--backend", &url],
    ));
    assert_eq!(code, Some(0), "{err}\n{}", logs(dir.path()));
    assert!(successes(&events).values().all(|c| *c == 1));
    assert_like_local(dir.path(), &file, &events);

    // The run's keys live on one master, all in one slot.
    let run_id = finished(&events)["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run id"))
        .to_string();
    let pattern = format!("graflow:{{r:{run_id}}}:*");
    let masters: Vec<_> = cluster
        .topology()
        .into_iter()
        .filter(|n| n.master)
        .collect();
    let holders: Vec<_> = masters
        .iter()
        .map(|m| (m.port, cluster.keys_on(m.port, &pattern)))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    assert_eq!(
        holders.len(),
        1,
        "the run's keys are on several masters: {holders:?}"
    );
    let slots: BTreeSet<u16> = holders[0].1.iter().map(|k| cluster.slot(k)).collect();
    assert_eq!(slots.len(), 1, "the run's keys span slots {slots:?}");

    // The queues are spread over the masters.
    let queue_masters: BTreeSet<u16> = QUEUES
        .iter()
        .map(|q| {
            cluster
                .master_of(cluster.slot(&format!("graflow:{{q:{q}}}:s")))
                .port
        })
        .collect();
    assert!(queue_masters.len() >= 2, "every queue on one master");
    for q in QUEUES {
        let key = format!("graflow:{{q:{q}}}:s");
        let m = cluster.master_of(cluster.slot(&key));
        assert_eq!(cluster.keys_on(m.port, &key), vec![key.clone()], "{q}");
    }
}

#[test]
fn a_master_failover_mid_run_loses_no_task() {
    needs!(Service::Redis);
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let _workers = Workers::start(&url, 2, dir.path());
    wait_for_workers(&cluster, 2, dir.path());

    let n = 60;
    // 60 × 1 s over 16 slots: about 4 s, longer than the failovers.
    let file = group_file(dir.path(), n, "1s");
    let f = file.to_string_lossy().to_string();
    let mut child = command(dir.path(), &["run", &f, "--json", "--backend", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v.clone());
                all.push(v);
            }
        }
        all
    });
    // Once members run, promote the replica of the master holding the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no member started:\n{}", logs(dir.path())));
        if e["event"] == "task_started" && e["task"].as_str().is_some_and(|t| t.starts_with('w')) {
            break e["run_id"].as_str().unwrap_or_default().to_string();
        }
    };
    let run_slot = cluster.slot(&format!("graflow:{{r:{run_id}}}:out"));
    let (old, new) = cluster.failover(run_slot);
    assert_ne!(old, new);
    // The queue holding most work too.
    let queue_slot = cluster.slot("graflow:{q:default}:s");
    if cluster.master_of(queue_slot).port != new {
        cluster.failover(queue_slot);
    }
    assert!(
        !rx.try_iter().any(|e| e["event"] == "run_finished"),
        "the run ended before the failovers did"
    );

    let out = fleet_support::wait_bounded(child, Duration::from_secs(180));
    let events = reader.join().unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs(dir.path())
    );
    let counts = successes(&events);
    assert!(
        counts.values().all(|c| *c == 1),
        "tasks committed more than once: {counts:?}"
    );
    assert_eq!(counts.len(), 2 * n + 2);
    assert_like_local(dir.path(), &file, &events);
}
