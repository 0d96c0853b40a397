//! The flow parser on any text: an answer or an error, never a panic or a stack overflow;
//! what parses prints back to text that parses to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    graflow_engine::fuzzing::flow_parser(data);
});
