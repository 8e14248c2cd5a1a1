//! Support code shared by the example programs, demo and benches.
pub mod dialout;
pub mod pppoe;
