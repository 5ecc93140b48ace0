//! Intake reports (通告受理) as their own entity: what staff type while the caller speaks, saved
//! before anyone knows which child it concerns, then attached to a record or converted into one.
//! Every field is optional except the content and the time of the report, and each intake
//! starts the safety-confirmation clock (児童相談所運営指針: the child seen within 48 hours).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::codes::{lgcode_is_valid, Relationship, Sex};
use crate::schema::{BirthDate, PersonName};
use crate::validate::{Errors, FieldError, SHORT_TEXT_MAX};
use crate::views::OwnerContact;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

code_list!(
    /// How the report reached the organisation (通告の経路).
    IntakeChannel {
        Phone = "phone": "電話",
        Visit = "visit": "来所",
        Letter = "letter": "文書・メール",
        Police = "police": "警察からの通告",
        School = "school": "学校",
        Daycare = "daycare": "保育所・幼稚園等",
        Hospital = "hospital": "医療機関",
        Neighbour = "neighbour": "近隣・知人",
        Relative = "relative": "家族・親戚",
        Child = "child": "児童本人",
        Municipality = "municipality": "市区町村",
        OtherCgc = "other_cgc": "他の児童相談所",
        Welfare = "welfare": "福祉事務所・児童委員等",
        Anonymous = "anonymous": "匿名",
        Other = "other": "その他",
    }
);

code_list!(
    /// How urgent the receiving staff judged the report.
    IntakeUrgency {
        Immediate = "immediate": "緊急（直ちに対応）",
        High = "high": "高",
        Normal = "normal": "通常",
    }
);

code_list!(
    /// Where an intake stands.
    IntakeStatus {
        Open = "open": "未処理",
        Attached = "attached": "既存の記録に追加",
        Forwarded = "forwarded": "所管機関へ送付",
        Converted = "converted": "新規記録を作成",
    }
);

code_list!(
    /// How the child's safety was confirmed: in principle by direct sighting.
    SafetyMethod {
        DirectSighting = "direct_sighting": "直接目視",
        Other = "other": "その他（関係機関による確認等）",
    }
);

code_list!(
    /// The safety clock of an intake as of now.
    SafetyState {
        Pending = "pending": "確認待ち",
        DueSoon = "due_soon": "期限間近",
        Overdue = "overdue": "期限超過",
        Confirmed = "confirmed": "確認済み",
        ConfirmedLate = "confirmed_late": "確認済み（期限後）",
    }
);

/// The child as far as the caller knows: every field may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct IntakeChild {
    pub name: PersonName,
    pub sex: Option<Sex>,
    pub birth_date: Option<BirthDate>,
    /// An age or school year when the birth date is unknown (「小学校低学年くらい」).
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub age_note: String,
    /// 全国地方公共団体コード of where the child lives, if known.
    #[cfg_attr(feature = "openapi", schema(pattern = "^([0-9]{6})?$"))]
    pub municipality_code: String,
    /// Where the child lives or was seen, as said (not shown in search).
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub address_note: String,
}

/// A guardian as far as the caller knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct IntakeGuardian {
    pub name: PersonName,
    pub relationship: Option<Relationship>,
}

/// An intake as staff write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntakeInput {
    /// When the report was received (any RFC 3339 offset; returned in UTC).
    pub received_at: DateTime<Utc>,
    #[serde(default)]
    pub channel: Option<IntakeChannel>,
    /// Who the reporter is to the child (「近所の住民」「担任教諭」).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub reporter_relationship: String,
    /// What was reported.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 20000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub content: String,
    #[serde(default)]
    pub child: IntakeChild,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub guardians: Vec<IntakeGuardian>,
    #[serde(default)]
    pub urgency: Option<IntakeUrgency>,
}

/// The longest report content, in characters.
pub const CONTENT_MAX: usize = 20_000;
/// A report may be typed in a little before the server's clock says it arrived (clock skew).
pub const RECEIVED_AHEAD_MAX: Duration = Duration::minutes(5);
/// The oldest report an intake may record: older ones are typing mistakes (a paper backlog
/// comes in by the batch import).
pub const RECEIVED_BEFORE_MAX: Duration = Duration::days(366);

