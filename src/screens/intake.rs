//! 通告受理 (workflow 1 of system.md): a report typed while the caller speaks and saved on the
//! server at once (nothing on this machine's disk), the nationwide lookup run on the names and
//! birth date typed, then attached to a record found or converted into a new record prefilled
//! from it; the 48-hour safety clock shown and the confirmation recorded. The duty list of the
//! organisation's intakes is `intake_list.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike, Utc};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use serde_json::{json, Value};
use tsunagu_record::api::{SearchHit, SearchResults};
use tsunagu_record::intake::{
    self, AttachIntake, ConfirmSafety, Converted, IntakeInput, IntakeStatus, IntakeView,
    SafetyConfirmationInput, SafetyState, UpdateIntake,
};

use crate::api::ApiErr;
use crate::app::{App, Level, Screen};
use crate::form::{self, Layout, Row, RowKind};
use crate::keymap::Action;
use crate::screens::record::RecordState;
use crate::screens::search::enc;
use crate::tasks::CmdKind;
use crate::text;
use crate::widgets::{self, field, field::Edit};

/// The safety confirmation as staff record it.
pub const SAFETY: Layout = &[
    (
        0,
        form::Entry::Field(form::FieldDef {
            path: "confirmed_at",
            label: "確認日時",
            kind: form::Kind::DateTime,
        }),
    ),
    (
        0,
        form::Entry::Field(form::FieldDef {
            path: "method",
            label: "確認方法",
            kind: form::Kind::Choice(form::Codes::Safety),
        }),
    ),
    (
        0,
        form::Entry::Field(form::FieldDef {
            path: "note",
            label: "確認の内容・確認者",
            kind: form::Kind::Multiline,
        }),
    ),
];

/// A small form: what it edits as JSON, its rows' cursor, editor and messages.
#[derive(Debug, Clone)]
pub struct FormState {
    pub layout: Layout,
    pub draft: Value,
    /// What the server holds (`Null` before the first save).
    pub saved: Value,
    pub cursor: usize,
    pub scroll: usize,
    pub editing: Option<Edit>,
    pub errors: BTreeMap<String, String>,
}

impl FormState {
    fn new(layout: Layout, draft: Value) -> FormState {
        FormState {
            layout,
            draft,
            saved: Value::Null,
            cursor: 0,
            scroll: 0,
            editing: None,
            errors: BTreeMap::new(),
        }
    }

    pub fn rows(&self) -> Vec<Row> {
        form::rows_in(self.layout, &self.draft, true)
    }

    fn row(&self) -> Option<Row> {
        let rows = self.rows();
        let i = self.cursor.min(rows.len().saturating_sub(1));
        rows.into_iter().nth(i)
    }

    fn move_to(&mut self, path: &str) {
        if let Some(i) = self.rows().iter().position(|r| r.path == path) {
            self.cursor = i;
        }
    }

    fn start_edit(&mut self) {
        if let Some(row) = self.row() {
            self.editing = Edit::start(self.layout, &self.draft, &row);
        }
    }

    /// Writes the editor's text into the draft; false (editor kept open) when it cannot be read.
    fn commit(&mut self) -> bool {
        let Some(e) = &self.editing else { return true };
        let path = e.path.clone();
        match e.commit(self.layout, &mut self.draft) {
            Ok(()) => {
                self.errors.remove(&path);
                self.editing = None;
                true
            }
            Err(m) => {
                self.errors.insert(path, m);
                false
            }
        }
    }

    fn set_errors(&mut self, errs: &[tsunagu_record::validate::FieldError]) {
        self.errors.clear();
        let rows = self.rows();
        for e in errs {
            let at = form::row_of_error(&rows, &e.field).unwrap_or(0);
            if let Some(r) = rows.get(at) {
                self.errors
                    .entry(r.path.clone())
                    .or_insert(e.message.clone());
            }
        }
        if let Some(first) = rows.iter().position(|r| self.errors.contains_key(&r.path)) {
            self.cursor = first;
        }
    }

