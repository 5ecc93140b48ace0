//! Owner restrictions (閲覧制限): groups or single fields the owner withholds from other
//! organisations on one record.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A group of the record that can be withheld as a whole. `core` cannot: it is what every
/// organisation needs to recognise the child (its address alone can be withheld).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Family,
    Casework,
}

/// A single field that can be withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum Field {
    #[serde(rename = "core.address")]
    CoreAddress,
    #[serde(rename = "family.guardian_workplace")]
    GuardianWorkplace,
    #[serde(rename = "family.household")]
    Household,
    #[serde(rename = "family.schooling")]
    Schooling,
    #[serde(rename = "family.upbringing")]
    Upbringing,
    #[serde(rename = "family.welfare_services")]
    WelfareServices,
    #[serde(rename = "casework.interview")]
    Interview,
    #[serde(rename = "casework.investigation")]
    Investigation,
    #[serde(rename = "casework.findings")]
    Findings,
    #[serde(rename = "casework.support_plan")]
    SupportPlan,
    #[serde(rename = "casework.progress")]
    Progress,
    #[serde(rename = "casework.attachments")]
    Attachments,
    #[serde(rename = "admin.intake_reports")]
    IntakeReports,
}

impl Field {
    pub fn label_ja(self) -> &'static str {
        match self {
            Field::CoreAddress => "住所",
            Field::GuardianWorkplace => "保護者の勤務先",
            Field::Household => "家族の状況",
            Field::Schooling => "保育所等利用状況・就学状況",
            Field::Upbringing => "養育状況",
            Field::WelfareServices => "福祉サービス等利用状況",
            Field::Interview => "面接結果",
            Field::Investigation => "調査結果",
            Field::Findings => "所見",
            Field::SupportPlan => "支援方針",
            Field::Progress => "経過",
            Field::Attachments => "添付資料",
            Field::IntakeReports => "通告受理",
        }
    }
}

/// The restrictions on one record. Empty means nothing is withheld beyond the tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Restrictions {
    pub groups: Vec<Group>,
    pub fields: Vec<Field>,
    /// Why, for the people who meet the marker (e.g. "DV被害のため住所非開示").
    pub reason: String,
}

impl Restrictions {
    pub fn group(&self, g: Group) -> bool {
        self.groups.contains(&g)
    }
    pub fn field(&self, f: Field) -> bool {
        self.fields.contains(&f)
    }
    /// Sorted and deduplicated, so equal restrictions compare and hash equal.
    pub fn normalised(mut self) -> Self {
        self.groups.sort();
        self.groups.dedup();
        self.fields.sort();
        self.fields.dedup();
        self.reason = self.reason.trim().to_string();
        self
    }
}
