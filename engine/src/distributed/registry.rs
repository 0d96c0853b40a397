//! Rust task bodies by name. A closure cannot travel to another process, so the embedding
//! program registers the same handlers under the same names in its coordinator and in its
//! workers; a task made with [`TaskRegistry::task`] then runs on the fleet by name. A closure
//! task without a registered name always runs in the coordinator.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;

use crate::context::TaskContext;
use crate::handler::{FnHandler, TaskError, TaskHandler};
use crate::workflow::TaskDef;

/// Handlers by name, shared by a coordinator and its workers.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `handler` as `name`.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        handler: Arc<dyn TaskHandler>,
    ) -> &mut Self {
        self.handlers.insert(name.into(), handler);
        self
    }

    /// Register an async closure as `name`.
    pub fn register_fn<F, Fut, R, E>(&mut self, name: impl Into<String>, body: F) -> &mut Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + 'static,
        E: Into<TaskError> + 'static,
    {
        self.register(name, Arc::new(FnHandler::new(body)))
    }

    /// The handler registered as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn TaskHandler>> {
        self.handlers.get(name)
    }

    /// A task `id` running the handler registered as `name` (here and on the workers);
    /// `None` when nothing is registered under `name`.
    pub fn task(&self, id: &str, name: &str) -> Option<TaskDef> {
        let handler = self.handlers.get(name)?.clone();
        Some(TaskDef::new(id, handler).remote_as(name))
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}
