//! Connections to Redis and what to do when it goes away: a multiplexed connection that
//! reconnects by itself for ordinary commands, dedicated connections without a response
//! timeout for blocking reads, and retries with backoff for errors that a restart, a network
//! cut or a slow server cause (each reported with the server's address, never its password).

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, ServerErrorKind};

/// A Redis server the fleet uses.
#[derive(Clone)]
pub struct Link {
    client: redis::Client,
    manager: ConnectionManager,
    address: String,
}

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

impl Link {
    /// Open `url` (`redis://host:port[/db]`); fails when the URL is malformed or the server
    /// cannot be reached within `wait`.
    pub async fn connect(url: &str, wait: Duration) -> Result<Link, String> {
        let address = redact(url);
        let client =
            redis::Client::open(url).map_err(|e| format!("'{address}' is not a Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let deadline = Instant::now() + wait;
        let mut delay = Duration::from_millis(50);
        let manager = loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(m) => break m,
                Err(e) if Instant::now() + delay < deadline && transient(&e) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(format!("cannot reach Redis at {address}: {e}")),
            }
        };
        Ok(Link {
            client,
            manager,
            address,
        })
    }

    /// The shared connection (cheap to clone; reconnects on its own).
    pub fn conn(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The server's address for messages (no password).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A connection of its own, with no response timeout, for blocking reads (`XREADGROUP
    /// BLOCK`, `XREAD BLOCK`, `BLPOP`).
    pub async fn blocking(&self) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// A synchronous connection, for the rare lookups a task body makes outside async code.
    pub fn sync(&self) -> Result<redis::Connection, RedisError> {
        let conn = self
            .client
            .get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        conn.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(conn)
    }
}

/// Whether an error is worth retrying: the connection broke, timed out or was refused, or the
/// server is loading its data or busy.
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
        || e.code() == Some("BUSY")
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
    F: FnMut(ConnectionManager) -> Fut,
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
    }
}
