//! Cross-crate tests of Graflow live in `tests/tests/`: they check that the engine and the
//! parts of the `graflow` binary built on it (the studio's graph model, the run history) agree.
