//! The task-context protocol on any request or response line: parsed or refused, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    graflow_engine::fuzzing::ctx_protocol(data);
});
