//! `graflow run FILE`: run a workflow headless, show its progress, record it in the run
//! history, and exit with the code of its status (DESIGN §5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use graflow_engine::file::LoadedWorkflow;
use graflow_engine::handler::Runtimes;
use graflow_engine::{Engine, EventKind, RunHandle, RunOptions, Value};
use std::sync::Arc;

use super::backend::BackendArgs;
use super::exit;
use super::load::load_or_report;
use super::progress;
use super::style::Style;
use crate::history::{self, Recorder};
use crate::runsetup;

/// Checkpoint options shared by `run` and `resume`.
#[derive(Debug, Args, Default)]
pub struct CheckpointArgs {
    /// Where checkpoints go (default: the file's `checkpoint_dir`, else <state dir>/checkpoints).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Keep only the newest N checkpoints of this workflow (default: the file's `keep_last`).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Delete this workflow's checkpoints older than this, e.g. 7d (default: the file's
    /// `keep_for`); the newest is always kept.
    #[arg(long, value_name = "DURATION", value_parser = keep_for_arg)]
    pub keep_for: Option<std::time::Duration>,
    /// Write a checkpoint after every completed task.
    #[arg(long)]
    pub checkpoint_every_task: bool,
    /// The state folder (default: $GRAFLOW_STATE_DIR, else .graflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `--keep-for`: a duration above zero, within the engine's limit.
fn keep_for_arg(text: &str) -> Result<std::time::Duration, String> {
    match graflow_engine::limits::parse_duration(text, "--keep-for")? {
        d if d.is_zero() => Err("--keep-for must be longer than zero".into()),
        d => Ok(d),
    }
}

/// Arguments of `graflow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file.
    pub file: PathBuf,
    /// Print the run's events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Set a channel value before the run (`v` is JSON when it parses, else a string); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Where parallel groups run.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Checkpoints and state.
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
}

/// Parse `--set k=v` pairs.
pub fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            return Err(format!("--set '{s}': expected KEY=VALUE"));
        };
        if k.trim().is_empty() {
            return Err(format!("--set '{s}': the key is empty"));
        }
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}

/// Refuse `--set` keys a workflow that declares `params` does not declare (a typo would
/// otherwise run silently with the default): one message per unknown key, with a "did you
/// mean". A workflow that declares no `params` takes any key as an initial channel value.
pub fn check_sets(sets: &BTreeMap<String, Value>, loaded: &LoadedWorkflow) -> Result<(), String> {
    let declared: Vec<&str> = loaded.spec.params.keys().map(String::as_str).collect();
    if declared.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for key in sets.keys().filter(|k| !declared.contains(&k.as_str())) {
        let guess = graflow_engine::suggest::did_you_mean(key, declared.iter().copied())
            .map(|g| format!("; {g}"))
            .unwrap_or_default();
        problems.push(format!(
            "--set {key}: '{}' declares no parameter '{key}'{guess}",
            loaded.workflow.name()
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let known = format!("declared: {}", declared.join(", "));
    Err(format!(
        "{}\n  hint: {known}; a new parameter goes under `params: {{…}}` in {}",
        problems.join("\n"),
        loaded.path.display()
    ))
}

impl CheckpointArgs {
    /// The checkpoint folder for `loaded`.
    pub fn dir(&self, loaded: &LoadedWorkflow) -> PathBuf {
        if let Some(d) = &self.checkpoint_dir {
            return d.clone();
        }
        runsetup::checkpoint_dir(loaded, &history::state_dir(self.state_dir.as_deref()))
    }

    /// Run options with checkpoints and human feedback configured for `loaded`.
    pub fn options(&self, loaded: &LoadedWorkflow, dir: PathBuf) -> RunOptions {
        let state_dir = history::state_dir(self.state_dir.as_deref());
        let mut config = loaded.checkpoint_config(dir, self.keep_last);
        config.keep_for = self.keep_for.or(config.keep_for);
        config.signing_key = runsetup::checkpoint_key(&state_dir);
        let mut options = RunOptions::new().with_events().checkpoints(config);
        options.checkpoint_every_task = self.checkpoint_every_task;
        options.feedback = Some(Arc::new(runsetup::feedback_manager(
            &state_dir,
            loaded.notifiers(),
        )));
        options
    }
}

/// Run the workflow; returns the exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let err = Style::stderr();
    let params = match parse_sets(&args.set) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow run: {e}")));
            return Ok(exit::BAD_INPUT);
        }
    };
    let runtimes = Runtimes::default();
    let Some(loaded) = load_or_report(&args.file, &runtimes, &err) else {
        return Ok(exit::BAD_INPUT);
    };
    if let Err(e) = check_sets(&params, &loaded) {
        eprintln!("{}", err.error(&format!("graflow run: {e}")));
        return Ok(exit::BAD_INPUT);
    }
    let mut options = args
        .checkpoints
        .options(&loaded, args.checkpoints.dir(&loaded));
    options.params = params;
    let watch = match args
        .backend
        .apply(&loaded, &runtimes, &mut options, &err)
        .await
    {
        Ok(watch) => watch,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow run: {e}")));
            return Ok(exit::BAD_INPUT);
        }
    };
    let handle = Engine::new().start(loaded.workflow.clone(), options);
    let state_dir = history::state_dir(args.checkpoints.state_dir.as_deref());
    follow(
        handle, &loaded, &args.file, &state_dir, args.json, None, watch,
    )
    .await
}

