//! Support code shared by the example programs, demo and benches.
