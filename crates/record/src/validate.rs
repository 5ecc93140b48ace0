//! Validation of a record as written by its owner. It returns every problem at once, each naming
//! the field by its path and saying in Japanese what is wrong, so a screen or a CSV report can put
//! each message next to its field.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::codes::{lgcode_is_valid, CaseStatus};
use crate::normalize::is_kana_reading;
use crate::schema::{PersonName, RecordBody};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FieldError {
    /// Path of the field, e.g. `core.guardians[0].name.family`.
    pub field: String,
    /// Machine-readable kind: `required`, `too_long`, `invalid`, `future_date`, …
    pub code: String,
    /// What is wrong, in Japanese.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What validation needs to know of the world.
pub struct Context<'a> {
    pub today: NaiveDate,
    /// Whether a municipality code belongs to a known municipality. The client, which has no
    /// master data, passes a function that only checks the form.
    pub municipality_exists: &'a dyn Fn(&str) -> bool,
}

pub const NAME_MAX: usize = 50;
pub const SHORT_TEXT_MAX: usize = 200;
pub const TEXT_MAX: usize = 4_000;
pub const LONG_TEXT_MAX: usize = 20_000;
pub const LIST_MAX: usize = 200;
/// The largest attachment a record may describe, in bytes (10 GiB); the OpenAPI document
/// states the same maximum.
pub const ATTACHMENT_SIZE_MAX: u64 = 10 * 1024 * 1024 * 1024;
/// Records are kept until the child is 25; older birth dates are typing mistakes.
pub const MAX_AGE_YEARS: i32 = 30;

/// Required fields as paths, for screens that mark them 必須.
pub const REQUIRED_FIELDS: &[&str] = &[
    "core.child_name.family",
    "core.child_name.given",
    "core.sex",
    "core.birth_date",
    "core.address.municipality_code",
    "core.address.street",
    "core.guardians",
    "core.guardians[].name.family",
    "core.guardians[].relationship",
    "admin.case_number",
    "admin.consultation_type",
];

/// Whether `c` may not appear in text: control characters (C0, DEL, C1; `\n` and `\t` only
/// where `multiline`), the line and paragraph separators U+2028/U+2029 (line breaks by another
/// name, so only where `multiline`), the bidirectional embedding, override and isolate controls
/// and marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C, which reorder or shift
/// what a screen shows), the invisible U+200B and U+FEFF (two names that look the same would
/// differ), and noncharacters (U+FDD0–U+FDEF and the last two code points of every plane).
/// Shared by the server's boundary checks and the client's validation.
pub fn is_forbidden_char(c: char, multiline: bool) -> bool {
    let u = c as u32;
    (c.is_control() && !(multiline && (c == '\n' || c == '\t')))
        || (!multiline && (u == 0x2028 || u == 0x2029))
        || matches!(u, 0x200B | 0x200E | 0x200F | 0x061C | 0xFEFF)
        || (0x202A..=0x202E).contains(&u)
        || (0x2066..=0x2069).contains(&u)
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
}

/// The first character of `value` that `is_forbidden_char`.
pub fn forbidden_char(value: &str, multiline: bool) -> Option<char> {
    value.chars().find(|c| is_forbidden_char(*c, multiline))
}

