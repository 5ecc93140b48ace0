//! The record as fields on screen: which fields there are, their labels and sections, how a
//! field's text is read from and written into a [`RecordBody`], and how a tier's view (with
//! withheld parts) becomes the same rows. Validation is the shared `tsunagu_record::validate`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use tsunagu_record::codes::{
    CaseStatus, ConsultationType, FacilityType, Relationship, RiskLevel, Sex,
};
use tsunagu_record::era;
use tsunagu_record::schema::{BirthDate, Guardian, Risk};
use tsunagu_record::validate::{self, FieldError, REQUIRED_FIELDS};
use tsunagu_record::views::{RecordMeta, SharedCore, SharedFamily, Visible, WithheldReason};
use tsunagu_record::{RecordBody, RecordView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Multiline,
    Date,
    Choice,
    Bool,
    /// A list shown read-only (progress log, household …).
    List,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub path: &'static str,
    pub label: &'static str,
    pub section: usize,
    pub kind: Kind,
}

pub const SECTIONS: &[&str] = &["基本情報（第1面）", "家族の状況", "支援・経過", "管理情報"];

macro_rules! f {
    ($p:literal, $l:literal, $s:literal, $k:ident) => {
        FieldDef {
            path: $p,
            label: $l,
            section: $s,
            kind: Kind::$k,
        }
    };
}

pub const FIELDS: &[FieldDef] = &[
    f!("core.child_name.family", "子どもの氏名（氏）", 0, Text),
    f!("core.child_name.given", "子どもの氏名（名）", 0, Text),
    f!("core.child_name.family_kana", "フリガナ（氏）", 0, Text),
    f!("core.child_name.given_kana", "フリガナ（名）", 0, Text),
    f!("core.sex", "性別", 0, Choice),
    f!("core.birth_date", "生年月日", 0, Date),
    f!(
        "core.address.municipality_code",
        "住所（市区町村コード）",
        0,
        Text
    ),
    f!("core.address.postal_code", "郵便番号", 0, Text),
    f!("core.address.street", "住所（町名・番地）", 0, Text),
    f!(
        "core.guardians[0].name.family",
        "保護者1の氏名（氏）",
        0,
        Text
    ),
    f!(
        "core.guardians[0].name.given",
        "保護者1の氏名（名）",
        0,
        Text
    ),
    f!("core.guardians[0].relationship", "保護者1の続柄", 0, Choice),
    f!("family.guardian_workplace", "保護者の勤務先", 1, Text),
    f!("family.household", "家族の状況（同居親族等）", 1, List),
    f!(
        "family.schooling.facility_type",
        "保育所等・就学状況",
        1,
        Choice
    ),
    f!("family.schooling.facility_name", "保育所・学校名", 1, Text),
    f!("family.upbringing", "養育状況", 1, Multiline),
    f!(
        "family.welfare_services",
        "福祉サービス等利用状況",
        1,
        Multiline
    ),
    f!("casework.risk.level", "リスク", 2, Choice),
    f!("casework.risk.urgent", "緊急", 2, Bool),
    f!("casework.next_review", "次回見直し日", 2, Date),
    f!("casework.interview", "面接結果", 2, Multiline),
    f!("casework.investigation", "調査結果", 2, Multiline),
    f!("casework.findings", "所見", 2, Multiline),
    f!("casework.support_plan", "支援方針", 2, Multiline),
    f!("casework.progress", "経過", 2, List),
    f!("casework.attachments", "添付ファイル", 2, List),
    f!("admin.case_number", "ケース番号", 3, Text),
    f!("admin.status", "状態", 3, Choice),
    f!("admin.consultation_type", "相談種別", 3, Choice),
    f!("admin.serious_case", "重大事案", 3, Bool),
    f!("admin.missing", "所在不明", 3, Bool),
    f!("admin.intake_reports", "通告", 3, List),
];

pub fn field(path: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.path == path)
}

