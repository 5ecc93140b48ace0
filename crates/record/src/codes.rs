//! Code lists of the national common format. Every code serialises as a stable ASCII string
//! (or a number where a standard fixes one) and has a Japanese label for screens and messages.

use serde::{Deserialize, Serialize};

/// Defines a closed code list: serde names, Japanese labels and the full list of values.
///
/// The OpenAPI schema is written here from the same table as the serde names, not derived:
/// utoipa's derive does not see a `#[serde(rename = $wire)]` whose literal comes from a macro
/// argument and listed the Rust variant names (`Father`) where the wire has `father`.
macro_rules! code_list {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $wire:literal : $label:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::codes::code_list_schema(&[$($doc),*], $name::ALL.iter().map(|v| (v.code(), v.label_ja())))
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
        impl $name {
            /// Every value of the list, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The code as it travels on the wire and in CSV files.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            /// The Japanese label shown to users.
            pub fn label_ja(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            /// Parses a wire code.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($wire => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

/// A string enum schema whose values are exactly the wire codes, with each code's label.
#[cfg(feature = "openapi")]
pub(crate) fn code_list_schema<'a>(
    doc: &[&str],
    codes: impl Iterator<Item = (&'a str, &'a str)>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let (values, labels): (Vec<&str>, Vec<String>) =
        codes.map(|(c, l)| (c, format!("`{c}` {l}"))).unzip();
    let doc = doc.iter().map(|d| d.trim()).collect::<Vec<_>>().join(" ");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .description(Some(format!("{doc}\n\n{}", labels.join(", "))))
        .into()
}

code_list!(
    /// Kind of organisation using the system.
    OrgKind {
        Cgc = "cgc": "児童相談所",
        Municipality = "municipality": "市区町村",
        Ministry = "ministry": "こども家庭庁",
        Operator = "operator": "運用者",
    }
);

code_list!(
    /// Role of a person within their organisation.
    Role {
        Staff = "staff": "職員",
        Supervisor = "supervisor": "スーパーバイザー",
        OrgAdmin = "org_admin": "組織管理者",
        Ministry = "ministry": "こども家庭庁職員",
        Operator = "operator": "運用者",
    }
);

code_list!(
    /// 続柄: relationship of a guardian or household member to the child.
    Relationship {
        Father = "father": "実父",
        Mother = "mother": "実母",
        AdoptiveFather = "adoptive_father": "養父",
        AdoptiveMother = "adoptive_mother": "養母",
        Stepfather = "stepfather": "継父",
        Stepmother = "stepmother": "継母",
        MothersPartner = "mothers_partner": "母の交際相手",
        FathersPartner = "fathers_partner": "父の交際相手",
        Grandfather = "grandfather": "祖父",
        Grandmother = "grandmother": "祖母",
        OlderBrother = "older_brother": "兄",
        OlderSister = "older_sister": "姉",
        YoungerBrother = "younger_brother": "弟",
        YoungerSister = "younger_sister": "妹",
        Uncle = "uncle": "おじ",
        Aunt = "aunt": "おば",
        FosterParent = "foster_parent": "里親",
        Guardian = "legal_guardian": "未成年後見人",
        FacilityHead = "facility_head": "施設長",
        Other = "other": "その他",
    }
);

code_list!(
    /// 相談種別 following the categories of the CGC operating guidelines.
    ConsultationType {
        AbusePhysical = "abuse_physical": "児童虐待（身体的虐待）",
        AbuseSexual = "abuse_sexual": "児童虐待（性的虐待）",
        AbuseNeglect = "abuse_neglect": "児童虐待（ネグレクト）",
        AbusePsychological = "abuse_psychological": "児童虐待（心理的虐待）",
        ProtectionOther = "protection_other": "その他の養護相談",
        Health = "health": "保健相談",
        Disability = "disability": "障害相談",
        Delinquency = "delinquency": "非行相談",
        Upbringing = "upbringing": "育成相談",
        Other = "other": "その他の相談",
    }
);

code_list!(
    /// 保育所等利用状況・就学状況: the kind of daycare or school the child attends.
    FacilityType {
        Home = "home": "家庭（未就園）",
        Nursery = "nursery": "保育所",
        Kindergarten = "kindergarten": "幼稚園",
        CertifiedCenter = "certified_center": "認定こども園",
        Elementary = "elementary": "小学校",
        JuniorHigh = "junior_high": "中学校",
        HighSchool = "high_school": "高等学校",
        SpecialNeeds = "special_needs": "特別支援学校",
        NotAttending = "not_attending": "不就学",
        Other = "other": "その他",
    }
);

code_list!(
    /// Status of a case record.
    CaseStatus {
        Open = "open": "対応中",
        Closed = "closed": "終結",
        TransferredOut = "transferred_out": "移管済み",
    }
);

impl CaseStatus {
    /// The statuses an owner may write in a record body: `transferred_out` is set only by a
    /// transfer. Validation and the OpenAPI document both read this list.
    pub const OWNER_SETTABLE: &'static [CaseStatus] = &[CaseStatus::Open, CaseStatus::Closed];
}

/// `admin.status` in a record body: null or one of [`CaseStatus::OWNER_SETTABLE`].
#[cfg(feature = "openapi")]
pub(crate) fn owner_settable_status_schema() -> utoipa::openapi::schema::Object {
    status_schema(
        CaseStatus::OWNER_SETTABLE,
        "`transferred_out`（移管済み）は移管の手続きでのみ設定され、記録の本文では 422 になります",
    )
}

/// `admin.status` as a record is shown: also `transferred_out`, which a confirmed transfer sets.
#[cfg(feature = "openapi")]
pub(crate) fn shown_status_schema() -> utoipa::openapi::schema::Object {
    status_schema(
        CaseStatus::ALL,
        "`transferred_out` は移管の受入で設定され、その記録は読み取り専用です",
    )
}

#[cfg(feature = "openapi")]
fn status_schema(statuses: &[CaseStatus], note: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut values: Vec<serde_json::Value> = statuses.iter().map(|s| s.code().into()).collect();
    values.push(serde_json::Value::Null);
    let labels: Vec<String> = statuses
        .iter()
        .map(|s| format!("`{}` {}", s.code(), s.label_ja()))
        .collect();
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .description(Some(format!("{}. {note}", labels.join(", "))))
        .build()
}

/// `admin` as a record is shown to its owner (and the ministry): the body's `AdminInput`, whose
/// status may also be `transferred_out`.
#[cfg(feature = "openapi")]
pub(crate) fn shown_admin_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let mut s = <crate::schema::AdminInput as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(obj)) = &mut s {
        obj.properties.insert(
            "status".into(),
            RefOr::T(Schema::Object(shown_status_schema())),
        );
        obj.description = Some(
            "記録の管理項目（表示）。移管済みの記録では status が `transferred_out` です".into(),
        );
    }
    s
}

