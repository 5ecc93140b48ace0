//! The record as rows on screen: every field of the national format and every list (each item
//! with its own fields, an "add" row after the last), their labels and sections, and how a
//! field's text is read from and written into a [`RecordBody`]. Fields are addressed by the
//! path validation names (`core.guardians[1].name.family`), and read and written through the
//! body's JSON form, so one set of rules serves every field and every list item.
//! Validation is the shared `tsunagu_record::validate`.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde_json::{json, Map, Value};
use tsunagu_record::codes::{
    CaseStatus, ConsultationType, FacilityType, Relationship, RiskLevel, Sex,
};
use tsunagu_record::era;
use tsunagu_record::intake::{IntakeChannel, IntakeUrgency, SafetyMethod};
use tsunagu_record::validate::{self, FieldError, REQUIRED_FIELDS};
use tsunagu_record::views::{RecordMeta, SharedCore, SharedFamily, Visible, WithheldReason};
use tsunagu_record::{RecordBody, RecordView};

/// The code lists a choice field picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codes {
    Sex,
    Relationship,
    Facility,
    Risk,
    Status,
    Consultation,
    Channel,
    Urgency,
    Safety,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A reading: hiragana typed becomes katakana.
    Kana,
    Multiline,
    /// A date that may be empty (era forms accepted).
    Date,
    /// A date and a time of day in Japan (受理日時: R8.12.8 3:10).
    DateTime,
    /// A date a list item cannot be without.
    RequiredDate,
    Choice(Codes),
    Bool,
    /// A year (西暦 or an era year such as H20).
    Year,
    Number,
    /// 全国地方公共団体コード, typed as a code or picked by name or reading.
    Municipality,
}

impl Kind {
    /// Whether Enter opens a text editor (others change with Left/Right or Enter).
    pub fn is_text(self) -> bool {
        !matches!(self, Kind::Choice(_) | Kind::Bool)
    }
}

/// One field: its path (with `[]` inside a list item), label and kind.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub path: &'static str,
    pub label: &'static str,
    pub kind: Kind,
}

/// A list of the record: where it is, what one item is called and which fields it has.
#[derive(Debug)]
pub struct ListDef {
    pub path: &'static str,
    pub label: &'static str,
    /// What one item is called (保護者, 経過 …).
    pub item: &'static str,
    /// The item's fields, relative to the item.
    pub fields: &'static [FieldDef],
    /// The label of the add row.
    pub add: &'static str,
}

#[derive(Debug)]
pub enum Entry {
    Field(FieldDef),
    List(ListDef),
}

pub const SECTIONS: &[&str] = &["基本情報（第1面）", "家族の状況", "支援・経過", "管理情報"];

macro_rules! f {
    ($p:literal, $l:literal, $k:expr) => {
        FieldDef {
            path: $p,
            label: $l,
            kind: $k,
        }
    };
}

const NAME_FIELDS: &[FieldDef] = &[
    f!("name.family", "氏名（氏）", Kind::Text),
    f!("name.given", "氏名（名）", Kind::Text),
    f!("name.family_kana", "フリガナ（氏）", Kind::Kana),
    f!("name.given_kana", "フリガナ（名）", Kind::Kana),
    f!("relationship", "続柄", Kind::Choice(Codes::Relationship)),
];

const HOUSEHOLD_FIELDS: &[FieldDef] = &[
    f!("name", "氏名", Kind::Text),
    f!("relationship", "続柄", Kind::Choice(Codes::Relationship)),
    f!("birth_year", "生年（西暦または和暦）", Kind::Year),
    f!("cohabiting", "同居", Kind::Bool),
    f!("note", "備考", Kind::Text),
];

const PROGRESS_FIELDS: &[FieldDef] = &[
    f!("date", "日付", Kind::RequiredDate),
    f!("text", "内容", Kind::Multiline),
];

const ATTACHMENT_FIELDS: &[FieldDef] = &[
    f!("file_name", "ファイル名", Kind::Text),
    f!("media_type", "種類（MIME）", Kind::Text),
    f!("size", "大きさ（バイト）", Kind::Number),
    f!("sha256", "SHA-256", Kind::Text),
];

const INTAKE_FIELDS: &[FieldDef] = &[
    f!("received_on", "受理日", Kind::RequiredDate),
    f!("source", "通告元", Kind::Text),
    f!("summary", "内容", Kind::Multiline),
];

/// A form: its entries in screen order, each with its section.
pub type Layout = &'static [(usize, Entry)];

