//! What leaves the server, one type per tier. A type has no field for what its tier may not see;
//! a restricted part is a [`Visible::Withheld`] marker that carries the reason and nothing else.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::codes::{CaseStatus, ConsultationType, OrgKind, Sex};
use crate::restrict::Restrictions;
use crate::schema::{
    Address, AdminInput, Attachment, BirthDate, Casework, Core, Family, Guardian, HouseholdMember,
    IntakeReport, PersonName, ProgressEntry, Risk, Schooling,
};

/// Why something is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WithheldReason {
    /// The owner restricted it on this record.
    OwnerRestriction,
    /// The viewer's tier does not include it.
    Tier,
}

impl WithheldReason {
    pub fn label_ja(self) -> &'static str {
        match self {
            WithheldReason::OwnerRestriction => "所有機関の閲覧制限により非表示",
            WithheldReason::Tier => "閲覧区分により非表示",
        }
    }
}

/// A part that is either shown or withheld; a withheld part carries no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visible<T> {
    Shown(T),
    Withheld { reason: WithheldReason },
}

impl<T> Visible<T> {
    pub fn shown(&self) -> Option<&T> {
        match self {
            Visible::Shown(t) => Some(t),
            Visible::Withheld { .. } => None,
        }
    }
    pub fn is_withheld(&self) -> bool {
        matches!(self, Visible::Withheld { .. })
    }
    /// Shows `value` unless `withheld`, in which case the value is dropped here.
    pub fn unless(withheld: bool, value: T) -> Self {
        if withheld {
            Visible::Withheld {
                reason: WithheldReason::OwnerRestriction,
            }
        } else {
            Visible::Shown(value)
        }
    }
}

/// Who owns the record and how to reach them: visible to everyone who sees the record at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OwnerContact {
    pub org_id: String,
    pub org_kind: OrgKind,
    pub name: String,
    pub phone: String,
}

/// Server-kept facts about a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RecordMeta {
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// Where the record came from, if a confirmed transfer registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::transfer::Provenance>,
    /// Where it went, if it was transferred out (it is then read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_to: Option<crate::transfer::TransferredTo>,
}

/// The owner's (and, for serious cases, the ministry's) view: everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FullRecord {
    pub id: i64,
    pub owner: OwnerContact,
    pub meta: RecordMeta,
    pub core: Core,
    pub family: Family,
    pub casework: Casework,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::codes::shown_admin_schema))]
    pub admin: AdminInput,
    pub restrictions: Restrictions,
}

/// `core` as shared with other organisations: the address can be withheld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedCore {
    pub child_name: PersonName,
    pub sex: Option<Sex>,
    pub birth_date: Option<BirthDate>,
    pub address: Visible<Address>,
    pub guardians: Vec<Guardian>,
}

/// `family` as shared: each field can be withheld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedFamily {
    pub guardian_workplace: Visible<String>,
    pub household: Visible<Vec<HouseholdMember>>,
    pub schooling: Visible<Schooling>,
    pub upbringing: Visible<String>,
    pub welfare_services: Visible<String>,
}

/// `casework` as shared with partners: each text can be withheld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedCasework {
    pub interview: Visible<String>,
    pub investigation: Visible<String>,
    pub findings: Visible<String>,
    pub support_plan: Visible<String>,
    pub progress: Visible<Vec<ProgressEntry>>,
    pub risk: Option<Risk>,
    pub next_review: Option<NaiveDate>,
    pub attachments: Visible<Vec<Attachment>>,
}

/// `admin` beyond the owner's contact, as shared with partners (it follows `casework`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedAdmin {
    pub case_number: String,
    pub status: Option<CaseStatus>,
    pub consultation_type: Option<ConsultationType>,
    pub intake_reports: Visible<Vec<IntakeReport>>,
    pub serious_case: bool,
    pub missing: bool,
    pub meta: RecordMeta,
}

/// A partner's view (CGC ↔ municipality of its jurisdiction, or two CGCs of one prefecture),
/// and a pending transfer destination's view: everything except what the owner restricted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SharedRecord {
    pub id: i64,
    pub owner: OwnerContact,
    pub core: SharedCore,
    pub family: Visible<SharedFamily>,
    pub casework: Visible<SharedCasework>,
    pub admin: Visible<SharedAdmin>,
}

/// An outside CGC's view: `core` and `family` and the owner's contact. There is no field for
/// `casework` or the rest of `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OutsideRecord {
    pub id: i64,
    pub owner: OwnerContact,
    pub core: SharedCore,
    pub family: Visible<SharedFamily>,
}

/// A record as one viewer may see it, tagged with the tier that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "tier", rename_all = "snake_case")]
pub enum RecordView {
    Owner(FullRecord),
    Partner(SharedRecord),
    Outside(OutsideRecord),
    Ministry(FullRecord),
    Transfer(SharedRecord),
}

impl RecordView {
    pub fn id(&self) -> i64 {
        match self {
            RecordView::Owner(r) | RecordView::Ministry(r) => r.id,
            RecordView::Partner(r) | RecordView::Transfer(r) => r.id,
            RecordView::Outside(r) => r.id,
        }
    }
    pub fn owner(&self) -> &OwnerContact {
        match self {
            RecordView::Owner(r) | RecordView::Ministry(r) => &r.owner,
            RecordView::Partner(r) | RecordView::Transfer(r) => &r.owner,
            RecordView::Outside(r) => &r.owner,
        }
    }
    pub fn tier_name(&self) -> &'static str {
        match self {
            RecordView::Owner(_) => "owner",
            RecordView::Partner(_) => "partner",
            RecordView::Outside(_) => "outside",
            RecordView::Ministry(_) => "ministry",
            RecordView::Transfer(_) => "transfer",
        }
    }
}