/// Required by the national format (marked 必須 on screen), from the shared list.
pub fn is_required(path: &str) -> bool {
    let generic = path.replace("[0]", "[]");
    REQUIRED_FIELDS.contains(&generic.as_str())
        || (path == "core.guardians[0].name.family" && REQUIRED_FIELDS.contains(&"core.guardians"))
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn some_text(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn date_text(d: Option<NaiveDate>) -> String {
    d.map(era::format_era).unwrap_or_default()
}

fn parse_opt_date(s: &str) -> Result<Option<NaiveDate>, String> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        era::parse_date(s).map(Some)
    }
}

/// The options of a choice field: (code, label); "" is "not set".
pub fn choices(path: &str) -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> = vec![(String::new(), "（未選択）")];
    match path {
        "core.sex" => v.extend(
            Sex::ALL
                .iter()
                .map(|s| (s.iso5218().to_string(), s.label_ja())),
        ),
        "core.guardians[0].relationship" => v.extend(
            Relationship::ALL
                .iter()
                .map(|r| (r.code().to_string(), r.label_ja())),
        ),
        "family.schooling.facility_type" => v.extend(
            FacilityType::ALL
                .iter()
                .map(|r| (r.code().to_string(), r.label_ja())),
        ),
        "casework.risk.level" => v.extend(
            RiskLevel::ALL
                .iter()
                .map(|r| (r.code().to_string(), r.label_ja())),
        ),
        "admin.status" => v.extend(
            CaseStatus::ALL
                .iter()
                .filter(|s| **s != CaseStatus::TransferredOut)
                .map(|r| (r.code().to_string(), r.label_ja())),
        ),
        "admin.consultation_type" => v.extend(
            ConsultationType::ALL
                .iter()
                .map(|r| (r.code().to_string(), r.label_ja())),
        ),
        _ => {}
    }
    v
}

/// The field's value as text: what an edit box starts from (codes for choices).
pub fn get(b: &RecordBody, path: &str) -> String {
    let g0 = b.core.guardians.first();
    match path {
        "core.child_name.family" => b.core.child_name.family.clone(),
        "core.child_name.given" => b.core.child_name.given.clone(),
        "core.child_name.family_kana" => opt(&b.core.child_name.family_kana),
        "core.child_name.given_kana" => opt(&b.core.child_name.given_kana),
        "core.sex" => b
            .core
            .sex
            .map(|s| s.iso5218().to_string())
            .unwrap_or_default(),
        "core.birth_date" => date_text(b.core.birth_date.map(|d| d.date)),
        "core.address.municipality_code" => b.core.address.municipality_code.clone(),
        "core.address.postal_code" => b.core.address.postal_code.clone(),
        "core.address.street" => b.core.address.street.clone(),
        "core.guardians[0].name.family" => g0.map(|g| g.name.family.clone()).unwrap_or_default(),
        "core.guardians[0].name.given" => g0.map(|g| g.name.given.clone()).unwrap_or_default(),
        "core.guardians[0].relationship" => g0
            .and_then(|g| g.relationship)
            .map(|r| r.code().to_string())
            .unwrap_or_default(),
        "family.guardian_workplace" => b.family.guardian_workplace.clone(),
        "family.schooling.facility_type" => b
            .family
            .schooling
            .facility_type
            .map(|f| f.code().to_string())
            .unwrap_or_default(),
        "family.schooling.facility_name" => b.family.schooling.facility_name.clone(),
        "family.upbringing" => b.family.upbringing.clone(),
        "family.welfare_services" => b.family.welfare_services.clone(),
        "casework.risk.level" => b
            .casework
            .risk
            .map(|r| r.level.code().to_string())
            .unwrap_or_default(),
        "casework.risk.urgent" => bool_text(b.casework.risk.map(|r| r.urgent).unwrap_or(false)),
        "casework.next_review" => date_text(b.casework.next_review),
        "casework.interview" => b.casework.interview.clone(),
        "casework.investigation" => b.casework.investigation.clone(),
        "casework.findings" => b.casework.findings.clone(),
        "casework.support_plan" => b.casework.support_plan.clone(),
        "admin.case_number" => b.admin.case_number.clone(),
        "admin.status" => b
            .admin
            .status
            .map(|s| s.code().to_string())
            .unwrap_or_default(),
        "admin.consultation_type" => b
            .admin
            .consultation_type
            .map(|s| s.code().to_string())
            .unwrap_or_default(),
        "admin.serious_case" => bool_text(b.admin.serious_case),
        "admin.missing" => bool_text(b.admin.missing),
        _ => String::new(),
    }
}