/// The record in screen order, by section.
pub const LAYOUT: &[(usize, Entry)] = &[
    (
        0,
        Entry::Field(f!(
            "core.child_name.family",
            "子どもの氏名（氏）",
            Kind::Text
        )),
    ),
    (
        0,
        Entry::Field(f!(
            "core.child_name.given",
            "子どもの氏名（名）",
            Kind::Text
        )),
    ),
    (
        0,
        Entry::Field(f!(
            "core.child_name.family_kana",
            "フリガナ（氏）",
            Kind::Kana
        )),
    ),
    (
        0,
        Entry::Field(f!(
            "core.child_name.given_kana",
            "フリガナ（名）",
            Kind::Kana
        )),
    ),
    (
        0,
        Entry::Field(f!("core.sex", "性別", Kind::Choice(Codes::Sex))),
    ),
    (
        0,
        Entry::Field(f!("core.birth_date", "生年月日", Kind::Date)),
    ),
    (
        0,
        Entry::Field(f!(
            "core.birth_date.estimated",
            "生年月日は推定",
            Kind::Bool
        )),
    ),
    (
        0,
        Entry::Field(f!(
            "core.address.municipality_code",
            "住所（市区町村）",
            Kind::Municipality
        )),
    ),
    (
        0,
        Entry::Field(f!("core.address.postal_code", "郵便番号", Kind::Text)),
    ),
    (
        0,
        Entry::Field(f!("core.address.street", "住所（町名・番地）", Kind::Text)),
    ),
    (
        0,
        Entry::List(ListDef {
            path: "core.guardians",
            label: "保護者",
            item: "保護者",
            fields: NAME_FIELDS,
            add: "＋ 保護者を追加",
        }),
    ),
    (
        1,
        Entry::Field(f!(
            "family.guardian_workplace",
            "保護者の勤務先",
            Kind::Text
        )),
    ),
    (
        1,
        Entry::List(ListDef {
            path: "family.household",
            label: "家族の状況（同居親族等）",
            item: "家族",
            fields: HOUSEHOLD_FIELDS,
            add: "＋ 家族を追加",
        }),
    ),
    (
        1,
        Entry::Field(f!(
            "family.schooling.facility_type",
            "保育所等・就学状況",
            Kind::Choice(Codes::Facility)
        )),
    ),
    (
        1,
        Entry::Field(f!(
            "family.schooling.facility_name",
            "保育所・学校名",
            Kind::Text
        )),
    ),
    (
        1,
        Entry::Field(f!("family.upbringing", "養育状況", Kind::Multiline)),
    ),
    (
        1,
        Entry::Field(f!(
            "family.welfare_services",
            "福祉サービス等利用状況",
            Kind::Multiline
        )),
    ),
    (
        2,
        Entry::Field(f!(
            "casework.risk.level",
            "リスク",
            Kind::Choice(Codes::Risk)
        )),
    ),
    (
        2,
        Entry::Field(f!("casework.risk.urgent", "緊急", Kind::Bool)),
    ),
    (
        2,
        Entry::Field(f!("casework.next_review", "次回見直し日", Kind::Date)),
    ),
    (
        2,
        Entry::Field(f!("casework.interview", "面接結果", Kind::Multiline)),
    ),
    (
        2,
        Entry::Field(f!("casework.investigation", "調査結果", Kind::Multiline)),
    ),
    (
        2,
        Entry::Field(f!("casework.findings", "所見", Kind::Multiline)),
    ),
    (
        2,
        Entry::Field(f!("casework.support_plan", "支援方針", Kind::Multiline)),
    ),
    (
        2,
        Entry::List(ListDef {
            path: "casework.progress",
            label: "経過",
            item: "経過",
            fields: PROGRESS_FIELDS,
            add: "＋ 経過を追記",
        }),
    ),
    (
        2,
        Entry::List(ListDef {
            path: "casework.attachments",
            label: "添付ファイル",
            item: "添付",
            fields: ATTACHMENT_FIELDS,
            add: "＋ 添付ファイルの情報を追加",
        }),
    ),
    (
        3,
        Entry::Field(f!("admin.case_number", "ケース番号", Kind::Text)),
    ),
    (
        3,
        Entry::Field(f!("admin.status", "状態", Kind::Choice(Codes::Status))),
    ),
    (
        3,
        Entry::Field(f!(
            "admin.consultation_type",
            "相談種別",
            Kind::Choice(Codes::Consultation)
        )),
    ),
    (
        3,
        Entry::Field(f!("admin.serious_case", "重大事案", Kind::Bool)),
    ),
    (3, Entry::Field(f!("admin.missing", "所在不明", Kind::Bool))),
    (
        3,
        Entry::List(ListDef {
            path: "admin.intake_reports",
            label: "通告",
            item: "通告",
            fields: INTAKE_FIELDS,
            add: "＋ 通告の記録を追加",
        }),
    ),
];

pub const INTAKE_SECTIONS: &[&str] = &[
    "通告の内容",
    "子ども（わかる範囲で）",
    "保護者（わかる範囲で）",
];

/// The intake (通告受理) in screen order: what the caller says first, then the child and the
/// guardians as far as known. Paths are those of `IntakeInput`.
pub const INTAKE: Layout = &[
    (
        0,
        Entry::Field(f!("received_at", "受理日時", Kind::DateTime)),
    ),
    (
        0,
        Entry::Field(f!("channel", "経路", Kind::Choice(Codes::Channel))),
    ),
    (
        0,
        Entry::Field(f!(
            "reporter_relationship",
            "通告者と子どもの関係",
            Kind::Text
        )),
    ),
    (0, Entry::Field(f!("content", "通告内容", Kind::Multiline))),
    (
        0,
        Entry::Field(f!("urgency", "緊急度", Kind::Choice(Codes::Urgency))),
    ),
    (
        1,
        Entry::Field(f!("child.name.family", "子どもの氏名（氏）", Kind::Text)),
    ),
    (
        1,
        Entry::Field(f!("child.name.given", "子どもの氏名（名）", Kind::Text)),
    ),
    (
        1,
        Entry::Field(f!("child.name.family_kana", "フリガナ（氏）", Kind::Kana)),
    ),
    (
        1,
        Entry::Field(f!("child.name.given_kana", "フリガナ（名）", Kind::Kana)),
    ),
    (
        1,
        Entry::Field(f!("child.sex", "性別", Kind::Choice(Codes::Sex))),
    ),
    (
        1,
        Entry::Field(f!("child.birth_date", "生年月日", Kind::Date)),
    ),
    (
        1,
        Entry::Field(f!(
            "child.age_note",
            "年齢・学年（生年月日不明のとき）",
            Kind::Text
        )),
    ),
    (
        1,
        Entry::Field(f!(
            "child.municipality_code",
            "住所（市区町村）",
            Kind::Municipality
        )),
    ),
    (
        1,
        Entry::Field(f!(
            "child.address_note",
            "住所・所在（聞き取ったまま）",
            Kind::Text
        )),
    ),
    (
        2,
        Entry::List(ListDef {
            path: "guardians",
            label: "保護者",
            item: "保護者",
            fields: NAME_FIELDS,
            add: "＋ 保護者を追加",
        }),
    ),
];

