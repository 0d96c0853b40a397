//! Feedback answers (REST bodies) on any bytes, checked against a request of every kind.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    graflow_engine::fuzzing::feedback_answer(data);
});
