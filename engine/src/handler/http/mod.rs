//! `Http` tasks: one request per execution. The URL and body are templates over the task's
//! inputs, iteration data and channel; a non-2xx answer fails the task; a JSON answer becomes
//! the result (other answers become a string).

#[cfg(feature = "http")]
pub mod error;
#[cfg(feature = "http")]
mod handler;
mod spec;

#[cfg(feature = "http")]
pub use handler::{HttpHandler, HttpRuntime};
pub use spec::HttpSpec;
