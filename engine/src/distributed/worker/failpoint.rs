//! Failpoints for fault tests: `GRAFLOW_FAILPOINT=<point>:abort[:<task>],…` makes the worker
//! process abort (as `kill -9` would end it) at a chosen point of an attempt, optionally only
//! for one task. Points: `after_fetch` (read from the queue, not started), `after_start`
//! (started, body not run), `after_body` (body done, outcome not committed), `after_commit`
//! (committed, entry not acknowledged). Unset, a check costs one atomic load.

use std::sync::OnceLock;

struct Point {
    name: String,
    task: Option<String>,
}

fn points() -> &'static [Point] {
    static POINTS: OnceLock<Vec<Point>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var("GRAFLOW_FAILPOINT")
            .unwrap_or_default()
            .split(',')
            .filter_map(|spec| {
                let mut parts = spec.trim().splitn(3, ':');
                let name = parts.next()?.to_string();
                (parts.next()? == "abort").then(|| Point {
                    name,
                    task: parts.next().map(str::to_string),
                })
            })
            .collect()
    })
}

/// Abort the process when failpoint `name` is set for `task`.
pub(crate) fn hit(name: &str, task: &str) {
    if points()
        .iter()
        .any(|p| p.name == name && p.task.as_deref().is_none_or(|t| t == task))
    {
        eprintln!("failpoint {name} hit at task {task}: aborting");
        std::process::abort();
    }
}