    /// The keys of a form that is not being edited: move, edit, cycle, add and remove items.
    /// Returns false for a key it does not use.
    fn action(&mut self, a: Action, today: chrono::NaiveDate) -> bool {
        if self.editing.is_some() {
            let multi = self
                .editing
                .as_ref()
                .is_some_and(|e| e.kind == form::Kind::Multiline && e.picks.is_empty());
            match a {
                Action::Submit if multi => {
                    if let Some(e) = self.editing.as_mut() {
                        e.newline();
                    }
                }
                Action::Submit => {
                    self.commit();
                }
                Action::NextField if self.commit() => {
                    self.cursor = (self.cursor + 1).min(self.rows().len().saturating_sub(1));
                    self.start_edit_if_text();
                }
                Action::PrevField if self.commit() => {
                    self.cursor = self.cursor.saturating_sub(1);
                    self.start_edit_if_text();
                }
                Action::Cancel | Action::Back => {
                    if let Some(e) = self.editing.take() {
                        self.errors.remove(&e.path);
                    }
                }
                _ => return false,
            }
            return true;
        }
        let rows = self.rows();
        let last = rows.len().saturating_sub(1);
        let Some(row) = rows.get(self.cursor.min(last)).cloned() else {
            return false;
        };
        match a {
            Action::Down => self.cursor = (self.cursor + 1).min(last),
            Action::Up => self.cursor = self.cursor.saturating_sub(1),
            Action::PageDown => self.cursor = (self.cursor + 8).min(last),
            Action::PageUp => self.cursor = self.cursor.saturating_sub(8),
            Action::Top => self.cursor = 0,
            Action::Bottom => self.cursor = last,
            Action::Edit | Action::ChoiceNext | Action::ChoicePrev => match row.kind {
                RowKind::Field(form::Kind::Choice(_) | form::Kind::Bool) => {
                    let step = if a == Action::ChoicePrev { -1 } else { 1 };
                    if let Err(m) = form::cycle_in(self.layout, &mut self.draft, &row.path, step) {
                        self.errors.insert(row.path.clone(), m);
                    }
                }
                _ if a != Action::Edit => return false,
                RowKind::Field(_) => self.start_edit(),
                RowKind::Item => {
                    self.cursor = (self.cursor + 1).min(last);
                    self.start_edit_if_text();
                }
                RowKind::Add => {
                    if let Ok(i) = form::add_item_in(&mut self.draft, &row.path, today) {
                        self.move_to(&format!("{}[{i}]", row.path));
                        self.cursor += 1;
                        self.start_edit_if_text();
                    }
                }
                RowKind::Empty => {}
            },
            Action::RemoveItem => {
                let Some((list, i)) = row.list else {
                    return false;
                };
                if form::remove_item_in(&mut self.draft, list, i).is_ok() {
                    self.errors.retain(|p, _| !p.starts_with(list));
                    self.cursor = self.cursor.min(self.rows().len().saturating_sub(1));
                }
            }
            _ => return false,
        }
        true
    }

    fn start_edit_if_text(&mut self) {
        if self
            .row()
            .and_then(|r| r.field_kind())
            .is_some_and(form::Kind::is_text)
        {
            self.start_edit();
        }
    }
}

/// The nationwide lookup run on what the caller said.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub query: Option<String>,
    pub loading: bool,
    pub results: Option<SearchResults>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IntakeState {
    /// The intake as the server last sent it; None until the first save.
    pub view: Option<IntakeView>,
    pub form: FormState,
    pub saving: bool,
    pub lookup: Lookup,
    /// The keyboard is in the lookup's hits rather than the form.
    pub in_hits: bool,
    pub hit: usize,
    /// The safety confirmation being written.
    pub safety: Option<FormState>,
    /// The form as it was opened, for a report not saved yet: anything typed since is unsaved.
    fresh: Value,
}

