//! `graflow serve`'s live events end to end, read by a real HTTP client (reqwest) over
//! 127.0.0.1: a run's events while it runs (gated step by step by the test, no sleeps), a
//! disconnect mid-run and a reconnect with `Last-Event-ID` (nothing lost, nothing repeated,
//! the stream ends after `run_finished`), feedback changes with resume and reset, the token,
//! bad ids, the stream cap, the live web pages, and the OpenAPI document walked against the
//! server's routes.

use crate::serve_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use serve_support::sse::{self, Stream};
use serve_support::{Server, bin, graflow, write};

const TOKEN: &str = "sse t0ken";
const AUTH: (&str, &str) = ("Authorization", "Bearer sse t0ken");
const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Each task waits for its gate file (made by the test) before it finishes.
const GATED: &str = r#"
Workflow(
    name: "gated",
    flow: "a >> b >> c",
    tasks: {
        "a": Task(run: Shell("for i in $(seq 1 600); do [ -e gate_a ] && echo a-done && exit 0; sleep 0.05; done; exit 1")),
        "b": Task(run: Shell("for i in $(seq 1 600); do [ -e gate_b ] && echo b-done && exit 0; sleep 0.05; done; exit 1")),
        "c": Task(run: Shell("for i in $(seq 1 600); do [ -e gate_c ] && exit 0; sleep 0.05; done; exit 1")),
    },
)
"#;

/// `graflow run --json FILE` in `dir` (state in `dir/state`), its stdout lines sent to the
/// receiver as they come.
fn run_json(dir: &Path, file: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .args(["run", "--json", file])
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    (child, rx)
}

/// `child`'s stdout lines, sent to the receiver as they come (by a thread of their own).
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The token header of `server`'s URL `path`.
fn url(server: &Server, path: &str) -> String {
    format!("{}{path}", server.url)
}

/// Read messages until one named `name` (returned with those before it).
async fn until(stream: &mut Stream, name: &str, got: &mut Vec<sse::Message>) {
    loop {
        let m = stream
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("the stream ended before {name}"));
        let done = m.event == name;
        got.push(m);
        if done {
            return;
        }
    }
}

