//! `Docker` tasks against the real Docker engine: streamed output, the task context in the
//! container, the result rules, failures, a missing image, an unreachable engine, containers
//! killed and removed on timeout and cancellation, and Docker tasks in a parallel group loaded
//! from a workflow file.
//!
//! Nothing is pulled: the test image is imported once from a root filesystem holding the
//! host's static busybox (`busybox-static`), tagged by the binary's hash and kept for later
//! runs.

use crate::services::Service;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptionsBuilder, ListContainersOptionsBuilder};
use futures::StreamExt;
use graflow_engine::file::load_str;
use graflow_engine::handler::docker::{
    DockerHandler, DockerRuntime, DockerSpec, LABEL_RUN_ID, wait_for_cleanups,
};
use graflow_engine::handler::{HandlerEnv, Runtimes, SpecError};
use graflow_engine::prelude::*;
use graflow_engine::{LogStream, WorkflowBuilder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Applets the test image links to busybox.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "env", "sleep", "printf", "test", "[", "true", "false", "ls", "wc",
    "head", "tail", "grep", "sed", "mkdir", "rm", "touch", "id",
];

/// The test image's name, imported at first use (once per test binary) unless present.
fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(import_image())
        })
        .join()
        .expect("image import thread")
    })
}

async fn import_image() -> String {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is missing: install busybox-static to run the Docker tests");
    let hash = format!("{:x}", Sha256::digest(&busybox));
    let repo = "graflow-test-busybox";
    let tag = &hash[..16];
    let name = format!("{repo}:{tag}");
    let docker = docker().await;
    if docker.inspect_image(&name).await.is_ok() {
        return name;
    }
    let root = TempDir::new("rootfs");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("busybox"), &busybox).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("busybox"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    for applet in APPLETS {
        symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-cf", "-", "."])
        .output()
        .expect("run tar");
    assert!(tar.status.success(), "tar failed");
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec!["ENV PATH=/bin".into(), "CMD [\"sh\"]".into()])
        .build();
    let mut progress = docker.create_image(
        Some(options),
        Some(bollard::body_full(tar.stdout.into())),
        None,
    );
    while let Some(p) = progress.next().await {
        p.expect("importing the test image");
    }
    name
}

/// A client of the local Docker engine.
async fn docker() -> Docker {
    Docker::connect_with_unix_defaults()
        .expect("the Docker socket")
        .negotiate_version()
        .await
        .expect("the Docker engine answers")
}