/// Checks an intake; `Ok` or every problem found, each naming its field in Japanese.
pub fn validate_intake(
    i: &IntakeInput,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    if i.received_at > now + RECEIVED_AHEAD_MAX {
        e.push(
            "received_at",
            "future_date",
            "受理日時に未来の日時は入力できません",
        );
    } else if i.received_at < now - RECEIVED_BEFORE_MAX {
        e.push(
            "received_at",
            "invalid",
            "受理日時が古すぎます（1年以上前の日時は入力できません）",
        );
    }
    e.required("content", "通告内容", &i.content);
    e.text("content", "通告内容", &i.content, CONTENT_MAX);
    e.text(
        "reporter_relationship",
        "通告者と児童の関係",
        &i.reporter_relationship,
        SHORT_TEXT_MAX,
    );
    let c = &i.child;
    e.optional_name("child.name", "子どもの氏名", &c.name);
    if let Some(b) = c.birth_date {
        e.date_not_future("child.birth_date.date", "子どもの生年月日", b.date, today);
        if today.year() - b.date.year() > crate::validate::MAX_AGE_YEARS {
            e.push(
                "child.birth_date.date",
                "invalid",
                format!(
                    "生年月日が古すぎます（{}歳を超えています）",
                    crate::validate::MAX_AGE_YEARS
                ),
            );
        }
    }
    e.text("child.age_note", "年齢・学年", &c.age_note, SHORT_TEXT_MAX);
    let code = c.municipality_code.trim();
    if !code.is_empty() && !lgcode_is_valid(code) {
        e.push(
            "child.municipality_code",
            "invalid",
            "市区町村コードは検査数字付きの6桁の全国地方公共団体コードで入力してください",
        );
    }
    e.text(
        "child.address_note",
        "住所・所在",
        &c.address_note,
        SHORT_TEXT_MAX,
    );
    if i.guardians.len() > 10 {
        e.push("guardians", "too_many", "保護者は10人までです");
    }
    for (n, g) in i.guardians.iter().enumerate() {
        e.optional_name(
            &format!("guardians[{n}].name"),
            &format!("保護者{}の氏名", n + 1),
            &g.name,
        );
    }
    e.into_result()
}

/// A recorded safety confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SafetyConfirmationInput {
    /// When the child's safety was confirmed.
    pub confirmed_at: DateTime<Utc>,
    pub method: SafetyMethod,
    /// How, and by whom if not the one recording it; required when the method is `other`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub note: String,
}

/// Checks a safety confirmation against its intake's time of receipt.
pub fn validate_confirmation(
    c: &SafetyConfirmationInput,
    received_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    if c.confirmed_at > now + RECEIVED_AHEAD_MAX {
        e.push(
            "confirmed_at",
            "future_date",
            "確認日時に未来の日時は入力できません",
        );
    }
    if c.confirmed_at < received_at {
        e.push(
            "confirmed_at",
            "invalid",
            "確認日時が受理日時より前になっています",
        );
    }
    if c.method == SafetyMethod::Other {
        e.required("note", "確認方法の説明", &c.note);
    }
    e.text("note", "確認方法の説明", &c.note, crate::validate::TEXT_MAX);
    e.into_result()
}

/// A safety confirmation as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SafetyConfirmation {
    pub confirmed_at: DateTime<Utc>,
    pub method: SafetyMethod,
    pub note: String,
    /// The staff member who recorded it.
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// The safety clock of one intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SafetyClock {
    /// The hours the organisation allows (its setting when the intake was received).
    pub hours: u32,
    pub due_at: DateTime<Utc>,
    pub state: SafetyState,
    pub confirmation: Option<SafetyConfirmation>,
}

/// An intake as its readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct IntakeView {
    pub id: i64,
    /// The organisation that received the report.
    pub org: OwnerContact,
    pub status: IntakeStatus,
    /// The record it was attached to or converted into.
    pub record_id: Option<i64>,
    pub input: IntakeInput,
    pub safety: SafetyClock,
    /// The staff member who saved it.
    pub received_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// One row of the intake list: what a duty list needs, the content cut to its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct IntakeSummary {
    pub id: i64,
    pub status: IntakeStatus,
    pub record_id: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub channel: Option<IntakeChannel>,
    pub urgency: Option<IntakeUrgency>,
    pub child_name: PersonName,
    pub due_at: DateTime<Utc>,
    pub state: SafetyState,
}

