//! Settings of a fleet, shared by coordinators and workers (they must agree on the Redis URL
//! and the key prefix).

use std::time::Duration;

/// Where the fleet lives and how long things last.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `redis://host:port[/db]`, or `redis+cluster://host:port,host:port` for a Redis Cluster.
    pub url: String,
    /// The prefix of every key (`graflow`).
    pub prefix: String,
    /// The coordinator's lease on its runs; renewed every third of it. A run whose
    /// coordinator stops renewing is taken over by `graflow resume` after it runs out, and
    /// workers drop its queued attempts.
    pub lease: Duration,
    /// How long attempt records, results and a finished run's keys stay in Redis.
    pub retention: Duration,
    /// How long to wait for Redis when connecting.
    pub connect_wait: Duration,
    /// How long a dead-lettered attempt of this coordinator's runs waits for an operator to
    /// requeue it (the studio's fleet view, [`crate::distributed::watch::requeue_dead_letter`])
    /// before it fails. Zero (the default) fails it at once.
    pub dead_letter_hold: Duration,
}

impl FleetConfig {
    /// Defaults for `url`: prefix `graflow`, a 10 s coordinator lease, 24 hours of
    /// retention, 10 s to connect, no dead-letter hold. `GRAFLOW_REDIS_PREFIX` overrides the
    /// prefix, `GRAFLOW_REDIS_RETENTION` (a duration such as `2h` or `7d`) the retention and
    /// `GRAFLOW_DEAD_LETTER_HOLD` (a duration) the dead-letter hold.
    pub fn new(url: impl Into<String>) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        FleetConfig {
            url: url.into(),
            prefix: env("GRAFLOW_REDIS_PREFIX").unwrap_or_else(|| "graflow".into()),
            lease: Duration::from_secs(10),
            retention: env("GRAFLOW_REDIS_RETENTION")
                .and_then(|v| humantime::parse_duration(v.trim()).ok())
                .filter(|d| *d >= Duration::from_secs(60))
                .unwrap_or(Duration::from_secs(24 * 3600)),
            connect_wait: Duration::from_secs(10),
            dead_letter_hold: env("GRAFLOW_DEAD_LETTER_HOLD")
                .and_then(|v| humantime::parse_duration(v.trim()).ok())
                .unwrap_or(Duration::ZERO),
        }
    }

    /// Use this key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Use this coordinator lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Hold dead-lettered attempts this long for an operator to requeue them.
    pub fn dead_letter_hold(mut self, hold: Duration) -> Self {
        self.dead_letter_hold = hold;
        self
    }
}

/// Whether `url` names a Redis server (`redis://`, `rediss://`, `redis+unix://`) or a Redis
/// Cluster (`redis+cluster://host:port,host:port`).
pub fn is_redis_url(url: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "redis+unix://",
        super::conn::CLUSTER_SCHEME,
    ]
    .iter()
    .any(|scheme| url.starts_with(scheme))
}
