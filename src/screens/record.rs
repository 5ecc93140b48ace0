//! The record screen: the record's groups as sections, every field and every list of the
//! national format as rows (a list item's row, its fields, an add row), withheld parts marked
//! with the reason. The owner edits field by field with the shared validation on leaving a field
//! and on save, adds, removes and reorders list items, and saves with the version; every tier
//! reads any text it may see in full in a scrolling reader. Conflicts, history and views are
//! panes that take the keys while open.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tsunagu_record::api::{RecordViewEntry, UpdateRecord, VersionEntry};
use tsunagu_record::views::{FullRecord, OwnerContact, Visible};
use tsunagu_record::{RecordBody, RecordView};

use crate::api::ApiErr;
use crate::app::{App, Conn, Level, Screen};
use crate::form::{self, Flat, Kind, Row, RowKind};
use crate::keymap::Action;
use crate::tasks::CmdKind;
use crate::text;
use crate::widgets::{self, field, field::Edit};

#[derive(Debug, Clone)]
pub enum Side {
    None,
    Loading(&'static str),
    History(Vec<VersionEntry>),
    Views(Vec<RecordViewEntry>),
    Error(String),
}

/// A text shown in full, read-only, scrolled by line.
#[derive(Debug, Clone)]
pub struct Reader {
    pub title: String,
    pub text: String,
    pub scroll: usize,
    /// Lines on screen in the last frame (for paging).
    pub rows: usize,
}

#[derive(Debug, Clone)]
pub struct RecordState {
    /// None for a record not saved yet.
    pub id: Option<i64>,
    pub loading: bool,
    pub error: Option<String>,
    pub tier: String,
    pub owner: Option<OwnerContact>,
    /// The record as the server last sent it.
    pub base: Flat,
    /// What the user is writing; differs from `base.body` while unsaved.
    pub draft: RecordBody,
    pub version: i64,
    pub editable: bool,
    /// Index into [`RecordState::rows`].
    pub cursor: usize,
    pub scroll: usize,
    pub editing: Option<Edit>,
    pub reader: Option<Reader>,
    /// Row path → message, shown under the row.
    pub errors: BTreeMap<String, String>,
    /// Every problem of the last save attempt.
    pub summary: Vec<String>,
    pub saving: bool,
    /// A save is wanted but could not reach the server (or the session ended): tried again.
    pub save_pending: bool,
    pub conflict: Option<Box<FullRecord>>,
    /// The fields the server named as changed both ways, with base, mine and theirs in full
    /// (it merged everything else).
    pub conflicts: Vec<tsunagu_record::merge::FieldConflict>,
    /// The conflict under the cursor.
    pub conflict_sel: usize,
    /// The decision sent with the next save for each of those fields.
    pub resolve: tsunagu_record::merge::Resolutions,
    pub side: Side,
    pub side_scroll: usize,
    /// A list item whose removal waits for the second press.
    pub pending_remove: Option<String>,
    /// Visible body rows in the last frame.
    pub rows: usize,
    /// A new record made from an intake: (intake id, its version); saved by converting it.
    pub from_intake: Option<(i64, i64)>,
    /// The "move to a field" prompt while it is open.
    pub goto: Option<crate::widgets::input::LineInput>,
    /// The intakes linked to the record, with their safety clocks.
    pub intakes: Vec<tsunagu_record::intake::IntakeSummary>,
}

impl RecordState {
    pub fn loading(id: i64) -> RecordState {
        RecordState {
            id: Some(id),
            loading: true,
            error: None,
            tier: String::new(),
            owner: None,
            base: Flat::default(),
            draft: RecordBody::default(),
            version: 0,
            editable: false,
            cursor: 0,
            scroll: 0,
            editing: None,
            reader: None,
            errors: BTreeMap::new(),
            summary: vec![],
            saving: false,
            save_pending: false,
            conflict: None,
            conflicts: vec![],
            conflict_sel: 0,
            resolve: Default::default(),
            side: Side::None,
            side_scroll: 0,
            pending_remove: None,
            rows: 10,
            from_intake: None,
            goto: None,
            intakes: vec![],
        }
    }

    pub fn new_record() -> RecordState {
        let mut r = RecordState {
            id: None,
            loading: false,
            tier: "owner".into(),
            editable: true,
            ..RecordState::loading(0)
        };
        // The national format asks for at least one guardian: start with an empty one.
        let _ = form::add_item(
            &mut r.draft,
            "core.guardians",
            chrono::Utc::now().date_naive(),
        );
        r.base.body = r.draft.clone();
        r
    }

    #[cfg(test)]
    pub fn from_view(view: &RecordView) -> RecordState {
        let mut r = RecordState::loading(view.id());
        r.set_view(view);
        r
    }

    pub fn set_view(&mut self, view: &RecordView) {
        let flat = form::flatten(view);
        self.id = Some(view.id());
        self.loading = false;
        self.error = None;
        self.tier = view.tier_name().to_string();
        self.owner = Some(view.owner().clone());
        // A record transferred out stays with its origin read-only, pointing to the new one.
        self.editable =
            matches!(view, RecordView::Owner(_)) && flat_transferred_to(&flat).is_none();
        self.version = flat.meta.as_ref().map(|m| m.version).unwrap_or(0);
        self.draft = flat.body.clone();
        self.base = flat;
        self.cursor = self.cursor.min(self.rows().len().saturating_sub(1));
    }

    pub fn unsaved(&self) -> bool {
        self.editable && (self.draft != self.base.body || self.editing.is_some())
    }

    /// The rows on screen: every row of the draft except those of a group withheld as a
    /// whole (its section title says so instead).
    pub fn rows(&self) -> Vec<Row> {
        form::rows(&self.draft, self.editable)
            .into_iter()
            .filter(|r| self.base.withheld_for(group_of(&r.path)).is_none())
            .collect()
    }

