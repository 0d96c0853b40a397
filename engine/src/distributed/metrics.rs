//! A worker's counters and histograms, as Prometheus text and as the heartbeat record the
//! worker keeps in Redis.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// A fixed-bucket histogram of durations.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Observations so far and their sum in microseconds.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.sum_us.load(Ordering::Relaxed),
        )
    }

    /// Record one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            d.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// What a worker counts.
pub struct WorkerMetrics {
    /// Attempts run to an outcome (succeeded or failed).
    pub processed: AtomicU64,
    /// Attempts that succeeded.
    pub succeeded: AtomicU64,
    /// Attempts that failed.
    pub failed: AtomicU64,
    /// Attempts that were retries (attempt > 0).
    pub retried: AtomicU64,
    /// Entries this worker's reaper gave back to the queue (their worker was lost).
    pub reclaimed: AtomicU64,
    /// Attempts this worker dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Commits refused because the lease had moved on (the attempt ran elsewhere too).
    pub stale: AtomicU64,
    /// Attempts stopped because their run or attempt was cancelled.
    pub cancelled: AtomicU64,
    /// Attempts handed back on shutdown.
    pub released: AtomicU64,
    /// Slots in use.
    pub busy: AtomicUsize,
    /// Time from enqueue to start (Redis clock).
    pub queue_wait: Histogram,
    /// Time a body ran.
    pub duration: Histogram,
    /// When the worker started.
    pub started: Instant,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics {
            processed: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            released: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            queue_wait: Histogram::default(),
            duration: Histogram::default(),
            started: Instant::now(),
        }
    }
}

/// The worker's record in Redis (and what the fleet view shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The worker id (new on every start).
    pub id: String,
    /// Its host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it reads.
    pub queues: Vec<String>,
    /// Its slots.
    pub concurrency: usize,
    /// Slots in use.
    pub busy: usize,
    /// Counters as in [`WorkerMetrics`].
    pub processed: u64,
    /// Succeeded attempts.
    pub succeeded: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Retries run.
    pub retried: u64,
    /// Entries reclaimed.
    pub reclaimed: u64,
    /// Attempts dead-lettered.
    pub dead_lettered: u64,
    /// Seconds since the worker started.
    pub uptime_secs: f64,
    /// Unix time of this heartbeat, in milliseconds.
    pub beat_ms: u64,
    /// `idle`, `busy` or `draining`.
    pub state: String,
    /// Total time bodies ran, in microseconds (with `duration_count`, watchers derive the
    /// mean latency between two records).
    #[serde(default)]
    pub duration_sum_us: u64,
    /// Bodies timed.
    #[serde(default)]
    pub duration_count: u64,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl WorkerMetrics {
    /// The Prometheus text exposition of these metrics for worker `id`.
    pub fn prometheus(&self, id: &str, concurrency: usize) -> String {
        let labels = format!("worker=\"{}\"", escape_label(id));
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "graflow_worker_processed_total",
                "Attempts run to an outcome.",
                &self.processed,
            ),
            (
                "graflow_worker_succeeded_total",
                "Attempts that succeeded.",
                &self.succeeded,
            ),
            (
                "graflow_worker_failed_total",
                "Attempts that failed.",
                &self.failed,
            ),
            (
                "graflow_worker_retried_total",
                "Attempts that were retries.",
                &self.retried,
            ),
            (
                "graflow_worker_reclaimed_total",
                "Queue entries given back after their worker was lost.",
                &self.reclaimed,
            ),
            (
                "graflow_worker_dead_lettered_total",
                "Attempts dead-lettered after the delivery cap.",
                &self.dead_lettered,
            ),
            (
                "graflow_worker_stale_commits_total",
                "Commits refused because the lease had moved to another worker.",
                &self.stale,
            ),
            (
                "graflow_worker_cancelled_total",
                "Attempts stopped because their run or attempt was cancelled.",
                &self.cancelled,
            ),
            (
                "graflow_worker_released_total",
                "Attempts handed back to the queue on shutdown.",
                &self.released,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name}{{{labels}}} {}", load(value));
        }
        let gauges = [
            (
                "graflow_worker_busy_slots",
                "Slots running an attempt.",
                self.busy.load(Ordering::Relaxed) as f64,
            ),
            (
                "graflow_worker_slots",
                "Slots of the worker.",
                concurrency as f64,
            ),
            (
                "graflow_worker_uptime_seconds",
                "Seconds since the worker started.",
                self.started.elapsed().as_secs_f64(),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
        self.queue_wait.render(
            &mut out,
            "graflow_worker_queue_wait_seconds",
            "Time from enqueue to start of an attempt.",
            &labels,
        );
        self.duration.render(
            &mut out,
            "graflow_worker_task_duration_seconds",
            "Time an attempt's body ran.",
            &labels,
        );
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_metric_once() {
        let m = WorkerMetrics::default();
        m.duration.observe(Duration::from_millis(3));
        m.processed.fetch_add(2, Ordering::Relaxed);
        let text = m.prometheus("w-1", 4);
        assert!(text.contains("graflow_worker_processed_total{worker=\"w-1\"} 2"));
        assert!(text.contains("graflow_worker_task_duration_seconds_count{worker=\"w-1\"} 1"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.0025\"} 0"));
        assert_eq!(text.matches("# TYPE graflow_worker_slots gauge").count(), 1);
    }
}