fn bool_text(v: bool) -> String {
    if v { "はい" } else { "いいえ" }.to_string()
}

/// What a reader sees: labels instead of codes, lists as lines.
pub fn display(b: &RecordBody, path: &str) -> Vec<String> {
    let def = field(path);
    match def.map(|d| d.kind) {
        Some(Kind::Choice) => {
            let code = get(b, path);
            let label = choices(path)
                .into_iter()
                .find(|(c, _)| *c == code)
                .map(|(_, l)| l)
                .unwrap_or("");
            vec![if code.is_empty() {
                String::new()
            } else {
                label.to_string()
            }]
        }
        Some(Kind::List) => list_lines(b, path),
        Some(Kind::Text) if path == "core.address.municipality_code" => {
            let code = get(b, path);
            match tsunagu_masterdata::localgov::municipality(&code) {
                Some(m) => {
                    let pref = tsunagu_masterdata::localgov::prefecture(m.pref_code)
                        .map(|p| p.name.as_str())
                        .unwrap_or("");
                    vec![format!("{code}（{pref}{}）", m.name)]
                }
                None => vec![code],
            }
        }
        Some(Kind::Date) if path == "core.birth_date" => {
            let mut s = get(b, path);
            if b.core.birth_date.is_some_and(|d| d.estimated) {
                s.push_str("（推定）");
            }
            vec![s]
        }
        _ => get(b, path).lines().map(str::to_string).collect(),
    }
}

fn list_lines(b: &RecordBody, path: &str) -> Vec<String> {
    match path {
        "family.household" => b
            .family
            .household
            .iter()
            .map(|m| {
                let rel = m.relationship.map(|r| r.label_ja()).unwrap_or("");
                let year = m
                    .birth_year
                    .map(|y| format!(" {y}年生"))
                    .unwrap_or_default();
                let co = if m.cohabiting { " 同居" } else { " 別居" };
                format!("{} {rel}{year}{co} {}", m.name, m.note)
                    .trim_end()
                    .to_string()
            })
            .collect(),
        "casework.progress" => b
            .casework
            .progress
            .iter()
            .map(|p| format!("{} {}", era::format_era(p.date), p.text.replace('\n', " ")))
            .collect(),
        "casework.attachments" => b
            .casework
            .attachments
            .iter()
            .map(|a| format!("{}（{}、{}バイト）", a.file_name, a.media_type, a.size))
            .collect(),
        "admin.intake_reports" => b
            .admin
            .intake_reports
            .iter()
            .map(|r| {
                format!(
                    "{} {}: {}",
                    era::format_era(r.received_on),
                    r.source,
                    r.summary.replace('\n', " ")
                )
            })
            .collect(),
        _ => vec![],
    }
}

fn guardian0(b: &mut RecordBody) -> &mut Guardian {
    if b.core.guardians.is_empty() {
        b.core.guardians.push(Guardian::default());
    }
    &mut b.core.guardians[0]
}

