//! Storage behind one trait, with a SQLite and a PostgreSQL implementation. Each method is one
//! transaction: a write and the audit entry and notifications it causes commit or roll back
//! together. The trait is one per area (`AuthStore`, `RecordStore`, …), all of them parts of
//! `Storage`; the SQL is written once, in each area's `sql.rs` (see `sql.rs` here for the map),
//! and compiled for each engine.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tsunagu_record::api::NotificationKind;
use tsunagu_record::{RecordBody, Restrictions};

use crate::audit::{AuditDraft, AuditEntry, MacKey};
use crate::search::{KeyLookup, SearchDoc};

pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("not found")]
    NotFound,
    #[error("unique constraint violated")]
    Duplicate,
    #[error("the audit MAC key is not loaded: nothing can be appended to the audit log")]
    NoAuditKey,
}

/// Where a store keeps the audit MAC key once it has been read.
#[derive(Default)]
pub struct MacSlot(std::sync::RwLock<Option<std::sync::Arc<MacKey>>>);

impl MacSlot {
    pub fn install(&self, key: std::sync::Arc<MacKey>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    pub fn get(&self) -> StoreResult<std::sync::Arc<MacKey>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(StoreError::NoAuditKey)
    }
}

impl StoreError {
    pub(crate) fn from_json(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Which users' TOTP secrets `Storage::rewrite_totp_secrets` rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpSecrets {
    /// Stored as entered, by a version from before sealing.
    Plain,
    /// Sealed (`totp_key::SEALED_PREFIX`).
    Sealed,
}

/// An organisation row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub pref_code: i64,
    pub lgcode: Option<String>,
    pub phone: String,
    pub cgc_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub org_id: String,
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub password_hash: String,
    pub totp_secret: String,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub org_id: String,
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub password_hash: String,
    pub totp_secret: String,
    pub totp_last_step: i64,
    pub failed_count: i64,
    pub locked_until: i64,
}

/// Whose login attempts are counted: an account, or a login that is no account (by its tag,
/// `TotpKey::login_tag`), counted the same way so that answers do not tell them apart.
#[derive(Debug, Clone, Copy)]
pub enum LoginKey<'a> {
    User(i64),
    Unknown(&'a str),
}

/// The rule an attempt is counted by (`Storage::reserve_login`); times in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRule {
    pub now: i64,
    pub max_failures: i64,
    /// How long a lockout lasts, and how long a run of failures is remembered after its last.
    pub lockout_micros: i64,
}

/// One counted attempt, as the statement that counted it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Its number in the current run (1 = first since the count last restarted).
    pub number: i64,
    /// The password may be checked: the login was not locked when this attempt was counted.
    pub checked: bool,
    /// Locked until then (microseconds; not after `now` when not locked). When `checked`, a
    /// lockout here was set by this attempt, the run's `max_failures`-th.
    pub locked_until: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user: UserRow,
}

/// A record as stored: the body the owner wrote plus what the server keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub id: i64,
    pub pref_code: i64,
    pub owner_org: String,
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    pub restrictions: Restrictions,
    pub body: RecordBody,
    /// The record's transfer (`records.transfer`): the pending offer, or once confirmed, where
    /// it went (the record is then read-only, transferred out).
    pub transfer: Option<RecordTransfer>,
    /// Where the record came from, if a confirmed transfer registered it.
    pub provenance: Option<StoredProvenance>,
}

impl StoredRecord {
    /// Whether a confirmed transfer moved the record to another organisation: it is then kept
    /// read-only.
    pub fn transferred_out(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| t.confirmed.is_some())
    }

    /// The pending offer of the record, if any.
    pub fn pending_transfer(&self) -> Option<&RecordTransfer> {
        self.transfer.as_ref().filter(|t| t.confirmed.is_none())
    }

    /// The row as `w` leaves it: the next version, with the write's body, restrictions, time
    /// and author.
    pub fn next_version(&self, w: &RecordWrite) -> StoredRecord {
        StoredRecord {
            version: self.version + 1,
            updated_at: w.at,
            updated_by: w.author.clone(),
            restrictions: w.restrictions.clone(),
            body: w.body.clone(),
            ..self.clone()
        }
    }
}

