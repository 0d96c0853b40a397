//! Logging through `tracing`: `RUST_LOG` wins; otherwise `--verbose` raises the level.
//! Logs go to standard error so standard output stays machine-readable.

use tracing_subscriber::EnvFilter;

/// Install the subscriber once.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,graflow=debug,graflow_engine=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