/// Containers of run `run_id` (any state).
async fn containers_of(run_id: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_RUN_ID}={run_id}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker()
        .await
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Wait until run `run_id` has no container left; panics after 15 s.
async fn assert_no_container_left(run_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = containers_of(run_id).await;
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "containers of {run_id} left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until run `run_id` has a container; panics after 15 s.
async fn wait_for_a_container(run_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while containers_of(run_id).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no container of {run_id} started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "graflow-docker-test-{what}-{}-{}-{:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique run id.
fn run_id(test: &str) -> String {
    format!("docker-{test}-{:08x}", rand::random::<u32>())
}

/// A spec of the test image running `sh -c line`.
fn shell(line: &str) -> DockerSpec {
    DockerSpec::new(image()).cmd(["sh", "-c", line])
}

fn task(id: &str, spec: DockerSpec, env: &HandlerEnv) -> TaskDef {
    TaskDef::new(
        id,
        Arc::new(DockerHandler::new(spec, env).expect("a valid Docker spec")),
    )
}

fn single(id: &str, spec: DockerSpec, env: &HandlerEnv) -> WorkflowBuilder {
    let mut wf = Workflow::builder("docker");
    let t = wf.add(task(id, spec, env));
    wf.flow(t);
    wf
}

/// Run `wf` as `run_id` and collect its events.
async fn run_as(mut wf: WorkflowBuilder, run_id: &str) -> (RunOutcome, Vec<RunEvent>) {
    let wf = Arc::new(wf.build().expect("workflow builds"));
    let mut handle = Engine::new().start(wf, RunOptions::new().run_id(run_id).with_events());
    let mut rx = handle.take_events().expect("events requested");
    let outcome = handle.wait().await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

fn error_of(outcome: &RunOutcome) -> String {
    outcome
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

fn logs(events: &[RunEvent], stream: LogStream) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskLog {
                stream: s, line, ..
            } if *s == stream => Some(line.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn output_streams_line_by_line_in_order() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("stream");
    let line = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; sleep 1; echo last";
    let wf = Arc::new(single("talk", shell(line), &env).build().unwrap());
    let mut handle = Engine::new().start(wf, RunOptions::new().run_id(&id).with_events());
    let mut rx = handle.take_events().unwrap();
    let mut events = Vec::new();
    let mut seen_out5 = None;
    while let Some(e) = rx.recv().await {
        if let EventKind::TaskLog { line, .. } = &e.kind
            && line == "out5"
        {
            seen_out5 = Some(Instant::now());
        }
        let last = matches!(e.kind, EventKind::RunFinished { .. });
        events.push(e);
        if last {
            break;
        }
    }
    let finished = Instant::now();
    let outcome = handle.wait().await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        logs(&events, LogStream::Stdout),
        ["out1", "out2", "out3", "out4", "out5", "last"]
    );
    assert_eq!(
        logs(&events, LogStream::Stderr),
        ["err1", "err2", "err3", "err4", "err5"]
    );
    let early = finished - seen_out5.expect("out5 was logged");
    assert!(
        early >= Duration::from_millis(700),
        "out5 arrived only {early:?} before the end: not streamed"
    );
    assert_eq!(outcome.results["talk"], json!("last"));
    assert_no_container_left(&id).await;
}

#[tokio::test]
async fn the_container_sees_its_identity_inputs_env_and_the_context() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("env");
    let mut wf = Workflow::builder("env");
    let prev = wf.add(TaskDef::new(
        "prev",
        Arc::new(graflow_engine::handler::builtin::ValueHandler(
            json!({"rows": [1, 2]}),
        )),
    ));
    let line = r#"
        test -S "$GRAFLOW_SOCKET" && sock=yes || sock=no
        printf '{"run":"%s","task":"%s","cycle":%s,"attempt":%s,"data":%s,"inputs":%s,
                 "sock":"%s","socket":"%s","token_len":%s,"bin":"%s","result_file":"%s",
                 "greeting":"%s","pwd":"%s"}' \
          "$GRAFLOW_RUN_ID" "$GRAFLOW_TASK_ID" "$GRAFLOW_CYCLE" "$GRAFLOW_ATTEMPT" \
          "$GRAFLOW_DATA" "$GRAFLOW_INPUTS" "$sock" "$GRAFLOW_SOCKET" "${#GRAFLOW_TOKEN}" \
          "$GRAFLOW_BIN" "$GRAFLOW_RESULT_FILE" "$GREETING" "$(pwd)" > "$GRAFLOW_RESULT_FILE"
        echo "this line is not the result"
    "#;
    let mut spec = shell(line).env("GREETING", "hello from the task");
    spec.workdir = Some("/tmp".into());
    let show = wf.add(task("show", spec, &env));
    wf.flow(prev >> show);
    let (outcome, _) = run_as(wf, &id).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let r = &outcome.results["show"];
    assert_eq!(r["run"], json!(id));
    assert_eq!(r["task"], "show");
    assert_eq!(r["cycle"], 1);
    assert_eq!(r["attempt"], 0);
    assert_eq!(r["data"], Value::Null);
    assert_eq!(r["inputs"], json!({"prev": {"rows": [1, 2]}}));
    assert_eq!(r["sock"], "yes");
    assert_eq!(r["socket"], "/graflow/ctx.sock");
    assert_eq!(r["token_len"], 32);
    assert_eq!(r["bin"], "", "the host's graflow cannot run in a container");
    assert_eq!(r["result_file"], "/graflow/exec/result");
    assert_eq!(r["greeting"], "hello from the task");
    assert_eq!(r["pwd"], "/tmp");
    assert_no_container_left(&id).await;
}

#[tokio::test]
async fn large_inputs_go_to_a_mounted_file() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("large");
    let big = "x".repeat(100 * 1024);
    let mut wf = Workflow::builder("large");
    let prev = wf.add(TaskDef::new(
        "prev",
        Arc::new(graflow_engine::handler::builtin::ValueHandler(json!(big))),
    ));
    let line = r#"
        test -z "$GRAFLOW_INPUTS" || { echo "GRAFLOW_INPUTS should be unset" >&2; exit 1; }
        printf '{"file":"%s","bytes":%s}' "$GRAFLOW_INPUTS_FILE" \
          "$(wc -c < "$GRAFLOW_INPUTS_FILE")"
    "#;
    let show = wf.add(task("show", shell(line), &env));
    wf.flow(prev >> show);
    let (outcome, _) = run_as(wf, &id).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let expected = serde_json::to_string(&json!({"prev": big})).unwrap().len();
    assert_eq!(
        outcome.results["show"],
        json!({"file": "/graflow/exec/inputs.json", "bytes": expected})
    );
}