    pub fn row(&self) -> Option<Row> {
        let rows = self.rows();
        let i = self.cursor.min(rows.len().saturating_sub(1));
        rows.into_iter().nth(i)
    }

    /// Moves to the next row (after the cursor, wrapping) whose label holds `q`; the label of
    /// an item's field counts with its item's (保護者2 氏名).
    fn goto_label(&mut self, q: &str) -> bool {
        if q.is_empty() {
            return false;
        }
        let rows = self.rows();
        let n = rows.len();
        let hit = (1..=n).map(|k| (self.cursor + k) % n).find(|&i| {
            let full = form::label_of(&rows[i].path);
            rows[i].label.contains(q) || full.contains(q)
        });
        match hit {
            Some(i) => {
                self.cursor = i;
                true
            }
            None => false,
        }
    }

    fn move_to(&mut self, path: &str) {
        if let Some(i) = self.rows().iter().position(|r| r.path == path) {
            self.cursor = i;
        }
    }

    /// A key typed into the field being edited.
    pub fn type_key(&mut self, k: KeyEvent) {
        if let Some(e) = self.editing.as_mut() {
            e.key(k);
        }
    }

    pub fn paste(&mut self, s: &str) {
        if let Some(e) = self.editing.as_mut() {
            e.paste(s);
        }
    }

    fn start_edit(&mut self) {
        if let Some(row) = self.row() {
            self.editing = Edit::start(form::LAYOUT, &form::to_value(&self.draft), &row);
        }
    }

    /// Leaves the field being edited: writes it into the draft and validates it. A value that
    /// cannot be read (a bad date) keeps the editor open with the message.
    pub fn commit_edit(&mut self, today: chrono::NaiveDate) -> bool {
        let Some(e) = &self.editing else { return true };
        let path = e.path.clone();
        if let Err(m) = form::set(&mut self.draft, &path, &e.value()) {
            self.errors.insert(path, m);
            return false;
        }
        self.editing = None;
        self.check_field(&path, today);
        true
    }

    /// The shared validation, applied to one row's messages.
    pub fn check_field(&mut self, path: &str, today: chrono::NaiveDate) {
        self.errors.remove(path);
        let rows = self.rows();
        for e in form::validate(&self.draft, today) {
            if form::row_of_error(&rows, &e.field).map(|i| rows[i].path.as_str()) == Some(path) {
                self.errors.entry(path.to_string()).or_insert(e.message);
            }
        }
        if self.errors.is_empty() {
            self.summary.clear();
        }
    }

    /// Every problem, on its row and in the summary. True when there are none.
    pub fn check_all(&mut self, today: chrono::NaiveDate) -> bool {
        let errs = form::validate(&self.draft, today);
        self.set_errors(&errs);
        errs.is_empty()
    }

    pub fn set_errors(&mut self, errs: &[tsunagu_record::validate::FieldError]) {
        self.errors.clear();
        self.summary.clear();
        let rows = self.rows();
        for e in errs {
            if let Some(i) = form::row_of_error(&rows, &e.field) {
                self.errors
                    .entry(rows[i].path.clone())
                    .or_insert(e.message.clone());
            }
            self.summary.push(e.message.clone());
        }
    }