/// A record's transfer as its row keeps it (JSON in `records.transfer`), so that the tier of
/// every read is decided from the row alone: the destination and what the offer withholds
/// beyond the owner's restrictions; once confirmed, the destination's record and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordTransfer {
    pub transfer_id: i64,
    pub to_org: String,
    /// The destination's name when offered, as shown on the record.
    pub to_name: String,
    pub withhold: Vec<tsunagu_record::restrict::Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<ConfirmedTransfer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedTransfer {
    pub record_id: i64,
    pub at: i64,
}

/// Where a record registered by a confirmed transfer came from (JSON in `records.provenance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProvenance {
    pub transfer_id: i64,
    pub origin_org: String,
    /// The origin's name when confirmed, as shown on the record.
    pub origin_name: String,
    pub origin_record_id: i64,
    pub at: i64,
}

/// Columns derived from the body for lists and filters (computed by the domain layer).
#[derive(Debug, Clone)]
pub struct RecordColumns {
    pub status: String,
    pub case_number: String,
    pub municipality_code: String,
    pub serious: bool,
    pub missing: bool,
    pub risk_level: Option<String>,
    pub next_review: String,
    pub address_restricted: bool,
    /// The owner restricted the casework group: partners see neither it nor the metadata.
    pub casework_restricted: bool,
    pub name_key: String,
    pub kana_key: String,
    pub birth_date: String,
}

#[derive(Debug, Clone)]
pub struct NewNotification {
    pub org_id: String,
    pub kind: NotificationKind,
    pub from_org_id: String,
}

/// A notification as stored and as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    pub id: i64,
    pub org_id: String,
    pub kind: NotificationKind,
    /// The record, or 0 for a notification about an intake not linked to one yet.
    pub record_id: i64,
    /// The intake it is about, if any.
    pub intake_id: Option<i64>,
    /// The transfer it is about, if any.
    pub transfer_id: Option<i64>,
    pub from_org_id: String,
    pub at: i64,
    pub read: bool,
}

/// A write of a record: everything the transaction must contain.
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub pref_code: i64,
    pub owner_org: String,
    pub author: String,
    pub at: i64,
    pub body: RecordBody,
    pub restrictions: Restrictions,
    pub columns: RecordColumns,
    pub audit: AuditDraft,
    /// Recipients of the notification; the record id is filled in by the store.
    pub notify: Vec<NewNotification>,
}

/// Outcome of a versioned write.
#[derive(Debug)]
pub enum Versioned<T> {
    Done(T),
    /// The record has moved on; here it is as it is now.
    Conflict(Box<StoredRecord>),
    /// The caller's check refused the write (not the owner); the row, for wording the refusal.
    /// Never shown to the caller: the check runs before the version, so a refused caller
    /// learns nothing from a conflict.
    Refused(Box<StoredRecord>),
}

/// Builds an update from the current row, read and locked inside the update's own
/// transaction, or refuses it (`None`). Checking there, not before, saves a read per update
/// and leaves no gap between the check and the write.
pub type PrepareWrite = Box<dyn FnOnce(&StoredRecord) -> Option<RecordWrite> + Send>;

/// A write that needs nothing from the current row (tests, tools).
pub fn unconditionally(w: RecordWrite) -> PrepareWrite {
    Box::new(move |_| Some(w))
}

/// An intake as stored (`intake/sql.rs`). Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIntake {
    pub id: i64,
    /// The receiving organisation's prefecture: the audit chain its entries go to.
    pub pref_code: i64,
    pub org_id: String,
    pub status: tsunagu_record::intake::IntakeStatus,
    pub record_id: Option<i64>,
    pub version: i64,
    pub received_at: i64,
    pub safety_hours: i64,
    pub due_at: i64,
    pub confirmed_at: Option<i64>,
    pub confirmation: Option<tsunagu_record::intake::SafetyConfirmation>,
    pub reminded_stage: i64,
    pub received_by: String,
    pub body: tsunagu_record::intake::IntakeInput,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new intake: everything its transaction writes.
#[derive(Debug, Clone)]
pub struct NewIntake {
    pub pref_code: i64,
    pub org_id: String,
    pub received_by: String,
    pub at: i64,
    pub safety_hours: i64,
    pub due_at: i64,
    pub body: tsunagu_record::intake::IntakeInput,
    pub audit: AuditDraft,
}