#[test]
fn a_live_runs_events_stream_resume_after_a_disconnect_and_end_after_run_finished() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gated.ron", GATED);
    let server = Server::start(dir.path(), &[], &[("GRAFLOW_SERVE_TOKEN", TOKEN)]);
    let (mut child, lines) = run_json(dir.path(), "gated.ron");
    let first_line = lines.recv_timeout(WAIT).unwrap();
    let first: Value = serde_json::from_str(&first_line).unwrap();
    assert_eq!(first["event"], "run_started");
    let run = first["run_id"].as_str().unwrap().to_string();
    let gate = |name: &str| write(dir.path(), name, "");

    runtime().block_on(async {
        // The run is listed, still running.
        let list: Value = sse::get(&url(&server, "/api/runs"), &[AUTH])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["count"], 1, "{list}");
        let listed = &list["runs"][0];
        assert_eq!(listed["id"], run.as_str());
        assert_eq!(listed["workflow"], "gated");
        assert_eq!(listed["status"], "running");
        assert!(listed["started"].is_string() && listed["ended"].is_null());

        // First connection: the events so far, then live ones as the gates open.
        let events = url(&server, &format!("/api/runs/{run}/events"));
        let mut got = Vec::new();
        let mut s = Stream::open(&events, &[AUTH]).await;
        until(&mut s, "task_started", &mut got).await;
        assert_eq!(got[0].event, "run_started");
        gate("gate_a");
        until(&mut s, "task_succeeded", &mut got).await;
        until(&mut s, "task_started", &mut got).await;
        assert_eq!(got.last().unwrap().json()["task"], "b");
        // Disconnect mid-run; b finishes and c starts while nobody listens.
        drop(s);
        let last = got.last().unwrap().id.clone().unwrap();
        gate("gate_b");
        let mut printed = vec![first_line.clone()];
        loop {
            let line = lines.recv_timeout(WAIT).unwrap();
            printed.push(line.clone());
            if line.contains("\"task_started\"") && line.contains("\"c\"") {
                break;
            }
        }
        // Reconnect as an EventSource does: Last-Event-ID, the id of the last message read.
        let mut s = Stream::open(&events, &[AUTH, ("Last-Event-ID", &last)]).await;
        let mut again = Vec::new();
        until(&mut s, "task_started", &mut again).await;
        assert_eq!(again.last().unwrap().json()["task"], "c");
        gate("gate_c");
        until(&mut s, "run_finished", &mut again).await;
        assert!(
            s.next(WAIT).await.is_none(),
            "the stream ends after run_finished"
        );
        got.extend(again);

        // Nothing lost, nothing twice: ids 0, 1, 2, … and the data is the --json output.
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        printed.extend(lines.try_iter());
        let ids: Vec<String> = got.iter().map(|m| m.id.clone().unwrap()).collect();
        let expected: Vec<String> = (0..printed.len()).map(|i| i.to_string()).collect();
        assert_eq!(ids, expected, "every event once, in order");
        for (m, line) in got.iter().zip(&printed) {
            let printed: Value = serde_json::from_str(line).unwrap();
            assert_eq!(m.json(), printed, "message {:?}", m.id);
            assert_eq!(m.event, printed["event"].as_str().unwrap());
        }
        // The data is the recorded line byte for byte.
        let recorded = std::fs::read_to_string(
            dir.path()
                .join("state/runs")
                .join(format!("{run}.events.jsonl")),
        )
        .unwrap();
        let sent: Vec<&str> = got.iter().map(|m| m.data.as_str()).collect();
        assert_eq!(sent, recorded.lines().collect::<Vec<_>>());

        // After the end: a finished run from the start, and `?from=` where no header can be set.
        let mut all = Vec::new();
        let mut s = Stream::open(&events, &[AUTH]).await;
        until(&mut s, "run_finished", &mut all).await;
        assert_eq!(all.len(), got.len());
        let mut tail = Vec::new();
        let mut s = Stream::open(&format!("{events}?from=2"), &[AUTH]).await;
        until(&mut s, "run_finished", &mut tail).await;
        assert_eq!(tail[0].id.as_deref(), Some("3"));
        assert_eq!(tail.len(), got.len() - 3);
        // Resuming after the last event: 204, which stops an EventSource reconnecting.
        let end = (got.len() - 1).to_string();
        let r = sse::get(&events, &[AUTH, ("Last-Event-ID", &end)]).await;
        assert_eq!(r.status(), 204);

        let list: Value = sse::get(&url(&server, "/api/runs?limit=1"), &[AUTH])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["runs"][0]["status"], "succeeded");
        assert!(list["runs"][0]["ended"].is_string());
    });
}

/// A run that would take a minute: its process is killed in the middle.
const LONG: &str = r#"
Workflow(
    name: "long",
    flow: "a >> b",
    tasks: {
        "a": Task(run: Value(1)),
        "b": Task(run: Sleep("60s")),
    },
)
"#;

