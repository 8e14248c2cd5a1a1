//! Support code shared by the example programs, demo and benches.
pub mod cli;
pub mod dialout;
pub mod pppoe;
pub mod profile;
