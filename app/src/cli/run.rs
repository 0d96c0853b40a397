//! `graflow run FILE`: run a workflow headless, show its progress, record it in the run
//! history, and exit with the code of its status (DESIGN §5).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use graflow_engine::handler::Runtimes;
use graflow_engine::{Engine, EventKind, RunOptions, Value};

use super::exit;
use super::load::load_or_report;
use super::progress;
use super::style::Style;
use crate::history::{self, Recorder};

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
    /// Run parallel groups on a Redis worker fleet (`redis://host:port[/db]`).
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
    /// Where checkpoints go (default: <state dir>/checkpoints, or the file's `checkpoint_dir`).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// The state folder (default: $GRAFLOW_STATE_DIR, else .graflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
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
    if let Some(url) = &args.backend {
        eprintln!(
            "{}",
            err.error(&format!(
                "graflow run: --backend {url}: the Redis backend is not available in this build yet"
            ))
        );
        return Ok(exit::BAD_INPUT);
    }
    let runtimes = Runtimes::default();
    let Some(loaded) = load_or_report(&args.file, &runtimes, &err) else {
        return Ok(exit::BAD_INPUT);
    };
    let state_dir = history::state_dir(args.state_dir.as_deref());
    let mut options = RunOptions::new().with_events();
    options.params = params;
    let mut handle = Engine::new().start(loaded.workflow.clone(), options);
    let Some(mut events) = handle.take_events() else {
        anyhow::bail!("the engine gave no event stream");
    };
    let mut recorder = Recorder::start(
        &state_dir,
        handle.run_id(),
        loaded.workflow.name(),
        Some(&args.file),
    );
    let mut printer = progress::for_output(args.json);
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
                    recorder.event(&event);
                    printer.event(&event);
                    if matches!(event.kind, EventKind::RunFinished { .. }) {
                        printer.flush();
                        break 'events;
                    }
                }
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