code_list!(
    /// Assessed risk of a case.
    RiskLevel {
        Low = "low": "低",
        Medium = "medium": "中",
        High = "high": "高",
        Critical = "critical": "最重度",
    }
);

/// Sex by ISO/IEC 5218: 0 not known, 1 male, 2 female, 9 not applicable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    NotKnown,
    Male,
    Female,
    NotApplicable,
}

impl Sex {
    pub const ALL: &'static [Sex] = &[Sex::NotKnown, Sex::Male, Sex::Female, Sex::NotApplicable];

    pub fn iso5218(self) -> u8 {
        match self {
            Sex::NotKnown => 0,
            Sex::Male => 1,
            Sex::Female => 2,
            Sex::NotApplicable => 9,
        }
    }

    pub fn from_iso5218(code: u8) -> Option<Self> {
        match code {
            0 => Some(Sex::NotKnown),
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            9 => Some(Sex::NotApplicable),
            _ => None,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Sex::NotKnown => "不明",
            Sex::Male => "男",
            Sex::Female => "女",
            Sex::NotApplicable => "適用不能",
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Sex {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .enum_values(Some([0, 1, 2, 9]))
            .description(Some("ISO/IEC 5218: 0 不明, 1 男, 2 女, 9 適用不能"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Sex {}

impl Serialize for Sex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.iso5218())
    }
}

impl<'de> Deserialize<'de> for Sex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        Sex::from_iso5218(n).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "sex must be an ISO/IEC 5218 code (0, 1, 2 or 9), got {n}"
            ))
        })
    }
}

/// Checks the check digit of a 6-digit 全国地方公共団体コード. The sixth digit is
/// `(11 - (sum of digits 1..5 weighted 6,5,4,3,2) mod 11) mod 10`.
pub fn lgcode_is_valid(code: &str) -> bool {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if code.len() != 6 || digits.len() != 6 {
        return false;
    }
    let sum: u32 = digits[..5]
        .iter()
        .zip([6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    let check = (11 - sum % 11) % 10;
    check == digits[5]
}

/// The prefecture code (1..=47) of a local government code.
pub fn lgcode_prefecture(code: &str) -> Option<u8> {
    let p: u8 = code.get(0..2)?.parse().ok()?;
    (1..=47).contains(&p).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lgcode_check_digits_of_real_codes() {
        // 札幌市, 千代田区, 那覇市: the real codes with their check digits.
        for ok in ["011002", "131016", "472018"] {
            assert!(lgcode_is_valid(ok), "{ok}");
        }
        for bad in ["011003", "13101", "13101a", "1310166", ""] {
            assert!(!lgcode_is_valid(bad), "{bad}");
        }
        assert_eq!(lgcode_prefecture("131016"), Some(13));
        assert_eq!(lgcode_prefecture("481016"), None);
    }

    /// serde writes and reads each value as `code()`, which is also what the OpenAPI schema lists.
    fn wire_is_code<T>(all: &[T], code: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>,
    {
        for v in all {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::Value::from(code(*v)), "{v:?}");
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), *v);
        }
    }

    #[test]
    fn codes_round_trip() {
        for r in Relationship::ALL {
            assert_eq!(Relationship::from_code(r.code()), Some(*r));
        }
        wire_is_code(OrgKind::ALL, OrgKind::code);
        wire_is_code(Role::ALL, Role::code);
        wire_is_code(Relationship::ALL, Relationship::code);
        wire_is_code(ConsultationType::ALL, ConsultationType::code);
        wire_is_code(FacilityType::ALL, FacilityType::code);
        wire_is_code(CaseStatus::ALL, CaseStatus::code);
        wire_is_code(RiskLevel::ALL, RiskLevel::code);
        for s in Sex::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<Sex>(&json).unwrap(), *s);
        }
        assert!(serde_json::from_str::<Sex>("3").is_err());
        assert_eq!(ConsultationType::from_code("nope"), None);
    }
}
