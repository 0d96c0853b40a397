//! Connections to Redis and what to do when it goes away: a multiplexed connection that
//! reconnects by itself for ordinary commands, dedicated connections without a response
//! timeout for blocking reads, and retries with backoff for errors that a restart, a network
//! cut or a slow server cause (each reported with the server's address, never its password).
//!
//! The URL decides between one server (`redis://host:port[/db]`, `rediss://…`,
//! `redis+unix://…`) and a Redis Cluster (`redis+cluster://[user:pass@]host:port,host:port,…`:
//! any reachable seed node finds the others). [`Conn`] is either, so the fleet's code is one:
//! every script and pipeline it sends touches one hash tag, so one slot.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind,
    Value,
};

use crate::dispatch::FleetError;

/// The scheme of a Redis Cluster URL.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// How the fleet's Redis is reached.
#[derive(Clone)]
enum Target {
    /// One server.
    Single(redis::Client),
    /// A Redis Cluster.
    Cluster(Box<ClusterClients>),
}

/// A client of a cluster for ordinary commands and one, with a long response timeout, for
/// blocking reads.
#[derive(Clone)]
struct ClusterClients {
    normal: ClusterClient,
    blocking: ClusterClient,
}

/// A Redis server (or cluster) the fleet uses.
#[derive(Clone)]
pub struct Link {
    target: Target,
    shared: std::sync::Arc<parking_lot::Mutex<Shared>>,
    address: String,
}

/// The shared connection and when it was last replaced.
struct Shared {
    conn: Conn,
    renewed: Instant,
}

/// A cluster connection that keeps failing is replaced at most this often.
const RENEW_EVERY: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({})", self.address)
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The seed nodes of a cluster URL, each as a `redis://` URL carrying the credentials;
/// `None` when `url` is not a cluster URL.
pub fn cluster_seeds(url: &str) -> Option<Result<Vec<String>, FleetError>> {
    let bad = |reason: &str| FleetError::BadUrl {
        url: redact(url),
        reason: reason.into(),
    };
    let rest = url.strip_prefix(CLUSTER_SCHEME)?;
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (format!("{}@", &rest[..at]), &rest[at + 1..]),
        None => (String::new(), rest),
    };
    let (hosts, db) = match hosts.split_once('/') {
        Some((h, db)) => (h, db),
        None => (hosts, ""),
    };
    if !(db.is_empty() || db == "0") {
        return Some(Err(bad(&format!(
            "a Redis Cluster has only database 0, not '{db}'"
        ))));
    }
    let seeds: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}"))
        .collect();
    if seeds.is_empty() {
        return Some(Err(bad(
            "name at least one node: redis+cluster://host:port,host:port",
        )));
    }
    Some(Ok(seeds))
}

fn cluster_client(seeds: &[String], response: Duration) -> Result<ClusterClient, RedisError> {
    ClusterClient::builder(seeds.to_vec())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(response)
        .build()
}

impl Link {
    /// Open `url` (`redis://host:port[/db]`, or `redis+cluster://host:port,host:port` for a
    /// Redis Cluster); fails when the URL is malformed or Redis cannot be reached within `wait`.
    pub async fn connect(url: &str, wait: Duration) -> Result<Link, FleetError> {
        let address = redact(url);
        let bad = |e: &dyn std::fmt::Display| FleetError::BadUrl {
            url: address.clone(),
            reason: e.to_string(),
        };
        let target = match cluster_seeds(url) {
            Some(seeds) => {
                let seeds = seeds?;
                Target::Cluster(Box::new(ClusterClients {
                    normal: cluster_client(&seeds, Duration::from_secs(30)).map_err(|e| bad(&e))?,
                    // Blocking reads block for at most a few seconds: a long timeout, not none,
                    // so that a node cut off without a reset is noticed.
                    blocking: cluster_client(&seeds, Duration::from_secs(120))
                        .map_err(|e| bad(&e))?,
                }))
            }
            None => Target::Single(redis::Client::open(url).map_err(|e| bad(&e))?),
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let deadline = Instant::now() + wait;
        let mut delay = Duration::from_millis(50);
        let shared = loop {
            let opened = match &target {
                Target::Single(client) => {
                    ConnectionManager::new_with_config(client.clone(), config.clone())
                        .await
                        .map(Conn::Managed)
                }
                Target::Cluster(clients) => clients
                    .normal
                    .get_async_connection()
                    .await
                    .map(Conn::Cluster),
            };
            match opened {
                Ok(c) => break c,
                Err(e) if Instant::now() + delay < deadline && transient(&e) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(FleetError::Unreachable {
                        url: address,
                        reason: e.to_string(),
                    });
                }
            }
        };
        Ok(Link {
            target,
            shared: std::sync::Arc::new(parking_lot::Mutex::new(Shared {
                conn: shared,
                renewed: Instant::now(),
            })),
            address,
        })
    }