async fn result_of(line: &str) -> Value {
    let env = HandlerEnv::default();
    let id = run_id("result");
    let (outcome, _) = run_as(single("t", shell(line), &env), &id).await;
    assert!(outcome.succeeded(), "{line}: {:?}", outcome.error);
    outcome.results["t"].clone()
}

#[tokio::test]
async fn result_rules() {
    needs!(Service::Docker);
    // The last non-empty stdout line, as JSON when it parses.
    assert_eq!(
        result_of("echo first; echo '{\"n\": 3}'; echo; echo").await,
        json!({"n": 3})
    );
    // Else as a string.
    assert_eq!(
        result_of("echo one; echo '  two words  '").await,
        json!("two words")
    );
    // A last line without a newline counts.
    assert_eq!(result_of("echo one; printf two").await, json!("two"));
    // Nothing printed: null.
    assert_eq!(result_of("true").await, Value::Null);
    // The result file wins over stdout.
    assert_eq!(
        result_of("echo '[1,2]' > \"$GRAFLOW_RESULT_FILE\"; echo ignored").await,
        json!([1, 2])
    );
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_its_status_and_stderr() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("fail");
    let line = "echo progress; echo 'first problem' >&2; echo 'disk full' >&2; exit 3";
    let (outcome, events) = run_as(single("bad", shell(line), &env), &id).await;
    assert!(!outcome.succeeded());
    assert_eq!(
        error_of(&outcome),
        "task 'bad' failed: container exited with status 3; stderr:\nfirst problem\ndisk full"
    );
    assert_eq!(logs(&events, LogStream::Stdout), ["progress"]);
    assert_no_container_left(&id).await;
}

#[tokio::test]
async fn a_missing_image_is_a_clear_error() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("missing");
    let spec = DockerSpec::new("graflow-test-no-such-image:never");
    let (outcome, _) = run_as(single("t", spec, &env), &id).await;
    let e = error_of(&outcome);
    assert!(
        e.contains(
            "image graflow-test-no-such-image:never is not available locally; build or load \
             it (images are never pulled)"
        ),
        "{e}"
    );
    assert!(containers_of(&id).await.is_empty());
}

#[tokio::test]
async fn a_missing_program_is_named() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("noprog");
    let spec = DockerSpec::new(image()).cmd(["no-such-program"]);
    let (outcome, _) = run_as(single("t", spec, &env), &id).await;
    let e = error_of(&outcome);
    assert!(e.contains("no-such-program"), "{e}");
    assert_no_container_left(&id).await;
}

#[tokio::test]
async fn an_unreachable_engine_is_named() {
    let runtimes = Runtimes {
        docker: DockerRuntime::with_host("unix:///nonexistent/graflow-test-docker.sock"),
        ..Runtimes::default()
    };
    let env = HandlerEnv::new("", runtimes);
    let spec = DockerSpec::new("anything:latest");
    let (outcome, _) = run_as(single("t", spec, &env), &run_id("unreachable")).await;
    let e = error_of(&outcome);
    assert!(
        e.contains(
            "cannot reach the Docker engine at unix:///nonexistent/graflow-test-docker.sock"
        ) && e.contains("does not exist"),
        "{e}"
    );
}