/// Problems collected while checking, every one reported at once.
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        code: &str,
        message: impl Into<String>,
    ) {
        self.0.push(FieldError::new(field, code, message));
    }

    pub(crate) fn required(&mut self, field: &str, label: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(field, "required", format!("{label}は必須です"));
        }
    }

    pub(crate) fn max_len(&mut self, field: &str, label: &str, value: &str, max: usize) {
        let n = value.chars().count();
        if n > max {
            self.push(
                field,
                "too_long",
                format!("{label}は{max}文字以内で入力してください（現在{n}文字）"),
            );
        }
    }

    pub(crate) fn no_control(&mut self, field: &str, label: &str, value: &str, multiline: bool) {
        if let Some(c) = forbidden_char(value, multiline) {
            self.push(
                field,
                "invalid",
                format!(
                    "{label}に使用できない文字（制御文字など、U+{:04X}）が含まれています",
                    c as u32
                ),
            );
        }
    }

    pub(crate) fn text(&mut self, field: &str, label: &str, value: &str, max: usize) {
        self.max_len(field, label, value, max);
        self.no_control(field, label, value, max > SHORT_TEXT_MAX);
    }

    pub(crate) fn name(
        &mut self,
        path: &str,
        label: &str,
        name: &PersonName,
        given_required: bool,
    ) {
        self.required(
            &format!("{path}.family"),
            &format!("{label}（氏）"),
            &name.family,
        );
        if given_required {
            self.required(
                &format!("{path}.given"),
                &format!("{label}（名）"),
                &name.given,
            );
        }
        self.text(
            &format!("{path}.family"),
            &format!("{label}（氏）"),
            &name.family,
            NAME_MAX,
        );
        self.text(
            &format!("{path}.given"),
            &format!("{label}（名）"),
            &name.given,
            NAME_MAX,
        );
        self.readings(path, label, name);
    }

    fn readings(&mut self, path: &str, label: &str, name: &PersonName) {
        for (part, kana, l) in [
            ("family_kana", &name.family_kana, "フリガナ（氏）"),
            ("given_kana", &name.given_kana, "フリガナ（名）"),
        ] {
            if let Some(k) = kana {
                let field = format!("{path}.{part}");
                self.text(&field, &format!("{label}の{l}"), k, NAME_MAX);
                if !k.trim().is_empty() && !is_kana_reading(k) {
                    self.push(
                        field,
                        "invalid",
                        format!("{label}の{l}はカタカナまたはひらがなで入力してください"),
                    );
                }
            }
        }
    }

    /// A name of which every part may be empty (an intake's child as far as known): only
    /// lengths, characters and the reading's script are checked.
    pub(crate) fn optional_name(&mut self, path: &str, label: &str, name: &PersonName) {
        self.text(
            &format!("{path}.family"),
            &format!("{label}（氏）"),
            &name.family,
            NAME_MAX,
        );
        self.text(
            &format!("{path}.given"),
            &format!("{label}（名）"),
            &name.given,
            NAME_MAX,
        );
        self.readings(path, label, name);
    }

    pub(crate) fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    pub(crate) fn date_not_future(
        &mut self,
        field: &str,
        label: &str,
        date: NaiveDate,
        today: NaiveDate,
    ) {
        if date > today {
            self.push(
                field,
                "future_date",
                format!("{label}に未来の日付は入力できません"),
            );
        }
    }
}