/// Writes the edited text of a field. A date or choice that cannot be read is refused with a
/// message for next to the field; the body is then unchanged.
pub fn set(b: &mut RecordBody, path: &str, text: &str) -> Result<(), String> {
    let t = text.trim();
    match path {
        "core.child_name.family" => b.core.child_name.family = t.into(),
        "core.child_name.given" => b.core.child_name.given = t.into(),
        "core.child_name.family_kana" => b.core.child_name.family_kana = some_text(t),
        "core.child_name.given_kana" => b.core.child_name.given_kana = some_text(t),
        "core.sex" => b.core.sex = t.parse::<u8>().ok().and_then(Sex::from_iso5218),
        "core.birth_date" => {
            let estimated = b.core.birth_date.is_some_and(|d| d.estimated);
            b.core.birth_date = parse_opt_date(t)?.map(|date| BirthDate { date, estimated })
        }
        "core.address.municipality_code" => b.core.address.municipality_code = t.into(),
        "core.address.postal_code" => b.core.address.postal_code = t.into(),
        "core.address.street" => b.core.address.street = t.into(),
        "core.guardians[0].name.family" => guardian0(b).name.family = t.into(),
        "core.guardians[0].name.given" => guardian0(b).name.given = t.into(),
        "core.guardians[0].relationship" => guardian0(b).relationship = Relationship::from_code(t),
        "family.guardian_workplace" => b.family.guardian_workplace = t.into(),
        "family.schooling.facility_type" => {
            b.family.schooling.facility_type = FacilityType::from_code(t)
        }
        "family.schooling.facility_name" => b.family.schooling.facility_name = t.into(),
        "family.upbringing" => b.family.upbringing = text.trim_end().into(),
        "family.welfare_services" => b.family.welfare_services = text.trim_end().into(),
        "casework.risk.level" => {
            let urgent = b.casework.risk.is_some_and(|r| r.urgent);
            b.casework.risk = RiskLevel::from_code(t).map(|level| Risk { level, urgent });
        }
        "casework.risk.urgent" => {
            if let Some(r) = &mut b.casework.risk {
                r.urgent = t == "はい";
            } else if t == "はい" {
                return Err("先にリスクを選んでください".into());
            }
        }
        "casework.next_review" => b.casework.next_review = parse_opt_date(t)?,
        "casework.interview" => b.casework.interview = text.trim_end().into(),
        "casework.investigation" => b.casework.investigation = text.trim_end().into(),
        "casework.findings" => b.casework.findings = text.trim_end().into(),
        "casework.support_plan" => b.casework.support_plan = text.trim_end().into(),
        "admin.case_number" => b.admin.case_number = t.into(),
        "admin.status" => b.admin.status = CaseStatus::from_code(t),
        "admin.consultation_type" => b.admin.consultation_type = ConsultationType::from_code(t),
        "admin.serious_case" => b.admin.serious_case = t == "はい",
        "admin.missing" => b.admin.missing = t == "はい",
        _ => {}
    }
    Ok(())
}

/// Cycles a choice or yes/no field by `step` (+1 / -1).
pub fn cycle(b: &mut RecordBody, path: &str, step: i32) -> Result<(), String> {
    let opts: Vec<String> = match field(path).map(|d| d.kind) {
        Some(Kind::Bool) => vec!["いいえ".into(), "はい".into()],
        Some(Kind::Choice) => choices(path).into_iter().map(|(c, _)| c).collect(),
        _ => return Ok(()),
    };
    let cur = get(b, path);
    let i = opts.iter().position(|o| *o == cur).unwrap_or(0) as i32;
    let n = opts.len() as i32;
    let next = &opts[((i + step).rem_euclid(n)) as usize];
    set(b, path, next)
}

/// The body as it will be sent: an untouched, empty first guardian is dropped so the
/// "at least one guardian" rule speaks instead of three empty-field messages.
pub fn for_saving(b: &RecordBody) -> RecordBody {
    let mut out = b.clone();
    if out.core.guardians.first().is_some_and(|g| {
        g.name.family.trim().is_empty()
            && g.name.given.trim().is_empty()
            && g.relationship.is_none()
    }) {
        out.core.guardians.remove(0);
    }
    out
}