#[test]
fn a_run_whose_process_died_ends_its_stream_and_is_listed_stale() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "long.ron", LONG);
    let server = Server::start(dir.path(), &[], &[]);
    let (mut child, lines) = run_json(dir.path(), "long.ron");
    let first: Value = serde_json::from_str(&lines.recv_timeout(WAIT).unwrap()).unwrap();
    let run = first["run_id"].as_str().unwrap().to_string();
    let events = url(&server, &format!("/api/runs/{run}/events"));
    let listed_state = |state: &'static str| {
        let runs = url(&server, "/api/runs");
        async move {
            let list: Value = sse::get(&runs, &[]).await.json().await.unwrap();
            assert_eq!(list["runs"][0]["state"], state, "{list}");
            assert_eq!(list["runs"][0]["status"], "running", "{list}");
        }
    };

    runtime().block_on(async {
        let mut got = Vec::new();
        let mut s = Stream::open(&events, &[]).await;
        until(&mut s, "task_started", &mut got).await;
        until(&mut s, "task_started", &mut got).await;
        assert_eq!(got.last().unwrap().json()["task"], "b");
        listed_state("live").await;

        // kill -9: no run_finished is ever written. The open stream says why it ends, and ends.
        child.kill().unwrap();
        child.wait().unwrap();
        let last = s.next(WAIT).await.expect("a last message");
        assert_eq!(last.event, "error");
        assert!(
            last.data.contains("stopped before the run finished"),
            "{}",
            last.data
        );
        assert_eq!(last.id, None, "it is not one of the run's events");
        assert!(s.next(WAIT).await.is_none(), "the stream ends");
        listed_state("stale").await;

        // An EventSource reconnects after the last id it read: 204, nothing more will come.
        let end = got.last().unwrap().id.clone().unwrap();
        let r = sse::get(&events, &[("Last-Event-ID", &end)]).await;
        assert_eq!(r.status(), 204);
        // A new reader still gets every event that was recorded, then the same ending.
        let mut all = Vec::new();
        let mut s = Stream::open(&events, &[]).await;
        until(&mut s, "error", &mut all).await;
        assert_eq!(all.len(), got.len() + 1);
        assert!(s.next(WAIT).await.is_none());

        // The web pages say so too, and do not follow a stream that cannot grow.
        let page = sse::get(&url(&server, &format!("/ui/runs/{run}")), &[])
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("stale (its process died)"), "{page}");
        assert!(!page.contains("data-live"), "{page}");
        let list = sse::get(&url(&server, "/ui/runs/"), &[])
            .await
            .text()
            .await
            .unwrap();
        assert!(list.contains("stale (its process died)"), "{list}");
    });
}

/// A workflow running another file as a task: its sub-run's `run_finished` comes first.
const SUB: &str = r#"Workflow(name: "sub", flow: "one", tasks: {"one": Task(run: Value(1))})"#;
const OUTER: &str = r#"
Workflow(
    name: "outer",
    flow: "inner >> after",
    tasks: {
        "inner": Task(run: Workflow(file: "sub.ron")),
        "after": Task(run: Value(2)),
    },
)
"#;

#[test]
fn a_sub_runs_run_finished_does_not_end_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sub.ron", SUB);
    write(dir.path(), "outer.ron", OUTER);
    let (mut child, lines) = run_json(dir.path(), "outer.ron");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let printed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    let run = printed[0]["run_id"].as_str().unwrap().to_string();
    let server = Server::start(dir.path(), &[], &[]);
    runtime().block_on(async {
        let events = url(&server, &format!("/api/runs/{run}/events"));
        let mut s = Stream::open(&events, &[]).await;
        let mut got = Vec::new();
        while let Some(m) = s.next(WAIT).await {
            got.push(m);
        }
        assert_eq!(got.len(), printed.len(), "every event, the sub-run's too");
        let finished: Vec<Value> = got
            .iter()
            .filter(|m| m.event == "run_finished")
            .map(|m| m.json())
            .collect();
        assert_eq!(finished.len(), 2, "{finished:?}");
        assert_eq!(finished[0]["sub_run"], serde_json::json!(["inner"]));
        assert!(finished[1].get("sub_run").is_none());
        assert_eq!(got.last().unwrap().json(), finished[1]);
        // The page of a finished run with a sub-run is not live.
        let page = sse::get(&url(&server, &format!("/ui/runs/{run}")), &[])
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains("data-live"), "{page}");
    });
}

const ASKS: &str = r#"
Workflow(
    name: "asks",
    flow: "asks",
    notify: [],
    groups: {"asks": Group(members: "ok | words")},
    tasks: {
        "ok": Task(run: Approval(prompt: "Ship it?", timeout: "1s")),
        "words": Task(run: Feedback(kind: Text, prompt: "Why?", timeout: "1h")),
    },
)
"#;

