//! Child records: creating and changing them, reading them as the caller's tier allows, their
//! versions and case lists. The rules without I/O are in `domain.rs` and `tier.rs`.

pub mod routes;
pub mod service;
pub(crate) mod sql;