impl IntakeSummary {
    /// The child's safety is still to be confirmed.
    pub fn confirmation_pending(&self) -> bool {
        matches!(
            self.state,
            SafetyState::Pending | SafetyState::DueSoon | SafetyState::Overdue
        )
    }
}

/// A page of intakes, most urgent first (overdue, then due soonest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct IntakeList {
    pub items: Vec<IntakeSummary>,
}

/// Attach an intake to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AttachIntake {
    pub record_id: i64,
    /// The intake's version the client saw.
    pub version: i64,
}

/// Replace an open intake's fields (while the call goes on, or to correct it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateIntake {
    pub version: i64,
    pub input: IntakeInput,
}

/// Record a safety confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmSafety {
    pub version: i64,
    pub confirmation: SafetyConfirmationInput,
}

/// A new record from an intake: the record as the caseworker completed it from the intake's
/// prefill, and the intake's version they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConvertIntake {
    pub version: i64,
    pub record: crate::RecordBody,
}

/// What a conversion returns: the intake, now linked, and the new record's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Converted {
    pub intake: IntakeView,
    pub record_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, h, 0, 0).unwrap()
    }

    fn minimal(content: &str) -> IntakeInput {
        IntakeInput {
            received_at: at(3),
            channel: None,
            reporter_relationship: String::new(),
            content: content.into(),
            child: IntakeChild::default(),
            guardians: vec![],
            urgency: None,
        }
    }

    fn fields(r: Result<(), Vec<FieldError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn only_the_content_and_the_time_are_required() {
        let today = at(4).date_naive();
        assert_eq!(
            validate_intake(&minimal("泣き声が続いている"), at(4), today),
            Ok(())
        );
        assert_eq!(
            fields(validate_intake(&minimal("  "), at(4), today)),
            ["content"]
        );
        let errs = validate_intake(&minimal(""), at(4), today).unwrap_err();
        assert_eq!(errs[0].message, "通告内容は必須です");
    }

    #[test]
    fn every_problem_names_its_field() {
        let today = at(4).date_naive();
        let mut i = minimal("内容");
        i.received_at = at(5); // an hour ahead of the server's clock
        i.child.name.family_kana = Some("yamada".into());
        i.child.birth_date = Some(BirthDate {
            date: today.succ_opt().unwrap(),
            estimated: false,
        });
        i.child.municipality_code = "131017".into(); // 千代田区 is 131016
        i.guardians = vec![IntakeGuardian::default(); 11];
        i.guardians[3].name.given = "あ".repeat(51);
        let f = fields(validate_intake(&i, at(4), today));
        for want in [
            "received_at",
            "child.name.family_kana",
            "child.birth_date.date",
            "child.municipality_code",
            "guardians",
            "guardians[3].name.given",
        ] {
            assert!(f.iter().any(|x| x == want), "{want} in {f:?}");
        }
        let mut old = minimal("内容");
        old.received_at = at(4) - Duration::days(400);
        old.child.birth_date = Some(BirthDate {
            date: NaiveDate::from_ymd_opt(1950, 1, 1).unwrap(),
            estimated: true,
        });
        assert_eq!(
            fields(validate_intake(&old, at(4), today)),
            ["received_at", "child.birth_date.date"]
        );
        // A few minutes of clock skew is not the future.
        let mut ok = minimal("内容");
        ok.received_at = at(4) + Duration::minutes(3);
        assert_eq!(validate_intake(&ok, at(4), today), Ok(()));
    }

    #[test]
    fn a_confirmation_by_other_means_says_how() {
        let c = |method, note: &str, h| SafetyConfirmationInput {
            confirmed_at: at(h),
            method,
            note: note.into(),
        };
        assert_eq!(
            validate_confirmation(&c(SafetyMethod::DirectSighting, "", 5), at(3), at(6)),
            Ok(())
        );
        assert_eq!(
            fields(validate_confirmation(
                &c(SafetyMethod::Other, "", 5),
                at(3),
                at(6)
            )),
            ["note"]
        );
        assert_eq!(
            fields(validate_confirmation(
                &c(SafetyMethod::DirectSighting, "", 2),
                at(3),
                at(6)
            )),
            ["confirmed_at"]
        );
        assert_eq!(
            fields(validate_confirmation(
                &c(SafetyMethod::DirectSighting, "", 9),
                at(3),
                at(6)
            )),
            ["confirmed_at"]
        );
    }

    #[test]
    fn codes_round_trip() {
        for c in IntakeChannel::ALL {
            assert_eq!(IntakeChannel::from_code(c.code()), Some(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.code()));
        }
        let i: IntakeInput = serde_json::from_str(
            r#"{"received_at":"2026-12-06T12:00:00+09:00","content":"x","channel":"police"}"#,
        )
        .unwrap();
        assert_eq!(i.received_at, at(3));
        assert_eq!(i.channel, Some(IntakeChannel::Police));
    }
}