/// A change of an intake, built from its locked current row: the new state of the row, its
/// audit entry, notifications, and for a conversion the record to create (whose id the
/// intake then links).
#[derive(Debug, Clone)]
pub struct IntakeWrite {
    pub status: tsunagu_record::intake::IntakeStatus,
    pub record_id: Option<i64>,
    pub body: tsunagu_record::intake::IntakeInput,
    /// The deadline, which follows the time of receipt in `body` when that is corrected.
    pub due_at: i64,
    pub confirmed_at: Option<i64>,
    pub confirmation: Option<tsunagu_record::intake::SafetyConfirmation>,
    pub at: i64,
    pub audit: AuditDraft,
    pub notify: Vec<NewNotification>,
    pub new_record: Option<RecordWrite>,
}

impl IntakeWrite {
    /// A change that keeps everything of the row `cur` as it is, logged as `audit` at `at`:
    /// each use case sets what it changes on top.
    pub fn keeping(cur: &StoredIntake, at: i64, audit: AuditDraft) -> IntakeWrite {
        IntakeWrite {
            status: cur.status,
            record_id: cur.record_id,
            body: cur.body.clone(),
            due_at: cur.due_at,
            confirmed_at: cur.confirmed_at,
            confirmation: cur.confirmation.clone(),
            at,
            audit,
            notify: Vec::new(),
            new_record: None,
        }
    }
}

/// Builds an intake's change from its current row, read and locked in the change's own
/// transaction, or says why not: the rules decide on the row as it is, so two changes at once
/// cannot both pass a check (one version, one open intake) that only one may.
pub type PrepareIntake =
    Box<dyn FnOnce(&StoredIntake) -> Result<IntakeWrite, crate::intake::rules::Refusal> + Send>;

/// What an intake change did.
#[derive(Debug, Clone)]
pub struct IntakeChanged {
    pub intake: StoredIntake,
    pub notes: Vec<NotificationRow>,
    /// The record a conversion created.
    pub record: Option<StoredRecord>,
}

/// A transfer as stored (`transfers/sql.rs`): the offer, its records in order (the one offered
/// first, then its siblings), and its decision. Times in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTransfer {
    pub id: i64,
    /// The origin's prefecture: the audit chain of the transfer's entries.
    pub pref_code: i64,
    pub from_org: String,
    pub to_org: String,
    pub status: tsunagu_record::transfer::TransferStatus,
    pub message: String,
    pub withhold: Vec<tsunagu_record::restrict::Field>,
    pub offered_at: i64,
    pub offered_by: String,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub records: Vec<TransferRecordRow>,
}

/// One record of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferRecordRow {
    pub record_id: i64,
    /// The destination's record, once confirmed.
    pub new_record_id: Option<i64>,
}

/// A new offer, built from the locked rows of its records: what its transaction writes.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub pref_code: i64,
    pub from_org: String,
    pub to_org: String,
    /// The destination's name, kept on each record's row with the offer.
    pub to_name: String,
    pub message: String,
    pub withhold: Vec<tsunagu_record::restrict::Field>,
    pub at: i64,
    pub by: String,
    /// The records, the one offered first (in the order given to `offer_transfer`).
    pub record_ids: Vec<i64>,
    /// One entry per record (the store adds the transfer's id to each detail).
    pub audits: Vec<AuditDraft>,
    pub notify: Vec<NewNotification>,
}

/// Builds an offer from the current rows of its records (`None`: no such record), read and
/// locked in the offer's own transaction, or says why not.
pub type PrepareOffer = Box<
    dyn FnOnce(&[Option<StoredRecord>]) -> Result<NewTransfer, crate::transfers::rules::Refusal>
        + Send,
>;

/// A decision on a pending transfer (confirm, decline, withdraw), built from the locked rows of
/// the transfer and its records.
#[derive(Debug, Clone)]
pub struct TransferDecision {
    pub status: tsunagu_record::transfer::TransferStatus,
    pub at: i64,
    pub by: String,
    pub reason: Option<String>,
    /// Entries besides those of `confirm` (the store adds the transfer's id to each detail).
    pub audits: Vec<AuditDraft>,
    pub notify: Vec<NewNotification>,
    /// For a confirmation, one per record of the transfer, in its order.
    pub confirm: Vec<ConfirmRecord>,
}

