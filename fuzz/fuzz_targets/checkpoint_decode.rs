//! Checkpoint decoding (and restoring into a run) on any bytes: refused with a reason or
//! loaded, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    graflow_engine::fuzzing::checkpoint_decode(data);
});
