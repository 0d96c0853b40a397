//! The compose stack of `assets/deploy/compose.yaml`, started for real for a test: its own
//! compose project (so its own network and volumes), its own folder of workflow files mounted
//! at /flows, and runs started with `compose run graflow run …` like a user would. Everything
//! the stack made carries its project's label and is removed when it drops, failure or not.
//!
//! The tests need a Docker engine and the images of `assets/deploy/build-images.sh`. Without
//! them they print why and pass, unless `GRAFLOW_CONTAINER_TESTS=1` (set by `.ci/run`, which
//! builds the images) makes that a failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The image tag the tests use (`GRAFLOW_IMAGE_TAG`, default `latest`).
pub fn tag() -> String {
    std::env::var("GRAFLOW_IMAGE_TAG").unwrap_or_else(|_| "latest".into())
}

fn compose_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/deploy/compose.yaml")
}

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

/// The graflow binary under test (for the local runs the stack's are compared with).
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

/// One stack at a time: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether the container tests can run here; prints why not (or panics when CI requires them).
pub fn available() -> Option<MutexGuard<'static, ()>> {
    let required = ["GRAFLOW_CONTAINER_TESTS", "GRAFLOW_REQUIRE_SERVICES"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| v == "1"));
    let why = if !output(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        30,
    )
    .is_some_and(|o| o.status.success())
    {
        Some("no Docker engine answers (`docker info` failed)".to_string())
    } else if compose_command().is_none() {
        Some("neither `docker compose` nor `docker-compose` is installed".to_string())
    } else {
        ["graflow", "graflow-redis"]
            .iter()
            .map(|name| format!("{name}:{}", tag()))
            .find(|image| {
                !output(Command::new("docker").args(["image", "inspect", image]), 30)
                    .is_some_and(|o| o.status.success())
            })
            .map(|image| {
                format!("the image {image} is missing: build it with assets/deploy/build-images.sh")
            })
    };
    match why {
        None => Some(ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())),
        Some(why) if required => panic!("GRAFLOW_CONTAINER_TESTS=1 but {why}"),
        Some(why) => {
            eprintln!(
                "SKIPPED: container test not run: {why} (GRAFLOW_CONTAINER_TESTS=1 requires it)"
            );
            None
        }
    }
}

/// `docker compose` (v2) or `docker-compose` (v1).
fn compose_command() -> Option<Vec<&'static str>> {
    if output(Command::new("docker").args(["compose", "version"]), 30)
        .is_some_and(|o| o.status.success())
    {
        return Some(vec!["docker", "compose"]);
    }
    output(Command::new("docker-compose").arg("version"), 30)
        .is_some_and(|o| o.status.success())
        .then(|| vec!["docker-compose"])
}

/// Run a command to its end, at most `secs` seconds (then it is killed): its output, or
/// `None` when it could not start or did not end in time.
pub fn output(cmd: &mut Command, secs: u64) -> Option<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().ok()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(secs)).is_err() {
            // SAFETY: kill(2) on our own child that did not end in time.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            return true;
        }
        false
    });
    let out = child.wait_with_output().ok();
    let _ = tx.send(());
    let killed = timer.join().unwrap_or(false);
    out.filter(|_| !killed)
}

/// `docker ARGS…`, which must succeed (bounded at two minutes): its standard output.
pub fn docker(args: &[&str]) -> String {
    let out = output(Command::new("docker").args(args), 120)
        .unwrap_or_else(|| panic!("docker {args:?} did not end within 2 minutes"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free loopback TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18000)
}

/// Settings of a stack.
pub struct Options {
    pub workers: usize,
    pub lease: &'static str,
    pub grace: &'static str,
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 2,
            lease: "3s",
            grace: "10s",
            concurrency: 8,
        }
    }
}

