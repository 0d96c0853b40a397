//! `graflow serve` end to end: the real binary serving real requests (made by a real paused
//! run) on 127.0.0.1 — the bearer token, refusing an open address without one, the body
//! limit, 404/409/413/415/422 answers, the web form (escaping, one form per kind, answering),
//! `/metrics`, and a clean stop on SIGTERM.

use crate::serve_support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serve_support::{Server, events, graflow, write};

const ASKS: &str = r#"
Workflow(
    name: "asks",
    flow: "asks",
    notify: [],
    groups: {"asks": Group(members: "ok | words | pick | many | data")},
    tasks: {
        "ok": Task(run: Approval(prompt: "<script>alert('x')</script> deploy?", timeout: "2s")),
        "words": Task(run: Feedback(kind: Text, prompt: "Release notes?", timeout: "2s")),
        "pick": Task(run: Feedback(kind: Selection, prompt: "Which region?", options: ["eu", "us & <asia>"], timeout: "2s")),
        "many": Task(run: Feedback(kind: MultiSelection, prompt: "Which checks?", options: ["lint", "test", "fuzz"], timeout: "2s")),
        "data": Task(run: Feedback(kind: Custom, prompt: "Config?", timeout: "2s")),
    },
)
"#;

/// A folder whose state holds five pending requests, one of each kind, from a real run
/// that paused; returns the folder and the run id.
fn paused_asks() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "asks.ron", ASKS);
    let out = graflow(dir.path(), &["run", "--json", "asks.ron"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out.stdout);
    let run_id = evs[0]["run_id"].as_str().unwrap().to_string();
    let asked = evs
        .iter()
        .filter(|e| e["event"] == "feedback_requested")
        .count();
    assert_eq!(asked, 5, "every member asked before the pause");
    (dir, run_id)
}

/// The id of the request asked by `task`.
fn id_of(server: &Server, task: &str) -> String {
    let list = server.get("/api/feedback?all=true").json();
    list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["task"] == task)
        .unwrap_or_else(|| panic!("no request of {task}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_token_guards_api_ui_and_metrics_but_not_health() {
    let (dir, _) = paused_asks();
    let server = Server::start(dir.path(), &[], &[("GRAFLOW_SERVE_TOKEN", "s3cret token")]);

    assert_eq!(server.get("/health").status, 200);
    for path in ["/api/feedback", "/metrics", "/ui/feedback/"] {
        let r = server.get(path);
        assert_eq!(r.status, 401, "{path} without a token");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer"))
        );
        let wrong = server
            .req("GET", path)
            .header("Authorization", "Bearer s3cret")
            .send();
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
    }
    let r = server.get("/api/feedback");
    assert_eq!(r.json()["error"], "unauthorized");
    let ok = server
        .req("GET", "/api/feedback")
        .header("Authorization", "Bearer s3cret token")
        .send();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["count"], 5);
    let answer = server
        .req(
            "POST",
            &format!("/api/feedback/{}/respond", id_of_with(&server, "words")),
        )
        .header("Content-Type", "application/json")
        .body(r#"{"text": "no token"}"#)
        .send();
    assert_eq!(answer.status, 401, "answers need the token too");

    // The web form: a wrong ?token= is refused; the right one sets a cookie that then works.
    assert_eq!(server.get("/ui/?token=nope").status, 401);
    let entry = server.get("/ui/?token=s3cret%20token");
    assert_eq!(entry.status, 303);
    assert_eq!(entry.header("location"), Some("/ui/feedback/"));
    let cookie = entry.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let page = server
        .req("GET", "/ui/feedback/")
        .header("Cookie", pair)
        .send();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Which region?"));
    // The cookie is not accepted by the API (no ambient credentials for scripts).
    let api = server
        .req("GET", "/api/feedback")
        .header("Cookie", pair)
        .send();
    assert_eq!(api.status, 401);
    let metrics = server
        .req("GET", "/metrics")
        .header("Authorization", "Bearer s3cret token")
        .send();
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("status=\"401\""));
}

