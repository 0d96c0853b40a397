//! Placeholder: the process benchmark lands with its handler.

fn main() {}