#[tokio::test]
async fn a_timeout_kills_and_removes_the_container() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("timeout");
    let mut wf = Workflow::builder("timeout");
    let t = wf.add(task("slow", shell("sleep 60"), &env).timeout(Duration::from_millis(1500)));
    wf.flow(t);
    let wf = Arc::new(wf.build().unwrap());
    let handle = Engine::new().start(wf, RunOptions::new().run_id(&id));
    wait_for_a_container(&id).await;
    let started = Instant::now();
    let outcome = handle.wait().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        error_of(&outcome).contains("timed out after 1s 500ms"),
        "{:?}",
        outcome.error
    );
    // Once the pending cleanups are done, the container is gone.
    let settled = tokio::task::spawn_blocking(|| wait_for_cleanups(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(settled, "container cleanups still pending after 15 s");
    assert_eq!(containers_of(&id).await, Vec::<String>::new());
}

#[tokio::test]
async fn cancelling_the_run_kills_and_removes_the_container() {
    needs!(Service::Docker);
    let env = HandlerEnv::default();
    let id = run_id("cancel");
    let wf = Arc::new(single("slow", shell("sleep 60"), &env).build().unwrap());
    let handle = Engine::new().start(wf, RunOptions::new().run_id(&id));
    wait_for_a_container(&id).await;
    handle.cancel("stop now");
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_no_container_left(&id).await;
}

/// One request on the context server, answered (on a blocking thread: the server runs on the
/// test's runtime).
async fn ask(socket: &Path, request: Value) -> Value {
    let socket = socket.to_path_buf();
    tokio::task::spawn_blocking(move || ask_now(&socket, request))
        .await
        .expect("the request thread")
}

fn ask_now(socket: &Path, request: Value) -> Value {
    let mut stream = UnixStream::connect(socket).expect("connect to the context server");
    let mut line = request.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).expect("a JSON answer")
}

/// The test image has no client of the protocol (busybox's `nc` has no Unix sockets), so the
/// test speaks it for the container, with the token the container was given, while the
/// container runs: the token belongs to this execution, and `set-result` decides its result.
#[tokio::test]
async fn the_containers_token_works_on_the_context_server() {
    needs!(Service::Docker);
    let dir = TempDir::new("ctx");
    let runtimes = Runtimes::default();
    let env = HandlerEnv::new(dir.path(), runtimes.clone());
    let id = run_id("ctx");
    let line = r#"
        test -S /graflow/ctx.sock || { echo "no socket" >&2; exit 1; }
        echo "token $GRAFLOW_TOKEN"
        i=0
        while [ ! -e /shared/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
        test -e /shared/go
    "#;
    let spec = shell(line).volume("shared:/shared");
    std::fs::create_dir(dir.path().join("shared")).unwrap();
    let wf = Arc::new(single("inside", spec, &env).build().unwrap());
    let mut handle = Engine::new().start(wf, RunOptions::new().run_id(&id).with_events());
    let mut rx = handle.take_events().unwrap();
    let token = loop {
        let e = rx
            .recv()
            .await
            .expect("the run goes on until the token is printed");
        if let EventKind::TaskLog { line, .. } = &e.kind
            && let Some(t) = line.strip_prefix("token ")
        {
            break t.to_string();
        }
    };
    let socket = runtimes
        .process
        .socket_path()
        .expect("the context server runs");
    let info = ask(&socket, json!({"token": token, "op": "info", "args": []})).await;
    assert_eq!(info["ok"], true, "{info}");
    assert_eq!(info["value"]["task_id"], "inside");
    assert_eq!(info["value"]["run_id"], json!(id));
    let set = ask(
        &socket,
        json!({"token": token, "op": "set-result", "args": [{"from": "the socket"}]}),
    )
    .await;
    assert_eq!(set["ok"], true, "{set}");
    std::fs::write(dir.path().join("shared/go"), "").unwrap();
    let outcome = handle.wait().await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["inside"], json!({"from": "the socket"}));
    let late = ask(&socket, json!({"token": token, "op": "info", "args": []})).await;
    assert_eq!(late["ok"], false, "the token expires with the execution");
    assert_no_container_left(&id).await;
}

