//! Human in the loop end to end with the real binary: a run pauses on an unanswered request
//! (exit 3), `graflow serve` lists it over REST, bad answers get 4xx, a good one lets
//! `graflow resume` finish without re-running earlier tasks; answers given during the wait
//! (from `graflow feedback respond` or a POST) are taken at once; parallel members wait for
//! their own answers; `channel_key` writes the answer to the channel. Webhooks: a local
//! receiver gets `feedback.requested`, its Standard Webhooks signature checks out with an
//! independent HMAC (Python's standard library), an altered body or a stale timestamp
//! does not, and a 500 is retried.

use crate::serve_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use serve_support::{Server, bin, event, events, graflow, starts, write};

/// A `graflow run --json` in progress; its stdout lines arrive with their arrival time.
struct LiveRun {
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<Value>,
}

impl LiveRun {
    fn start(dir: &Path, file: &str, env: &[(&str, &str)]) -> LiveRun {
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir)
            .args(["run", "--json", file])
            .env("NO_COLOR", "1")
            .env("GRAFLOW_STATE_DIR", dir.join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send((Instant::now(), v)).is_err()
                {
                    break;
                }
            }
        });
        LiveRun {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next event (in order) that `pred` accepts, and when it arrived.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> (Instant, Value) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok((at, v)) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return (at, v);
                    }
                }
                Err(_) => panic!("no {what} within 30 s; saw {:?}", self.seen),
            }
        }
    }

    /// Wait for the process; its exit code and every event.
    fn finish(mut self) -> (Option<i32>, Vec<Value>) {
        let status = self.child.wait().unwrap();
        while let Ok((_, v)) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(v);
        }
        (status.code(), self.seen)
    }
}

fn requested(task: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["event"] == "feedback_requested" && e["task"] == task
}

fn run_finished(evs: &[Value]) -> &Value {
    event(evs, "run_finished").expect("a run_finished event")
}

