//! Request and response bodies of the HTTP API (`/api/v1`), shared by server and client.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::codes::{CaseStatus, OrgKind, Role, Sex};
use crate::schema::{BirthDate, PersonName, RecordBody, Risk};
use crate::validate::FieldError;
use crate::views::{FullRecord, OwnerContact, RecordView, Visible};

/// Every error the API returns: a stable machine-readable code and a Japanese message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field problems, for validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// On a version conflict: the record as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Box<FullRecord>>,
    /// On a version conflict: each field both sides changed differently, with the common
    /// base, the change sent and the one saved meanwhile, in full. Everything else was merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<crate::merge::FieldConflict>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
    /// The 6-digit one-time code from the user's authenticator.
    pub otp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OrgSummary {
    pub id: String,
    pub kind: OrgKind,
    pub name: String,
    pub pref_code: u8,
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Me {
    pub user_id: i64,
    pub login: String,
    pub display_name: String,
    pub role: Role,
    pub org: OrgSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginResponse {
    /// Opaque bearer token for the Authorization header.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: u64,
    pub me: Me,
}

/// Body of `PUT /records/{id}`: the record and the version it was edited from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRecord {
    pub version: i64,
    pub record: RecordBody,
    /// After a 409: for each field it named in `conflicts`, whether to keep this value
    /// (`mine`) or the one saved meanwhile (`theirs`); sent with the same `version` and
    /// `record`, so everything else merges as before.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub resolve: crate::merge::Resolutions,
}

/// Body of `POST /records/{id}/lists/{list}`: one change of one list, applied to the record as
/// it is now (no version: two people appending at once both succeed). `index` and `was` are
/// the entry's place and value as the client last saw them; if the entry has moved, the server
/// finds it by value, and if it is gone, answers 409. A progress entry is found by its date and
/// text (and by its stamps, where sent); the stamps of `item` are the server's to set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ListOp<T> {
    /// Appends `item` at the end.
    Add {
        item: T,
    },
    /// Replaces the entry with `item`.
    Change {
        index: usize,
        was: T,
        item: T,
    },
    Remove {
        index: usize,
        was: T,
    },
    /// Moves the entry to place `to` of the list as it is after the entry is taken out.
    Move {
        index: usize,
        was: T,
        to: usize,
    },
}

/// One row of a case list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CaseSummary {
    pub id: i64,
    /// `owner` or `partner`.
    pub tier: String,
    pub owner: OwnerContact,
    pub child_name: PersonName,
    pub sex: Option<Sex>,
    pub birth_date: Option<BirthDate>,
    pub municipality_code: Visible<String>,
    pub case_number: Visible<String>,
    pub status: Visible<CaseStatus>,
    pub risk: Visible<Option<Risk>>,
    pub next_review: Visible<Option<NaiveDate>>,
    /// Withheld with the rest of the record's metadata where the viewer may not see it (a
    /// partner, when the owner restricted casework).
    pub meta: Visible<RowMeta>,
}

/// The version and time of a list row's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RowMeta {
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CaseList {
    pub items: Vec<CaseSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One version of a record in its history, as the viewer may see it. Where the viewer may not
/// see the record's metadata (an outside centre; a partner when casework is restricted), the
/// version number, time and author are withheld, and versions that look the same to the viewer
/// are shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VersionEntry {
    pub written: Visible<VersionWritten>,
    pub record: RecordView,
    /// What changed from the entry before, as the viewer may see it (empty for the first):
    /// fields it sees with `before` and `after`, and, only where `written` is shown, the
    /// restricted fields that changed, named with `withheld: true` and no value.
    #[serde(default)]
    pub changes: Vec<crate::diff::FieldChange>,
}

/// Which version, when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VersionWritten {
    pub version: i64,
    pub at: DateTime<Utc>,
    pub author: String,
}

/// A view of a record by another organisation, for the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RecordViewEntry {
    pub at: DateTime<Utc>,
    pub org_id: String,
    pub org_name: String,
    pub user: String,
    pub tier: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    RecordCreated,
    RecordUpdated,
    /// Another organisation received a report about a child of one of your records.
    IntakeForwarded,
    /// An intake's safety confirmation is due soon (a reminder point before the deadline).
    SafetyDueSoon,
    /// An intake's safety confirmation deadline has passed unconfirmed.
    SafetyOverdue,
    /// Another organisation offers you a record (a family moved to you): read what was
    /// provided, then confirm or decline.
    TransferOffered,
    /// The destination confirmed your offer: your record is now read-only, transferred out.
    TransferConfirmed,
    /// The destination declined your offer, with a reason.
    TransferDeclined,
    /// The origin withdrew its offer to you.
    TransferWithdrawn,
}

