//! Intake (通告受理): reports saved the moment they are typed, the safety clock they start,
//! and their link to the record they concern.

pub mod routes;
pub mod rules;
pub mod service;
pub(crate) mod sql;
