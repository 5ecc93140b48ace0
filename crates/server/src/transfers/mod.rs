//! Transfers when a family moves (転出・転入): the owner offers a record (with its siblings, as
//! one family transfer) to another organisation, which reads what was provided (the `transfer`
//! tier) and confirms (a record of its own is registered from it, with provenance; the
//! origin's becomes read-only, transferred out) or declines with a reason; the origin may
//! withdraw an offer not yet decided.

pub mod routes;
pub mod rules;
pub mod service;
pub(crate) mod sql;
