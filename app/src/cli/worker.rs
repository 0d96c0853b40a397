//! `graflow worker`: a worker of the Redis fleet. It takes task attempts from its queues
//! (never more than its free slots), runs them, commits each outcome once, and serves its
//! metrics as Prometheus text. SIGTERM or Ctrl-C drains it: no new attempt is taken, running
//! ones get the grace period, the rest go back to their queue at once.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use graflow_engine::distributed::{FleetConfig, TaskRegistry, Worker, WorkerConfig, is_redis_url};
use graflow_engine::handler::Runtimes;

use super::exit;
use super::style::Style;

/// Arguments of `graflow worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The fleet's Redis (`redis://host:port[/db]`, or `redis+cluster://host:port,host:port` for a Redis Cluster) [env: GRAFLOW_BACKEND].
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// A queue to take tasks from (repeatable; default: `default`).
    #[arg(long = "queue", value_name = "NAME")]
    pub queues: Vec<String>,
    /// Attempts run at once.
    #[arg(long, default_value_t = NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN), value_name = "N")]
    pub concurrency: NonZeroUsize,
    /// An attempt's lease: renewed while it runs; a worker that stops renewing loses its
    /// attempts to other workers after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lease: Duration,
    /// How long a shutdown waits for running attempts before handing them back.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub grace: Duration,
    /// Deliveries of one attempt before it is dead-lettered (its worker died every time).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_deliveries: u32,
    /// Serve Prometheus metrics (`/metrics`) and a health check (`/healthz`) here.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// Run the worker until a signal; returns the exit code.
pub async fn run(args: WorkerArgs) -> anyhow::Result<i32> {
    let err = Style::stderr();
    let Some(url) = args
        .redis
        .clone()
        .or_else(|| std::env::var("GRAFLOW_BACKEND").ok())
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!(
            "{}",
            err.error("graflow worker: name the fleet's Redis with --redis redis://host:port (or GRAFLOW_BACKEND)")
        );
        return Ok(exit::BAD_INPUT);
    };
    if !is_redis_url(&url) {
        eprintln!(
            "{}",
            err.error(&format!(
                "graflow worker: --redis {url}: expected redis://host:port[/db] or redis+cluster://host:port,host:port"
            ))
        );
        return Ok(exit::BAD_INPUT);
    }
    if args.lease < Duration::from_millis(300) {
        eprintln!(
            "{}",
            err.error("graflow worker: --lease must be at least 300ms")
        );
        return Ok(exit::BAD_INPUT);
    }
    let mut config = WorkerConfig::new(FleetConfig::new(url));
    if !args.queues.is_empty() {
        config.queues = args.queues.clone();
    }
    config.concurrency = args.concurrency;
    config.lease = args.lease;
    config.grace = args.grace;
    config.max_deliveries = args.max_deliveries.max(1);
    let worker = match Worker::start(config.clone(), TaskRegistry::new(), Runtimes::default()).await
    {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow worker: {e}")));
            return Ok(exit::BAD_INPUT);
        }
    };
    let metrics = match args.metrics_addr {
        Some(addr) => match serve_metrics(addr, worker.clone()).await {
            Ok(local) => Some(local),
            Err(e) => {
                eprintln!(
                    "{}",
                    err.error(&format!("graflow worker: cannot listen on {addr}: {e}"))
                );
                return Ok(exit::BAD_INPUT);
            }
        },
        None => None,
    };
    eprintln!(
        "graflow worker {}: ready on {} — queues {}, {} slots, lease {}{}",
        worker.id(),
        graflow_engine::distributed::conn::redact(&config.fleet.url),
        config.queues.join(", "),
        config.concurrency,
        humantime::format_duration(config.lease),
        metrics
            .map(|a| format!(", metrics on http://{a}/metrics"))
            .unwrap_or_default()
    );
    let report = worker.run(super::signals::shutdown_signal()).await;
    eprintln!(
        "graflow worker {}: stopped after {} attempts{}",
        worker.id(),
        report.processed,
        if report.released > 0 {
            format!(
                "; {} running attempts went back to their queue",
                report.released
            )
        } else {
            String::new()
        }
    );
    // Containers of attempts that were stopped are removed before exit.
    let _ = tokio::task::spawn_blocking(|| {
        graflow_engine::handler::docker::wait_for_cleanups(Duration::from_secs(15))
    })
    .await;
    Ok(exit::SUCCESS)
}

/// Serve `/metrics` and `/healthz` on `addr`; returns the bound address.
async fn serve_metrics(addr: SocketAddr, worker: Worker) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let worker = Arc::new(worker);
    let app = Router::new()
        .route(
            "/metrics",
            get({
                let worker = worker.clone();
                move || {
                    let text = worker.prometheus();
                    async move {
                        (
                            [(
                                header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            text,
                        )
                            .into_response()
                    }
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let record = worker.record();
                let body = serde_json::to_string(&record).unwrap_or_default();
                async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(local)
}