pub fn list(path: &str) -> Option<&'static ListDef> {
    list_in(LAYOUT, path)
}

pub fn list_in(layout: Layout, path: &str) -> Option<&'static ListDef> {
    layout.iter().find_map(|(_, e)| match e {
        Entry::List(l) if l.path == path => Some(l),
        _ => None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Field(Kind),
    /// The first row of a list item: its number and summary; removes and moves act on it.
    Item,
    /// After a list's last item: Enter adds one.
    Add,
    /// A list without items, for a reader.
    Empty,
}

/// One row of the record screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    /// The field's path; an item's path (`core.guardians[1]`); a list's path for add/empty.
    pub path: String,
    pub label: String,
    pub section: usize,
    /// The list this row belongs to, with the item's index.
    pub list: Option<(&'static str, usize)>,
}

impl Row {
    pub fn field_kind(&self) -> Option<Kind> {
        match self.kind {
            RowKind::Field(k) => Some(k),
            _ => None,
        }
    }
}

/// Every row for a body: fixed fields, and for each list one item row plus its fields per
/// item, then the add row (`editable`) or an empty marker.
pub fn rows(b: &RecordBody, editable: bool) -> Vec<Row> {
    rows_in(LAYOUT, &to_value(b), editable)
}

/// [`rows`] for any form, over the JSON of what it edits.
pub fn rows_in(layout: Layout, v: &Value, editable: bool) -> Vec<Row> {
    let mut out = Vec::new();
    for (section, e) in layout {
        match e {
            Entry::Field(fd) => out.push(Row {
                kind: RowKind::Field(fd.kind),
                path: fd.path.to_string(),
                label: fd.label.to_string(),
                section: *section,
                list: None,
            }),
            Entry::List(l) => {
                let n = lookup(v, l.path)
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                for i in 0..n {
                    out.push(Row {
                        kind: RowKind::Item,
                        path: format!("{}[{i}]", l.path),
                        label: format!("{}{}", l.item, i + 1),
                        section: *section,
                        list: Some((l.path, i)),
                    });
                    for fd in l.fields {
                        out.push(Row {
                            kind: RowKind::Field(fd.kind),
                            path: format!("{}[{i}].{}", l.path, fd.path),
                            label: format!("  {}", fd.label),
                            section: *section,
                            list: Some((l.path, i)),
                        });
                    }
                }
                if editable || n == 0 {
                    out.push(Row {
                        kind: if editable {
                            RowKind::Add
                        } else {
                            RowKind::Empty
                        },
                        path: l.path.to_string(),
                        label: if editable {
                            l.add.to_string()
                        } else {
                            l.label.to_string()
                        },
                        section: *section,
                        list: None,
                    });
                }
            }
        }
    }
    out
}

/// A field's label for a path as the server names it (`casework.progress[3].text` →
/// 経過4 内容), for conflict and history views.
pub fn label_of(path: &str) -> String {
    if let Some(l) = label_in(LAYOUT, path) {
        return l;
    }
    match path {
        "core" => "基本情報".into(),
        "family" => "家族の状況".into(),
        "casework" => "支援・経過".into(),
        "admin" => "管理情報".into(),
        "core.address" => "住所".into(),
        "core.birth_date.date" => "生年月日".into(),
        "casework.risk" => "リスク".into(),
        _ => path.to_string(),
    }
}

/// A path's label in a form, if the form has it.
pub fn label_in(layout: Layout, path: &str) -> Option<String> {
    for (_, e) in layout {
        match e {
            Entry::Field(fd) if fd.path == path => return Some(fd.label.to_string()),
            Entry::List(l) if path == l.path => return Some(l.label.to_string()),
            Entry::List(l) => {
                if let Some(rest) = path.strip_prefix(l.path).and_then(|r| r.strip_prefix('[')) {
                    let (idx, tail) = rest.split_once(']').unwrap_or((rest, ""));
                    let n = idx.parse::<usize>().map(|i| i + 1).unwrap_or(0);
                    let tail = tail.trim_start_matches('.');
                    let sub = l
                        .fields
                        .iter()
                        .find(|f| f.path == tail)
                        .map(|f| f.label)
                        .unwrap_or("");
                    return Some(format!("{}{n} {sub}", l.item).trim_end().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Required by the national format (marked 必須 on screen), from the shared list.
pub fn is_required(path: &str) -> bool {
    let generic = generic(path);
    REQUIRED_FIELDS.contains(&generic.as_str())
}

/// `core.guardians[3].name.family` → `core.guardians[].name.family`.
fn generic(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

// ---- the body as JSON, addressed by path ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(r) = rest.strip_prefix('[') {
                let (n, tail) = r.split_once(']').unwrap_or((r, ""));
                if let Ok(n) = n.parse() {
                    out.push(Seg::Index(n));
                }
                rest = tail;
            }
        } else if !rest.is_empty() {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

pub fn to_value(b: &RecordBody) -> Value {
    serde_json::to_value(b).unwrap_or(Value::Null)
}

fn from_value(v: Value) -> Result<RecordBody, String> {
    serde_json::from_value(v).map_err(|e| format!("この値は保存できません: {e}"))
}

/// The value at `path`, if there is one.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for s in segments(path) {
        cur = match s {
            Seg::Key(k) => cur.get(k.as_str())?,
            Seg::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

fn lookup_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in segments(path) {
        cur = match s {
            Seg::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Map::new());
                }
                let m = cur.as_object_mut()?;
                m.entry(k).or_insert(Value::Null)
            }
            Seg::Index(i) => cur.get_mut(i)?,
        };
    }
    Some(cur)
}

fn kind_of(path: &str) -> Option<Kind> {
    kind_in(LAYOUT, path)
}

pub fn kind_in(layout: Layout, path: &str) -> Option<Kind> {
    let g = generic(path);
    for (_, e) in layout {
        match e {
            Entry::Field(fd) if fd.path == g => return Some(fd.kind),
            Entry::List(l) => {
                if let Some(rest) = g.strip_prefix(l.path).and_then(|r| r.strip_prefix("[].")) {
                    if let Some(fd) = l.fields.iter().find(|f| f.path == rest) {
                        return Some(fd.kind);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The options of a choice: (JSON value, label); null is "not set".
pub fn choices(codes: Codes) -> Vec<(Value, &'static str)> {
    fn all<T: serde::Serialize + Copy>(
        items: &[T],
        label: fn(T) -> &'static str,
    ) -> Vec<(Value, &'static str)> {
        items
            .iter()
            .map(|c| (serde_json::to_value(c).unwrap_or(Value::Null), label(*c)))
            .collect()
    }
    let mut v: Vec<(Value, &'static str)> = vec![(Value::Null, "（未選択）")];
    v.extend(match codes {
        Codes::Sex => all(Sex::ALL, Sex::label_ja),
        Codes::Relationship => all(Relationship::ALL, Relationship::label_ja),
        Codes::Facility => all(FacilityType::ALL, FacilityType::label_ja),
        Codes::Risk => all(RiskLevel::ALL, RiskLevel::label_ja),
        // A transfer's status is set by the transfer, never by hand.
        Codes::Status => all(CaseStatus::ALL, CaseStatus::label_ja)
            .into_iter()
            .filter(|(c, _)| {
                *c != serde_json::to_value(CaseStatus::TransferredOut).unwrap_or(Value::Null)
            })
            .collect(),
        Codes::Consultation => all(ConsultationType::ALL, ConsultationType::label_ja),
        Codes::Channel => all(IntakeChannel::ALL, IntakeChannel::label_ja),
        Codes::Urgency => all(IntakeUrgency::ALL, IntakeUrgency::label_ja),
        Codes::Safety => all(SafetyMethod::ALL, SafetyMethod::label_ja),
    });
    v
}

fn date_text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .map(era::format_era)
        .unwrap_or_default()
}

/// An instant as staff read it: the era date and the time in Japan.
fn date_time_text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            let j = t.with_timezone(&jst());
            format!("{} {}", era::format_era(j.date_naive()), j.format("%H:%M"))
        })
        .unwrap_or_default()
}

fn jst() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(9 * 3600).expect("JST")
}

/// Reads a date and a time in Japan (`R8.12.8 3:10`, `2026-12-08 03:10`, `令和8年12月8日 3時10分`)
/// as RFC 3339 with the Japanese offset.
pub fn parse_date_time(s: &str) -> Result<String, String> {
    let t = tsunagu_record::normalize::nfkc(s.trim());
    let bad = || format!("「{s}」は日時として読めません（例: R8.12.8 3:10）");
    let (d, time) = t
        .rsplit_once(|c: char| c.is_whitespace() || c == 'T' || c == '日')
        .ok_or_else(|| "時刻も入力してください（例: R8.12.8 3:10）".to_string())?;
    let d = if t[d.len()..].starts_with('日') {
        format!("{d}日")
    } else {
        d.to_string()
    };
    let date = era::parse_date(d.trim()).map_err(|_| bad())?;
    let time = time.trim().trim_end_matches('分').replace('時', ":");
    let (h, m) = time.split_once(':').ok_or_else(bad)?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    let m: u32 = if m.trim().is_empty() {
        0
    } else {
        m.trim().parse().map_err(|_| bad())?
    };
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(format!(
        "{}T{h:02}:{m:02}:00+09:00",
        date.format("%Y-%m-%d")
    ))
}

fn plain(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The field's value as text: what an edit box starts from.
#[cfg(test)]
pub fn get(b: &RecordBody, path: &str) -> String {
    get_in(LAYOUT, &to_value(b), path)
}

/// A birth date is an object (date, estimated) the form shows as one date field.
fn is_birth_date(path: &str) -> bool {
    path.ends_with("birth_date")
}

pub fn get_in(layout: Layout, v: &Value, path: &str) -> String {
    let Some(kind) = kind_in(layout, path) else {
        return String::new();
    };
    match kind {
        Kind::Date if is_birth_date(path) => date_text(lookup(v, &format!("{path}.date"))),
        Kind::Date | Kind::RequiredDate => date_text(lookup(v, path)),
        Kind::DateTime => date_time_text(lookup(v, path)),
        Kind::Bool => bool_text(lookup(v, path).and_then(Value::as_bool).unwrap_or(false)),
        Kind::Choice(c) => {
            let cur = lookup(v, path).cloned().unwrap_or(Value::Null);
            choices(c)
                .into_iter()
                .find(|(code, _)| *code == cur)
                .map(|(_, l)| l.to_string())
                .unwrap_or_default()
        }
        _ => plain(lookup(v, path)),
    }
}

fn bool_text(v: bool) -> String {
    if v { "はい" } else { "いいえ" }.to_string()
}

/// What a reader sees of a field: labels instead of codes, lines of a text.
pub fn display(b: &RecordBody, path: &str) -> Vec<String> {
    display_in(LAYOUT, &to_value(b), path)
}

pub fn display_in(layout: Layout, v: &Value, path: &str) -> Vec<String> {
    let text = get_in(layout, v, path);
    match kind_in(layout, path) {
        Some(Kind::Municipality) if !text.is_empty() => vec![municipality_label(&text)],
        Some(Kind::Multiline) => text.lines().map(str::to_string).collect(),
        _ => vec![text],
    }
}

/// `131016（東京都千代田区）`, or the code alone when the master does not know it.
pub fn municipality_label(code: &str) -> String {
    match tsunagu_masterdata::localgov::municipality(code) {
        Some(m) => {
            let pref = tsunagu_masterdata::localgov::prefecture(m.pref_code)
                .map(|p| p.name.as_str())
                .unwrap_or("");
            format!("{code}（{pref}{}）", m.name.replace(' ', ""))
        }
        None => code.to_string(),
    }
}

/// One line about a list item, for its row: the fields that say most, in order.
pub fn item_summary_in(layout: Layout, v: &Value, list: &str, i: usize) -> String {
    let Some(item) = lookup(v, &format!("{list}[{i}]")) else {
        return String::new();
    };
    let s = |k: &str| plain(lookup(item, k));
    let rel = || get_in(layout, v, &format!("{list}[{i}].relationship"));
    let text = match list {
        "core.guardians" | "guardians" => {
            format!("{} {} {}", s("name.family"), s("name.given"), rel())
        }
        "family.household" => {
            let rel = rel();
            let year = s("birth_year");
            let year = if year.is_empty() {
                year
            } else {
                format!("{year}年生")
            };
            let co = if lookup(item, "cohabiting").and_then(Value::as_bool) == Some(true) {
                "同居"
            } else {
                "別居"
            };
            format!("{} {rel} {year} {co}", s("name"))
        }
        "casework.progress" => {
            let mut t = format!(
                "{} {}",
                date_text(lookup(item, "date")),
                s("text").replace('\n', " ")
            );
            // Stamps the server keeps: who wrote the entry and when.
            let author = s("author");
            if !author.is_empty() {
                t = format!("{t}（記入: {author}）");
            }
            t
        }
        "casework.attachments" => format!(
            "{}（{}、{}バイト）",
            s("file_name"),
            s("media_type"),
            s("size")
        ),
        "admin.intake_reports" => format!(
            "{} {}: {}",
            date_text(lookup(item, "received_on")),
            s("source"),
            s("summary").replace('\n', " ")
        ),
        _ => String::new(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hiragana typed into a reading becomes katakana (the national format keeps readings in
/// katakana); everything else stays as typed.
pub fn to_katakana(s: &str) -> String {
    s.chars()
        .map(tsunagu_record::normalize::hira_to_kata)
        .collect()
}

/// Reads an era or western year (2008, H20, 平成20年).
pub fn parse_year(s: &str) -> Result<i32, String> {
    match era::parse_date_spec(s) {
        Ok(era::DateSpec::Year(y)) => Ok(y),
        Ok(era::DateSpec::YearMonth(y, _)) => Ok(y),
        Ok(era::DateSpec::Day(d)) => Ok(d.year()),
        Err(_) => Err(format!(
            "「{s}」は年として読めません（例: 2008, H20, 平成20年）"
        )),
    }
}

/// Writes the edited text of a field. A value that cannot be read (a bad date, a choice
/// that is no code) is refused with a message for next to the field; the body is then
/// unchanged.
pub fn set(b: &mut RecordBody, path: &str, text: &str) -> Result<(), String> {
    let mut v = to_value(b);
    set_in(LAYOUT, &mut v, path, text)?;
    *b = from_value(v)?;
    Ok(())
}

/// [`set`] for any form, on the JSON of what it edits.
pub fn set_in(layout: Layout, v: &mut Value, path: &str, text: &str) -> Result<(), String> {
    let kind = kind_in(layout, path).ok_or_else(|| format!("{path} は編集できません"))?;
    let t = text.trim();
    let new = match kind {
        Kind::Text | Kind::Municipality => {
            let optional = path.ends_with("_kana");
            if optional && t.is_empty() {
                Value::Null
            } else {
                json!(t)
            }
        }
        Kind::Kana => {
            if t.is_empty() {
                Value::Null
            } else {
                json!(to_katakana(t))
            }
        }
        Kind::Multiline => json!(text.trim_end()),
        Kind::Date | Kind::RequiredDate => {
            if t.is_empty() {
                if kind == Kind::RequiredDate {
                    return Err("日付は必須です".into());
                }
                Value::Null
            } else {
                json!(era::parse_date(t)?.format("%Y-%m-%d").to_string())
            }
        }
        Kind::DateTime => {
            if t.is_empty() {
                return Err("日時は必須です（例: R8.12.8 3:10）".into());
            }
            json!(parse_date_time(t)?)
        }
        Kind::Year => {
            if t.is_empty() {
                Value::Null
            } else {
                json!(parse_year(t)?)
            }
        }
        Kind::Number => {
            let n: u64 = tsunagu_record::normalize::nfkc(t)
                .parse()
                .map_err(|_| format!("「{t}」は数として読めません"))?;
            json!(n)
        }
        Kind::Bool => json!(t == "はい"),
        Kind::Choice(c) => choices(c)
            .into_iter()
            .find(|(code, label)| *label == t || plain(Some(code)) == t)
            .map(|(code, _)| code)
            .ok_or_else(|| format!("「{t}」は選択肢にありません"))?,
    };
    // Fields inside an object that may be absent (生年月日, リスク) create or remove it.
    match path {
        p if is_birth_date(p) => {
            let estimated = lookup(v, &format!("{p}.estimated"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let slot = lookup_mut(v, p).ok_or_else(|| format!("{p} がありません"))?;
            *slot = if new.is_null() {
                Value::Null
            } else {
                json!({ "date": new, "estimated": estimated })
            };
        }
        p if p.ends_with("birth_date.estimated") => {
            let date = p.trim_end_matches(".estimated");
            match lookup_mut(v, date) {
                Some(Value::Object(o)) => {
                    o.insert("estimated".into(), new);
                }
                _ if new == json!(true) => {
                    return Err("先に生年月日を入力してください".into());
                }
                _ => {}
            }
        }
        "casework.risk.level" => {
            let urgent = lookup(v, "casework.risk.urgent")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            v["casework"]["risk"] = if new.is_null() {
                Value::Null
            } else {
                json!({ "level": new, "urgent": urgent })
            };
        }
        "casework.risk.urgent" => {
            if lookup(v, "casework.risk").is_none_or(Value::is_null) {
                if new == json!(true) {
                    return Err("先にリスクを選んでください".into());
                }
            } else {
                v["casework"]["risk"]["urgent"] = new;
            }
        }
        _ => {
            let slot = lookup_mut(v, path).ok_or_else(|| format!("{path} がありません"))?;
            *slot = new;
        }
    }
    Ok(())
}

/// Cycles a choice or yes/no field by `step` (+1 / -1).
pub fn cycle(b: &mut RecordBody, path: &str, step: i32) -> Result<(), String> {
    let mut v = to_value(b);
    cycle_in(LAYOUT, &mut v, path, step)?;
    *b = from_value(v)?;
    Ok(())
}

pub fn cycle_in(layout: Layout, v: &mut Value, path: &str, step: i32) -> Result<(), String> {
    let opts: Vec<String> = match kind_in(layout, path) {
        Some(Kind::Bool) => vec!["いいえ".into(), "はい".into()],
        Some(Kind::Choice(c)) => choices(c).into_iter().map(|(_, l)| l.to_string()).collect(),
        _ => return Ok(()),
    };
    let cur = get_in(layout, v, path);
    let i = opts
        .iter()
        .position(|o| *o == cur || (cur.is_empty() && o == "（未選択）"))
        .unwrap_or(0) as i32;
    let n = opts.len() as i32;
    let next = &opts[((i + step).rem_euclid(n)) as usize];
    set_in(layout, v, path, next)
}

/// A new, empty item of a list (a progress entry dated today).
fn new_item(list: &str, today: NaiveDate) -> Value {
    let d = today.format("%Y-%m-%d").to_string();
    match list {
        "core.guardians" | "guardians" => json!({ "name": { "family": "", "given": "" } }),
        "family.household" => json!({ "name": "", "cohabiting": true }),
        "casework.progress" => json!({ "date": d, "text": "" }),
        "casework.attachments" => {
            json!({ "file_name": "", "media_type": "application/pdf", "size": 0, "sha256": "" })
        }
        "admin.intake_reports" => json!({ "received_on": d, "source": "", "summary": "" }),
        _ => Value::Null,
    }
}

fn list_mut<'a>(v: &'a mut Value, list: &str) -> Result<&'a mut Vec<Value>, String> {
    let slot = lookup_mut(v, list).ok_or_else(|| format!("{list} がありません"))?;
    if slot.is_null() {
        *slot = json!([]);
    }
    slot.as_array_mut()
        .ok_or_else(|| format!("{list} は一覧ではありません"))
}

/// Appends an empty item; returns its index.
pub fn add_item(b: &mut RecordBody, list: &str, today: NaiveDate) -> Result<usize, String> {
    let mut v = to_value(b);
    let i = add_item_in(&mut v, list, today)?;
    *b = from_value(v)?;
    Ok(i)
}

pub fn add_item_in(v: &mut Value, list: &str, today: NaiveDate) -> Result<usize, String> {
    let items = list_mut(v, list)?;
    items.push(new_item(list, today));
    Ok(items.len() - 1)
}

pub fn remove_item(b: &mut RecordBody, list: &str, i: usize) -> Result<(), String> {
    let mut v = to_value(b);
    remove_item_in(&mut v, list, i)?;
    *b = from_value(v)?;
    Ok(())
}

pub fn remove_item_in(v: &mut Value, list: &str, i: usize) -> Result<(), String> {
    let items = list_mut(v, list)?;
    if i >= items.len() {
        return Err("その項目はありません".into());
    }
    items.remove(i);
    Ok(())
}

/// Moves item `i` one place up (`-1`) or down (`+1`); returns its new index.
pub fn move_item(b: &mut RecordBody, list: &str, i: usize, step: i32) -> Result<usize, String> {
    let mut v = to_value(b);
    let j = move_item_in(&mut v, list, i, step)?;
    *b = from_value(v)?;
    Ok(j)
}

pub fn move_item_in(v: &mut Value, list: &str, i: usize, step: i32) -> Result<usize, String> {
    let items = list_mut(v, list)?;
    let j = i as i64 + step as i64;
    if i >= items.len() || j < 0 || j as usize >= items.len() {
        return Ok(i);
    }
    items.swap(i, j as usize);
    Ok(j as usize)
}

/// The body as it will be sent: guardians and household members left entirely empty are
/// dropped, so the "at least one guardian" rule speaks instead of empty-field messages.
pub fn for_saving(b: &RecordBody) -> RecordBody {
    let mut out = b.clone();
    out.core.guardians.retain(|g| {
        !(g.name.family.trim().is_empty()
            && g.name.given.trim().is_empty()
            && g.relationship.is_none()
            && g.name.family_kana.is_none()
            && g.name.given_kana.is_none())
    });
    out.family
        .household
        .retain(|m| !(m.name.trim().is_empty() && m.relationship.is_none() && m.note.is_empty()));
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

/// The row an error belongs to: the longest row path that is the error's path or a prefix of
/// it (`core.birth_date.date` → 生年月日; `core.guardians` → the list's add row).
pub fn row_of_error(rows: &[Row], err_field: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, r) in rows.iter().enumerate() {
        let p = r.path.as_str();
        let hit = err_field == p
            || err_field.starts_with(&format!("{p}."))
            || err_field.starts_with(&format!("{p}["));
        if hit && best.is_none_or(|(_, len)| p.len() > len) {
            best = Some((i, p.len()));
        }
    }
    best.map(|(i, _)| i)
}

/// The paths where two bodies differ, as deep as both sides have the same shape (an item one
/// side has and the other not is named by its item path).
pub fn changed_paths(a: &RecordBody, b: &RecordBody) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match (a, b) {
            _ if a == b => {}
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let none = Value::Null;
                    walk(
                        &join(k),
                        x.get(k).unwrap_or(&none),
                        y.get(k).unwrap_or(&none),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                for i in 0..x.len().max(y.len()) {
                    match (x.get(i), y.get(i)) {
                        (Some(p), Some(q)) => walk(&format!("{path}[{i}]"), p, q, out),
                        _ => out.push(format!("{path}[{i}]")),
                    }
                }
            }
            _ => out.push(path.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("", &to_value(a), &to_value(b), &mut out);
    out
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
            .find(|(p, _)| {
                path == p.as_str()
                    || path.starts_with(&format!("{p}."))
                    || path.starts_with(&format!("{p}["))
            })
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

/// A JSON value as a reader sees it (codes as labels where the path says which list, dates
/// in era form), as lines: for conflict and history views.
pub fn value_lines(path: &str, v: Option<&Value>) -> Vec<String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return vec!["（なし）".into()];
    };
    if let Some(kind) = kind_of(path) {
        match kind {
            Kind::Choice(c) => {
                return vec![choices(c)
                    .into_iter()
                    .find(|(code, _)| code == v)
                    .map(|(_, l)| l.to_string())
                    .unwrap_or_else(|| plain(Some(v)))]
            }
            Kind::Date | Kind::RequiredDate if is_birth_date(path) => {
                return vec![date_text(v.get("date"))]
            }
            Kind::Date | Kind::RequiredDate => return vec![date_text(Some(v))],
            Kind::Bool => return vec![bool_text(v.as_bool().unwrap_or(false))],
            Kind::Municipality => return vec![municipality_label(&plain(Some(v)))],
            _ => {}
        }
    }
    match v {
        Value::String(s) if s.is_empty() => vec!["（空欄）".into()],
        Value::String(s) => s.lines().map(str::to_string).collect(),
        Value::Object(m) => m
            .iter()
            .filter(|(_, x)| !x.is_null() && *x != &json!("") && *x != &json!([]))
            .flat_map(|(k, x)| {
                let sub = format!("{path}.{k}");
                let label = label_of(&sub);
                let label = label.rsplit(' ').next().unwrap_or(&label).to_string();
                let lines = value_lines(&sub, Some(x));
                let first = format!("{label}: {}", lines.first().cloned().unwrap_or_default());
                std::iter::once(first).chain(lines.into_iter().skip(1))
            })
            .collect(),
        other => vec![other.to_string()],
    }
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
        set(&mut b, "core.birth_date.estimated", "はい").unwrap();
        assert!(b.core.birth_date.unwrap().estimated);
        set(&mut b, "core.birth_date", "R2.1.3").unwrap();
        assert!(
            b.core.birth_date.unwrap().estimated,
            "kept across a new date"
        );
        set(&mut b, "casework.next_review", "2026-12-01").unwrap();
        assert!(set(&mut b, "core.birth_date", "あした")
            .unwrap_err()
            .contains("日付"));
        // The earlier value is kept when the new one cannot be read.
        assert_eq!(get(&b, "core.birth_date"), "令和2年1月3日");
    }

    #[test]
    fn required_marks_follow_the_shared_list() {
        assert!(is_required("core.child_name.family"));
        assert!(is_required("core.guardians[0].relationship"));
        assert!(is_required("core.guardians[3].name.family"));
        assert!(is_required("admin.consultation_type"));
        assert!(!is_required("core.child_name.family_kana"));
        assert!(!is_required("casework.findings"));
    }

    #[test]
    fn every_item_of_every_list_has_its_rows() {
        let mut b = RecordBody::default();
        for l in [
            "core.guardians",
            "family.household",
            "casework.progress",
            "casework.attachments",
            "admin.intake_reports",
        ] {
            for _ in 0..3 {
                add_item(&mut b, l, today()).unwrap();
            }
        }
        let rows = rows(&b, true);
        for (_, e) in LAYOUT {
            match e {
                Entry::Field(fd) => assert!(rows.iter().any(|r| r.path == fd.path), "{}", fd.path),
                Entry::List(l) => {
                    for i in 0..3 {
                        assert!(rows.iter().any(
                            |r| r.kind == RowKind::Item && r.path == format!("{}[{i}]", l.path)
                        ));
                        for fd in l.fields {
                            let p = format!("{}[{i}].{}", l.path, fd.path);
                            let r = rows
                                .iter()
                                .find(|r| r.path == p)
                                .unwrap_or_else(|| panic!("{p}"));
                            assert_eq!(r.kind, RowKind::Field(fd.kind));
                        }
                    }
                    assert!(rows
                        .iter()
                        .any(|r| r.kind == RowKind::Add && r.path == l.path));
                }
            }
        }
        // A reader sees no add rows.
        assert!(!super::rows(&b, false)
            .iter()
            .any(|r| r.kind == RowKind::Add));
    }

    #[test]
    fn list_items_are_written_moved_and_removed() {
        let mut b = RecordBody::default();
        let i = add_item(&mut b, "core.guardians", today()).unwrap();
        set(&mut b, &format!("core.guardians[{i}].name.family"), "山田").unwrap();
        let j = add_item(&mut b, "core.guardians", today()).unwrap();
        set(&mut b, &format!("core.guardians[{j}].name.family"), "佐藤").unwrap();
        set(
            &mut b,
            &format!("core.guardians[{j}].name.given_kana"),
            "はなこ",
        )
        .unwrap();
        set(&mut b, &format!("core.guardians[{j}].relationship"), "実母").unwrap();
        assert_eq!(
            b.core.guardians[1].name.given_kana.as_deref(),
            Some("ハナコ")
        );
        assert_eq!(b.core.guardians[1].relationship, Some(Relationship::Mother));
        assert_eq!(move_item(&mut b, "core.guardians", 1, -1).unwrap(), 0);
        assert_eq!(b.core.guardians[0].name.family, "佐藤");
        assert_eq!(
            move_item(&mut b, "core.guardians", 0, -1).unwrap(),
            0,
            "no move past the top"
        );
        remove_item(&mut b, "core.guardians", 0).unwrap();
        assert_eq!(b.core.guardians.len(), 1);
        assert_eq!(b.core.guardians[0].name.family, "山田");

        let k = add_item(&mut b, "family.household", today()).unwrap();
        set(&mut b, &format!("family.household[{k}].birth_year"), "H20").unwrap();
        assert_eq!(b.family.household[0].birth_year, Some(2008));
        assert!(set(
            &mut b,
            &format!("family.household[{k}].birth_year"),
            "むかし"
        )
        .is_err());
        let p = add_item(&mut b, "casework.progress", today()).unwrap();
        assert_eq!(b.casework.progress[p].date, today());
        assert!(set(&mut b, &format!("casework.progress[{p}].date"), "").is_err());
        set(&mut b, &format!("casework.progress[{p}].date"), "R8.11.1").unwrap();
        assert_eq!(
            b.casework.progress[p].date,
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
        let a = add_item(&mut b, "casework.attachments", today()).unwrap();
        set(&mut b, &format!("casework.attachments[{a}].size"), "１２３").unwrap();
        assert_eq!(b.casework.attachments[a].size, 123);
    }

    #[test]
    fn errors_land_on_their_rows() {
        let mut b = RecordBody::default();
        add_item(&mut b, "core.guardians", today()).unwrap();
        add_item(&mut b, "core.guardians", today()).unwrap();
        set(&mut b, "core.guardians[1].name.given", "花子").unwrap();
        let rows = rows(&b, true);
        let at = |p: &str| rows.iter().position(|r| r.path == p);
        assert_eq!(
            row_of_error(&rows, "core.birth_date.date"),
            at("core.birth_date")
        );
        assert_eq!(
            row_of_error(&rows, "core.guardians[1].name.family"),
            at("core.guardians[1].name.family")
        );
        assert_eq!(row_of_error(&rows, "core.guardians"), at("core.guardians"));
        let errs = validate(&b, today());
        assert!(
            errs.iter()
                .any(|e| e.field == "core.guardians[0].name.family"),
            "{errs:?}"
        );
    }

    #[test]
    fn choices_cycle_through_codes() {
        let mut b = RecordBody::default();
        cycle(&mut b, "core.sex", 1).unwrap();
        assert_eq!(b.core.sex, Some(Sex::ALL[0]));
        cycle(&mut b, "core.sex", -1).unwrap();
        assert_eq!(b.core.sex, None);
        cycle(&mut b, "admin.serious_case", 1).unwrap();
        assert!(b.admin.serious_case);
        assert_eq!(display(&b, "core.sex"), vec!["（未選択）".to_string()]);
        cycle(&mut b, "casework.risk.level", 1).unwrap();
        assert!(b.casework.risk.is_some());
        cycle(&mut b, "casework.risk.urgent", 1).unwrap();
        assert!(b.casework.risk.unwrap().urgent);
    }

    #[test]
    fn changed_paths_name_fields_and_items() {
        let mut a = RecordBody::default();
        add_item(&mut a, "casework.progress", today()).unwrap();
        let mut b = a.clone();
        assert!(changed_paths(&a, &b).is_empty());
        set(&mut b, "casework.findings", "所見").unwrap();
        set(&mut b, "casework.progress[0].text", "電話").unwrap();
        add_item(&mut b, "casework.progress", today()).unwrap();
        assert_eq!(
            changed_paths(&a, &b),
            vec![
                "casework.findings",
                "casework.progress[0].text",
                "casework.progress[1]"
            ]
        );
    }

    #[test]
    fn labels_name_list_items() {
        assert_eq!(label_of("casework.progress[3].text"), "経過4 内容");
        assert_eq!(label_of("core.guardians[1]"), "保護者2");
        assert_eq!(label_of("casework.findings"), "所見");
        assert_eq!(
            value_lines("core.sex", Some(&json!(2))),
            vec![Sex::from_iso5218(2).unwrap().label_ja().to_string()]
        );
    }
}
