//! The event loop: terminal input, runtime messages, and frames. A frame is drawn only when
//! the state changed (the dirty flag), at most once per [`MIN_FRAME_GAP`]; a one-second
//! heartbeat runs only while a run is going (for its clocks). Idle, nothing wakes up.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use crossterm::event::{Event, KeyEventKind};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::time::{Instant, MissedTickBehavior};

use super::Driver;
use super::clipboard::osc52;
use crate::studio::action::Action;
use crate::studio::ui;

/// The shortest time between two frames.
pub const MIN_FRAME_GAP: Duration = Duration::from_millis(16);

/// What the loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Frames drawn.
    pub frames: u64,
    /// Input events read.
    pub inputs: u64,
    /// Runtime messages handled.
    pub messages: u64,
}

/// Where frames go and what the terminal does besides drawing.
pub trait Host {
    /// The backend frames are drawn on.
    type B: Backend;
    /// The terminal.
    fn terminal(&mut self) -> &mut Terminal<Self::B>;
    /// Put text on the clipboard.
    fn copy(&mut self, text: &str);
    /// Turn mouse capture on or off.
    fn set_mouse(&mut self, on: bool);
    /// Called around each frame (synchronized output on real terminals).
    fn begin_frame(&mut self) {}
    /// Called after each frame.
    fn end_frame(&mut self) {}
}

/// The real terminal as a host.
pub struct TerminalHost {
    /// The terminal.
    pub terminal: super::term::Term,
    tmux: bool,
}

impl TerminalHost {
    /// Wrap a terminal.
    pub fn new(terminal: super::term::Term) -> Self {
        TerminalHost {
            terminal,
            tmux: std::env::var_os("TMUX").is_some_and(|v| !v.is_empty()),
        }
    }
}

impl Host for TerminalHost {
    type B = ratatui::backend::CrosstermBackend<io::Stdout>;
    fn terminal(&mut self) -> &mut Terminal<Self::B> {
        &mut self.terminal
    }
    fn copy(&mut self, text: &str) {
        let mut out = io::stdout();
        let _ = out.write_all(osc52(text, self.tmux).as_bytes());
        let _ = out.flush();
    }
    fn set_mouse(&mut self, on: bool) {
        super::term::set_mouse(on);
    }
    fn begin_frame(&mut self) {
        let _ = crossterm::execute!(io::stdout(), crossterm::terminal::BeginSynchronizedUpdate);
    }
    fn end_frame(&mut self) {
        let _ = crossterm::execute!(io::stdout(), crossterm::terminal::EndSynchronizedUpdate);
    }
}

/// Run until the app quits or the input ends.
pub async fn run<H: Host>(
    driver: &mut Driver,
    host: &mut H,
    mut input: impl Stream<Item = io::Result<Event>> + Unpin,
) -> io::Result<LoopStats> {
    let mut stats = LoopStats::default();
    if let Ok(size) = host.terminal().size() {
        driver.dispatch(Action::Resize(size.width, size.height));
    }
    let mut last_frame = Instant::now() - MIN_FRAME_GAP;
    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut input_open = true;
    let terminate = terminate_signal();
    tokio::pin!(terminate);
    while !driver.app.quit {
        let deadline = driver.app.dirty.then(|| last_frame + MIN_FRAME_GAP);
        let beating = driver.app.needs_heartbeat();
        tokio::select! {
            biased;
            _ = sleep_until_opt(deadline), if deadline.is_some() => {
                driver.app.now = SystemTime::now();
                host.begin_frame();
                let app = &driver.app;
                host.terminal().draw(|f| ui::draw(f, app)).map_err(|e| io::Error::other(e.to_string()))?;
                host.end_frame();
                driver.app.dirty = false;
                stats.frames += 1;
                last_frame = Instant::now();
            }
            ev = input.next(), if input_open => match ev {
                Some(Ok(ev)) => {
                    stats.inputs += 1;
                    handle_input(driver, ev);
                }
                Some(Err(e)) => return Err(e),
                None => input_open = false,
            },
            msg = driver.recv() => {
                if let Some(msg) = msg {
                    stats.messages += 1;
                    driver.handle(msg);
                }
            }
            _ = heartbeat.tick(), if beating => {
                driver.app.tick(SystemTime::now());
                driver.run_effects();
            }
            _ = &mut terminate => driver.app.quit = true,
        }
        for text in std::mem::take(&mut driver.copies) {
            host.copy(&text);
        }
        if let Some(on) = driver.mouse.take() {
            host.set_mouse(on);
        }
    }
    Ok(stats)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d).await;
    }
}

/// Resolves on SIGTERM or SIGHUP (never elsewhere).
async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut t), Ok(mut h)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = h.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// Turn a terminal event into actions.
pub fn handle_input(driver: &mut Driver, ev: Event) {
    match ev {
        Event::Key(key) if key.kind == KeyEventKind::Press => {
            if let Some(a) = driver.app.key_action(&key) {
                driver.dispatch(a);
            }
        }
        Event::Mouse(m) => {
            if let Some(a) = driver.app.mouse_action(&m) {
                driver.dispatch(a);
            }
        }
        Event::Resize(w, h) => driver.dispatch(Action::Resize(w, h)),
        Event::Paste(text) if driver.app.prompt.is_open() => {
            for c in text.chars().filter(|c| !c.is_control()) {
                driver.dispatch(Action::InputChar(c));
            }
        }
        Event::Paste(text) if driver.app.context() == crate::studio::action::Context::Answer => {
            driver.dispatch(Action::AnswerPaste(text));
        }
        _ => {}
    }
}
