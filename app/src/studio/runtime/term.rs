//! The terminal: raw mode, the alternate screen, bracketed paste and mouse capture on the way
//! in; all of it undone on the way out, on every path — normal exit, error, and panic (the
//! panic hook restores the terminal before the message is printed).

use std::io::{self, Stdout, Write};
use std::sync::Once;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::studio::graph::layout::in_guarded_section;

/// The real terminal.
pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
pub struct TermGuard {
    _private: (),
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Put the terminal in studio mode; the guard puts it back.
pub fn enter(mouse: bool) -> io::Result<(Term, TermGuard)> {
    install_panic_hook();
    mark_ui_thread();
    enable_raw_mode()?;
    let guard = TermGuard { _private: () };
    let mut out = io::stdout();
    execute!(
        out,
        EnterAlternateScreen,
        EnableBracketedPaste,
        cursor::Hide
    )?;
    if mouse {
        execute!(out, EnableMouseCapture)?;
    }
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((terminal, guard))
}

/// Undo everything [`enter`] did (safe to call more than once).
pub fn restore() {
    stderr::restore();
    let mut out = io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Turn mouse capture on or off.
pub fn set_mouse(on: bool) {
    let mut out = io::stdout();
    let _ = if on {
        execute!(out, EnableMouseCapture)
    } else {
        execute!(out, DisableMouseCapture)
    };
}

/// The thread that owns the screen (the one that called [`enter`]).
static UI_THREAD: std::sync::Mutex<Option<std::thread::ThreadId>> = std::sync::Mutex::new(None);

/// This thread owns the screen: a panic here brings the studio down.
pub fn mark_ui_thread() {
    let mut t = UI_THREAD.lock().unwrap_or_else(|e| e.into_inner());
    *t = Some(std::thread::current().id());
}

/// Whether a panic on this thread means the studio is going down: it happened on the thread
/// that owns the screen, outside a section that catches its own panics. Panics elsewhere —
/// a task body's, which the engine catches and reports as the task's failure — leave the
/// terminal alone.
fn panic_ends_the_studio() -> bool {
    let ui = *UI_THREAD.lock().unwrap_or_else(|e| e.into_inner());
    ui == Some(std::thread::current().id()) && !in_guarded_section()
}

/// Restore the terminal before the message of a panic that ends the studio is printed.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if in_guarded_section() {
                return;
            }
            if panic_ends_the_studio() {
                restore();
            }
            previous(info);
        }));
    });
}

/// While the studio owns the screen, standard error goes to a log file, so that log lines
/// (`tracing` writes to standard error) cannot scribble over the frames. [`restore`] puts it
/// back, before a panic message is printed too.
pub mod stderr {
    use std::path::{Path, PathBuf};

    /// The log file: `GRAFLOW_STUDIO_LOG`, else `studio.log` in the user's state (or cache)
    /// folder for Graflow.
    pub fn log_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("GRAFLOW_STUDIO_LOG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let dirs = directories::ProjectDirs::from("", "", "graflow")?;
        let dir = dirs.state_dir().unwrap_or(dirs.cache_dir());
        Some(dir.join("studio.log"))
    }

    #[cfg(unix)]
    mod imp {
        use std::fs::OpenOptions;
        use std::io;
        use std::os::fd::AsRawFd;
        use std::path::Path;
        use std::sync::atomic::{AtomicI32, Ordering};

        static SAVED: AtomicI32 = AtomicI32::new(-1);

        pub fn redirect(to: &Path) -> io::Result<()> {
            if SAVED.load(Ordering::SeqCst) >= 0 {
                return Ok(());
            }
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(to)?;
            // SAFETY: dup and dup2 on file descriptors this process owns; the duplicate of the
            // original standard error is kept in SAVED until `restore` puts it back.
            let saved = unsafe { libc::dup(2) };
            if saved < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: as above; `file` stays open for the duration of the call.
            if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
                let e = io::Error::last_os_error();
                // SAFETY: `saved` is a descriptor this function just created.
                unsafe { libc::close(saved) };
                return Err(e);
            }
            SAVED.store(saved, Ordering::SeqCst);
            Ok(())
        }

        pub fn restore() {
            let saved = SAVED.swap(-1, Ordering::SeqCst);
            if saved >= 0 {
                // SAFETY: `saved` is the duplicate of the original standard error.
                unsafe {
                    libc::dup2(saved, 2);
                    libc::close(saved);
                }
            }
        }
    }

    #[cfg(not(unix))]
    mod imp {
        pub fn redirect(_to: &std::path::Path) -> std::io::Result<()> {
            Ok(())
        }
        pub fn restore() {}
    }

    /// Send standard error to `to` until [`restore`].
    pub fn redirect(to: &Path) -> std::io::Result<()> {
        imp::redirect(to)
    }

    /// Give standard error back (no-op when it was not redirected).
    pub fn restore() {
        imp::restore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_panics_on_the_screen_thread_end_the_studio() {
        mark_ui_thread();
        assert!(panic_ends_the_studio());
        let elsewhere = std::thread::spawn(panic_ends_the_studio).join().unwrap();
        assert!(
            !elsewhere,
            "a worker's panic (a task body's) leaves the terminal alone"
        );
        // A task body panicking on a runtime worker: caught by the engine, terminal untouched.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let seen = rt.block_on(async { tokio::spawn(async { panic_ends_the_studio() }).await });
        assert_eq!(seen.ok(), Some(false));
    }
}
