//! Placeholder: the script benchmark lands with its handler.

fn main() {}