/// What confirming does to one record: the origin's record at its next version (transferred
/// out), and the destination's new record built from what was provided.
#[derive(Debug, Clone)]
pub struct ConfirmRecord {
    pub origin: StoredRecord,
    /// The origin's name, kept in the new record's provenance.
    pub origin_name: String,
    pub origin_columns: RecordColumns,
    /// The origin record's entry (the store adds the transfer and the new record's id).
    pub origin_audit: AuditDraft,
    pub new_record: RecordWrite,
    /// Whether the intakes linked to the record move to the new one (their casework was
    /// provided).
    pub move_intakes: bool,
}

/// Builds a decision from the locked transfer and its records' current rows, or says why not.
pub type PrepareDecision = Box<
    dyn FnOnce(
            &StoredTransfer,
            &[StoredRecord],
        ) -> Result<TransferDecision, crate::transfers::rules::Refusal>
        + Send,
>;

/// What a decision did.
#[derive(Debug, Clone)]
pub struct TransferDecided {
    pub transfer: StoredTransfer,
    pub notes: Vec<NotificationRow>,
    /// The records a confirmation registered, in the transfer's order.
    pub new_records: Vec<StoredRecord>,
}

/// How a case list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSort {
    UpdatedDesc,
    UpdatedAsc,
    NextReview,
    CaseNumber,
}

/// The sort key of a row whose sort column the viewer may not see (`CaseQuery::mask_others`):
/// `""` for text columns, `"0"` for times.
pub fn masked_sort_key(sort: CaseSort) -> &'static str {
    match sort {
        CaseSort::UpdatedDesc | CaseSort::UpdatedAsc => "0",
        CaseSort::NextReview | CaseSort::CaseNumber => "",
    }
}

/// Where a page starts: the sort key and id of the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseCursor {
    pub key: String,
    pub id: i64,
}

#[derive(Debug, Clone)]
pub struct CaseQuery {
    /// Restrict to these owners (the viewer and its partners) within one prefecture.
    pub owners: Vec<String>,
    pub pref_code: Option<i64>,
    /// Only records flagged serious (the ministry's list).
    pub serious_only: bool,
    pub status: Option<String>,
    pub municipality: Option<String>,
    /// The viewer: the municipality filter only matches other owners' records whose address
    /// the owner did not restrict.
    pub viewer_org: String,
    /// Other owners' rows are seen as a partner: where their casework is restricted, their
    /// hidden values neither filter (status, updated since) nor sort them; they sort as
    /// `MASKED_SORT_KEY` (an empty case number or review date, time 0), then by id.
    pub mask_others: bool,
    pub updated_since: Option<i64>,
    pub sort: CaseSort,
    pub after: Option<CaseCursor>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: i64,
    pub at: i64,
    pub author: String,
    pub restrictions: Restrictions,
    pub body: RecordBody,
}

/// The whole search index, sorted, to compare a maintained index with a rebuilt one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSnapshot {
    /// (pref_code, record_id, kind, key, birth)
    pub keys: Vec<(i64, i64, String, String, i64)>,
    /// (pref_code, record_id, owner_org, serious, birth, fields JSON)
    pub docs: Vec<(i64, i64, String, bool, i64, String)>,
}

/// One account's refused reads in a period (`Storage::refused_reads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedReads {
    pub user_id: Option<i64>,
    pub org_id: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
}

/// Counts of what is stored, for operations and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub orgs: i64,
    pub users: i64,
    pub records: i64,
    pub audit_entries: i64,
}

/// The whole store: the engine's own methods here, and each area's in its trait below (every
/// engine implements them all; `storage/sql.rs` says where their SQL is). Method calls on a
/// `dyn Storage` reach the area traits' methods without importing them.
#[async_trait]
pub trait Storage:
    OrgStore
    + AuthStore
    + RecordStore
    + AuditStore
    + NotificationStore
    + SearchStore
    + IntakeStore
    + TransferStore
    + Send
    + Sync
    + 'static
{
    /// Which engine, for logs and benchmark tables.
    fn engine(&self) -> &'static str;
    /// Closes the connections; SQLite first checkpoints its WAL into the database file and
    /// empties it. Called once the server has drained, and when a command ends.
    async fn close(&self);
    /// Closes the connections of a process that only read (`verify-audit`, `refused-reads`)
    /// without SQLite's closing checkpoint, which would hold up a server writing meanwhile.
    async fn close_reader(&self);
    /// Whether the database answers now, on a connection outside the pool where there is one
    /// (the circuit in `api::db_circuit` asks it while requests are refused).
    async fn probe(&self) -> StoreResult<()>;
    async fn migrate(&self) -> StoreResult<()>;
    /// Gives the store the audit MAC key; until then every append fails (`NoAuditKey`).
    fn install_audit_key(&self, key: std::sync::Arc<MacKey>);
    fn audit_key(&self) -> StoreResult<std::sync::Arc<MacKey>>;
    async fn counts(&self) -> StoreResult<Counts>;
}