/// `(event, request task)` of feedback messages.
fn changes(ms: &[sse::Message]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ms
        .iter()
        .map(|m| {
            let d = m.json();
            assert_eq!(d["event"], m.event.as_str());
            assert_eq!(d["id"], d["request"]["id"]);
            (
                m.event.clone(),
                d["request"]["task"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn feedback_changes_stream_and_resume_with_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "asks.ron", ASKS);
    let server = Server::start(dir.path(), &[], &[("GRAFLOW_SERVE_TOKEN", TOKEN)]);
    let feed = url(&server, "/api/feedback/events");
    runtime().block_on(async {
        let mut s = Stream::open(&feed, &[AUTH]).await;
        // A run asks twice and pauses when the first wait runs out.
        let (mut child, _lines) = run_json(dir.path(), "asks.ron");
        // `ok` waits 1 s, then the run pauses; `words` is still pending then.
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(s.next(WAIT).await.expect("the feed does not end"));
        }
        assert_eq!(
            changes(&got),
            pairs(&[
                ("expired", "ok"),
                ("requested", "ok"),
                ("requested", "words"),
            ])
        );
        assert_eq!(child.wait().unwrap().code(), Some(3), "the run paused");
        let last = got.last().unwrap().id.clone().unwrap();
        drop(s);

        // While nobody listens, one is answered and the other cancelled.
        let list: Value = sse::get(&url(&server, "/api/feedback"), &[AUTH])
            .await
            .json()
            .await
            .unwrap();
        let id_of = |task: &str| {
            list["requests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["task"] == task)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .post(url(
                &server,
                &format!("/api/feedback/{}/respond", id_of("ok")),
            ))
            .header(AUTH.0, AUTH.1)
            .json(&serde_json::json!({"approved": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .post(url(
                &server,
                &format!("/api/feedback/{}/cancel", id_of("words")),
            ))
            .header(AUTH.0, AUTH.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Resuming gets exactly what was missed, with ids after the last one read.
        let mut s = Stream::open(&feed, &[AUTH, ("Last-Event-ID", &last)]).await;
        let missed = vec![s.next(WAIT).await.unwrap(), s.next(WAIT).await.unwrap()];
        assert_eq!(
            changes(&missed),
            pairs(&[("answered", "ok"), ("cancelled", "words")])
        );
        let seq = |m: &sse::Message| -> u64 {
            m.id.as_deref()
                .and_then(|i| i.rsplit_once('-'))
                .and_then(|(_, n)| n.parse().ok())
                .unwrap()
        };
        let all: Vec<u64> = got.iter().chain(&missed).map(seq).collect();
        assert!(
            all.windows(2).all(|w| w[1] == w[0] + 1),
            "ids count up by one, none repeated: {all:?}"
        );
        drop(s);

        // Another server start's id (or garbage): a reset, then live changes.
        let mut s = Stream::open(&feed, &[AUTH, ("Last-Event-ID", "0-1")]).await;
        let m = s.next(WAIT).await.unwrap();
        assert_eq!(m.event, "reset");
        assert!(
            m.json()["detail"]
                .as_str()
                .unwrap()
                .contains("/api/feedback")
        );
        // From the same id the reset gave, nothing is missing.
        let mut s2 =
            Stream::open(&feed, &[AUTH, ("Last-Event-ID", m.id.as_deref().unwrap())]).await;
        // A new request shows up on both.
        let (mut child, _lines) = run_json(dir.path(), "asks.ron");
        for stream in [&mut s, &mut s2] {
            let m = stream.next(WAIT).await.unwrap();
            assert_eq!(m.event, "requested", "{m:?}");
        }
        let _ = child.wait();
    });
}

#[test]
fn streams_need_the_token_check_ids_and_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hello.ron",
        r#"Workflow(name: "hello", flow: "a >> b", tasks: {"a": Task(run: Value(1)), "b": Task(run: Value(2))})"#,
    );
    let out = graflow(dir.path(), &["run", "hello.ron"]);
    assert_eq!(out.status.code(), Some(0));
    let server = Server::start(dir.path(), &[], &[("GRAFLOW_SERVE_TOKEN", TOKEN)]);
    runtime().block_on(async {
        let list: Value = sse::get(&url(&server, "/api/runs"), &[AUTH])
            .await
            .json()
            .await
            .unwrap();
        let run = list["runs"][0]["id"].as_str().unwrap().to_string();

        // No token, a wrong token: refused, on every new route (the web pages' too).
        for path in [
            "/api/runs".to_string(),
            format!("/api/runs/{run}/events"),
            "/api/feedback/events".to_string(),
            "/ui/runs/".to_string(),
            format!("/ui/runs/{run}"),
            format!("/ui/runs/{run}/events"),
            "/ui/feedback/events".to_string(),
        ] {
            let r = sse::get(&url(&server, &path), &[]).await;
            assert_eq!(r.status(), 401, "{path} without the token");
            let r = sse::get(&url(&server, &path), &[("Authorization", "Bearer nope")]).await;
            assert_eq!(r.status(), 401, "{path} with a wrong token");
        }

        // Bad and unknown run ids: 400 / 404, JSON naming the id; no path is built from them.
        for (path, status, named) in [
            (
                "/api/runs/..%2F..%2Fetc%2Fpasswd/events",
                400,
                "../../etc/passwd",
            ),
            ("/api/runs/.hidden/events", 400, ".hidden"),
            ("/api/runs/a%20b/events", 400, "a b"),
            ("/api/runs/nope/events", 404, "nope"),
        ] {
            let r = sse::get(&url(&server, path), &[AUTH]).await;
            assert_eq!(r.status(), status, "{path}");
            let body: Value = r.json().await.unwrap();
            assert!(body["error"].is_string(), "{body}");
            assert!(body["detail"].as_str().unwrap().contains(named), "{body}");
        }
        let events = url(&server, &format!("/api/runs/{run}/events"));
        let r = sse::get(&events, &[AUTH, ("Last-Event-ID", "two")]).await;
        assert_eq!(r.status(), 400);
        let r = sse::get(&format!("{events}?from=-1"), &[AUTH]).await;
        assert_eq!(r.status(), 400);
        for q in ["limit=0", "limit=1001", "limit=many"] {
            let r = sse::get(&url(&server, &format!("/api/runs?{q}")), &[AUTH]).await;
            assert_eq!(r.status(), 400, "{q}");
        }

        // The cap: 64 streams at once, then 503 until one goes.
        let feed = url(&server, "/api/feedback/events");
        let mut open = Vec::new();
        for _ in 0..64 {
            open.push(Stream::open(&feed, &[AUTH]).await);
        }
        let r = sse::get(&feed, &[AUTH]).await;
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "too many streams");
        let metrics = sse::get(&url(&server, "/metrics"), &[AUTH])
            .await
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("graflow_serve_event_streams 64"),
            "{metrics}"
        );
    });
}

/// Standard base64, to check the CSP's script hashes.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The inline scripts of a page are exactly those its Content-Security-Policy allows (a
/// browser would run them), and none comes from elsewhere.
fn scripts_allowed(page: &serve_support::Resp) -> usize {
    use sha2::Digest;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let mut n = 0;
    for part in page.body.split("<script").skip(1) {
        let (attrs, rest) = part.split_once('>').unwrap();
        assert!(!attrs.contains("src"), "no external script: {attrs}");
        let js = rest.split("</script>").next().unwrap();
        let hash = base64(&sha2::Sha256::digest(js.as_bytes()));
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
        n += 1;
    }
    n
}

#[test]
fn the_web_pages_follow_the_streams_and_work_without_scripts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gated.ron", GATED);
    let server = Server::start(dir.path(), &[], &[]);
    let (mut child, lines) = run_json(dir.path(), "gated.ron");
    let first: Value = serde_json::from_str(&lines.recv_timeout(WAIT).unwrap()).unwrap();
    let run = first["run_id"].as_str().unwrap().to_string();

    let list = server.get("/ui/runs/");
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&format!("href=\"/ui/runs/{run}\"")));
    let page = server.get(&format!("/ui/runs/{run}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("run_started"),
        "the events so far, server-rendered"
    );
    assert!(
        page.body
            .contains(&format!("data-live=\"/ui/runs/{run}/events?from="))
    );
    assert_eq!(scripts_allowed(&page), 1);

    runtime().block_on(async {
        // What the page's script follows, with the page's cookie-less loopback access.
        let mut s = Stream::open(&url(&server, &format!("/ui/runs/{run}/events")), &[]).await;
        for gate in ["gate_a", "gate_b", "gate_c"] {
            write(dir.path(), gate, "");
        }
        let mut got = Vec::new();
        until(&mut s, "run_finished", &mut got).await;
    });
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let done = server.get(&format!("/ui/runs/{run}"));
    assert!(done.body.contains("run_finished"));
    assert!(
        !done.body.contains("data-live"),
        "a finished run's page is not live"
    );
    assert!(done.body.contains("<dd id=\"status\">succeeded</dd>"));

    let feedback = server.get("/ui/feedback/");
    assert!(feedback.body.contains("data-live=\"/ui/feedback/events\""));
    assert_eq!(scripts_allowed(&feedback), 1);
    assert!(server.get("/ui/runs/nope").status == 404);
    assert!(server.get("/ui/runs/..%2Fx").status == 400);
}

