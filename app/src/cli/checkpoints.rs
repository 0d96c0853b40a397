//! `graflow checkpoints [DIR]`: list checkpoints, newest first — time, workflow, run, step,
//! why, metadata and size.

use std::path::PathBuf;

use clap::Args;
use graflow_engine::checkpoint::store;

use super::exit;
use super::out::outln;
use super::style::Style;
use crate::history;
use crate::runsetup::{checkpoint_warn_bytes, human_bytes};
use crate::text;

/// Arguments of `graflow checkpoints`.
#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    /// The folder (default: <state dir>/checkpoints).
    pub dir: Option<PathBuf>,
    /// One JSON object per checkpoint instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The state folder (default: $GRAFLOW_STATE_DIR, else .graflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Print the list; exit 0 (an empty or missing folder lists nothing).
/// `  (zstd: 40.0 MB of JSON, 12.3× smaller)` for a compressed checkpoint, else nothing.
fn compression(info: &store::CheckpointInfo) -> String {
    match info.content_bytes {
        Some(content) if info.size_bytes > 0 => format!(
            "  (zstd: {} of JSON, {:.1}× smaller)",
            human_bytes(content),
            content as f64 / info.size_bytes as f64
        ),
        _ => String::new(),
    }
}

pub fn run(args: &CheckpointsArgs) -> i32 {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| history::state_dir(args.state_dir.as_deref()).join("checkpoints"));
    let list = store::list(&dir);
    if args.json {
        for info in &list {
            outln!("{}", serde_json::to_string(info).unwrap_or_default());
        }
        return exit::SUCCESS;
    }
    let style = Style::stdout();
    if list.is_empty() {
        outln!("no checkpoints in {}", dir.display());
        return exit::SUCCESS;
    }
    outln!(
        "{}",
        style.bold(&format!(
            "{:<20} {:<18} {:<17} {:>5} {:<18} {:>9}  {}",
            "time", "workflow", "run", "step", "why", "size", "metadata / file"
        ))
    );
    for info in &list {
        let time: String = info.created_at.replace('T', " ").chars().take(19).collect();
        let why = match &info.task {
            Some(t) => format!(
                "{} ({t})",
                serde_json::to_value(info.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            None => serde_json::to_value(info.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        let size = text::pad_left(&human_bytes(info.size_bytes), 9);
        let size = if info.size_bytes > checkpoint_warn_bytes() {
            style.warning(&size)
        } else {
            size
        };
        let meta = serde_json::to_string(&info.metadata).unwrap_or_default();
        let meta = text::cut(&meta, 60);
        outln!(
            "{} {} {} {:>5} {} {size}  {meta}\n{}",
            text::pad(&time, 20),
            text::pad(&info.workflow, 18),
            text::pad(&info.run_id, 17),
            info.steps,
            text::pad(&why, 18),
            style.dim(&format!("  {}{}", info.path.display(), compression(info)))
        );
    }
    exit::SUCCESS
}
