//! tsunagu central server: one national API where child guidance centres and municipalities keep
//! their child records, each organisation seeing what its tier allows.
//!
//! Laid out by area, one folder each (`auth`, `records`, `search`, `notify`, `intake`, `transfers`, and `audit` and
//! `orgs` with storage only), with one file per layer, outermost first: `routes.rs` (HTTP in
//! and out) → `service.rs` (use cases, `impl AppState`) → `domain` and `tier` (rules, no I/O) →
//! `sql.rs` (the area's statements, one macro expanded for SQLite and PostgreSQL). Shared by
//! all: `api` (router, layers, extractors, OpenAPI), `state` (`AppState`, `Viewer`) and
//! `storage` (the traits, the two engines, the SQL the areas share). See docs/architecture.md.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod conn;
pub mod domain;
pub mod error;
pub mod intake;
pub mod notify;
pub mod orgs;
pub mod records;
pub mod search;
pub mod seed;
pub mod session_cache;
pub mod state;
pub mod storage;
pub mod tier;
pub mod totp_key;
pub mod transfers;
