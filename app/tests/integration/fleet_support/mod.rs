//! A fleet made of real processes for end-to-end tests: a `redis-server` of the test's own,
//! `graflow worker` children it can kill (-9), stop, continue and terminate, and `graflow run
//! --backend` against them. Every process is the test's own child, ended by pid.

#![allow(dead_code)]

#[path = "../../../../tests/support/proxy.rs"]
pub mod proxy;
#[path = "../../../../tests/support/redis_server.rs"]
pub mod redis_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use redis_server::RedisServer;

/// The graflow binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

/// The repository's sample folder.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

/// A worker process.
pub struct WorkerProc {
    pub child: Child,
    pub log: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Redis, workers and a state folder.
pub struct Fleet {
    pub redis: RedisServer,
    pub dir: tempfile::TempDir,
    pub workers: Vec<WorkerProc>,
    /// The URL workers and runs use (the proxy's, when a test puts one in between).
    pub url: String,
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

impl Fleet {
    /// Redis (appendfsync always) and `n` workers with a 2 s lease.
    pub fn start(n: usize) -> Fleet {
        Self::with_redis(RedisServer::start(), n, &["--lease", "2s"])
    }

    /// `n` workers with these arguments on `redis`.
    pub fn with_redis(redis: RedisServer, n: usize, args: &[&str]) -> Fleet {
        let url = redis.url();
        let mut fleet = Fleet {
            redis,
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            workers: Vec::new(),
            url,
        };
        for _ in 0..n {
            fleet.spawn_worker(args, &[]);
        }
        fleet.wait_for_workers(n);
        fleet
    }

    /// Start another worker; returns its index.
    pub fn spawn_worker(&mut self, args: &[&str], env: &[(&str, &str)]) -> usize {
        let i = self.workers.len();
        let log = self.dir.path().join(format!("worker-{i}.log"));
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = self.worker_command(&args, &env, &log);
        self.workers.push(WorkerProc {
            child,
            log,
            args,
            env,
        });
        i
    }

    fn worker_command(&self, args: &[String], env: &[(String, String)], log: &Path) -> Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(bin());
        cmd.arg("worker")
            .arg("--redis")
            .arg(&self.url)
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn,graflow_engine::distributed=info")
            .env_remove("GRAFLOW_BACKEND")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start a worker: {e}"))
    }

    /// Start worker `i` again (same arguments), after it died.
    pub fn respawn(&mut self, i: usize) {
        let w = &self.workers[i];
        let child = self.worker_command(&w.args, &w.env, &w.log);
        self.workers[i].child = child;
    }

    /// Wait until `n` workers registered.
    pub fn wait_for_workers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let count: usize = self
                .redis
                .cli(&["ZCARD", "graflow:workers"])
                .trim()
                .parse()
                .unwrap_or(0);
            if count >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{n} workers did not register:\n{}", self.logs());
    }

