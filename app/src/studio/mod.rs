//! The studio: a terminal app that embeds the engine. Developers debug workflows in it,
//! operators watch runs.
//!
//! Layout of this module (state, events and drawing kept apart):
//! - [`app`]: the shell over the components and its two ways to change, `update(Action)` and
//!   `on_msg(Msg)`; it keeps what is shared ([`state`]: settings, focus, overlay; the status
//!   line, the runs going on) and routes to components that own their state and handle their
//!   own actions ([`panes`]: the workflows, the run history, the graph and the inspector, whose
//!   log is [`log_view`]; [`prompt`]: the `/` prompt; [`screens`]: the inbox, the checkpoint
//!   browser, the fleet view);
//! - [`live_runs`]: the studio's own runs as the shell sees them (start, cancel, events, the
//!   run history's recorded runs); [`mouse`]: clicks and the wheel;
//! - [`action`]: the actions and the one registry behind the keymap, the hints and the help;
//! - [`messages`]: the effects the app asks the runtime for and the messages it gets back;
//! - [`input`], [`keymap`], [`theme`], [`config`]: keys and the mouse to actions, colours and
//!   the user's config file;
//! - [`areas`]: where each pane goes on a screen of a given size (drawing and the mouse share it);
//! - [`model`]: runs, task states and logs folded from the engine's events;
//! - [`screens`]: the approvals inbox, the checkpoint browser and the fleet view (their state
//!   and update);
//! - [`graph`]: the graph model and its three views' geometry (lanes, layered layout), and
//!   [`canvas_view`]: where the canvas looks;
//! - [`ui`]: drawing, a pure function of the app;
//! - [`runtime`]: the driver that carries out effects (loads, runs, layouts, watching) and
//!   the event loop with the terminal.

pub mod action;
pub mod app;
pub mod areas;
pub mod canvas_view;
pub mod config;
pub mod graph;
pub mod input;
pub mod keymap;
pub mod live_runs;
pub mod log_view;
pub mod messages;
pub mod model;
pub mod mouse;
pub mod panes;
pub mod prompt;
pub mod runtime;
pub mod screens;
pub mod state;
pub mod theme;
pub mod ui;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use crossterm::event::EventStream;

use app::{App, Level, Settings};
use keymap::Keymap;
use runtime::Driver;
use runtime::event_loop::{self, TerminalHost};
use theme::Theme;

/// Arguments of `graflow studio`.
#[derive(Debug, Default, Clone, Args)]
pub struct StudioArgs {
    /// Workflow files or folders to open (default: sample-workflows/ when it exists, else .).
    pub paths: Vec<PathBuf>,
    /// Colour theme: dark, light, high-contrast, or a path to a theme .ron file.
    #[arg(long)]
    pub theme: Option<String>,
    /// Watch only: runs cannot be started, cancelled or resumed, questions not answered.
    #[arg(long)]
    pub read_only: bool,
    /// Leave the mouse to the terminal (text selection works as usual).
    #[arg(long)]
    pub no_mouse: bool,
    /// Where run history lives (default: GRAFLOW_STATE_DIR, else .graflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The studio config file (default: config.ron in the user's graflow config folder).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Watch a fleet: its live and recent runs (any one followed live), workers and queues,
    /// and the feedback requests kept in its Redis (`redis://host:port[/db]`).
    #[arg(long, value_name = "URL")]
    pub attach: Option<String>,
}

/// The paths to open: those given, else `sample-workflows/` when it exists, else `.`.
pub fn default_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if !paths.is_empty() {
        return paths.to_vec();
    }
    let samples = Path::new("sample-workflows");
    vec![if samples.is_dir() {
        samples.to_path_buf()
    } else {
        PathBuf::from(".")
    }]
}

/// Build the settings from the arguments, the config file and the environment. Problems
/// that should not stop the studio are returned as messages.
pub fn settings(args: &StudioArgs) -> Result<(Settings, Vec<String>), String> {
    let path = config::config_path(args.config.as_deref());
    let file = config::load(path.as_deref(), args.config.is_some())?;
    let mut notes = Vec::new();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = if no_color {
        Theme::monochrome()
    } else {
        let name = args
            .theme
            .clone()
            .or(file.theme.clone())
            .unwrap_or_else(|| "dark".into());
        match Theme::load(&name, config::config_dir().as_deref()) {
            Ok(t) => t,
            Err(e) if args.theme.is_some() => return Err(e),
            Err(e) => {
                notes.push(format!("config: {e}; using the dark theme"));
                Theme::dark()
            }
        }
    };
    let (keymap, problems) = Keymap::new(&file.keys);
    notes.extend(problems.into_iter().map(|p| format!("config: {p}")));
    Ok((
        Settings {
            theme,
            keymap,
            read_only: args.read_only,
            mouse: !args.no_mouse && file.mouse.unwrap_or(true),
            log_follow: file.log_follow.unwrap_or(true),
            log_wrap: file.log_wrap.unwrap_or(false),
        },
        notes,
    ))
}

/// Open the studio; returns the exit code.
pub async fn run(args: StudioArgs) -> anyhow::Result<i32> {
    const BAD_INPUT: i32 = 2;
    let (settings, notes) = match settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("graflow studio: {e}");
            return Ok(BAD_INPUT);
        }
    };
    let paths = default_paths(&args.paths);
    for p in &paths {
        if !p.exists() {
            eprintln!("graflow studio: no such file or folder: {}", p.display());
            return Ok(BAD_INPUT);
        }
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("graflow studio: needs a terminal (for scripts, use `graflow run FILE --json`)");
        return Ok(BAD_INPUT);
    }
    let fleet = match &args.attach {
        Some(url) => match runtime::fleet::FleetLink::connect(url.trim()).await {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("graflow studio: {e}");
                return Ok(BAD_INPUT);
            }
        },
        None => None,
    };
    let state_dir = crate::history::state_dir(args.state_dir.as_deref());
    let mouse = settings.mouse;
    let mut app = App::new(settings);
    if !notes.is_empty() {
        app.message = Some((notes.join("; "), Level::Error));
    }
    // Log lines must not scribble over the screen: standard error goes to a file meanwhile.
    if let Some(log) = runtime::term::stderr::log_path()
        && let Err(e) = runtime::term::stderr::redirect(&log)
    {
        let note = format!("log lines may show on screen ({}: {e})", log.display());
        app.message = Some((note, Level::Error));
    }
    let mut driver = Driver::new(app, state_dir);
    driver.open(paths, true);
    if let Some(fleet) = fleet {
        driver.attach_fleet(fleet);
    }
    let (terminal, guard) = runtime::term::enter(mouse)?;
    let mut host = TerminalHost::new(terminal);
    let result = event_loop::run(&mut driver, &mut host, EventStream::new()).await;
    drop(host);
    drop(guard);
    driver.shutdown(Duration::from_secs(2)).await;
    result?;
    Ok(0)
}