#[test]
fn the_openapi_document_matches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("GRAFLOW_SERVE_TOKEN", TOKEN)]);
    runtime().block_on(async {
        // Open, like /health: clients fetch it before they have a token.
        let r = sse::get(&url(&server, "/api/openapi.json"), &[]).await;
        assert_eq!(r.status(), 200);
        let doc: Value = r.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/runs/{id}/events"));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut walked = 0;
        for (path, item) in paths {
            let concrete = path.replace("{id}", "x");
            for method in ["get", "post", "put", "delete", "patch"] {
                let op = &item[method];
                let route = url(&server, &concrete);
                let req = client
                    .request(method.to_uppercase().parse().unwrap(), &route)
                    .header(AUTH.0, AUTH.1);
                let resp = tokio::time::timeout(WAIT, req.send())
                    .await
                    .unwrap()
                    .unwrap();
                let status = resp.status().as_u16();
                if op.is_null() {
                    // Undocumented methods are not served.
                    assert_eq!(status, 405, "{method} {path} is served but undocumented");
                    continue;
                }
                walked += 1;
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                let documented = op["responses"]
                    .as_object()
                    .unwrap()
                    .contains_key(&status.to_string());
                assert!(documented, "{method} {path}: {status} is not documented");
                if status == 404 {
                    let body: Value = resp.json().await.unwrap();
                    assert!(
                        !body["detail"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("no such endpoint"),
                        "{method} {path} is documented but not routed"
                    );
                }
                // Secured operations refuse a request without the token.
                let open = op["security"].as_array().is_some_and(|s| s.is_empty());
                if !open {
                    let r = client
                        .request(method.to_uppercase().parse().unwrap(), &route)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 401, "{method} {path} without the token");
                }
            }
        }
        assert!(walked >= paths.len());
    });
}

