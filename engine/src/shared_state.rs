//! Typed values a program gives to a run and its tasks read, like axum's `State`: a database
//! pool, a client, settings. One value per type; tasks borrow it from their context.
//!
//! ```
//! use std::sync::Arc;
//! use graflow_engine::prelude::*;
//!
//! struct Prices { euro_per_dollar: f64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut wf = Workflow::builder("convert");
//! wf.task("convert", |ctx| async move {
//!     let prices = ctx.state::<Prices>()?;
//!     anyhow::Ok(100.0 * prices.euro_per_dollar)
//! });
//! wf.flow_str("convert");
//! let options = RunOptions::new().state(Prices { euro_per_dollar: 0.5 });
//! let outcome = Engine::new().run(Arc::new(wf.build().unwrap()), options).await;
//! assert_eq!(outcome.results["convert"], serde_json::json!(50.0));
//! # }
//! ```
//!
//! The values stay in the process that was given them: on a worker fleet, each worker is
//! given its own ([`WorkerConfig::state`](crate::distributed::worker::WorkerConfig::state)).

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;

/// One value per type, shared by every task of a run. Cheap to clone; clones share the values.
#[derive(Clone, Default)]
pub struct SharedState {
    values: Arc<HashMap<TypeId, Entry>>,
}

#[derive(Clone)]
struct Entry {
    name: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl SharedState {
    /// No values.
    pub fn new() -> Self {
        SharedState::default()
    }

    /// An empty set shared by everyone who has none.
    pub fn none() -> &'static SharedState {
        static NONE: std::sync::LazyLock<SharedState> = std::sync::LazyLock::new(SharedState::new);
        &NONE
    }

    /// Hold `value`, replacing a value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        let entry = Entry {
            name: type_name::<T>(),
            value: Arc::new(value),
        };
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), entry);
    }

    /// The value of type `T`, if one was given.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|e| e.value.downcast_ref::<T>())
    }

    /// Whether no value was given.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.values.values().map(|e| e.name).collect();
        names.sort_unstable();
        f.debug_set().entries(names).finish()
    }
}

/// A task asked for a value of a type its run was not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no value of type `{type_name}` was given to this run: pass one with RunOptions::state (on a fleet worker, WorkerConfig::state)"
)]
pub struct MissingState {
    /// The type asked for.
    pub type_name: &'static str,
}

impl MissingState {
    /// The error for type `T`.
    pub fn of<T>() -> Self {
        MissingState {
            type_name: type_name::<T>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Db(u32);

    #[test]
    fn one_value_per_type_and_clones_share() {
        let mut state = SharedState::new();
        assert!(state.get::<Db>().is_none());
        state.insert(Db(1));
        state.insert(String::from("settings"));
        let copy = state.clone();
        state.insert(Db(2));
        assert_eq!(state.get::<Db>(), Some(&Db(2)));
        assert_eq!(copy.get::<Db>(), Some(&Db(1)), "a clone keeps what it had");
        assert_eq!(copy.get::<String>().map(String::as_str), Some("settings"));
        assert!(format!("{copy:?}").contains("Db"));
    }

    #[test]
    fn a_missing_value_names_its_type() {
        let e = MissingState::of::<Db>();
        assert!(e.to_string().contains("shared_state::tests::Db"), "{e}");
    }
}