impl IntakeState {
    /// A new report received now: its time filled in, the cursor in the content, typing.
    pub fn new(now: DateTime<Utc>) -> IntakeState {
        let now = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let input = IntakeInput {
            received_at: now,
            channel: None,
            reporter_relationship: String::new(),
            content: String::new(),
            child: Default::default(),
            guardians: vec![],
            urgency: None,
        };
        let fresh = serde_json::to_value(&input).unwrap_or(Value::Null);
        let mut form = FormState::new(form::INTAKE, fresh.clone());
        form.move_to("content");
        form.start_edit();
        IntakeState {
            view: None,
            fresh,
            form,
            saving: false,
            lookup: Lookup::default(),
            in_hits: false,
            hit: 0,
            safety: None,
        }
    }

    pub fn from_view(v: IntakeView) -> IntakeState {
        let mut s = IntakeState::new(v.input.received_at);
        s.form.editing = None;
        s.form.cursor = 0;
        s.set_view(v);
        s
    }

    fn set_view(&mut self, v: IntakeView) {
        let input = serde_json::to_value(&v.input).unwrap_or(Value::Null);
        self.form.draft = input.clone();
        self.form.saved = input;
        self.view = Some(v);
    }

    /// Typed but not saved on the server.
    /// Typed but not saved on the server: the form differs from what the server holds (or,
    /// before the first save, from how it was opened), or an editor holds text.
    pub fn unsaved(&self) -> bool {
        let baseline = if self.view.is_some() {
            &self.form.saved
        } else {
            &self.fresh
        };
        let editing = self.form.editing.as_ref().is_some_and(|e| {
            e.value().trim() != form::get_in(self.form.layout, &self.form.draft, &e.path).trim()
        });
        self.form.draft != *baseline || editing
    }

    pub fn editing(&self) -> bool {
        self.form.editing.is_some() || self.safety.as_ref().is_some_and(|s| s.editing.is_some())
    }

    pub fn editor(&mut self) -> Option<&mut Edit> {
        match self.safety.as_mut() {
            Some(s) => s.editing.as_mut(),
            None => self.form.editing.as_mut(),
        }
    }

    pub fn hits(&self) -> Vec<&SearchHit> {
        self.lookup
            .results
            .iter()
            .flat_map(|r| r.groups.iter().flat_map(|g| g.hits.iter()))
            .collect()
    }

    /// The search on the child's name (or reading), the first guardian, the birth date and
    /// sex typed; None when no name was given.
    pub fn lookup_query(&self) -> Option<String> {
        let input: IntakeInput = serde_json::from_value(self.form.draft.clone()).ok()?;
        let c = &input.child;
        let join = |a: &str, b: &str| format!("{a} {b}").trim().to_string();
        let mut name = join(&c.name.family, &c.name.given);
        if name.is_empty() {
            name = join(
                c.name.family_kana.as_deref().unwrap_or(""),
                c.name.given_kana.as_deref().unwrap_or(""),
            );
        }
        let guardian = input
            .guardians
            .iter()
            .map(|g| join(&g.name.family, &g.name.given))
            .find(|n| !n.is_empty())
            .unwrap_or_default();
        if name.is_empty() && guardian.is_empty() {
            return None;
        }
        let mut q = vec![format!("q={}", enc(&name))];
        if !guardian.is_empty() {
            q.push(format!("guardian={}", enc(&guardian)));
        }
        if let Some(b) = c.birth_date {
            q.push(format!("birth={}", b.date.format("%Y-%m-%d")));
        }
        if let Some(s) = c.sex.filter(|s| matches!(s.iso5218(), 1 | 2)) {
            q.push(format!("sex={}", s.iso5218()));
        }
        q.push("page=1".into());
        Some(q.join("&"))
    }
}

/// The safety clock in words: 「期限まで 5時間10分」「12時間超過」「確認済み」.
pub fn clock_text(state: SafetyState, due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let mins = (due - now).num_minutes();
    let hm = |m: i64| {
        let m = m.abs();
        if m >= 60 {
            format!("{}時間{}分", m / 60, m % 60)
        } else {
            format!("{m}分")
        }
    };
    match state {
        SafetyState::Confirmed | SafetyState::ConfirmedLate => state.label_ja().to_string(),
        _ if mins < 0 => format!("期限超過 {}", hm(mins)),
        _ => format!("期限まで {}", hm(mins)),
    }
}

