//! The studio on a fleet, end to end: real `redis-server`, real `graflow worker` processes,
//! `graflow run --backend` in another process, and the built binary in a pseudo-terminal
//! (read back through vt100). A run started elsewhere is attached to and followed to its end;
//! a second one is cancelled from the studio; the fleet view shows two workers and one killed
//! with -9 turns lost; an approval asked on a worker is answered in the studio's inbox.

#![allow(dead_code)]

mod fleet_support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child as ProcChild, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_support::{Fleet, wait_bounded};
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// Waits are longer on CI machines.
fn patience() -> Duration {
    if std::env::var_os("CI").is_some() {
        Duration::from_secs(40)
    } else {
        Duration::from_secs(20)
    }
}

struct Studio {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    screen: Arc<Mutex<vt100::Parser>>,
    state: tempfile::TempDir,
}

impl Studio {
    fn start(args: &[&str], cwd: &Path) -> Studio {
        Studio::start_with(args, cwd, &[])
    }

    fn start_with(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Studio {
        let (cols, rows) = (120u16, 36u16);
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap_or_else(|e| panic!("openpty: {e}"));
        let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_graflow"));
        cmd.args(args);
        cmd.cwd(cwd);
        cmd.env("TERM", "xterm-256color");
        cmd.env("GRAFLOW_STATE_DIR", state.path().join("state"));
        cmd.env("XDG_CONFIG_HOME", state.path().join("config"));
        cmd.env("GRAFLOW_STUDIO_LOG", state.path().join("studio.log"));
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("TMUX");
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair
            .slave
            .spawn_command(cmd)
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        drop(pair.slave);
        let mut reader = pair
            .master
            .try_clone_reader()
            .unwrap_or_else(|e| panic!("{e}"));
        let writer = pair.master.take_writer().unwrap_or_else(|e| panic!("{e}"));
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap_or(std::num::NonZeroU16::MIN),
            std::num::NonZeroU16::new(cols).unwrap_or(std::num::NonZeroU16::MIN),
            0,
        )));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut p) = sink.lock() {
                    p.process(&buf[..n]);
                }
            }
        });
        Studio {
            master: pair.master,
            writer,
            child,
            screen,
            state,
        }
    }

    fn text(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + patience();
        while Instant::now() < deadline {
            if self.text().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        panic!("'{what}' did not appear; the screen:\n{}", self.text());
    }

    fn wait_gone(&self, what: &str) {
        let deadline = Instant::now() + patience();
        while Instant::now() < deadline {
            if !self.text().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        panic!("'{what}' did not go away; the screen:\n{}", self.text());
    }

    fn send(&mut self, keys: &str) {
        self.writer
            .write_all(keys.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = self.writer.flush();
        // A lone ESC needs a pause, or it reads as Alt with the next key.
        std::thread::sleep(Duration::from_millis(if keys.contains('\x1b') {
            150
        } else {
            60
        }));
    }

    fn resize(&self, cols: u16, rows: u16) {
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap_or_else(|e| panic!("{e}"));
        if let (Ok(mut p), Some(r), Some(c)) = (
            self.screen.lock(),
            std::num::NonZeroU16::new(rows),
            std::num::NonZeroU16::new(cols),
        ) {
            p.set_size(r, c);
        }
    }

    /// Quit with `q` and check the exit code and the restored terminal.
    fn quit(mut self) {
        self.send("q");
        self.wait_exit();
    }

    /// Wait for the studio to exit; check the exit code and the restored terminal.
    fn wait_exit(mut self) {
        let deadline = Instant::now() + patience();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "exit status {status:?}");
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(40))
                }
                other => {
                    let _ = self.child.kill();
                    panic!("the studio did not quit: {other:?}");
                }
            }
        }
        // Let the reader drain the last bytes.
        std::thread::sleep(Duration::from_millis(200));
        let p = self.screen.lock().unwrap_or_else(|e| panic!("{e}"));
        let s = p.screen();
        assert!(!s.alternate_screen(), "still on the alternate screen");
        assert!(!s.hide_cursor(), "the cursor is still hidden");
        assert!(!s.bracketed_paste(), "bracketed paste still on");
        assert_eq!(
            s.mouse_protocol_mode(),
            vt100::MouseProtocolMode::None,
            "mouse capture still on"
        );
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}

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
    let file = fleet.write(name, text);
    let file = file.to_string_lossy().to_string();
    fleet
        .command(&["run", &file, "--json", "--backend", &fleet.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Wait until the fleet's run index holds a run.
fn wait_indexed(fleet: &Fleet) {
    let deadline = Instant::now() + patience();
    while Instant::now() < deadline {
        if !fleet
            .redis
            .cli(&["ZRANGE", "graflow:runs", "0", "-1"])
            .trim()
            .is_empty()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no run was indexed:\n{}", fleet.logs());
}

fn studio(fleet: &Fleet) -> Studio {
    Studio::start(&["studio", "--attach", &fleet.url], fleet.dir.path())
}

#[test]
fn a_run_started_elsewhere_is_attached_to_and_followed_to_its_end() {
    let fleet = Fleet::start(1);
    let run = start_run(&fleet, "watched.ron", &GROUP.replace("SLEEP", "3s"));
    wait_indexed(&fleet);
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
    let fleet = Fleet::start(1);
    let run = start_run(&fleet, "long.ron", &GROUP.replace("SLEEP", "60s"));
    wait_indexed(&fleet);
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
    let fleet = Fleet::start(1);
    let run = start_run(&fleet, "approve.ron", APPROVE_ON_WORKER);
    let mut s = studio(&fleet);
    s.wait_for("Fleet runs");
    s.send("a");
    s.wait_for("Ship it from the fleet?");
    s.send("y");
    let out = wait_bounded(run, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        fleet.logs()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.contains(r#""result":true"#), "{last}");
    s.quit();
}
