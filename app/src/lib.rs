//! The library half of the `graflow` binary: the parts that tests and benchmarks reach
//! directly — the terminal studio, the run history it shares with `graflow run`, and how runs
//! are set up and resumed (shared with `graflow run` and `graflow resume`).

pub mod history;
pub mod runsetup;
pub mod studio;
pub mod text;