/// A new record prefilled from an intake, for the caseworker to complete before converting:
/// the child and guardians as far as the caller knew them, the address's municipality (the
/// street said on the phone goes to the report's summary, not into the address), and the
/// report itself as the record's first intake report (受理日 = the day in Japan it was received).
pub fn record_prefill(i: &IntakeInput) -> crate::RecordBody {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
    let mut b = crate::RecordBody::default();
    b.core.child_name = i.child.name.clone();
    b.core.sex = i.child.sex;
    b.core.birth_date = i.child.birth_date;
    b.core.address.municipality_code = i.child.municipality_code.trim().to_string();
    b.core.guardians = i
        .guardians
        .iter()
        .map(|g| crate::schema::Guardian {
            name: g.name.clone(),
            relationship: g.relationship,
        })
        .collect();
    let source = match (i.channel, i.reporter_relationship.trim()) {
        (Some(c), "") => c.label_ja().to_string(),
        (Some(c), r) => format!("{}（{r}）", c.label_ja()),
        (None, r) => r.to_string(),
    };
    let mut summary = i.content.trim().to_string();
    let note = [i.child.age_note.trim(), i.child.address_note.trim()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("／");
    if !note.is_empty() {
        summary = format!("{summary}\n（{note}）");
    }
    b.admin.intake_reports = vec![crate::schema::IntakeReport {
        received_on: i.received_at.with_timezone(&jst).date_naive(),
        source: source.chars().take(SHORT_TEXT_MAX).collect(),
        summary: summary.chars().take(crate::validate::TEXT_MAX).collect(),
    }];
    b.admin.status = Some(crate::codes::CaseStatus::Open);
    b
}

#[cfg(test)]
mod prefill_tests {
    use super::*;

    #[test]
    fn the_prefill_carries_what_the_caller_said() {
        let i: IntakeInput = serde_json::from_value(serde_json::json!({
            "received_at": "2026-12-07T16:10:00Z", "channel": "police",
            "reporter_relationship": "生活安全課", "content": "夜間に子どもが屋外に一人でいた",
            "child": { "name": { "family": "試験", "given": "花子", "family_kana": "シケン" },
                       "sex": 2, "age_note": "小学生くらい", "municipality_code": "131016",
                       "address_note": "架空町の団地" },
            "guardians": [ { "name": { "family": "試験", "given": "" }, "relationship": "mother" } ] }))
        .unwrap();
        let b = record_prefill(&i);
        assert_eq!(b.core.child_name.given, "花子");
        assert_eq!(b.core.sex, Some(Sex::Female));
        assert_eq!(b.core.address.municipality_code, "131016");
        assert_eq!(
            b.core.address.street, "",
            "a street said on the phone is not an address"
        );
        assert_eq!(b.core.guardians[0].relationship, Some(Relationship::Mother));
        let r = &b.admin.intake_reports[0];
        // 16:10 UTC is 01:10 the next day in Japan.
        assert_eq!(r.received_on, NaiveDate::from_ymd_opt(2026, 12, 8).unwrap());
        assert_eq!(r.source, "警察からの通告（生活安全課）");
        assert!(r.summary.starts_with("夜間に子どもが屋外に一人でいた"));
        assert!(r.summary.contains("小学生くらい／架空町の団地"));
    }
}