/// The organisation master (`orgs/sql.rs`).
#[async_trait]
pub trait OrgStore: Send + Sync {
    async fn upsert_orgs(&self, orgs: &[OrgRow]) -> StoreResult<()>;
    async fn list_orgs(&self) -> StoreResult<Vec<OrgRow>>;
}

/// Users, sessions, counted login attempts and TOTP secrets (`auth/sql.rs`).
#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn create_user(&self, user: &NewUser, audit: AuditDraft) -> StoreResult<i64>;
    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRow>>;
    /// Replaces a user's (sealed) TOTP secret, forgets the last step used, clears the lockout and
    /// ends the user's sessions, with `audit`, in one transaction.
    async fn set_totp_secret(
        &self,
        user_id: i64,
        sealed: &str,
        audit: AuditDraft,
    ) -> StoreResult<()>;
    /// The login and stored secret of one user whose TOTP secret is sealed, if any: what the
    /// server tries its key on before it starts.
    async fn sealed_totp_sample(&self) -> StoreResult<Option<(String, String)>>;
    /// Rewrites the TOTP secrets of `which` users, `rewrite(login, stored)` giving each its new
    /// stored value, with `audit` (its detail set to how many), in one transaction: sealing
    /// secrets stored before sealing, or sealing all under a new key. A rewrite that fails
    /// rolls back every other. Returns how many; none writes nothing, not even the entry.
    async fn rewrite_totp_secrets(
        &self,
        which: TotpSecrets,
        rewrite: &(dyn for<'a, 'b> Fn(&'a str, &'b str) -> Result<String, String> + Send + Sync),
        audit: AuditDraft,
    ) -> StoreResult<u64>;
    async fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        audit: AuditDraft,
    ) -> StoreResult<()>;
    /// Counts a login attempt before its password is checked, in one statement whose result
    /// decides: concurrent attempts get distinct numbers, and only the first `max_failures` of
    /// a run are `checked`; the `max_failures`-th locks for the lockout. A lockout that has
    /// ended, or a run whose last attempt is older than the lockout, restarts the count. For
    /// an unknown login the row is created on its first attempt, and rows whose run is
    /// forgotten are deleted (a bounded number per call), so the table holds only the logins
    /// tried within the last lockout period.
    async fn reserve_login(&self, key: LoginKey<'_>, rule: &AttemptRule) -> StoreResult<Attempt>;
    /// After a right password and code: records the code's step only if it is later than the
    /// last one used (else returns false and changes nothing: the code was used already), and
    /// then, in the same transaction, opens the session, appends `audit`, and clears the
    /// failure count and lockout if no attempt was counted after `attempt` (attempts counted
    /// meanwhile stay counted, and a lockout they set stands).
    async fn open_session(
        &self,
        user_id: i64,
        attempt: &Attempt,
        totp_step: i64,
        session: &NewSession,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
    async fn session(&self, token_hash: &str) -> StoreResult<Option<SessionRow>>;
    async fn touch_session(&self, token_hash: &str, at: i64) -> StoreResult<()>;
    async fn end_session(&self, token_hash: &str, audit: Option<AuditDraft>) -> StoreResult<()>;
}

/// Records, their versions and case lists (`records/sql.rs`).
#[async_trait]
pub trait RecordStore: Send + Sync {
    async fn create_record(
        &self,
        write: RecordWrite,
    ) -> StoreResult<(StoredRecord, Vec<NotificationRow>)>;
    /// `prepare` sees the locked current row first (it may refuse), then the version is checked
    /// (`None`: no check, for a change computed from the locked row itself).
    async fn update_record(
        &self,
        id: i64,
        expected_version: Option<i64>,
        prepare: PrepareWrite,
    ) -> StoreResult<Versioned<(StoredRecord, Vec<NotificationRow>)>>;
    async fn get_record(&self, id: i64) -> StoreResult<Option<StoredRecord>>;
    async fn list_cases(&self, query: &CaseQuery) -> StoreResult<Vec<StoredRecord>>;
    async fn list_versions(&self, id: i64) -> StoreResult<Vec<VersionRow>>;
    /// Bulk load for demo and benchmark data: records in one transaction, each with its audit
    /// entry. Notifications are not sent for seeded data.
    async fn seed_records(&self, writes: Vec<RecordWrite>) -> StoreResult<()>;
    /// The audit-free primary-key read used as the S3 benchmark baseline.
    async fn bare_read(&self, pref_code: i64, id: i64) -> StoreResult<Option<String>>;
    /// The bare single-row UPDATE used as the S4 benchmark baseline.
    async fn bare_update(&self, pref_code: i64, id: i64, at: i64) -> StoreResult<()>;
}

/// The audit chains and their checkpoints (`audit/sql.rs`).
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, audit: AuditDraft) -> StoreResult<AuditEntry>;
    /// Several entries in one transaction, each chained in the order given (per prefecture);
    /// the entries come back in the same order. All or none are written.
    async fn append_audits(&self, audits: Vec<AuditDraft>) -> StoreResult<Vec<AuditEntry>>;
    /// Entries the caller has already chained, from heads it remembers, written in one
    /// statement without reading the heads first. A chain lands only if its head is still
    /// where its entries start; a chain whose head has moved gets none of its entries. Whether
    /// the other chains land then depends on the engine (SQLite: none do; PostgreSQL: they
    /// do), so the answer names the chains that landed. Committed before it returns.
    async fn append_chained(&self, entries: &[AuditEntry]) -> StoreResult<Vec<i64>>;
    /// Entries of one chain in order, `limit` at a time after `after_seq`.
    async fn audit_entries(
        &self,
        pref_code: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>>;
    async fn audit_heads(&self) -> StoreResult<Vec<(i64, i64, String)>>;
    /// (chain, seq) of up to 100 entries whose chain is outside `chains`.
    async fn audit_entries_outside(
        &self,
        chains: std::ops::RangeInclusive<i64>,
    ) -> StoreResult<Vec<(i64, i64)>>;
    /// Whether any entry carries a MAC (so the MAC key must already exist).
    async fn has_keyed_audit_entries(&self) -> StoreResult<bool>;
    /// Accounts refused reads (`record.access_refused`) since `since`, most refusals first.
    async fn refused_reads(&self, since: i64) -> StoreResult<Vec<RefusedReads>>;
    /// Stores a signed checkpoint (append-only, like the log).
    async fn append_checkpoint(
        &self,
        at: i64,
        key_id: &str,
        body: &str,
        signature: &str,
    ) -> StoreResult<()>;
    /// Every stored checkpoint as (body, signature), oldest first.
    async fn stored_checkpoints(&self) -> StoreResult<Vec<(String, String)>>;
    async fn audit_for_record(&self, record_id: i64, action: &str) -> StoreResult<Vec<AuditEntry>>;
}

