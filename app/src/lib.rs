//! The library half of the `graflow` binary: the parts that tests and benchmarks reach
//! directly — the terminal studio and the run history it shares with `graflow run`.

pub mod history;
pub mod studio;