/// The short form for a list column: 「超過3時」「残12時」「残40分」.
pub fn clock_cell(state: SafetyState, due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let mins = (due - now).num_minutes();
    match state {
        SafetyState::Confirmed | SafetyState::ConfirmedLate => String::new(),
        _ if mins < 0 => format!("超過{}時", (-mins) / 60),
        _ if mins < 60 => format!("残{mins}分"),
        _ => format!("残{}時", mins / 60),
    }
}

pub fn jst_text(t: DateTime<Utc>) -> String {
    let j = t.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"));
    j.format("%m/%d %H:%M").to_string()
}

impl App {
    /// Opens the intake screen: the report being typed if there is one, else a new one.
    pub fn new_intake(&mut self) {
        let receiver = self.keeps_cases();
        if !receiver {
            self.say(
                Level::Warn,
                "この組織では通告を受理できません（児童相談所・市区町村のみ）",
            );
            return;
        }
        self.overlay = None;
        self.screen = Screen::Intake;
        if self.intake.as_ref().is_some_and(|i| i.unsaved()) {
            self.say(Level::Info, "入力中の通告に戻りました（Ctrl+S で保存）");
            return;
        }
        self.intake = Some(IntakeState::new(self.now()));
        self.say(
            Level::Info,
            "通告受理: 内容を入力して Ctrl+S で保存（保存した時点で受理が記録され、全国照会を行います）",
        );
    }

    pub(crate) fn on_intake(&mut self, res: Result<IntakeView, ApiErr>) {
        let Some(st) = self.intake.as_mut() else {
            // Opened from the list: show it.
            if let Ok(v) = res {
                self.intake = Some(IntakeState::from_view(v));
                self.screen = Screen::Intake;
            }
            return;
        };
        st.saving = false;
        match res {
            Ok(v) => {
                let first = st.view.is_none();
                let status = v.status;
                let id = v.id;
                let record = v.record_id;
                let confirmed = v.safety.confirmation.is_some();
                let was_confirmed = st
                    .view
                    .as_ref()
                    .is_some_and(|o| o.safety.confirmation.is_some());
                st.set_view(v);
                st.safety = None;
                let msg = match status {
                    IntakeStatus::Attached => {
                        format!("通告 {id} を記録 {} に追加しました", record.unwrap_or(0))
                    }
                    IntakeStatus::Forwarded => format!(
                        "通告 {id} を記録 {} の所有機関へ送付しました",
                        record.unwrap_or(0)
                    ),
                    _ if confirmed && !was_confirmed => "安全確認を記録しました".to_string(),
                    _ if first => {
                        format!("通告 {id} を受理しました（安全確認の時計が始まりました）")
                    }
                    _ => format!("通告 {id} を保存しました"),
                };
                self.online();
                self.say(Level::Info, msg);
                if status == IntakeStatus::Open {
                    self.run_lookup();
                }
                // The case list's safety column changes only when an intake is linked to a
                // record or confirmed; a new report costs no extra request on a slow link.
                if record.is_some() || confirmed != was_confirmed {
                    self.load_due();
                }
            }
            Err(ApiErr::Status { status: 422, body }) => {
                let target = match st.safety.as_mut() {
                    Some(s) => s,
                    None => &mut st.form,
                };
                target.set_errors(&body.fields);
                self.say(
                    Level::Error,
                    format!("保存できませんでした: {}", body.message),
                );
            }
            Err(e) if e.is_auth_lost() => self.session_lost(),
            Err(e) => {
                self.say(
                    Level::Error,
                    format!(
                        "保存できませんでした: {}（入力は保持しています）",
                        e.message()
                    ),
                );
                self.on_error(&e);
            }
        }
    }

    pub(crate) fn on_intake_lookup(&mut self, res: Result<SearchResults, ApiErr>) {
        let Some(st) = self.intake.as_mut() else {
            return;
        };
        st.lookup.loading = false;
        match res {
            Ok(r) => {
                st.lookup.error = None;
                st.lookup.results = Some(r);
                st.hit = 0;
            }
            Err(e) => st.lookup.error = Some(e.message()),
        }
    }