    /// The shared connection (cheap to clone; reconnects on its own).
    pub fn conn(&self) -> Conn {
        self.shared.lock().conn.clone()
    }

    /// On a cluster, replace the shared connection after it failed (a connection to a master
    /// demoted by a failover can stop answering instead of redirecting); at most every
    /// `RENEW_EVERY`. A single server's connection reconnects by itself: nothing to do.
    pub async fn renew(&self) {
        let Target::Cluster(clients) = &self.target else {
            return;
        };
        {
            let mut shared = self.shared.lock();
            if shared.renewed.elapsed() < RENEW_EVERY {
                return;
            }
            shared.renewed = Instant::now();
        }
        if let Ok(conn) = clients.normal.get_async_connection().await {
            self.shared.lock().conn = Conn::Cluster(conn);
        }
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The server's address for messages (no password).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A connection of its own, with no response timeout (a long one on a cluster), for
    /// blocking reads (`XREADGROUP BLOCK`, `XREAD BLOCK`, `BLPOP`).
    pub async fn blocking(&self) -> Result<Conn, RedisError> {
        match &self.target {
            Target::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(None);
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Multiplexed)
            }
            Target::Cluster(clients) => clients
                .blocking
                .get_async_connection()
                .await
                .map(Conn::Cluster),
        }
    }

    /// A synchronous connection, for the rare lookups a task body makes outside async code.
    pub fn sync(&self) -> Result<SyncConn, RedisError> {
        match &self.target {
            Target::Single(client) => {
                let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
                conn.set_read_timeout(Some(Duration::from_secs(10)))?;
                conn.set_write_timeout(Some(Duration::from_secs(10)))?;
                Ok(SyncConn::Single(conn))
            }
            Target::Cluster(clients) => clients
                .normal
                .get_connection()
                .map(|c| SyncConn::Cluster(Box::new(c))),
        }
    }
}

