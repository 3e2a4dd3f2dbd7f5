//! The backends ("sinks") behind the request path. Each has a bounded queue the request
//! path pushes into without waiting (`Backend::offer`), a disk spool for what its store
//! cannot take, and every counter of the backend (`backend.rs`); a worker drains the queue
//! into the store: the file writer thread (`file/`), the Kafka sink driven by the feeder
//! thread (`kafka/`). `stats.rs` declares each figure a backend reports, once;
//! `per_flavor.rs` keeps those of the accounting identity per flavor.
//! docs/architecture.md ("Sinks") has the threads, who owns what, and the contract.

pub mod backend;
pub mod file;
pub mod kafka;
pub mod per_flavor;
#[cfg(feature = "python")]
pub mod py;
pub mod spool;
pub mod stats;

pub use backend::Backend;