/// Checks a record; `Ok` or every problem found.
pub fn validate(record: &RecordBody, ctx: &Context) -> Result<(), Vec<FieldError>> {
    let mut e = Errors(Vec::new());
    let core = &record.core;

    e.name("core.child_name", "子どもの氏名", &core.child_name, true);
    if core.sex.is_none() {
        e.push("core.sex", "required", "性別は必須です");
    }
    match &core.birth_date {
        None => e.push("core.birth_date", "required", "生年月日は必須です"),
        Some(b) => {
            e.date_not_future("core.birth_date.date", "生年月日", b.date, ctx.today);
            if ctx.today.year() - b.date.year() > MAX_AGE_YEARS {
                e.push(
                    "core.birth_date.date",
                    "invalid",
                    format!("生年月日が古すぎます（{MAX_AGE_YEARS}歳を超えています）"),
                );
            }
        }
    }

    let addr = &core.address;
    let code = addr.municipality_code.trim();
    if code.is_empty() {
        e.push(
            "core.address.municipality_code",
            "required",
            "住所の市区町村コードは必須です",
        );
    } else if !lgcode_is_valid(code) {
        e.push(
            "core.address.municipality_code",
            "invalid",
            "市区町村コードは検査数字付きの6桁の全国地方公共団体コードで入力してください",
        );
    } else if !(ctx.municipality_exists)(code) {
        e.push(
            "core.address.municipality_code",
            "unknown",
            format!("市区町村コード {code} に該当する市区町村がありません"),
        );
    }
    let postal: String = addr.postal_code.chars().filter(|c| *c != '-').collect();
    if !addr.postal_code.is_empty()
        && (postal.len() != 7 || !postal.chars().all(|c| c.is_ascii_digit()))
    {
        e.push(
            "core.address.postal_code",
            "invalid",
            "郵便番号は7桁の数字（例: 100-0001）で入力してください",
        );
    }
    e.required("core.address.street", "住所（町名・番地）", &addr.street);
    e.text(
        "core.address.street",
        "住所（町名・番地）",
        &addr.street,
        SHORT_TEXT_MAX,
    );

    if core.guardians.is_empty() {
        e.push(
            "core.guardians",
            "required",
            "保護者を1人以上入力してください",
        );
    }
    if core.guardians.len() > 10 {
        e.push("core.guardians", "too_many", "保護者は10人までです");
    }
    for (i, g) in core.guardians.iter().enumerate() {
        let path = format!("core.guardians[{i}]");
        let label = format!("保護者{}の氏名", i + 1);
        e.name(&format!("{path}.name"), &label, &g.name, false);
        if g.relationship.is_none() {
            e.push(
                format!("{path}.relationship"),
                "required",
                format!("保護者{}の続柄は必須です", i + 1),
            );
        }
    }

    let fam = &record.family;
    e.text(
        "family.guardian_workplace",
        "保護者の勤務先",
        &fam.guardian_workplace,
        SHORT_TEXT_MAX,
    );
    if fam.household.len() > 30 {
        e.push("family.household", "too_many", "家族の状況は30人までです");
    }
    for (i, m) in fam.household.iter().enumerate() {
        let path = format!("family.household[{i}]");
        e.text(&format!("{path}.name"), "家族の氏名", &m.name, NAME_MAX * 2);
        e.text(
            &format!("{path}.note"),
            "家族の備考",
            &m.note,
            SHORT_TEXT_MAX,
        );
        if let Some(y) = m.birth_year {
            if y < 1900 || y > ctx.today.year() {
                e.push(
                    format!("{path}.birth_year"),
                    "invalid",
                    "家族の生年が正しくありません",
                );
            }
        }
    }
    e.text(
        "family.schooling.facility_name",
        "保育所・学校名",
        &fam.schooling.facility_name,
        SHORT_TEXT_MAX,
    );
    e.text("family.upbringing", "養育状況", &fam.upbringing, TEXT_MAX);
    e.text(
        "family.welfare_services",
        "福祉サービス等利用状況",
        &fam.welfare_services,
        TEXT_MAX,
    );

    let cw = &record.casework;
    for (field, label, value) in [
        ("casework.interview", "面接結果", &cw.interview),
        ("casework.investigation", "調査結果", &cw.investigation),
        ("casework.findings", "所見", &cw.findings),
        ("casework.support_plan", "支援方針", &cw.support_plan),
    ] {
        e.text(field, label, value, LONG_TEXT_MAX);
    }
    if cw.progress.len() > LIST_MAX * 5 {
        e.push(
            "casework.progress",
            "too_many",
            "経過の件数が多すぎます（1,000件まで）",
        );
    }
    for (i, p) in cw.progress.iter().enumerate() {
        let path = format!("casework.progress[{i}]");
        e.date_not_future(&format!("{path}.date"), "経過の日付", p.date, ctx.today);
        e.required(&format!("{path}.text"), "経過の内容", &p.text);
        e.text(&format!("{path}.text"), "経過の内容", &p.text, TEXT_MAX);
    }
    for (i, a) in cw.attachments.iter().enumerate() {
        let path = format!("casework.attachments[{i}]");
        e.required(&format!("{path}.file_name"), "添付ファイル名", &a.file_name);
        e.text(
            &format!("{path}.file_name"),
            "添付ファイル名",
            &a.file_name,
            SHORT_TEXT_MAX,
        );
        e.text(
            &format!("{path}.media_type"),
            "添付ファイルの種類",
            &a.media_type,
            SHORT_TEXT_MAX,
        );
        if a.size > ATTACHMENT_SIZE_MAX {
            e.push(
                format!("{path}.size"),
                "too_large",
                "添付ファイルの大きさは10GiB以下です",
            );
        }
        if a.sha256.len() != 64 || !a.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            e.push(
                format!("{path}.sha256"),
                "invalid",
                "添付ファイルのハッシュ値（SHA-256）が正しくありません",
            );
        }
    }

    let adm = &record.admin;
    e.required("admin.case_number", "ケース番号", &adm.case_number);
    e.text("admin.case_number", "ケース番号", &adm.case_number, 40);
    if adm.consultation_type.is_none() {
        e.push("admin.consultation_type", "required", "相談種別は必須です");
    }
    if adm
        .status
        .is_some_and(|s| !CaseStatus::OWNER_SETTABLE.contains(&s))
    {
        e.push(
            "admin.status",
            "invalid",
            "「移管済み」は移管の手続きでのみ設定されます",
        );
    }
    if adm.intake_reports.len() > LIST_MAX {
        e.push(
            "admin.intake_reports",
            "too_many",
            "通告の件数が多すぎます（200件まで）",
        );
    }
    for (i, r) in adm.intake_reports.iter().enumerate() {
        let path = format!("admin.intake_reports[{i}]");
        e.date_not_future(
            &format!("{path}.received_on"),
            "通告の受理日",
            r.received_on,
            ctx.today,
        );
        e.text(
            &format!("{path}.source"),
            "通告元",
            &r.source,
            SHORT_TEXT_MAX,
        );
        e.text(
            &format!("{path}.summary"),
            "通告の内容",
            &r.summary,
            TEXT_MAX,
        );
    }

    if e.0.is_empty() {
        Ok(())
    } else {
        Err(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{ConsultationType, Relationship, Sex};
    use crate::schema::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn ctx() -> Context<'static> {
        Context {
            today: today(),
            municipality_exists: &|c| c != "011002",
        }
    }

    pub(crate) fn valid() -> RecordBody {
        RecordBody {
            core: Core {
                child_name: PersonName {
                    family: "山田".into(),
                    given: "花子".into(),
                    family_kana: Some("ヤマダ".into()),
                    given_kana: Some("はなこ".into()),
                },
                sex: Some(Sex::Female),
                birth_date: Some(BirthDate {
                    date: NaiveDate::from_ymd_opt(2019, 4, 1).unwrap(),
                    estimated: false,
                }),
                address: Address {
                    municipality_code: "131016".into(),
                    postal_code: "100-0001".into(),
                    street: "架空町1-2-3".into(),
                },
                guardians: vec![Guardian {
                    name: PersonName {
                        family: "山田".into(),
                        given: "太郎".into(),
                        ..Default::default()
                    },
                    relationship: Some(Relationship::Father),
                }],
            },
            admin: AdminInput {
                case_number: "2026-0001".into(),
                consultation_type: Some(ConsultationType::AbuseNeglect),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn fields(r: &RecordBody) -> Vec<String> {
        validate(r, &ctx())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_complete_record_passes() {
        assert_eq!(validate(&valid(), &ctx()), Ok(()));
    }

    #[test]
    fn an_empty_record_reports_every_required_field_at_once() {
        let errs = validate(&RecordBody::default(), &ctx()).unwrap_err();
        let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "core.child_name.family",
            "core.child_name.given",
            "core.sex",
            "core.birth_date",
            "core.address.municipality_code",
            "core.address.street",
            "core.guardians",
            "admin.case_number",
            "admin.consultation_type",
        ] {
            assert!(got.contains(&f), "missing {f} in {got:?}");
        }
        assert!(errs
            .iter()
            .all(|e| e.message.contains("必須") || e.message.contains("入力")));
    }

    #[test]
    fn bad_codes_dates_and_kana_are_named() {
        let mut r = valid();
        r.core.address.municipality_code = "131017".into();
        r.core.birth_date = Some(BirthDate {
            date: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            estimated: false,
        });
        r.core.child_name.family_kana = Some("Yamada".into());
        r.core.address.postal_code = "12345".into();
        r.core.guardians[0].relationship = None;
        r.admin.status = Some(CaseStatus::TransferredOut);
        let got = fields(&r);
        assert_eq!(
            got,
            vec![
                "core.child_name.family_kana",
                "core.birth_date.date",
                "core.address.municipality_code",
                "core.address.postal_code",
                "core.guardians[0].relationship",
                "admin.status",
            ]
        );
    }

    #[test]
    fn unknown_municipality_and_old_birth_date() {
        let mut r = valid();
        r.core.address.municipality_code = "011002".into();
        r.core.birth_date = Some(BirthDate {
            date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            estimated: true,
        });
        let errs = validate(&r, &ctx()).unwrap_err();
        assert_eq!(errs[0].field, "core.birth_date.date");
        assert_eq!(errs[1].code, "unknown");
        assert!(errs[1].message.contains("011002"));
    }

    #[test]
    fn lengths_and_control_characters() {
        let mut r = valid();
        r.core.child_name.given = "あ".repeat(NAME_MAX + 1);
        r.casework.findings = "x\u{0007}".into();
        r.casework.interview = "一行目\n二行目".into();
        let errs = validate(&r, &ctx()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.contains("51文字"));
        assert_eq!(errs[1].field, "casework.findings");
    }

    #[test]
    fn an_attachment_larger_than_the_maximum_is_refused() {
        let mut r = valid();
        let a = |size| crate::schema::Attachment {
            file_name: "a.pdf".into(),
            media_type: "application/pdf".into(),
            size,
            sha256: "0".repeat(64),
        };
        r.casework.attachments = vec![a(ATTACHMENT_SIZE_MAX)];
        assert!(validate(&r, &ctx()).is_ok());
        for size in [ATTACHMENT_SIZE_MAX + 1, 1 << 63, u64::MAX] {
            r.casework.attachments = vec![a(size)];
            let errs = validate(&r, &ctx()).unwrap_err();
            assert_eq!(errs[0].field, "casework.attachments[0].size", "{size}");
        }
    }

    #[test]
    fn bidi_controls_noncharacters_and_escapes_are_refused_where_they_are() {
        for bad in [
            "\u{202E}gpj.exe",
            "a\u{2066}b",
            "a\u{200F}b",
            "a\u{061C}b",
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{FFFF}",
            "a\u{FDD0}",
            "a\u{1FFFE}",
            "\u{1b}]0;title\u{7}",
            "a\u{7F}",
            "a\u{85}",
            "a\u{0}",
        ] {
            let mut r = valid();
            r.family.guardian_workplace = bad.into();
            r.casework.findings = bad.into();
            r.casework.attachments = vec![crate::schema::Attachment {
                file_name: "a.pdf".into(),
                media_type: bad.into(),
                size: 1,
                sha256: "0".repeat(64),
            }];
            let errs = validate(&r, &ctx()).unwrap_err();
            let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(
                fields,
                [
                    "family.guardian_workplace",
                    "casework.findings",
                    "casework.attachments[0].media_type"
                ],
                "{bad:?}"
            );
            assert!(errs[0].message.contains("使用できない文字"));
        }
        // Ordinary text, including what Japanese records hold, passes.
        for good in [
            "児童相談所（第一）",
            "ｶﾀｶﾅ",
            "😀",
            "\u{3000}全角空白",
            "a\u{FFFD}",
        ] {
            assert_eq!(forbidden_char(good, false), None, "{good:?}");
        }
        assert_eq!(forbidden_char("一行目\n\t二行目", true), None);
        assert_eq!(forbidden_char("一行目\n二行目", false), Some('\n'));
        assert_eq!(forbidden_char("a\rb", true), Some('\r'));
    }
}