/// Runs the shared validation. Municipality codes are checked against the embedded master.
pub fn validate(b: &RecordBody, today: NaiveDate) -> Vec<FieldError> {
    let exists = |c: &str| tsunagu_masterdata::localgov::municipality(c).is_some();
    let ctx = validate::Context {
        today,
        municipality_exists: &exists,
    };
    validate::validate(&for_saving(b), &ctx)
        .err()
        .unwrap_or_default()
}

/// The on-screen field an error belongs to (the first whose path matches), if any.
pub fn field_of_error(err_field: &str) -> Option<&'static str> {
    let e = if err_field == "core.guardians" {
        "core.guardians[0].name.family"
    } else {
        err_field
    };
    FIELDS
        .iter()
        .find(|f| {
            e == f.path
                || e.starts_with(&format!("{}.", f.path))
                || e.starts_with(&format!("{}[", f.path))
        })
        .map(|f| f.path)
}

/// A record as one viewer may see it, flattened for the screen: the visible content as a body,
/// and the withheld parts (path prefix → why).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flat {
    pub body: RecordBody,
    pub withheld: BTreeMap<String, WithheldReason>,
    pub meta: Option<RecordMeta>,
}

impl Flat {
    pub fn withheld_for(&self, path: &str) -> Option<WithheldReason> {
        self.withheld
            .iter()
            .find(|(p, _)| path == p.as_str() || path.starts_with(&format!("{p}.")))
            .map(|(_, r)| *r)
    }
}

fn vis<T: Clone>(
    v: &Visible<T>,
    path: &str,
    w: &mut BTreeMap<String, WithheldReason>,
) -> Option<T> {
    match v {
        Visible::Shown(t) => Some(t.clone()),
        Visible::Withheld { reason } => {
            w.insert(path.to_string(), *reason);
            None
        }
    }
}

fn shared_core(c: &SharedCore, b: &mut RecordBody, w: &mut BTreeMap<String, WithheldReason>) {
    b.core.child_name = c.child_name.clone();
    b.core.sex = c.sex;
    b.core.birth_date = c.birth_date;
    b.core.guardians = c.guardians.clone();
    if let Some(a) = vis(&c.address, "core.address", w) {
        b.core.address = a;
    }
}

fn shared_family(
    f: &Visible<SharedFamily>,
    b: &mut RecordBody,
    w: &mut BTreeMap<String, WithheldReason>,
) {
    if let Some(f) = vis(f, "family", w) {
        b.family.guardian_workplace =
            vis(&f.guardian_workplace, "family.guardian_workplace", w).unwrap_or_default();
        b.family.household = vis(&f.household, "family.household", w).unwrap_or_default();
        b.family.schooling = vis(&f.schooling, "family.schooling", w).unwrap_or_default();
        b.family.upbringing = vis(&f.upbringing, "family.upbringing", w).unwrap_or_default();
        b.family.welfare_services =
            vis(&f.welfare_services, "family.welfare_services", w).unwrap_or_default();
    }
}