    pub(crate) fn on_converted(&mut self, res: Result<Converted, ApiErr>) {
        match res {
            Ok(c) => {
                let rid = c.record_id;
                if let Some(st) = self.intake.as_mut() {
                    st.set_view(c.intake);
                }
                if let Some(r) = self.record.as_mut() {
                    r.saving = false;
                    r.save_pending = false;
                    r.from_intake = None;
                    // Nothing unsaved is left: the record exists now.
                    r.base.body = r.draft.clone();
                }
                self.save_retry_at = None;
                self.online();
                self.open_record(rid);
                self.say(
                    Level::Info,
                    format!("通告から記録 {rid} を作成しました（通告と紐づけました）"),
                );
                self.load_due();
            }
            Err(e) => self.on_saved(Err(e)),
        }
    }

    fn run_lookup(&mut self) {
        let Some(st) = self.intake.as_mut() else {
            return;
        };
        match st.lookup_query() {
            Some(q) => {
                st.lookup.query = Some(q.clone());
                st.lookup.loading = true;
                st.lookup.error = None;
                self.request("intake_lookup", CmdKind::Search { query: q });
            }
            None => {
                st.lookup = Lookup {
                    error: Some(
                        "子どもか保護者の氏名を入力して保存すると、全国の記録を照会します".into(),
                    ),
                    ..Lookup::default()
                };
            }
        }
    }

    fn save_intake(&mut self) {
        let now = self.now();
        let today = self.today;
        let Some(st) = self.intake.as_mut() else {
            return;
        };
        if let Some(sf) = st.safety.as_mut() {
            if !sf.commit() {
                return;
            }
            let Some(v) = &st.view else { return };
            let c: SafetyConfirmationInput = match serde_json::from_value(sf.draft.clone()) {
                Ok(c) => c,
                Err(_) => {
                    sf.errors
                        .insert("method".into(), "確認方法を選んでください".into());
                    return;
                }
            };
            if let Err(errs) = intake::validate_confirmation(&c, v.input.received_at, now) {
                sf.set_errors(&errs);
                self.say(Level::Error, "安全確認の入力に誤りがあります");
                return;
            }
            let (id, version) = (v.id, v.version);
            st.saving = true;
            self.request(
                "intake_save",
                CmdKind::IntakeSafety {
                    id,
                    confirm: ConfirmSafety {
                        version,
                        confirmation: c,
                    },
                },
            );
            return;
        }
        if !st.form.commit() {
            return;
        }
        if st
            .view
            .as_ref()
            .is_some_and(|v| v.status != IntakeStatus::Open)
        {
            self.say(Level::Warn, "処理済みの通告は修正できません");
            return;
        }
        let mut draft = st.form.draft.clone();
        // Guardians left empty are not sent.
        if let Some(g) = draft.get_mut("guardians").and_then(Value::as_array_mut) {
            g.retain(|x| x != &json!({ "name": { "family": "", "given": "" } }));
        }
        let input: IntakeInput = match serde_json::from_value(draft) {
            Ok(i) => i,
            Err(e) => {
                self.say(Level::Error, format!("入力内容を読めません: {e}"));
                return;
            }
        };
        if let Err(errs) = intake::validate_intake(&input, now, today) {
            let n = errs.len();
            st.form.set_errors(&errs);
            self.say(
                Level::Error,
                format!("入力内容に{n}件の誤りがあります。赤い項目を直してください"),
            );
            return;
        }
        if st.view.is_some() && st.form.draft == st.form.saved {
            self.say(Level::Info, "変更はありません");
            return;
        }
        st.saving = true;
        let kind = match &st.view {
            Some(v) => CmdKind::IntakeUpdate {
                id: v.id,
                update: UpdateIntake {
                    version: v.version,
                    input,
                },
            },
            None => CmdKind::IntakeCreate { input },
        };
        self.say(Level::Info, "通告を保存しています");
        self.request("intake_save", kind);
    }