/// A compose project of the deploy stack.
pub struct Stack {
    pub project: String,
    pub flows: tempfile::TempDir,
    env: Vec<(String, String)>,
    compose: Vec<&'static str>,
    down: bool,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Stack {
    /// Start Redis, `workers` workers and serve, with the samples (and `extra` files) in
    /// /flows; returns once every worker is healthy and registered.
    pub fn up(opts: Options, extra: &[(&str, String)]) -> Stack {
        let project = format!(
            "graflowtest{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let flows = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // The whole tree: a sample's sub-workflows live in sub-folders.
        copy_tree(&samples(), flows.path());
        for (name, text) in extra {
            std::fs::write(flows.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
        }
        // The containers' user (10001) reads the folder.
        make_readable(flows.path());
        let env = vec![
            ("GRAFLOW_TAG".into(), tag()),
            (
                "GRAFLOW_FLOWS".into(),
                flows.path().to_string_lossy().into_owned(),
            ),
            ("GRAFLOW_LEASE".into(), opts.lease.into()),
            ("GRAFLOW_GRACE".into(), opts.grace.into()),
            ("GRAFLOW_CONCURRENCY".into(), opts.concurrency.to_string()),
            ("GRAFLOW_SERVE_PORT".into(), free_port().to_string()),
            (
                "GRAFLOW_SERVE_TOKEN".into(),
                format!("test-token-{}", std::process::id()),
            ),
        ];
        let stack = Stack {
            project,
            flows,
            env,
            compose: compose_command().unwrap_or_else(|| panic!("no compose command")),
            down: false,
        };
        let scale = format!("worker={}", opts.workers);
        let out = stack.compose(&["up", "-d", "--scale", &scale], 300);
        assert!(
            out.status.success(),
            "compose up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stack.wait_healthy(opts.workers);
        stack
    }

    /// A compose command of this project, bounded at `secs`.
    pub fn compose(&self, args: &[&str], secs: u64) -> Output {
        let mut cmd = self.compose_cmd(args);
        output(&mut cmd, secs).unwrap_or_else(|| panic!("compose {args:?} did not end in {secs} s"))
    }

    fn compose_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(compose_file())
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The port `graflow serve` is published on (127.0.0.1).
    pub fn serve_port(&self) -> u16 {
        self.env
            .iter()
            .find(|(k, _)| k == "GRAFLOW_SERVE_PORT")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    /// The project's network.
    pub fn network(&self) -> String {
        format!("{}_default", self.project)
    }

    /// IDs of the running containers of `service`.
    pub fn containers(&self, service: &str) -> Vec<String> {
        docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// `redis-cli ARGS…` in the Redis container.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let redis = self
            .containers("redis")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no Redis container"));
        let mut all = vec!["exec", redis.as_str(), "redis-cli"];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// A container's health (`healthy`, `starting`, `unhealthy`, or its state).
    pub fn health(&self, id: &str) -> String {
        docker(&[
            "inspect",
            "-f",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            id,
        ])
        .trim()
        .to_string()
    }

    /// Wait (at most 90 s) until `workers` worker containers are healthy and as many workers
    /// are registered in Redis, and serve is healthy.
    pub fn wait_healthy(&self, workers: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ids = self.containers("worker");
            let healthy = ids.iter().filter(|id| self.health(id) == "healthy").count();
            let serve_ok = self
                .containers("serve")
                .iter()
                .all(|id| self.health(id) == "healthy");
            let registered: usize = self
                .redis_cli(&["ZCARD", "graflow:workers"])
                .trim()
                .parse()
                .unwrap_or(0);
            if healthy >= workers && registered >= workers && serve_ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the stack is not healthy after 90 s ({healthy}/{workers} workers healthy, \
                 {registered} registered, serve healthy: {serve_ok}):\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Wait (at most 90 s) until container `id` reports healthy again.
    pub fn wait_container_healthy(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.health(id) != "healthy" {
            assert!(
                Instant::now() < deadline,
                "{id} is not healthy after 90 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every service's log (for failure messages).
    pub fn logs(&self) -> String {
        let out = self.compose(&["logs", "--no-color", "--tail", "60"], 60);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `graflow run /flows/FILE --json ARGS…` in a `graflow` container of the stack, in the
    /// background: its events arrive on the returned run as they are printed.
    pub fn spawn_run(&self, file: &str, args: &[&str]) -> Run {
        let path = format!("/flows/{file}");
        let mut all = vec![
            "run",
            "--rm",
            "-T",
            "graflow",
            "run",
            path.as_str(),
            "--json",
        ];
        all.extend_from_slice(args);
        let mut cmd = self.compose_cmd(&all);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        let _ = tx.send(v.clone());
                        all.push(v);
                    }
                }
            }
            all
        });
        Run {
            child: Some(child),
            events: rx,
            reader: Some(reader),
        }
    }

    /// `graflow run /flows/FILE --json` in the stack, to its end: exit code, events, stderr.
    pub fn run(&self, file: &str) -> (Option<i32>, Vec<Value>, String) {
        self.spawn_run(file, &[]).finish(Duration::from_secs(300))
    }

    /// The same file run locally by the binary under test: exit code, events, stderr.
    pub fn run_local(&self, file: &str) -> (Option<i32>, Vec<Value>, String) {
        let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(bin());
        cmd.args([
            "run",
            &self.flows.path().join(file).to_string_lossy(),
            "--json",
        ])
        .current_dir(self.flows.path())
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", state.path())
        .env_remove("GRAFLOW_BACKEND");
        let out =
            output(&mut cmd, 300).unwrap_or_else(|| panic!("the local run of {file} did not end"));
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (
            out.status.code(),
            events,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Stop and remove everything; returns what is still left with the project's label.
    pub fn down(&mut self) -> Vec<String> {
        self.down = true;
        let _ = output(
            &mut self.compose_cmd(&["down", "-v", "--remove-orphans", "-t", "5"]),
            120,
        );
        remove_by_label(&self.project);
        leftovers(&self.project)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !self.down {
            let _ = self.down();
        }
    }
}

fn label(project: &str) -> String {
    format!("label=com.docker.compose.project={project}")
}

/// Force-remove the project's containers, networks and volumes (what `down` missed: a
/// `compose run` container whose client was killed, say).
fn remove_by_label(project: &str) {
    let filter = label(project);
    let list = |args: &[&str]| -> Vec<String> {
        output(Command::new("docker").args(args), 60)
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = list(&["ps", "-aq", "--filter", &filter]);
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        let _ = output(Command::new("docker").args(&args), 120);
    }
    let networks = list(&["network", "ls", "-q", "--filter", &filter]);
    for n in &networks {
        let _ = output(Command::new("docker").args(["network", "rm", n]), 60);
    }
    let volumes = list(&["volume", "ls", "-q", "--filter", &filter]);
    for v in &volumes {
        let _ = output(Command::new("docker").args(["volume", "rm", "-f", v]), 60);
    }
}

/// Containers, networks and volumes still carrying the project's label.
fn leftovers(project: &str) -> Vec<String> {
    let filter = label(project);
    let mut out = Vec::new();
    for (what, args) in [
        ("container", vec!["ps", "-aq", "--filter", filter.as_str()]),
        (
            "network",
            vec!["network", "ls", "-q", "--filter", filter.as_str()],
        ),
        (
            "volume",
            vec!["volume", "ls", "-q", "--filter", filter.as_str()],
        ),
    ] {
        if let Some(o) = output(Command::new("docker").args(&args), 60) {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                out.push(format!("{what} {id}"));
            }
        }
    }
    out
}

fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_readable(&e.path());
            } else {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644));
            }
        }
    }
}

/// Copy the files and folders under `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .filter_map(Result::ok)
    {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{e}"));
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// A run in progress in the stack.
pub struct Run {
    child: Option<Child>,
    events: mpsc::Receiver<Value>,
    reader: Option<std::thread::JoinHandle<Vec<Value>>>,
}

impl Run {
    /// Wait (at most `limit`) for an event that `pick` accepts.
    pub fn wait_for(&self, limit: Duration, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if pick(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("the event did not come within {limit:?}"),
            }
        }
    }

    /// Whether `run_finished` arrived (among the events not yet waited for).
    pub fn has_finished(&self) -> bool {
        self.events.try_iter().any(|e| e["event"] == "run_finished")
    }

    /// Wait (at most `limit`) for the run to end: exit code, every event, stderr.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, Vec<Value>, String) {
        let Some(mut child) = self.child.take() else {
            return (None, Vec::new(), String::new());
        };
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let events = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        (status, events, err)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