    /// The reader for the row under the cursor: a field's whole text, or every field of a
    /// list item. None where the row shows nothing to read.
    fn reader_for(&self, row: &Row) -> Result<Reader, String> {
        if let Some(why) = self.base.withheld_for(&row.path) {
            return Err(format!(
                "「{}」は表示されません（{}）",
                row.label.trim(),
                why.label_ja()
            ));
        }
        let text = match row.kind {
            RowKind::Field(_) => form::display(&self.draft, &row.path).join("\n"),
            RowKind::Item => {
                let (list, _) = row.list.ok_or("一覧の項目ではありません")?;
                let def = form::list(list).ok_or("一覧の項目ではありません")?;
                def.fields
                    .iter()
                    .map(|f| {
                        let p = format!("{}.{}", row.path, f.path);
                        format!(
                            "【{}】\n{}",
                            f.label,
                            form::display(&self.draft, &p).join("\n")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n")
            }
            RowKind::Add | RowKind::Empty => return Err("読む内容がありません".into()),
        };
        Ok(Reader {
            title: form::label_of(&row.path),
            text: if text.trim().is_empty() {
                "（空欄）".into()
            } else {
                text
            },
            scroll: 0,
            rows: 10,
        })
    }
}

impl App {
    pub fn open_record(&mut self, id: i64) {
        if let Some(r) = &self.record {
            if r.unsaved() && r.id != Some(id) {
                self.overlay = None;
                self.screen = Screen::Record;
                self.say(Level::Warn, "保存していない変更があります。保存（Ctrl+S）するか、Esc で破棄してから開いてください");
                return;
            }
        }
        self.overlay = None;
        self.record = Some(RecordState::loading(id));
        self.screen = Screen::Record;
        self.request("record", CmdKind::Record { id });
        self.request("record_intakes", CmdKind::RecordIntakes { id });
    }

    /// Reads the open record again in place (cursor and scroll kept).
    pub fn reload_record(&mut self, id: i64) {
        self.request("record", CmdKind::Record { id });
        self.request("record_intakes", CmdKind::RecordIntakes { id });
    }

    pub fn new_record(&mut self) {
        let writer = self.keeps_cases();
        if !writer {
            self.say(Level::Warn, "この組織では記録を作成できません");
            return;
        }
        if self.record.as_ref().is_some_and(|r| r.unsaved()) {
            self.screen = Screen::Record;
            self.say(
                Level::Warn,
                "保存していない変更があります。先に保存するか破棄してください",
            );
            return;
        }
        self.record = Some(RecordState::new_record());
        self.screen = Screen::Record;
        self.say(
            Level::Info,
            "新しい記録: 必須の項目を入力し、Ctrl+S で保存します",
        );
    }

    pub(crate) fn on_record(&mut self, res: Result<RecordView, ApiErr>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        match res {
            Ok(view) => {
                r.set_view(&view);
                self.online();
            }
            Err(e) => {
                r.loading = false;
                r.error = Some(match e.status() {
                    Some(404) => {
                        "この記録は開けません（存在しないか、閲覧区分により閲覧できません）"
                            .to_string()
                    }
                    _ => e.message(),
                });
                self.on_error(&e);
            }
        }
    }

    /// Saves the draft when it passes validation; a failure that is not the user's (network,
    /// session) keeps the draft and tries again.
    pub fn save(&mut self) {
        let today = self.today;
        let Some(r) = self.record.as_mut() else {
            return;
        };
        if !r.editable {
            self.say(Level::Warn, "この記録は所有機関だけが編集できます");
            return;
        }
        if !r.commit_edit(today) {
            return;
        }
        if !r.check_all(today) {
            let n = r.summary.len();
            if let Some(first) = r
                .rows()
                .iter()
                .position(|row| r.errors.contains_key(&row.path))
            {
                r.cursor = first;
            }
            r.save_pending = false;
            self.say(
                Level::Error,
                format!("入力内容に{n}件の誤りがあります。赤い項目を直してください"),
            );
            return;
        }
        if r.id.is_some() && r.draft == r.base.body {
            r.save_pending = false;
            self.say(Level::Info, "変更はありません");
            return;
        }
        r.saving = true;
        r.save_pending = true;
        let body = form::for_saving(&r.draft);
        let kind = match r.id {
            Some(id) => CmdKind::Save {
                id,
                update: UpdateRecord {
                    version: r.version,
                    record: body,
                    resolve: r.resolve.clone(),
                },
            },
            None => match r.from_intake {
                Some((intake, version)) => CmdKind::IntakeConvert {
                    id: intake,
                    convert: tsunagu_record::intake::ConvertIntake {
                        version,
                        record: body,
                    },
                },
                None => CmdKind::Create { body },
            },
        };
        if self.token.is_none() {
            // Not logged in: the save waits for the next login.
            return;
        }
        self.say(Level::Info, "保存しています");
        self.request("save", kind);
    }

    pub(crate) fn on_saved(&mut self, res: Result<RecordView, ApiErr>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        r.saving = false;
        match res {
            Ok(view) => {
                r.save_pending = false;
                r.resolve.clear();
                r.conflicts.clear();
                r.errors.clear();
                r.summary.clear();
                r.set_view(&view);
                self.save_retry_at = None;
                self.save_backoff = Duration::from_secs(2);
                let v = r.version;
                self.online();
                self.say(Level::Info, format!("保存しました（版{v}）"));
                self.cases.next_cursor = None;
            }
            Err(e) if e.code() == "version_conflict" => {
                r.save_pending = false;
                if let ApiErr::Status { body, .. } = &e {
                    r.conflict = body.current.clone();
                    r.conflicts = body.conflicts.clone();
                    r.conflict_sel = 0;
                }
                self.say(
                    Level::Warn,
                    "他の職員が先に保存しました。両方の内容を確認して選んでください",
                );
            }
            Err(ApiErr::Status { status: 422, body }) => {
                r.save_pending = false;
                r.set_errors(&body.fields);
                let n = body.fields.len();
                self.say(
                    Level::Error,
                    format!("サーバーが{n}件の誤りを返しました: {}", body.message),
                );
            }
            Err(e) if e.is_network() => {
                // Keep the draft; try again with growing pauses, or at once when back online.
                self.save_retry_at = Some(Instant::now() + self.save_backoff);
                let secs = self.save_backoff.as_secs();
                self.save_backoff = (self.save_backoff * 2).min(Duration::from_secs(60));
                self.conn = Conn::Offline(e.message());
                self.say(
                    Level::Error,
                    format!(
                        "保存できませんでした（{}）。変更は保持し、{secs}秒後に再試行します",
                        e.message()
                    ),
                );
            }
            Err(e) if e.is_auth_lost() => self.session_lost(),
            Err(e) => {
                r.save_pending = false;
                self.say(
                    Level::Error,
                    format!("保存できませんでした: {}", e.message()),
                );
            }
        }
    }

    pub(crate) fn on_history(&mut self, res: Result<Vec<VersionEntry>, ApiErr>) {
        if let Some(r) = self.record.as_mut() {
            r.side = match res {
                Ok(v) => Side::History(v),
                Err(e) => Side::Error(e.message()),
            };
        }
    }

    pub(crate) fn on_views(&mut self, res: Result<Vec<RecordViewEntry>, ApiErr>) {
        if let Some(r) = self.record.as_mut() {
            r.side = match res {
                Ok(v) => Side::Views(v),
                Err(e) if e.status() == Some(403) => {
                    Side::Error("閲覧記録は所有機関だけが見られます".into())
                }
                Err(e) => Side::Error(e.message()),
            };
        }
    }

    pub(crate) fn record_action(&mut self, a: Action) {
        let today = self.today;
        let Some(r) = self.record.as_mut() else {
            self.screen = Screen::CaseList;
            return;
        };
        if a != Action::RemoveItem {
            r.pending_remove = None;
        }
        if a != Action::Back
            && self
                .message
                .as_ref()
                .is_some_and(|m| m.1 == DISCARD_CONFIRM)
        {
            // The second Esc must follow the first at once to discard.
            self.message = None;
        }
        if let Some(cur) = r.conflict.clone() {
            self.conflict_action(a, cur);
            return;
        }
        if r.goto.is_some() {
            match a {
                Action::Submit => {
                    let q = r.goto.as_ref().map(|g| g.value()).unwrap_or_default();
                    if !r.goto_label(q.trim()) {
                        self.say(
                            Level::Info,
                            format!("「{}」という項目はありません", q.trim()),
                        );
                    }
                }
                Action::Cancel | Action::Back => {
                    r.goto = None;
                    self.message = None;
                }
                _ => self.dirty = false,
            }
            return;
        }
        if let Some(rd) = r.reader.as_mut() {
            let page = rd.rows.saturating_sub(1).max(1);
            match a {
                Action::Down => rd.scroll += 1,
                Action::Up => rd.scroll = rd.scroll.saturating_sub(1),
                Action::PageDown => rd.scroll += page,
                Action::PageUp => rd.scroll = rd.scroll.saturating_sub(page),
                Action::Top => rd.scroll = 0,
                // Clamped to the last page when drawn.
                Action::Bottom => rd.scroll = usize::MAX / 2,
                Action::Back | Action::Cancel | Action::Read => r.reader = None,
                _ => self.dirty = false,
            }
            return;
        }
        if let Some(e) = &r.editing {
            let multi = e.kind == Kind::Multiline;
            match a {
                Action::Submit if multi && e.picks.is_empty() => {
                    if let Some(e) = r.editing.as_mut() {
                        e.newline();
                    }
                }
                Action::Submit => {
                    r.commit_edit(today);
                }
                // A field that does not commit (invalid) keeps the cursor where it is.
                Action::NextField if r.commit_edit(today) => {
                    r.cursor = (r.cursor + 1).min(r.rows().len().saturating_sub(1));
                    r.start_edit_if_text();
                }
                Action::PrevField if r.commit_edit(today) => {
                    r.cursor = r.cursor.saturating_sub(1);
                    r.start_edit_if_text();
                }
                Action::Cancel | Action::Back => {
                    if let Some(e) = r.editing.take() {
                        r.errors.remove(&e.path);
                    }
                }
                Action::Save => self.save(),
                _ => {}
            }
            return;
        }
        if !matches!(r.side, Side::None) {
            match a {
                Action::Down => r.side_scroll += 1,
                Action::Up => r.side_scroll = r.side_scroll.saturating_sub(1),
                Action::PageDown => r.side_scroll += 5,
                Action::PageUp => r.side_scroll = r.side_scroll.saturating_sub(5),
                Action::Top => r.side_scroll = 0,
                Action::Bottom => r.side_scroll = usize::MAX / 2,
                Action::Back | Action::Cancel => r.side = Side::None,
                Action::History | Action::Views => self.open_side(a),
                Action::Read => {
                    if let Side::History(v) = &r.side {
                        r.reader = Some(Reader {
                            title: "変更履歴".into(),
                            text: history_lines(v, true).join("\n"),
                            scroll: 0,
                            rows: 10,
                        });
                    }
                }
                _ => self.dirty = false,
            }
            return;
        }
        let rows = r.rows();
        let last = rows.len().saturating_sub(1);
        let Some(row) = rows.get(r.cursor.min(last)).cloned() else {
            return;
        };
        match a {
            Action::Down => r.cursor = (r.cursor + 1).min(last),
            Action::Up => r.cursor = r.cursor.saturating_sub(1),
            Action::PageDown => r.cursor = (r.cursor + r.rows / 2).min(last),
            Action::PageUp => r.cursor = r.cursor.saturating_sub(r.rows / 2),
            Action::Top => r.cursor = 0,
            Action::Bottom => r.cursor = last,
            Action::Read => self.open_reader(&row),
            Action::Goto => {
                r.goto = Some(crate::widgets::input::LineInput::new(""));
                self.say(
                    Level::Info,
                    "項目名の一部（例: 支援方針、経過、保護者2）を入力して Enter（Esc で閉じる）",
                );
            }
            Action::AppendProgress => {
                if !r.editable {
                    self.say(
                        Level::Info,
                        "この記録は閲覧のみです（所有機関が編集します）",
                    );
                    return;
                }
                if r.base.withheld_for("casework").is_some() {
                    return;
                }
                match form::add_item(&mut r.draft, "casework.progress", today) {
                    Ok(i) => {
                        r.move_to(&format!("casework.progress[{i}].text"));
                        r.start_edit();
                    }
                    Err(m) => self.say(Level::Error, m),
                }
            }
            Action::Edit | Action::Open | Action::ChoiceNext | Action::ChoicePrev => {
                let choice = matches!(a, Action::ChoiceNext | Action::ChoicePrev);
                if !r.editable {
                    if choice {
                        self.say(
                            Level::Info,
                            "この記録は閲覧のみです（所有機関が編集します）",
                        );
                    } else {
                        // Whoever may see a text may read all of it.
                        self.open_reader(&row);
                    }
                    return;
                }
                match row.kind {
                    RowKind::Field(Kind::Choice(_) | Kind::Bool) => {
                        let step = if a == Action::ChoicePrev { -1 } else { 1 };
                        if let Err(m) = form::cycle(&mut r.draft, &row.path, step) {
                            r.errors.insert(row.path.clone(), m);
                        } else {
                            r.check_field(&row.path, today);
                        }
                    }
                    _ if choice => self.dirty = false,
                    RowKind::Field(_) => r.start_edit(),
                    RowKind::Item => {
                        r.cursor = (r.cursor + 1).min(last);
                        r.start_edit_if_text();
                    }
                    RowKind::Add => match form::add_item(&mut r.draft, &row.path, today) {
                        Ok(i) => {
                            r.move_to(&format!("{}[{i}]", row.path));
                            r.cursor += 1;
                            r.start_edit_if_text();
                        }
                        Err(m) => self.say(Level::Error, m),
                    },
                    RowKind::Empty => self.dirty = false,
                }
            }
            Action::RemoveItem | Action::MoveItemUp | Action::MoveItemDown => {
                if !r.editable {
                    self.say(
                        Level::Info,
                        "この記録は閲覧のみです（所有機関が編集します）",
                    );
                    return;
                }
                let Some((list, i)) = row.list else {
                    self.say(
                        Level::Info,
                        "一覧の項目（保護者・家族・経過など）の上で使います",
                    );
                    return;
                };
                let item = format!("{list}[{i}]");
                let label = form::label_of(&item);
                if a == Action::RemoveItem {
                    if r.pending_remove.as_deref() != Some(item.as_str()) {
                        r.pending_remove = Some(item);
                        self.say(
                            Level::Warn,
                            format!("もう一度 Delete で「{label}」を削除します（保存するまで反映されません）"),
                        );
                        return;
                    }
                    r.pending_remove = None;
                    if let Err(m) = form::remove_item(&mut r.draft, list, i) {
                        self.say(Level::Error, m);
                        return;
                    }
                    // Messages of the list's items moved with their indexes: check again.
                    r.errors.retain(|p, _| !p.starts_with(list));
                    let n = r.rows().len();
                    r.cursor = r.cursor.min(n.saturating_sub(1));
                    self.say(
                        Level::Info,
                        format!("「{label}」を削除しました（保存で反映）"),
                    );
                } else {
                    let step = if a == Action::MoveItemUp { -1 } else { 1 };
                    let rest = row.path[item.len()..].to_string();
                    match form::move_item(&mut r.draft, list, i, step) {
                        Ok(j) => {
                            r.errors.retain(|p, _| !p.starts_with(list));
                            r.move_to(&format!("{list}[{j}]{rest}"));
                        }
                        Err(m) => self.say(Level::Error, m),
                    }
                }
            }
            Action::Save => self.save(),
            Action::History | Action::Views => self.open_side(a),
            Action::Reload => {
                if r.unsaved() {
                    self.say(
                        Level::Warn,
                        "保存していない変更があるため再読み込みしません",
                    );
                } else if let Some(id) = r.id {
                    self.open_record(id);
                }
            }
            Action::Back => {
                if r.unsaved()
                    && self.message.as_ref().map(|m| m.1.as_str()) != Some(DISCARD_CONFIRM)
                {
                    self.say(Level::Warn, DISCARD_CONFIRM);
                } else {
                    self.record = None;
                    self.message = None;
                    self.screen = Screen::CaseList;
                    if self.cases.items.is_empty() || self.cases.next_cursor.is_none() {
                        self.load_cases(false);
                    }
                }
            }
            _ => self.dirty = false,
        }
    }

    fn open_reader(&mut self, row: &Row) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        match r.reader_for(row) {
            Ok(rd) => r.reader = Some(rd),
            Err(m) => self.say(Level::Info, m),
        }
    }

    fn open_side(&mut self, a: Action) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        let Some(id) = r.id else {
            self.say(Level::Info, "保存前の記録には履歴がありません");
            return;
        };
        r.side_scroll = 0;
        if a == Action::History {
            r.side = Side::Loading("変更履歴");
            self.request("side", CmdKind::History { id });
        } else {
            r.side = Side::Loading("他機関の閲覧記録");
            self.request("side", CmdKind::Views { id });
        }
    }

    /// The conflict view: each field both sides changed is decided on its own (1 mine, 2
    /// theirs); the save sends the decisions from the version edited, so the server merges
    /// everything else and nobody's other changes are lost.
    fn conflict_action(&mut self, a: Action, cur: Box<FullRecord>) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        use tsunagu_record::merge::Resolution;
        if r.conflicts.is_empty() {
            // No field named (the merge was refused as a whole): overwrite or take theirs.
            match a {
                Action::KeepMine => {
                    r.base = form::flatten(&RecordView::Owner(*cur));
                    r.version = r.base.meta.as_ref().map(|m| m.version).unwrap_or(r.version);
                    r.conflict = None;
                    self.save();
                }
                Action::TakeTheirs => {
                    r.set_view(&RecordView::Owner(*cur));
                    r.conflict = None;
                    r.errors.clear();
                    r.summary.clear();
                    self.say(
                        Level::Info,
                        "相手の変更を採用しました（自分の変更は破棄しました）",
                    );
                }
                Action::Cancel | Action::Back => r.conflict = None,
                _ => self.dirty = false,
            }
            return;
        }
        let n = r.conflicts.len();
        match a {
            Action::Down => r.conflict_sel = (r.conflict_sel + 1).min(n - 1),
            Action::Up => r.conflict_sel = r.conflict_sel.saturating_sub(1),
            Action::KeepMine | Action::TakeTheirs => {
                let pick = if a == Action::KeepMine {
                    Resolution::Mine
                } else {
                    Resolution::Theirs
                };
                let field = r.conflicts[r.conflict_sel.min(n - 1)].field.clone();
                r.resolve.insert(field, pick);
                // On to the next field not decided yet.
                if let Some(next) = (0..n)
                    .map(|k| (r.conflict_sel + 1 + k) % n)
                    .find(|&k| !r.resolve.contains_key(&r.conflicts[k].field))
                {
                    r.conflict_sel = next;
                }
                let left = r
                    .conflicts
                    .iter()
                    .filter(|c| !r.resolve.contains_key(&c.field))
                    .count();
                if left == 0 {
                    self.say(Level::Info, "すべての項目を選びました。Ctrl+S で保存します");
                }
            }
            Action::Save | Action::Submit => {
                let left: Vec<String> = r
                    .conflicts
                    .iter()
                    .filter(|c| !r.resolve.contains_key(&c.field))
                    .map(|c| form::label_of(&c.field))
                    .collect();
                if !left.is_empty() {
                    self.say(
                        Level::Warn,
                        format!("まだ選んでいない項目があります: {}", left.join("、")),
                    );
                    return;
                }
                r.conflict = None;
                self.save();
            }
            Action::Cancel | Action::Back => {
                r.conflict = None;
                r.resolve.clear();
            }
            _ => self.dirty = false,
        }
    }
}

pub const DISCARD_CONFIRM: &str =
    "保存していない変更があります。もう一度 Esc で変更を破棄して一覧へ戻ります（保存は Ctrl+S）";

impl RecordState {
    fn start_edit_if_text(&mut self) {
        if self
            .row()
            .and_then(|r| r.field_kind())
            .is_some_and(Kind::is_text)
        {
            self.start_edit();
        }
    }
}

fn tier_label(t: &str) -> &'static str {
    match t {
        "owner" => "所有",
        "partner" => "連携機関",
        "outside" => "管轄外",
        "ministry" => "こども家庭庁",
        "transfer" => "移管先",
        _ => "",
    }
}

