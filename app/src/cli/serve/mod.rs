//! `graflow serve`: the human-feedback REST API, its web form and `/metrics`, over the
//! feedback files of the state dir (shared with `graflow run`, `graflow feedback` and the
//! studio started in the same folder); the run history and live run and feedback events as
//! Server-Sent Events; the OpenAPI document of it all. Guide: docs/feedback.md.

mod auth;
mod feed;
mod hosts;
mod html;
mod metrics;
pub mod openapi;
mod routes;
mod runs;
mod streams;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use graflow_engine::hitl::FeedbackBackend;

use super::exit;
use super::style::Style;
use crate::cli::out::outln;
use crate::history;

pub use auth::Token;
pub use metrics::Metrics;

/// Largest request body accepted (answers are small); bigger ones get 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Arguments of `graflow serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// Bearer token required on /api, /ui and /metrics (prefer the environment variable:
    /// command lines are visible to other users).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GRAFLOW_SERVE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The state folder (default: $GRAFLOW_STATE_DIR, else .graflow).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Another host name requests may be addressed to (the bind address and loopback names
    /// always are); repeat for several. Others are refused (DNS rebinding).
    #[arg(
        long = "allow-host",
        value_name = "NAME",
        env = "GRAFLOW_SERVE_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
    /// The fleet's Redis, where runs with `--backend` keep their requests
    /// (`redis://host:port[/db]`; `local`: the state folder) [env: GRAFLOW_BACKEND].
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
}

/// What every handler shares.
pub struct AppState {
    /// Where requests and answers live.
    pub backend: Arc<dyn FeedbackBackend>,
    /// The token, when one is required.
    pub token: Option<Token>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// When the server started.
    pub started: Instant,
    /// The hosts requests may name.
    pub hosts: hosts::AllowedHosts,
    /// The state folder (run history).
    pub state_dir: PathBuf,
    /// Open event streams, their cap and the stop signal.
    pub streams: streams::Streams,
    /// The feedback watcher behind `/api/feedback/events`.
    pub feed: Arc<feed::Feed>,
    /// The fleet's Redis, whose runs are listed and followed beside the state dir's.
    pub fleet: Option<runs::Fleet>,
}

/// Why the server cannot start.
fn refuse(message: &str) -> i32 {
    eprintln!(
        "{}",
        Style::stderr().error(&format!("graflow serve: {message}"))
    );
    exit::BAD_INPUT
}

/// Resolve `addr` to socket addresses.
async fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    if !addr.contains(':') {
        return Err(format!(
            "--addr '{addr}': expected host:port, e.g. 127.0.0.1:8000"
        ));
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| format!("--addr '{addr}': {e}"))?
        .collect();
    if found.is_empty() {
        return Err(format!("--addr '{addr}': the host resolves to no address"));
    }
    Ok(found)
}

/// Serve until SIGINT/SIGTERM; returns the exit code.
pub async fn run(args: ServeArgs) -> i32 {
    let token = match args.token.as_deref() {
        None => None,
        Some(t) if t.trim().is_empty() => {
            return refuse("the token is empty; give a non-empty --token or GRAFLOW_SERVE_TOKEN");
        }
        Some(t) => Some(Token::new(t)),
    };
    let addrs = match resolve(&args.addr).await {
        Ok(a) => a,
        Err(e) => return refuse(&e),
    };
    if token.is_none()
        && let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback())
    {
        return refuse(&format!(
            "refusing to listen on {open} without a token: anyone who reaches it could answer \
             or cancel feedback requests. Set --token or GRAFLOW_SERVE_TOKEN, or listen on \
             127.0.0.1"
        ));
    }
    let listener = match tokio::net::TcpListener::bind(&addrs[..]).await {
        Ok(l) => l,
        Err(e) => return refuse(&format!("cannot listen on {}: {e}", args.addr)),
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return refuse(&format!("cannot listen on {}: {e}", args.addr)),
    };
    let state_dir = history::state_dir(args.state_dir.as_deref());
    let dir = state_dir.join("feedback");
    let url = crate::runsetup::backend_url(args.backend.as_deref());
    let backend = match crate::runsetup::feedback_store(&state_dir, url.as_deref()).await {
        Ok(b) => b,
        Err(e) => return refuse(&e),
    };
    // With a fleet, its runs are listed and followed too.
    let fleet = match &url {
        Some(url) => match super::events::connect(url).await {
            Ok((link, keys)) => Some(runs::Fleet { link, keys }),
            Err(e) => return refuse(&e),
        },
        None => None,
    };
    let feed = feed::Feed::new(backend.clone());
    // The store as it is now: changes from here on are events.
    feed.poll().await;
    let state = Arc::new(AppState {
        backend,
        token,
        metrics: Metrics::default(),
        started: Instant::now(),
        hosts: hosts::AllowedHosts::new(local, &args.addr, &args.allow_hosts),
        state_dir: state_dir.clone(),
        streams: streams::Streams::new(streams::MAX_STREAMS),
        feed,
        fleet,
    });
    state.feed.spawn(state.streams.stop_signal());
    let protected = if state.token.is_some() {
        " (bearer token required)"
    } else {
        ""
    };
    outln!("graflow serve: listening on http://{local}{protected}");
    outln!("  web form:  http://{local}/ui/feedback/");
    outln!("  REST API:  http://{local}/api/feedback, http://{local}/api/runs");
    outln!("  OpenAPI:   http://{local}/api/openapi.json");
    match &url {
        Some(url) => outln!(
            "  requests:  {}",
            graflow_engine::distributed::conn::redact(url)
        ),
        None => outln!("  requests:  {}", dir.display()),
    }
    tracing::info!("graflow serve listening on http://{local}");
    let app = routes::router(state.clone());
    let stopping = async move {
        super::signals::shutdown_signal().await;
        // Event streams never end by themselves: end them so the shutdown does not wait.
        state.streams.stop();
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(stopping)
        .await
    {
        Ok(()) => {
            eprintln!("graflow serve: stopped");
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", Style::stderr().error(&format!("graflow serve: {e}")));
            exit::FAILURE
        }
    }
}