pub fn flatten(view: &RecordView) -> Flat {
    let mut b = RecordBody::default();
    let mut w = BTreeMap::new();
    let mut meta = None;
    match view {
        RecordView::Owner(r) | RecordView::Ministry(r) => {
            b.core = r.core.clone();
            b.family = r.family.clone();
            b.casework = r.casework.clone();
            b.admin = r.admin.clone();
            meta = Some(r.meta.clone());
        }
        RecordView::Partner(r) | RecordView::Transfer(r) => {
            shared_core(&r.core, &mut b, &mut w);
            shared_family(&r.family, &mut b, &mut w);
            if let Some(c) = vis(&r.casework, "casework", &mut w) {
                b.casework.interview =
                    vis(&c.interview, "casework.interview", &mut w).unwrap_or_default();
                b.casework.investigation =
                    vis(&c.investigation, "casework.investigation", &mut w).unwrap_or_default();
                b.casework.findings =
                    vis(&c.findings, "casework.findings", &mut w).unwrap_or_default();
                b.casework.support_plan =
                    vis(&c.support_plan, "casework.support_plan", &mut w).unwrap_or_default();
                b.casework.progress =
                    vis(&c.progress, "casework.progress", &mut w).unwrap_or_default();
                b.casework.attachments =
                    vis(&c.attachments, "casework.attachments", &mut w).unwrap_or_default();
                b.casework.risk = c.risk;
                b.casework.next_review = c.next_review;
            }
            if let Some(a) = vis(&r.admin, "admin", &mut w) {
                b.admin.case_number = a.case_number.clone();
                b.admin.status = a.status;
                b.admin.consultation_type = a.consultation_type;
                b.admin.intake_reports =
                    vis(&a.intake_reports, "admin.intake_reports", &mut w).unwrap_or_default();
                b.admin.serious_case = a.serious_case;
                b.admin.missing = a.missing;
                meta = Some(a.meta.clone());
            }
        }
        RecordView::Outside(r) => {
            shared_core(&r.core, &mut b, &mut w);
            shared_family(&r.family, &mut b, &mut w);
            // The outside tier's type has no casework or admin at all.
            w.insert("casework".into(), WithheldReason::Tier);
            w.insert("admin".into(), WithheldReason::Tier);
        }
    }
    Flat {
        body: b,
        withheld: w,
        meta,
    }
}

/// Fields whose values differ between two bodies (for the conflict screen).
pub fn differing(a: &RecordBody, b: &RecordBody) -> Vec<&'static FieldDef> {
    FIELDS
        .iter()
        .filter(|f| display(a, f.path) != display(b, f.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn era_dates_are_accepted_and_shown_in_era() {
        let mut b = RecordBody::default();
        set(&mut b, "core.birth_date", "H31.4.1").unwrap();
        assert_eq!(
            b.core.birth_date.unwrap().date,
            NaiveDate::from_ymd_opt(2019, 4, 1).unwrap()
        );
        assert_eq!(get(&b, "core.birth_date"), "平成31年4月1日");
        set(&mut b, "casework.next_review", "2026-12-01").unwrap();
        assert!(set(&mut b, "core.birth_date", "あした")
            .unwrap_err()
            .contains("日付"));
        // The earlier value is kept when the new one cannot be read.
        assert_eq!(get(&b, "core.birth_date"), "平成31年4月1日");
    }

    #[test]
    fn required_marks_follow_the_shared_list() {
        assert!(is_required("core.child_name.family"));
        assert!(is_required("core.guardians[0].relationship"));
        assert!(is_required("admin.consultation_type"));
        assert!(!is_required("core.child_name.family_kana"));
        assert!(!is_required("casework.findings"));
    }

    #[test]
    fn errors_land_on_their_fields() {
        let errs = validate(&RecordBody::default(), today());
        let on: Vec<Option<&str>> = errs.iter().map(|e| field_of_error(&e.field)).collect();
        assert!(on.contains(&Some("core.guardians[0].name.family")));
        assert!(on.contains(&Some("core.birth_date")));
        assert_eq!(
            field_of_error("core.birth_date.date"),
            Some("core.birth_date")
        );
        assert_eq!(
            field_of_error("casework.progress[3].text"),
            Some("casework.progress")
        );
    }

    #[test]
    fn choices_cycle_through_codes() {
        let mut b = RecordBody::default();
        cycle(&mut b, "core.sex", 1).unwrap();
        assert_eq!(b.core.sex, Some(Sex::NotKnown));
        cycle(&mut b, "core.sex", -1).unwrap();
        assert_eq!(b.core.sex, None);
        cycle(&mut b, "admin.serious_case", 1).unwrap();
        assert!(b.admin.serious_case);
        assert_eq!(display(&b, "core.sex"), vec![String::new()]);
    }
}
