//! The record screen: the record's groups as sections, withheld parts marked with the reason,
//! editing field by field (owner only) with the shared validation on leaving a field and on
//! save, saving with the version, a conflict shown with both versions, history and views.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use ratatui_textarea::{CursorMove, TextArea};
use tsunagu_record::api::{RecordViewEntry, UpdateRecord, VersionEntry};
use tsunagu_record::views::{FullRecord, OwnerContact, Visible};
use tsunagu_record::{RecordBody, RecordView};

use crate::api::ApiErr;
use crate::app::{App, Conn, Level, Screen};
use crate::form::{self, Flat, Kind, FIELDS};
use crate::keymap::Action;
use crate::tasks::CmdKind;
use crate::text;
use crate::widgets;

#[derive(Debug, Clone)]
pub enum Side {
    None,
    Loading(&'static str),
    History(Vec<VersionEntry>),
    Views(Vec<RecordViewEntry>),
    Error(String),
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
    pub cursor: usize,
    pub scroll: usize,
    pub editing: Option<TextArea<'static>>,
    /// Field path → message, shown next to the field.
    pub errors: BTreeMap<String, String>,
    /// Every problem of the last save attempt.
    pub summary: Vec<String>,
    pub saving: bool,
    /// A save is wanted but could not reach the server (or the session ended): tried again.
    pub save_pending: bool,
    pub conflict: Option<Box<FullRecord>>,
    /// The fields the server named as changed both ways (the rest it merged).
    pub conflict_fields: Vec<String>,
    /// The decision sent with the next save for each of those fields.
    pub resolve: tsunagu_record::merge::Resolutions,
    pub side: Side,
    /// Visible body rows in the last frame.
    pub rows: usize,
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
            errors: BTreeMap::new(),
            summary: vec![],
            saving: false,
            save_pending: false,
            conflict: None,
            conflict_fields: vec![],
            resolve: Default::default(),
            side: Side::None,
            rows: 10,
        }
    }

    pub fn new_record() -> RecordState {
        RecordState {
            id: None,
            loading: false,
            tier: "owner".into(),
            editable: true,
            ..RecordState::loading(0)
        }
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
        self.editable = matches!(view, RecordView::Owner(_));
        self.version = flat.meta.as_ref().map(|m| m.version).unwrap_or(0);
        self.draft = flat.body.clone();
        self.base = flat;
    }

    pub fn unsaved(&self) -> bool {
        self.editable && (self.draft != self.base.body || self.editing.is_some())
    }

    pub fn field(&self) -> &'static form::FieldDef {
        &FIELDS[self.cursor.min(FIELDS.len() - 1)]
    }

    pub fn paste(&mut self, s: &str) {
        let multi = self.field().kind == Kind::Multiline;
        if let Some(t) = self.editing.as_mut() {
            let clean: String = s
                .chars()
                .map(|c| {
                    if c == '\n' && multi {
                        c
                    } else if c.is_control() {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            t.insert_str(clean);
        }
    }

    fn start_edit(&mut self) {
        let f = self.field();
        let mut t = TextArea::new(
            form::get(&self.draft, f.path)
                .lines()
                .map(str::to_string)
                .collect(),
        );
        if t.lines().is_empty() {
            t = TextArea::default();
        }
        t.move_cursor(CursorMove::Bottom);
        t.move_cursor(CursorMove::End);
        t.set_cursor_line_style(Style::default());
        self.editing = Some(t);
    }

    /// Leaves the field being edited: writes it into the draft and validates it. A value that
    /// cannot be read (a bad date) keeps the editor open with the message.
    pub fn commit_edit(&mut self, today: chrono::NaiveDate) -> bool {
        let Some(t) = &self.editing else { return true };
        let path = self.field().path;
        let value = t.lines().join("\n");
        if let Err(m) = form::set(&mut self.draft, path, &value) {
            self.errors.insert(path.to_string(), m);
            return false;
        }
        self.editing = None;
        self.check_field(path, today);
        true
    }

    /// The shared validation, applied to one field's messages.
    pub fn check_field(&mut self, path: &str, today: chrono::NaiveDate) {
        self.errors.remove(path);
        for e in form::validate(&self.draft, today) {
            if form::field_of_error(&e.field) == Some(path) {
                self.errors.entry(path.to_string()).or_insert(e.message);
            }
        }
        if self.errors.is_empty() {
            self.summary.clear();
        }
    }

    /// Every problem, on its field and in the summary. True when there are none.
    pub fn check_all(&mut self, today: chrono::NaiveDate) -> bool {
        let errs = form::validate(&self.draft, today);
        self.set_errors(&errs);
        errs.is_empty()
    }

    pub fn set_errors(&mut self, errs: &[tsunagu_record::validate::FieldError]) {
        self.errors.clear();
        self.summary.clear();
        for e in errs {
            if let Some(p) = form::field_of_error(&e.field) {
                self.errors
                    .entry(p.to_string())
                    .or_insert(e.message.clone());
            }
            self.summary.push(e.message.clone());
        }
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
    }

    pub fn new_record(&mut self) {
        let writer = self.me.as_ref().is_some_and(|m| {
            matches!(
                m.org.kind,
                tsunagu_record::OrgKind::Cgc | tsunagu_record::OrgKind::Municipality
            )
        });
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
            if let Some(first) = form::FIELDS
                .iter()
                .position(|f| r.errors.contains_key(f.path))
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
            None => CmdKind::Create { body },
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
                r.conflict_fields.clear();
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
                    r.conflict_fields = body.conflicts.iter().map(|c| c.field.clone()).collect();
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
        if let Some(cur) = r.conflict.clone() {
            match a {
                Action::KeepMine | Action::TakeTheirs if !r.conflict_fields.is_empty() => {
                    // The server merged everything else: decide the fields it named and send
                    // the same save again, so no one's other changes are lost.
                    let pick = if a == Action::KeepMine {
                        tsunagu_record::merge::Resolution::Mine
                    } else {
                        tsunagu_record::merge::Resolution::Theirs
                    };
                    r.resolve = r
                        .conflict_fields
                        .iter()
                        .map(|f| (f.clone(), pick))
                        .collect();
                    r.conflict = None;
                    self.save();
                }
                Action::KeepMine => {
                    // No field named (the merge was refused as a whole): save my draft over
                    // theirs, the base becoming theirs, at their version.
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
                _ => {}
            }
            return;
        }
        if r.editing.is_some() {
            match a {
                Action::Submit if r.field().kind == Kind::Multiline => {
                    if let Some(t) = r.editing.as_mut() {
                        t.insert_newline();
                    }
                }
                Action::Submit => {
                    r.commit_edit(today);
                }
                // A field that does not commit (invalid) keeps the cursor where it is.
                Action::NextField if r.commit_edit(today) => {
                    r.cursor = (r.cursor + 1).min(FIELDS.len() - 1);
                    r.start_edit_if_text();
                }
                Action::PrevField if r.commit_edit(today) => {
                    r.cursor = r.cursor.saturating_sub(1);
                    r.start_edit_if_text();
                }
                Action::Cancel | Action::Back => {
                    r.editing = None;
                    let p = r.field().path;
                    r.errors.remove(p);
                }
                Action::Save => self.save(),
                _ => {}
            }
            return;
        }
        match a {
            Action::Down => r.cursor = (r.cursor + 1).min(FIELDS.len() - 1),
            Action::Up => r.cursor = r.cursor.saturating_sub(1),
            Action::PageDown => r.cursor = (r.cursor + r.rows / 2).min(FIELDS.len() - 1),
            Action::PageUp => r.cursor = r.cursor.saturating_sub(r.rows / 2),
            Action::Top => r.cursor = 0,
            Action::Bottom => r.cursor = FIELDS.len() - 1,
            Action::Edit | Action::Open | Action::ChoiceNext | Action::ChoicePrev => {
                if !r.editable {
                    self.say(
                        Level::Warn,
                        "この記録は所有機関だけが編集できます（閲覧のみ）",
                    );
                    return;
                }
                let f = r.field();
                match f.kind {
                    Kind::List => self.say(Level::Info, "この項目の一覧はこの版では表示のみです"),
                    Kind::Choice | Kind::Bool => {
                        let step = if a == Action::ChoicePrev { -1 } else { 1 };
                        if let Err(m) = form::cycle(&mut r.draft, f.path, step) {
                            r.errors.insert(f.path.to_string(), m);
                        } else {
                            r.check_field(f.path, today);
                        }
                    }
                    _ if matches!(a, Action::ChoiceNext | Action::ChoicePrev) => {}
                    _ => r.start_edit(),
                }
            }
            Action::Save => self.save(),
            Action::History | Action::Views => {
                let Some(id) = r.id else {
                    self.say(Level::Info, "保存前の記録には履歴がありません");
                    return;
                };
                if a == Action::History {
                    r.side = Side::Loading("変更履歴");
                    self.request("side", CmdKind::History { id });
                } else {
                    r.side = Side::Loading("他機関の閲覧記録");
                    self.request("side", CmdKind::Views { id });
                }
            }
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
                if !matches!(r.side, Side::None) {
                    r.side = Side::None;
                } else if r.unsaved()
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
}

pub const DISCARD_CONFIRM: &str =
    "保存していない変更があります。もう一度 Esc で変更を破棄して一覧へ戻ります（保存は Ctrl+S）";

impl RecordState {
    fn start_edit_if_text(&mut self) {
        if matches!(self.field().kind, Kind::Text | Kind::Date | Kind::Multiline) {
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
            m.updated_at
                .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"))
                .format("%Y-%m-%d %H:%M"),
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
        draw_side(f, side_area, app_theme(&th), &r.side, el);
    }
    if let Some(cur) = &r.conflict {
        draw_conflict(f, body, &th, r, cur, el);
        return;
    }
    let w = body.width as usize;
    let val_w = w.saturating_sub(LABEL_W + 1);
    // Build every line with the field it belongs to, then scroll so the cursor's field shows.
    let mut lines: Vec<(Option<usize>, Line)> = Vec::new();
    let mut edit_at: Option<(usize, u16)> = None;
    let mut last_section = usize::MAX;
    for (i, fd) in FIELDS.iter().enumerate() {
        if fd.section != last_section {
            last_section = fd.section;
            let withheld = r.base.withheld_for(group_of(fd.path));
            let mut t = format!(" {}", form::SECTIONS[fd.section]);
            if let Some(why) = withheld {
                t.push_str(&format!("  ［非表示: {}］", why.label_ja()));
            }
            lines.push((
                None,
                Line::from(Span::styled(text::fit(&t, w, el), th.style("section"))),
            ));
            if withheld.is_some() {
                // A whole group withheld: one line says so, no empty fields pretend otherwise.
                continue;
            }
        } else if r.base.withheld_for(group_of(fd.path)).is_some() {
            continue;
        }
        let selected = i == r.cursor;
        let req = if form::is_required(fd.path) {
            "必須 "
        } else {
            "     "
        };
        let label = text::fit(&format!(" {req}{}", fd.label), LABEL_W, el);
        let label_style = if selected {
            th.style("selected")
        } else {
            th.style("normal")
        };
        let mut label_span = vec![Span::styled(label.clone(), label_style)];
        if form::is_required(fd.path) && !selected {
            label_span = vec![
                Span::styled(" ", label_style),
                Span::styled("必須", th.style("required")),
                Span::styled(
                    text::fit(&format!(" {}", fd.label), LABEL_W - 5, el),
                    label_style,
                ),
            ];
        }
        let first_row = lines.len();
        if selected && r.editing.is_some() {
            let h = if fd.kind == Kind::Multiline { 5 } else { 1 };
            edit_at = Some((first_row, h));
            for k in 0..h {
                let mut spans = if k == 0 {
                    label_span.clone()
                } else {
                    vec![Span::raw(" ".repeat(LABEL_W))]
                };
                spans.push(Span::raw(" "));
                lines.push((Some(i), Line::from(spans)));
            }
        } else if let Some(why) = r.base.withheld_for(fd.path) {
            let mut spans = label_span.clone();
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                text::fit(&format!("［非表示: {}］", why.label_ja()), val_w, el),
                th.style("withheld"),
            ));
            lines.push((Some(i), Line::from(spans)));
        } else {
            let vals = form::display(&r.draft, fd.path);
            let changed = r.editable && form::display(&r.base.body, fd.path) != vals;
            let vstyle = if changed {
                th.style("changed")
            } else {
                th.style("normal")
            };
            let mut vals: Vec<String> = vals.into_iter().filter(|v| !v.is_empty()).collect();
            if vals.is_empty() {
                vals.push(if fd.kind == Kind::List {
                    "（なし）".into()
                } else {
                    "".into()
                });
            }
            let max_lines = if selected { 6 } else { 3 };
            let extra = vals.len().saturating_sub(max_lines);
            for (k, v) in vals.iter().take(max_lines).enumerate() {
                let mut spans = if k == 0 {
                    label_span.clone()
                } else {
                    vec![Span::raw(" ".repeat(LABEL_W))]
                };
                spans.push(Span::raw(" "));
                let mut v = v.clone();
                if k + 1 == max_lines && extra > 0 {
                    v = format!("{v} {el}ほか{extra}行");
                }
                spans.push(Span::styled(
                    text::fit(&text::sanitize(&v), val_w, el),
                    vstyle,
                ));
                lines.push((Some(i), Line::from(spans)));
            }
        }
        if let Some(m) = r.errors.get(fd.path) {
            lines.push((
                Some(i),
                Line::from(vec![
                    Span::raw(" ".repeat(LABEL_W + 1)),
                    Span::styled(text::fit(&format!("!! {m}"), val_w, el), th.style("error")),
                ]),
            ));
        }
    }
    let rows = body.height as usize;
    r.rows = rows.max(1);
    let first = lines
        .iter()
        .position(|(i, _)| *i == Some(r.cursor))
        .unwrap_or(0);
    let last = lines
        .iter()
        .rposition(|(i, _)| *i == Some(r.cursor))
        .unwrap_or(first);
    if first < r.scroll {
        // Show the section title too when the cursor is on a section's first field.
        r.scroll = if first > 0 && lines[first - 1].0.is_none() {
            first - 1
        } else {
            first
        };
    } else if last >= r.scroll + rows {
        r.scroll = last + 1 - rows;
    }
    r.scroll = r.scroll.min(lines.len().saturating_sub(1));
    let view: Vec<Line> = lines
        .iter()
        .skip(r.scroll)
        .take(rows)
        .map(|(_, l)| l.clone())
        .collect();
    f.render_widget(Paragraph::new(view).style(th.style("normal")), body);
    if let (Some((row, h)), Some(t)) = (edit_at, r.editing.as_mut()) {
        if row >= r.scroll && row < r.scroll + rows {
            let y = body.y + (row - r.scroll) as u16;
            let x = body.x + LABEL_W as u16 + 1;
            let ea = Rect {
                x,
                y,
                width: body.width.saturating_sub(LABEL_W as u16 + 1),
                height: h.min(body.bottom() - y),
            };
            t.set_style(th.style("input_focus"));
            t.set_cursor_style(Style::default());
            f.render_widget(&*t, ea);
            let c = t.screen_cursor();
            let (top, left) = t.scroll_offset();
            let cx = ea.x + (c.col as u16).saturating_sub(left);
            let cy = ea.y + (c.row as u16).saturating_sub(top);
            if cx < ea.right() && cy < ea.bottom() {
                f.set_cursor_position((cx, cy));
            }
        }
    }
}

fn app_theme(t: &crate::theme::Theme) -> &crate::theme::Theme {
    t
}

fn group_of(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

fn draw_side(f: &mut Frame, area: Rect, th: &crate::theme::Theme, side: &Side, el: &str) {
    let w = area.width as usize;
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
    let (title, rows): (&str, Vec<String>) = match side {
        Side::None => return,
        Side::Loading(t) => (t, vec!["読み込み中".into()]),
        Side::Error(e) => ("エラー", vec![e.clone()]),
        Side::History(v) => (
            "変更履歴（新しい順）",
            v.iter()
                .rev()
                .map(|e| match &e.written {
                    Visible::Shown(w) => format!(
                        "版{}  {}  {}",
                        w.version,
                        w.at.with_timezone(&jst).format("%Y-%m-%d %H:%M"),
                        w.author
                    ),
                    Visible::Withheld { reason } => format!("版 -  {}", reason.label_ja()),
                })
                .collect(),
        ),
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
                            e.at.with_timezone(&jst).format("%Y-%m-%d %H:%M"),
                            e.org_name,
                            e.user,
                            tier_label(&e.tier)
                        )
                    })
                    .collect()
            },
        ),
    };
    let mut lines = vec![Line::from(Span::styled(
        text::fit(&format!(" {title}  （Esc で閉じる）"), w, el),
        th.style("section"),
    ))];
    for r in rows.iter().take(area.height.saturating_sub(1) as usize) {
        lines.push(Line::from(text::fit(
            &format!(" {}", text::sanitize(r)),
            w,
            el,
        )));
    }
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), area);
}

