//! The studio on a fleet, end to end: real `redis-server`, real `graflow worker` processes,
//! `graflow run --backend` in another process, and the built binary in a pseudo-terminal
//! (read back through vt100). A run started elsewhere is attached to and followed to its end;
//! a second one is cancelled from the studio; the fleet view shows two workers and one killed
//! with -9 turns lost; an approval asked on a worker is answered in the studio's inbox; a held
//! dead letter is requeued from the fleet view and its run goes on.

#![allow(dead_code)]

use crate::services::Service;

use crate::fleet_support;
use crate::pty_support;

use std::process::Child as ProcChild;
use std::time::Duration;

use fleet_support::{Fleet, wait_bounded};
use pty_support::{Studio, patience};

const GROUP: &str = r##"Workflow(
    name: "watched",
    flow: "start >> (a | b) >> done",
    tasks: {
        "start": Task(run: Value(1)),
        "a": Task(run: Script(r#" ctx.log("a here"); 2 "#)),
        "b": Task(run: Sleep("SLEEP")),
        "done": Task(run: Value(3)),
    },
)"##;

const APPROVE_ON_WORKER: &str = r##"Workflow(
    name: "approve-on-worker",
    flow: "start >> (gate | other) >> done",
    tasks: {
        "start": Task(run: Value(1)),
        "gate": Task(run: Approval(prompt: "Ship it from the fleet?", timeout: "120s")),
        "other": Task(run: Value(2)),
        "done": Task(run: Script(r#" ctx.result("gate").approved "#)),
    },
)"##;

/// `graflow run FILE --json --backend URL` in the background.
fn start_run(fleet: &Fleet, name: &str, text: &str) -> ProcChild {
    fleet.spawn_run(&fleet.write(name, text), &[])
}

fn studio(fleet: &Fleet) -> Studio {
    Studio::start(&["studio", "--attach", &fleet.url], fleet.dir.path())
}

#[test]
fn a_run_started_elsewhere_is_attached_to_and_followed_to_its_end() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    let run = start_run(&fleet, "watched.ron", &GROUP.replace("SLEEP", "3s"));
    fleet.first_indexed_run(patience());
    let mut s = studio(&fleet);
    s.wait_for("Fleet runs (1)");
    s.wait_for("live");
    s.wait_for("Workers (1; 0 lost");
    s.send("\r");
    s.wait_for("following run");
    // Followed like a local run: the graph's tasks and their statuses, then its end.
    s.wait_for("watched: run succeeded");
    let out = wait_bounded(run, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    // Back in the fleet view, the run is listed as ended.
    s.send("W");
    s.wait_for("succeeded");
    s.quit();
}

#[test]
fn a_remote_run_is_cancelled_from_the_studio() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    let run = start_run(&fleet, "long.ron", &GROUP.replace("SLEEP", "60s"));
    fleet.first_indexed_run(patience());
    let mut s = studio(&fleet);
    s.wait_for("Fleet runs (1)");
    s.send("\r");
    s.wait_for("following run");
    s.wait_for("running");
    s.send("x");
    s.wait_for("Cancel");
    s.send("y");
    s.wait_for("watched: run cancelled");
    let out = wait_bounded(run, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.quit();
}

#[test]
fn the_fleet_view_shows_two_workers_and_one_killed_turns_lost() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(2);
    let s = studio(&fleet);
    s.wait_for("Workers (2; 0 lost");
    s.wait_for("idle");
    fleet.kill9(0);
    s.wait_for("Workers (2; 1 lost");
    s.wait_for("lost");
    s.quit();
}

#[test]
fn an_approval_asked_on_a_worker_is_answered_in_the_studio_inbox() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    let run = start_run(&fleet, "approve.ron", APPROVE_ON_WORKER);
    let mut s = studio(&fleet);
    s.wait_for("Fleet runs");
    s.send("a");
    s.wait_for("Ship it from the fleet?");
    s.send("y");
    let out = fleet.succeeded(run, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains(r#""result":true"#), "{last}");
    s.quit();
}

#[test]
fn a_held_dead_letter_is_requeued_from_the_fleet_view_and_its_run_goes_on() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(0);
    let (run, mended) = fleet.held_dead_letter();
    let mut s = studio(&fleet);
    s.wait_for("m left"); // `held 1m left`: the 120 s hold is running
    std::fs::write(&mended, "").unwrap_or_else(|e| panic!("{e}"));
    s.send("\t");
    s.send("R");
    s.wait_for("requeued poison:1:0 of run");
    if let Ok(Some(_)) = fleet.workers[0].child.try_wait() {
        fleet.respawn(0);
    }
    fleet.succeeded(run, Duration::from_secs(60));
    s.wait_gone("m left");
    s.quit();
}
