//! The record (児童記録票) in the national common format: four groups, each field in exactly one.
//!
//! Every field has a default so that a record missing many fields still deserialises and
//! validation can report every problem at once instead of serde stopping at the first.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::codes::{ConsultationType, FacilityType, Relationship, RiskLevel, Sex};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A person's name as entered, with the katakana reading (フリガナ).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PersonName {
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 50, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub family: String,
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 50, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub given: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 50))]
    pub family_kana: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 50))]
    pub given_kana: Option<String>,
}

impl PersonName {
    /// The name as shown: family and given separated by an ideographic space.
    pub fn display(&self) -> String {
        join_nonempty(&self.family, &self.given)
    }

    /// The reading as shown, or an empty string.
    pub fn display_kana(&self) -> String {
        join_nonempty(
            self.family_kana.as_deref().unwrap_or(""),
            self.given_kana.as_deref().unwrap_or(""),
        )
    }
}

fn join_nonempty(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (false, false) => format!("{a}\u{3000}{b}"),
        (false, true) => a.to_string(),
        (true, false) => b.to_string(),
        (true, true) => String::new(),
    }
}

/// Date of birth; `estimated` when only approximately known (e.g. a child found without papers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BirthDate {
    pub date: NaiveDate,
    #[serde(default)]
    pub estimated: bool,
}

/// Address by 全国地方公共団体コード (6 digits with check digit), postal code and street.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{6}$"))]
    pub municipality_code: String,
    #[cfg_attr(feature = "openapi", schema(pattern = "^((-*[0-9]){7}-*)?$"))]
    pub postal_code: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub street: String,
}

/// A guardian (保護者) and their relationship to the child (続柄).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Guardian {
    pub name: PersonName,
    pub relationship: Option<Relationship>,
}

/// `core`: the required group (第1面 必須入力項目).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Core {
    pub child_name: PersonName,
    pub sex: Option<Sex>,
    pub birth_date: Option<BirthDate>,
    pub address: Address,
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 10))]
    pub guardians: Vec<Guardian>,
}

/// A household member (家族の状況).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HouseholdMember {
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 100, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub name: String,
    pub relationship: Option<Relationship>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1900))]
    pub birth_year: Option<i32>,
    pub cohabiting: bool,
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub note: String,
}

/// Daycare or school use (保育所等利用状況・就学状況).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Schooling {
    pub facility_type: Option<FacilityType>,
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub facility_name: String,
}

/// `family`: the household around the child.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Family {
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub guardian_workplace: String,
    #[cfg_attr(feature = "openapi", schema(max_items = 30))]
    pub household: Vec<HouseholdMember>,
    pub schooling: Schooling,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub upbringing: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub welfare_services: String,
}

/// One entry of the progress log (経過).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProgressEntry {
    pub date: NaiveDate,
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub text: String,
    /// Who wrote the entry, as the server knows the writer (display name). Stamped by the
    /// server when the entry first appears; a value sent by a client is never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// When the server first saved the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
    /// When its date or text was last changed (the earlier text stays in the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_at: Option<DateTime<Utc>>,
    /// Who last changed its date or text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_by: Option<String>,
}

impl ProgressEntry {
    /// An entry as a client writes it: a date and a text, nothing stamped yet.
    pub fn new(date: NaiveDate, text: impl Into<String>) -> Self {
        ProgressEntry {
            date,
            text: text.into(),
            author: None,
            recorded_at: None,
            corrected_at: None,
            corrected_by: None,
        }
    }

    /// The same date and text (what the owner writes), whatever the server stamped.
    pub fn same_content(&self, other: &ProgressEntry) -> bool {
        self.date == other.date && self.text == other.text
    }
}

/// Assessed risk and urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Risk {
    pub level: RiskLevel,
    #[serde(default)]
    pub urgent: bool,
}

/// Metadata of an attachment (photo of an injury, a document); the content is stored apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub file_name: String,
    pub media_type: String,
    /// Bytes, at most `validate::ATTACHMENT_SIZE_MAX` (10 GiB).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10737418240_u64))]
    pub size: u64,
    /// Hex SHA-256 of the content, for integrity.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub sha256: String,
}

/// `casework`: what the owner and its partners work on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Casework {
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 20000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub interview: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 20000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub investigation: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 20000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub findings: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 20000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub support_plan: String,
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub progress: Vec<ProgressEntry>,
    pub risk: Option<Risk>,
    pub next_review: Option<NaiveDate>,
    pub attachments: Vec<Attachment>,
}

/// A report (通告) received about the child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntakeReport {
    pub received_on: NaiveDate,
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub source: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub summary: String,
}

/// The part of `admin` that the owner edits. Owner, times, authors and version are kept by the
/// server and appear only in the views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct AdminInput {
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 40,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub case_number: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::codes::owner_settable_status_schema))]
    pub status: Option<crate::codes::CaseStatus>,
    pub consultation_type: Option<ConsultationType>,
    #[cfg_attr(feature = "openapi", schema(max_items = 200))]
    pub intake_reports: Vec<IntakeReport>,
    pub serious_case: bool,
    pub missing: bool,
}

/// A whole record as the owner writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RecordBody {
    pub core: Core,
    pub family: Family,
    pub casework: Casework,
    pub admin: AdminInput,
}

impl RecordBody {
    /// The municipality of the child's address, if given.
    pub fn address_municipality(&self) -> Option<&str> {
        let c = self.core.address.municipality_code.as_str();
        (!c.is_empty()).then_some(c)
    }
}
