//! The workflow-file loader on any bytes: a workflow or diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    graflow_engine::fuzzing::ron_loader(data);
});
