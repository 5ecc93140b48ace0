//! tsunagu central server: one national API where child guidance centres and municipalities keep
//! their child records, each organisation seeing what its tier allows.
//!
//! Layers, outermost first: `api` (HTTP) → `service` (use cases) → `domain` and `tier` (rules,
//! no I/O) → `storage` (one trait, SQLite and PostgreSQL).

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod conn;
pub mod domain;
pub mod error;
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