#[test]
fn sigterm_ends_open_streams_and_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gated.ron", GATED);
    let mut server = Server::start(dir.path(), &[], &[]);
    let (mut child, lines) = run_json(dir.path(), "gated.ron");
    let first: Value = serde_json::from_str(&lines.recv_timeout(WAIT).unwrap()).unwrap();
    let run = first["run_id"].as_str().unwrap().to_string();
    runtime().block_on(async {
        let mut events = Stream::open(&url(&server, &format!("/api/runs/{run}/events")), &[]).await;
        let mut got = Vec::new();
        until(&mut events, "task_started", &mut got).await;
        let mut feed = Stream::open(&url(&server, "/api/feedback/events"), &[]).await;
        let pid = server.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        // Both streams end (the run is still going: only the shutdown ends them).
        assert!(feed.next(WAIT).await.is_none());
        while events.next(WAIT).await.is_some() {}
    });
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn with_a_fleet_its_runs_are_listed_and_streamed_from_redis() {
    needs!(crate::services::Service::Redis);
    let fleet = crate::fleet_support::Fleet::start(1);
    let file = fleet.write(
        "spread.ron",
        r#"Workflow(name: "spread", flow: "start >> (a | b) >> done", tasks: {
            "start": Task(run: Value(1)), "a": Task(run: Value(2)), "b": Task(run: Value(3)),
            "done": Task(run: Value(4))})"#,
    );
    let (code, printed, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(0), "{err}");
    let run = printed[0]["run_id"].as_str().unwrap().to_string();
    // A server over another state folder: the run is only on the fleet.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--backend", &fleet.url], &[]);
    runtime().block_on(async {
        let list: Value = sse::get(&url(&server, "/api/runs"), &[])
            .await
            .json()
            .await
            .unwrap();
        let listed = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == run.as_str())
            .unwrap_or_else(|| panic!("{run} not listed: {list}"))
            .clone();
        assert_eq!(listed["source"], "fleet");
        assert_eq!(listed["status"], "succeeded");
        assert_eq!(listed["workflow"], "spread");

        let events = url(&server, &format!("/api/runs/{run}/events"));
        let mut got = Vec::new();
        let mut s = Stream::open(&events, &[]).await;
        until(&mut s, "run_finished", &mut got).await;
        assert!(s.next(WAIT).await.is_none());
        let names: Vec<&str> = got.iter().map(|m| m.event.as_str()).collect();
        let expected: Vec<&str> = printed
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "the same events as the run printed");
        let ids: Vec<String> = got.iter().map(|m| m.id.clone().unwrap()).collect();
        assert_eq!(
            ids,
            (0..got.len()).map(|i| i.to_string()).collect::<Vec<_>>()
        );
        let mut tail = Vec::new();
        let mut s = Stream::open(&events, &[("Last-Event-ID", "2")]).await;
        until(&mut s, "run_finished", &mut tail).await;
        assert_eq!(tail[0].id.as_deref(), Some("3"));
        assert_eq!(tail.len(), got.len() - 3);
        let r = sse::get(&url(&server, "/api/runs/nope/events"), &[]).await;
        assert_eq!(r.status(), 404);
        // Resuming after its last event: 204, which stops an EventSource reconnecting.
        let end = (got.len() - 1).to_string();
        let r = sse::get(&events, &[("Last-Event-ID", &end)]).await;
        assert_eq!(r.status(), 204);
    });
}

