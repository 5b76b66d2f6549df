//! hearth-relay: the small self-hosted server that stores and forwards the couple's
//! encrypted envelopes. It sees ciphertext, ids and sizes only; it can lose, delay or
//! withhold data, but never read or forge it (DESIGN.md §5).
//!
//! This crate so far holds the relay's durable storage ([`store`]): a [`Storage`] trait and
//! its SQLite implementation, which assigns each space a dense sequence of envelopes,
//! stores a duplicate push once, and commits a batch of pushes in one transaction; and the
//! store thread ([`worker`]) that async connection tasks hand their work to.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod store;
pub mod worker;

pub use store::{Push, PushOutcome, SqliteStore, Storage, StoreError, StoreLimits};
pub use worker::{StoreHandle, StoreStats};
