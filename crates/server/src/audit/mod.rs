//! The tamper-evident operation log. Each prefecture has one hash chain (0 for national
//! organisations); every entry commits to the one before it and carries a MAC under a key kept
//! apart from the database. Signed checkpoints of the heads leave the database for a file (and
//! from there for a witness). Hashes are computed here, in Rust, so that SQLite and PostgreSQL
//! produce and verify the same chain.
//!
//! - `keys`: the MAC key and the checkpoint signing key, with the trusted public keys.
//! - `checkpoint`: signed checkpoints, their file, and the task that writes them.
//! - `verify`: walks every chain against its MACs, its head and every checkpoint.
//! - `batcher`: appends the entries of reads in batches.

use serde::Serialize;
use sha2::{Digest, Sha256};

pub mod batcher;
pub mod checkpoint;
pub mod keys;
pub mod refusals;
pub(crate) mod sql;
pub mod verify;

pub use batcher::AuditBatcher;
pub use keys::MacKey;
pub use verify::{verify, verify_with, Break, VerifyReport, CHAINS};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Audit actions. Stored as these strings.
pub mod action {
    pub const LOGIN: &str = "auth.login";
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const LOGOUT: &str = "auth.logout";
    pub const USER_CREATED: &str = "user.created";
    pub const PASSWORD_RESET: &str = "user.password_reset";
    /// A user's TOTP secret replaced by the operator (a lost or replaced phone).
    pub const TOTP_RESET: &str = "user.totp_reset";
    /// TOTP secrets stored before sealing, sealed at start (detail: how many).
    pub const TOTP_SEALED: &str = "user.totp_sealed";
    /// Every sealed TOTP secret sealed again under a new key (detail: how many).
    pub const TOTP_KEY_ROTATED: &str = "user.totp_key_rotated";
    pub const RECORD_CREATED: &str = "record.created";
    /// An intake saved (detail: its id); then changed, linked, confirmed, read, listed.
    pub const INTAKE_RECEIVED: &str = "intake.received";
    pub const INTAKE_UPDATED: &str = "intake.updated";
    pub const INTAKE_ATTACHED: &str = "intake.attached";
    /// Sent to the owner of another organisation's record (detail: the owner).
    pub const INTAKE_FORWARDED: &str = "intake.forwarded";
    /// Converted into a new record (the entry names the record).
    pub const INTAKE_CONVERTED: &str = "intake.converted";
    pub const SAFETY_CONFIRMED: &str = "intake.safety_confirmed";
    /// A reminder of an intake's safety clock sent (by the server; detail: the stage).
    pub const SAFETY_REMINDED: &str = "intake.safety_reminded";
    pub const INTAKE_VIEWED: &str = "intake.viewed";
    pub const INTAKES_LISTED: &str = "intake.listed";
    pub const INTAKE_ACCESS_REFUSED: &str = "intake.access_refused";
    pub const SAFETY_HOURS_SET: &str = "settings.safety_hours_set";
    /// A record offered to another organisation (one entry per record of the offer, in the
    /// origin's chain; detail: the transfer, the destination, the fields withheld).
    pub const TRANSFER_OFFERED: &str = "transfer.offered";
    /// The destination confirmed: the origin's record moved to its next version, transferred
    /// out (detail: the transfer, the new record); the new record has its own `record.created`.
    pub const TRANSFER_CONFIRMED: &str = "transfer.confirmed";
    /// The destination declined (detail: the transfer; never the reason's text).
    pub const TRANSFER_DECLINED: &str = "transfer.declined";
    /// The origin withdrew its offer (detail: the transfer).
    pub const TRANSFER_WITHDRAWN: &str = "transfer.withdrawn";
    /// A list of transfers that named the children of other organisations' records (ids only).
    pub const TRANSFERS_LISTED: &str = "transfer.listed";
    /// A transfer asked for by an organisation that is not one of its two (detail: its id).
    pub const TRANSFER_ACCESS_REFUSED: &str = "transfer.access_refused";
    pub const RECORD_UPDATED: &str = "record.updated";
    pub const RESTRICTIONS_SET: &str = "record.restrictions_set";
    pub const RECORD_VIEWED: &str = "record.viewed";
    pub const HISTORY_VIEWED: &str = "record.history_viewed";
    /// A page of a case list that showed rows of other organisations' records.
    pub const CASES_LISTED: &str = "record.listed";
    pub const RECORD_SEEDED: &str = "record.seeded";
    pub const ORGS_LOADED: &str = "orgs.loaded";
    /// A person search: the query's shape and the hit count, never the names searched for.
    pub const SEARCHED: &str = "search.performed";
    pub const SEARCH_INDEX_REBUILT: &str = "search.index_rebuilt";
    /// A notification marked read or unread by its organisation.
    pub const NOTIFICATION_MARKED: &str = "notification.marked";
    /// Notifications that named the child of another organisation's record (ids only).
    pub const NOTIFICATIONS_LISTED: &str = "notification.listed";
    /// The first entry with a MAC in a chain whose older entries were written before the audit
    /// key existed (detail: how many entries it vouches for).
    pub const KEYED: &str = "audit.keyed";
    /// A read refused: no tier, or no such record (detail: which read). In the reader's chain.
    pub const ACCESS_REFUSED: &str = "record.access_refused";
    /// The checkpoint signing key replaced (detail: old and new key ids).
    pub const SIGNING_KEY_ROTATED: &str = "audit.signing_key_rotated";
}

/// An entry before it is placed in its chain. `detail` holds no personal data: ids, versions,
/// tiers, counts.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub pref_code: i64,
    pub at: i64,
    pub actor_user: Option<i64>,
    pub actor_org: String,
    pub action: &'static str,
    pub record_id: Option<i64>,
    pub detail: serde_json::Value,
}

impl AuditDraft {
    /// An action of the operator at the server's command line (no user, no record).
    pub fn by_operator(
        pref_code: i64,
        at: i64,
        action: &'static str,
        detail: serde_json::Value,
    ) -> AuditDraft {
        AuditDraft {
            pref_code,
            at,
            actor_user: None,
            actor_org: "operator".into(),
            action,
            record_id: None,
            detail,
        }
    }
}

/// An entry in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub pref_code: i64,
    pub seq: i64,
    pub at: i64,
    pub actor_user: Option<i64>,
    pub actor_org: String,
    pub action: String,
    pub record_id: Option<i64>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC-SHA-256 of `hash` under the audit MAC key; empty on entries written before the key.
    pub mac: String,
}

impl AuditEntry {
    /// Places a draft after `(prev_seq, prev_hash)` and MACs it.
    pub fn chain(draft: AuditDraft, prev_seq: i64, prev_hash: &str, key: &MacKey) -> AuditEntry {
        let mut e = AuditEntry {
            pref_code: draft.pref_code,
            seq: prev_seq + 1,
            at: draft.at,
            actor_user: draft.actor_user,
            actor_org: draft.actor_org,
            action: draft.action.to_string(),
            record_id: draft.record_id,
            detail: draft.detail.to_string(),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
            mac: String::new(),
        };
        e.hash = e.compute_hash();
        e.mac = key.mac(&e.hash);
        e
    }

    /// SHA-256 over an unambiguous (JSON array) encoding of every field but the hash itself.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.pref_code,
            self.seq,
            self.at,
            self.actor_user,
            self.actor_org,
            self.action,
            self.record_id,
            self.detail,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}