    pub(crate) fn intake_action(&mut self, a: Action) {
        let today = self.today;
        let now = self.now();
        if a != Action::Back && self.message.as_ref().is_some_and(|m| m.1 == INTAKE_DISCARD) {
            // The second Esc must follow the first at once to discard.
            self.message = None;
        }
        let Some(st) = self.intake.as_mut() else {
            self.screen = Screen::CaseList;
            return;
        };
        if a == Action::Save {
            self.save_intake();
            return;
        }
        if let Some(sf) = st.safety.as_mut() {
            if sf.action(a, today) {
                return;
            }
            if matches!(a, Action::Back | Action::Cancel) {
                st.safety = None;
            }
            return;
        }
        if st.form.editing.is_some() {
            st.form.action(a, today);
            return;
        }
        if st.in_hits {
            let n = st.hits().len();
            match a {
                Action::Down => st.hit = (st.hit + 1).min(n.saturating_sub(1)),
                Action::Up if st.hit == 0 => st.in_hits = false,
                Action::Up => st.hit -= 1,
                Action::Edit | Action::Open => {
                    let Some(h) = st.hits().get(st.hit).map(|h| (h.record_id, h.tier.clone()))
                    else {
                        return;
                    };
                    if h.1 == "none" {
                        self.say(Level::Info, "この記録は閲覧区分により開けません（所有機関へ電話で連絡してください）");
                    } else {
                        self.open_record(h.0);
                    }
                }
                Action::Lookup | Action::Back => st.in_hits = false,
                Action::Attach => self.attach_intake(),
                Action::Convert => self.convert_intake(),
                Action::Reload => self.run_lookup(),
                _ => self.dirty = false,
            }
            return;
        }
        match a {
            Action::Lookup => {
                if st.hits().is_empty() {
                    self.say(
                        Level::Info,
                        "照会結果はありません（名前を入力して保存すると照会します）",
                    );
                } else {
                    st.in_hits = true;
                }
            }
            Action::Attach => self.attach_intake(),
            Action::Convert => self.convert_intake(),
            Action::Safety => {
                let Some(v) = &st.view else {
                    self.say(Level::Info, "先に通告を保存してください（Ctrl+S）");
                    return;
                };
                if v.safety.confirmation.is_some() {
                    self.say(Level::Info, "安全確認は記録済みです");
                    return;
                }
                let now = now.with_second(0).unwrap_or(now);
                let mut sf = FormState::new(
                    SAFETY,
                    json!({ "confirmed_at": now.to_rfc3339(), "method": "direct_sighting", "note": "" }),
                );
                sf.cursor = 0;
                st.safety = Some(sf);
                self.say(
                    Level::Info,
                    "安全確認: 確認した日時と方法を入れて Ctrl+S で記録します",
                );
            }
            Action::Reload => match st.view.as_ref().map(|v| v.id) {
                Some(id) if !st.unsaved() => {
                    self.request("intake_save", CmdKind::IntakeGet { id });
                }
                _ => self.run_lookup(),
            },
            Action::Back => {
                if st.unsaved()
                    && self.message.as_ref().map(|m| m.1.as_str()) != Some(INTAKE_DISCARD)
                {
                    self.say(Level::Warn, INTAKE_DISCARD);
                } else {
                    self.intake = None;
                    self.message = None;
                    self.screen = Screen::CaseList;
                }
            }
            other => {
                if !st.form.action(other, today) {
                    self.dirty = false;
                }
            }
        }
    }

