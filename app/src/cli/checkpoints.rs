//! `graflow checkpoints [DIR]`: list checkpoints, newest first — time, workflow, run, step,
//! why, metadata and size. With `--backend redis://…`, the checkpoints
//! kept in the fleet's Redis instead, each with its name (what `graflow resume` takes) and key.

use std::path::PathBuf;

use clap::Args;
use graflow_engine::checkpoint::{CheckpointStore, store};

use super::exit;
use super::out::outln;
use super::style::Style;
use crate::history;
use crate::runsetup::{self, checkpoint_warn_bytes, human_bytes};
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
    /// List the checkpoints kept in the fleet's Redis (`redis://host:port[/db]`; `local`: the
    /// folder). Unlike `run`, `GRAFLOW_BACKEND` alone does not switch this listing.
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
}

/// `  (zstd: 40.0 MB of JSON, 12.3× smaller)` for a compressed checkpoint, else nothing.
fn compression(info: &store::CheckpointInfo) -> String {
    runsetup::compression_note(info)
        .map(|note| format!("  ({note})"))
        .unwrap_or_default()
}

/// The header of the table.
fn header(style: &Style) {
    outln!(
        "{}",
        style.bold(&format!(
            "{:<20} {:<18} {:<17} {:>5} {:<18} {:>9}  {}",
            "time", "workflow", "run", "step", "why", "size", "metadata / file"
        ))
    );
}

/// One checkpoint: its row, then `place` (dimmed) below it.
fn row(style: &Style, info: &store::CheckpointInfo, place: &str) {
    let time: String = info.created_at.replace('T', " ").chars().take(19).collect();
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
        text::pad(&runsetup::checkpoint_why(info), 18),
        style.dim(&format!("  {place}{}", compression(info)))
    );
}

/// Print the list; exit 0 (an empty or missing folder lists nothing). With a fleet backend,
/// the fleet's list (exit 2 when its Redis cannot be reached).
pub async fn run(args: &CheckpointsArgs) -> i32 {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| history::state_dir(args.state_dir.as_deref()).join("checkpoints"));
    // `--backend URL` lists the fleet's. `GRAFLOW_BACKEND` alone does not: it is set on
    // every machine of a fleet, where this command lists what the machine holds.
    let fleet = args
        .backend
        .as_deref()
        .and_then(|flag| runsetup::backend_url(Some(flag)));
    if let Some(url) = fleet {
        return run_fleet(args, &url, &dir).await;
    }
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
    header(&style);
    for info in &list {
        row(&style, info, &info.path.display().to_string());
    }
    exit::SUCCESS
}

/// The checkpoints kept in the fleet's Redis at `url`; `dir` is where this machine keeps its
/// own (a checkpoint also there says so).
async fn run_fleet(args: &CheckpointsArgs, url: &str, dir: &std::path::Path) -> i32 {
    let err = Style::stderr();
    let listing = match super::backend::checkpoint_store(url).await {
        Ok(fleet) => fleet
            .list()
            .await
            .map(|l| (l, fleet.describe()))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let (listing, place) = match listing {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow checkpoints: {e}")));
            return exit::BAD_INPUT;
        }
    };
    for skipped in &listing.skipped {
        eprintln!(
            "{}",
            err.warning(&format!("graflow checkpoints: not listed: {skipped}"))
        );
    }
    let here = |reference: &str| {
        let path = dir.join(format!("{reference}.ckpt"));
        path.exists().then_some(path)
    };
    if args.json {
        for entry in &listing.entries {
            let mut value = serde_json::to_value(&entry.info).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("reference".into(), entry.reference.clone().into());
                object.insert("stored_in".into(), "redis".into());
                object.insert("key".into(), entry.location.clone().into());
                if let Some(path) = here(&entry.reference) {
                    object.insert("local_path".into(), path.display().to_string().into());
                }
            }
            outln!("{}", serde_json::to_string(&value).unwrap_or_default());
        }
        return exit::SUCCESS;
    }
    let style = Style::stdout();
    if listing.entries.is_empty() {
        outln!("no checkpoints in {place}");
        return exit::SUCCESS;
    }
    header(&style);
    for entry in &listing.entries {
        let also = here(&entry.reference)
            .map(|p| format!(", also at {}", p.display()))
            .unwrap_or_default();
        row(
            &style,
            &entry.info,
            &format!(
                "{}  in {place}, key {}{also}",
                entry.reference, entry.location
            ),
        );
    }
    exit::SUCCESS
}