fn draw_conflict(
    f: &mut Frame,
    area: Rect,
    th: &crate::theme::Theme,
    r: &RecordState,
    cur: &FullRecord,
    el: &str,
) {
    let theirs = form::flatten(&RecordView::Owner(cur.clone()));
    let w = area.width as usize;
    let col = (w.saturating_sub(LABEL_W + 2)) / 2;
    let mut lines = vec![
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
        Line::from(Span::styled(
            format!(
                "{}{}{}",
                text::fit(" 項目", LABEL_W, el),
                text::fit(" 自分の変更", col + 1, el),
                text::fit(" 現在のサーバー", col + 1, el)
            ),
            th.style("header"),
        )),
    ];
    // With the fields the server named, only those: it merged every other difference.
    let named = !r.conflict_fields.is_empty();
    let diffs: Vec<_> = form::differing(&r.draft, &theirs.body)
        .into_iter()
        .filter(|d| !named || r.conflict_fields.iter().any(|f| f == d.path))
        .collect();
    for d in &diffs {
        let mine = form::display(&r.draft, d.path).join(" ");
        let other = form::display(&theirs.body, d.path).join(" ");
        lines.push(Line::from(vec![
            Span::raw(text::fit(&format!(" {}", d.label), LABEL_W, el)),
            Span::styled(
                text::fit(&format!(" {}", text::sanitize(&mine)), col + 1, el),
                th.style("changed"),
            ),
            Span::raw(text::fit(
                &format!(" {}", text::sanitize(&other)),
                col + 1,
                el,
            )),
        ]));
    }
    if diffs.is_empty() {
        lines.push(Line::from(" 内容の違いはありません（版だけが進みました）"));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        if named {
            " 両方で変更された項目だけを表示しています（他の項目は自動で統合して保存します）"
        } else {
            " 自動で統合できませんでした"
        },
        th.style("dim"),
    )));
    lines.push(Line::from(Span::styled(
        if named {
            " 1: この項目は自分の値で保存   2: この項目は相手の値で保存   Esc: 閉じて編集を続ける"
        } else {
            " 1: 自分の変更で上書き保存   2: 相手の変更を採用   Esc: 閉じて編集を続ける"
        },
        th.style("key"),
    )));
    f.render_widget(Paragraph::new(lines).style(th.style("normal")), area);
}