    fn attach_intake(&mut self) {
        let Some(st) = self.intake.as_mut() else {
            return;
        };
        let Some(v) = &st.view else {
            self.say(Level::Info, "先に通告を保存してください（Ctrl+S）");
            return;
        };
        if v.status != IntakeStatus::Open {
            self.say(Level::Info, "この通告は処理済みです");
            return;
        }
        if !st.in_hits {
            self.say(
                Level::Info,
                "F7 で照会結果へ移り、追加する記録を選んでから F8 を押してください",
            );
            return;
        }
        let Some(h) = st.hits().get(st.hit).map(|h| (h.record_id, h.tier.clone())) else {
            return;
        };
        if h.1 == "none" {
            self.say(Level::Warn, "この記録には追加できません（閲覧区分がありません）。所有機関へ電話で連絡してください");
            return;
        }
        let (id, version) = (v.id, v.version);
        st.saving = true;
        self.request(
            "intake_save",
            CmdKind::IntakeAttach {
                id,
                attach: AttachIntake {
                    record_id: h.0,
                    version,
                },
            },
        );
    }

    fn convert_intake(&mut self) {
        let Some(st) = self.intake.as_ref() else {
            return;
        };
        let Some(v) = &st.view else {
            self.say(Level::Info, "先に通告を保存してください（Ctrl+S）");
            return;
        };
        if v.status != IntakeStatus::Open {
            self.say(Level::Info, "この通告は処理済みです");
            return;
        }
        if self.record.as_ref().is_some_and(|r| r.unsaved()) {
            self.screen = Screen::Record;
            self.say(
                Level::Warn,
                "保存していない記録があります。先に保存するか破棄してください",
            );
            return;
        }
        let mut r = RecordState::new_record();
        r.draft = intake::record_prefill(&v.input);
        if r.draft.core.guardians.is_empty() {
            let _ = form::add_item(&mut r.draft, "core.guardians", self.today);
        }
        r.from_intake = Some((v.id, v.version));
        self.record = Some(r);
        self.screen = Screen::Record;
        self.say(
            Level::Info,
            "通告から新しい記録: 通告の内容を写しました。必須の項目を補って Ctrl+S で作成します（通告と紐づきます）",
        );
    }
}

pub const INTAKE_DISCARD: &str =
    "保存していない通告があります。もう一度 Esc で入力を破棄して一覧へ戻ります（保存は Ctrl+S）";

const LABEL_W: usize = 30;

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let now = app.now();
    let Some(st) = app.intake.as_ref() else {
        return;
    };
    let title = match &st.view {
        Some(v) => format!("通告受理  No.{}", v.id),
        None => "通告受理（未保存）".to_string(),
    };
    let right = match &st.view {
        Some(v) => format!(
            "{}  版{}{}",
            v.status.label_ja(),
            v.version,
            if st.unsaved() { "  未保存" } else { "" }
        ),
        None => String::new(),
    };
    widgets::title_bar(f, Rect { height: 1, ..area }, app, &title, &right);
    let clock = match &st.view {
        Some(v) => format!(
            "安全確認（{}時間以内）: {}  期限 {}  {}",
            v.safety.hours,
            v.safety.state.label_ja(),
            jst_text(v.safety.due_at),
            clock_text(v.safety.state, v.safety.due_at, now)
        ),
        None => {
            "保存すると受理が記録され、安全確認の期限（受理から48時間）が始まります".to_string()
        }
    };
    let clock_style = match st.view.as_ref().map(|v| v.safety.state) {
        Some(SafetyState::Overdue) => th.style("error"),
        Some(SafetyState::DueSoon) => th.style("status_warn"),
        _ => th.style("dim"),
    };
    widgets::line(
        f,
        Rect {
            y: area.y + 1,
            height: 1,
            ..area
        },
        &clock,
        clock_style,
        el,
    );
    let body = Rect {
        y: area.y + 2,
        height: area.height.saturating_sub(2),
        ..area
    };
    let pane_h = (body.height * 2 / 5).max(5);
    let form_area = Rect {
        height: body.height.saturating_sub(pane_h),
        ..body
    };
    let pane = Rect {
        y: form_area.bottom(),
        height: body.height - form_area.height,
        ..body
    };
    let st = app.intake.as_mut().expect("checked above");
    let form_focus = !st.in_hits && st.safety.is_none();
    draw_form(f, form_area, &th, el, &mut st.form, form_focus, true);
    if let Some(sf) = st.safety.as_mut() {
        draw_form(f, pane, &th, el, sf, true, false);
        return;
    }
    draw_hits(f, pane, &th, el, st);
}

