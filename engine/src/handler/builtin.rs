//! The small built-in task kinds: `Value` (returns a constant), `Noop` (returns null) and
//! `Sleep` (waits, then returns null).

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{TaskHandler, TaskResult};
use crate::context::TaskContext;

/// Returns a constant value.
pub struct ValueHandler(pub Value);

impl TaskHandler for ValueHandler {
    fn kind(&self) -> &'static str {
        "value"
    }
    fn execute(&self, _ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        futures::future::ready(Ok(self.0.clone())).boxed()
    }
}

/// Does nothing and returns null.
pub struct NoopHandler;

impl TaskHandler for NoopHandler {
    fn kind(&self) -> &'static str {
        "noop"
    }
    fn execute(&self, _ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        futures::future::ready(Ok(Value::Null)).boxed()
    }
}

/// Waits for a duration, then returns null.
pub struct SleepHandler(pub Duration);

impl TaskHandler for SleepHandler {
    fn kind(&self) -> &'static str {
        "sleep"
    }
    fn execute(&self, _ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        let d = self.0;
        async move {
            tokio::time::sleep(d).await;
            Ok(Value::Null)
        }
        .boxed()
    }
}