#[test]
fn a_fleet_run_whose_coordinator_died_ends_its_stream() {
    needs!(crate::services::Service::Redis);
    let fleet = crate::fleet_support::Fleet::start(1);
    let file = fleet.write("long.ron", LONG);
    let mut coordinator = fleet.spawn_run(&file, &[]);
    let run = fleet.first_indexed_run(WAIT);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--backend", &fleet.url], &[]);
    runtime().block_on(async {
        let events = url(&server, &format!("/api/runs/{run}/events"));
        let mut got = Vec::new();
        let mut s = Stream::open(&events, &[]).await;
        until(&mut s, "task_started", &mut got).await;
        until(&mut s, "task_started", &mut got).await;
        // kill -9 the process that drives the run: its record goes silent, and once the
        // fleet calls it stale (20 s) the stream says so and ends.
        coordinator.kill().unwrap();
        coordinator.wait().unwrap();
        let limit = Duration::from_secs(60);
        let last = loop {
            let m = s.next(limit).await.expect("a last message");
            if m.event == "error" {
                break m;
            }
            got.push(m);
        };
        assert!(last.data.contains("went silent"), "{}", last.data);
        assert!(s.next(WAIT).await.is_none(), "the stream ends");
        let list: Value = sse::get(&url(&server, "/api/runs"), &[])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["runs"][0]["state"], "stale", "{list}");
        // Resuming after the last event: 204.
        let end = got.last().unwrap().id.clone().unwrap();
        let r = sse::get(&events, &[("Last-Event-ID", &end)]).await;
        assert_eq!(r.status(), 204);
    });
}