fn draw_form(
    f: &mut Frame,
    area: Rect,
    th: &crate::theme::Theme,
    el: &str,
    s: &mut FormState,
    focus: bool,
    intake: bool,
) {
    let rows = s.rows();
    s.cursor = s.cursor.min(rows.len().saturating_sub(1));
    let sections = if intake {
        form::INTAKE_SECTIONS
            .iter()
            .map(|t| format!(" {t}"))
            .collect()
    } else {
        vec![" 安全確認の記録（Ctrl+S で記録、Esc で閉じる）".to_string()]
    };
    let (layout, draft, saved) = (s.layout, s.draft.clone(), s.saved.clone());
    field::draw_rows(
        f,
        area,
        field::RowsView {
            th,
            el,
            sections,
            rows: &rows,
            cursor: if focus { s.cursor } else { usize::MAX },
            errors: &s.errors,
            label_w: LABEL_W,
        },
        &mut s.scroll,
        s.editing.as_mut(),
        |row| {
            matches!(
                row.path.as_str(),
                "received_at" | "content" | "confirmed_at" | "method"
            )
        },
        |row| {
            let (values, changed) = match row.kind {
                RowKind::Field(_) => {
                    let v = form::display_in(layout, &draft, &row.path);
                    let changed =
                        !saved.is_null() && form::display_in(layout, &saved, &row.path) != v;
                    (v, changed)
                }
                RowKind::Item => {
                    let (list, k) = row.list.expect("an item row is in a list");
                    (vec![form::item_summary_in(layout, &draft, list, k)], false)
                }
                RowKind::Add => (vec![], false),
                RowKind::Empty => (vec!["（なし）".into()], false),
            };
            field::Shown {
                values,
                changed,
                withheld: None,
            }
        },
    );
}

fn draw_hits(f: &mut Frame, area: Rect, th: &crate::theme::Theme, el: &str, st: &IntakeState) {
    let w = area.width as usize;
    let hits = st.hits();
    let head = if st.lookup.loading {
        " 全国照会: 照会しています".to_string()
    } else if let Some(e) = &st.lookup.error {
        format!(" 全国照会: {e}")
    } else if st.lookup.results.is_some() {
        format!(
            " 全国照会: {}件  F7: 結果へ  Enter: 開く  F8: この記録に追加  F11: 新しい記録を作成",
            hits.len()
        )
    } else {
        " 全国照会: 名前と生年月日を入力して保存すると照会します".to_string()
    };
    let mut lines = vec![Line::from(Span::styled(
        text::fit(&head, w, el),
        th.style("section"),
    ))];
    if st.lookup.results.is_some() && hits.is_empty() && !st.lookup.loading {
        lines.push(Line::from(Span::styled(
            " 該当する記録はありません（新しい記録を作成するには F11）",
            th.style("dim"),
        )));
    }
    let rows = area.height.saturating_sub(1) as usize;
    let start = st.hit.saturating_sub(rows.saturating_sub(1));
    for (i, h) in hits.iter().enumerate().skip(start).take(rows) {
        let style = if st.in_hits && i == st.hit {
            th.style("selected")
        } else {
            th.style("normal")
        };
        let birth = h
            .birth_date
            .map(|b| tsunagu_record::era::format_era(b.date))
            .unwrap_or_else(|| "-".into());
        let tier = match h.tier.as_str() {
            "owner" => "自機関の記録",
            "partner" => "連携機関",
            "outside" => "管轄外",
            "none" => "閲覧不可",
            _ => "",
        };
        let reasons: Vec<&str> = h.reasons.iter().map(|r| r.label_ja()).collect();
        let l = format!(
            " {}（{}） {}  {}  [{tier}] 一致: {}",
            h.child_name.display(),
            h.child_name.display_kana(),
            birth,
            h.owner.name,
            reasons.join("・")
        );
        lines.push(Line::from(Span::styled(
            text::fit(&text::sanitize(&l), w, el),
            style,
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), area);
}