const RELEASE: &str = r###"
Workflow(
    name: "release",
    flow: "prep >> approve >> pick >> after",
    notify: [],
    tasks: {
        "prep": Task(run: Script(r#"ctx.append("prep_runs", ctx.cycle); "built""#)),
        "approve": Task(run: Approval(prompt: "Ship it?", timeout: "1s", channel_key: "approved")),
        "pick": Task(run: Feedback(kind: Selection, prompt: "Where?", options: ["eu", "us"], timeout: "1s", channel_key: "region")),
        "after": Task(run: Script(r#"ctx.append("after_runs", 1); `${ctx.get("approved")} ${ctx.get("region")}`"#)),
    },
)
"###;

/// The checkpoint a paused run names.
fn checkpoint_of(evs: &[Value]) -> String {
    let fin = run_finished(evs);
    assert_eq!(fin["status"], "paused", "{fin}");
    fin["checkpoint"]
        .as_str()
        .or_else(|| event(evs, "checkpoint_saved").and_then(|e| e["path"].as_str()))
        .expect("a paused run names its checkpoint")
        .to_string()
}

#[test]
fn a_paused_run_is_answered_over_rest_and_resumed_without_rerunning_earlier_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "release.ron", RELEASE);

    // 1. Nobody answers within the timeout: the run pauses (exit 3) into a checkpoint.
    let out = graflow(d, &["run", "--json", "release.ron"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let ckpt = checkpoint_of(&evs);
    assert_eq!(starts(&evs, "prep"), 1);
    assert_eq!(starts(&evs, "after"), 0);

    // 2. `graflow serve` in the same state lists it, with the checkpoint to resume.
    let server = Server::start(d, &[], &[]);
    let list = server.get("/api/feedback").json();
    assert_eq!(list["count"], 1, "{list}");
    let req = &list["requests"][0];
    assert_eq!(req["task"], "approve");
    assert_eq!(req["kind"], "approval");
    assert_eq!(req["status"], "pending");
    assert_eq!(req["checkpoint"], ckpt.as_str());
    let id = req["id"].as_str().unwrap().to_string();
    let respond = format!("/api/feedback/{id}/respond");

    // 3. Mistyped and ill-fitting answers are refused with what is wrong.
    let r = server.post_json(&respond, r#"{"aproved": true}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `aproved`")
    );
    let r = server.post_json(&respond, r#"{"approved": "yes"}"#);
    assert_eq!(r.status, 400);
    let r = server.post_json(&respond, r#"{"text": "sure"}"#);
    assert_eq!(r.status, 422);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("'text' does not belong")
    );
    assert_eq!(
        server.get(&format!("/api/feedback/{id}")).json()["response"],
        Value::Null
    );

    // 4. A good answer.
    let r = server.post_json(&respond, r#"{"approved": true, "responded_by": "qa"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["approved"], true);

    // 5. Resume: prep does not run again; approve gets the stored answer at once; pick asks
    //    and pauses again.
    let out = graflow(d, &["resume", "--json", &ckpt]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    assert_eq!(starts(&evs, "prep"), 0, "prep ran again");
    assert!(
        evs.iter()
            .any(|e| e["event"] == "feedback_answered" && e["id"] == id.as_str())
    );
    assert!(
        !evs.iter()
            .any(|e| e["event"] == "feedback_requested" && e["task"] == "approve")
    );
    let ckpt2 = checkpoint_of(&evs);
    let pick = server.get("/api/feedback").json()["requests"][0].clone();
    assert_eq!(pick["task"], "pick");
    let respond = format!("/api/feedback/{}/respond", pick["id"].as_str().unwrap());
    let r = server.post_json(&respond, r#"{"selected": "mars"}"#);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["detail"],
        "'mars' is not one of the options [eu, us]"
    );
    assert_eq!(
        server.post_json(&respond, r#"{"selected": "us"}"#).status,
        200
    );

    // 6. Resume again: success; every earlier task ran once; both answers are in the channel.
    let out = graflow(d, &["resume", "--json", &ckpt2]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    assert_eq!(starts(&evs, "prep"), 0);
    assert_eq!(
        starts(&evs, "approve"),
        0,
        "approve ran again after its pause was over"
    );
    let fin = run_finished(&evs);
    assert_eq!(fin["status"], "succeeded");
    assert_eq!(fin["result"], "true us");
    assert_eq!(
        fin["channel"]["prep_runs"],
        json!([1]),
        "prep executed once in all"
    );
    assert_eq!(fin["channel"]["after_runs"], json!([1]));
    assert_eq!(fin["channel"]["approved"], true);
    assert_eq!(fin["channel"]["region"], "us");
    assert_eq!(
        fin["channel"]["approved.__feedback_response__"]["responded_by"],
        "qa"
    );
    assert_eq!(fin["results"]["approve"]["approved"], true);
}

const WAIT: &str = r#"
Workflow(
    name: "wait",
    flow: "first >> ask >> done",
    notify: [],
    tasks: {
        "first": Task(run: Value(1)),
        "ask": Task(run: Approval(prompt: "Go on?", timeout: "60s", channel_key: "ok")),
        "done": Task(run: Value("finished")),
    },
)
"#;

#[test]
fn an_answer_from_another_process_during_the_wait_is_taken_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "wait.ron", WAIT);
    let started = Instant::now();
    let mut run = LiveRun::start(d, "wait.ron", &[]);
    let (_, asked) = run.wait_for("feedback_requested", requested("ask"));
    let id = asked["id"].as_str().unwrap();
    let out = graflow(d, &["feedback", "respond", id, "--approve", "--by", "cli"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, evs) = run.finish();
    assert_eq!(code, Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run waited for its 60 s timeout instead of taking the answer"
    );
    assert!(event(&evs, "checkpoint_saved").is_none());
    let fin = run_finished(&evs);
    assert_eq!(fin["status"], "succeeded");
    assert_eq!(fin["result"], "finished");
    assert_eq!(
        fin["channel"]["ok"], true,
        "channel_key wrote the answer: {fin}"
    );
    assert_eq!(
        fin["channel"]["ok.__feedback_response__"]["responded_by"],
        "cli"
    );
}

#[test]
fn an_answer_posted_during_the_wait_continues_the_run_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 9;
    let flow: Vec<String> = (1..=n).map(|i| format!("a{i}")).collect();
    let tasks: String = flow
        .iter()
        .map(|t| format!(r#""{t}": Task(run: Approval(prompt: "{t}?", timeout: "60s")),"#))
        .collect();
    write(
        d,
        "chain.ron",
        &format!(
            r#"Workflow(name: "chain", flow: "{} >> end", notify: [], tasks: {{ {tasks} "end": Task(run: Value(0)) }})"#,
            flow.join(" >> ")
        ),
    );
    let server = Server::start(d, &[], &[]);
    let mut run = LiveRun::start(d, "chain.ron", &[]);
    let mut to_answered = Vec::new();
    let mut to_next_task = Vec::new();
    for (i, task) in flow.iter().enumerate() {
        let (_, asked) = run.wait_for("feedback_requested", |e| {
            e["event"] == "feedback_requested" && e["task"] == task.as_str()
        });
        let id = asked["id"].as_str().unwrap().to_string();
        // Answer at different points of the backend's poll cycle.
        thread::sleep(Duration::from_millis((i as u64 * 13) % 40));
        let r = server.post_json(
            &format!("/api/feedback/{id}/respond"),
            r#"{"approved": true}"#,
        );
        let posted = Instant::now();
        assert_eq!(r.status, 200, "{}", r.body);
        let (answered, _) = run.wait_for("feedback_answered", |e| {
            e["event"] == "feedback_answered" && e["id"] == id.as_str()
        });
        let next = if i + 1 < n {
            flow[i + 1].clone()
        } else {
            "end".into()
        };
        let (started, _) = run.wait_for("the next task", |e| {
            e["event"] == "task_started" && e["task"] == next.as_str()
        });
        to_answered.push(answered.saturating_duration_since(posted).as_secs_f64() * 1e3);
        to_next_task.push(started.saturating_duration_since(posted).as_secs_f64() * 1e3);
    }
    let (code, evs) = run.finish();
    assert_eq!(code, Some(0));
    assert_eq!(run_finished(&evs)["status"], "succeeded");
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        json!({"median_ms": v[v.len() / 2], "max_ms": v[v.len() - 1]})
    };
    // A measurement, not an assertion (targets are checked by reading these lines).
    println!(
        "{}",
        json!({
            "bench": "feedback_answer_to_continue",
            "backend": "files",
            "samples": n,
            "post_to_feedback_answered": stats(&mut to_answered),
            "post_to_next_task_started": stats(&mut to_next_task),
        })
    );
}

const PARALLEL: &str = r###"
Workflow(
    name: "parallel",
    flow: "start >> reviews >> done",
    notify: [],
    groups: {"reviews": Group(members: "legal | security")},
    tasks: {
        "start": Task(run: Script(r##"ctx.append("start_runs", 1); 0"##)),
        "legal": Task(run: Approval(prompt: "Legal OK?", timeout: "LEGAL", channel_key: "legal_ok")),
        "security": Task(run: Approval(prompt: "Security OK?", timeout: "SECURITY", channel_key: "security_ok")),
        "done": Task(run: Script(r##"`${ctx.get("legal_ok")} ${ctx.get("security_ok")}`"##)),
    },
)
"###;

#[test]
fn parallel_members_each_wait_for_their_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "parallel.ron",
        &PARALLEL.replace("LEGAL", "60s").replace("SECURITY", "60s"),
    );
    let server = Server::start(d, &[], &[]);
    let mut run = LiveRun::start(d, "parallel.ron", &[]);
    // The members ask in either order.
    let mut asked = BTreeMap::new();
    while asked.len() < 2 {
        let (_, e) = run.wait_for("both members ask", |e| e["event"] == "feedback_requested");
        asked.insert(e["task"].as_str().unwrap().to_string(), e);
    }
    let (legal, security) = (asked["legal"].clone(), asked["security"].clone());
    assert_ne!(legal["id"], security["id"]);
    assert_eq!(server.get("/api/feedback").json()["count"], 2);
    for (req, body) in [
        (&security, r#"{"approved": true, "reason": "scanned"}"#),
        (&legal, r#"{"approved": true}"#),
    ] {
        let id = req["id"].as_str().unwrap();
        let r = server.post_json(&format!("/api/feedback/{id}/respond"), body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let (code, evs) = run.finish();
    assert_eq!(code, Some(0));
    let fin = run_finished(&evs);
    assert_eq!(fin["result"], "true true");
    assert_eq!(fin["results"]["security"]["reason"], "scanned");
    assert_eq!(server.get("/api/feedback").json()["count"], 0);
}

#[test]
fn a_member_timing_out_pauses_the_run_and_the_answered_member_is_not_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "parallel.ron",
        &PARALLEL.replace("LEGAL", "60s").replace("SECURITY", "2s"),
    );
    let mut run = LiveRun::start(d, "parallel.ron", &[]);
    let (_, legal) = run.wait_for("legal asks", requested("legal"));
    let legal_id = legal["id"].as_str().unwrap().to_string();
    let out = graflow(d, &["feedback", "respond", &legal_id, "--approve"]);
    assert_eq!(out.status.code(), Some(0));
    let (code, evs) = run.finish();
    assert_eq!(code, Some(3), "security's timeout pauses the whole run");
    let ckpt = checkpoint_of(&evs);

    let server = Server::start(d, &[], &[]);
    let list = server.get("/api/feedback").json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["requests"][0]["task"], "security");
    let id = list["requests"][0]["id"].as_str().unwrap();
    assert_eq!(
        server
            .post_json(
                &format!("/api/feedback/{id}/respond"),
                r#"{"approved": true}"#
            )
            .status,
        200
    );
    let out = graflow(d, &["resume", "--json", &ckpt]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    assert_eq!(starts(&evs, "start"), 0);
    assert_eq!(starts(&evs, "legal"), 0, "a finished member ran again");
    assert!(!evs.iter().any(|e| e["event"] == "feedback_requested"));
    let fin = run_finished(&evs);
    assert_eq!(fin["result"], "true true");
    assert_eq!(fin["channel"]["start_runs"], json!([1]));
}

// ---------------------------------------------------------------------------------------
// Webhooks

const SECRET: &str = "whsec_Z3JhZmxvdy10ZXN0LXNpZ25pbmcta2V5LTAxMjM0NTY3ODk=";

/// Verifies a Standard Webhooks delivery with Python's hmac/hashlib/base64 — an HMAC
/// implementation independent of the one in graflow.
const VERIFY_PY: &str = r#"
import base64, hashlib, hmac, json, sys
d = json.load(sys.stdin)
secret = d["secret"]
if secret.startswith("whsec_"):
    secret = secret[len("whsec_"):]
key = base64.b64decode(secret)
ts = int(d["timestamp"])
if abs(d["now"] - ts) > 5 * 60:
    print("stale timestamp")
    sys.exit(1)
signed = (d["msg_id"] + "." + str(ts) + ".").encode() + d["body"].encode()
expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
for part in d["signature"].split():
    version, _, sig = part.partition(",")
    if version == "v1" and hmac.compare_digest(sig, expected):
        print("ok")
        sys.exit(0)
print("bad signature")
sys.exit(1)
"#;

/// Run the Python verifier; its verdict.
fn verify(msg_id: &str, timestamp: &str, signature: &str, body: &str, now: u64) -> String {
    let input = json!({
        "secret": SECRET, "msg_id": msg_id, "timestamp": timestamp,
        "signature": signature, "body": body, "now": now,
    });
    let mut py = Command::new("python3")
        .args(["-c", VERIFY_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    py.stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = py.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One delivery the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    at: Instant,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A webhook receiver on 127.0.0.1: answers 500 to the first delivery and 200 afterwards,
/// until `stop` is set.
fn receiver(stop: Arc<AtomicBool>) -> (u16, thread::JoinHandle<Vec<Delivery>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut got = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let (stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(_) => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = BTreeMap::new();
            let mut first = String::new();
            if reader.read_line(&mut first).unwrap_or(0) == 0 {
                continue;
            }
            headers.insert(":request".to_string(), first.trim().to_string());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if got.is_empty() {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            got.push(Delivery {
                at: Instant::now(),
                headers,
                body: String::from_utf8_lossy(&body).to_string(),
            });
            let mut stream = stream;
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
        got
    });
    (port, handle)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn webhooks_are_signed_verifiable_independently_and_retried_after_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stop = Arc::new(AtomicBool::new(false));
    let (port, handle) = receiver(stop.clone());
    write(
        d,
        "hook.ron",
        &format!(
            r#"Workflow(
    name: "hooked",
    flow: "ask",
    notify: [Webhook(url: "http://127.0.0.1:{port}/hook", secret: "{SECRET}", retries: 2, timeout: "2s", headers: {{"X-Team": "ops"}})],
    tasks: {{
        "ask": Task(run: Approval(prompt: "Deploy <v2>?", timeout: "3s")),
    }},
)"#
        ),
    );
    let run = LiveRun::start(
        d,
        "hook.ron",
        &[("GRAFLOW_SERVE_URL", "http://127.0.0.1:8765")],
    );
    let (code, evs) = run.finish();
    assert_eq!(code, Some(3));
    let id = event(&evs, "feedback_requested").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    stop.store(true, Ordering::Relaxed);
    let got = handle.join().unwrap();

    let requested: Vec<&Delivery> = got
        .iter()
        .filter(|d| d.body.contains("\"feedback.requested\""))
        .collect();
    assert!(requested.len() >= 2, "the 500 was not retried: {got:#?}");
    let (first, retry) = (requested[0], requested[1]);
    assert_eq!(first.headers[":request"], "POST /hook HTTP/1.1");
    assert_eq!(first.headers["content-type"], "application/json");
    assert_eq!(first.headers["x-team"], "ops");
    assert_eq!(
        first.headers["webhook-id"], retry.headers["webhook-id"],
        "a retry keeps its id"
    );
    assert_eq!(first.body, retry.body);
    assert!(
        retry.at.duration_since(first.at) >= Duration::from_millis(300),
        "the retry backs off"
    );

    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["type"], "feedback.requested");
    assert_eq!(body["feedback_id"], id.as_str());
    assert_eq!(body["task"], "ask");
    assert_eq!(body["kind"], "approval");
    assert_eq!(body["prompt"], "Deploy <v2>?");
    assert_eq!(
        body["url"],
        format!("http://127.0.0.1:8765/ui/feedback/{id}")
    );
    assert_eq!(body["timeout"], 3.0);
    assert!(body["run_id"].is_string() && body["created_at"].is_string());

    let now = unix_now();
    for delivery in [first, retry] {
        let h = &delivery.headers;
        let (msg_id, ts, sig) = (
            &h["webhook-id"],
            &h["webhook-timestamp"],
            &h["webhook-signature"],
        );
        assert!(sig.starts_with("v1,"), "{sig}");
        assert_eq!(verify(msg_id, ts, sig, &delivery.body, now), "ok");
    }
    let h = &first.headers;
    let (msg_id, ts, sig) = (
        &h["webhook-id"],
        &h["webhook-timestamp"],
        &h["webhook-signature"],
    );
    let altered = first.body.replace("Deploy <v2>?", "Deploy <v3>?");
    assert_ne!(altered, first.body);
    assert_eq!(verify(msg_id, ts, sig, &altered, now), "bad signature");
    assert_eq!(
        verify("msg_other", ts, sig, &first.body, now),
        "bad signature"
    );
    // The genuine delivery, checked six minutes later, is too old to trust.
    let sent: u64 = ts.parse().unwrap();
    assert_eq!(
        verify(msg_id, ts, sig, &first.body, sent + 6 * 60),
        "stale timestamp"
    );
}
