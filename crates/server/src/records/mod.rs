//! Child records: creating and changing them, reading them as the caller's tier allows, their
//! versions and case lists. The rules without I/O are in `domain.rs` and `tier.rs`.

pub(crate) mod sql;