    /// Every worker's log.
    pub fn logs(&self) -> String {
        self.workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                format!(
                    "--- worker {i} ---\n{}",
                    std::fs::read_to_string(&w.log).unwrap_or_default()
                )
            })
            .collect()
    }

    /// `kill -9` worker `i`.
    pub fn kill9(&mut self, i: usize) {
        let _ = self.workers[i].child.kill();
        let _ = self.workers[i].child.wait();
    }

    /// SIGSTOP worker `i`.
    pub fn pause(&self, i: usize) {
        signal(&self.workers[i].child, libc::SIGSTOP);
    }

    /// SIGCONT worker `i`.
    pub fn resume(&self, i: usize) {
        signal(&self.workers[i].child, libc::SIGCONT);
    }

    /// SIGTERM worker `i`.
    pub fn term(&self, i: usize) {
        signal(&self.workers[i].child, libc::SIGTERM);
    }

    /// Wait up to `limit` for worker `i` to exit; its exit code.
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.workers[i].child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Answer every pending request of the fleet (in its Redis, where runs with `--backend`
    /// keep them) with commands made by `graflow` (the fleet's own [`Fleet::command`], or
    /// one for another machine): approve approvals, "because" to a request whose id names a
    /// note. How many were answered.
    pub fn answer_all_with(&self, graflow: impl Fn(&[&str]) -> Command) -> usize {
        let out = graflow(&["feedback", "list", "--backend", &self.url])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut n = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(id) = line
                .split_whitespace()
                .next()
                // Not "no pending feedback requests" (nothing asked yet).
                .filter(|_| line.contains("pending") && !line.starts_with("no "))
            else {
                continue;
            };
            let answer: &[&str] = if id.contains("note") {
                &["--text", "because"]
            } else {
                &["--approve"]
            };
            let mut args = vec!["feedback", "respond", id, "--backend", &self.url];
            args.extend_from_slice(answer);
            let status = graflow(&args).output().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                status.status.success(),
                "{}",
                String::from_utf8_lossy(&status.stderr)
            );
            n += 1;
        }
        n
    }

    /// A `graflow` command in the fleet's folder, with its state there.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("GRAFLOW_STATE_DIR", self.dir.path().join("state"))
            .env_remove("GRAFLOW_BACKEND");
        cmd
    }

    /// Start `graflow run FILE --json --backend URL EXTRA…` in the background, its output piped.
    pub fn spawn_run(&self, file: &Path, extra: &[&str]) -> Child {
        self.spawn_run_env(file, extra, &[])
    }

    /// [`Fleet::spawn_run`] with these environment variables.
    pub fn spawn_run_env(&self, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> Child {
        let path = file.to_string_lossy().to_string();
        let mut args = vec![
            "run",
            path.as_str(),
            "--json",
            "--backend",
            self.url.as_str(),
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A run whose task `poison` kills its worker until the file the returned path names
    /// exists, on a fleet with one worker (started here) capped at two deliveries, its
    /// coordinator holding dead letters for two minutes: returned once the attempt is
    /// dead-lettered and held, the run still waiting for it.
    pub fn held_dead_letter(&mut self) -> (Child, PathBuf) {
        self.spawn_worker(&["--lease", "1s", "--max-deliveries", "2"], &[]);
        self.wait_for_workers(1);
        let mended = self.dir.path().join("mended");
        let file = self.write(
            "held.ron",
            &format!(
                r#"Workflow(
    name: "held",
    flow: "start >> poison >> after",
    tasks: {{
        "start": Task(run: Value(1)),
        "poison": Task(run: Shell("if [ ! -e '{}' ]; then kill -9 $PPID; sleep 5; fi; echo mended"), queue: "default"),
        "after": Task(run: Value("after")),
    }},
)"#,
                mended.display()
            ),
        );
        let mut child = self.spawn_run_env(&file, &[], &[("GRAFLOW_DEAD_LETTER_HOLD", "120s")]);
        let restarts = self.supervise(&mut child, |f| {
            f.redis.cli(&["XLEN", "graflow:{q:default}:dlq"]).trim() == "1"
        });
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the run ended ({status}) instead of waiting for its held dead letter:\n{}",
                self.logs()
            );
        }
        assert_eq!(restarts, 2, "one restart per delivery up to the cap");
        (child, mended)
    }

    /// Wait (up to `limit`) for the run `child` to end, which must be a success; its output.
    pub fn succeeded(&self, child: Child, limit: Duration) -> Output {
        let out = wait_bounded(child, limit);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        out
    }

    /// Restart worker 0 whenever it dies (at most six times: a poison task must hit its
    /// delivery cap before) until `done` says so or the run `child` ends; the restarts.
    pub fn supervise(&mut self, child: &mut Child, mut done: impl FnMut(&Fleet) -> bool) -> usize {
        let mut restarts = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !done(self) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if let Ok(Some(_)) = self.workers[0].child.try_wait() {
                restarts += 1;
                assert!(restarts <= 6, "a poison task was delivered without a cap");
                self.respawn(0);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        restarts
    }

    /// Wait (up to `limit`) until the fleet's run index holds a run; its id.
    pub fn first_indexed_run(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let ids = self.redis.cli(&["ZRANGE", "graflow:runs", "0", "-1"]);
            if let Some(id) = ids.lines().map(str::trim).find(|l| !l.is_empty()) {
                return id.to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no run was indexed:\n{}", self.logs());
    }

    /// `graflow run FILE --backend URL --json ARGS…`, bounded in time: exit code and events.
    pub fn run(&self, file: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        let file = file.to_string_lossy().to_string();
        let mut all = vec![
            "run",
            file.as_str(),
            "--json",
            "--backend",
            self.url.as_str(),
        ];
        all.extend_from_slice(args);
        run_bounded(self.command(&all))
    }

    /// The same file run locally (no backend).
    pub fn run_local(&self, file: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
        let file = file.to_string_lossy().to_string();
        let mut all = vec!["run", file.as_str(), "--json"];
        all.extend_from_slice(args);
        run_bounded(self.command(&all))
    }

    /// Write a workflow file into the fleet's folder.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.workers {
            signal(&w.child, libc::SIGCONT);
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}

/// Run a command to its end (at most 3 minutes): exit code, JSON events, standard error.
pub fn run_bounded(mut cmd: Command) -> (Option<i32>, Vec<Value>, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
    collect(child, Duration::from_secs(180))
}

/// Wait (up to `limit`) for a run started with its output piped: its exit code, its JSON
/// lines and its standard error.
pub fn collect(child: Child, limit: Duration) -> (Option<i32>, Vec<Value>, String) {
    let out = wait_bounded(child, limit);
    (
        out.status.code(),
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON lines of `output` (other lines are left out).
pub fn json_lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Wait for `child`, killing it after `limit`.
pub fn wait_bounded(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // SAFETY: kill(2) on our own child that did not end in time.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    });
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let _ = tx.send(());
    out
}

/// The last event, `run_finished`.
pub fn finished(events: &[Value]) -> &Value {
    events
        .last()
        .filter(|e| e["event"] == "run_finished")
        .unwrap_or_else(|| panic!("no run_finished: {events:?}"))
}

/// Events without what differs between two runs of one file: times, ids, durations, paths,
/// and the completion order of group members. Sorted, so two runs compare as multisets.
pub fn normalized(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|e| e["event"] != "checkpoint_saved")
        .map(|e| {
            let mut e = e.clone();
            if let Some(o) = e.as_object_mut() {
                for k in [
                    "ts",
                    "run_id",
                    "duration_ms",
                    "size_bytes",
                    "path",
                    "checkpoint",
                    "worker",
                    "resumed_from",
                ] {
                    o.remove(k);
                }
                if let Some(Value::Array(s)) = o.get_mut("succeeded") {
                    s.sort_by_key(|v| v.to_string());
                }
                if let Some(Value::Array(s)) = o.get_mut("failed") {
                    s.sort_by_key(|v| v.to_string());
                }
                if let Some(Value::Object(ch)) = o.get_mut("channel") {
                    for v in ch.values_mut() {
                        if let Value::Array(items) = v {
                            items.sort_by_key(|i| i.to_string());
                        }
                    }
                }
            }
            // Key order does not matter (a run on the fleet adds `worker` fields).
            match e {
                Value::Object(o) => {
                    let sorted: BTreeMap<String, Value> = o.into_iter().collect();
                    serde_json::to_string(&sorted).unwrap_or_default()
                }
                other => other.to_string(),
            }
        })
        .collect();
    out.sort();
    out
}

/// How often each task succeeded (committed outcomes seen by the coordinator).
pub fn successes(events: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| e["event"] == "task_succeeded") {
        *out.entry(e["task"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    out
}