/// `id_of` with the token of the test above.
fn id_of_with(server: &Server, task: &str) -> String {
    let list = server
        .req("GET", "/api/feedback")
        .header("Authorization", "Bearer s3cret token")
        .send()
        .json();
    list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["task"] == task)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_open_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = graflow(dir.path(), &["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token"), "{err}");
    assert!(err.contains("GRAFLOW_SERVE_TOKEN"), "{err}");

    let out = graflow(dir.path(), &["serve", "--token", " "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token is empty"));

    let out = graflow(dir.path(), &["serve", "--addr", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--addr 'nonsense'"));
}

#[test]
fn the_rest_api_lists_answers_cancels_and_says_what_is_wrong() {
    let (dir, run_id) = paused_asks();
    let server = Server::start(dir.path(), &[], &[]);

    let list = server.get("/api/feedback").json();
    assert_eq!(list["count"], 5);
    let ok = &list["requests"].as_array().unwrap()[0];
    for field in [
        "id",
        "run_id",
        "task",
        "workflow",
        "kind",
        "prompt",
        "status",
        "created_at",
    ] {
        assert!(!ok[field].is_null(), "request field {field}: {ok}");
    }
    assert_eq!(
        server.get(&format!("/api/feedback?run_id={run_id}")).json()["count"],
        5
    );
    assert_eq!(server.get("/api/feedback?run_id=other").json()["count"], 0);
    assert_eq!(server.get("/api/feedback?all=maybe").status, 400);

    // Unknown and invalid ids.
    for path in [
        "/api/feedback/nope",
        "/api/feedback/..%2F..%2Fetc%2Fpasswd",
        "/api/feedback/.hidden",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"], "not found");
    }
    assert_eq!(
        server
            .post_json("/api/feedback/nope/respond", r#"{"text":"x"}"#)
            .status,
        404
    );
    assert_eq!(
        server.post_json("/api/feedback/nope/cancel", "").status,
        404
    );
    assert_eq!(server.get("/api/nothing").status, 404);
    assert_eq!(server.req("DELETE", "/api/feedback").send().status, 405);

    let words = id_of(&server, "words");
    let pick = id_of(&server, "pick");
    let many = id_of(&server, "many");
    let data = id_of(&server, "data");
    let respond = |id: &str| format!("/api/feedback/{id}/respond");

    // GET one: request and a null response.
    let one = server.get(&format!("/api/feedback/{words}")).json();
    assert_eq!(one["request"]["task"], "words");
    assert_eq!(one["response"], Value::Null);

    // Bodies: too large, not JSON, mistyped.
    let big = format!(r#"{{"text": "{}"}}"#, "x".repeat(70 * 1024));
    let r = server.post_json(&respond(&words), &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "body too large");
    let r = server
        .req("POST", &respond(&words))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("text=hi")
        .send();
    assert_eq!(r.status, 415);
    let r = server.post_json(&respond(&words), "{not json");
    assert_eq!(r.status, 400);
    let r = server.post_json(&respond(&words), r#"{"txt": "hi"}"#);
    assert_eq!(r.status, 400);
    let e = r.json();
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `txt`"),
        "{e}"
    );
    assert_eq!(e["expected"], json!({"text": "…"}));
    let r = server.post_json(&respond(&words), r#"{"text": 42}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{}",
        r.body
    );

    // Answers that do not fit the request.
    let r = server.post_json(&respond(&pick), r#"{"selected": "mars"}"#);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["detail"],
        "'mars' is not one of the options [eu, us & <asia>]"
    );
    let r = server.post_json(
        &respond(&many),
        r#"{"selected_multiple": ["lint", "bench"]}"#,
    );
    assert_eq!(r.status, 422);
    let r = server.post_json(&respond(&words), r#"{"selected": "eu"}"#);
    assert_eq!(r.status, 422);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("'selected' does not belong")
    );

    // Good answers; the second answer and a cancel of an answered request conflict.
    let r = server.post_json(
        &respond(&pick),
        r#"{"selected": "us & <asia>", "responded_by": "ada"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let resp = r.json();
    assert_eq!(resp["selected"], "us & <asia>");
    assert_eq!(resp["responded_by"], "ada");
    assert_eq!(resp["kind"], "selection");
    assert!(resp["responded_at"].is_string());
    let r = server.post_json(&respond(&pick), r#"{"selected": "eu"}"#);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["status"], "answered");
    assert_eq!(
        server
            .post_json(&format!("/api/feedback/{pick}/cancel"), "")
            .status,
        409
    );
    let one = server.get(&format!("/api/feedback/{pick}")).json();
    assert_eq!(one["request"]["status"], "answered");
    assert_eq!(one["response"]["selected"], "us & <asia>");

    let r = server.post_json(&respond(&data), r#"{"custom_data": {"replicas": 3}}"#);
    assert_eq!(r.status, 200);

    // Cancel: the request comes back cancelled; it takes no answer afterwards.
    let r = server.post_json(&format!("/api/feedback/{words}/cancel"), "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "cancelled");
    let r = server.post_json(&respond(&words), r#"{"text": "late"}"#);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["status"], "cancelled");

    // The pending list shrank; ?all=true still shows everything. The CLI sees the same store.
    assert_eq!(server.get("/api/feedback").json()["count"], 2);
    assert_eq!(server.get("/api/feedback?all=true").json()["count"], 5);
    let cli = graflow(dir.path(), &["feedback", "show", &pick, "--json"]);
    let shown: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(shown["response"]["responded_by"], "ada");
}

#[test]
fn the_web_form_escapes_renders_each_kind_and_answers() {
    let (dir, _) = paused_asks();
    let server = Server::start(dir.path(), &[], &[]);

    let list = server.get("/ui/feedback/");
    assert_eq!(list.status, 200);
    assert!(
        list.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        list.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(list.body.contains("5 pending"));
    assert!(
        !list.body.contains("<script>alert"),
        "a prompt must be escaped"
    );
    assert!(
        list.body
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
    );
    let ok = id_of(&server, "ok");
    assert!(list.body.contains(&format!("href=\"/ui/feedback/{ok}\"")));
    assert_eq!(server.get("/ui/").status, 303);

    let page = |task: &str| server.get(&format!("/ui/feedback/{}", id_of(&server, task)));
    let approval = page("ok");
    assert!(!approval.body.contains("<script>alert"));
    assert!(approval.body.contains(r#"name="approved" value="true""#));
    assert!(approval.body.contains(r#"name="approved" value="false""#));
    assert!(approval.body.contains(r#"name="reason""#));
    assert!(page("words").body.contains(r#"<textarea name="text""#));
    let pick = page("pick");
    assert!(
        pick.body
            .contains(r#"type="radio" name="selected" value="eu""#)
    );
    assert!(pick.body.contains(r#"value="us &amp; &lt;asia&gt;""#));
    assert!(
        page("many")
            .body
            .contains(r#"type="checkbox" name="selected_multiple" value="fuzz""#)
    );
    assert!(
        page("data")
            .body
            .contains(r#"<textarea name="custom_data""#)
    );
    assert_eq!(
        approval.body.matches("<script").count(),
        1,
        "no script but the page's own (its live updates; cli_serve_sse checks it)"
    );
    assert_eq!(server.get("/ui/feedback/nope").status, 404);

    let form = |task: &str, body: &str| {
        server
            .req("POST", &format!("/ui/feedback/{}", id_of(&server, task)))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
    };
    // Errors show the form again with the message.
    let r = form("pick", "selected=mars");
    assert_eq!(r.status, 422);
    assert!(r.body.contains("&#39;mars&#39; is not one of the options"));
    assert!(r.body.contains("<form"));
    let r = form("data", "custom_data=%7Bbroken");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not valid JSON"));
    assert!(r.body.contains("{broken"), "the draft is kept");
    assert_eq!(form("ok", "approved=true&sneaky=1").status, 400);
    let r = form("ok", "reason=because");
    assert_eq!(r.status, 422, "an approval needs a decision");
    // A cross-site POST is refused.
    let r = server
        .req("POST", &format!("/ui/feedback/{ok}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", "http://evil.example")
        .body("approved=true")
        .send();
    assert_eq!(r.status, 403);

    // Good answers, one per kind.
    let r = form(
        "ok",
        "approved=false&reason=%3Cb%3Eno%3C%2Fb%3E&responded_by=ada",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Answer recorded"));
    assert!(r.body.contains("&lt;b&gt;no&lt;/b&gt;"));
    assert!(r.body.contains("Rejected"));
    assert!(
        !r.body
            .contains("<form method=\"post\" action=\"/ui/feedback/"),
        "no form once answered"
    );
    assert_eq!(form("words", "text=line+one%0Aline+two").status, 200);
    assert_eq!(form("pick", "selected=us+%26+%3Casia%3E").status, 200);
    assert_eq!(
        form("many", "selected_multiple=lint&selected_multiple=fuzz").status,
        200
    );
    assert_eq!(
        form("data", "custom_data=%7B%22replicas%22%3A3%7D").status,
        200
    );
    let r = form("ok", "approved=true");
    assert_eq!(r.status, 409);
    assert!(r.body.contains("your answer was not recorded"));

    let got = |task: &str| {
        server
            .get(&format!("/api/feedback/{}", id_of(&server, task)))
            .json()["response"]
            .clone()
    };
    assert_eq!(got("ok")["approved"], false);
    assert_eq!(got("ok")["reason"], "<b>no</b>");
    assert_eq!(got("words")["text"], "line one\nline two");
    assert_eq!(got("pick")["selected"], "us & <asia>");
    assert_eq!(got("many")["selected_multiple"], json!(["lint", "fuzz"]));
    assert_eq!(got("data")["custom_data"], json!({"replicas": 3}));

    // An answered request shows its answer.
    let shown = page("many");
    assert!(shown.body.contains("<h2>Answer</h2>"));
    assert!(shown.body.contains("answered"));
    assert_eq!(server.get("/api/feedback").json()["count"], 0);
}

#[test]
fn metrics_count_requests_answers_and_http_traffic() {
    let (dir, _) = paused_asks();
    let server = Server::start(dir.path(), &[], &[]);
    let words = id_of(&server, "words");
    let pick = id_of(&server, "pick");
    assert_eq!(
        server
            .post_json(
                &format!("/api/feedback/{words}/respond"),
                r#"{"text": "ok"}"#
            )
            .status,
        200
    );
    assert_eq!(
        server
            .req("POST", &format!("/ui/feedback/{pick}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("selected=eu")
            .send()
            .status,
        200
    );
    assert_eq!(
        server
            .post_json(
                &format!("/api/feedback/{}/cancel", id_of(&server, "data")),
                ""
            )
            .status,
        200
    );
    assert_eq!(server.get("/api/feedback/nope").status, 404);
    let m = server.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = m.body;
    for line in [
        "graflow_feedback_requests{status=\"pending\"} 2",
        "graflow_feedback_requests{status=\"answered\"} 2",
        "graflow_feedback_requests{status=\"cancelled\"} 1",
        "graflow_feedback_answers_total{kind=\"text\",via=\"api\"} 1",
        "graflow_feedback_answers_total{kind=\"selection\",via=\"ui\"} 1",
        "graflow_feedback_cancellations_total{via=\"api\"} 1",
        "graflow_http_requests_total{method=\"POST\",route=\"/api/feedback/{id}/respond\",status=\"200\"} 1",
        "graflow_http_requests_total{method=\"GET\",route=\"/api/feedback/{id}\",status=\"404\"} 1",
        "# TYPE graflow_serve_uptime_seconds gauge",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let all = server.get("/api/feedback?all=true").json();
    let paused = all["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "pending" && r["checkpoint"].is_string())
        .count();
    assert!(
        text.contains(&format!("graflow_feedback_paused_runs {paused}")),
        "{text}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[], &[]);
    assert_eq!(server.get("/health").json()["status"], "ok");
    let pid = server.child.id().to_string();
    let started = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn requests_for_another_host_are_refused_dns_rebinding() {
    let (dir, _run) = paused_asks();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let id = id_of(&server, "ok");
    // A page of another site whose name resolves to 127.0.0.1: its Host is its own name.
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.example:{port}"),
        "evil.example".to_string(),
        format!("127.0.0.1:{}", port.parse::<u16>().unwrap().wrapping_add(1)),
    ] {
        let list = server
            .req("GET", "/api/feedback")
            .header("Host", &host)
            .send();
        assert_eq!(list.status, 421, "{host}: {}", list.body);
        assert!(!list.body.contains(&id), "nothing listed for {host}");
        let answer = server
            .req("POST", &format!("/api/feedback/{id}/respond"))
            .header("Host", &host)
            .header("Content-Type", "application/json")
            .body(r#"{"approved": true}"#)
            .send();
        assert_eq!(answer.status, 421, "{host}");
        let form = server
            .req("GET", "/ui/feedback/")
            .header("Host", &host)
            .send();
        assert_eq!(form.status, 421, "{host}");
    }
    // Its own address and the loopback names are served.
    for host in [
        server.addr.clone(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let list = server
            .req("GET", "/api/feedback")
            .header("Host", &host)
            .send();
        assert_eq!(list.status, 200, "{host}: {}", list.body);
    }
    // Still pending: no refused request answered it.
    let show = server.get(&format!("/api/feedback/{id}"));
    assert!(show.body.contains("\"pending\""), "{}", show.body);
    // --allow-host adds a name.
    let named = Server::start(dir.path(), &["--allow-host", "graflow.lan"], &[]);
    let port = named.addr.rsplit(':').next().unwrap().to_string();
    let list = named
        .req("GET", "/api/feedback")
        .header("Host", &format!("graflow.lan:{port}"))
        .send();
    assert_eq!(list.status, 200);
}

#[test]
fn metrics_labels_stay_bounded_under_garbage_methods() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--token", "t0k"], &[]);
    for i in 0..60 {
        let _ = server.req(&format!("GARBAGE{i}"), "/api/feedback").send();
    }
    let metrics = server
        .req("GET", "/metrics")
        .header("Authorization", "Bearer t0k")
        .send();
    assert_eq!(metrics.status, 200);
    assert!(!metrics.body.contains("GARBAGE"), "{}", metrics.body);
    let series = metrics
        .body
        .lines()
        .filter(|l| l.starts_with("graflow_http_requests_total{"))
        .count();
    assert!(series < 10, "{}", metrics.body);
}
