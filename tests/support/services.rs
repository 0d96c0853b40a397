//! The services some tests need beside crates — a `redis-server` to start, a Docker engine
//! to talk to. Where one is missing, a test that needs it says so and is skipped (it passes),
//! so `cargo test` works on a contributor's machine without them; with
//! `GRAFLOW_REQUIRE_SERVICES=1` (which `.ci/run` sets) a missing service fails the test.
//! Included with `#[path]` as the test crate's `services` module; tests start with
//! `needs!(Service::Redis);`.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A service a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `redis-server` and `redis-cli` (Debian's `redis-server` package).
    Redis,
    /// A Docker engine that answers.
    Docker,
}

impl Service {
    fn check(self) -> Result<(), String> {
        let works = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        match self {
            Service::Redis if !works("redis-server", &["--version"]) => {
                Err("redis-server is not installed (Debian's redis-server package)".into())
            }
            Service::Redis if !works("redis-cli", &["--version"]) => {
                Err("redis-cli is not installed (Debian's redis-server package)".into())
            }
            Service::Docker if !works("docker", &["info"]) => {
                Err("no Docker engine answers (`docker info` failed)".into())
            }
            _ => Ok(()),
        }
    }

    fn checked(self) -> &'static Result<(), String> {
        static REDIS: OnceLock<Result<(), String>> = OnceLock::new();
        static DOCKER: OnceLock<Result<(), String>> = OnceLock::new();
        let cell = match self {
            Service::Redis => &REDIS,
            Service::Docker => &DOCKER,
        };
        cell.get_or_init(|| self.check())
    }
}

/// Whether the calling test can use `service`: true when it is there; false, after saying
/// why the test is skipped, when it is not; a panic when it is not and
/// `GRAFLOW_REQUIRE_SERVICES=1`.
pub fn usable(service: Service) -> bool {
    let Err(why) = service.checked() else {
        return true;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if std::env::var("GRAFLOW_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{test} needs {service:?}: {why} (GRAFLOW_REQUIRE_SERVICES=1 makes this a failure)");
    }
    // Straight to the standard error, past the test harness's capture: a skip is seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (GRAFLOW_REQUIRE_SERVICES=1 makes this a failure)"
    );
    false
}

/// Return from the calling test (skipping it) unless the service is usable.
#[macro_export]
macro_rules! needs {
    ($service:expr) => {
        if !$crate::services::usable($service) {
            return;
        }
    };
}