#[tokio::test]
async fn docker_tasks_run_in_a_parallel_group_of_a_workflow_file() {
    needs!(Service::Docker);
    let dir = TempDir::new("group");
    std::fs::create_dir(dir.path().join("meet")).unwrap();
    std::fs::write(dir.path().join("meet/motto"), "side by side\n").unwrap();
    // Each member marks its arrival and waits for the other's mark: both finish only when
    // they run at the same time.
    let member = |me: &str, other: &str| {
        format!(
            r#"Task(run: Docker(
                image: "{image}",
                cmd: ["sh", "-c", "touch /meet/{me}; i=0; while [ ! -e /meet/{other} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; test -e /meet/{other} && echo \"{me} met {other}: $(cat /motto)\""],
                volumes: ["meet:/meet", "meet/motto:/motto:ro"],
            ), timeout: "60s")"#,
            image = image()
        )
    };
    let source = format!(
        r#"Workflow(
            name: "docker-group",
            flow: "start >> pair >> done",
            groups: {{"pair": Group(members: "left | right")}},
            tasks: {{
                "start": Task(run: Value(1)),
                "left": {left},
                "right": {right},
                "done": Task(run: Docker(image: "{image}", cmd: ["sh", "-c", "echo $GRAFLOW_INPUTS"])),
            }},
        )"#,
        left = member("left", "right"),
        right = member("right", "left"),
        image = image()
    );
    let path = dir.path().join("group.ron");
    std::fs::write(&path, &source).unwrap();
    let loaded = load_str(&source, &path, &Runtimes::default())
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics));
    let id = run_id("group");
    let outcome = Engine::new()
        .run(loaded.workflow.clone(), RunOptions::new().run_id(&id))
        .await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        outcome.results["left"],
        json!("left met right: side by side")
    );
    assert_eq!(
        outcome.results["right"],
        json!("right met left: side by side")
    );
    // The task after the group gets the group's results and its members' as its inputs.
    assert_eq!(
        outcome.results["done"]["pair"],
        json!({"left": "left met right: side by side", "right": "right met left: side by side"})
    );
    assert_no_container_left(&id).await;
}

#[test]
fn bad_specs_name_the_field() {
    let env = HandlerEnv::default();
    let err = |spec: DockerSpec| match DockerHandler::new(spec, &env) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(matches!(
        DockerHandler::new(DockerSpec::new(" "), &env),
        Err(SpecError::Field { field: "image", .. })
    ));
    assert!(err(DockerSpec::new(" ")).starts_with("image:"));
    assert!(err(DockerSpec::new("i").cmd(Vec::<String>::new())).starts_with("cmd:"));
    let mut s = DockerSpec::new("i");
    s.workdir = Some("rel".into());
    assert!(err(s).starts_with("workdir: 'rel' must be an absolute path"));
    assert!(err(DockerSpec::new("i").env("A=B", "c")).starts_with("env:"));
    let v = |text: &str| err(DockerSpec::new("i").volume(text));
    assert!(v("data").contains("is not a mount"), "{}", v("data"));
    assert!(v("data:rel").contains("absolute container path"));
    assert!(v("data:/d:rw:x").contains("is not a mount"));
    assert!(v("data:/d:wx").contains("mode 'wx'"));
    assert!(v(":/d").contains("no host path"));
    assert!(v("data:/graflow/x").contains("where the engine mounts"));
}

#[tokio::test]
async fn a_result_file_linked_to_a_host_file_is_refused() {
    needs!(Service::Docker);
    // A file of the host, outside anything mounted into the container.
    let secret = std::env::temp_dir().join(format!("graflow-secret-{}", std::process::id()));
    std::fs::write(&secret, "host secret").unwrap();
    let env = HandlerEnv::default();
    let id = run_id("link");
    for (line, expected) in [
        (
            format!("ln -s '{}' \"$GRAFLOW_RESULT_FILE\"", secret.display()),
            "symbolic link",
        ),
        (
            "ln -s /etc/shadow \"$GRAFLOW_RESULT_FILE\"".to_string(),
            "symbolic link",
        ),
        (
            "mkdir \"$GRAFLOW_RESULT_FILE\"".to_string(),
            "not a regular file",
        ),
    ] {
        let (outcome, _) = run_as(single("link", shell(&line), &env), &id).await;
        assert!(!outcome.succeeded(), "{line}");
        let error = error_of(&outcome);
        assert!(error.contains(expected), "{line}: {error}");
        assert!(!error.contains("host secret"));
    }
    let _ = std::fs::remove_file(&secret);
}
