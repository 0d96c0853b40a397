//! The studio in a real pseudo-terminal, for end-to-end tests: the built `graflow` binary
//! started with its own state and config folders, its screen read back through a terminal
//! emulator (vt100), keys sent as bytes, and on exit a check that the terminal is restored.
#![allow(dead_code)] // each test file uses part of it

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// Waits are longer on CI machines.
pub fn patience() -> Duration {
    if std::env::var_os("CI").is_some() {
        Duration::from_secs(40)
    } else {
        Duration::from_secs(20)
    }
}

/// The studio running in a pseudo-terminal.
pub struct Studio {
    pub master: Box<dyn MasterPty + Send>,
    pub writer: Box<dyn Write + Send>,
    pub child: Box<dyn Child + Send + Sync>,
    pub screen: Arc<Mutex<vt100::Parser>>,
    pub state: tempfile::TempDir,
}

impl Studio {
    pub fn start(args: &[&str], cwd: &Path) -> Studio {
        Studio::start_with(args, cwd, &[])
    }

    pub fn start_with(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Studio {
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

    pub fn text(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    pub fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + patience();
        while Instant::now() < deadline {
            if self.text().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        panic!("'{what}' did not appear; the screen:\n{}", self.text());
    }

    pub fn wait_gone(&self, what: &str) {
        let deadline = Instant::now() + patience();
        while Instant::now() < deadline {
            if !self.text().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        panic!("'{what}' did not go away; the screen:\n{}", self.text());
    }

    pub fn send(&mut self, keys: &str) {
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

    pub fn resize(&self, cols: u16, rows: u16) {
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
    pub fn quit(mut self) {
        self.send("q");
        self.wait_exit();
    }

    /// Wait for the studio to exit; check the exit code and the restored terminal.
    pub fn wait_exit(mut self) {
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
