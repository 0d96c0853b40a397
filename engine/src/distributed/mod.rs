//! The worker fleet on Redis.