impl NotificationKind {
    pub fn label_ja(self) -> &'static str {
        match self {
            NotificationKind::RecordCreated => "新規登録",
            NotificationKind::RecordUpdated => "更新",
            NotificationKind::IntakeForwarded => "通告の送付",
            NotificationKind::SafetyDueSoon => "安全確認期限間近",
            NotificationKind::SafetyOverdue => "安全確認期限超過",
            NotificationKind::TransferOffered => "移管の申出",
            NotificationKind::TransferConfirmed => "移管の受入",
            NotificationKind::TransferDeclined => "移管の辞退",
            NotificationKind::TransferWithdrawn => "移管の取下げ",
        }
    }
}

/// An inbox entry: what happened to which record, and, where the reader's tier shows the
/// record in a case list, which child (`subject`), as of when it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Notification {
    pub id: i64,
    pub kind: NotificationKind,
    /// The record; null for a notification about an intake not linked to a record yet.
    pub record_id: Option<i64>,
    /// The intake it is about, if any.
    pub intake_id: Option<i64>,
    /// The transfer it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<i64>,
    pub from_org_id: String,
    pub from_org_name: String,
    pub at: DateTime<Utc>,
    pub read: bool,
    /// The child and case number, as the reader's tier shows them in a case list row (absent
    /// for a tier without case list rows, and for no record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<NotificationSubject>,
}

/// Which child a notification is about, within the reader's tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NotificationSubject {
    pub child_name: PersonName,
    /// Withheld where the owner restricted casework from the reader.
    pub case_number: Visible<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NotificationList {
    pub items: Vec<Notification>,
    pub unread: i64,
}

/// Why a search hit matched, so staff can judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MatchReason {
    /// The name as written, after width and space folding.
    ExactName,
    /// The same name once kanji variants are folded (髙/高, 﨑/崎, 邊/辺 …).
    VariantKanji,
    /// The same reading (フリガナ).
    SameReading,
    /// A similar reading (long vowels, small kana, voiced marks).
    SimilarReading,
    /// The reading with a loanword spelling written in its conventional kana (ヴァ/バ, ティ/チ,
    /// フィ/ヒ …): close, not equal.
    LoanwordKana,
    /// A name typed in kanji only whose likely reading in the person-name dictionary is the
    /// record's reading (安部 for 阿部, both アベ): other kanji, the same reading.
    DictionaryReading,
    /// Part of the family or given name.
    PartOfName,
    /// Family and given name swapped.
    SwappedNames,
    /// One character typed wrong, missing or extra.
    OneEdit,
    /// A guardian's name matched.
    GuardianName,
    BirthDateExact,
    BirthDateNear,
    SexMatches,
}

impl MatchReason {
    pub fn label_ja(self) -> &'static str {
        match self {
            MatchReason::ExactName => "氏名一致",
            MatchReason::VariantKanji => "異体字一致",
            MatchReason::SameReading => "読み一致",
            MatchReason::SimilarReading => "読み類似",
            MatchReason::LoanwordKana => "外来語表記の揺れ",
            MatchReason::DictionaryReading => "読み一致（辞書）",
            MatchReason::PartOfName => "氏名の一部",
            MatchReason::SwappedNames => "姓名入替",
            MatchReason::OneEdit => "1文字違い",
            MatchReason::GuardianName => "保護者名一致",
            MatchReason::BirthDateExact => "生年月日一致",
            MatchReason::BirthDateNear => "生年月日近似",
            MatchReason::SexMatches => "性別一致",
        }
    }
}

/// One record found by search: only the search fields, never an address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SearchHit {
    pub record_id: i64,
    pub score: f32,
    pub reasons: Vec<MatchReason>,
    pub child_name: PersonName,
    pub sex: Option<Sex>,
    pub birth_date: Option<BirthDate>,
    pub guardians: Vec<PersonName>,
    pub owner: OwnerContact,
    /// The tier the searcher would have on opening the record (`none` when it cannot).
    pub tier: String,
    /// The same evidence as the hit before it in its group (same score, birth-date distance
    /// and reasons): their order says nothing about which is the better match.
    #[serde(default)]
    pub tied_with_previous: bool,
}

/// Hits that look like the same child registered by several organisations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SearchGroup {
    pub score: f32,
    pub hits: Vec<SearchHit>,
    /// This group's best hit has the same evidence as the previous group's best hit (on this
    /// page or, for a page's first group, the last group of the page before): equal, not
    /// ranked below it.
    #[serde(default)]
    pub tied_with_previous: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SearchResults {
    pub groups: Vec<SearchGroup>,
    /// Hits before grouping and paging, up to the cap.
    pub total_hits: usize,
    /// More records matched than the cap: refine the query.
    pub capped: bool,
    pub page: u32,
    pub has_more: bool,
    /// Always true: addresses never leave the server in search results.
    pub address_withheld: bool,
}
