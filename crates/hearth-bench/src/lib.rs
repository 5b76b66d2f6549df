//! Benchmark support: a generator for a realistic ten-year history of a couple's space, and
//! helpers to time whole `hearth` processes. The benchmarks are programs (see
//! `src/bin/hearth-bench.rs`), never timed assertions in tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attack;
pub mod compare;
pub mod history;
pub mod relay;
pub mod soak;
pub mod stages;
pub mod suite;
pub mod timing;