/// Each organisation's inbox (`notify/sql.rs`).
#[async_trait]
pub trait NotificationStore: Send + Sync {
    async fn notifications(
        &self,
        org_id: &str,
        after_id: i64,
        unread_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<NotificationRow>>;
    async fn unread_count(&self, org_id: &str) -> StoreResult<i64>;
    /// Marks one of `org_id`'s notifications read or unread, with its audit entry; false (and
    /// nothing written) if the organisation has no such notification.
    async fn mark_notification(
        &self,
        org_id: &str,
        id: i64,
        read: bool,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
}

/// Search (the index is written with every record write; see `search/mod.rs` and
/// `search/sql.rs`).
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Record ids whose keys of `lookup.kind` start with `lookup.prefix` (within the birth
    /// window), in key order, at most `limit` rows (a record can appear more than once).
    async fn search_lookup(&self, lookup: &KeyLookup, limit: i64) -> StoreResult<Vec<i64>>;
    /// The search fields of these records (never the address).
    async fn search_docs(&self, ids: &[i64]) -> StoreResult<Vec<SearchDoc>>;
    /// Recomputes the whole index from the records in one transaction; returns the records
    /// indexed.
    async fn rebuild_search_index(&self) -> StoreResult<u64>;
    async fn search_index_snapshot(&self) -> StoreResult<IndexSnapshot>;
    /// The S1 benchmark baseline: `LIKE '%needle%'` over the name and reading columns.
    async fn like_scan(&self, needle: &str, limit: i64) -> StoreResult<Vec<i64>>;
}

/// Intakes and their safety clocks (`intake/sql.rs`).
#[async_trait]
pub trait IntakeStore: Send + Sync {
    /// Saves a new intake with its audit entry.
    async fn create_intake(&self, w: NewIntake) -> StoreResult<StoredIntake>;
    async fn get_intake(&self, id: i64) -> StoreResult<Option<StoredIntake>>;
    /// An organisation's intakes: only the unconfirmed (by deadline), or all (newest first).
    async fn list_intakes(
        &self,
        org_id: &str,
        unconfirmed_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<StoredIntake>>;
    /// The intakes linked to a record, oldest first.
    async fn intakes_of_record(&self, record_id: i64) -> StoreResult<Vec<StoredIntake>>;
    /// Changes intake `id` as `prepare` decides on its locked row; `Err(refusal)` changes
    /// nothing. `StoreError::NotFound` if there is no such intake.
    async fn change_intake(
        &self,
        id: i64,
        prepare: PrepareIntake,
    ) -> StoreResult<Result<IntakeChanged, crate::intake::rules::Refusal>>;
    /// Unconfirmed intakes whose deadline is at or before `horizon`, by deadline and id,
    /// after the (deadline, id) `after` when given: one page of them.
    async fn intakes_due_by(
        &self,
        horizon: i64,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<StoredIntake>>;
    /// Records that intake `id` was reminded of reminder stage `stage`, with its notifications
    /// and audit entry, if no one did yet (the row's stage is below it and it is still
    /// unconfirmed): one conditional UPDATE, so two servers never notify a stage twice.
    async fn mark_reminded(
        &self,
        id: i64,
        stage: i64,
        notify: &[NewNotification],
        audit: AuditDraft,
    ) -> StoreResult<Option<Vec<NotificationRow>>>;
    /// The organisation's safety-clock hours, if it set them.
    async fn safety_hours(&self, org_id: &str) -> StoreResult<Option<i64>>;
    /// Sets (or with `None` clears) the organisation's safety-clock hours.
    async fn set_safety_hours(
        &self,
        org_id: &str,
        hours: Option<i64>,
        audit: AuditDraft,
    ) -> StoreResult<()>;
}

/// Transfers of records between organisations (`transfers/sql.rs`).
#[async_trait]
pub trait TransferStore: Send + Sync {
    /// Offers records as one transfer: reads and locks them (in id order), lets `prepare`
    /// decide on them, then, in the same transaction, writes the transfer, marks each record
    /// as offered only if it has no transfer yet (one conditional UPDATE each; a unique index
    /// of pending offers by record backs it), and appends the entries and notifications.
    /// `Err(refusal)` changes nothing.
    async fn offer_transfer(
        &self,
        record_ids: &[i64],
        prepare: PrepareOffer,
    ) -> StoreResult<Result<(StoredTransfer, Vec<NotificationRow>), crate::transfers::rules::Refusal>>;
    async fn get_transfer(&self, id: i64) -> StoreResult<Option<StoredTransfer>>;
    /// An organisation's transfers, newest first: those it offered (`outgoing`) or received.
    async fn list_transfers(
        &self,
        org_id: &str,
        outgoing: bool,
        status: Option<tsunagu_record::transfer::TransferStatus>,
        limit: i64,
    ) -> StoreResult<Vec<StoredTransfer>>;
    /// Decides transfer `id` as `prepare` decides on its locked row and its records' locked
    /// rows, in one transaction with the entries and notifications: the status moves from
    /// pending only (a conditional UPDATE), the records' offer is cleared, and a confirmation
    /// registers the new records, moves the origin's to their next version (transferred out)
    /// and their intakes where provided. `StoreError::NotFound` if there is no such transfer.
    async fn decide_transfer(
        &self,
        id: i64,
        prepare: PrepareDecision,
    ) -> StoreResult<Result<TransferDecided, crate::transfers::rules::Refusal>>;
}