/// Runs a page's inline script in Node with a stand-in DOM and Node's real `EventSource`
/// (pointed at the server): prints each table row the script appends as a JSON array, then
/// `status <text>` when it sets the status and closes the stream.
const PAGE_HARNESS: &str = r#"
const fs = require('fs');
const [base, attrsJson, scriptFile] = process.argv.slice(2);
const attrs = JSON.parse(attrsJson);
const Real = EventSource;
let source;
global.window = {};
global.EventSource = window.EventSource = function (u) {
  source = new Real(base + u);
  const close = source.close.bind(source);
  source.close = () => { close(); console.log('closed'); setTimeout(() => process.exit(0), 10); };
  return source;
};
const el = (id) => ({ id, _text: '', set textContent(v) { this._text = v; if (id === 'status') console.log('status ' + v); },
  get textContent() { return this._text; },
  appendChild(row) { console.log(JSON.stringify(row.kids.map((k) => k.textContent))); } });
const els = { events: el('events'), status: el('status') };
global.document = {
  body: { getAttribute: (k) => (k in attrs ? attrs[k] : null) },
  getElementById: (id) => els[id],
  createElement: () => ({ kids: [], textContent: '', appendChild(c) { this.kids.push(c); } }),
};
eval(fs.readFileSync(scriptFile, 'utf8'));
setTimeout(() => { console.log('timeout'); process.exit(1); }, 60000);
"#;

/// Whether `node` with an `EventSource` is installed.
fn node_with_eventsource() -> bool {
    Command::new("node")
        .args([
            "--experimental-eventsource",
            "-e",
            "process.exit(typeof EventSource === 'function' ? 0 : 1)",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_run_pages_script_follows_a_live_run_in_a_real_event_source() {
    if !node_with_eventsource() {
        eprintln!(
            "SKIPPED the_run_pages_script_follows_a_live_run_in_a_real_event_source: no node with EventSource"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gated.ron", GATED);
    let server = Server::start(dir.path(), &[], &[]);
    let (mut child, lines) = run_json(dir.path(), "gated.ron");
    let first: Value = serde_json::from_str(&lines.recv_timeout(WAIT).unwrap()).unwrap();
    let run = first["run_id"].as_str().unwrap().to_string();
    let page = server.get(&format!("/ui/runs/{run}"));
    let live = page
        .body
        .split("data-live=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let shown = page.body.matches("<tr><td>").count();
    let script = page
        .body
        .split("<script>")
        .nth(1)
        .and_then(|r| r.split("</script>").next())
        .unwrap();
    let js = write(dir.path(), "page.js", script);
    let harness = write(dir.path(), "harness.js", PAGE_HARNESS);
    let attrs = serde_json::json!({"data-live": live}).to_string();
    let mut node = Command::new("node")
        .arg("--experimental-eventsource")
        .arg(&harness)
        .arg(&server.url)
        .arg(&attrs)
        .arg(&js)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut node);
    // Open the gates one by one as the page shows each task start.
    let mut rows: Vec<Value> = Vec::new();
    let mut gates = ["gate_a", "gate_b", "gate_c"].into_iter();
    write(dir.path(), gates.next().unwrap(), "");
    let status = loop {
        let line = rx.recv_timeout(WAIT).expect("the page script goes on");
        if let Some(s) = line.strip_prefix("status ") {
            break s.to_string();
        }
        if line == "timeout" {
            panic!("the script saw no end");
        }
        let row: Value = serde_json::from_str(&line).unwrap();
        if row[2] == "task_succeeded"
            && let Some(g) = gates.next()
        {
            write(dir.path(), g, "");
        }
        rows.push(row);
    };
    assert_eq!(status, "succeeded");
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        "closed",
        "the stream is closed at the end"
    );
    assert_eq!(node.wait().unwrap().code(), Some(0));
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // The rows continue the server-rendered table: the next index on, each once.
    let ids: Vec<usize> = rows
        .iter()
        .map(|r| r[0].as_str().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<usize> = (shown..shown + ids.len()).collect();
    assert_eq!(ids, expected);
    assert_eq!(rows.last().unwrap()[2], "run_finished");
}