/// An async connection to the fleet's Redis: one server's (shared and reconnecting, or
/// dedicated to blocking reads) or a cluster's (routing each command by its key's slot).
#[derive(Clone)]
pub enum Conn {
    /// One server, the shared connection that reconnects by itself.
    Managed(ConnectionManager),
    /// One server, a dedicated connection.
    Multiplexed(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Multiplexed(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => Box::pin(cluster_pipeline(c, pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(c) => c.get_db(),
            Conn::Multiplexed(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// `INFO server` of the server holding `key`: on a cluster, its slot's master (whose
    /// `run_id` changes on a failover as on a restart).
    pub async fn server_info(&mut self, key: &str) -> Result<String, RedisError> {
        let mut info = redis::cmd("INFO");
        info.arg("server");
        match self {
            Conn::Cluster(c) => {
                use redis::cluster_routing::{
                    Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
                };
                let route = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let value = c
                    .route_command(
                        info,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(redis::from_redis_value(value)?)
            }
            other => info.query_async(other).await,
        }
    }
}

/// A pipeline on a cluster: sent as one when its commands share a slot; a plain (not atomic)
/// pipeline whose commands span slots (a worker's heartbeat record and the workers' index,
/// say) is sent command by command, which is what it means anyway.
async fn cluster_pipeline(
    c: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> Result<Vec<Value>, RedisError> {
    match c.req_packed_commands(pipeline, offset, count).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::CrossSlot) && offset == 0 => {
            let mut out = Vec::with_capacity(count);
            for cmd in pipeline.cmd_iter() {
                out.push(c.req_packed_command(cmd).await?);
            }
            Ok(out)
        }
        other => other,
    }
}

/// A synchronous connection: one server's or a cluster's.
pub enum SyncConn {
    /// One server.
    Single(redis::Connection),
    /// A Redis Cluster.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for SyncConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        match self {
            SyncConn::Single(c) => c.req_packed_command(cmd),
            SyncConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            SyncConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            SyncConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            SyncConn::Single(c) => c.req_command(cmd),
            SyncConn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            SyncConn::Single(c) => c.get_db(),
            SyncConn::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            SyncConn::Single(c) => c.check_connection(),
            SyncConn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            SyncConn::Single(c) => c.is_open(),
            SyncConn::Cluster(c) => c.is_open(),
        }
    }
}

/// Whether an error is worth retrying: the connection broke, timed out or was refused, the
/// server is loading its data or busy, or (on a cluster) a blocked read was released by a
/// failover.
pub fn transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
        || matches!(e.code(), Some("BUSY" | "UNBLOCKED"))
}

/// Run `op` until it succeeds or fails for a reason other than Redis being away; while Redis
/// is away, retry with backoff (50 ms doubling to 2 s) and warn every 10 s. `limit` bounds the
/// whole wait (`None`: wait as long as it takes).
pub async fn retry<T, F, Fut>(
    link: &Link,
    what: &str,
    limit: Option<Duration>,
    mut op: F,
) -> Result<T, RedisError>
where
    F: FnMut(Conn) -> Fut,
    Fut: Future<Output = Result<T, RedisError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut warned = Instant::now();
    let mut failures = 0u32;
    loop {
        match op(link.conn()).await {
            Ok(v) => {
                if failures > 3 {
                    tracing::warn!(
                        "Redis at {} is back: {what} went through after {:.1} s",
                        link.address,
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(v);
            }
            Err(e) if transient(&e) => {
                failures += 1;
                link.renew().await;
                if limit.is_some_and(|l| started.elapsed() + delay > l) {
                    return Err(e);
                }
                if warned.elapsed() >= Duration::from_secs(10) || failures == 4 {
                    warned = Instant::now();
                    tracing::warn!(
                        "Redis at {} is unreachable ({e}); {what}: retrying for {:.0} s so far",
                        link.address,
                        started.elapsed().as_secs_f64()
                    );
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Tells people when Redis goes away and when it is back, once per outage (and every 30 s
/// while it lasts), for loops that keep retrying on their own.
#[derive(Default)]
pub struct Outage {
    state: parking_lot::Mutex<Option<(Instant, Instant)>>,
}

impl Outage {
    /// An operation of `who` failed with `e`.
    pub fn failed(&self, who: &str, link: &Link, e: &RedisError) {
        if transient(e)
            && link.is_cluster()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let link = link.clone();
            runtime.spawn(async move { link.renew().await });
        }
        if !transient(e) {
            tracing::warn!("{who}: Redis at {}: {e}", link.address());
            return;
        }
        let mut state = self.state.lock();
        let now = Instant::now();
        match &mut *state {
            None => {
                *state = Some((now, now));
                tracing::warn!(
                    "{who}: Redis at {} is unreachable ({e}); retrying with backoff",
                    link.address()
                );
            }
            Some((since, told)) if told.elapsed() >= Duration::from_secs(30) => {
                *told = now;
                tracing::warn!(
                    "{who}: Redis at {} is still unreachable after {:.0} s ({e})",
                    link.address(),
                    since.elapsed().as_secs_f64()
                );
            }
            Some(_) => {}
        }
    }

    /// An operation of `who` went through.
    pub fn recovered(&self, who: &str, link: &Link) {
        if let Some((since, _)) = self.state.lock().take() {
            tracing::warn!(
                "{who}: Redis at {} is back after {:.1} s",
                link.address(),
                since.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://:secret@127.0.0.1:6379/0"),
            "redis://…@127.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2:7000"),
            "redis+cluster://…@10.0.0.1:7000,10.0.0.2:7000"
        );
    }

    #[test]
    fn a_cluster_url_names_its_seed_nodes() {
        assert_eq!(cluster_seeds("redis://127.0.0.1:6379"), None);
        assert_eq!(
            cluster_seeds("redis+cluster://a:7000, b:7001"),
            Some(Ok(vec!["redis://a:7000".into(), "redis://b:7001".into()]))
        );
        assert_eq!(
            cluster_seeds("redis+cluster://u:p@a:7000,b:7001/0"),
            Some(Ok(vec![
                "redis://u:p@a:7000".into(),
                "redis://u:p@b:7001".into()
            ]))
        );
        assert!(matches!(
            cluster_seeds("redis+cluster://a:7000/3"),
            Some(Err(_))
        ));
        assert!(matches!(cluster_seeds("redis+cluster://"), Some(Err(_))));
    }
}
