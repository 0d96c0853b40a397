//! The in-process handler: the body is an async Rust closure.

use std::future::Future;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;

use super::{TaskError, TaskHandler, TaskResult};
use crate::context::TaskContext;

/// Wraps an async closure `|ctx| async move { … }` whose output is `Result<R, E>` with a
/// serializable `R`. Use `anyhow::Ok(value)` (or annotate the error type) in the closure.
pub struct FnHandler<F> {
    body: F,
}

impl<F> FnHandler<F> {
    /// Wrap `body`.
    pub fn new(body: F) -> Self {
        FnHandler { body }
    }
}

impl<F, Fut, R, E> TaskHandler for FnHandler<F>
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Serialize,
    E: Into<TaskError>,
{
    fn kind(&self) -> &'static str {
        "rust"
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        (self.body)(ctx)
            .map(|out| match out {
                Ok(v) => serde_json::to_value(v).map_err(TaskError::from),
                Err(e) => Err(e.into()),
            })
            .boxed()
    }
}
