//! `graflow events --attach redis://… [RUN]`: a run's events as JSON lines, wherever it runs
//! (the same lines as `graflow run --json`, each with a `worker` field where a worker did the
//! work), read from the run's event stream in Redis and followed live until `run_finished`;
//! the exit code is the run's (DESIGN §5). Without RUN: the fleet's live and recent runs.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::watch::{self, RunFollower};
use graflow_engine::distributed::{FleetConfig, is_redis_url};
use graflow_engine::{EventKind, RunEvent};

use super::exit;
use super::style::Style;

/// Arguments of `graflow events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The fleet's Redis (`redis://host:port[/db]`) [env: GRAFLOW_BACKEND].
    #[arg(long, value_name = "URL")]
    pub attach: Option<String>,
    /// The run to follow; without it, list the live and recent runs.
    pub run: Option<String>,
    /// How long to wait for a run that has not written its first event yet.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

/// The Redis URL of `--attach`, else `GRAFLOW_BACKEND`.
pub fn attach_url(flag: Option<&str>) -> Result<String, String> {
    let url = flag
        .map(str::to_string)
        .or_else(|| std::env::var("GRAFLOW_BACKEND").ok())
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or("name the fleet's Redis with --attach redis://host:port (or GRAFLOW_BACKEND)")?;
    if !is_redis_url(&url) {
        return Err(format!("--attach {url}: expected redis://host:port[/db]"));
    }
    Ok(url)
}

/// Connect to the fleet at `url`: its connection and key layout.
pub async fn connect(url: &str) -> Result<(Link, Keys), String> {
    let config = FleetConfig::new(url);
    let link = Link::connect(url, Duration::from_secs(5)).await?;
    Ok((link, Keys::new(config.prefix)))
}

/// Run the command; returns the exit code.
pub async fn run(args: EventsArgs) -> anyhow::Result<i32> {
    let err = Style::stderr();
    let url = match attach_url(args.attach.as_deref()) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow events: {e}")));
            return Ok(exit::BAD_INPUT);
        }
    };
    let (link, keys) = match connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow events: {e}")));
            return Ok(exit::FAILURE);
        }
    };
    let Some(run) = args.run else {
        return list(&link, &keys, &err).await;
    };
    if !graflow_engine::valid_run_id(&run) {
        eprintln!(
            "{}",
            err.error(&format!("graflow events: '{run}' is not a run id"))
        );
        return Ok(exit::BAD_INPUT);
    }
    follow(&link, &keys, &run, args.wait, &err).await
}

async fn list(link: &Link, keys: &Keys, err: &Style) -> anyhow::Result<i32> {
    match watch::list_runs(link, keys, 100).await {
        Ok(runs) => {
            let mut out = std::io::stdout().lock();
            if runs.is_empty() {
                let _ = writeln!(out, "no run on this fleet yet");
            }
            for r in runs {
                let status = r.status.as_deref().unwrap_or("");
                let _ = writeln!(
                    out,
                    "{}  {:<6} {:<9} {}  ({})",
                    r.run_id, r.state, status, r.workflow, r.host
                );
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow events: {e}")));
            Ok(exit::FAILURE)
        }
    }
}

async fn follow(
    link: &Link,
    keys: &Keys,
    run: &str,
    wait: Duration,
    err: &Style,
) -> anyhow::Result<i32> {
    let mut follower = RunFollower::new(link.clone(), keys, run);
    let started = std::time::Instant::now();
    let mut seen_any = false;
    let mut failures = 0u32;
    loop {
        let lines = match follower.next_lines(Duration::from_millis(1000)).await {
            Ok(l) => {
                failures = 0;
                l
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(10) {
                    eprintln!("{}", err.warning(&format!("graflow events: {e}; retrying")));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut out = std::io::stdout().lock();
        for line in &lines {
            seen_any = true;
            if writeln!(out, "{line}").is_err() {
                return Ok(exit::SUCCESS); // the reader went away (a closed pipe)
            }
            if follower.ended()
                && let Ok(RunEvent {
                    kind: EventKind::RunFinished { status, .. },
                    ..
                }) = RunEvent::from_json(line)
            {
                let _ = out.flush();
                return Ok(exit::for_status(status));
            }
        }
        let _ = out.flush();
        drop(out);
        if !seen_any && started.elapsed() >= wait {
            let known = watch::run_summary(link, keys, run).await.ok().flatten();
            if known.is_none() {
                eprintln!(
                    "{}",
                    err.error(&format!(
                        "graflow events: no run '{run}' on Redis at {} (list them with `graflow events --attach URL`)",
                        link.address()
                    ))
                );
                return Ok(exit::BAD_INPUT);
            }
        }
    }
}