const LABEL_W: usize = 30;

pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let el = app.look.ellipsis;
    let th = app.theme.clone();
    let Some(r) = app.record.as_ref() else { return };
    let name = r.draft.core.child_name.display();
    let title = match r.id {
        Some(id) if !r.loading => format!("記録 {id}  {name}"),
        Some(id) => format!("記録 {id}"),
        None => format!("新しい記録  {name}"),
    };
    let mut right = String::new();
    if !r.tier.is_empty() {
        right.push_str(&format!("閲覧区分: {}", tier_label(&r.tier)));
    }
    if r.version > 0 {
        right.push_str(&format!("  版{}", r.version));
    }
    if r.unsaved() {
        right.push_str("  未保存");
    }
    widgets::title_bar(f, Rect { height: 1, ..area }, app, &title, &right);
    let owner_line = match (&r.owner, &r.base.meta) {
        (Some(o), Some(m)) => format!(
            "所有機関: {}（電話 {}）  更新: {} {}",
            o.name,
            o.phone,
            m.updated_at.with_timezone(&jst()).format("%Y-%m-%d %H:%M"),
            m.updated_by
        ),
        (Some(o), None) => format!("所有機関: {}（電話 {}）", o.name, o.phone),
        _ => String::new(),
    };
    widgets::line(
        f,
        Rect {
            y: area.y + 1,
            height: 1,
            ..area
        },
        &owner_line,
        th.style("dim"),
        el,
    );
    let mut body = Rect {
        y: area.y + 2,
        height: area.height.saturating_sub(2),
        ..area
    };
    // Where the record came from or went, and a transfer's reading.
    if let Some(t) = transfer_banner(r) {
        widgets::line(
            f,
            Rect { height: 1, ..body },
            &t,
            th.style("status_warn"),
            el,
        );
        body.y += 1;
        body.height = body.height.saturating_sub(1);
    }
    // The 48-hour clock of the record's intakes not yet confirmed, soonest first.
    let now = app.now();
    let open: Vec<_> = r
        .intakes
        .iter()
        .filter(|i| i.confirmation_pending())
        .collect();
    if let Some(first) = open.iter().min_by_key(|i| i.due_at) {
        let more = if open.len() > 1 {
            format!("（ほか{}件）", open.len() - 1)
        } else {
            String::new()
        };
        let t = format!(
            "安全確認: 通告 No.{} {}{more}",
            first.id,
            crate::screens::intake::clock_text(first.state, first.due_at, now)
        );
        let style = if first.state == tsunagu_record::intake::SafetyState::Overdue {
            th.style("error")
        } else {
            th.style("status_warn")
        };
        widgets::line(f, Rect { height: 1, ..body }, &t, style, el);
        body.y += 1;
        body.height = body.height.saturating_sub(1);
    }
    let r = app.record.as_mut().expect("checked above");
    if r.loading {
        widgets::line(f, body, "読み込み中", th.style("dim"), el);
        return;
    }
    if let Some(e) = &r.error {
        widgets::line(
            f,
            body,
            &format!("{e}（Esc で一覧へ戻る）"),
            th.style("error"),
            el,
        );
        return;
    }
    if let Some(rd) = r.reader.as_mut() {
        draw_reader(f, body, &th, rd, el);
        return;
    }
    // The summary of problems sits at the bottom, above nothing else, while there are any.
    if !r.summary.is_empty() {
        let n = (r.summary.len() as u16 + 1).min(4).min(body.height / 3);
        let sum_area = Rect {
            y: body.bottom() - n,
            height: n,
            ..body
        };
        body.height -= n;
        let mut lines = vec![Line::from(Span::styled(
            format!("入力内容に{}件の誤りがあります:", r.summary.len()),
            th.style("error"),
        ))];
        let shown = n.saturating_sub(1) as usize;
        for (i, m) in r.summary.iter().take(shown).enumerate() {
            let more = if i + 1 == shown && r.summary.len() > shown {
                format!(" ほか{}件", r.summary.len() - shown)
            } else {
                String::new()
            };
            lines.push(Line::from(Span::styled(
                text::fit(&format!("  ・{m}{more}"), sum_area.width as usize, el),
                th.style("error"),
            )));
        }
        f.render_widget(Paragraph::new(lines), sum_area);
    }
    if !matches!(r.side, Side::None) {
        let h = body.height / 2;
        let side_area = Rect {
            y: body.bottom() - h,
            height: h,
            ..body
        };
        body.height -= h;
        draw_side(f, side_area, &th, &r.side, &mut r.side_scroll, el);
    }
    if let Some(cur) = &r.conflict {
        let cur = cur.clone();
        draw_conflict(f, body, &th, r, &cur, el);
        return;
    }
    if let Some(g) = &r.goto {
        let at = Rect {
            y: body.bottom().saturating_sub(1),
            height: 1,
            ..body
        };
        body.height = body.height.saturating_sub(1);
        widgets::line(
            f,
            at,
            &format!(" 項目へ移動: {}_", g.value()),
            th.style("input_focus"),
            el,
        );
    }
    let rows = r.rows();
    r.cursor = r.cursor.min(rows.len().saturating_sub(1));
    r.rows = (body.height as usize).max(1);
    let sections = form::SECTIONS
        .iter()
        .enumerate()
        .map(|(s, title)| match r.base.withheld_for(GROUPS[s]) {
            Some(why) => format!(" {title}  ［非表示: {}］", why.label_ja()),
            None => format!(" {title}"),
        })
        .collect();
    let (draft, base, editable) = (
        form::to_value(&r.draft),
        form::to_value(&r.base.body),
        r.editable,
    );
    let withheld = r.base.clone();
    field::draw_rows(
        f,
        body,
        field::RowsView {
            th: &th,
            el,
            sections,
            rows: &rows,
            cursor: r.cursor,
            errors: &r.errors,
            label_w: LABEL_W,
        },
        &mut r.scroll,
        r.editing.as_mut(),
        |row| form::is_required(&row.path),
        |row| {
            if let Some(why) = withheld.withheld_for(&row.path) {
                return field::Shown {
                    values: vec![],
                    changed: false,
                    withheld: Some(why.label_ja().to_string()),
                };
            }
            let (values, changed) = match row.kind {
                RowKind::Field(_) => {
                    let vals = form::display_in(form::LAYOUT, &draft, &row.path);
                    let changed =
                        editable && form::display_in(form::LAYOUT, &base, &row.path) != vals;
                    (vals, changed)
                }
                RowKind::Item => {
                    let (list, k) = row.list.expect("an item row is in a list");
                    let s = form::item_summary_in(form::LAYOUT, &draft, list, k);
                    let changed =
                        editable && form::item_summary_in(form::LAYOUT, &base, list, k) != s;
                    (vec![s], changed)
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

/// The record's groups, by section number.
const GROUPS: [&str; 4] = ["core", "family", "casework", "admin"];

fn flat_transferred_to(f: &Flat) -> Option<&tsunagu_record::transfer::TransferredTo> {
    f.meta.as_ref().and_then(|m| m.transferred_to.as_ref())
}

/// One line about the record's transfers: 転出済み (read-only, where it went), 転入 (where it
/// came from), or, for the destination of an offer, that only what was provided shows.
fn transfer_banner(r: &RecordState) -> Option<String> {
    let day =
        |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&jst()).format("%Y-%m-%d").to_string();
    if let Some(t) = flat_transferred_to(&r.base) {
        return Some(format!(
            "転出済み（{}）: {}の記録 {} へ移管しました。この記録は閲覧のみです",
            day(t.transferred_at),
            t.destination.name,
            t.record_id
        ));
    }
    if r.tier == "transfer" {
        return Some(
            "移管の申し出を受けている記録です。所有機関が提供した内容だけを表示しています".into(),
        );
    }
    let p = r.base.meta.as_ref()?.provenance.as_ref()?;
    Some(format!(
        "転入（{}）: {}の記録 {} から移管された記録です",
        day(p.transferred_at),
        p.origin.name,
        p.origin_record_id
    ))
}

fn jst() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(9 * 3600).expect("JST")
}

fn group_of(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

fn draw_reader(f: &mut Frame, area: Rect, th: &crate::theme::Theme, rd: &mut Reader, el: &str) {
    let w = area.width as usize;
    let body_h = area.height.saturating_sub(1) as usize;
    let lines = text::wrap(&text::sanitize_lines(&rd.text), w.saturating_sub(2));
    rd.rows = body_h.max(1);
    rd.scroll = rd.scroll.min(lines.len().saturating_sub(body_h));
    let end = (rd.scroll + body_h).min(lines.len());
    let mut out = vec![Line::from(Span::styled(
        text::fit(
            &format!(
                " 全文: {}  {}〜{}行／{}行  Up/Down・PageUp/PageDown: スクロール  Esc: 戻る",
                rd.title,
                rd.scroll + 1,
                end,
                lines.len()
            ),
            w,
            el,
        ),
        th.style("section"),
    ))];
    for l in &lines[rd.scroll..end] {
        out.push(Line::from(format!(" {l}")));
    }
    f.render_widget(Paragraph::new(out).style(th.style("normal")), area);
}

fn side_lines(side: &Side) -> (&str, Vec<String>) {
    match side {
        Side::None => ("", vec![]),
        Side::Loading(t) => (t, vec!["読み込み中".into()]),
        Side::Error(e) => ("エラー", vec![e.clone()]),
        Side::History(v) => ("変更履歴（新しい順、F6 で全文）", history_lines(v, false)),
        Side::Views(v) => (
            "他機関の閲覧記録",
            if v.is_empty() {
                vec!["他機関による閲覧はありません".into()]
            } else {
                v.iter()
                    .rev()
                    .map(|e| {
                        format!(
                            "{}  {}  {}（{}）",
                            e.at.with_timezone(&jst()).format("%Y-%m-%d %H:%M"),
                            e.org_name,
                            e.user,
                            tier_label(&e.tier)
                        )
                    })
                    .collect()
            },
        ),
    }
}

/// The history as lines: each version (newest first) and what it changed, field by field,
/// within the viewer's tier. `full` gives every value whole (for the reader); otherwise each
/// value is one line (the pane cuts it to its width).
pub fn history_lines(v: &[VersionEntry], full: bool) -> Vec<String> {
    let mut out = Vec::new();
    let value = |field: &str, x: &serde_json::Value| {
        let lines = form::value_lines(field, Some(x));
        if full {
            lines.join("\n      ")
        } else {
            lines.join(" ")
        }
    };
    for e in v.iter().rev() {
        out.push(match &e.written {
            Visible::Shown(w) => format!(
                "版{}  {}  {}",
                w.version,
                w.at.with_timezone(&jst()).format("%Y-%m-%d %H:%M"),
                w.author
            ),
            Visible::Withheld { reason } => format!("版 -  {}", reason.label_ja()),
        });
        if e.changes.is_empty() {
            continue;
        }
        for c in &e.changes {
            let label = form::label_of(&c.field);
            let line = if c.withheld {
                format!("   {label}: 変更あり（非表示）")
            } else {
                match (&c.before, &c.after) {
                    (None, Some(a)) => format!("   {label}: 追加「{}」", value(&c.field, a)),
                    (Some(b), None) => format!("   {label}: 削除「{}」", value(&c.field, b)),
                    (Some(b), Some(a)) => format!(
                        "   {label}: 「{}」から「{}」へ",
                        value(&c.field, b),
                        value(&c.field, a)
                    ),
                    (None, None) => format!("   {label}: 変更"),
                }
            };
            out.push(line);
        }
    }
    out
}

fn draw_side(
    f: &mut Frame,
    area: Rect,
    th: &crate::theme::Theme,
    side: &Side,
    scroll: &mut usize,
    el: &str,
) {
    let w = area.width as usize;
    let (title, rows) = side_lines(side);
    let h = area.height.saturating_sub(1) as usize;
    *scroll = (*scroll).min(rows.len().saturating_sub(h));
    let mut lines = vec![Line::from(Span::styled(
        text::fit(
            &format!(" {title}  （Up/Down でスクロール、Esc で閉じる）"),
            w,
            el,
        ),
        th.style("section"),
    ))];
    for r in rows.iter().skip(*scroll).take(h) {
        lines.push(Line::from(text::fit(
            &format!(" {}", text::sanitize(r)),
            w,
            el,
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), area);
}

/// Field by field: the common base, mine and theirs in full, lines that are not in the base
/// marked, the decision so far; then what the server will merge by itself.
fn draw_conflict(
    f: &mut Frame,
    area: Rect,
    th: &crate::theme::Theme,
    r: &RecordState,
    cur: &FullRecord,
    el: &str,
) {
    use tsunagu_record::merge::Resolution;
    let w = area.width as usize;
    let mut lines: Vec<(Option<usize>, Line)> = vec![(
        None,
        Line::from(Span::styled(
            text::fit(
                &format!(
                    " 保存の競合: {} さんが版{}を保存しました",
                    cur.meta.updated_by, cur.meta.version
                ),
                w,
                el,
            ),
            th.style("status_warn"),
        )),
    )];
    let theirs = form::flatten(&RecordView::Owner(cur.clone()));
    if r.conflicts.is_empty() {
        lines.push((
            None,
            Line::from(" 自動で統合できませんでした。1: 自分の変更で上書き保存   2: 相手の変更を採用   Esc: 閉じて編集を続ける"),
        ));
    }
    for (k, c) in r.conflicts.iter().enumerate() {
        let selected = k == r.conflict_sel;
        let decision = match r.resolve.get(&c.field) {
            Some(Resolution::Mine) => "［自分の値で保存］",
            Some(Resolution::Theirs) => "［相手の値で保存］",
            None => "未選択（1: 自分  2: 相手）",
        };
        let head = format!(" {}  {decision}", form::label_of(&c.field));
        lines.push((
            Some(k),
            Line::from(Span::styled(
                text::fit(&head, w, el),
                if selected {
                    th.style("selected")
                } else {
                    th.style("header")
                },
            )),
        ));
        let base = form::value_lines(&c.field, Some(&c.base));
        for (name, v, style) in [
            ("共通の元", &c.base, th.style("dim")),
            ("自分", &c.mine, th.style("changed")),
            ("相手", &c.theirs, th.style("normal")),
        ] {
            lines.push((Some(k), Line::from(format!("   【{name}】"))));
            for l in form::value_lines(&c.field, Some(v)) {
                // A line the base does not have is what that side wrote.
                let new = name != "共通の元" && !base.contains(&l);
                let mark = if new { " + " } else { "   " };
                for (j, part) in text::wrap(&text::sanitize(&l), w.saturating_sub(6))
                    .into_iter()
                    .enumerate()
                {
                    let m = if j == 0 { mark } else { "   " };
                    lines.push((
                        Some(k),
                        Line::from(Span::styled(
                            format!("  {m}{part}"),
                            if new { style } else { th.style("normal") },
                        )),
                    ));
                }
            }
        }
    }
    // What needs no decision: fields only they changed are kept as they saved them.
    if !r.conflicts.is_empty() {
        let merged: Vec<String> = form::changed_paths(&r.base.body, &theirs.body)
            .into_iter()
            .filter(|p| {
                !r.conflicts.iter().any(|c| {
                    c.field == *p
                        || p.starts_with(&format!("{}.", c.field))
                        || p.starts_with(&format!("{}[", c.field))
                })
            })
            .map(|p| form::label_of(&p))
            .collect();
        lines.push((None, Line::from("")));
        lines.push((
            None,
            Line::from(Span::styled(
                text::fit(
                    &if merged.is_empty() {
                        " 相手が変更したのは上の項目だけです（他は自分の変更のまま保存します）"
                            .to_string()
                    } else {
                        format!(
                            " 自動で統合する項目（相手の変更を残す）: {}",
                            merged.join("、")
                        )
                    },
                    w,
                    el,
                ),
                th.style("dim"),
            )),
        ));
        lines.push((
            None,
            Line::from(Span::styled(
                " Up/Down: 項目  1: 自分の値  2: 相手の値  Ctrl+S: 保存  Esc: 編集に戻る",
                th.style("key"),
            )),
        ));
    }
    // Keep the selected field's head in view.
    let h = area.height as usize;
    let first = lines
        .iter()
        .position(|(k, _)| *k == Some(r.conflict_sel))
        .unwrap_or(0);
    let skip = first.saturating_sub(1).min(lines.len().saturating_sub(h));
    let view: Vec<Line> = lines
        .into_iter()
        .skip(skip)
        .take(h)
        .map(|(_, l)| l)
        .collect();
    f.render_widget(Paragraph::new(view).style(th.style("normal")), area);
}