/// Show a started run until it ends, recording it in the history; returns the exit code.
pub async fn follow(
    mut handle: RunHandle,
    loaded: &LoadedWorkflow,
    file: &Path,
    state_dir: &Path,
    json: bool,
    resumed_from: Option<&str>,
    mut watch: Option<super::backend::FleetWatch>,
) -> anyhow::Result<i32> {
    if let Some(w) = watch.as_mut() {
        w.attach(&handle);
    }
    let Some(mut events) = handle.take_events() else {
        anyhow::bail!("the engine gave no event stream");
    };
    let mut recorder = Recorder::start(
        state_dir,
        handle.run_id(),
        loaded.workflow.name(),
        Some(file),
        resumed_from,
    );
    let mut printer = progress::for_output(json);
    let mut batch = Vec::with_capacity(256);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut interrupted = false;
    'events: loop {
        tokio::select! {
            n = events.recv_many(&mut batch, 256) => {
                if n == 0 {
                    break;
                }
                for event in batch.drain(..) {
                    // One JSON line per event serves both the history and `--json`.
                    let line = if json || recorder.records_events() {
                        event.to_json_line()
                    } else {
                        String::new()
                    };
                    recorder.event_line(&event, &line);
                    printer.event_line(&event, &line);
                    if matches!(event.kind, EventKind::RunFinished { .. }) {
                        printer.flush();
                        break 'events;
                    }
                }
                // The batch reaches the history file now (`graflow serve` streams it live).
                recorder.flush();
                printer.flush();
            }
            _ = ticker.tick(), if printer.wants_ticks() => printer.flush(),
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                handle.cancel("interrupted (Ctrl-C)");
            }
        }
    }
    printer.finish();
    let outcome = handle.wait().await;
    if let Some(w) = watch {
        w.finish(&Style::stderr()).await;
    }
    // Webhooks still being delivered (a pausing run's `timed_out`, retries) get a moment.
    graflow_engine::hitl::flush_deliveries(Duration::from_secs(15)).await;
    // Containers of executions that were stopped (Ctrl-C, timeouts) are removed before exit.
    let _ = tokio::task::spawn_blocking(|| {
        graflow_engine::handler::docker::wait_for_cleanups(Duration::from_secs(15))
    })
    .await;
    if let Some(p) = &outcome.paused {
        eprintln!(
            "{}",
            Style::stderr().warning(&format!(
                "paused: waiting for feedback {id}. Answer it in the studio, with `graflow feedback respond {id} …` or through `graflow serve`, then continue with:\n  graflow resume {}",
                p.checkpoint,
                id = p.feedback_id
            ))
        );
    }
    Ok(exit::for_status(outcome.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_values_are_json_when_they_parse() {
        let p = parse_sets(&[
            "n=3".into(),
            "name=ada".into(),
            "obj={\"a\":[1]}".into(),
            "eq=a=b".into(),
        ])
        .unwrap();
        assert_eq!(p["n"], json!(3));
        assert_eq!(p["name"], json!("ada"));
        assert_eq!(p["obj"], json!({"a": [1]}));
        assert_eq!(p["eq"], json!("a=b"));
        assert!(parse_sets(&["novalue".into()]).is_err());
        assert!(parse_sets(&["=1".into()]).is_err());
    }
}
