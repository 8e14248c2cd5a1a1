//! Multilink fragmentation and reassembly (being written).
fn main() {}
